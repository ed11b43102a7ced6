"""The STAN (ISO 8583 field 11, 000001-999999) across its wrap, through the real mutual-TLS link to the simulated
acquirer and a real SQLite journal: 999999 is followed by 000001 (never 000000), and a journal restored from a
backup taken before the wrap follows the host's view (000001) although it is numerically smaller than its own
counter (999997) — "at least" kept 999997 and the next sale reused a STAN the host had that day (94)."""

from __future__ import annotations

from pathlib import Path

from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from terminal.journal import Journal
from tests.host.conftest import SECURE_TID, TODAY
from tests.host.test_host_view import _audit, acquirer, back_up, restore, sale, terminal_client

__all__ = ["acquirer"]  # the fixture, shared with test_host_view


def test_stan_wraps_to_000001_and_a_journal_restored_before_the_wrap_follows_the_host(
        tmp_path: Path, acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    path, backup = tmp_path / "term" / "journal.db", tmp_path / "backup"
    path.parent.mkdir()
    journal = Journal(path)
    journal.advance_counters(stan=999_995)  # a terminal near the end of the range
    client = terminal_client(acquirer, security, journal)
    client.sign_on()  # 999996
    assert sale(journal, client) == 999_997
    journal.close()
    back_up(path, backup)
    journal = Journal(path)
    client = terminal_client(acquirer, security, journal)
    client.sign_on()  # 999998
    assert [sale(journal, client) for _ in range(2)] == [999_999, 1]  # never 000000
    assert security.stan_seen(SECURE_TID, TODAY, 1) and not security.stan_seen(SECURE_TID, TODAY, 0)
    assert security.view_of(SECURE_TID).stan == 1  # type: ignore[union-attr]  # the host saw us wrap
    journal.close()

    restore(path, backup)  # the old copy, from before the wrap
    journal = Journal(path)
    assert journal.counters()["stan"] == 999_997
    client = terminal_client(acquirer, security, journal)
    client.sign_on()  # STAN 999998 (the host does not take it as newer than 000001); its view: 000001
    assert journal.counters()["stan"] == 1
    assert [e.action for e in _audit(journal)][-1] == "counters_from_host"
    assert sale(journal, client) == 2  # approved: not 999999, which the host had today (94)
    stans = [e.stan for e in acquirer.ledger]
    assert stans == [999_997, 999_999, 1, 2] and len(set(stans)) == len(stans)
    journal.close()


def test_a_journal_restored_half_the_stan_circle_back_keeps_its_own_counter(
        tmp_path: Path, acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    """A backup ≥ 500 000 STANs old: the host's view is half the circle or more away, which reads the same as a
    view far behind, so neither side can tell which went back. The terminal does not jump on an ambiguous view
    (its own first message moves the host's "last seen" anyway); it goes on from its journal. What it reuses the
    host saw ≥ 500 000 messages ago, outside a duplicate window; one the host still holds is answered 94: not
    processed, retried once under a fresh STAN, never reversed (test_host_view)."""
    path, backup = tmp_path / "term" / "journal.db", tmp_path / "backup"
    path.parent.mkdir()
    journal = Journal(path)
    client = terminal_client(acquirer, security, journal)
    client.sign_on()  # 1
    assert sale(journal, client) == 2
    journal.close()
    back_up(path, backup)
    journal = Journal(path)
    client = terminal_client(acquirer, security, journal)
    for later in (400_000, 700_000):  # 700 000 messages later, the host seeing them go by (an echo now and then)
        journal.advance_counters(stan=later)
        assert client.echo()
    assert security.view_of(SECURE_TID).stan == 700_001  # type: ignore[union-attr]
    assert sale(journal, client) == 700_002
    journal.close()

    restore(path, backup)
    journal = Journal(path)
    client = terminal_client(acquirer, security, journal)
    client.sign_on()  # STAN 3: the host takes it as newer (a wrap 300 000 on), its view follows
    assert journal.counters()["stan"] == 3  # its own counter: no jump on the ambiguous view
    assert not [e for e in _audit(journal) if e.action == "counters_from_host" and "stan=" in e.detail]
    assert sale(journal, client) == 4  # not one the host holds: approved
    assert [e.stan for e in acquirer.ledger] == [2, 700_002, 4]
    journal.close()
