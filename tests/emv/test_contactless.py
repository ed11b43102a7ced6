"""Entry Point (Book B §3) and the C-3 kernel against simulated contactless cards, in memory.

The host here is the issuer: it rebuilds the ARQC from field 55 with the card's own keys
(``sim.backends.issuer``) and approves only when it matches, so an online approval proves the cryptogram.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emv import contactless as cl
from emv import kernel_c3, tags, tlv
from emv.actions import GoOnline, RequestOnlinePin, SendApdu
from emv.contactless import Combination, Cvm, Message, ReaderLimits, Status
from emv.crypto import arqc
from emv.entry_point import ContactlessFinished, EntryPoint, FieldOff, PollCards, ShowUi
from pos_errors import LocalProtocolError, RemoteProtocolError
from sim.backends.issuer import ac_session_key
from sim.backends.pki import SIM_TRUST
from sim.devices.contactless_cards import CONTACTLESS_CATALOGUE, ContactlessCard, ContactlessProfile

TODAY = dt.date(2026, 5, 1)
UN = bytes.fromhex("A1B2C3D4")
LIMITS = ReaderLimits(contactless_limit=100000, floor_limit=5000, cvm_required_limit=30000)
COMBINATIONS = (Combination(bytes.fromhex("A000000333"), 7, LIMITS),
                Combination(bytes.fromhex("A000000003"), 3, LIMITS))
KERNELS = {3: kernel_c3.run, 7: kernel_c3.run}


@dataclass
class Tap:
    """What happened during one tap: the result and every action, for assertions."""

    result: ContactlessFinished
    apdus: list[bytes] = field(default_factory=list)
    online: list[GoOnline] = field(default_factory=list)
    pin_asked: bool = False
    ui: list[Message] = field(default_factory=list)


def tap(profile: ContactlessProfile, amount: int, *, pin: str = "entered", cards_in_field: tuple[int, ...] = (1,),
        host_code: str | None = None) -> Tap:
    card = ContactlessCard(profile)
    terminal = kernel_c3.terminal_data(amount_minor=amount, unpredictable_number=UN, today=TODAY)
    ep = EntryPoint(COMBINATIONS, amount_minor=amount, kernels=KERNELS, terminal=terminal, capks=SIM_TRUST,
                    today=TODAY)
    polls = list(cards_in_field)
    seen: list[bytes] = []
    online: list[GoOnline] = []
    asked = False
    action = ep.start()
    for _ in range(200):
        if isinstance(action, ContactlessFinished):
            return Tap(action, seen, online, asked, [u.message for u in action.ui_requests])
        if isinstance(action, PollCards):
            action = ep.on_cards(polls.pop(0) if polls else 1)
        elif isinstance(action, SendApdu):
            seen.append(action.apdu)
            action = ep.on_response(card.process(action.apdu))
        elif isinstance(action, ShowUi | FieldOff):
            action = ep.on_ack()
        elif isinstance(action, RequestOnlinePin):
            asked = True
            action = ep.on_pin(pin)
        elif isinstance(action, GoOnline):
            online.append(action)
            action = ep.on_online_result(host_code or issuer(profile, action))
    raise AssertionError("the tap did not finish")


def issuer(profile: ContactlessProfile, request: GoOnline) -> str:
    """Approve ("00") only when the ARQC in field 55 verifies with the card's keys, else "05"."""
    values = tlv.flatten(tlv.decode(request.icc_data))
    session = ac_session_key(profile.card, values[0x9F36])
    expected = arqc.generate_ac(session, arqc.ac_input(values))
    return "00" if expected == values[0x9F26] else "05"


CARDS = CONTACTLESS_CATALOGUE


# --- the five scenarios of the brief, and the failure paths -------------------------------------------------


