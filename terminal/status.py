"""``pos-terminal --config FILE --status [--json]``: what a technician asks a terminal before touching it.

The last boot's self-test (from the audit log), the journal's health — open transactions, sales given back whose
top-up may still be on the SIM (``flows.topup_back.given_back_unknown``: the follow-up still has to ask the carrier
and take it back), the advice (SAF) queue, the last settlement, schema version (and the oldest schema that can read
and write the journal: ``terminal.journal_open``), integrity — and the versions of this build. It reads the journal the
running terminal uses (SQLite in WAL mode lets it read beside the writer) and changes nothing in it.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from flows.money import format_money as yuan
from flows.saf import SafStatus
from flows.topup_back import GIVEN_BACK_OPEN
from terminal.config import Settings
from terminal.device_secret import journal_chain_key
from terminal.journal import Journal
from terminal.journal_open import schema_level

__all__ = ["collect", "render"]


def collect(settings: Settings) -> dict[str, Any]:
    versions = {"iotsim-pos": _version("iotsim-pos"), "python": platform.python_version(),
                "sqlite": __import__("sqlite3").sqlite_version}
    path = Path(settings.terminal.journal)
    status: dict[str, Any] = {"terminal_id": settings.terminal.id, "journal": str(path), "versions": versions}
    if not path.is_file() or path.stat().st_size == 0:
        status["problem"] = f"no journal at {path}: this terminal has not run yet, or its journal is gone"
        return status
    journal = Journal(path, read_only=True, chain_key=journal_chain_key(settings))
    try:
        open_items = journal.open_transactions()
        given_back = journal.given_back_with_topup(GIVEN_BACK_OPEN)  # top-up maybe still on the SIM
        schema, writable_from = schema_level(journal)
        queue = journal.saf_items((SafStatus.QUEUED,))
        failed = journal.saf_items((SafStatus.FAILED,))  # the bank never took them: a supervisor follows them up
        batch = journal.last_closed_batch()
        boots = journal.audit_rows(1, "self_test")
        status.update(
            schema_version=schema, schema_writable_from=writable_from, integrity_ok=journal.check_integrity(),
            open_transactions=[{"txn_id": r.txn_id, "state": r.state, "order_id": r.order_id,
                                "amount": yuan(r.amount_minor + r.fee_minor)} for r in open_items],
            given_back_open=[{"txn_id": r.txn_id, "state": r.state, "order_id": r.order_id,
                              "amount": yuan(r.amount_minor + r.fee_minor), "topup": r.topup_status}
                             for r in given_back],
            saf_queue_depth=len(queue), open_batch=journal.current_batch(),
            saf_failed=[{"stan": f"{r.stan:06d}", "amount": yuan(r.amount_minor), "pan": r.masked_pan,
                         "tries": r.attempts} for r in failed],
            last_settlement=None if batch is None else {"batch": batch[0], "closed_at": batch[1],
                                                        "sales": batch[2], "amount": yuan(batch[3]),
                                                        "uploaded": batch[4]},
            last_self_test=None if not boots else {"at": boots[0][1], "result": boots[0][4]})
    finally:
        journal.close()
    return status


def render(status: dict[str, Any], as_json: bool = False) -> str:
    if as_json:
        return json.dumps(status, ensure_ascii=False, indent=2)
    lines = [f"terminal {status['terminal_id']}  journal {status['journal']}",
             "versions: " + ", ".join(f"{k} {v}" for k, v in status["versions"].items())]
    if "problem" in status:
        return "\n".join([*lines, status["problem"]])
    test = status["last_self_test"]
    batch = status["last_settlement"]
    lines += [f"last self-test: {'none recorded' if test is None else test['at'] + '  ' + test['result']}",
              f"journal: schema {status['schema_version']} (a build of schema {status['schema_writable_from']} or"
              f" later reads and writes it), integrity {'ok' if status['integrity_ok'] else 'BROKEN'}",
              f"open transactions: {len(status['open_transactions'])}"]
    lines += [f"  #{t['txn_id']} {t['state']} {t['order_id']} {t['amount']}" for t in status["open_transactions"]]
    lines += [f"given back, top-up maybe still on the SIM (the follow-up asks the carrier): "
              f"{len(status['given_back_open'])}"]
    lines += [f"  #{t['txn_id']} {t['state']} {t['order_id']} {t['amount']} top-up {t['topup']}"
              for t in status["given_back_open"]]
    lines += [f"advice queue (SAF): {status['saf_queue_depth']}",
              f"advices not taken by the bank (failed, for a supervisor): {len(status['saf_failed'])}",
              *(f"  stan {a['stan']} {a['amount']} card {a['pan']}, {a['tries']} tries" for a in status["saf_failed"]),
              f"open batch: {status['open_batch']}",
              "last settlement: none" if batch is None else
              f"last settlement: batch {batch['batch']} at {batch['closed_at']}, {batch['sales']} sale(s) "
              f"{batch['amount']}, {'uploaded' if batch['uploaded'] else 'NOT uploaded'}"]
    return "\n".join(lines)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
