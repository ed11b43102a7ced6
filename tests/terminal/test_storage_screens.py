"""Issue 15 items 1, 3 and 4 on the terminal's screens: out of service with the damage in the cashier's language
and an audited, technician-only recovery; a journal write that fails mid-sale is never a blank result, stops new
sales until a write succeeds again; the self-test never shows a Python error text.

The core runs as in tests/terminal/test_core.py (events in, commands out) over a real SQLite journal file; the
work the core asks for runs for real (``_run``).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from flows.ports import SimInfo
from terminal.config import Settings
from terminal.core import Audit, KeyPressed, Started, StartWork, TerminalCore, Tick, WorkDone
from terminal.handlers import HANDLERS
from terminal.journal import Journal, JournalError
from terminal.machine import State
from terminal.screens import Key
from terminal.users import UserStore
from terminal.users_hash import hash_password
from terminal.work import refuse_new_sale

sys.path.insert(0, str(Path(__file__).parent))
from test_core import ICCID, FakeCarrier, _run  # noqa: E402


class Till:
    def __init__(self, journal: Journal) -> None:
        users = UserStore(journal)
        users.ensure("01", "Li", "cashier", hash_password("1111", n=2**10))
        users.ensure("80", "Wang", "technician", hash_password("8888", n=2**10))
        sim = SimInfo(ICCID, "1064800000017", "active", "IoT", 500, 100, "2027-01-01")
        self.services: Any = SimpleNamespace(settings=Settings.from_dict({"terminal": {"id": "T0000001"}}),
                                             journal=journal, users=users, carrier=FakeCarrier(sim), audit=None,
                                             settings_store=None, wallet_topup=None)
        self.core = TerminalCore(self.services, HANDLERS)
        self.commands: list[Any] = []

    def feed(self, event: Any) -> list[Any]:
        out = self.core.handle(event, 100.0)
        self.commands += out
        return out

    def keys(self, text: str) -> None:
        for word in text.split():
            for key in ([word] if word in Key.__members__ else list(word)):
                self.feed(KeyPressed(Key[key] if key in Key.__members__ else Key(key)))

    def boot(self, *, healthy: bool = False) -> None:
        work = next(c for c in self.feed(Started()) if isinstance(c, StartWork))
        if healthy:  # no devices here: the self-test's answer as the shell would bring it
            self.feed(WorkDone(work.ticket, (True, (), ())))
        else:
            self.finish(work)

    def finish(self, work: StartWork) -> None:
        try:
            self.feed(WorkDone(work.ticket, _run(self.services, work)))
        except Exception as exc:  # noqa: BLE001 - as the shell: the error goes back to the core
            self.feed(WorkDone(work.ticket, None, exc))

    def last_work(self, kind: str) -> StartWork:
        return [c for c in self.commands if isinstance(c, StartWork) and c.kind == kind][-1]

    def text(self) -> str:
        screen = self.core.screen
        return "\n".join([screen.title, *screen.lines, screen.error or "", screen.hint])


def _damaged(tmp_path: Path) -> Journal:
    path = tmp_path / "journal.db"
    Journal(path).close()
    path.write_bytes(b"")
    return Journal(path)


def test_a_damaged_journal_keeps_the_terminal_out_of_service_until_a_technician_accepts(tmp_path):
    till = Till(_damaged(tmp_path))
    till.boot()
    assert till.core.state is State.OUT_OF_SERVICE
    text = till.text()
    assert "The journal file is empty (0 bytes)" in text and "流水库文件为空" in text
    assert "Sales are stopped" in text and "journal.db.damaged-" in text and "F4 technician recovery" in text
    till.keys("ENTER")  # retrying changes nothing
    till.finish(till.last_work("boot"))
    assert till.core.state is State.OUT_OF_SERVICE
    till.keys("F4 01 ENTER 1111 ENTER")  # a cashier may not
    assert "Technician login only" in till.text() and Audit("01", "refused", "journal_recovery") in till.commands
    till.keys("CANCEL F4 80 ENTER 8888 ENTER")
    assert "F1 accept the journal" in till.text()
    till.keys("F1")
    assert till.services.journal.damage is None  # accepted: the next boot runs the self-test and recovery
    till.feed(WorkDone(till.last_work("boot").ticket, (True, (), ())))
    assert till.core.state is State.LOGIN
    recovery = till.services.journal.audit_rows(5, "journal_recovery")
    assert recovery and recovery[0][2] == "80" and "accepted empty" in recovery[0][4]


def _sale_whose_journal_write_fails(journal: Journal) -> Till:
    """A cashier's card sale under way when the storage starts refusing writes (as a full disk does): the flow
    ends with the journal's error."""
    till = Till(journal)
    till.boot(healthy=True)
    till.keys("01 ENTER 1111 ENTER 1")
    till.keys(f"{ICCID} ENTER")
    till.finish(till.last_work("lookup"))
    till.keys(f"ENTER 1 1 {ICCID[-4:]} ENTER")
    payment = till.last_work("payment")
    journal._db.execute("PRAGMA query_only = ON")
    with pytest.raises(JournalError) as failed:
        journal.begin(order_id="O1", iccid=ICCID, msisdn="1064800000017", plan_id="P", plan_name="p",
                      amount_minor=1, fee_minor=0, channel="card", cashier_id="01")
    till.feed(WorkDone(payment.ticket, None, failed.value))
    return till


