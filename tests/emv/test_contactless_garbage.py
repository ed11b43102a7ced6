"""Hypothesis on what a tapped card or the reader sends back: the kernel 2 subset fed random answers at each step
(GPO, READ RECORD, GENERATE AC) always ends with an Outcome, never another exception; the reader's contactless
payload decoders raise only our ``RemoteProtocolError``."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.card_reader_codec import (
    decode_cl_card,
    decode_cl_collision,
    decode_cl_poll,
    decode_field_off,
    decode_timed,
)
from emv import kernel_c2, kernel_c3
from emv.actions import GoOnline, RequestOnlinePin, SendApdu
from emv.contactless import Combination, ReaderLimits, Status
from emv.entry_point import ContactlessFinished, EntryPoint, FieldOff, PollCards, ShowUi
from emv.relay_resistance import parse_answer
from pos_errors import RemoteProtocolError
from sim.backends.pki import SIM_TRUST
from sim.devices.contactless_cards import MASTERCARD_TAP, EmvModeTapCard

TODAY = dt.date(2026, 5, 1)
COMBOS = (Combination(bytes.fromhex("A000000004"), 2, ReaderLimits(floor_limit=5000, cvm_required_limit=30000)),)
_INS = {"gpo": 0xA8, "read": 0xB2, "genac": 0xAE}


class _Liar:
    """The real Mastercard tap applet, except that one command's answer is replaced by ``data`` + 9000."""

    def __init__(self, ins: int, data: bytes) -> None:
        self.card, self.ins, self.data = EmvModeTapCard(MASTERCARD_TAP["mastercard-cda"]), ins, data

    def process(self, apdu: bytes) -> bytes:
        answer = self.card.process(apdu)
        return self.data + b"\x90\x00" if apdu[1] == self.ins else answer


def _run(card: _Liar, amount: int, host_code: str = "00") -> ContactlessFinished:
    terminal = kernel_c3.terminal_data(amount_minor=amount, unpredictable_number=b"\x01\x02\x03\x04", today=TODAY)
    ep = EntryPoint(COMBOS, amount_minor=amount, kernels={2: kernel_c2.run}, terminal=terminal, capks=SIM_TRUST,
                    today=TODAY)
    action = ep.start()
    for _ in range(200):
        if isinstance(action, ContactlessFinished):
            return action
        if isinstance(action, PollCards):
            action = ep.on_cards(1)
        elif isinstance(action, SendApdu):
            action = ep.on_response(card.process(action.apdu))
        elif isinstance(action, ShowUi | FieldOff):
            action = ep.on_ack()
        elif isinstance(action, RequestOnlinePin):
            action = ep.on_pin("entered")
        elif isinstance(action, GoOnline):
            action = ep.on_online_result(host_code)
    raise AssertionError("the tap never finished")


@pytest.mark.parametrize(("code", "status"), [("00", Status.APPROVED), ("11", Status.APPROVED),
                                              ("10", Status.DECLINED), ("05", Status.DECLINED)])
def test_a_partial_approval_from_the_host_is_no_approval_of_the_tap(code: str, status: Status) -> None:
    """The honest card above the floor limit goes online; a top-up is all or nothing, so an answer 10 (approved
    for part of the amount) ends the tap declined, as the payment flows (which reverse it) already treat it."""
    done = _run(_Liar(0x00, b""), 10000, code)  # INS 00 is never sent: the card answers honestly
    assert done.host_response_code == code and done.outcome.status is status


@pytest.mark.parametrize("step", sorted(_INS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=70), amount=st.sampled_from([2000, 10000, 50000]))
def test_kernel_2_on_a_lying_card_always_ends_with_an_outcome(step: str, data: bytes, amount: int) -> None:
    done = _run(_Liar(_INS[step], data), amount)
    assert isinstance(done.outcome.status, Status)
    if done.outcome.status is Status.APPROVED:  # garbage never approves offline: only the host approves
        assert done.host_response_code == "00"


@given(st.binary(max_size=12))
def test_reader_contactless_payloads_raise_only_our_error(payload: bytes) -> None:
    for decode in (decode_cl_card, decode_cl_collision, decode_cl_poll, decode_field_off, decode_timed,
                   parse_answer):
        try:
            decode(payload)
        except RemoteProtocolError:
            pass
