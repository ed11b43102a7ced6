"""DOL parsing and building by the format rules of EMV 4.4 Book 3 §5.4, and the tag dictionary behind them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emv import dol, tags
from pos_errors import RemoteProtocolError

# Book 3 §5.4 rules, one row each: tag (its format), requested length, value held, bytes sent.
# fmt: off
RULES = [
    # n: pad left with 00, truncate on the left (keep the least significant digits)
    (0x9F02, 6, "1234",               "000000001234"),     # n12 amount shorter than asked
    (0x9F02, 4, "000000012345",       "00012345"),         # n12 amount cut to n8: leftmost bytes go
    (0x9C,   1, "00",                 "00"),               # exact length: unchanged
    (0x9F41, 2, "00001234",           "1234"),             # sequence counter n4-8 cut from the left
    (0x9F02, 0, "1234",               ""),                 # a zero length asks for nothing
    # cn: pad right with FF, truncate on the right
    (0x5A,   10, "6217000012345670",  "6217000012345670FFFF"),
    (0x5A,   4,  "6217000012345670",  "62170000"),
    # b: pad right with 00, truncate on the right
    (0x9F37, 6, "A1B2C3D4",           "A1B2C3D40000"),
    (0x9F37, 2, "A1B2C3D4",           "A1B2"),
    (0x95,   5, "8000048000",         "8000048000"),
    # an / ans: pad right with 00 (Book 3 §5.4), truncate on the right
    (0x9F1C, 10, "5430303030303031",  "54303030303030310000"),
    (0x9F16, 3,  "4D3030303030",      "4D3030"),
    # tags the dictionary gained (EMV 4.4 Annex A1, contactless books)
    (0x9F20, 8, "12345678901234",     "12345678901234FF"), # cn Track 2 discretionary: FF
    (0x9F20, 2, "12345678",           "1234"),             # cn cut on the right
    (0x9F19, 6, "1234567890",         "001234567890"),     # n11 token requestor ID right-justified
    (0x9F19, 3, "001234567890",       "567890"),           # n cut from the left
    (0x9F5D, 6, "5000",               "000000005000"),     # n12 available offline spending amount
    (0x9F66, 4, "3600",               "36000000"),         # b TTQ
    (0x9F1E, 8, "3132333435",         "3132333435000000"), # an IFD serial: 00, not spaces (§5.4 d)
    # unknown tag: treated as binary
    (0x9F7A, 3, "01",                 "010000"),
]
# fmt: on


@pytest.mark.parametrize(("tag", "length", "value", "expected"), RULES)
def test_fit_follows_the_format_rules(tag: int, length: int, value: str, expected: str) -> None:
    assert dol.fit(tag, bytes.fromhex(value), length).hex().upper() == expected


def test_build_absent_and_constructed_become_zeros() -> None:
    entries = dol.parse(bytes.fromhex("9F0206" "9F3704" "E003" "5F2A02"))
    assert entries == (dol.DolEntry(0x9F02, 6), dol.DolEntry(0x9F37, 4), dol.DolEntry(0xE0, 3),
                       dol.DolEntry(0x5F2A, 2))
    values = {0x9F02: bytes.fromhex("012345"), 0xE0: b"\x01\x02\x03", 0x5F2A: b"\x01\x56"}
    assert dol.build(entries, values).hex().upper() == "000000012345" "00000000" "000000" "0156"


def test_published_cdol1_builds_in_order() -> None:
    # A CDOL1 as read from a UnionPay card record (same list our simulated cards carry).
    cdol1 = dol.parse(bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F37049F35019F3403"))
    assert [f"{e.tag:X}" for e in cdol1] == ["9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "9F35",
                                            "9F34"]
    assert sum(e.length for e in cdol1) == 33


@pytest.mark.parametrize(("hex_", "offset"), [
    ("9F", 0),       # tag cut after its first byte
    ("9F02", 2),     # no length
    ("9F0206" "9F", 3),
    ("9F0286", 2),   # a DOL length is one byte, never long form
])
def test_parse_rejects_truncated_lists(hex_: str, offset: int) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        dol.parse(bytes.fromhex(hex_))
    assert err.value.offset == offset


def test_split_is_the_card_side_of_build() -> None:
    entries = dol.parse(bytes.fromhex("8A02910A95059F3704"))
    data = bytes.fromhex("3030" + "11" * 10 + "8000048000" + "A1B2C3D4")
    assert dol.split(entries, data) == {0x8A: b"00", 0x91: b"\x11" * 10, 0x95: bytes.fromhex("8000048000"),
                                        0x9F37: bytes.fromhex("A1B2C3D4")}
    with pytest.raises(RemoteProtocolError):
        dol.split(entries, data[:-1])


@given(st.dictionaries(st.sampled_from([0x9F02, 0x5A, 0x9F37, 0x9F1C, 0x95, 0x9F7A]), st.binary(max_size=12)),
       st.lists(st.tuples(st.sampled_from([0x9F02, 0x5A, 0x9F37, 0x9F1C, 0x95, 0x9F7A]), st.integers(0, 12)),
                max_size=6, unique_by=lambda t: t[0]))
def test_build_always_gives_the_requested_length(values: dict[int, bytes],
                                                 wanted: list[tuple[int, int]]) -> None:
    entries = tuple(dol.DolEntry(t, n) for t, n in wanted)
    built = dol.build(entries, values)
    assert len(built) == sum(n for _, n in wanted)
    assert dol.split(entries, built).keys() == {t for t, _ in wanted}


def test_tag_dictionary_covers_every_tag_the_kernel_and_card_use() -> None:
    used = [0x4F, 0x50, 0x57, 0x5A, 0x5F20, 0x5F24, 0x5F25, 0x5F28, 0x5F2A, 0x5F2D, 0x5F30, 0x5F34, 0x5F36,
            0x61, 0x6F, 0x70, 0x77, 0x80, 0x82, 0x84, 0x87, 0x88, 0x8A, 0x8C, 0x8D, 0x8E, 0x91, 0x94, 0x95,
            0x9A, 0x9B, 0x9C, 0x9F02, 0x9F03, 0x9F06, 0x9F07, 0x9F08, 0x9F09, 0x9F0D, 0x9F0E, 0x9F0F, 0x9F10,
            0x9F11,
            0x9F13, 0x9F15, 0x9F16, 0x9F17, 0x9F1A, 0x9F1B, 0x9F1C, 0x9F1E, 0x9F1F, 0x9F21, 0x9F26, 0x9F27,
            0x9F33, 0x9F34, 0x9F35, 0x9F36, 0x9F37, 0x9F38, 0x9F39, 0x9F40, 0x9F41, 0x9F42, 0x9F44, 0x9F4D,
            0xA5, 0xBF0C]
    missing = [f"{t:X}" for t in used if t not in tags.TAGS]
    assert missing == []
    assert (tags.fmt(0x9F02), tags.fmt(0x5A), tags.fmt(0x9F16), tags.fmt(0x9F7A)) == ("n", "cn", "ans", "b")
    assert tags.name(0x9F26) == "Application Cryptogram"


# fmt: off
LENGTHS = [
    # tag       value                  within Annex A length?
    (0x9F66, "36000000",               True),    # TTQ b 4
    (0x9F66, "360000",                 False),
    (0x9F6C, "0080",                   True),    # CTQ b 2
    (0x9F27, "8080",                   False),   # CID b 1
    (0x9F02, "000000001000",           True),    # n 12
    (0xDF8129, "1010000000000000",     True),    # Outcome Parameter Set b 8
    (0x9F7A, "0102030405",             True),    # unknown: any length
]
# fmt: on


@pytest.mark.parametrize(("tag", "value", "ok"), LENGTHS)
def test_length_rules_from_the_dictionary(tag: int, value: str, ok: bool) -> None:
    assert tags.check_length(tag, bytes.fromhex(value)) is ok


def test_every_fixed_numeric_length_is_consistent() -> None:
    for tag, info in tags.TAGS.items():
        low, high = info.length
        assert 0 <= low <= high <= 255, f"{tag:X}"
