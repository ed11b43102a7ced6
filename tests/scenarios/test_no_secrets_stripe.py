"""Swipes carry the whole track 2: after the magstripe scenarios no log record, journal file, receipt or ledger
holds a stripe card's full PAN or any piece of its tracks (see test_no_secrets.py for the chip scenarios)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from sim.devices.stripes import STRIPE_CARDS, tracks_of
from sim.runner.scenario import load_scenario, run_scenario
from sim.runner.world import SimWorld

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.scenario
@pytest.mark.parametrize("name", ["magstripe_fallback", "magstripe_no_fallback"])
def test_no_pan_or_track_data_after_swipes(tmp_path: Path, name: str) -> None:
    log_file = tmp_path / "all.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    blobs: dict[str, bytes] = {}

    def collect(world: SimWorld) -> None:
        db = Path(world.services.journal.path)
        for suffix in ("", "-wal"):
            if Path(str(db) + suffix).exists():
                blobs[f"journal{suffix}"] = Path(str(db) + suffix).read_bytes()
        conn = sqlite3.connect(db)
        blobs["journal dump"] = "\n".join(conn.iterdump()).encode()
        conn.close()
        blobs["receipts"] = "\n".join("\n".join(r) for r in world.printer.receipts).encode()
        blobs["acquirer ledger"] = repr(world.acquirer.ledger).encode()

    try:
        result = run_scenario(load_scenario(ROOT / "scenarios" / f"{name}.toml"), inspect=collect)
        assert result.passed, result.message
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    blobs["log"] = log_file.read_bytes()
    assert b"0200" in blobs["log"], "logging was not captured, the scan would prove nothing"
    secrets: dict[str, bytes] = {}
    for key, card in STRIPE_CARDS.items():
        track1, track2 = tracks_of(card.profile)
        secrets[f"PAN of {key}"] = card.profile.pan.encode()
        secrets[f"track 2 tail of {key}"] = track2.split(b"=")[1]
        secrets[f"track 1 name of {key}"] = track1.split(b"^")[1]
    for where, blob in blobs.items():
        for what, secret in secrets.items():
            assert secret not in blob, f"{what} found in {where}"
    assert b"622900******" in blobs["journal dump"] and b"622900******" in blobs["receipts"]
