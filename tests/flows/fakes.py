"""Fakes for every port a top-up flow talks to, in memory: no pty, no socket, no thread.

The card is the simulated card applet (``sim.devices.card``) behind a fake reader, so the real EMV kernel runs;
the host answers with the card's real ARPC (``sim.backends.issuer``), so issuer authentication passes. Every
fake records the calls it got, for assertions on what the flow asked of the world.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from emv import tlv
from flows.ports import (
    AuthRequest,
    AuthResponse,
    CancelToken,
    OfflinePinRequest,
    OfflinePinResult,
    PadPrompt,
    PinEntry,
    ReversalRequest,
    ReverseResult,
    TopupResult,
    WalletResult,
)
from sim.backends.issuer import response_icc_data
from sim.devices.card import CardApplet
from sim.devices.cards import SimCardProfile

WHEN = dt.datetime(2026, 12, 2, 10, 0, 0)
Answer = object  # a value to return, or an exception instance to raise


def _play(script: deque[Answer], what: str) -> object:
    if not script:
        raise AssertionError(f"the flow called {what} more often than the test expected")
    item = script.popleft()
    if isinstance(item, BaseException):
        raise item
    return item


@dataclass
class FakeClock:
    """Fixed wall time; ``sleep`` advances the monotonic clock without waiting."""

    now_: dt.datetime = WHEN
    mono: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def now(self) -> dt.datetime:
        return self.now_

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.mono += seconds


@dataclass
class FakeReader:
    """A chip card already inserted: APDUs go to the card applet in memory."""

    card: CardApplet
    calls: list[str] = field(default_factory=list)

    def wait_for_card(self, timeout_s: float, cancel: CancelToken) -> bool:
        return True

    def card_present(self) -> bool:
        return True

    def power_on(self) -> bytes:
        self.calls.append("power_on")
        return self.card.atr

    def transmit(self, apdu: bytes, *, then: Sequence[bytes] = ()) -> bytes:
        self.calls.append(f"apdu {apdu[:2].hex().upper()}")
        return self.card.process(apdu)

    def power_off(self) -> None:
        self.calls.append("power_off")

    def wait_for_removal(self, timeout_s: float) -> bool:
        return True


@dataclass
class FakePinPad:
    """The customer enters the PIN: an encrypted block comes back (dummy bytes: the clear PIN never exists)."""

    calls: list[str] = field(default_factory=list)

    def request_online_pin(self, pan: str, amount_minor: int, timeout_s: float) -> PinEntry:
        self.calls.append(f"online_pin {amount_minor}")
        return PinEntry("entered", b"\x11" * 16, b"\x22" * 10)

    def verify_offline_pin(self, request: OfflinePinRequest, timeout_s: float) -> OfflinePinResult:
        raise AssertionError("these tests use online-PIN cards")

    def choose_application(self, labels: tuple[str, ...], timeout_s: float) -> int | None:
        return 0

    def abort(self) -> None:
        self.calls.append("abort")

    def display(self, prompt: PadPrompt, amount_minor: int = 0, currency: int = 156) -> None:
        pass


@dataclass
class FakeHost:
    """The acquirer. ``authorize`` answers ``code`` with the card's ARPC, or raises ``error``; ``reverse``
    answers each item of ``reversals`` in turn ("00" when the script is empty)."""

    profile: SimCardProfile
    code: str = "00"
    error: BaseException | None = None
    reversals: deque[Answer] = field(default_factory=deque)
    authorized: list[AuthRequest] = field(default_factory=list)
    reversed_: list[ReversalRequest] = field(default_factory=list)

    def authorize(self, request: AuthRequest) -> AuthResponse:
        self.authorized.append(request)
        if self.error is not None:
            raise self.error
        values = tlv.flatten(tlv.decode(request.icc_data))
        icc = response_icc_data(self.profile, values[0x9F36], values[0x9F26], self.code, request.pan_sequence)
        approved = self.code == "00"
        return AuthResponse(self.code, "123456" if approved else "", "000000000001", icc)

    def reverse(self, request: ReversalRequest) -> str:
        self.reversed_.append(request)
        return str(_play(self.reversals, "reverse")) if self.reversals else "00"

    def echo(self) -> bool:
        return True


@dataclass
class FakeCarrier:
    """The carrier platform: ``create`` and ``status`` are scripts of answers (or exceptions) in call order."""

    create: deque[Answer] = field(default_factory=deque)
    status: deque[Answer] = field(default_factory=deque)
    reverse: deque[Answer] = field(default_factory=deque)  # reverse_topup answers; empty: reversed
    calls: list[tuple[str, str]] = field(default_factory=list)
    funding_refs: list[str] = field(default_factory=list)

    def lookup_sim(self, number: str) -> None:
        raise AssertionError("not used by the top-up flow")

    def list_plans(self, iccid: str) -> list[object]:
        raise AssertionError("not used by the top-up flow")

    def create_topup(self, order_id: str, iccid: str, plan_id: str, amount_minor: int, *,
                     funding_ref: str = "") -> TopupResult:
        self.calls.append(("create_topup", order_id))
        self.funding_refs.append(funding_ref)
        result = _play(self.create, "create_topup")
        assert isinstance(result, TopupResult)
        return result

    def order_status(self, order_id: str) -> TopupResult:
        self.calls.append(("order_status", order_id))
        result = _play(self.status, "order_status")
        assert isinstance(result, TopupResult)
        return result

    def reverse_topup(self, order_id: str, reason: str = "") -> ReverseResult:
        self.calls.append(("reverse_topup", order_id))
        if not self.reverse:
            return ReverseResult(order_id, True)
        result = _play(self.reverse, "reverse_topup")
        assert isinstance(result, ReverseResult)
        return result

    def health(self) -> bool:
        return True


@dataclass
class FakeWallet:
    """The wallet platform: one script of answers per call, in order."""

    micropay_: deque[Answer] = field(default_factory=deque)
    query_: deque[Answer] = field(default_factory=deque)
    cancel_: deque[Answer] = field(default_factory=deque)
    refund_: deque[Answer] = field(default_factory=deque)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def _answer(self, name: str, order_id: str, script: deque[Answer]) -> WalletResult:
        self.calls.append((name, order_id))
        result = _play(script, name)
        assert isinstance(result, WalletResult)
        return result

    def micropay(self, order_id: str, code: str, amount_minor: int, subject: str) -> WalletResult:
        return self._answer("micropay", order_id, self.micropay_)

    def create_qr_order(self, order_id: str, amount_minor: int, subject: str, expires_s: int) -> WalletResult:
        raise AssertionError("these tests use customer-presented codes")

    def query(self, order_id: str) -> WalletResult:
        return self._answer("query", order_id, self.query_)

    def cancel(self, order_id: str) -> WalletResult:
        return self._answer("cancel", order_id, self.cancel_)

    def refund(self, order_id: str, amount_minor: int) -> WalletResult:
        return self._answer("refund", order_id, self.refund_)
