"""Property tests: every parser of card bytes raises only the project's errors; the kernel fed random but
well-formed card answers always finishes and never approves without a cryptogram from the card."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emv import apdu, cvm, dol, oda, records, selection, tlv
from emv.actions import ChooseApplication, Finished, GoOnline, Outcome, RequestOnlinePin, SendApdu, VerifyOfflinePin
from emv.authentication import StaticData
from emv.capk import TEST_CAPKS
from pos_errors import PosError
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from tests.emv.helpers import CONFIG, transaction

CAPK = TEST_CAPKS[(bytes.fromhex("A000000003"), 0x95)]
ISSUER = oda.RecoveredKey(modulus=CAPK.modulus[:128], exponent=b"\x03")

PARSERS = (
    records.parse_gpo_response, records.parse_afl, lambda b: records.parse_record(b, 1),
    records.parse_generate_ac_response, records.pan_digits, records.psn_digits, selection.parse_fci,
    selection.parse_directory_record, cvm.parse_cvm_list, dol.parse, apdu.split_response, apdu.parse_command,
    lambda b: StaticData().add_record(1, b),
    lambda b: oda.recover_issuer_public_key(CAPK, b, b"", b"\x03"),
    lambda b: oda.recover_issuer_public_key(CAPK, b.ljust(len(CAPK.modulus), b"\x01")[:len(CAPK.modulus)], b"",
                                            b"\x03"),
    lambda b: oda.recover_icc_public_key(ISSUER, b.ljust(128, b"\x02")[:128], b"", b"\x03", b""),
    lambda b: oda.verify_signed_static_data(ISSUER, b.ljust(128, b"\x03")[:128], b""),
    lambda b: oda.verify_signed_dynamic_data(ISSUER, b.ljust(128, b"\x04")[:128], b""),
)


@given(st.sampled_from(range(len(PARSERS))), st.binary(max_size=300))
@settings(max_examples=400, deadline=None)
def test_random_bytes_into_every_parser_raise_only_our_errors(which: int, data: bytes) -> None:
    try:
        PARSERS[which](data)
    except PosError:
        pass


_tags = st.sampled_from([0x9F27, 0x9F36, 0x9F26, 0x9F10, 0x82, 0x94, 0x5A, 0x5F24, 0x8C, 0x8D, 0x8E, 0x9F4B,
                         0x9F46, 0x90, 0x8F, 0x9F32, 0x50, 0x84, 0x87, 0x4F, 0x57, 0x9F38])
_primitive = st.builds(tlv.Tlv, _tags, st.binary(max_size=24))
_template = st.one_of(
    st.builds(lambda tag, kids: tlv.Tlv.template(tag, *kids), st.sampled_from([0x77, 0x70, 0x6F]),
              st.lists(_primitive, max_size=5)),
    st.builds(tlv.Tlv, st.just(0x80), st.binary(max_size=40)))
_answer = st.one_of(
    st.just(None),  # the real card's answer
    st.builds(lambda t: bytes(t) + b"\x90\x00", _template),
    st.sampled_from([b"\x6a\x82", b"\x69\x85", b"\x63\xc1", b"\x61\x05", b"\x6c\x03", b"\x90\x00"]),
)


EVERYTHING_ON = dataclasses.replace(CONFIG, capabilities=bytes.fromhex("E0F8C8"), cardholder_selection=True)


@given(st.sampled_from(sorted(CATALOGUE)), st.lists(_answer, min_size=1, max_size=30),
       st.sampled_from(["00", "05", None]), st.sampled_from([0x9000, 0x63C1, 0x6983]))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_kernel_on_well_formed_nonsense_finishes_and_never_approves_without_a_cryptogram(
        key: str, script: list[bytes | None], code: str | None, pin_sw: int) -> None:
    card = CardApplet(CATALOGUE[key])
    tx = transaction(EVERYTHING_ON)
    action = tx.start()
    for step in range(300):
        if isinstance(action, Finished):
            break
        if isinstance(action, SendApdu):
            real = card.process(action.apdu)
            fake = script[step % len(script)]
            action = tx.on_response(real if fake is None else fake)
        elif isinstance(action, RequestOnlinePin):
            action = tx.on_pin("entered")
        elif isinstance(action, VerifyOfflinePin):
            action = tx.on_offline_pin("entered", pin_sw)
        elif isinstance(action, ChooseApplication):
            action = tx.on_application(len(action.labels) - 1)
        elif isinstance(action, GoOnline):
            action = tx.on_online_result(code, b"")
    assert isinstance(action, Finished), "the kernel did not finish"
    if action.outcome is Outcome.APPROVED:
        assert len(tx.data.get(0x9F26, b"")) == 8
        assert tx.data[0x9F27][0] & 0xC0 == 0x40  # the card's last word was a TC


def test_the_properties_can_fail() -> None:
    # the checks above hold real conditions: an approval needs a TC from the card
    card = CardApplet(CATALOGUE["unionpay-debit"])
    tx = transaction(CONFIG)
    action = tx.start()
    while not isinstance(action, Finished):
        if isinstance(action, SendApdu):
            action = tx.on_response(card.process(action.apdu))
        elif isinstance(action, RequestOnlinePin):
            action = tx.on_pin("entered")
        else:
            action = tx.on_online_result("05", b"")
    assert action.outcome is Outcome.DECLINED and tx.data[0x9F27][0] & 0xC0 == 0x00
