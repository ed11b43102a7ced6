"""Cardholder verification: CVM List ``8E`` parsing, condition codes and processing (EMV 4.4 Book 3 §10.5).

The CVM List is amount X (4 bytes), amount Y (4 bytes), then two-byte CV Rules: the CVM code (bit 7: apply the
next rule if this one fails; bits 6–1: the method) and the condition code (Book 3 Annex C3). The terminal
walks the rules in order; the first rule whose condition holds and whose method succeeds ends the walk. This
kernel performs online enciphered PIN (``RequestOnlinePin``), offline plaintext and enciphered PIN
(``VerifyOfflinePin``: the PIN pad itself sends VERIFY; §10.5.1), their combinations with signature,
signature, "No CVM required" and "Fail CVM processing". Offline PIN first reads the PIN Try Counter
(GET DATA ``9F17``, once per transaction: a plaintext rule after a failed enciphered one reuses it): zero
sets "PIN try limit exceeded" (TVR B3b6) and fails the method without a prompt;
``63Cx`` re-prompts while ``x`` > 0; ``6983``/``6984`` or ``63C0`` set B3b6. Enciphered PIN needs the ICC
key recovered by ODA (Book 2 §7.1) and a GET CHALLENGE.

>>> cvms = parse_cvm_list(bytes.fromhex("00000000" "00000000" "4203" "5E03" "1F00"))
>>> [(METHOD_NAMES[r.method], CONDITION_NAMES[r.condition], r.apply_next_if_failed) for r in cvms.rules][:2]
[('enciphered PIN verified online', 'if terminal supports the CVM', True), ('signature', \
'if terminal supports the CVM', True)]
"""

from __future__ import annotations

from dataclasses import dataclass

from emv import apdu, tlv
from emv.actions import (
    KernelReason,
    OfflinePinAnswer,
    Outcome,
    RequestOnlinePin,
    Step,
    Stop,
    VerifyOfflinePin,
    transmit,
)
from emv.tvr import BitField, TsiBit, TvrBit
from pos_errors import RemoteProtocolError

__all__ = ["CvRule", "CvmList", "CvmContext", "CvmOutcome", "METHOD_NAMES", "CONDITION_NAMES",
           "parse_cvm_list", "condition_holds", "terminal_supports", "perform_cvm"]

FAIL_CVM, OFFLINE_PLAIN_PIN, ONLINE_PIN, SIGNATURE, NO_CVM = 0x00, 0x01, 0x02, 0x1E, 0x1F
PLAIN_PIN_AND_SIGNATURE, OFFLINE_ENCIPHERED_PIN, ENCIPHERED_PIN_AND_SIGNATURE = 0x03, 0x04, 0x05
_OFFLINE = {OFFLINE_PLAIN_PIN: False, PLAIN_PIN_AND_SIGNATURE: False, OFFLINE_ENCIPHERED_PIN: True,
            ENCIPHERED_PIN_AND_SIGNATURE: True}  # method -> enciphered
NO_CVM_PERFORMED = 0x3F  # CVM Results byte 1 when no rule was performed
RESULT_UNKNOWN, RESULT_FAILED, RESULT_SUCCESSFUL = 0x00, 0x01, 0x02  # CVM Results byte 3 (Book 4 Annex A4)

METHOD_NAMES: dict[int, str] = {  # Book 3 Annex C3 Table 39
    0x00: "fail CVM processing",
    0x01: "plaintext PIN verification performed by ICC",
    0x02: "enciphered PIN verified online",
    0x03: "plaintext PIN verification performed by ICC and signature",
    0x04: "enciphered PIN verification performed by ICC",
    0x05: "enciphered PIN verification performed by ICC and signature",
    0x1E: "signature",
    0x1F: "no CVM required",
}

CONDITION_NAMES: dict[int, str] = {  # Book 3 Annex C3 Table 40
    0x00: "always",
    0x01: "if unattended cash",
    0x02: "if not unattended cash and not manual cash and not purchase with cashback",
    0x03: "if terminal supports the CVM",
    0x04: "if manual cash",
    0x05: "if purchase with cashback",
    0x06: "if transaction is in the application currency and is under X value",
    0x07: "if transaction is in the application currency and is over X value",
    0x08: "if transaction is in the application currency and is under Y value",
    0x09: "if transaction is in the application currency and is over Y value",
}

# 9F33 byte 2 bits a method needs (Book 4 Annex A2): all of them; only methods this kernel performs.
_CAPABILITY_BITS: dict[int, int] = {FAIL_CVM: 0x00, ONLINE_PIN: 0x40, SIGNATURE: 0x20, NO_CVM: 0x08,
                                    OFFLINE_PLAIN_PIN: 0x80, PLAIN_PIN_AND_SIGNATURE: 0xA0,
                                    OFFLINE_ENCIPHERED_PIN: 0x10, ENCIPHERED_PIN_AND_SIGNATURE: 0x30}

