"""EMV Contactless Entry Point as a sans-I/O core: a generator of actions, like ``emv.kernel.Transaction``
(EMV Contactless Book B v2.x §3).

Flow (Book B Figure 3-1)::

    Start A  pre-processing (§3.1)       indicators + TTQ per combination; all not allowed → Try Another Interface
    Start B  protocol activation (§3.2)  PollCards; more than one card → "present one card only", poll again
    Start C  combination selection (§3.3) SELECT PPSE → candidates → highest priority → SELECT AID
    Start D  kernel activation (§3.4)    the kernel of the combination runs until it gives an Outcome
             outcome processing (§3.5)   Select Next → C; Try Again → B; Online Request → PIN? → GoOnline
             issuer update (C-3 §5.9)     Online Request with Start B and a host answer with 91/71/72 →
                                          "present card again", PollCards(again=True), SELECT AID,
                                          ``emv.issuer_update.run``; the host's decision stands either way

The caller performs each action and feeds the answer back: ``PollCards`` → ``on_cards(n)``, ``SendApdu`` →
``on_response``, ``ShowUi`` / ``FieldOff`` → ``on_ack``, ``RequestOnlinePin`` → ``on_pin``, ``GoOnline`` →
``on_online_result`` (with the host's field 55); a card lost during the second presentation → ``on_card_lost``.
``ContactlessFinished`` ends the transaction. A card that sends garbage ends it with
End Application; only misuse of the API raises (``LocalProtocolError``).

>>> from emv.contactless import Combination, ReaderLimits
>>> ep = EntryPoint((Combination(bytes.fromhex("A0000003330101"), 7, ReaderLimits(contactless_limit=100)),),
...                 amount_minor=500, kernels={})
>>> done = ep.start(); done.outcome.status.value, done.ui_requests[0].message.name
('try_another_interface', 'INSERT_OR_SWIPE')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field

from emv import apdu, issuer_update, tlv
from emv.actions import Action, GoOnline, RequestOnlinePin, SendApdu, Step, Stop, transmit
from emv.capk import Capk
from emv.contactless import (
    PPSE,
    Candidate,
    Combination,
    Cvm,
    DirectoryEntry,
    Message,
    Outcome,
    Start,
    Status,
    UiRequest,
    UiStatus,
    match,
    order,
    parse_ppse,
    preprocess,
)
from emv.relay_resistance import Timed
from emv.selection import Fci, parse_fci
from emv.torn import TornLog
from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = ["EntryPoint", "KernelContext", "Kernel", "PollCards", "ShowUi", "FieldOff", "ContactlessFinished",
           "ContactlessAction", "APPROVAL_CODES", "MAX_RESTARTS"]

APPROVAL_CODES = frozenset({"00", "11"})  # approve the whole amount; a partial approval (10) is none here
MAX_RESTARTS = 3  # Try Again / Select Next loops: a card that always asks again is given up on
_TAI = UiRequest(Message.INSERT_OR_SWIPE, UiStatus.PROCESSING_ERROR)
_END = UiRequest(Message.TRY_ANOTHER_CARD, UiStatus.PROCESSING_ERROR)


@dataclass(frozen=True)
class PollCards:
    """Protocol activation (Book B §3.2, Book D): field on, poll; call ``on_cards`` with how many answered.
    ``again``: the second presentation for issuer update, after the host answered: 0 (not presented in time)
    finishes with the host's decision, never fails the payment."""

    ui: UiRequest = UiRequest(Message.PRESENT_CARD, UiStatus.READY_TO_READ)
    again: bool = False


class _CardLost(Exception):
    """The card left the field (or the reader failed) during the second presentation."""


@dataclass(frozen=True)
class ShowUi:
    """Show a User Interface Request (Book A §9) on the reader; call ``on_ack``."""

    request: UiRequest


@dataclass(frozen=True)
class FieldOff:
    """Switch the field off, back on after ``hold_ms`` if a restart follows (Book A §6.2.10); ``on_ack``."""

    hold_ms: int = 0


@dataclass(frozen=True)
class ContactlessFinished:
    """The tap is over: the final outcome, the kernel that ran, and every UI request shown, in order."""

    outcome: Outcome
    kernel_id: int | None
    aid: bytes | None
    host_response_code: str | None = None
    ui_requests: tuple[UiRequest, ...] = field(default_factory=tuple)


