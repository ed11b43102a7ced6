"""Boot and out-of-service: the journal check, the first device check and recovery before the first sale.

>>> OutOfService().__class__.__name__
'OutOfService'
"""

from __future__ import annotations

from typing import Any

from flows.messages import t
from terminal.core import TerminalCore
from terminal.diagnostics import faults, run_checks
from terminal.screens import Key
from terminal.work import WorkContext, recover_all

__all__ = ["start", "OutOfService"]


def _boot_work(lang: str) -> Any:
    def run(ctx: WorkContext) -> tuple[bool, tuple[str, ...], tuple[Any, ...]]:
        sv = ctx.services
        if not sv.journal.check_integrity():
            return False, (t("boot.journal_damaged", lang),), ()
        health = tuple(faults(run_checks(sv)))  # shown on the home screen until fixed
        with ctx.money:
            report = recover_all(sv)
        return True, tuple(t("boot.recovery", lang, line=line) for line in report.lines), health
    return run


def start(core: TerminalCore) -> None:
    core.start("boot", _boot_work(core.session.lang), _booted)


def _booted(core: TerminalCore, result: Any, error: BaseException | None) -> None:
    ok, lines, health = result if result else (False, (core.say("boot.failed", error=error),), ())
    core.session.notice, core.session.health = lines, health or core.session.health
    found = [check.text("en") for check in health] if ok else list(lines)
    core.audit("self_test", "; ".join(found) or "ok")  # pos-terminal --status shows the last one
    if ok:
        core.fire("booted")
    else:
        core.session.error = lines[0] if lines else core.say("boot.failed", error="")
        core.fire("boot_failed")


class OutOfService:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key is Key.ENTER:
            core.session.error = None
            core.fire("retry_boot")
            start(core)
