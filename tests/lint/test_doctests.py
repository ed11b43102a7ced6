"""The examples in the modules' docstrings are run, so they cannot rot into wrong documentation (four had)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ["terminal", "flows", "drivers", "emv", "firmware_image", "sim"]  # pos_errors has no examples


def _modules(package: str) -> list[str]:
    root = importlib.import_module(package)
    return [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.") if not m.name.endswith("__main__")]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_docstring_example_of_the_package_holds(package: str) -> None:
    failed, attempted = [], 0
    for name in _modules(package):
        result = doctest.testmod(importlib.import_module(name), report=False, optionflags=doctest.ELLIPSIS)
        attempted += result.attempted
        if result.failed:
            failed.append(f"{name}: {result.failed} of {result.attempted}")
    assert not failed, "docstring examples that no longer hold (python -m doctest -v <module file>):\n" + \
        "\n".join(failed)
    assert attempted > 0