def test_quickpass_debit_online_no_cvm() -> None:
    done = tap(CARDS["quickpass-debit"], 10000)  # over the floor limit, under the CVM required limit
    assert done.result.outcome.status is Status.APPROVED
    assert done.result.kernel_id == 7 and done.result.host_response_code == "00"
    assert done.result.outcome.cvm is Cvm.NO_CVM and not done.pin_asked
    field55 = tlv.flatten(tlv.decode(done.online[0].icc_data))
    assert field55[0x9F27] == b"\x80"  # ARQC
    assert field55[0x9F66].hex().upper() == "3680C000"  # online cryptogram required, no CVM required
    assert field55[0x9F34].hex().upper() == "1F0002"
    assert 0x5A not in field55 and 0x57 not in field55  # PAN and track 2 travel outside field 55
    assert done.online[0].pan == CARDS["quickpass-debit"].card.pan
    assert [a[:4].hex().upper() for a in done.apdus[:3]] == ["00A40400", "00A40400", "80A80000"]
    record = done.result.outcome.data_record
    assert [f"{t:X}" for t, v in record.items() if t not in tags.TAGS or not tags.check_length(t, v)] == []


def test_paywave_offline_approval_with_fdda() -> None:
    done = tap(CARDS["paywave-offline"], 2000)  # under the floor limit
    assert done.result.outcome.status is Status.APPROVED
    assert done.online == [] and done.result.kernel_id == 3
    record = done.result.outcome.data_record
    assert record[0x9F27] == b"\x40"  # TC
    assert done.ui[-1] is Message.APPROVED
    assert any(a[:2] == b"\x00\xb2" for a in done.apdus)  # the certificates were read for fDDA


def test_over_the_contactless_limit_tries_another_interface_without_touching_the_card() -> None:
    done = tap(CARDS["quickpass-debit"], 100000)  # at the limit: not allowed (Book B §3.1.1.5)
    assert done.result.outcome.status is Status.TRY_ANOTHER_INTERFACE
    assert done.apdus == [] and done.ui == [Message.INSERT_OR_SWIPE]


def test_over_the_cvm_required_limit_asks_for_online_pin() -> None:
    done = tap(CARDS["quickpass-debit"], 50000)
    assert done.pin_asked and done.result.outcome.cvm is Cvm.ONLINE_PIN
    assert done.result.outcome.status is Status.APPROVED
    field55 = tlv.flatten(tlv.decode(done.online[0].icc_data))
    assert field55[0x9F66].hex().upper() == "36C0C000"  # online cryptogram and CVM required
    assert field55[0x9F6C][0] & 0x80 and field55[0x9F34].hex().upper() == "020002"


def test_online_pin_cancelled_declines_without_going_online() -> None:
    done = tap(CARDS["quickpass-debit"], 50000, pin="cancelled")
    assert done.result.outcome.status is Status.DECLINED and done.online == []


def test_card_declines_with_aac() -> None:
    done = tap(CARDS["quickpass-decline"], 10000)
    assert done.result.outcome.status is Status.DECLINED and done.online == []
    assert done.result.outcome.data_record[0x9F27] == b"\x00"
    assert done.ui[-1] is Message.NOT_AUTHORISED


def test_host_decline_is_declined() -> None:
    done = tap(CARDS["quickpass-debit"], 10000, host_code="51")
    assert done.result.outcome.status is Status.DECLINED and done.result.host_response_code == "51"


def test_tampered_cryptogram_is_refused_by_the_issuer() -> None:
    profile = CARDS["quickpass-debit"]
    forged = replace(profile, card=replace(profile.card, issuer_master_key=bytes(16)))
    done = tap(forged, 10000, host_code=None)
    assert issuer(profile, done.online[0]) == "05"


def test_phone_with_consumer_device_cvm_over_the_cvm_limit() -> None:
    done = tap(CARDS["quickpass-phone"], 50000)
    assert done.result.outcome.cvm is Cvm.CONFIRMATION_CODE_VERIFIED and not done.pin_asked
    assert done.result.outcome.status is Status.APPROVED


def test_broken_fdda_declines_offline() -> None:
    done = tap(CARDS["paywave-bad-fdda"], 2000)
    assert done.result.outcome.status is Status.DECLINED
    assert "fDDA failed" in done.result.outcome.reason


