"""The depth check of ``drivers.strict_json`` (issue 17 item 3: one regular expression instead of a Python step per
character) decides exactly as a character-by-character scan of strings and brackets does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.strict_json import MAX_DEPTH, _too_deep, decode


def _scan(text: str) -> bool:
    """The reference: walk every character, tracking strings and escapes."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


DEEP = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)


@pytest.mark.parametrize(("text", "deep"), [
    (DEEP, True),
    ("[" * MAX_DEPTH + "]" * MAX_DEPTH, False),
    (f'{{"a": "{DEEP}"}}', False),  # brackets inside a string do not nest
    (f'["\\"{DEEP}"]', False),  # an escaped quote does not end the string
    (f'["\\\\", {DEEP}]', True),  # an escaped backslash does: the brackets after it count
    (f'"never closed {DEEP}', False),  # an unterminated string runs to the end
    ("]" * 40 + "[" * MAX_DEPTH, False),  # closing brackets first: depth goes below zero, as in the scan
    ('"a\\\n' + DEEP, False),  # an escaped newline stays inside the string
])
def test_depth_cases(text: str, deep: bool) -> None:
    assert _too_deep(text) is deep is _scan(text)


@given(st.text(alphabet='[]{}"\\ a\n', max_size=120))
def test_the_regular_expression_agrees_with_the_character_scan(text: str) -> None:
    assert _too_deep(text) == _scan(text)


def test_too_deep_answers_come_back_raw_and_shallow_ones_decode() -> None:
    assert decode(DEEP.encode()) == DEEP.encode()
    assert decode(b'{"plans": [{"id": "P1", "name": "[[[[[[[[[[[[[[[[[["}]}') == {
        "plans": [{"id": "P1", "name": "[" * 18}]}


@pytest.mark.parametrize(("raw", "decoded"), [
    (b'{"n": 123456789012345678}', {"n": 123456789012345678}),                     # 18 digits: the limit
    (b'{"n": -123456789012345678}', {"n": -123456789012345678}),
    (b'{"n": 1234567890123456789}', None),                                       # 19 digits: refused
    (b'{"n": -1234567890123456789}', None),
    (b'{"iccid": "89860424000000000017", "n": 12}', {"iccid": "89860424000000000017", "n": 12}),  # long in a string
    (b'{"iccid": "89860424000000000017", "n": 1234567890123456789}', None),       # both: the integer still refused
    (b'{"n": [1, 2, 3], "m": 0}', {"n": [1, 2, 3], "m": 0}),
])
def test_integers_over_max_int_digits_are_refused_wherever_long_digits_stand(raw: bytes, decoded: object) -> None:
    assert decode(raw) == (raw if decoded is None else decoded)
    assert isinstance(decode(b'{"n": 5}')["n"], int)


def _counting_everywhere(raw: bytes) -> object:
    """The reference: every integer through the digit check (what decode did before the quick look)."""
    from drivers.strict_json import _COUNTING

    try:
        return _COUNTING.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return raw


_LONGISH = st.integers(min_value=-(10 ** 22), max_value=10 ** 22)
_LEAVES = st.one_of(_LONGISH, st.text(alphabet='0123456789"\\ab :,', max_size=25), st.booleans(), st.none())
_DOCS = st.recursive(_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=5), inner, max_size=4)),
                     max_leaves=12)


@given(_DOCS, st.sampled_from(["", " ", "\n"]))
def test_the_quick_look_decides_as_checking_every_integer(doc: object, pad: str) -> None:
    import json

    raw = (pad + json.dumps(doc, separators=(",", ":") if pad else None) + pad).encode()
    assert decode(raw) == _counting_everywhere(raw)


@pytest.mark.parametrize("raw", [b"1234567890123456789", b"-1234567890123456789", b"[1234567890123456789]",
                                 b'{"a":1234567890123456789}', b'{"a": "x", "b":\t1234567890123456789}'])
def test_a_long_integer_anywhere_is_refused(raw: bytes) -> None:
    assert decode(raw) == raw
