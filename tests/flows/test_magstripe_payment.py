"""Magstripe with chip fallback, as a pure flow: fake reader/PIN pad/host ports, a real SQLite journal."""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from emv.config import STANDARD_AIDS, TerminalConfig
from emv.tracks import Stripe, parse_track2
from flows.card_payment import CardPaymentPorts, CardPaymentResult, CardPaymentSettings, Step
from flows.magstripe_payment import FALLBACK_LABEL, MAGSTRIPE_LABEL, pay_card_or_stripe
from flows.messages import Msg, say
from flows.ports import AuthRequest, AuthResponse, CancelToken, PinEntry
from pos_errors import DeviceError, LinkFault, LinkSecurityError, LinkTimeout, StanInUse
from sim.backends.pki import SIM_TRUST
from terminal.journal import Journal

NO_CHIP = b";6229000011112226=3012101000001?"
CHIP = b";6229000033334446=3012201000001?"


@dataclass
class Reader:
    """Scripted customer: each item is "card" (a card goes in, its chip fails at power-on) or track 2 bytes."""

    script: deque[object]
    present: bool = False
    swiped: bytes | None = None
    powered: int = 0

    def wait_for_card_or_swipe(self, timeout_s: float, cancel: CancelToken) -> str | None:
        if not self.script:
            return None
        item = self.script.popleft()
        if item == "card":
            self.present = True
            return "card"
        self.swiped = item  # type: ignore[assignment]
        return "swipe"

    def take_stripe(self) -> Stripe | None:
        swiped, self.swiped = self.swiped, None
        return None if swiped is None else parse_track2(swiped)

    def card_present(self) -> bool:
        return self.present

    def wait_for_card(self, timeout_s: float, cancel: CancelToken) -> bool:
        return self.present

    def power_on(self) -> bytes:
        self.powered += 1
        raise DeviceError("POWER_ON: the card did not answer to reset")

    def power_off(self) -> None:
        pass

    def transmit(self, apdu: bytes, *, then: Sequence[bytes] = ()) -> bytes:
        raise AssertionError("a dead chip is never talked to")

    def wait_for_removal(self, timeout_s: float) -> bool:
        self.present = False
        return True


@dataclass
class PinPad:
    statuses: deque[str] = field(default_factory=lambda: deque(["entered"]))

    def request_online_pin(self, pan: str, amount_minor: int, timeout_s: float) -> PinEntry:
        status = self.statuses.popleft() if self.statuses else "entered"
        return PinEntry(status, b"\x11" * 16 if status == "entered" else None, b"\x22" * 12)  # type: ignore[arg-type]

    def abort(self) -> None:
        pass

    def display(self, line1: str, line2: str = "") -> None:
        pass


@dataclass
class Host:
    codes: deque[str | None] = field(default_factory=lambda: deque(["00"]))
    requests: list[AuthRequest] = field(default_factory=list)

    def authorize(self, request: AuthRequest) -> AuthResponse:
        self.requests.append(request)
        code = self.codes.popleft() if self.codes else "00"
        if code is None:
            raise LinkTimeout("no answer")
        if code == "tls-expired":
            raise LinkSecurityError("TLS handshake failed", LinkFault.CERT_EXPIRED)
        if code == "94":  # as drivers.host.client: the host already has this STAN, this message not processed
            raise StanInUse("duplicate transmission (94)")
        return AuthResponse(code, "123456" if code == "00" else "", "000000000001")


class Clock:
    def now(self) -> dt.datetime:
        return dt.datetime(2026, 12, 1, 10, 0, 0)