_CASH, _CASHBACK = 0x01, 0x09  # transaction types 9C
_MAX_PIN_PROMPTS = 15  # the PIN Try Counter is at most 15 (one nibble of 63Cx)


@dataclass(frozen=True)
class CvRule:
    method: int
    condition: int
    apply_next_if_failed: bool

    @property
    def code(self) -> int:
        """The CVM byte as on the card (with bit 7), as it goes into CVM Results byte 1."""
        return self.method | (0x40 if self.apply_next_if_failed else 0)


@dataclass(frozen=True)
class CvmList:
    amount_x: int
    amount_y: int
    rules: tuple[CvRule, ...]


@dataclass(frozen=True)
class CvmContext:
    """What the conditions look at."""

    amount_minor: int
    transaction_type: int
    in_application_currency: bool
    capabilities: bytes
    unattended: bool = False
    icc_pin_key: tuple[bytes, bytes] | None = None  # (modulus, exponent) for enciphered offline PIN


@dataclass(frozen=True)
class CvmOutcome:
    results: bytes  # 9F34
    method: str  # for the receipt: "online PIN", "signature", "no CVM", "failed"
    signature_required: bool = False


def parse_cvm_list(value: bytes) -> CvmList:
    """Split ``8E``; raises RemoteProtocolError when it is shorter than 8 bytes or has half a rule."""
    if len(value) < 8 or len(value) % 2:
        raise RemoteProtocolError(f"CVM List of {len(value)} bytes is malformed", tag="8E")
    rules = tuple(CvRule(value[i] & 0x3F, value[i + 1], bool(value[i] & 0x40))
                  for i in range(8, len(value), 2))
    return CvmList(int.from_bytes(value[0:4], "big"), int.from_bytes(value[4:8], "big"), rules)


def terminal_supports(method: int, capabilities: bytes) -> bool:
    """True when this kernel performs ``method`` and the terminal capabilities ``9F33`` claim it."""
    bit = _CAPABILITY_BITS.get(method)
    return bit is not None and capabilities[1] & bit == bit


def condition_holds(rule: CvRule, cvms: CvmList, ctx: CvmContext) -> bool | None:
    """Whether the rule's condition is met; None when the condition code is not understood (skip it)."""
    code, amount, kind = rule.condition, ctx.amount_minor, ctx.transaction_type
    checks: dict[int, bool] = {
        0x00: True,
        0x01: ctx.unattended and kind == _CASH,
        0x02: kind not in (_CASH, _CASHBACK),
        0x03: terminal_supports(rule.method, ctx.capabilities),
        0x04: not ctx.unattended and kind == _CASH,
        0x05: kind == _CASHBACK,
        0x06: ctx.in_application_currency and amount < cvms.amount_x,
        0x07: ctx.in_application_currency and amount > cvms.amount_x,
        0x08: ctx.in_application_currency and amount < cvms.amount_y,
        0x09: ctx.in_application_currency and amount > cvms.amount_y,
    }
    return checks.get(code)


def perform_cvm(cvm_list: bytes | None, ctx: CvmContext, pan: str, tvr: BitField[TvrBit],
                tsi: BitField[TsiBit]) -> Step[CvmOutcome]:
    """Walk the CVM List (Book 3 §10.5), asking for an online PIN when a rule calls for it.

    Raises ``Stop(TERMINATED)`` when the cardholder cancels PIN entry or it times out.
    """
    tsi.set(TsiBit.CARDHOLDER_VERIFICATION_PERFORMED)
    if not cvm_list:
        tvr.set(TvrBit.ICC_DATA_MISSING)
        return CvmOutcome(bytes([NO_CVM_PERFORMED, 0, RESULT_UNKNOWN]), "no CVM")
    cvms = parse_cvm_list(cvm_list)
    last: CvRule | None = None
    counter = _TryCounter()
    for rule in cvms.rules:
        if not condition_holds(rule, cvms, ctx):
            continue
        last = rule
        succeeded, result = yield from _perform(rule, ctx, pan, tvr, counter)
        if succeeded:
            names = {ONLINE_PIN: "online PIN", SIGNATURE: "signature", NO_CVM: "no CVM",
                     OFFLINE_PLAIN_PIN: "offline PIN", OFFLINE_ENCIPHERED_PIN: "offline enciphered PIN",
                     PLAIN_PIN_AND_SIGNATURE: "offline PIN and signature",
                     ENCIPHERED_PIN_AND_SIGNATURE: "offline enciphered PIN and signature"}
            return CvmOutcome(bytes([rule.code, rule.condition, result]), names[rule.method],
                              signature_required=rule.method in (SIGNATURE, PLAIN_PIN_AND_SIGNATURE,
                                                                 ENCIPHERED_PIN_AND_SIGNATURE))
        if not rule.apply_next_if_failed:
            break
    tvr.set(TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL)
    if last is None:
        return CvmOutcome(bytes([NO_CVM_PERFORMED, 0, RESULT_FAILED]), "failed")
    return CvmOutcome(bytes([last.code, last.condition, RESULT_FAILED]), "failed")


