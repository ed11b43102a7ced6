"""Data elements in words, for people: TVR, TSI, AIP, AUC, CID, CVM List and CVM Results (EMV 4.4 Book 3
Annex C, Book 4 Annex A), and a TLV tree with tag names. Used by ``pos-emv decode`` and replay traces.

>>> describe(0x95, bytes.fromhex("8000048000"))
['offline data authentication was not performed', 'online PIN entered', 'transaction exceeds floor limit']
>>> describe(0x9F27, b"\\x80")
['ARQC (go online)']
"""

from __future__ import annotations

from collections.abc import Iterable

from emv import cvm, tags, tlv
from emv.tvr import AUC_BITS, AipBit, TsiBit, TvrBit, bits_set
from pos_errors import RemoteProtocolError

__all__ = ["describe", "tree"]

_CID = {0x00: "AAC (declined)", 0x40: "TC (approved)", 0x80: "ARQC (go online)", 0xC0: "RFU"}
_CVM_RESULT = {0x00: "unknown", 0x01: "failed", 0x02: "successful"}


def _words(names: list[str]) -> list[str]:
    return [n.lower().replace("_", " ").replace("oda", "offline data authentication").replace(
        "icc", "ICC").replace("pin", "PIN").replace("cvm", "CVM") for n in names]


def _tvr(value: bytes) -> list[str]:
    names = bits_set(TvrBit, value)
    text = {"ODA_NOT_PERFORMED": "offline data authentication was not performed",
            "EXCEEDS_FLOOR_LIMIT": "transaction exceeds floor limit"}
    return [text.get(n) or _words([n])[0] for n in names]


def _cvm_list(value: bytes) -> list[str]:
    parsed = cvm.parse_cvm_list(value)
    lines = [f"amount X {parsed.amount_x}, amount Y {parsed.amount_y}"]
    for rule in parsed.rules:
        then = ", else next rule" if rule.apply_next_if_failed else ", else fail"
        lines.append(f"{cvm.METHOD_NAMES.get(rule.method, f'method {rule.method:02X}')} — "
                     f"{cvm.CONDITION_NAMES.get(rule.condition, f'condition {rule.condition:02X}')}{then}")
    return lines


def _cvm_results(value: bytes) -> list[str]:
    if len(value) != 3:
        raise RemoteProtocolError("CVM Results are 3 bytes", tag="9F34")
    if value[0] == cvm.NO_CVM_PERFORMED:
        method = "no CVM performed"
    else:
        method = cvm.METHOD_NAMES.get(value[0] & 0x3F, f"method {value[0] & 0x3F:02X}")
    condition = cvm.CONDITION_NAMES.get(value[1], f"condition {value[1]:02X}")
    return [f"{method}; {condition}; result {_CVM_RESULT.get(value[2], f'{value[2]:02X}')}"]


def _auc(value: bytes) -> list[str]:
    return [f"valid for {name}" for name, bit in AUC_BITS.items() if value and value[0] & bit]


def describe(tag: int, value: bytes) -> list[str]:
    """Lines of words for the tags listed in the module docstring; [] for any other tag."""
    try:
        if tag == 0x95:
            return _tvr(value)
        if tag == 0x9B:
            return _words(bits_set(TsiBit, value))
        if tag == 0x82:
            return _words(bits_set(AipBit, value))
        if tag == 0x9F07:
            return _auc(value)
        if tag == 0x9F27 and len(value) == 1:
            advice = " with advice" if value[0] & 0x08 else ""
            return [_CID[value[0] & 0xC0] + advice]
        if tag == 0x8E:
            return _cvm_list(value)
        if tag == 0x9F34:
            return _cvm_results(value)
    except RemoteProtocolError as exc:
        return [f"malformed: {exc}"]
    return []


def tree(objects: Iterable[tlv.Tlv], depth: int = 0) -> list[str]:
    """One line per data object: tag, name, length and value (text for ``a``/``an``/``ans``), then words."""
    lines = []
    for obj in objects:
        pad = "  " * depth
        head = f"{pad}{obj.tag:X} {tags.name(obj.tag)} [{len(obj.value)}]"
        if obj.constructed:
            lines.append(head)
            lines += tree(obj.children, depth + 1)
            continue
        shown = obj.value.hex().upper()
        if tags.fmt(obj.tag) in ("a", "an", "ans") and obj.value.isascii():
            shown = repr(obj.value.decode("ascii"))
        lines.append(f"{head} {shown}")
        lines += [f"{pad}    → {w}" for w in describe(obj.tag, obj.value)]
    return lines