def test_expired_card_declines_its_own_offline_approval() -> None:
    profile = CARDS["paywave-offline"]
    expired = replace(profile, card=replace(profile.card, expiry="251231"))
    done = tap(expired, 2000)
    assert done.result.outcome.status is Status.DECLINED
    assert "expired" in done.result.outcome.reason


def test_card_refusing_contactless_tries_another_interface() -> None:
    done = tap(CARDS["quickpass-refuses"], 1000)
    assert done.result.outcome.status is Status.TRY_ANOTHER_INTERFACE


def test_two_cards_in_the_field_ask_for_one_card_only() -> None:
    done = tap(CARDS["quickpass-debit"], 10000, cards_in_field=(2, 1))
    assert done.ui[0] is Message.PRESENT_ONE_CARD_ONLY
    assert done.result.outcome.status is Status.APPROVED


def test_phone_asking_to_see_phone_restarts_then_gives_up() -> None:
    profile = replace(CARDS["quickpass-debit"], gpo_sw=b"\x69\x86")
    done = tap(profile, 10000)
    assert done.ui.count(Message.SEE_PHONE) == 4  # the first try and MAX_RESTARTS
    assert done.result.outcome.status is Status.END_APPLICATION


def test_answers_out_of_turn_are_local_errors() -> None:
    ep = EntryPoint(COMBINATIONS, amount_minor=100, kernels=KERNELS)
    assert isinstance(ep.start(), PollCards)
    with pytest.raises(LocalProtocolError):
        ep.on_response(b"\x90\x00")


# --- pre-processing, PPSE, combination selection --------------------------------------------------------

# fmt: off
PREPROCESSING = [
    # amount  limits (cl, floor, cvm, status, zero ok)   not allowed  floor  cvm    TTQ out
    (2000,    (100000, 5000, 30000, False, True),        False,       False, False, "3600C000"),
    (5001,    (100000, 5000, 30000, False, True),        False,       True,  False, "3680C000"),
    (30000,   (100000, 5000, 30000, False, True),        False,       True,  True,  "36C0C000"),
    (100000,  (100000, 5000, 30000, False, True),        True,        True,  True,  "36C0C000"),
    (100,     (None,   None, None,  True,  True),        False,       False, False, "3680C000"),  # status check
    (0,       (None,   None, None,  False, True),        False,       False, False, "3680C000"),  # zero: online
    (0,       (None,   None, None,  False, False),       True,        False, False, "3600C000"),  # zero refused
]
# fmt: on


@pytest.mark.parametrize(("amount", "limits", "not_allowed", "floor", "cvm", "ttq"), PREPROCESSING)
def test_preprocessing(amount: int, limits: tuple, not_allowed: bool, floor: bool, cvm: bool, ttq: str) -> None:
    cl_limit, floor_limit, cvm_limit, status, zero_ok = limits
    reader = ReaderLimits(contactless_limit=cl_limit, floor_limit=floor_limit, cvm_required_limit=cvm_limit,
                          status_check=status, zero_amount_allowed=zero_ok, ttq=bytes.fromhex("36C0C000"))
    ind = cl.preprocess((Combination(b"\xa0\x00\x00\x03\x33", 7, reader),), amount)[0]
    assert (ind.not_allowed, ind.floor_limit_exceeded, ind.cvm_limit_exceeded) == (not_allowed, floor, cvm)
    assert ind.ttq.hex().upper() == ttq  # byte 2 b8-b7 reset first (§3.1.1.2)


# SELECT PPSE answer with three entries: UnionPay kernel 7 priority 2, Visa default kernel priority 1, unknown RID.
PPSE = ("6F48" "840E325041592E5359532E4444463031" "A536" "BF0C33"
        "6111" "4F08A000000333010101" "870102" "9F2A0107"
        "610C" "4F07A0000000031010" "870101"
        "6110" "4F07A0000009991010" "870101" "9F2A0103")

