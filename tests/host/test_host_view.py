"""Counters that never go back (issue 15 item 2), through the real mutual-TLS link to the simulated acquirer and
a real SQLite journal: the host gives its view of our last STAN, batch and invoice in the 0810 (field 61), the
terminal continues above it; a purchase under a STAN the host already has (94) is not reversed but retried once
under a fresh STAN; a reversal quoting a reused STAN never undoes the older sale that had it."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from drivers.host import HostClient
from drivers.host.counters import HostView, behind, encode_view, is_ahead, parse_view
from drivers.host.tls import client_context
from drivers.host.tmk import load_tmk
from flows.authorize import authorize_journaled
from flows.ports import AuthRequest, ReversalRequest
from pos_errors import LinkFault, RemoteProtocolError
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from terminal.audit import AuditEntry, AuditLog
from terminal.journal import Journal
from terminal.wiring import follow_host_view
from tests.host.conftest import GOOD, SECURE_TID, TODAY, icc_data, started

TID = SECURE_TID
_atc = itertools.count(100)
_minute = itertools.count(1)


@pytest.fixture
def acquirer(security: AcquirerSecurity) -> Iterator[AcquirerSim]:
    yield from started(security)


def terminal_client(sim: AcquirerSim, sec: AcquirerSecurity, journal: Journal, *, follow: bool = True) -> HostClient:
    """What the composition root builds: STANs from the journal, the host's view advancing the journal."""
    host, port = sim.address
    client = HostClient(host, port, timeout_s=2.0, connect_timeout_s=1.0, terminal_id=TID,
                        merchant_id="M00000000000001", server_name="localhost",
                        tls=client_context(sec.ca.ca_file, sec.client_cert, sec.client_key),
                        tmk=load_tmk(sec.tmk_file, sec.tmk_kbpk_file), next_stan=journal.next_stan,
                        batch_number=journal.current_batch())
    if follow:
        client.on_host_view = partial(follow_host_view, journal)
    return client


def request(stan: int, amount: int = 1250) -> AuthRequest:
    local = dt.datetime.combine(TODAY, dt.time(10, 0)) + dt.timedelta(minutes=next(_minute))  # each sale its time
    return AuthRequest(stan=stan, amount_minor=amount, local_time=local, pan=GOOD.pan, expiry_yymm=GOOD.expiry[:4],
                       pan_sequence=GOOD.psn, icc_data=icc_data(GOOD, amount, atc=next(_atc)))


def sale(journal: Journal, client: HostClient, amount: int = 1250) -> int:
    """One approved purchase under the journal's next STAN; returns the STAN."""
    stan = journal.next_stan()
    assert client.authorize(request(stan, amount)).approved
    return stan


def begin(journal: Journal, amount: int = 1250) -> int:
    return journal.begin(order_id=f"O{next(_atc)}", iccid="8986000000000000001", msisdn="1440000000001",
                         plan_id="m1", plan_name="monthly", amount_minor=amount, fee_minor=0, channel="card",
                         cashier_id="001")


def back_up(path: Path, backup: Path) -> None:
    """The technician copies the whole journal (database and high-water record together) into ``backup``."""
    backup.mkdir()
    for f in path.parent.glob(path.name + "*"):
        shutil.copy2(f, backup / f.name)


def restore(path: Path, backup: Path) -> None:
    """The technician puts back an old copy of the whole journal (database and high-water record together)."""
    for old in path.parent.glob(path.name + "*"):
        old.unlink()
    for kept in backup.iterdir():
        shutil.copy2(kept, path.parent / kept.name)


@pytest.fixture
def restored(tmp_path: Path, acquirer: AcquirerSim, security: AcquirerSecurity) -> Iterator[tuple[Journal, int]]:
    """A terminal that sold, was backed up after its first sale, sold on, and got the old backup back.
    Yields (the restored journal, the last STAN the host received)."""
    path, backup = tmp_path / "term" / "journal.db", tmp_path / "backup"
    path.parent.mkdir()
    journal = Journal(path)
    client = terminal_client(acquirer, security, journal)
    client.sign_on()
    sale(journal, client)
    journal.close()
    back_up(path, backup)
    journal = Journal(path)
    client = terminal_client(acquirer, security, journal)  # signs on by itself after the first 0200 took STAN 3
    last = max(sale(journal, client) for _ in range(4))
    journal.close()
    assert [e.stan for e in acquirer.ledger] == [2, 3, 5, 6, 7] and last == 7  # purchases; 1 and 4: sign-ons
    restore(path, backup)
    journal = Journal(path)
    assert journal.damage is None, "a consistent old copy: only the host can tell it went back"
    assert journal.counters()["stan"] < last
    yield journal, last
    journal.close()


def test_sign_on_answer_carries_the_hosts_view_under_its_mac(tmp_path: Path, acquirer: AcquirerSim,
                                                              security: AcquirerSecurity) -> None:
    journal = Journal(tmp_path / "journal.db")
    client = terminal_client(acquirer, security, journal)
    client.sign_on()
    first = client.host_view
    stans = [sale(journal, client) for _ in range(2)]
    assert client.echo()
    assert first == HostView(stan=1, batch=1, invoice=0)  # its own sign-on's STAN, nothing sold yet
    assert client.host_view == HostView(stan=stans[-1] + 1, batch=1, invoice=stans[-1])  # the echo's STAN, last sale
    assert security.view_of(TID) == client.host_view
    journal.close()


