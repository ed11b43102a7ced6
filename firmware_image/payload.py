"""The image payload: the terminal application as a reproducible zipapp of the pure-Python packages + a manifest.

Members are sorted, dated 1980-01-01, mode 0644 and stored uncompressed: the same tree gives the same bytes, and
the flashing link's per-block deflate compresses the sources far better than a zip of separately deflated files.
``__main__.py`` runs the self-test (the manifest's required platform packages are importable, every packaged
module imports), confirms the running slot when the launcher says it is on trial, then starts the terminal.

>>> blob = build_payload(Path(__file__).resolve().parent.parent, version="1.0.0", packages=("firmware_image",))
>>> read_manifest(blob)["version"]
'1.0.0'
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from firmware_image.errors import FirmwareImageError

__all__ = ["APP_PACKAGES", "PLATFORM_PACKAGES", "MANIFEST_NAME", "build_payload", "read_manifest",
           "tree_digest", "MAIN_PY"]

APP_PACKAGES = ("terminal", "drivers", "flows", "emv", "firmware_image", "pos_errors")  # every product package
# Compiled or heavy libraries the terminal's Python must already have; the self-test refuses to run without them.
PLATFORM_PACKAGES = ("serial", "construct", "cryptography", "transitions", "iso8583")
MANIFEST_NAME = "pos_manifest.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_PARTS = {"__pycache__"}

MAIN_PY = '''"""Entry point of a pos-fw image: self-test, confirm when on trial, then run the terminal."""
import importlib, json, os, pkgutil, sys, zipfile

def self_test():
    manifest = json.loads(zipfile.ZipFile(os.path.dirname(__file__)).read("pos_manifest.json"))
    for name in manifest["requires"]:
        importlib.import_module(name)
    for package in manifest["packages"]:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            if not info.name.endswith(("__main__", ".cli", ".tui")):
                importlib.import_module(info.name)
    return manifest

try:
    manifest = self_test()
except Exception as exc:  # any failure means: do not confirm; the launcher reverts at the next boot
    print("self-test FAILED: " + type(exc).__name__ + ": " + str(exc), file=sys.stderr, flush=True)
    sys.exit(3)
if os.environ.get("POS_FW_TRIAL") == "1":
    from firmware_image.slots import confirm
    confirm(os.environ["POS_FW_FLASH"])
    print("self-test passed: image " + manifest["version"] + " confirmed", flush=True)
if os.environ.get("POS_FW_SELFTEST_ONLY") != "1":
    from terminal.cli import main
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


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_STORED
    archive.writestr(info, data)


def build_payload(root: Path, *, version: str, packages: Iterable[str] = APP_PACKAGES,
                  requires: Iterable[str] = PLATFORM_PACKAGES, extra: dict[str, bytes] | None = None) -> bytes:
    """The zipapp bytes: ``__main__.py``, the manifest, then every package file in name order."""
    packages = tuple(packages)
    files = _files(root, packages)
    manifest: dict[str, Any] = {"format": 1, "version": version, "packages": list(packages),
                                "requires": list(requires), "entry": "terminal.cli:main",
                                "tree_sha256": tree_digest(root, packages), "files": len(files)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, "__main__.py", MAIN_PY.encode())
        _add(archive, MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True).encode())
        for name, path in files:
            _add(archive, name, path.read_bytes())
        for name, data in sorted((extra or {}).items()):
            _add(archive, name, data)
    return buffer.getvalue()


def read_manifest(payload: bytes) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            return dict(json.loads(archive.read(MANIFEST_NAME)))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise FirmwareImageError(f"payload is not a pos-fw zipapp with a manifest: {exc}") from exc
