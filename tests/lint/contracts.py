"""Custom import-linter contract types (``contract_types`` in ``.importlinter``).

``gone``: modules that were deleted must stay deleted and unimported. The built-in ``forbidden`` contract
refuses a module that does not exist, so it cannot say "nothing imports ``emv.errors``" once the module is gone.
"""

from __future__ import annotations

from importlinter import Contract, ContractCheck, fields, output


class GoneModulesContract(Contract):
    """Kept when none of ``modules`` exists in the graph and no module imports one of them (or a submodule)."""

    modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose):  # type: ignore[no-untyped-def]
        found = []
        for name in self.modules:  # type: ignore[attr-defined]
            if name in graph.modules:
                importers = graph.find_modules_that_directly_import(name)
                found.append(f"{name} exists again" + (f", imported by {', '.join(sorted(importers))}"
                                                       if importers else ""))
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check):  # type: ignore[no-untyped-def]
        for line in check.metadata["found"]:
            output.print_error(line)
            output.new_line()
