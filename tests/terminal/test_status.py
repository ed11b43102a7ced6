"""Issue 18: ``pos-terminal --status`` tells a technician the terminal's state without changing it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from flows.ports import BatchTotals
from terminal.audit import AuditLog
from terminal.journal import Journal


def _status(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "terminal.cli", "--config", str(config), "--status", *extra],
                          capture_output=True, text=True, timeout=60, check=False)


def _config(tmp_path: Path, journal: Path) -> Path:
    config = tmp_path / "t.toml"
    config.write_text(f'[terminal]\nid = "T0000042"\njournal = "{journal}"\n', encoding="utf-8")
    return config


def test_status_reports_open_items_queue_settlement_and_the_last_self_test(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    txn = journal.begin(order_id="O1", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                        plan_name="Plan", amount_minor=3000, fee_minor=18, channel="card", cashier_id="01")
    journal.update(txn, "auth_intended")
    journal.close_batch(BatchTotals(batch=1, sale_count=2, sale_minor=6000, void_count=0, void_minor=0),
                        uploaded=True, report="r")
    AuditLog(journal).record("-", "self_test", "Printer: paper out → load a new paper roll")
    journal.close()
    before = path.read_bytes()

    run = _status(_config(tmp_path, path), "--json")
    assert run.returncode == 0, run.stderr
    status = json.loads(run.stdout)
    assert status["terminal_id"] == "T0000042" and status["integrity_ok"] is True
    assert status["open_transactions"] == [{"txn_id": txn, "state": "auth_intended", "order_id": "O1",
                                            "amount": "￥30.18"}]
    assert status["saf_queue_depth"] == 0 and status["open_batch"] == 2
    assert status["last_settlement"]["batch"] == 1 and status["last_settlement"]["amount"] == "￥60.00"
    assert status["last_self_test"]["result"] == "Printer: paper out → load a new paper roll"
    assert set(status["versions"]) == {"iotsim-pos", "python", "sqlite"}
    text = _status(_config(tmp_path, path)).stdout
    assert "open transactions: 1" in text and "last settlement: batch 1" in text and "uploaded" in text
    assert path.read_bytes() == before  # nothing written


def test_status_without_a_journal_says_so_and_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "var" / "journal.db"
    run = _status(_config(tmp_path, missing))
    assert run.returncode == 0
    assert f"no journal at {missing}" in run.stdout
    assert not missing.exists()


def test_status_names_each_advice_the_bank_never_took_without_its_pan(tmp_path: Path) -> None:
    import datetime as dt

    from flows.ports import AuthRequest
    from flows.saf import PanSealer, offline_row

    path = tmp_path / "journal.db"
    journal = Journal(path)
    txn = journal.begin(order_id="O1", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                        plan_name="Plan", amount_minor=1500, fee_minor=0, channel="card", cashier_id="01")
    request = AuthRequest(journal.next_stan(), 1500, dt.datetime(2026, 12, 1, 10, 0), pan="6217000000000078",
                          expiry_yymm="3012", icc_data=b"")
    saf_id = journal.saf_offline_approved(txn, offline_row(request, PanSealer(b"k" * 32, "T0000042")))
    journal.saf_update(saf_id, "failed", tries=10, message="10 tries, last: not acknowledged: the bank answered 96")
    journal.close()

    status = json.loads(_status(_config(tmp_path, path), "--json").stdout)
    assert status["saf_queue_depth"] == 0
    assert status["saf_failed"] == [{"stan": f"{request.stan:06d}", "amount": "￥15.00", "pan": "621700******0078",
                                     "tries": 10}]
    text = _status(_config(tmp_path, path)).stdout
    assert "advices not taken by the bank (failed, for a supervisor): 1" in text
    assert f"stan {request.stan:06d} ￥15.00 card 621700******0078, 10 tries" in text
    assert "6217000000000078" not in text


def test_status_lists_sales_given_back_whose_top_up_may_still_be_on_the_sim(tmp_path: Path) -> None:
    """Voided / refunded "anyway" while the carrier was unreachable (``reverse_unknown``), or whose late reversal
    is written but unanswered (``reversing_late``): the follow-up still has to take the top-up back."""
    from flows.txn_state import path_to

    path = tmp_path / "journal.db"
    journal = Journal(path)
    rows = {}
    for order, end, word in (("O1", "voided", "reverse_unknown"), ("O2", "refunded", "reversing_late#1"),
                             ("O3", "voided", "reversed"), ("O4", "completed", "reverse_unknown")):
        txn = journal.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                            plan_name="Plan", amount_minor=3000, fee_minor=18, channel="card", cashier_id="01")
        for step in path_to(end):
            journal.update(txn, step)
        journal.update(txn, end, topup_status=word)
        rows[order] = txn
    journal.close()
    before = path.read_bytes()
    status = json.loads(_status(_config(tmp_path, path), "--json").stdout)
    assert status["given_back_open"] == [
        {"txn_id": rows["O1"], "state": "voided", "order_id": "O1", "amount": "￥30.18", "topup": "reverse_unknown"},
        {"txn_id": rows["O2"], "state": "refunded", "order_id": "O2", "amount": "￥30.18",
         "topup": "reversing_late#1"}]
    assert status["schema_version"] == 7 and status["schema_writable_from"] == 7
    text = _status(_config(tmp_path, path)).stdout
    assert "top-up maybe still on the SIM (the follow-up asks the carrier): 2" in text
    assert f"#{rows['O2']} refunded O2 ￥30.18 top-up reversing_late#1" in text and " O3 " not in text
    assert path.read_bytes() == before  # nothing written