# fmt: off
KERNEL_IDS = [
    # 9F2A       ADF name            requested kernel
    (None,       "A0000000031010",   3),     # absent: default by RID (Book B Table 3-6)
    ("00",       "A0000003330101",   7),     # 00: default
    ("02",       "A0000000031010",   2),     # international kernel 2
    ("C10203",   "A0000000031010",   0xC10203),  # domestic: three bytes
    ("C1",       "A0000000031010",   None),  # domestic but too short
    (None,       "A0000009991010",   None),  # unknown RID, no default
]
# fmt: on


@pytest.mark.parametrize(("kid", "adf", "expected"), KERNEL_IDS)
def test_requested_kernel_id(kid: str | None, adf: str, expected: int | None) -> None:
    entry = cl.DirectoryEntry(bytes.fromhex(adf), kernel_identifier=bytes.fromhex(kid) if kid else None)
    assert cl.requested_kernel_id(entry) == expected


def test_ppse_candidates_in_priority_order() -> None:
    entries = cl.parse_ppse(bytes.fromhex(PPSE))
    assert [e.adf_name.hex().upper() for e in entries] == ["A000000333010101", "A0000000031010",
                                                          "A0000009991010"]
    indicators = cl.preprocess(COMBINATIONS, 1000)
    ordered = cl.order(cl.match(entries, COMBINATIONS, indicators))
    assert [(c.entry.adf_name.hex().upper(), c.combination.kernel_id) for c in ordered] == [
        ("A0000000031010", 3), ("A000000333010101", 7)]


def test_ppse_split_anywhere_is_an_error_not_a_crash() -> None:
    raw = bytes.fromhex(PPSE)
    for cut in range(1, len(raw)):
        try:
            cl.parse_ppse(raw[:cut])
        except RemoteProtocolError:
            pass


@given(st.binary(max_size=80))
def test_ppse_random_bytes_raise_only_our_errors(data: bytes) -> None:
    try:
        cl.parse_ppse(data)
    except RemoteProtocolError:
        pass


@given(st.binary(max_size=60))
def test_ppse_random_directory_entries_raise_only_our_errors(inner: bytes) -> None:
    body = bytes(tlv.Tlv(0xBF0C, inner))
    data = bytes(tlv.Tlv(0x6F, bytes(tlv.Tlv(0x84, b"2PAY.SYS.DDF01")) + bytes(tlv.Tlv(0xA5, body))))
    try:
        for entry in cl.parse_ppse(data):
            cl.requested_kernel_id(entry)
    except RemoteProtocolError:
        pass


class _Garbage:
    """A real card for selection, then ``gpo`` (and ``record``) as the card's answers, with 9000."""

    def __init__(self, gpo: bytes, record: bytes) -> None:
        self._card = ContactlessCard(CARDS["quickpass-debit"])
        self._gpo, self._record = gpo, record

    def process(self, command: bytes) -> bytes:
        if command[:2] == b"\x80\xa8":
            return self._gpo + b"\x90\x00"
        if command[:2] == b"\x00\xb2":
            return self._record + b"\x90\x00"
        return self._card.process(command)


def _run_against(card: _Garbage | _TwoApps, amount: int = 2000) -> ContactlessFinished:
    terminal = kernel_c3.terminal_data(amount_minor=amount, unpredictable_number=UN, today=TODAY)
    ep = EntryPoint(COMBINATIONS, amount_minor=amount, kernels=KERNELS, terminal=terminal, capks=SIM_TRUST,
                    today=TODAY)
    action = ep.start()
    for _ in range(100):
        if isinstance(action, ContactlessFinished):
            return action
        if isinstance(action, PollCards):
            action = ep.on_cards(1)
        elif isinstance(action, SendApdu):
            action = ep.on_response(card.process(action.apdu))
        elif isinstance(action, RequestOnlinePin):
            action = ep.on_pin("entered")
        elif isinstance(action, GoOnline):
            action = ep.on_online_result("05")
        else:
            action = ep.on_ack()
    raise AssertionError("did not finish")


