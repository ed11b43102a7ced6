"""Only a 00 acknowledges an advice (flows.saf), through the real mutual-TLS link, MACs and the simulated
acquirer, with a real SQLite journal: an advice the host answers 96 stays queued with its sealed PAN, counts its
tries, stops ``failed`` for a supervisor after the last one (PAN still sealed, never erased), and is never
recorded by the host; once the host takes advices again a queued one is acknowledged and its PAN erased."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from drivers.host import HostClient
from drivers.host.tls import client_context
from drivers.host.tmk import load_tmk
from flows.ports import AuthRequest
from flows.saf import PanSealer, drain, offline_row
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from terminal.journal import Journal
from tests.host.conftest import GOOD, SECURE_TID, TODAY, icc_data, started

TID, MID = SECURE_TID, "M00000000000001"


@pytest.fixture
def acquirer(security: AcquirerSecurity) -> Iterator[AcquirerSim]:
    yield from started(security)


def _client(sim: AcquirerSim, sec: AcquirerSecurity, journal: Journal) -> HostClient:
    host, port = sim.address
    return HostClient(host, port, timeout_s=2.0, connect_timeout_s=1.0, terminal_id=TID, merchant_id=MID,
                      server_name="localhost", tls=client_context(sec.ca.ca_file, sec.client_cert, sec.client_key),
                      tmk=load_tmk(sec.tmk_file, sec.tmk_kbpk_file), next_stan=journal.next_stan)


def _queue(journal: Journal, sealer: PanSealer, order: str, minute: int) -> int:
    txn = journal.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                        plan_name="p", amount_minor=1500, fee_minor=0, channel="card", cashier_id="01")
    when = dt.datetime.combine(TODAY, dt.time(9, minute))
    request = AuthRequest(journal.next_stan(), 1500, when, pan=GOOD.pan, expiry_yymm=GOOD.expiry[:4],
                          pan_sequence=GOOD.psn, icc_data=icc_data(GOOD, 1500, atc=minute + 40), terminal_id=TID,
                          merchant_id=MID)
    journal.saf_offline_approved(txn, offline_row(request, sealer))
    return request.stan


def test_an_advice_answered_96_is_kept_then_failed_with_its_sealed_pan(tmp_path, acquirer: AcquirerSim,
                                                                       security: AcquirerSecurity) -> None:
    journal = Journal(tmp_path / "journal.db")
    sealer = PanSealer(b"k" * 32, TID)
    client = _client(acquirer, security, journal)
    first, second = _queue(journal, sealer, "O1", 1), _queue(journal, sealer, "O2", 2)
    acquirer.advice_code = "96"
    report = drain(client, journal, sealer, terminal_id=TID, merchant_id=MID, max_attempts=2)
    assert (report.sent, report.queued, report.stopped) == (0, 2, ())  # both tried: the host is up
    assert [(r.status, r.attempts) for r in journal.saf_items()] == [("queued", 1), ("queued", 1)]
    assert acquirer.ledger == []  # the host took neither
    report = drain(client, journal, sealer, terminal_id=TID, merchant_id=MID, max_attempts=2)
    assert [r.stan for r in report.stopped] == [first, second]
    failed = journal.saf_items(("failed",))
    assert [(r.stan, r.attempts) for r in failed] == [(first, 2), (second, 2)]
    assert all(sealer.open(r.pan_sealed, r.stan) == GOOD.pan for r in failed)  # kept for the supervisor
    assert all("the bank answered 96" in (r.message or "") for r in failed)
    assert acquirer.wire_log.count("0221") == 2 and acquirer.ledger == []
    journal.close()


def test_a_queued_advice_is_acknowledged_once_the_host_takes_advices_again(tmp_path, acquirer: AcquirerSim,
                                                                           security: AcquirerSecurity) -> None:
    journal = Journal(tmp_path / "journal.db")
    sealer = PanSealer(b"k" * 32, TID)
    client = _client(acquirer, security, journal)
    stan = _queue(journal, sealer, "O1", 3)
    acquirer.advice_code = "30"
    assert drain(client, journal, sealer, terminal_id=TID, merchant_id=MID).queued == 1
    acquirer.advice_code = None
    assert drain(client, journal, sealer, terminal_id=TID, merchant_id=MID).sent == 1
    [row] = journal.saf_items(("sent",))
    assert (row.stan, row.attempts, row.response_code, row.pan_sealed) == (stan, 2, "00", b"")
    assert [(e.mti, e.stan) for e in acquirer.ledger] == [("0220", stan)]
    journal.close()


def test_an_a0_to_an_advice_renews_the_keys_and_keeps_it_queued(tmp_path, acquirer: AcquirerSim,
                                                                   security: AcquirerSecurity) -> None:
    """The host forgot the terminal's keys (its MAC fails: A0 without a MAC, which a forger could send too):
    the client signs on again, the advice stays queued (a try counted) and the next drain acknowledges it as a
    repeat (0221); the host records it once."""
    journal = Journal(tmp_path / "journal.db")
    sealer = PanSealer(b"k" * 32, TID)
    client = _client(acquirer, security, journal)
    client.sign_on()
    stan = _queue(journal, sealer, "O1", 4)
    security.expire_keys()
    assert drain(client, journal, sealer, terminal_id=TID, merchant_id=MID).queued == 1
    assert acquirer.wire_log[2:] == ["0220", "0230", "0800", "0810"]  # A0, sign-on, not acknowledged
    [row] = journal.saf_items(("queued",))
    assert row.attempts == 1 and sealer.open(row.pan_sealed, row.stan) == GOOD.pan
    assert drain(client, journal, sealer, terminal_id=TID, merchant_id=MID).sent == 1
    assert acquirer.wire_log[-2:] == ["0221", "0230"]
    [row] = journal.saf_items(("sent",))
    assert (row.stan, row.response_code, row.pan_sealed) == (stan, "00", b"")
    assert [(e.mti, e.stan) for e in acquirer.ledger] == [("0220", stan)]
    journal.close()
