"""The image payload: the terminal application as a reproducible zipapp of the pure-Python packages + a manifest.

Members are sorted, dated 1980-01-01, mode 0644 and stored uncompressed: the same tree gives the same bytes, and
the flashing link's per-block deflate compresses the sources far better than a zip of separately deflated files.
Modules ship as bytecode (``x.pyc`` in place of ``x.py``): a terminal cannot write a bytecode cache into its image,
so a zipapp of sources is compiled module by module at every boot (issue 17: 0.57–0.67 s of CPU to the login screen
against 0.23–0.32 s), and sources beside the bytecode would not fit the device's 3 MiB slot. The ``.pyc`` files are
unchecked-hash pycs (PEP 552: no timestamp, so the same tree gives the same bytes) for the interpreter that builds,
named in the manifest (``bytecode``: cache tag and magic number); the signed image covers them like every other
member. The self-test's own modules stay source (``SOURCE_ONLY``) so that a device Python of another version is told
so (``firmware_image.selftest``) instead of failing an import; ``compiled=False`` builds the sources-only image
(``pos-fw build --sources-only``).
``__main__.py`` runs the self-test (``firmware_image.selftest``: every runtime dependency of ``pyproject.toml``
is installed in a version its requirement allows, every entry point and packaged module imports), confirms the
running slot when the launcher says it is on trial, then starts the terminal. The manifest lists those
dependencies with the versions the build was made with, and the entry points (``[project.scripts]``).

>>> blob = build_payload(Path(__file__).resolve().parent.parent, version="1.0.0", packages=("firmware_image",))
>>> read_manifest(blob)["version"]
'1.0.0'
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import marshal
import re
import sys
import tomllib
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from firmware_image.errors import FirmwareImageError

__all__ = ["APP_PACKAGES", "PLATFORM_PACKAGES", "MANIFEST_NAME", "build_payload", "read_manifest",
           "tree_digest", "MAIN_PY", "runtime_dependencies", "entry_points", "bytecode", "SOURCE_ONLY"]

APP_PACKAGES = ("terminal", "drivers", "flows", "emv", "firmware_image", "pos_errors")  # every product package
# Compiled or heavy libraries the terminal's Python must already have; the self-test refuses to run without them.
PLATFORM_PACKAGES = ("serial", "construct", "cryptography", "transitions", "iso8583")
MANIFEST_NAME = "pos_manifest.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)
# What the image's __main__ imports before its self-test has checked the bytecode's interpreter: stdlib only.
SOURCE_ONLY = frozenset({"firmware_image/__init__.py", "firmware_image/selftest.py"})
_SKIP_PARTS = {"__pycache__"}

MAIN_PY = '''"""Entry point of a pos-fw image: self-test (firmware_image.selftest), confirm when on trial, run."""
import sys
from firmware_image.selftest import main
sys.exit(main())
'''


def _files(root: Path, packages: Iterable[str]) -> list[tuple[str, Path]]:
    found = []
    for package in packages:
        base = root / package
        if not (base / "__init__.py").is_file():
            raise FirmwareImageError(f"package {package!r} not found under {root}: run pos-fw build from the tree")
        for path in base.rglob("*"):
            rel = path.relative_to(root)
            if path.is_file() and not _SKIP_PARTS & set(rel.parts) and path.suffix in {".py", ".toml", ".json"}:
                found.append((rel.as_posix(), path))
    return sorted(found)


def tree_digest(root: Path, packages: Iterable[str] = APP_PACKAGES) -> str:
    """SHA-256 over the packaged files' names and contents: identifies the source tree in the build info."""
    digest = hashlib.sha256()
    for name, path in _files(root, packages):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)")


def _pyproject(root: Path) -> dict[str, Any]:
    try:
        return dict(tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("project", {}))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FirmwareImageError(f"cannot read {root / 'pyproject.toml'}: {exc}; run pos-fw build from the tree",
                                 "usage") from exc


