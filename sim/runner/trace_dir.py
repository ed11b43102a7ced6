"""``pos-sim --headless --trace-dir DIR``: every scenario's artefacts kept in ``DIR/<scenario>/``.

Kept: the world's work directory itself (journal with -wal/-shm, carrier secret, flash, keys, TLS files), the
masked serial traces of reader, PIN pad, printer and scanner (``trace-<device>.txt``: ``spy://`` on every
device), the card-session transcripts (``transcripts/``), the log of the run (``terminal.log``, every logger at
DEBUG) and the printed receipts (``receipts.txt``). ``tests/scenarios/test_leak_scan.py`` scans such a directory
for PANs, track data and PIN blocks, and for files others could read.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     scenario_dir(Path(tmp), Path("scenarios/cards/sda_good.toml")).name
'cards-sda_good'
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from terminal.secret_file import create_private, private_dir

__all__ = ["scenario_dir", "run_log", "keep_receipts", "private_tree"]


def scenario_dir(trace_dir: Path, scenario_path: Path) -> Path:
    """``DIR/<parent>-<stem>`` for scenarios in a sub-folder (cards/…), ``DIR/<stem>`` otherwise; emptied first,
    so a run starts from a fresh world even when DIR was used before."""
    parent = scenario_path.parent.name
    name = scenario_path.stem if parent in ("scenarios", "") else f"{parent}-{scenario_path.stem}"
    folder = private_dir(trace_dir) / name
    shutil.rmtree(folder, ignore_errors=True)
    return private_dir(folder)


@contextlib.contextmanager
def run_log(workdir: Path | None) -> Iterator[None]:
    """While a scenario runs, every log record (DEBUG and up) also goes to ``workdir/terminal.log`` (0600)."""
    if workdir is None:
        yield
        return
    handler = logging.FileHandler(create_private(workdir / "terminal.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def keep_receipts(world: Any, workdir: Path | None) -> None:
    """The printed receipts of the run, as the printer decoded them, in ``workdir/receipts.txt`` (0600)."""
    if workdir is None:
        return
    path = create_private(workdir / "receipts.txt")
    path.write_text("\n\n".join("\n".join(r) for r in world.printer.receipts), encoding="utf-8")


def private_tree(root: Path) -> None:
    """The simulator's own files in a world's work directory (test CAs, certificates, public keys) made owner-only
    before the terminal starts, so a scan of the directory judges the terminal's files by what the terminal did."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o700 if path.is_dir() else 0o600)