def test_restored_journal_signs_on_and_sells_above_the_hosts_view(restored: tuple[Journal, int],
                                                                   acquirer: AcquirerSim,
                                                                   security: AcquirerSecurity) -> None:
    journal, last = restored
    client = terminal_client(acquirer, security, journal)
    client.sign_on()  # at boot, in the self-test
    assert journal.counters()["stan"] >= last
    assert [e.action for e in _audit(journal)][-1] == "counters_from_host"
    stan = sale(journal, client)
    assert stan > last
    assert all(e.response_code == "00" and not e.reversed for e in acquirer.ledger)
    assert len({e.stan for e in acquirer.ledger}) == len(acquirer.ledger) == 6, "no STAN refused or reused"


def test_sale_before_sign_on_gets_94_and_is_retried_once_under_a_fresh_stan(
        restored: tuple[Journal, int], acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    journal, last = restored
    client = terminal_client(acquirer, security, journal)  # not signed on: the sale's STAN is taken first
    txn = begin(journal)
    reused = request(journal.next_stan())
    assert reused.stan <= last
    sent, answer, unknown = authorize_journaled(_Ports(client, journal), txn, reused)
    assert answer is not None and answer.approved and unknown is None
    assert sent.stan > last and sent.stan != reused.stan and sent.icc_data == reused.icc_data
    record = journal.get(txn)
    assert (record.state, record.stan, record.reversal) == ("approved", sent.stan, "armed")
    assert len(acquirer.ledger) == 6 and acquirer.ledger[-1].stan == sent.stan
    assert not any(e.reversed for e in acquirer.ledger)


def test_reversal_of_a_reused_stan_never_undoes_the_older_sale(restored: tuple[Journal, int],
                                                                 acquirer: AcquirerSim,
                                                                 security: AcquirerSecurity) -> None:
    """A cut between the 94 and its journal record leaves the refused STAN's reversal armed: recovery sends it.
    The host matches field 90 on STAN *and* the original's transmission time, so the older sale stays paid."""
    journal, _last = restored
    client = terminal_client(acquirer, security, journal)
    reused = request(journal.next_stan())
    older = next(e for e in acquirer.ledger if e.stan == reused.stan)
    assert client.reverse(ReversalRequest(stan=journal.next_stan(), original=reused)) == "00"
    assert not older.reversed and acquirer.approved_total_minor() == 5 * 1250


def test_second_94_ends_the_payment_with_nothing_charged(restored: tuple[Journal, int], acquirer: AcquirerSim,
                                                         security: AcquirerSecurity) -> None:
    """Without the host's view applied (a terminal that ignores it), the fresh STAN is reused too: the payment
    ends after two tries, refused, not reversed, nothing charged — never a loop of 94s."""
    journal, last = restored
    client = terminal_client(acquirer, security, journal, follow=False)
    txn, refused = begin(journal), []  # STAN 3 (a purchase's), 94; echo 5; then 6 (another purchase's), 94
    sent, answer, unknown = authorize_journaled(_Ports(client, journal), txn, request(journal.next_stan()),
                                                on_refused=refused.append)
    assert (answer, unknown) == (None, None) and sent.stan <= last
    assert [getattr(e, "fault", None) for e in refused] == [LinkFault.STAN_IN_USE]
    record = journal.get(txn)
    assert (record.state, record.response_code, record.reversal) == ("declined", "94", None)
    assert len(acquirer.ledger) == 5 and acquirer.approved_total_minor() == 5 * 1250


class _Ports:
    def __init__(self, host: HostClient, journal: Journal) -> None:
        self.host, self.journal = host, journal


def _audit(journal: Journal) -> list[AuditEntry]:
    return list(reversed(AuditLog(journal).recent(10)))


@pytest.mark.parametrize(("value", "error"), [
    ("00004100000300004", "18 digits"),  # one digit short
    ("0000410000030000400", "18 digits"),  # one too many
    ("00004100000300004A", "18 digits"),
    ("００００４１０００００３００００４０", "18 digits"),  # full-width digits are not ASCII
])
def test_malformed_view_is_refused_by_the_parser(value: str, error: str) -> None:
    with pytest.raises(RemoteProtocolError, match=error) as caught:
        parse_view({"61": value})
    assert caught.value.tag == "61"


@pytest.mark.parametrize(("theirs", "ours", "ahead"), [
    (41, 2, True), (2, 41, False), (5, 5, False), (1, 0, True), (0, 7, False),
    (2, 999998, True),  # the host saw us wrap after 999999
    (999998, 2, False),  # we wrapped since the host's view
    (600000, 2, False),  # half the circle or more behind reads as behind: ignored
    (1_000_000, 2, False),  # not a counter value
])
def test_sequence_order_of_counters(theirs: int, ours: int, ahead: bool) -> None:
    assert is_ahead(theirs, ours) is ahead


def test_only_counters_behind_the_view_move() -> None:
    view = HostView(stan=41, batch=3, invoice=40)
    assert encode_view(view) == "000041000003000040"
    assert behind(view, {"stan": 7, "batch": 3, "invoice": 50}) == {"stan": 41}
    assert behind(view, {"stan": 99, "batch": 4, "invoice": 41}) == {}


def test_malformed_view_from_the_host_changes_nothing(tmp_path: Path) -> None:
    """A view that does not parse is logged and ignored: the sign-on (already MAC-verified) stands."""
    journal = Journal(tmp_path / "journal.db")
    client = HostClient("127.0.0.1", 1, terminal_id=TID, merchant_id="M1", next_stan=journal.next_stan)
    client.on_host_view = partial(follow_host_view, journal)
    before = journal.counters()
    client._take_view({"t": "0810", "61": "99999"})
    client._take_view({"t": "0810"})  # none offered
    assert client.host_view is None and journal.counters() == before
    client._take_view({"t": "0810", "61": encode_view(HostView(stan=40, batch=2, invoice=30))})
    assert journal.counters() == {**before, "stan": 40, "batch": 2, "invoice": 30} and client.batch_number == 2
    journal.close()
