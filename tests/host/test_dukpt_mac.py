"""The dukpt key scheme (``[host] key_scheme = "dukpt"``) through the real parts: HostClient over mutual TLS to
the simulated acquirer, every MAC computed and checked by the simulated PIN pad over a pty under its DUKPT
transaction keys (X9.24-1 TDES request/response variants with the retail MAC, X9.24-3 AES MAC generation /
verification keys with AES-CMAC); the acquirer derives the same keys from its BDK and field 53. psec is the
oracle of the TDES retail MAC under the published X9.24-1 MAC request key."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.host import HostClient
from drivers.host import messages as m
from drivers.host.dukpt_link import UnmacedKeyError, mac_input
from drivers.pinpad import PinPad
from emv.crypto import dukpt_mac
from emv.crypto.pin import derive_initial_key
from flows.reversal import reverse_payment
from flows.txn_state import TxnState
from pos_errors import DeviceError, LinkError, RemoteProtocolError, StanInUse
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from sim.devices.pinpad import PinPadSim
from terminal.journal import Journal
from tests.host.conftest import AES_KSN, BDK, GOOD, TDES_BDK, TDES_KSN, TODAY
from tests.host.test_secure_link import TID, client, request

psec_mac = pytest.importorskip("psec.mac")

SCHEMES = {"aes": (BDK, AES_KSN), "tdes": (TDES_BDK, TDES_KSN)}


def test_tdes_request_mac_under_the_published_mac_request_key() -> None:
    ksn = bytes.fromhex("FFFF9876543210E00001")  # X9.24-1 Annex A: MAC request key of E00001 below
    key = bytes.fromhex("042666B4918430A368DE9628D03984C9")
    data = mac_input({"t": "0200", "3": "000000", "4": "000000003000", "11": "000002", "41": "SIM00001"}, ksn)
    oracle = psec_mac.generate_retail_mac(key[:8], key[8:], data[:-8], 1)
    assert dukpt_mac.host_mac("tdes", TDES_BDK, ksn, data[:-8], "request") == oracle


@pytest.fixture(params=sorted(SCHEMES))
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def security(tmp_path: Path, scheme: str) -> AcquirerSecurity:
    sec = AcquirerSecurity.create(tmp_path, TID)
    sec.dukpt = (scheme, SCHEMES[scheme][0])
    return sec


@pytest.fixture
def acquirer(security: AcquirerSecurity, scheme: str) -> Iterator[AcquirerSim]:
    sim = AcquirerSim(bdk=SCHEMES[scheme][0], pin_scheme=scheme, today=lambda: TODAY,  # type: ignore[arg-type]
                      security=security)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def pad(scheme: str) -> Iterator[tuple[PinPadSim, PinPad]]:
    bdk, ksn = SCHEMES[scheme]
    sim = PinPadSim(scheme=scheme, initial_key=derive_initial_key(scheme, bdk, ksn),  # type: ignore[arg-type]
                    initial_ksn=ksn)
    driver = PinPad(sim.start(), response_timeout_s=2.0)
    driver.open()
    yield sim, driver
    driver.close()
    sim.stop()


def _host(acquirer: AcquirerSim, security: AcquirerSecurity, driver: PinPad) -> HostClient:
    host = client(acquirer, security)
    host.use_dukpt_mac(driver)
    return host


def test_sale_with_pin_echo_and_reversal_all_maced_under_dukpt(acquirer: AcquirerSim, security: AcquirerSecurity,
                                                               pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    host = _host(acquirer, security, driver)
    sim.auto_pin = "1234"
    entry = driver.request_online_pin(GOOD.pan, 1250, 5.0)
    sale = dataclasses.replace(request(21), pin_block=entry.pin_block, ksn=entry.ksn)
    assert host.authorize(sale).approved  # field 53 = the PIN's KSN: the MAC uses the same transaction key
    before = driver.next_ksn()
    assert host.echo()  # an echo takes the next KSN
    assert driver.next_ksn() != before
    assert acquirer.wire_log == ["0200", "0210", "0800", "0810"]  # no sign-on in this scheme


def test_answer_with_a_wrong_mac_is_no_answer(acquirer: AcquirerSim, security: AcquirerSecurity,
                                              pad: tuple[PinPadSim, PinPad]) -> None:
    host = _host(acquirer, security, pad[1])
    security.bad_mac_answers = True
    with pytest.raises(RemoteProtocolError, match="wrong MAC"):
        host.authorize(request(22))
    assert [e.response_code for e in acquirer.ledger] == ["00"]  # the host approved: the terminal must reverse


def test_request_mac_under_another_key_gets_a0(acquirer: AcquirerSim, security: AcquirerSecurity,
                                               pad: tuple[PinPadSim, PinPad], scheme: str) -> None:
    host = _host(acquirer, security, pad[1])
    security.dukpt = (scheme, bytes(reversed(SCHEMES[scheme][0])))  # the host holds another BDK
    with pytest.raises(UnmacedKeyError, match="A0"):  # unMACed: never an answer, outcome unknown (reversed)
        host.authorize(request(23))
    assert acquirer.ledger == [] and acquirer.wire_log == ["0200", "0210"]


def test_an_unmaced_a0_to_a_reversal_leaves_it_pending_and_repeated_never_refused(
        tmp_path: Path, acquirer: AcquirerSim, security: AcquirerSecurity, pad: tuple[PinPadSim, PinPad],
        scheme: str) -> None:
    host = _host(acquirer, security, pad[1])
    journal = Journal(tmp_path / "journal.db")
    txn = journal.begin(order_id="O1", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                        plan_name="p", amount_minor=1250, fee_minor=0, channel="card", cashier_id="01")
    sale = request(journal.next_stan())
    journal.update(txn, TxnState.AUTH_INTENDED, stan=sale.stan, auth_time=sale.local_time.isoformat(),
                   reversal="armed", entry_mode=sale.pos_entry_mode)
    assert host.authorize(sale).approved
    journal.update(txn, TxnState.APPROVED, reversal="armed")
    journal.update(txn, TxnState.CARD_DECLINED_AFTER_APPROVAL, reversal="pending")
    good = security.dukpt
    security.dukpt = (scheme, bytes(reversed(SCHEMES[scheme][0])))  # the host cannot check our MACs: A0
    assert not reverse_payment(host, journal, journal.get(txn), terminal_id=TID, merchant_id="M00000000000001")
    record = journal.get(txn)
    assert (record.state, record.reversal) == (TxnState.REVERSAL_PENDING, "pending")  # not reversal_refused
    assert "A0" in (record.message or "") and acquirer.wire_log.count("0410") == 3
    security.dukpt = good
    assert reverse_payment(host, journal, record, terminal_id=TID, merchant_id="M00000000000001")
    assert journal.get(txn).state == TxnState.REVERSED and acquirer.approved_total_minor() == 0
    journal.close()


def test_an_unmaced_a0_echo_is_no_answer_and_its_counters_are_never_taken(pad: tuple[PinPadSim, PinPad]) -> None:
    """A forged 0810 A0 without a MAC carrying field 61 (the host's view of our counters): ignored whole."""
    listener = socket.create_server(("127.0.0.1", 0))

    def forger() -> None:
        conn, _ = listener.accept()
        with conn:
            decoder = m.FrameDecoder()
            while (raw := decoder.next_frame()) is None:
                decoder.receive_data(conn.recv(4096))
            req = m.unpack(raw)
            conn.sendall(m.frame(m.pack({"t": "0810", "11": req["11"], "39": "A0", "41": req["41"],
                                         "61": "400000400000400000", "70": "301"})))

    thread = threading.Thread(target=forger, daemon=True)
    thread.start()
    host = HostClient("127.0.0.1", listener.getsockname()[1], terminal_id=TID, merchant_id="M00000000000001",
                      timeout_s=2.0, batch_number=3)
    host.use_dukpt_mac(pad[1])
    seen: list[object] = []
    host.on_host_view = seen.append
    assert host.echo() is False
    assert (host.batch_number, host.host_view, seen) == (3, None, [])
    thread.join(timeout=5)
    listener.close()


def test_a_ksn_the_pad_has_no_key_for_sends_nothing(acquirer: AcquirerSim, security: AcquirerSecurity,
                                                    pad: tuple[PinPadSim, PinPad], scheme: str) -> None:
    host = _host(acquirer, security, pad[1])
    stale = SCHEMES[scheme][1]  # the initial KSN (counter 0): never a transaction's
    with pytest.raises(LinkError, match="cannot MAC"):
        host.authorize(dataclasses.replace(request(24), pin_block=bytes(16 if scheme == "aes" else 8), ksn=stale))
    assert acquirer.wire_log == []
    with pytest.raises(DeviceError, match="no usable key"):
        pad[1].mac_request(stale, b"data")


def test_the_pad_checks_answers_only_under_the_response_key(pad: tuple[PinPadSim, PinPad], scheme: str) -> None:
    _, driver = pad
    bdk = SCHEMES[scheme][0]
    ksn = driver.next_ksn()
    assert driver.mac_request(ksn, b"request") == dukpt_mac.host_mac(scheme, bdk, ksn, b"request", "request")
    answer = m.pack({"t": "0810", "11": "000001", "39": "00"})
    good = dukpt_mac.host_mac(scheme, bdk, ksn, answer, "response")
    assert driver.verify_response(ksn, answer, good)
    assert not driver.verify_response(ksn, answer, dukpt_mac.host_mac(scheme, bdk, ksn, answer, "request"))
    assert not driver.verify_response(ksn, answer + b"x", good)


def test_dukpt_scheme_echo_brings_the_hosts_view_and_a_94d_sale_goes_again_under_one_ksn(
        acquirer: AcquirerSim, security: AcquirerSecurity, pad: tuple[PinPadSim, PinPad]) -> None:
    """No sign-on in this scheme: the echo answer carries field 61. A purchase answered 94 was never decided, so
    the same PIN block and KSN go again under a fresh STAN (flows.authorize) and are approved once."""
    sim, driver = pad
    host = _host(acquirer, security, driver)
    security.already_seen(TID, 30, TODAY)  # the host has this terminal's purchases 1..30 today
    sim.auto_pin = "1234"
    entry = driver.request_online_pin(GOOD.pan, 1250, 5.0)
    sale = dataclasses.replace(request(7), pin_block=entry.pin_block, ksn=entry.ksn)
    with pytest.raises(StanInUse):
        host.authorize(sale)
    assert host.host_view is not None and host.host_view.stan >= 30  # from the echo after the 94
    assert acquirer.wire_log == ["0200", "0210", "0800", "0810"] and not acquirer.ledger
    assert host.authorize(dataclasses.replace(sale, stan=host.host_view.stan + 1)).approved
    assert [e.response_code for e in acquirer.ledger] == ["00"]
