"""HostClient against the real AcquirerSim over 127.0.0.1: issuer decisions with real ARQC/ARPC and DUKPT PIN
crypto, magic amounts, link faults, reversals, echo, and the PAN never leaving masked."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from dataclasses import replace

import pytest

from drivers.host import HostClient
from drivers.host import messages as m
from emv import tlv
from emv.crypto import arqc, pin
from flows.ports import AuthRequest, ReversalRequest, mask_pan
from pos_errors import LinkError, LinkTimeout, RemoteProtocolError
from sim.backends.acquirer import MAGIC_AMOUNTS, AcquirerSim
from sim.devices.cards import SimCardProfile
from tests.host.conftest import (
    BDK,
    EXPIRED,
    GOOD,
    MASTERCARD,
    TDES_BDK,
    TDES_KSN,
    TODAY,
    arqc_for,
    icc_data,
    session_key,
)

LOCAL = dt.datetime.combine(TODAY, dt.time(10, 30, 45))


def client(sim: AcquirerSim, timeout_s: float = 2.0) -> HostClient:
    host, port = sim.address
    return HostClient(host, port, timeout_s=timeout_s, connect_timeout_s=1.0, terminal_id="T0000001",
                      merchant_id="M00000000000001")


def request(stan: int, amount: int, pinpad: pin.DukptPinEncryptor | None, *, card: SimCardProfile = GOOD,
            entered: str | None = None, tamper: bool = False) -> AuthRequest:
    block, ksn = pinpad.encrypt_pin(entered or card.pin, card.pan) if pinpad else (None, None)
    return AuthRequest(stan=stan, amount_minor=amount, local_time=LOCAL, pan=card.pan,
                       expiry_yymm=card.expiry[:4], pan_sequence=card.psn,
                       icc_data=icc_data(card, amount, atc=stan, tamper=tamper), pin_block=block, ksn=ksn)


def test_approval_with_real_arqc_and_arpc(acquirer: AcquirerSim, pinpad: pin.DukptPinEncryptor) -> None:
    response = client(acquirer).authorize(request(1, 1250, pinpad))
    assert response.response_code == "00" and response.approved
    assert len(response.auth_code) == 6 and response.rrn.isdigit() and len(response.rrn) == 12
    issuer_data = tlv.first(tlv.decode(response.icc_data), 0x91)
    assert issuer_data is not None and issuer_data[8:] == b"00"
    # the card, holding the same session key, accepts this ARPC
    assert issuer_data[:8] == arqc.generate_arpc(session_key(GOOD, 1), arqc_for(GOOD, 1250, 1), b"00")
    [entry] = acquirer.ledger
    assert (entry.stan, entry.mti, entry.masked_pan, entry.amount_minor, entry.response_code, entry.auth_code,
            entry.rrn, entry.reversed) == (1, "0200", mask_pan(GOOD.pan), 1250, "00", response.auth_code,
                                           response.rrn, False)
    assert acquirer.approved_total_minor() == 1250


def test_tdes_pin_scheme() -> None:
    pad = pin.DukptPinEncryptor("tdes", pin.derive_initial_key("tdes", TDES_BDK, TDES_KSN), TDES_KSN)
    with AcquirerSim(bdk=TDES_BDK, pin_scheme="tdes", cards={"m": MASTERCARD}, today=lambda: TODAY) as sim:
        req = request(1, 1000, pad, card=MASTERCARD)
        assert req.pin_block is not None and len(req.pin_block) == 8
        assert client(sim).authorize(req).response_code == "00"
        assert client(sim).authorize(request(2, 1000, None)).response_code == "14", "only the cards given"


def test_wrong_pin_then_tries_exceeded(acquirer: AcquirerSim, pinpad: pin.DukptPinEncryptor) -> None:
    c = client(acquirer)
    codes = [c.authorize(request(n, 1000, pinpad, entered="9999")).response_code for n in (1, 2, 3)]
    assert codes == ["55", "55", "75"]
    assert c.authorize(request(4, 1000, pinpad)).response_code == "75"  # blocked, even with the right PIN
    acquirer.reset_pin_tries()
    assert c.authorize(request(5, 1000, pinpad)).response_code == "00"


def test_right_pin_clears_the_wrong_count(acquirer: AcquirerSim, pinpad: pin.DukptPinEncryptor) -> None:
    c = client(acquirer)
    wrong, right = request(1, 1000, pinpad, entered="0000"), request(2, 1000, pinpad)
    assert [c.authorize(r).response_code for r in (wrong, wrong, right)] == ["55", "55", "00"]
    assert c.authorize(replace(wrong, stan=4)).response_code == "55"


def test_undecryptable_pin_block(acquirer: AcquirerSim, pinpad: pin.DukptPinEncryptor) -> None:
    req = request(1, 1000, pinpad)
    flipped = bytes([req.pin_block[0] ^ 0xFF]) + req.pin_block[1:]  # type: ignore[index]
    assert client(acquirer).authorize(replace(req, pin_block=flipped)).response_code == "63"


def test_bad_arqc_is_q1_without_arpc(acquirer: AcquirerSim) -> None:
    response = client(acquirer).authorize(request(1, 1000, None, tamper=True))
    assert response.response_code == "Q1" and response.icc_data == b""


def test_chip_entry_without_icc_data_is_q1(acquirer: AcquirerSim) -> None:
    assert client(acquirer).authorize(replace(request(1, 1000, None), icc_data=b"")).response_code == "Q1"


def test_unknown_and_expired_cards(acquirer: AcquirerSim) -> None:
    c = client(acquirer)
    stranger = replace(GOOD, pan="6299999999999999")
    assert c.authorize(request(1, 1000, None, card=stranger)).response_code == "14"
    assert c.authorize(request(2, 1000, None, card=EXPIRED)).response_code == "54"


@pytest.mark.parametrize("amount, code", [(1005, "05"), (1051, "51"), (1054, "54"), (1061, "61"),
                                          (1091, "91"), (1000, "00"), (101, "00")])
def test_magic_decline_amounts(acquirer: AcquirerSim, amount: int, code: str) -> None:
    assert client(acquirer).authorize(request(1, amount, None)).response_code == code
    assert acquirer.ledger[0].response_code == code


def test_magic_table_is_complete() -> None:
    deliveries = {magic.delivery for magic in MAGIC_AMOUNTS.values()}
    assert deliveries == {"normal", "none", "late", "garbled", "disconnect", "down"}


def test_disconnect_loses_the_request_undecided(acquirer: AcquirerSim) -> None:
    with pytest.raises(LinkTimeout):
        client(acquirer).authorize(request(1, 1093, None))
    assert acquirer.ledger == [] and acquirer.wire_log == ["0200"]
    assert client(acquirer).authorize(request(2, 1000, None)).response_code == "00"  # still serving


def test_host_down_refuses_connections_for_a_while(acquirer: AcquirerSim) -> None:
    acquirer.down_s = 0.5
    req = request(1, 1099, None)
    with pytest.raises(LinkTimeout):
        client(acquirer).authorize(req)
    with pytest.raises(LinkError) as refused:
        client(acquirer).reverse(ReversalRequest(stan=2, original=req))
    assert not isinstance(refused.value, LinkTimeout), "refused before sending: nothing reached the host"
    deadline = time.monotonic() + 5
    while not client(acquirer).echo():
        assert time.monotonic() < deadline, "the host never came back"
        time.sleep(0.05)
    assert client(acquirer).reverse(ReversalRequest(stan=2, original=req)) == "00"
    assert acquirer.ledger == [] and acquirer.wire_log[0] == "0200" and acquirer.wire_log[-2:] == ["0400", "0410"]


def test_no_answer_then_reversal(acquirer: AcquirerSim) -> None:
    c = client(acquirer, timeout_s=0.3)
    req = request(7, 2097, None)
    with pytest.raises(LinkTimeout):
        c.authorize(req)
    assert acquirer.approved_total_minor() == 2097, "approved at the issuer, answer lost"
    assert c.reverse(ReversalRequest(stan=8, original=req)) == "00"
    assert acquirer.ledger[0].reversed and acquirer.approved_total_minor() == 0
    # the reversal as recovery rebuilds it from the journal: no PAN; then a repeat; both idempotent
    journal_original = AuthRequest(stan=7, amount_minor=2097, local_time=LOCAL, pan="", expiry_yymm="")
    assert c.reverse(ReversalRequest(stan=8, original=journal_original, repeat=True)) == "00"
    assert [(r.mti, r.stan, r.original_stan) for r in acquirer.reversals] == [("0400", 8, 7), ("0401", 8, 7)]
    assert [e.reversed for e in acquirer.ledger] == [True]


def test_reversal_of_unknown_original_is_acknowledged(acquirer: AcquirerSim) -> None:
    original = AuthRequest(stan=500, amount_minor=1, local_time=LOCAL, pan="", expiry_yymm="")
    assert client(acquirer).reverse(ReversalRequest(stan=501, original=original)) == "00"
    assert acquirer.reversals[0].masked_pan == "" and acquirer.ledger == []


def test_late_answer_times_out_and_is_not_taken_for_the_next(acquirer: AcquirerSim) -> None:
    acquirer.late_reply_s = 0.6
    c = client(acquirer, timeout_s=0.3)
    with pytest.raises(LinkTimeout):
        c.authorize(request(1, 1098, None))
    response = c.authorize(request(2, 1051, None))
    assert response.response_code == "51"
    assert [e.stan for e in acquirer.ledger] == [1, 2]


def test_reply_delay_beyond_timeout(acquirer: AcquirerSim) -> None:
    acquirer.reply_delay_s = 0.5
    with pytest.raises(LinkTimeout):
        client(acquirer, timeout_s=0.2).authorize(request(1, 1000, None))
    acquirer.reply_delay_s = 0.05
    assert client(acquirer).authorize(request(2, 1000, None)).response_code == "00"


def test_garbled_answer(acquirer: AcquirerSim) -> None:
    with pytest.raises(RemoteProtocolError):
        client(acquirer).authorize(request(1, 1096, None))
    assert acquirer.ledger[0].response_code == "00"  # decided; the terminal must reverse


def test_unreachable_then_back(acquirer: AcquirerSim) -> None:
    c = client(acquirer)
    acquirer.set_unreachable(True)
    with pytest.raises(LinkError) as err:
        c.authorize(request(1, 1000, None))
    assert not isinstance(err.value, LinkTimeout) and acquirer.ledger == []
    assert c.echo() is False
    acquirer.set_unreachable(False)
    assert c.echo() is True


def test_force_response(acquirer: AcquirerSim) -> None:
    c = client(acquirer)
    acquirer.force_response("91")
    assert c.authorize(request(1, 1000, None)).response_code == "91"
    acquirer.force_response(None)
    assert c.authorize(request(2, 1000, None)).response_code == "00"


def test_echo(acquirer: AcquirerSim) -> None:
    assert client(acquirer).echo() is True
    assert acquirer.ledger == []


def test_garbage_into_the_sim_drops_only_that_connection(acquirer: AcquirerSim) -> None:
    with socket.create_connection(acquirer.address, timeout=2) as s:
        s.sendall(m.frame(b"02\xff\xffnot iso 8583"))
        assert s.recv(100) == b""  # dropped without an answer
    assert client(acquirer).echo() is True


def test_no_full_pan_in_ledger_or_logs(acquirer: AcquirerSim, pinpad: pin.DukptPinEncryptor,
                                       caplog: pytest.LogCaptureFixture) -> None:
    c = client(acquirer, timeout_s=0.3)
    with caplog.at_level(logging.DEBUG):
        c.authorize(request(1, 1000, pinpad))
        c.authorize(request(2, 1000, pinpad, entered="9999"))
        c.authorize(request(3, 1000, None, card=EXPIRED))
        with pytest.raises(LinkTimeout):
            c.authorize(request(4, 1097, None))
        with pytest.raises(RemoteProtocolError):
            c.authorize(request(5, 1096, None))
        c.reverse(ReversalRequest(stan=6, original=request(4, 1097, None)))
    text = "\n".join(r.getMessage() for r in caplog.records)
    text += repr(acquirer.ledger) + repr(acquirer.reversals)
    assert mask_pan(GOOD.pan) in text
    for pan in (GOOD.pan, EXPIRED.pan):
        assert pan not in text and pan[6:] not in text
    assert BDK.hex() not in text.lower()


def test_settlement_balanced_then_mismatch_upload_and_close_again(acquirer: AcquirerSim) -> None:
    from flows.ports import BatchTotals, BatchUploadItem, SettlementRequest

    c = client(acquirer)
    c.batch_number = 3
    assert c.authorize(request(1, 3000, None)).response_code == "00"
    assert c.authorize(request(2, 1000, None)).response_code == "00"
    reversed_req = request(3, 500, None)
    assert c.authorize(reversed_req).response_code == "00"
    assert c.reverse(ReversalRequest(stan=4, original=reversed_req)) == "00"
    assert c.settle(SettlementRequest(5, BatchTotals(3, 2, 4000))) == "00"
    assert c.settle(SettlementRequest(6, BatchTotals(3, 3, 4500))) == "95", "a reversed sale is not captured"
    acquirer.forget_last_approval()  # the newest captured sale (1000; the 500 was reversed) is lost by the host
    assert c.settle(SettlementRequest(7, BatchTotals(3, 2, 4000))) == "95"
    assert c.settle(SettlementRequest(7, BatchTotals(3, 1, 3000))) == "00", "the host now has only the 3000"
    for stan, (orig, amount) in enumerate([(1, 3000), (2, 1000)], start=8):
        assert c.upload(BatchUploadItem(stan, orig, amount, "123456", "000000000001", 3)) == "00"
    assert c.settle(SettlementRequest(10, BatchTotals(3, 2, 4000), after_upload=True)) == "00"
    assert c.settle(SettlementRequest(11, BatchTotals(3, 1, 3000), after_upload=True)) == "95"
    assert [(b, p, code) for _, b, p, code in acquirer.settlements] == [
        (3, "920000", "00"), (3, "920000", "95"), (3, "920000", "95"), (3, "920000", "00"), (3, "960000", "00"),
        (3, "960000", "95")]
    assert acquirer.wire_log[-2:] == ["0500", "0510"]


@pytest.mark.parametrize("entry_mode", ["051", "071", "901", "801"])
def test_a_reversal_must_quote_the_originals_entry_mode(acquirer: AcquirerSim, entry_mode: str) -> None:
    """A real host matches a reversal to its original and risk-checks it on field 22 too: the wrong entry mode is
    refused (12) and undoes nothing; the original's own entry mode, as the journal keeps it, reverses it."""
    c = client(acquirer, timeout_s=0.3)
    card = request(30, 2097, None)
    swiped = entry_mode[:2] in ("90", "80")
    req = replace(card, pos_entry_mode=entry_mode, icc_data=b"" if swiped else card.icc_data)
    with pytest.raises(LinkTimeout):  # x.97: approved at the issuer, the answer never comes
        c.authorize(req)
    assert acquirer.ledger[0].entry_mode == entry_mode and acquirer.approved_total_minor() == 2097
    from_journal = AuthRequest(stan=30, amount_minor=2097, local_time=LOCAL, pan="", expiry_yymm="",
                               pos_entry_mode=entry_mode)
    wrong = "071" if entry_mode == "051" else "051"
    assert c.reverse(ReversalRequest(stan=31, original=replace(from_journal, pos_entry_mode=wrong))) == "12"
    assert not acquirer.ledger[0].reversed and acquirer.approved_total_minor() == 2097
    assert c.reverse(ReversalRequest(stan=31, original=from_journal, repeat=True)) == "00"
    assert acquirer.ledger[0].reversed and acquirer.approved_total_minor() == 0
    assert [(r.mti, r.response_code) for r in acquirer.reversals] == [("0400", "12"), ("0401", "00")]


def test_a_reversal_without_an_entry_mode_is_a_format_error(acquirer: AcquirerSim) -> None:
    c = client(acquirer, timeout_s=0.3)
    with pytest.raises(LinkTimeout):
        c.authorize(request(40, 2097, None))
    original = AuthRequest(stan=40, amount_minor=2097, local_time=LOCAL, pan="", expiry_yymm="")
    fields = m.build_reversal(ReversalRequest(stan=41, original=original), transmitted_at=LOCAL,
                              terminal_id="T0000001", merchant_id="M00000000000001")
    del fields["22"]
    assert c._exchange(fields)["39"] == "30"
    assert not acquirer.ledger[0].reversed
