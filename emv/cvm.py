"""Cardholder verification: CVM List ``8E`` parsing, condition codes and processing (EMV 4.4 Book 3 §10.5).

The CVM List is amount X (4 bytes), amount Y (4 bytes), then two-byte CV Rules: the CVM code (bit 7: apply the
next rule if this one fails; bits 6–1: the method) and the condition code (Book 3 Annex C3). The terminal
walks the rules in order; the first rule whose condition holds and whose method succeeds ends the walk. This
kernel performs online enciphered PIN (via ``RequestOnlinePin``), signature, "No CVM required" and "Fail CVM
processing"; offline PIN methods count as not supported until the offline-PIN issue lands.

>>> cvms = parse_cvm_list(bytes.fromhex("00000000" "00000000" "4203" "5E03" "1F00"))
>>> [(METHOD_NAMES[r.method], CONDITION_NAMES[r.condition], r.apply_next_if_failed) for r in cvms.rules][:2]
[('enciphered PIN verified online', 'if terminal supports the CVM', True), ('signature', \
'if terminal supports the CVM', True)]
"""

from __future__ import annotations

from dataclasses import dataclass

from emv.actions import Outcome, RequestOnlinePin, Step, Stop
from emv.errors import RemoteProtocolError
from emv.tvr import BitField, TsiBit, TvrBit

__all__ = ["CvRule", "CvmList", "CvmContext", "CvmOutcome", "METHOD_NAMES", "CONDITION_NAMES",
           "parse_cvm_list", "condition_holds", "terminal_supports", "perform_cvm"]

FAIL_CVM, OFFLINE_PLAIN_PIN, ONLINE_PIN, SIGNATURE, NO_CVM = 0x00, 0x01, 0x02, 0x1E, 0x1F
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

# 9F33 byte 2 bits a method needs (Book 4 Annex A2); only methods this kernel performs are listed.
_CAPABILITY_BITS: dict[int, int] = {FAIL_CVM: 0x00, ONLINE_PIN: 0x40, SIGNATURE: 0x20, NO_CVM: 0x08}

_CASH, _CASHBACK = 0x01, 0x09  # transaction types 9C


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
    return bit is not None and (bit == 0 or bool(capabilities[1] & bit))


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
    for rule in cvms.rules:
        if not condition_holds(rule, cvms, ctx):
            continue
        last = rule
        succeeded, result = yield from _perform(rule, ctx, pan, tvr)
        if succeeded:
            names = {ONLINE_PIN: "online PIN", SIGNATURE: "signature", NO_CVM: "no CVM"}
            return CvmOutcome(bytes([rule.code, rule.condition, result]), names[rule.method],
                              signature_required=rule.method == SIGNATURE)
        if not rule.apply_next_if_failed:
            break
    tvr.set(TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL)
    if last is None:
        return CvmOutcome(bytes([NO_CVM_PERFORMED, 0, RESULT_FAILED]), "failed")
    return CvmOutcome(bytes([last.code, last.condition, RESULT_FAILED]), "failed")


def _perform(rule: CvRule, ctx: CvmContext, pan: str, tvr: BitField[TvrBit]) -> Step[tuple[bool, int]]:
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
        raise Stop(Outcome.TERMINATED, f"PIN entry {status}")
    if rule.method == SIGNATURE:
        return True, RESULT_UNKNOWN
    return True, RESULT_SUCCESSFUL  # no CVM required
