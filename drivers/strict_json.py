"""JSON from a counterpart we do not trust: a malformed answer is "not JSON", never a crash.

Refused as "not JSON" (the raw bytes come back): bytes that are not UTF-8, nesting deeper than MAX_DEPTH (checked
before parsing, so no RecursionError), integers longer than MAX_INT_DIGITS, NaN / Infinity, and duplicate keys.

>>> decode(b'{"a": 1}'), decode(b'[' * 100) == b'[' * 100, decode(b'{"a": 1, "a": 2}')
({'a': 1}, True, b'{"a": 1, "a": 2}')
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["decode", "MAX_DEPTH", "MAX_INT_DIGITS"]

MAX_DEPTH = 16  # the deepest real answer is 3 levels; deeper is a wrong answer, not a RecursionError
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)  # a JSON string, its closing quote optional
_BRACKETS = re.compile(r"[\[\]{}]")
MAX_INT_DIGITS = 18  # money and counters fit in 64 bits; a 4000-digit number is a wrong answer
# Every ASCII digit to "0", '"' kept, every other byte to " ": a run of more than MAX_INT_DIGITS zeros not right
# after a quote then marks digits that might be a too-long integer (a JSON number never follows a quote; a run that
# does opens a string, such as an ICCID). A bytes table lookup and substring searches in C: a regular expression
# takes 10x as long. A run inside a string after another character only sends the text to the counting decoder.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else b if b == 0x22 else 0x20 for b in range(256))
_LONG_RUN = b"0" * (MAX_INT_DIGITS + 1)
_LONG_NUMBER = b" " + _LONG_RUN


def decode(raw: bytes) -> Any:
    """JSON, or the raw bytes when it is not JSON we accept (callers decide whether JSON was required).

    Refused as "not JSON": nesting deeper than MAX_DEPTH (checked before parsing, so no RecursionError),
    integers longer than MAX_INT_DIGITS, NaN / Infinity, and duplicate keys."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    if _too_deep(text):
        return raw
    # Without a run of more than MAX_INT_DIGITS digits that is not a string's start, no integer can be too long: the
    # C parser reads them itself, no Python call per integer (a plan list holds ~70).
    digits = raw.translate(_DIGITS_ONLY)
    decoder = _COUNTING if _LONG_NUMBER in digits or digits.startswith(_LONG_RUN) else _PLAIN
    try:
        return decoder.decode(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; so are _parse_int's refusals
        return raw


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(digits)} digits")
    return int(digits)


# built once (json.loads with hooks builds a decoder per call)
_PLAIN = json.JSONDecoder(parse_constant=_no_constant, object_pairs_hook=_no_dupes)
_COUNTING = json.JSONDecoder(parse_int=_parse_int, parse_constant=_no_constant, object_pairs_hook=_no_dupes)


def _too_deep(text: str) -> bool:
    """Brackets nested deeper than MAX_DEPTH, outside strings (a cheap scan, before the recursive parser): the
    strings (escapes included, an unterminated one to the end) are cut out by one regular expression, then only
    the brackets left are counted — not a Python step per character of the answer."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # too few to nest that deep, inside strings or not
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        else:
            depth -= 1
    return False