_objects = st.lists(st.tuples(st.sampled_from([0x82, 0x94, 0x9F27, 0x9F26, 0x9F36, 0x9F10, 0x57, 0x5A, 0x9F6C,
                                               0x9F69, 0x8F, 0x90, 0x9F32, 0x9F46, 0x9F47, 0x9F4B, 0x5F24]),
                              st.binary(max_size=12)), max_size=12)


@given(_objects, st.binary(max_size=40))
def test_kernel_on_garbage_card_data_always_finishes(objects: list[tuple[int, bytes]], record: bytes) -> None:
    gpo = bytes(tlv.Tlv.template(0x77, *(tlv.Tlv(t, v) for t, v in objects)))
    done = _run_against(_Garbage(gpo, record))
    assert isinstance(done.outcome.status, Status)


@given(st.binary(max_size=60))
def test_kernel_on_random_gpo_bytes_always_finishes(gpo: bytes) -> None:
    assert isinstance(_run_against(_Garbage(gpo, b"")).outcome.status, Status)


def test_offline_answer_with_empty_ca_index_declines_not_crashes() -> None:
    objects = [(0x82, "2040"), (0x9F27, "40"), (0x9F26, "0102030405060708"), (0x9F36, "0001"), (0x9F10, "00"),
               (0x5A, "6212345678901232"), (0x8F, ""), (0x90, "00"), (0x9F32, "03"), (0x9F46, "00"),
               (0x9F47, "03"), (0x9F4B, "00")]
    gpo = bytes(tlv.Tlv.template(0x77, *(tlv.Tlv(t, bytes.fromhex(v)) for t, v in objects)))
    done = _run_against(_Garbage(gpo, b""))
    assert done.outcome.status is Status.DECLINED and "8F" in done.outcome.reason


class _TwoApps:
    """The QuickPass debit card plus a credit application listed first (priority 1) that refuses GPO (6985)."""

    CREDIT = bytes.fromhex("A000000333010102")

    def __init__(self) -> None:
        self._card = ContactlessCard(CARDS["quickpass-debit"])
        self._credit = False
        self.refused = 0

    def process(self, command: bytes) -> bytes:
        if command[:4] == bytes.fromhex("00A40400"):
            name = command[5:5 + command[4]]
            self._credit = name == self.CREDIT
            if name == b"2PAY.SYS.DDF01":
                entry = tlv.Tlv.template(0x61, tlv.Tlv(0x4F, self.CREDIT), tlv.Tlv(0x87, b"\x01"),
                                         tlv.Tlv(0x9F2A, b"\x07"))
                real = tlv.decode(self._card.process(command)[:-2])[0]  # 6F { 84, A5 { BF0C } }
                bf0c = tlv.decode(real.children[1].value)[0]
                both = tlv.Tlv.template(0xBF0C, entry, *bf0c.children)
                fci = tlv.Tlv.template(0x6F, tlv.Tlv(0x84, name), tlv.Tlv.template(0xA5, both))
                return bytes(fci) + b"\x90\x00"
            if self._credit:
                fci = tlv.Tlv.template(0x6F, tlv.Tlv(0x84, self.CREDIT), tlv.Tlv.template(
                    0xA5, tlv.Tlv(0x9F38, bytes.fromhex("9F6604"))))
                return bytes(fci) + b"\x90\x00"
        if command[:2] == b"\x80\xa8" and self._credit:
            self.refused += 1
            return b"\x69\x85"
        return self._card.process(command)


def test_select_next_takes_the_next_candidate() -> None:
    card = _TwoApps()
    done = _run_against(card, amount=10000)
    assert done.aid == bytes.fromhex("A000000333010101")  # credit refused GPO, debit went online
    assert done.outcome.status is Status.DECLINED and done.host_response_code == "05"
    assert card.refused == 1  # the credit application was tried first (priority 1), then dropped
