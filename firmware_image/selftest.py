"""The image's self-test, run by its ``__main__.py`` before anything else: may this build run on this device?

It fails (exit 3; a trial image is then not confirmed and the launcher reverts it at the next boot) when

* a runtime dependency in the manifest (every ``[project] dependencies`` entry of ``pyproject.toml`` at build
  time, with the version it was built against) is missing on the device or its installed version does not
  satisfy the requirement (``>=``, ``<``, ``==``, ``!=``, ``~=``, ``<=``, ``>``, ``==X.*``);
* the image's bytecode was compiled for another Python (its magic number, ``bytecode`` in the manifest);
* a required platform module, an entry point (``terminal.cli:main``, ``emv.cli:main``, … including every
  ``*.cli``) or any packaged module does not import.

Only the standard library is used until the checks pass, so a device missing a library gets a message, not a
traceback from the middle of an import. The imports run on a trial boot (and ``POS_FW_SELFTEST_ONLY``); a confirmed
image passed them on this device already, so its later boots check only the bytecode and the dependencies'
versions (importing every module again cost 0.15-0.2 s of CPU on every boot).

>>> satisfies("1.6.6", ">=1.6"), satisfies("4.2.0", ">=4.0,<5"), satisfies("5.0", ">=4.0,<5")
(True, True, False)
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import pkgutil
import re
import sys
import zipfile
from typing import Any

__all__ = ["satisfies", "check", "main", "SelfTestFailed"]

_CLAUSE = re.compile(r"^\s*(===|==|!=|>=|<=|~=|>|<)\s*([0-9][0-9A-Za-z.*+!-]*)\s*$")


class SelfTestFailed(Exception):
    """The build cannot run here; the message says what is missing."""


def _release(version: str) -> tuple[int, ...]:
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(p) for p in match.group().split(".")) if match else (0,)


def _pad(a: tuple[int, ...], n: int) -> tuple[int, ...]:
    return a + (0,) * (n - len(a))


def satisfies(version: str, spec: str) -> bool:
    """Does ``version`` meet every comma-separated clause of ``spec`` (release numbers only, as PEP 440 orders
    final releases)?"""
    have = _release(version)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        match = _CLAUSE.match(clause)
        if not match:
            raise SelfTestFailed(f"requirement clause {clause!r} is not understood")
        op, text = match.groups()
        if text.endswith(".*"):
            want = _release(text[:-2])
            same = have[:len(want)] == want
            if (op == "==" and not same) or (op == "!=" and same):
                return False
            continue
        want = _release(text)
        n = max(len(have), len(want))
        a, b = _pad(have, n), _pad(want, n)
        ok = {"==": a == b, "===": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b,
              "~=": a >= b and a[:len(want) - 1] == b[:len(want) - 1]}[op]
        if not ok:
            return False
    return True


def check(manifest: dict[str, Any], *, imports: bool = True) -> list[str]:
    """Run every check; returns what was checked (one line each) or raises ``SelfTestFailed``. ``imports=False``:
    versions and bytecode only, nothing imported (a confirmed image's boot)."""
    done = []
    compiled = manifest.get("bytecode")
    if compiled and compiled.get("magic") != importlib.util.MAGIC_NUMBER.hex():
        raise SelfTestFailed(f"the image's modules are bytecode for {compiled.get('tag')}, this device runs "
                             f"{sys.implementation.cache_tag}: build the image with the device's Python version")
    for dep in manifest.get("dependencies", []):
        name, spec, built = dep["name"], dep.get("spec", ""), dep.get("version", "?")
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise SelfTestFailed(f"dependency {name} {spec} is not installed on this device (the image was built "
                                 f"with {built}): install it, or flash a build for this device") from None
        if not satisfies(have, spec):
            raise SelfTestFailed(f"dependency {name} {have} on this device does not satisfy {spec} "
                                 f"(built with {built})")
        done.append(f"{name} {have}")
        if imports:
            _import(dep.get("import") or name, f"dependency {name} {have}")
    if not imports:
        return done
    for module in manifest.get("requires", []):
        _import(module, "platform package")
    for entry in manifest.get("entry_points", []):
        module_name, _, attr = entry.partition(":")
        module = _import(module_name, "entry point")
        if attr and not callable(getattr(module, attr, None)):
            raise SelfTestFailed(f"entry point {entry}: {module_name} has no {attr}()")
        done.append(f"entry {entry}")
    for package in manifest.get("packages", []):
        root = _import(package, "package")
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if not info.name.endswith("__main__"):
                _import(info.name, "module")
    return done


def _import(name: str, what: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any failure to import means the build cannot run here
        raise SelfTestFailed(f"{what} {name} does not import: {type(exc).__name__}: {exc}") from exc


def main() -> int:
    """The image's ``__main__``: self-test, confirm a trial, then start the terminal (unless self-test only)."""
    archive = os.path.dirname(os.path.abspath(sys.argv[0]))
    archive = sys.argv[0] if zipfile.is_zipfile(sys.argv[0]) else archive
    manifest = json.loads(zipfile.ZipFile(archive).read("pos_manifest.json"))
    trial, only = os.environ.get("POS_FW_TRIAL") == "1", os.environ.get("POS_FW_SELFTEST_ONLY") == "1"
    try:
        check(manifest, imports=trial or only)
    except SelfTestFailed as exc:
        print(f"self-test FAILED: {exc}", file=sys.stderr, flush=True)
        return 3
    if trial:
        from firmware_image.slots import confirm

        confirm(os.environ["POS_FW_FLASH"])
        print(f"self-test passed: image {manifest['version']} confirmed", flush=True)
    if only:
        return 0
    entry = importlib.import_module(manifest.get("entry", "terminal.cli:main").split(":")[0])
    return int(entry.main() or 0)
