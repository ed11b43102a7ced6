"""After tap scenarios (online PIN, offline approval with its queued advice, a torn Mastercard tap), nothing the
terminal wrote holds a full PAN, as digits or as the card's BCD bytes: logs of every logger at DEBUG, the journal
files and their dump, the receipts and the acquirer's ledger (field 55 as received). The clear PIN is covered by
test_no_secrets.py (an unusual PIN typed on the same PIN pad path)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from sim.devices.cards import CATALOGUE
from sim.runner.scenario import load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[2] / "scenarios" / "contactless"


def test_no_pan_or_pin_after_taps(tmp_path: Path) -> None:
    log_file = tmp_path / "all.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    artefacts: dict[str, bytes] = {}

    def collect(world: Any, label: str) -> None:
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
        for name in ("over_cvm_limit_online_pin", "quickpass_credit", "mastercard_torn"):
            result = run_scenario(load_scenario(ROOT / f"{name}.toml"),
                                  inspect=lambda world, label=name: collect(world, label))
            assert result.passed, result.message
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    artefacts["log"] = log_file.read_bytes()
    assert b"0200" in artefacts["log"], "logging was not captured, the scan would prove nothing"
    secrets: dict[str, bytes] = {}
    for key, card in CATALOGUE.items():
        secrets[f"PAN of {key}"] = card.pan.encode()
        secrets[f"BCD PAN of {key}"] = bytes.fromhex(card.pan + ("F" if len(card.pan) % 2 else ""))
    for where, blob in artefacts.items():
        for what, secret in secrets.items():
            assert secret not in blob, f"{what} found in {where}"
    assert b"621234******1232" in artefacts["over_cvm_limit_online_pin: receipts"]
    assert b"9F34" in artefacts["over_cvm_limit_online_pin: acquirer ledger"]  # the ledger scan saw field 55