# The kernels' card exchanges are emv.actions steps, so the union includes every Action type; Entry Point and
# kernel 3 only ever yield SendApdu, RequestOnlinePin and GoOnline of them.
ContactlessAction = PollCards | ShowUi | FieldOff | Action | ContactlessFinished


@dataclass(frozen=True)
class KernelContext:
    """What Entry Point hands a kernel at activation (Book B §3.4.1): the FCI, the combination, its
    pre-processing indicators (with the TTQ) and the terminal's transaction data (``9F02``, ``9F03``, ``5F2A``,
    ``9F1A``, ``9A``, ``9C``, ``9F37``, ``9F35``, ``9F33``...)."""

    fci: Fci
    candidate: Candidate
    amount_minor: int
    terminal: Mapping[int, bytes] = field(repr=False)
    capks: Mapping[tuple[bytes, int], Capk] = field(default_factory=dict, repr=False)
    today: dt.date | None = None  # injected: the core has no clock; None skips expiry checks
    torn: TornLog | None = field(default=None, repr=False)  # kernel 2's torn transaction log (emv.torn)
    random_bytes: Callable[[int], bytes] | None = field(default=None, repr=False)  # fresh UNs (relay resistance)


Kernel = Callable[[KernelContext], Step[Outcome]]


class EntryPoint:
    """One contactless transaction through Entry Point and a kernel (Book B §3).

    Args:
        combinations: the reader's {AID, kernel} combinations with their limits, in reader order.
        amount_minor: Amount, Authorised.
        kernels: kernel ID → kernel generator (``emv.kernel_c3.run`` for 3 and 7, ``emv.kernel_c2.run`` for 2).
        terminal: the terminal's data elements for the kernels (``emv.kernel_c3.terminal_data``).
    """

    def __init__(self, combinations: Sequence[Combination], *, amount_minor: int, kernels: Mapping[int, Kernel],
                 terminal: Mapping[int, bytes] | None = None, currency_exponent: int = 2,
                 capks: Mapping[tuple[bytes, int], Capk] | None = None, today: dt.date | None = None,
                 torn: TornLog | None = None, random_bytes: Callable[[int], bytes] | None = None) -> None:
        self._torn, self._random_bytes = torn, random_bytes
        self._combos = tuple(combinations)
        self._amount = amount_minor
        self._kernels = dict(kernels)
        self._terminal = dict(terminal or {})
        self._exponent = currency_exponent
        self._capks = dict(capks or {})
        self._today = today
        self._ui: list[UiRequest] = []
        self._gen: Generator[ContactlessAction, object, ContactlessFinished] | None = None
        self._waiting: type | None = None
        self._pending: object = None
        self._again = False  # in the second presentation (issuer update)
        self.finished: ContactlessFinished | None = None

    # --- the caller's API --------------------------------------------------------------------------------

    def start(self) -> ContactlessAction:
        if self._gen is not None:
            raise LocalProtocolError("the transaction has already started")
        self._gen = self._run()
        return self._step(None)

    def on_cards(self, count: int) -> ContactlessAction:
        return self._answer(PollCards, count)

    def on_response(self, rapdu: bytes, elapsed_us: int | None = None) -> ContactlessAction:
        """The card's answer; for a ``SendApdu(timed=True)`` also the microseconds the reader measured."""
        if isinstance(self._pending, SendApdu) and self._pending.timed:
            return self._answer(SendApdu, Timed(rapdu, elapsed_us))
        return self._answer(SendApdu, rapdu)

    def on_ack(self) -> ContactlessAction:
        if self._waiting is FieldOff:
            return self._answer(FieldOff, None)
        return self._answer(ShowUi, None)

    def on_pin(self, status: str) -> ContactlessAction:
        return self._answer(RequestOnlinePin, status)

    def on_online_result(self, response_code: str | None, issuer_data: bytes = b"") -> ContactlessAction:
        """The host's response code (None: no answer) and its field 55 (``91``, ``71``, ``72``)."""
        return self._answer(GoOnline, (response_code, bytes(issuer_data)))

    def on_card_lost(self) -> ContactlessAction:
        """The card left the field or the reader failed while presented again for issuer update."""
        if self._gen is None or not isinstance(self._pending, (SendApdu, PollCards)) or not self._again:
            raise LocalProtocolError("on_card_lost is only for the second presentation")
        return self._step(None, _CardLost())

    # --- driving the generator ---------------------------------------------------------------------------

    def _answer(self, kind: type, answer: object) -> ContactlessAction:
        if self._gen is None or self._waiting is not kind:
            waiting = self._waiting.__name__ if self._waiting else "nothing"
            raise LocalProtocolError(f"answer to {kind.__name__} given while waiting for {waiting}")
        return self._step(answer)

    def _step(self, answer: object, error: Exception | None = None) -> ContactlessAction:
        if self._gen is None:
            raise LocalProtocolError("start() the transaction first")
        try:
            action = self._gen.send(answer) if error is None else self._gen.throw(error)
        except StopIteration as stop:
            finished: ContactlessFinished = stop.value
            self.finished, self._waiting = finished, None
            return finished
        if isinstance(action, ShowUi):
            self._ui.append(action.request)
        self._waiting, self._pending = type(action), action
        return action

    def _done(self, outcome: Outcome, candidate: Candidate | None = None,
              code: str | None = None) -> ContactlessFinished:
        if outcome.ui is not None:
            self._ui.append(outcome.ui)
        return ContactlessFinished(outcome, candidate.combination.kernel_id if candidate else None,
                                   candidate.entry.adf_name if candidate else None, code, tuple(self._ui))

    # --- the flow ---------------------------------------------------------------------------------------

    def _run(self) -> Generator[ContactlessAction, object, ContactlessFinished]:
        indicators = preprocess(self._combos, self._amount, currency_exponent=self._exponent,
                                terminal_floor_limit=None)
        if all(i.not_allowed for i in indicators):  # Book B §3.1.1.13
            return self._done(Outcome(Status.TRY_ANOTHER_INTERFACE, "amount not allowed on any combination",
                                      ui=_TAI))
        candidates: list[Candidate] | None = None
        for _ in range(MAX_RESTARTS + 1):
            yield from self._activate_protocol()
            try:
                if candidates is None:
                    candidates = order(match((yield from self._ppse()), self._combos, indicators))
                outcome, chosen = yield from self._select_and_run(candidates)
            except (RemoteProtocolError, Stop) as exc:
                return self._done(Outcome(Status.END_APPLICATION, f"card error: {exc}", ui=_END))
            if outcome.status is Status.TRY_AGAIN:  # Book B §3.5.1.1: back to Start B
                if outcome.ui_on_restart is not None:
                    yield ShowUi(outcome.ui_on_restart)
                candidates = None
                continue
            return (yield from self._process_outcome(outcome, chosen))
        return self._done(Outcome(Status.END_APPLICATION, "the card asked to try again too often", ui=_END))

    def _activate_protocol(self) -> Generator[ContactlessAction, object, None]:
        """Book B §3.2: poll until exactly one card answers; a collision asks for one card only (Book D)."""
        while True:
            count = yield PollCards()
            if count == 1:
                return
            if isinstance(count, int) and count > 1:
                yield ShowUi(UiRequest(Message.PRESENT_ONE_CARD_ONLY, UiStatus.PROCESSING_ERROR))

    def _ppse(self) -> Generator[ContactlessAction, object, tuple[DirectoryEntry, ...]]:
        """Book B §3.3.2: SELECT PPSE; a card without one has no candidates."""
        response = yield from transmit(apdu.select(PPSE), "SELECT PPSE")
        if not response.ok:
            return ()
        return parse_ppse(response.data)

    def _select_and_run(self, candidates: list[Candidate]) -> Generator[ContactlessAction, object,
                                                                             tuple[Outcome, Candidate | None]]:
        """Book B §3.3.3 final combination selection and §3.4 kernel activation; Select Next loops here."""
        while candidates:
            chosen = candidates.pop(0)
            response = yield from transmit(apdu.select(chosen.select_name()), "SELECT AID")
            if not response.ok:
                continue  # §3.3.3.5: drop it, take the next
            fci = parse_fci(response.data)
            kernel = self._kernels.get(chosen.combination.kernel_id)
            if kernel is None:
                continue
            context = KernelContext(fci, chosen, self._amount, {**self._terminal, 0x9F66: chosen.indicators.ttq,
                                                                  0x84: fci.df_name}, self._capks, self._today,
                                    self._torn, self._random_bytes)
            outcome = yield from kernel(context)
            if outcome.status is Status.SELECT_NEXT:  # Book B §3.5.1.2: Start C without this candidate
                continue
            return outcome, chosen
        return Outcome(Status.END_APPLICATION, "no usable application on the card", ui=_END), None

    def _process_outcome(self, outcome: Outcome, chosen: Candidate | None) -> Generator[
            ContactlessAction, object, ContactlessFinished]:
        """Book B §3.5: field off, CVM the terminal performs, the online request and its answer."""
        if outcome.field_off_ms is not None:
            yield FieldOff(outcome.field_off_ms)
        if outcome.status is not Status.ONLINE_REQUEST:
            return self._done(outcome, chosen)
        if outcome.ui is not None:
            yield ShowUi(outcome.ui)
        record = outcome.data_record
        pan = _digits(record.get(0x5A, b""))
        if outcome.cvm is Cvm.ONLINE_PIN:
            status = yield RequestOnlinePin(pan, self._amount)
            if status != "entered":
                return self._done(Outcome(Status.DECLINED, f"online PIN {status}", cvm=outcome.cvm,
                                          ui=UiRequest(Message.NOT_AUTHORISED, UiStatus.NOT_READY)), chosen)
        expiry = record.get(0x5F24, b"").hex()[:4]
        icc_data = tlv.encode(tlv.Tlv(t, v) for t, v in record.items() if t not in (0x5A, 0x57, 0x5F24))
        answer = yield GoOnline(icc_data, pan=pan, pan_sequence=_psn(record.get(0x5F34)), expiry_yymm=expiry,
                                track2=record.get(0x57))
        code, issuer_data = answer if isinstance(answer, tuple) else (None, b"")
        note = ""
        if code is not None and outcome.start is Start.B and chosen is not None and issuer_update.wanted(issuer_data):
            record, note = yield from self._issuer_update(chosen, issuer_data, record)
        approved = isinstance(code, str) and code in APPROVAL_CODES
        message = (Message.APPROVED_PLEASE_SIGN if outcome.cvm is Cvm.SIGNATURE else Message.APPROVED) \
            if approved else Message.NOT_AUTHORISED
        final = Outcome(Status.APPROVED if approved else Status.DECLINED,
                        (f"host answered {code}" if code else "host unreachable") + note, cvm=outcome.cvm,
                        ui=UiRequest(message, UiStatus.NOT_READY), receipt=True, data_record=record)
        return self._done(final, chosen, code if isinstance(code, str) else None)

    def _issuer_update(self, chosen: Candidate, issuer_data: bytes, record: Mapping[int, bytes]) -> Generator[
            ContactlessAction, object, tuple[Mapping[int, bytes], str]]:
        """Book C-3 §5.9: "present card again", the same application, ``emv.issuer_update.run``."""
        yield ShowUi(UiRequest(Message.PRESENT_CARD_AGAIN, UiStatus.READY_TO_READ))
        self._again = True
        try:
            count = yield PollCards(again=True)
            if count != 1:
                return record, "; issuer update not done: the card was not presented again"
            response = yield from transmit(apdu.select(chosen.select_name()), "SELECT AID (issuer update)")
            if not response.ok or parse_fci(response.data).df_name != chosen.entry.adf_name:
                return record, "; issuer update not done: the application was not selected again"
            update = yield from issuer_update.run(issuer_data, record)
        except (_CardLost, RemoteProtocolError, Stop):
            return record, "; issuer update interrupted: the card left or answered garbage"
        finally:
            self._again = False
        yield FieldOff(0)
        return {**record, **update}, "; issuer update done"


def _digits(cn: bytes) -> str:
    return cn.hex().upper().rstrip("F")


def _psn(value: bytes | None) -> str | None:
    return value.hex() if value else None
