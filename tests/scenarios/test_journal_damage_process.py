"""Issue 15, end to end through a real ``pos-terminal`` process, its ptys and the simulated acquirer: a journal
truncated to 0 bytes between two runs. The terminal used to start a fresh journal silently and send the next 0200
with a STAN the host had already approved; now it starts out of service with the finding on its console, keeps
the damaged file, and after a technician's audited recovery the next sale continues the STAN sequence.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sim.crash.drive import SCENARIOS, TerminalProcess, crash_world, drive

CARD = next(sc for sc in SCENARIOS if sc.name == "card_approve")


def test_a_truncated_journal_stops_the_terminal_and_no_stan_is_reused(tmp_path: Path) -> None:
    world, config = crash_world(tmp_path)
    journal = tmp_path / "journal.db"
    try:
        world.insert_card(CARD.card)
        world.pinpad.auto_pin = "1234"
        term = TerminalProcess(config, {})
        try:
            assert drive(term, CARD, world)
        finally:
            term.stop()
        first = {e.stan for e in world.acquirer.ledger}
        journal.write_bytes(b"")  # the card wore out, the file system lost it: 0 bytes
        again = TerminalProcess(config, {})
        try:
            assert again.wait("out_of_service", 30)
            assert again.wait_line("The journal file is empty (0 bytes)", 10)
            assert again.wait_line("Kept for the technician", 5)
            again.keys("F4 01 ENTER 1111 ENTER")  # a cashier cannot take it back into service
            assert again.wait_line("Technician login only", 10)
            again.keys("CANCEL F4 80 ENTER 8888 ENTER F1")
            world.insert_card(CARD.card)  # drive() waits for the login screen the recovery leads to
            assert drive(again, CARD, world)
        finally:
            again.stop()
        second = {e.stan for e in world.acquirer.ledger} - first
        assert second and not second & first and min(second) > max(first)  # the host never saw a STAN twice
        assert list(tmp_path.glob("journal.db.damaged-*"))  # kept for the technician
        with sqlite3.connect(journal) as db:
            actions = [a for (a,) in db.execute("SELECT action FROM audit ORDER BY audit_id")]
        assert "journal_damaged" in actions and "journal_recovery" in actions and "refused" in actions
    finally:
        world.stop()
