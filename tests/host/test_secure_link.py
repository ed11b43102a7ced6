"""The acquirer link as a real acquirer would run it, through real loopback sockets and TLS: mutual TLS with the
world's test CA, sign-on (PIK/MAK under the TMK with check values), a MAC on every message and every answer,
STAN replay refused — and each way it can be refused, named."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.host import HostClient
from drivers.host import messages as m
from drivers.host.dukpt_link import UnmacedKeyError
from drivers.host.signon import build_sign_on, pack_with_mac
from drivers.host.tls import client_context
from drivers.host.tmk import load_tmk
from flows.ports import AuthRequest, ReversalRequest
from pos_errors import ConfigError, LinkError, LinkFault, LinkSecurityError, RemoteProtocolError, StanInUse
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from tests.host.conftest import GOOD, SECURE_TID, TODAY, icc_data, started

TID = SECURE_TID
LOCAL = dt.datetime.combine(TODAY, dt.time(10, 30, 45))


@pytest.fixture
def acquirer(security: AcquirerSecurity) -> Iterator[AcquirerSim]:
    yield from started(security)


def client(sim: AcquirerSim, sec: AcquirerSecurity, *, tls: ssl.SSLContext | None = None,
           server_name: str = "localhost", clock: Callable[[], dt.datetime] | None = None) -> HostClient:
    host, port = sim.address
    context = tls or client_context(sec.ca.ca_file, sec.client_cert, sec.client_key)
    stans = iter(range(900001, 999999))
    return HostClient(host, port, timeout_s=2.0, connect_timeout_s=1.0, terminal_id=TID,
                      merchant_id="M00000000000001", tls=context, server_name=server_name,
                      tmk=load_tmk(sec.tmk_file, sec.tmk_kbpk_file), next_stan=lambda: next(stans),
                      clock=clock or (lambda: dt.datetime.now(dt.UTC)))


def request(stan: int, amount: int = 1250) -> AuthRequest:
    return AuthRequest(stan=stan, amount_minor=amount, local_time=LOCAL, pan=GOOD.pan,
                       expiry_yymm=GOOD.expiry[:4], pan_sequence=GOOD.psn,
                       icc_data=icc_data(GOOD, amount, atc=stan))


def mtis(sim: AcquirerSim) -> list[str]:
    return list(sim.wire_log)


def test_sign_on_then_approval_every_message_maced(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    c = client(acquirer, security)
    c.sign_on()
    assert c.signed_on and security.keys_of(TID) is not None
    assert c.authorize(request(1)).approved
    assert c.echo()
    assert mtis(acquirer) == ["0800", "0810", "0200", "0210", "0800", "0810"]
    assert [e.response_code for e in acquirer.ledger] == ["00"]


def test_first_request_signs_on_by_itself(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    assert client(acquirer, security).authorize(request(2)).approved
    assert mtis(acquirer)[:2] == ["0800", "0810"]


def test_key_error_re_sign_on_then_outcome_unknown(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    """The host changed its keys: its A0 cannot carry a MAC, so it is no answer (a forger could send the same):
    the client signs on again and reports the outcome unknown; the reversal under the new keys finds nothing."""
    c = client(acquirer, security)
    c.sign_on()
    security.expire_keys(TID)  # the host changed its keys: our MAC no longer verifies
    with pytest.raises(UnmacedKeyError, match="A0"):
        c.authorize(request(3))
    assert mtis(acquirer) == ["0800", "0810", "0200", "0210", "0800", "0810"]
    assert acquirer.ledger == [], "the MAC-failed 0200 was never processed"
    assert c.reverse(ReversalRequest(stan=4, original=request(3))) == "00"  # acknowledged: nothing to undo
    assert acquirer.ledger == [] and len(acquirer.reversals) == 1
    assert c.authorize(request(5)).approved  # the keys of the new sign-on


def test_magic_82_demands_re_sign_on_once(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    c = client(acquirer, security)
    with pytest.raises(UnmacedKeyError):
        c.authorize(request(4, amount=1282))
    assert mtis(acquirer).count("0800") == 2 and c.signed_on
    assert c.authorize(request(6)).approved  # under the keys of the new sign-on


def test_answer_with_bad_mac_is_no_answer_and_is_reversed(acquirer: AcquirerSim,
                                                          security: AcquirerSecurity) -> None:
    c = client(acquirer, security)
    req = request(5, amount=1281)  # magic .81: the host approves, then its 0210 carries a wrong MAC
    with pytest.raises(RemoteProtocolError, match="wrong MAC"):
        c.authorize(req)
    assert [e.response_code for e in acquirer.ledger] == ["00"]  # the host did approve it…
    assert c.reverse(ReversalRequest(stan=6, original=req)) == "00"  # …so the terminal reverses (as on timeout)
    assert acquirer.ledger[0].reversed and acquirer.approved_total_minor() == 0


def test_forged_answers_switch(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    security.bad_mac_answers = True
    with pytest.raises(RemoteProtocolError):
        client(acquirer, security).authorize(request(7))


def test_replayed_stan_gets_94_never_a_second_approval(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    c = client(acquirer, security)
    assert c.authorize(request(8)).approved
    with pytest.raises(StanInUse, match="duplicate"):  # not processed: nothing to reverse, ask the host's view
        c.authorize(request(8))
    assert [e.response_code for e in acquirer.ledger] == ["00"]
    assert mtis(acquirer)[-4:] == ["0200", "0210", "0800", "0810"]  # 94, then the echo that brings the view
    assert c.host_view is not None and c.host_view.invoice == 8


def raw_exchange(sim: AcquirerSim, sec: AcquirerSecurity, message: bytes) -> m.Fields:
    context = client_context(sec.ca.ca_file, sec.client_cert, sec.client_key)
    with socket.create_connection(sim.address, timeout=2) as plain, \
            context.wrap_socket(plain, server_hostname="localhost") as conn:
        conn.sendall(m.frame(message))
        decoder = m.FrameDecoder()
        while (frame := decoder.next_frame()) is None:
            chunk = conn.recv(4096)
            assert chunk, "the host closed without answering"
            decoder.receive_data(chunk)
        return m.unpack(frame)


def test_byte_identical_replay_is_refused(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    client(acquirer, security).sign_on()
    keys = security.keys_of(TID)
    assert keys is not None
    fields = m.build_auth_request(request(9), terminal_id=TID, merchant_id="M00000000000001")
    message = pack_with_mac(fields, keys.mak)  # what an eavesdropper with a stolen certificate recorded
    assert raw_exchange(acquirer, security, message)["39"] == "00"
    assert raw_exchange(acquirer, security, message)["39"] == "94"
    assert [e.response_code for e in acquirer.ledger] == ["00"]


def test_request_with_wrong_mac_gets_a0_and_changes_nothing(acquirer: AcquirerSim,
                                                            security: AcquirerSecurity) -> None:
    client(acquirer, security).sign_on()
    keys = security.keys_of(TID)
    assert keys is not None
    fields = m.build_auth_request(request(10), terminal_id=TID, merchant_id="M00000000000001")
    forged = bytearray(pack_with_mac(fields, keys.mak))
    forged[-1] ^= 0x80
    answer = raw_exchange(acquirer, security, bytes(forged))
    assert answer["39"] == "A0" and "38" not in answer
    assert acquirer.ledger == []


def test_wrong_check_value_at_sign_on_keeps_no_keys(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    security.bad_kcv = True
    c = client(acquirer, security)
    with pytest.raises(LinkSecurityError) as caught:
        c.sign_on()
    assert caught.value.fault is LinkFault.KEY_CHECK and not c.signed_on
    with pytest.raises(LinkSecurityError):  # no sale without keys: nothing reaches the issuer
        c.authorize(request(11))
    assert acquirer.ledger == []


def test_a_sign_on_delivering_one_key_as_pin_and_mac_key_is_refused_and_stays_signed_off(
        acquirer: AcquirerSim, security: AcquirerSecurity, caplog: pytest.LogCaptureFixture) -> None:
    security.same_keys = True  # a PIK equal to the MAK: check values right, MAC right (under that key)
    c = client(acquirer, security)
    with pytest.raises(LinkSecurityError) as caught:
        c.sign_on()
    assert caught.value.fault is LinkFault.KEY_SEPARATION and not c.signed_on
    assert any("no key separation" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    with pytest.raises(LinkSecurityError):  # no sale without keys: nothing reaches the issuer
        c.authorize(request(13))
    assert acquirer.ledger == []
    security.same_keys = False
    c.sign_on()  # separate keys again: taken
    assert c.signed_on and c.authorize(request(14)).approved


@pytest.mark.parametrize(("fault", "expected"), [
    ("expired", LinkFault.CERT_EXPIRED),
    ("wrong_host", LinkFault.WRONG_HOST),
    ("unknown_ca", LinkFault.UNKNOWN_CA),
])
def test_broken_host_certificate_is_named(acquirer: AcquirerSim, security: AcquirerSecurity, fault: str,
                                          expected: LinkFault) -> None:
    security.tls_fault = fault
    with pytest.raises(LinkSecurityError) as caught:
        client(acquirer, security).authorize(request(12))
    assert caught.value.fault is expected
    assert acquirer.ledger == [] and mtis(acquirer) == []


def test_host_name_is_checked(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    with pytest.raises(LinkSecurityError) as caught:
        client(acquirer, security, server_name="acquirer.example").sign_on()
    assert caught.value.fault is LinkFault.WRONG_HOST


def test_client_without_certificate_is_refused(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    anonymous = ssl.create_default_context(cafile=security.ca.ca_file)
    with pytest.raises(LinkSecurityError) as caught:
        client(acquirer, security, tls=anonymous).sign_on()
    assert caught.value.fault is LinkFault.CLIENT_REFUSED
    deadline = time.monotonic() + 2
    while not acquirer.tls_refusals and time.monotonic() < deadline:  # the host's thread logs it a moment later
        time.sleep(0.01)
    assert mtis(acquirer) == [] and acquirer.tls_refusals


def test_certificate_of_another_terminal_is_dropped(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    cert, key = security.ca.issue("other", "T0000009", client=True)
    with pytest.raises(LinkError):
        client(acquirer, security, tls=client_context(security.ca.ca_file, cert, key)).sign_on()
    assert security.keys_of(TID) is None


def test_plain_tcp_gets_no_iso8583_answer(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    message = m.frame(m.pack(build_sign_on(1, transmitted_at=LOCAL, terminal_id=TID)))
    with socket.create_connection(acquirer.address, timeout=2) as conn:
        conn.sendall(message)
        received = b""
        try:
            while chunk := conn.recv(4096):
                received += chunk
        except OSError:
            pass
    assert b"0810" not in received and mtis(acquirer) == []


def test_sign_off_forgets_keys_on_both_sides(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    c = client(acquirer, security)
    c.sign_on()
    c.sign_off()
    assert not c.signed_on and security.keys_of(TID) is None
    assert mtis(acquirer)[-2:] == ["0800", "0810"]


@pytest.mark.parametrize(("key", "what"), [("ca_file", "host.ca_file"), ("client_cert", "host.client_cert")])
def test_missing_tls_files_are_config_errors(security: AcquirerSecurity, key: str, what: str) -> None:
    files = {"ca_file": security.ca.ca_file, "client_cert": security.client_cert, "client_key": security.client_key}
    files[key] = ""
    with pytest.raises(ConfigError, match=what):
        client_context(files["ca_file"], files["client_cert"], files["client_key"])


def test_tmk_file_must_be_private(security: AcquirerSecurity) -> None:
    Path(security.tmk_file).chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        load_tmk(security.tmk_file, security.tmk_kbpk_file)



def test_signs_on_again_at_the_start_of_each_business_day(acquirer: AcquirerSim,
                                                          security: AcquirerSecurity) -> None:
    now = [dt.datetime(2025, 1, 15, 23, 59, tzinfo=dt.UTC)]
    c = client(acquirer, security, clock=lambda: now[0])  # moved past midnight below
    assert c.authorize(request(13)).approved
    now[0] += dt.timedelta(minutes=2)
    assert c.authorize(request(14)).approved
    assert mtis(acquirer) == ["0800", "0810", "0200", "0210", "0800", "0810", "0200", "0210"]


def test_sign_on_during_an_exchange_does_not_spoil_its_answer(acquirer: AcquirerSim,
                                                              security: AcquirerSecurity) -> None:
    c = client(acquirer, security)
    c.sign_on()
    acquirer.reply_delay_s = 0.4  # the 0200 is verified under the old keys, then waits; a sign-on happens meanwhile
    results: list[bool] = []
    sale = threading.Thread(target=lambda: results.append(c.authorize(request(15)).approved))
    sale.start()
    time.sleep(0.15)
    c.sign_on()
    sale.join(5)
    assert results == [True], "the answer is MACed under the keys its request was verified with"
    assert mtis(acquirer).count("0800") == 2 and [e.response_code for e in acquirer.ledger] == ["00"]


def test_world_fault_toggles_reach_the_host(tmp_path: Path) -> None:
    from sim.runner.world import SimWorld  # a world that is never started: only its parts are built

    world = SimWorld(workdir=tmp_path)
    sec = world.host_security
    assert sec is not None
    assert world.toggle_fault("acquirer_tls_expired") and sec.tls_fault == "expired"
    assert not world.toggle_fault("acquirer_tls_expired") and sec.tls_fault is None
    assert world.toggle_fault("acquirer_bad_mac") and sec.bad_mac_answers
    assert world.toggle_fault("acquirer_partial") and world.acquirer.forced_response == "10"
    assert not world.toggle_fault("acquirer_partial") and world.acquirer.forced_response is None
    assert world.toggle_fault("acquirer_forged_a0") and sec.forged_a0_purchases == 1
    assert not world.toggle_fault("acquirer_forged_a0") and sec.forged_a0_purchases == 0
    world.stop()
