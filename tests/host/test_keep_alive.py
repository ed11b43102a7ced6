"""One TLS connection kept across exchanges (``drivers.host.transport``), proven through real loopback mutual TLS
against the simulated acquirer, which counts the handshakes it completes: reuse, a host's hang-up between
exchanges (a new connection resuming the TLS session, no sale lost or doubled), a close after the request (outcome
unknown, never resent), a changed host certificate, and the host's identity check on a resumed session."""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Iterator

import pytest

from drivers.host import HostClient
from drivers.host.tls import client_context
from drivers.host.tmk import load_tmk
from flows.ports import AuthRequest, ReversalRequest
from pos_errors import ConfigError, LinkFault, LinkSecurityError, LinkTimeout
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from tests.host.conftest import GOOD, SECURE_TID, TODAY, icc_data, started

TID = SECURE_TID
LOCAL = dt.datetime.combine(TODAY, dt.time(10, 30, 45))


@pytest.fixture
def acquirer(security: AcquirerSecurity) -> Iterator[AcquirerSim]:
    yield from started(security)


def client(sim: AcquirerSim, sec: AcquirerSecurity, *, keep_alive_s: float = 60.0, terminal_id: str = TID,
           timeout_s: float = 2.0, tls: ssl.SSLContext | None = None) -> HostClient:
    host, port = sim.address
    stans = iter(range(500001, 599999))
    return HostClient(host, port, timeout_s=timeout_s, connect_timeout_s=1.0, terminal_id=terminal_id,
                      merchant_id="M00000000000001", server_name="localhost",
                      tls=tls or client_context(sec.ca.ca_file, sec.client_cert, sec.client_key),
                      tmk=load_tmk(sec.tmk_file, sec.tmk_kbpk_file), next_stan=lambda: next(stans),
                      clock=lambda: dt.datetime.now(dt.UTC), keep_alive_s=keep_alive_s)


def request(stan: int, amount: int = 1250) -> AuthRequest:
    return AuthRequest(stan=stan, amount_minor=amount, local_time=LOCAL, pan=GOOD.pan,
                       expiry_yymm=GOOD.expiry[:4], pan_sequence=GOOD.psn,
                       icc_data=icc_data(GOOD, amount, atc=stan))


def approved_stans(sim: AcquirerSim) -> list[int]:
    return [e.stan for e in sim.ledger if e.response_code == "00" and not e.reversed]


def test_one_handshake_for_sign_on_and_several_sales(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    c = client(acquirer, security)
    for stan in (1, 2, 3):
        assert c.authorize(request(stan)).approved
    assert c.echo()
    assert acquirer.handshakes == 1
    assert c.connections == (1, 0)
    assert acquirer.wire_log == ["0800", "0810"] + ["0200", "0210"] * 3 + ["0800", "0810"]
    c.close()


def test_keep_alive_zero_is_a_handshake_per_exchange(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    c = client(acquirer, security, keep_alive_s=0.0)
    assert c.authorize(request(4)).approved  # sign-on + sale
    assert c.authorize(request(5)).approved
    assert acquirer.handshakes == 3
    assert c.connections[0] == 3


def test_host_hang_up_between_sales_reconnects_and_resumes(acquirer: AcquirerSim,
                                                           security: AcquirerSecurity) -> None:
    c = client(acquirer, security)
    assert c.authorize(request(6)).approved
    acquirer.hang_up()  # the host closes its idle connections
    time.sleep(0.05)  # the FIN reaches the terminal's socket (what an idle period gives in real life)
    assert c.authorize(request(7)).approved
    assert approved_stans(acquirer) == [6, 7], "each sale exactly once: none lost, none doubled"
    assert acquirer.wire_log.count("0200") == 2
    assert acquirer.handshakes == 2
    assert acquirer.resumptions == 1, "the new connection resumed the TLS session instead of a full handshake"
    assert c.connections == (2, 1)
    c.close()


def test_idle_connection_older_than_keep_alive_is_replaced(acquirer: AcquirerSim,
                                                           security: AcquirerSecurity) -> None:
    c = client(acquirer, security, keep_alive_s=0.05)
    assert c.authorize(request(8)).approved
    time.sleep(0.1)
    assert c.authorize(request(9)).approved
    assert acquirer.handshakes == 2
    assert approved_stans(acquirer) == [8, 9]
    c.close()


def test_close_after_the_request_is_outcome_unknown_and_never_resent(acquirer: AcquirerSim,
                                                                     security: AcquirerSecurity) -> None:
    c = client(acquirer, security)
    assert c.authorize(request(10)).approved  # the connection is now kept
    with pytest.raises(LinkTimeout, match="outcome unknown"):
        c.authorize(request(11, amount=1293))  # .93: the host drops the connection once the 0200 is in
    assert acquirer.wire_log.count("0200") == 2, "the dropped 0200 was sent once, not repeated on a new connection"
    code = c.reverse(ReversalRequest(stan=1011, original=request(11, amount=1293), reason_code="68"))
    assert code == "00"  # answered on a new connection (nothing to undo: the host decided nothing)
    assert approved_stans(acquirer) == [10]
    assert acquirer.handshakes == 2
    c.close()


def test_late_answer_never_answers_the_next_exchange(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    acquirer.late_reply_s = 0.4
    c = client(acquirer, security, timeout_s=0.2)
    c.sign_on()
    with pytest.raises(LinkTimeout):
        c.authorize(request(12, amount=1298))  # .98: approved, answered after our time-out
    code = c.reverse(ReversalRequest(stan=1012, original=request(12, amount=1298), reason_code="68"))
    assert code == "00"
    assert approved_stans(acquirer) == []
    assert acquirer.handshakes == 2, "the timed-out connection was dropped, the reversal went on a new one"
    c.close()


def test_new_host_certificate_is_checked_despite_a_kept_connection(acquirer: AcquirerSim,
                                                                   security: AcquirerSecurity) -> None:
    c = client(acquirer, security)
    assert c.authorize(request(13)).approved
    acquirer.set_tls_fault("expired")  # the host restarts its endpoint with an expired certificate
    time.sleep(0.05)
    with pytest.raises(LinkSecurityError) as refused:
        c.authorize(request(14))
    assert refused.value.fault is LinkFault.CERT_EXPIRED, "the session of the old certificate was not resumed"
    assert approved_stans(acquirer) == [13]
    acquirer.set_tls_fault(None)
    assert c.authorize(request(15)).approved
    c.close()


def test_resumed_session_keeps_the_certificate_identity(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    context = client_context(security.ca.ca_file, security.client_cert, security.client_key)
    c = client(acquirer, security, tls=context)
    assert c.authorize(request(16)).approved
    acquirer.hang_up()
    time.sleep(0.05)
    assert c.authorize(request(17)).approved
    assert acquirer.resumptions == 1
    # the same certificate's resumed session claiming another terminal is refused like a full handshake's
    other = client(acquirer, security, terminal_id="T0000002", tls=context)
    other._transport._session = c._transport._session  # offer the resumable session of T0000001
    assert not other.echo()
    assert acquirer.resumptions == 2
    assert approved_stans(acquirer) == [16, 17]
    c.close()


@pytest.mark.parametrize("bad", [-1.0, 3601.0])
def test_keep_alive_out_of_range_is_refused(acquirer: AcquirerSim, security: AcquirerSecurity, bad: float) -> None:
    with pytest.raises(ConfigError, match="keep_alive_s"):
        client(acquirer, security, keep_alive_s=bad)
