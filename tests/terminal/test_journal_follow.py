"""Following the host's view of the counters (sign-on, echo) is one step of the journal: read, decide, write and
audit in one unit (``Journal.follow_counters``), so a STAN a sale takes meanwhile is never handed out again."""

from __future__ import annotations

import threading

from drivers.host.counters import HostView
from terminal.audit import AuditLog
from terminal.journal import Journal
from terminal.wiring import follow_host_view


def test_a_view_ahead_is_taken_and_audited_in_one_commit(tmp_path):
    commits: list[str] = []
    j = Journal(tmp_path / "journal.db", crash_point=commits.append)
    j.advance_counters(stan=10)
    commits.clear()
    follow_host_view(j, HostView(stan=50, batch=1, invoice=0))
    assert len(commits) == 1 and j.counters()["stan"] == 50
    assert [(e.action, e.detail) for e in AuditLog(j).recent(1)] == [("counters_from_host", "stan=000050")]
    follow_host_view(j, HostView(stan=50, batch=1, invoice=0))  # not behind any more: nothing read-then-written
    assert len(commits) == 1 and j.verify() is None


def test_stans_taken_between_the_look_and_the_write_are_not_handed_out_again(tmp_path):
    """The old two steps: the view (50) read as ahead of the journal (10); meanwhile a sale took STANs up to 55;
    then the counter was written back to 50, and the next sales reused 51…55, which the host refuses as replays.
    The decision is made again inside the unit, on the counters as they are then."""
    j = Journal(tmp_path / "journal.db")
    j.advance_counters(stan=10)
    looks: list[dict[str, int]] = []

    def ahead_of(counters: dict[str, int]) -> dict[str, int]:
        looks.append(dict(counters))
        if len(looks) == 1:  # between the first look and the unit: a sale on another thread takes its STANs
            sale = threading.Thread(target=lambda: j.advance_counters(stan=55))
            sale.start()
            sale.join()
        return {"stan": 50} if counters["stan"] < 50 else {}

    assert j.follow_counters(ahead_of) == {}
    assert [look["stan"] for look in looks] == [10, 55] and j.next_stan() == 56