def _import_name(dist: importlib.metadata.Distribution, name: str) -> str:
    top = [line.strip() for line in (dist.read_text("top_level.txt") or "").splitlines()
           if line.strip() and not line.startswith("_")]
    if top:
        return top[0]
    roots = sorted({f.parts[0] for f in dist.files or [] if f.parts and f.parts[-1] == "__init__.py"
                    and len(f.parts) == 2 and not f.parts[0].startswith("_")})
    return roots[0] if roots else name.replace("-", "_")


def runtime_dependencies(root: Path) -> list[dict[str, str]]:
    """``[project] dependencies`` of ``root/pyproject.toml``: name, requirement, import name, installed version.

    Raises:
        FirmwareImageError: a dependency is not installed where the build runs (its version would be unknown).
    """
    out = []
    for requirement in _pyproject(root).get("dependencies", []):
        match = _REQUIREMENT.match(requirement)
        if not match:
            raise FirmwareImageError(f"dependency {requirement!r} in pyproject.toml is not understood", "usage")
        name, spec = match.group(1), match.group(2).strip()
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise FirmwareImageError(f"dependency {name} is not installed here: install the project "
                                     "(pip install -e .) before building", "usage") from exc
        out.append({"name": name, "spec": spec, "version": dist.version, "import": _import_name(dist, name)})
    return out


def entry_points(root: Path, packages: Iterable[str]) -> list[str]:
    """The ``[project.scripts]`` targets inside the packaged packages (``terminal.cli:main``, …)."""
    packaged = set(packages)
    return sorted(t for t in _pyproject(root).get("scripts", {}).values() if t.split(".")[0] in packaged)


def bytecode(name: str, source: bytes) -> bytes:
    """``source`` (the module file ``name`` in the image) compiled to the bytes of an unchecked-hash ``.pyc``:
    magic number, flags 1 (hash-based, source not checked), the source's hash, the marshalled code (PEP 552).

    Raises:
        FirmwareImageError: the source does not compile (nothing is built).
    """
    try:
        code = compile(source, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise FirmwareImageError(f"{name} does not compile: {exc}", "usage") from exc
    return (importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little") + importlib.util.source_hash(source)
            + marshal.dumps(code))


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_STORED
    archive.writestr(info, data)


def build_payload(root: Path, *, version: str, packages: Iterable[str] = APP_PACKAGES,
                  requires: Iterable[str] = PLATFORM_PACKAGES, extra: dict[str, bytes] | None = None,
                  dependencies: list[dict[str, str]] | None = None, compiled: bool = True) -> bytes:
    """The zipapp bytes: ``__main__.py``, the manifest, then every package file in name order, each module as
    its ``.pyc`` (but ``SOURCE_ONLY``) unless ``compiled`` is false.

    ``dependencies`` defaults to ``runtime_dependencies(root)`` (tests pass their own)."""
    packages = tuple(packages)
    files = _files(root, packages)
    manifest: dict[str, Any] = {"format": 1, "version": version, "packages": list(packages),
                                "requires": list(requires), "entry": "terminal.cli:main",
                                "tree_sha256": tree_digest(root, packages), "files": len(files),
                                "dependencies": runtime_dependencies(root) if dependencies is None else dependencies,
                                "entry_points": entry_points(root, packages)}
    if compiled:  # the interpreter the .pyc are for (firmware_image.selftest compares the magic number)
        manifest["bytecode"] = {"tag": sys.implementation.cache_tag, "magic": importlib.util.MAGIC_NUMBER.hex()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, "__main__.py", MAIN_PY.encode())
        _add(archive, MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True).encode())
        for name, path in files:
            data = path.read_bytes()
            if compiled and name.endswith(".py") and name not in SOURCE_ONLY:
                _add(archive, name + "c", bytecode(name, data))
            else:
                _add(archive, name, data)
        for name, data in sorted((extra or {}).items()):
            _add(archive, name, data)
    return buffer.getvalue()


def read_manifest(payload: bytes) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            return dict(json.loads(archive.read(MANIFEST_NAME)))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise FirmwareImageError(f"payload is not a pos-fw zipapp with a manifest: {exc}") from exc
