"""After the customer-presented wallet scenario, no payment code (a bearer token) nor an EMV QR code's
application PAN is in the logs, the journal files or the receipts — only first 6 / last 4."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from emv.qr import parse_cpm
from flows.wallet_payment import flatten_cpm, masked_code
from sim.runner.scenario import load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_codes_never_leak(tmp_path: Path) -> None:
    log_file = tmp_path / "all.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    blobs: dict[str, bytes] = {}
    codes: list[str] = []

    def collect(world) -> None:  # type: ignore[no-untyped-def]
        db = Path(world.services.journal.path)
        for suffix in ("", "-wal"):
            if Path(str(db) + suffix).exists():
                blobs[db.name + suffix] = Path(str(db) + suffix).read_bytes()
        conn = sqlite3.connect(db)
        blobs["dump"] = "\n".join(conn.iterdump()).encode()
        conn.close()
        blobs["receipts"] = "\n".join("\n".join(r) for r in world.printer.receipts).encode()
        codes.extend(world.scanner.sent)

    try:
        result = run_scenario(load_scenario(ROOT / "scenarios" / "wallet_customer_presented.toml"), inspect=collect)
        assert result.passed, result.message
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    blobs["log"] = log_file.read_bytes()
    assert b"state scan_code" in blobs["log"], "logging was not captured, the scan would prove nothing"
    payment_codes = [c for c in codes if not c.startswith("https:")]
    assert len(payment_codes) == 4
    secrets = [c.encode() for c in payment_codes]
    cpm = [c for c in payment_codes if not c.isdigit()]
    secrets += [o.value.hex().encode() for c in cpm for o in flatten_cpm(parse_cpm(c)) if o.tag == 0x5A]
    for where, blob in blobs.items():
        for secret in secrets:
            assert secret not in blob, f"a payment code or PAN found in {where}"
    for code in payment_codes[1:]:  # the wrong-wallet code was refused before the journal
        assert masked_code(code).encode() in blobs["dump"]