@dataclass
class _TryCounter:
    """The PIN Try Counter as last known in this transaction: read by GET DATA at most once."""

    read: bool = False
    value: int | None = None


def _perform(rule: CvRule, ctx: CvmContext, pan: str, tvr: BitField[TvrBit],
             counter: _TryCounter) -> Step[tuple[bool, int]]:
    """(succeeded, CVM Results byte 3) for one rule whose condition holds."""
    if rule.method not in METHOD_NAMES:
        tvr.set(TvrBit.UNRECOGNISED_CVM)
        return False, RESULT_FAILED
    if rule.method == FAIL_CVM or not terminal_supports(rule.method, ctx.capabilities):
        if rule.method in (OFFLINE_PLAIN_PIN, ONLINE_PIN, 0x03, 0x04, 0x05):
            tvr.set(TvrBit.PIN_PAD_NOT_PRESENT_OR_NOT_WORKING)
        return False, RESULT_FAILED
    if rule.method == ONLINE_PIN:
        status = yield RequestOnlinePin(pan=pan, amount_minor=ctx.amount_minor)
        if status == "entered":
            tvr.set(TvrBit.ONLINE_PIN_ENTERED)
            return True, RESULT_UNKNOWN  # the issuer verifies it
        if status == "bypassed":  # Book 3 §10.5.5: PIN entry bypassed, this CVM fails
            tvr.set(TvrBit.PIN_NOT_ENTERED)
            return False, RESULT_FAILED
        raise Stop(Outcome.TERMINATED, _pin_code(status), f"PIN entry {status}")
    if rule.method in _OFFLINE:
        ok = yield from _offline_pin(_OFFLINE[rule.method], ctx, tvr, counter)
        return ok, RESULT_SUCCESSFUL if ok else RESULT_FAILED
    if rule.method == SIGNATURE:
        return True, RESULT_UNKNOWN
    return True, RESULT_SUCCESSFUL  # no CVM required


def _pin_code(status: object) -> KernelReason:
    return KernelReason.PIN_CANCELLED if status == "cancelled" else KernelReason.PIN_NOT_ENTERED


def _pin_try_counter() -> Step[int | None]:
    response = yield from transmit(apdu.get_data(0x9F17), "GET DATA 9F17 (PIN try counter)")
    if not response.ok:
        return None
    try:
        value = tlv.first(tlv.decode(response.data), 0x9F17)
    except RemoteProtocolError:
        return None
    return value[0] if value and len(value) == 1 else None


def _offline_pin(enciphered: bool, ctx: CvmContext, tvr: BitField[TvrBit], counter: _TryCounter) -> Step[bool]:
    """Book 3 §10.5.1: offline PIN verified by the card, the PIN pad sending VERIFY itself."""
    if not counter.read:
        counter.value = yield from _pin_try_counter()
        counter.read = True
    tries = counter.value
    if tries == 0:
        tvr.set(TvrBit.PIN_TRY_LIMIT_EXCEEDED)
        return False
    if enciphered and ctx.icc_pin_key is None:
        return False  # Book 2 §7.1: no ICC key recovered, the method cannot be performed
    for _ in range(_MAX_PIN_PROMPTS):
        challenge = b""
        if enciphered:
            response = yield from transmit(apdu.get_challenge(), "GET CHALLENGE")
            if not response.ok or len(response.data) != 8:
                return False
            challenge = response.data
        modulus, exponent = ctx.icc_pin_key if enciphered and ctx.icc_pin_key else (b"", b"")
        answer = yield VerifyOfflinePin(enciphered, ctx.amount_minor, tries, modulus, exponent, challenge)
        if not isinstance(answer, OfflinePinAnswer):  # pragma: no cover - on_offline_pin guarantees it
            raise Stop(Outcome.TERMINATED, KernelReason.PIN_PAD_ERROR, "expected the PIN pad's offline PIN answer")
        if answer.status == "bypassed":
            tvr.set(TvrBit.PIN_NOT_ENTERED)
            return False
        if answer.status != "entered" or answer.sw is None:
            raise Stop(Outcome.TERMINATED, _pin_code(answer.status), f"PIN entry {answer.status}")
        if answer.sw == 0x9000:
            return True
        left = answer.sw & 0x0F
        if answer.sw & 0xFFF0 == 0x63C0 and left and (tries is None or left < tries):
            tries = counter.value = left  # wrong PIN, tries left: ask again
            continue
        if answer.sw in (0x63C0, 0x6983, 0x6984):
            counter.value = 0
            tvr.set(TvrBit.PIN_TRY_LIMIT_EXCEEDED)
        return False  # includes a card whose counter does not go down
    return False