def _pay(tmp_path, script: list[object], *, codes: list[str | None] | None = None,  # type: ignore[no-untyped-def]
         pins: list[str] | None = None) -> tuple[CardPaymentResult, Host, Journal, int, list[Step], Reader]:
    journal = Journal(tmp_path / "j.db")
    txn = journal.begin(order_id="O1", iccid="89860112345678901237", msisdn="1064912345678", plan_id="P",
                        plan_name="p", amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")
    reader, host = Reader(deque(script)), Host(deque(codes or ["00"]))
    ports = CardPaymentPorts(reader, PinPad(deque(pins or ["entered"])), host, journal, Clock(),  # type: ignore[arg-type]
                             bytes)
    emv = TerminalConfig(aids=STANDARD_AIDS, terminal_id="T0000001", merchant_id="898440154110001",
                         capks=SIM_TRUST)
    settings = CardPaymentSettings(emv, "T0000001", "898440154110001", card_timeout_s=5.0)
    steps: list[Step] = []
    result = pay_card_or_stripe(ports, settings, txn_id=txn, amount_minor=3000, progress=steps.append,
                                cancel=CancelToken())
    return result, host, journal, txn, steps, reader


def test_stripe_only_card_pays_with_entry_mode_90_and_track2_in_tag57_form(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, host, journal, txn, _, _ = _pay(tmp_path, [NO_CHIP])
    assert result.approved and result.emv_receipt["entry"] == MAGSTRIPE_LABEL
    (request,) = host.requests
    assert request.pos_entry_mode == "901" and request.icc_data == b"" and request.pin_block == b"\x11" * 16
    assert request.track2 == bytes.fromhex("6229000011112226D3012101000001")
    row = journal.get(txn)
    assert (row.state, row.masked_pan, row.response_code) == ("paid", "622900******2226", "00")


def test_swiped_chip_card_is_sent_to_the_slot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, host, _, _, steps, _ = _pay(tmp_path, [CHIP])  # then the customer walks away
    assert Step.INSERT_CHIP in steps and not host.requests and result.status == "cancelled"


def test_dead_chip_then_swipe_is_a_fallback_with_entry_mode_80(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, host, _, _, steps, reader = _pay(tmp_path, ["card", CHIP])
    assert reader.powered == 1 and Step.SWIPE_FALLBACK in steps
    assert result.approved and result.emv_receipt["entry"] == FALLBACK_LABEL
    assert host.requests[0].pos_entry_mode == "801"


def test_the_wait_for_a_card_is_announced_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each step is one wake-up of the terminal's app thread: the chip path does not announce the wait twice."""
    _, _, _, _, steps, _ = _pay(tmp_path, ["card", CHIP])
    assert steps[:3] == [Step.WAIT_CARD, Step.READING_CARD, Step.SWIPE_FALLBACK]
    assert steps.count(Step.WAIT_CARD) == 1


def test_chip_failure_with_no_swipe_ends_as_the_chip_failure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, host, _, _, _, _ = _pay(tmp_path, ["card"])
    assert result.status == "failed" and result.chip_failed and "nothing charged" in say(result.message)
    assert not host.requests


def test_wrong_pin_is_asked_again_then_approved(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, host, _, _, steps, _ = _pay(tmp_path, [NO_CHIP], codes=["55", "00"])
    assert result.approved and len(host.requests) == 2 and Step.WRONG_PIN in steps
    assert host.requests[0].stan != host.requests[1].stan


def test_silent_bank_leaves_a_reversal_pending_in_the_journal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, _, journal, txn, _, _ = _pay(tmp_path, [NO_CHIP], codes=[None])
    assert result.status == "unknown" and result.request is not None
    assert (journal.get(txn).state, journal.get(txn).reversal) == ("auth_unknown", "pending")


@pytest.mark.parametrize("status", ["cancelled", "timeout"])
def test_no_pin_no_authorization(tmp_path, status: str) -> None:  # type: ignore[no-untyped-def]
    result, host, _, _, _, _ = _pay(tmp_path, [NO_CHIP], pins=[status])
    assert result.status == "cancelled" and not host.requests


def test_unreadable_swipe_asks_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, _, _, _, steps, _ = _pay(tmp_path, [b";12345?", NO_CHIP])
    assert Step.BAD_SWIPE in steps and result.approved


def test_refused_tls_link_is_named_and_nothing_is_charged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, host, journal, txn, _, _ = _pay(tmp_path, [NO_CHIP], codes=["tls-expired"])
    assert not result.approved and len(host.requests) == 1
    assert result.message == Msg("pay.bank_refused", {"why": Msg("link.cert_expired")})
    assert journal.get(txn).state == "auth_failed" and journal.get(txn).reversal is None  # nothing to undo


def test_a_stan_the_host_already_has_is_retried_once_under_a_fresh_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, host, journal, txn, _, _ = _pay(tmp_path, [NO_CHIP], codes=["94", "00"])
    first, second = host.requests
    assert result.approved and result.request is not None and result.request.stan == second.stan != first.stan
    assert second.track2 == first.track2 and second.pin_block == first.pin_block  # the same payment, not a new one
    row = journal.get(txn)
    assert (row.state, row.stan, row.response_code) == ("paid", second.stan, "00")


def test_a_second_94_ends_the_payment_with_nothing_charged_and_nothing_to_reverse(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, host, journal, txn, _, _ = _pay(tmp_path, [NO_CHIP], codes=["94", "94", "00"])
    assert not result.approved and len(host.requests) == 2
    assert result.message == Msg("pay.bank_refused", {"why": Msg("link.stan_in_use")})
    assert "(numbers resynchronised: try again) — nothing charged" in say(result.message, "en")
    assert "流水号已重新同步" in say(result.message, "zh")
    row = journal.get(txn)
    assert (row.state, row.response_code, row.reversal) == ("declined", "94", None)
