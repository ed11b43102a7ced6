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
_LONG_DIGITS = re.compile(f"[0-9]{{{MAX_INT_DIGITS + 1}}}")  # a run of digits that might be a too-long integer


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
    # Without a run of more than MAX_INT_DIGITS digits anywhere (strings included) no integer can be too long: the
    # C parser reads them itself, no Python call per integer (a plan list holds ~70).
    parse_int = _parse_int if _LONG_DIGITS.search(text) else None
    try:
        return json.loads(text, parse_int=parse_int, parse_constant=_no_constant, object_pairs_hook=_no_dupes)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; so are _parse_int's refusals
        return raw


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


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(digits)} digits")
    return int(digits)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result
