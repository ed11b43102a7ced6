"""End to end through the crypto: the simulated card applet computes the ARQC at its first GENERATE AC, the
client carries it in field 55 over TCP, the simulated acquirer verifies it and answers tag 91, and the card
itself accepts that ARPC at the second GENERATE AC (TC) — or rejects a tampered one (AAC)."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers.host import HostClient
from emv import apdu, dol, tlv
from emv.crypto import pin
from flows.ports import AuthRequest
from sim.backends.acquirer import AcquirerSim
from sim.devices.card import CDOL1, CDOL2_WITH_91, CardApplet
from sim.devices.cards import CATALOGUE, SimCardProfile
from tests.host.conftest import TODAY

TERMINAL = {0x9F03: bytes(6), 0x9F1A: b"\x01\x56", 0x95: bytes(5), 0x5F2A: b"\x01\x56",
            0x9A: bytes.fromhex(f"{TODAY:%y%m%d}"), 0x9C: b"\x00", 0x9F37: bytes.fromhex("0BADF00D"),
            0x9F35: b"\x22", 0x9F34: bytes.fromhex("420300"), 0x9F7A: b"\x00"}


def _ok(answer: bytes) -> dict[int, bytes]:
    assert answer[-2:] == b"\x90\x00", answer[-2:].hex()
    return tlv.flatten(tlv.decode(answer[:-2]))


def first_ac(card: CardApplet, amount: int) -> tuple[dict[int, bytes], bytes]:
    """SELECT, GPO and the first GENERATE AC (ARQC); returns the terminal data and field 55."""
    p: SimCardProfile = card.profile
    values = {**TERMINAL, 0x9F02: bytes.fromhex(f"{amount:012d}")}
    _ok(card.process(apdu.select(p.aid)))
    gpo = _ok(card.process(apdu.get_processing_options(dol.build(dol.parse(p.pdol), values))))
    cdol1_data = dol.build(dol.parse(CDOL1), values)
    answer = _ok(card.process(apdu.generate_ac(apdu.CryptogramType.ARQC, cdol1_data)))
    assert answer[0x9F27][0] & 0xC0 == int(apdu.CryptogramType.ARQC)
    field55 = [tlv.Tlv(t, answer[t]) for t in (0x9F26, 0x9F27, 0x9F10, 0x9F36)]
    field55 += [tlv.Tlv(0x82, gpo[0x82])]
    field55 += [tlv.Tlv(t, values[t]) for t in (0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37)]
    return values, tlv.encode(field55)


def second_ac(card: CardApplet, values: dict[int, bytes], code: str, issuer_data: bytes) -> int:
    data = dol.build(dol.parse(CDOL2_WITH_91), {**values, 0x8A: code.encode(), 0x91: issuer_data})
    return _ok(card.process(apdu.generate_ac(apdu.CryptogramType.TC, data)))[0x9F27][0] & 0xC0


@pytest.mark.parametrize("tamper", [False, True])
def test_card_accepts_the_acquirers_arpc(tamper: bool) -> None:
    profile = CATALOGUE["unionpay-debit"]
    bdk, ksn = bytes(range(16)), bytes.fromhex("0102030405060708" "00000000")
    pad = pin.DukptPinEncryptor("aes", pin.derive_initial_key("aes", bdk, ksn), ksn)
    card = CardApplet(profile, atc=0x41)
    values, field55 = first_ac(card, 1250)
    block, used_ksn = pad.encrypt_pin(profile.pin, profile.pan)
    request = AuthRequest(stan=11, amount_minor=1250, local_time=dt.datetime.combine(TODAY, dt.time(9)),
                          pan=profile.pan, expiry_yymm=profile.expiry[:4], pan_sequence=profile.psn,
                          icc_data=field55, pin_block=block, ksn=used_ksn)
    with AcquirerSim(bdk=bdk, today=lambda: TODAY) as sim:
        host, port = sim.address
        response = HostClient(host, port, timeout_s=2.0, terminal_id="T0000001",
                              merchant_id="M00000000000001").authorize(request)
    assert response.response_code == "00"
    issuer_data = tlv.first(tlv.decode(response.icc_data), 0x91)
    assert issuer_data is not None and len(issuer_data) == 10
    if tamper:
        issuer_data = bytes([issuer_data[0] ^ 0x80]) + issuer_data[1:]
    expected = apdu.CryptogramType.AAC if tamper else apdu.CryptogramType.TC
    assert second_ac(card, values, response.response_code, issuer_data) == int(expected)
