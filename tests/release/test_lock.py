"""Issue 18: the lock file pins every dependency pyproject.toml names, with hashes, and this environment was
installed from it (``make run`` / ``make test`` install with ``--require-hashes -r requirements/dev.lock``)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _pins(lock: Path) -> dict[str, str]:
    text = lock.read_text(encoding="utf-8")
    pins = {canonicalize_name(name): version for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text,
                                                                              re.MULTILINE)}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in block for block in blocks if "==" in block), "a pin without its hashes"
    return pins


def _declared(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return [r for r in wanted if canonicalize_name(r.name) != "iotsim-pos"]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    for lock, extras in (("dev.lock", ("sim", "dev")), ("device.lock", ())):
        pins = _pins(ROOT / "requirements" / lock)
        for requirement in _declared(*extras):
            pinned = pins.get(canonicalize_name(requirement.name))
            assert pinned is not None, f"{requirement.name} is not in {lock}: run make lock"
            assert requirement.specifier.contains(pinned, prereleases=True), f"{lock}: {requirement} vs {pinned}"


def test_the_device_lock_holds_no_simulator_or_test_tool() -> None:
    pins = _pins(ROOT / "requirements" / "device.lock")
    assert not {"textual", "pillow", "pytest", "hypothesis"} & set(pins)


def test_this_environment_was_installed_from_the_lock() -> None:
    pins = _pins(ROOT / "requirements" / "dev.lock")
    for requirement in _declared("sim", "dev"):
        name = canonicalize_name(requirement.name)
        assert metadata.version(requirement.name) == pins[name], f"{name}: installed differs from the lock"