def test_a_journal_write_failing_mid_sale_is_never_a_blank_result_and_stops_sales(tmp_path):
    journal = Journal(tmp_path / "journal.db")
    till = _sale_whose_journal_write_fails(journal)
    assert till.core.state is State.RESULT
    text = till.text()
    assert "could not be written (storage full or faulty): sales are stopped" in text
    assert "reversed automatically once the journal can be written again" in text
    refused = refuse_new_sale(till.services)
    assert refused is not None and refused.message.key == "journal.write_failed"
    journal._db.execute("PRAGMA query_only = OFF")  # space is back: the probe write succeeds, sales resume
    assert refuse_new_sale(till.services) is None and journal.write_error is None


def test_the_self_test_never_shows_a_python_error_text(tmp_path):
    till = Till(Journal(tmp_path / "journal.db"))
    work = next(c for c in till.feed(Started()) if isinstance(c, StartWork))
    till.feed(WorkDone(work.ticket, None, UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")))
    assert till.core.state is State.OUT_OF_SERVICE
    assert "codec" not in till.text() and "Self-test could not finish (UnicodeDecodeError)" in till.text()


def test_the_home_screen_warns_of_a_failing_journal_at_once_and_stops_when_it_works_again(tmp_path):
    """Issue 15 item 3: the warning follows the failed write itself, not the next background check (none runs
    here), and goes as soon as a write succeeds again."""
    journal = Journal(tmp_path / "journal.db")
    till = _sale_whose_journal_write_fails(journal)
    till.keys("CANCEL")  # back home from the result
    assert till.core.state is State.HOME
    assert not any(isinstance(c, StartWork) and c.kind == "health" for c in till.commands), "no check ran"
    text = till.text()
    assert "Device check found 1 problem(s)" in text and "Journal: writes fail:" in text and "流水库" in text
    journal._db.execute("PRAGMA query_only = OFF")
    assert refuse_new_sale(till.services) is None  # the probe write succeeds: the next event clears the warning
    till.feed(Tick())
    assert "Journal: writes fail" not in till.text() and "Device check found" not in till.text()


def test_the_duplicate_guard_names_a_damaged_row_of_the_same_sim_to_the_cashier(tmp_path):
    """Issue 15 item 4: a row of this SIM inside the window that cannot be decoded may be an earlier payment; the
    guard cannot read it, so the warning screen names it (F1 to pay anyway, audited) instead of staying silent."""
    journal = Journal(tmp_path / "journal.db")
    earlier = journal.begin(order_id="O1", iccid=ICCID, msisdn="1064800000017", plan_id="P", plan_name="p",
                            amount_minor=999, fee_minor=0, channel="card", cashier_id="01")
    other = journal.begin(order_id="O2", iccid="89860000000000000000", msisdn="1064800000099", plan_id="P",
                          plan_name="p", amount_minor=999, fee_minor=0, channel="card", cashier_id="01")
    assert journal.verify() is None  # commits the rows riding along (grouped commits) before the damage below
    with sqlite3.connect(tmp_path / "journal.db") as db:  # one undecodable byte in each row
        db.execute("UPDATE txn SET plan_name = CAST(x'ff41' AS TEXT) WHERE txn_id IN (?, ?)", (earlier, other))
    till = Till(journal)
    till.boot(healthy=True)
    till.keys("01 ENTER 1111 ENTER 1")
    till.keys(f"{ICCID} ENTER")
    till.finish(till.last_work("lookup"))
    till.keys(f"ENTER 1 1 {ICCID[-4:]} ENTER")
    assert till.core.state is State.DUPLICATE_WARNING
    text = till.text()
    assert f"could not be checked: txn {earlier} — it may be an earlier payment" in text
    assert f"txn {other}" not in text and f"无法核对：txn {earlier}" in text  # another SIM's row is not this sale's
    assert not [c for c in till.commands if isinstance(c, StartWork) and c.kind == "payment"]
    till.keys("F1")
    assert Audit("01", "duplicate_unchecked", f"skipped txn {earlier}") in till.commands
    assert till.last_work("payment")
