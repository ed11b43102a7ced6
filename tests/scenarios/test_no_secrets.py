"""After real scenarios, nothing the terminal wrote holds a full PAN, track data or a clear PIN.

Scanned: every log record of every logger (DEBUG and up), the journal database files (main, WAL) as bytes and
as a text dump, every printed receipt, and the acquirer's ledger. The wrong PIN is an unusual 8-digit one so a
hit cannot be a coincidence in an RRN or a timestamp.
"""

import functools
import logging
import sqlite3
from pathlib import Path

from sim.devices.cards import CATALOGUE
from sim.runner.scenario import Scenario, load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[2]
WRONG_PIN = "94726158"


def _wrong_then_right() -> Scenario:
    base = load_scenario(ROOT / "scenarios" / "wrong_pin_then_right.toml")
    steps = tuple({"pinpad": f"{WRONG_PIN} ENTER"} if s.get("pinpad") == "9999 ENTER" else s for s in base.steps)
    return Scenario(base.name, base.path, base.world, steps)


def test_no_pan_track_or_pin_anywhere(tmp_path):
    log_file = tmp_path / "all.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    artefacts: dict[str, bytes] = {}

    def collect(world, label):
        db = Path(world.services.journal.path)
        for suffix in ("", "-wal"):
            f = Path(str(db) + suffix)
            if f.exists():
                artefacts[f"{label}: {f.name}"] = f.read_bytes()
        conn = sqlite3.connect(db)
        artefacts[f"{label}: journal dump"] = "\n".join(conn.iterdump()).encode()
        conn.close()
        artefacts[f"{label}: receipts"] = "\n".join("\n".join(r) for r in world.printer.receipts).encode()
        artefacts[f"{label}: acquirer ledger"] = repr(world.acquirer.ledger).encode()

    try:
        for label, scenario in (("happy", load_scenario(ROOT / "scenarios" / "happy_path.toml")),
                                ("wrong PIN", _wrong_then_right())):
            result = run_scenario(scenario, inspect=functools.partial(collect, label=label))
            assert result.passed, result.message
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    artefacts["log"] = log_file.read_bytes()
    assert b"0200" in artefacts["log"], "logging was not captured, the scan would prove nothing"

    secrets = {f"PAN of {key}": card.pan.encode() for key, card in CATALOGUE.items()}
    secrets["wrong PIN"] = WRONG_PIN.encode()
    for where, blob in artefacts.items():
        for what, secret in secrets.items():
            assert secret not in blob, f"{what} found in {where}"
    masked = b"621234******1232"  # what may be kept, and proof that the scan looked at real content
    assert masked in artefacts["happy: journal dump"] and masked in artefacts["happy: receipts"]
