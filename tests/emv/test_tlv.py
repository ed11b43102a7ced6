"""BER-TLV codec: published vectors, malformed input with offsets, padding, lookups, property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emv import tlv
from emv.tlv import Tlv
from pos_errors import LocalProtocolError, RemoteProtocolError

# Vectors from knovichikhin/pyemv tests/test_tlv.py (test_decode_tag, test_encode): hex -> (tag, value).
# pyemv also accepts the indefinite length '80'; EMV forbids it (Book 3 Annex B2), so those rows are left out.
# fmt: off
DECODE_VECTORS = [
    ("9C00",           0x9C,     ""),
    ("9C01FF",         0x9C,     "FF"),
    ("9C8101FF",       0x9C,     "FF"),
    ("9F0200",         0x9F02,   ""),
    ("9F0201FF",       0x9F02,   "FF"),
    ("9F820100",       0x9F8201, ""),
    ("9F820101FF",     0x9F8201, "FF"),
    ("9C8100",         0x9C,     ""),
    ("9C820000",       0x9C,     ""),
    ("9C83000000",     0x9C,     ""),
    ("9C8400000000",   0x9C,     ""),
    ("9C820001FF",     0x9C,     "FF"),
    ("9C83000001FF",   0x9C,     "FF"),
    ("9C8400000001FF", 0x9C,     "FF"),
]
ENCODE_VECTORS = [
    (0x9C,     "",          "9C00"),
    (0x9C,     "FF",        "9C01FF"),
    (0x9F00,   "FF",        "9F0001FF"),
    (0x9F8001, "FF",        "9F800101FF"),
    (0x9C,     "FF" * 128,  "9C8180" + "FF" * 128),
    (0x9C,     "FF" * 511,  "9C8201FF" + "FF" * 511),
]
# Malformed input: hex, tag named by the error, absolute offset (pyemv test_decode_exception, same convention:
# a missing tag byte points at the tag, a missing length at the length, a short value at the value).
MALFORMED = [
    ("9F",                 "9F",   0),
    ("9FF0",               "9FF0", 0),
    ("9C",                 "9C",   1),
    ("9C81",               "9C",   1),
    ("9C8200",             "9C",   1),
    ("9C01",               "9C",   2),
    ("9C0200",             "9C",   2),
    ("E001",               "E0",   2),
    ("E0019F0001FF",       "9F",   2),
    ("E0019C01FF",         "9C",   3),
    ("E0029C8101FF",       "9C",   3),
    ("E0039C8201FF",       "9C",   3),
    ("E0039C8101C001FF",   "9C",   5),
    ("E0049C810200C001FF", "9C",   5),
    ("9C01FFAA",           "AA",   4),
    ("E0039C01FFAA",       "AA",   6),
    ("9C80",               "9C",   1),   # indefinite length: not allowed in EMV
]
# fmt: on


@pytest.mark.parametrize(("hex_", "tag", "value"), DECODE_VECTORS)
def test_decode_published_vectors(hex_: str, tag: int, value: str) -> None:
    assert tlv.decode(bytes.fromhex(hex_)) == (Tlv(tag, bytes.fromhex(value)),)


@pytest.mark.parametrize(("tag", "value", "hex_"), ENCODE_VECTORS)
def test_encode_published_vectors(tag: int, value: str, hex_: str) -> None:
    encoded = tlv.encode([Tlv(tag, bytes.fromhex(value))])
    assert encoded == bytes.fromhex(hex_)
    assert tlv.decode(encoded) == (Tlv(tag, bytes.fromhex(value)),)


def test_encode_constructed_published_vectors() -> None:
    # pyemv test_encode: {"E0": {"9F00": b"\xFF"}, "9C": b"\xFF"} -> E0049F0001FF9C01FF
    objects = [Tlv.template(0xE0, Tlv(0x9F00, b"\xff")), Tlv(0x9C, b"\xff")]
    assert tlv.encode(objects) == bytes.fromhex("E0049F0001FF9C01FF")
    assert tlv.encode([Tlv.template(0xE0)]) == bytes.fromhex("E000")


@pytest.mark.parametrize(("hex_", "tag", "offset"), MALFORMED)
def test_malformed_input_names_tag_and_offset(hex_: str, tag: str, offset: int) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        tlv.decode(bytes.fromhex(hex_))
    assert (err.value.tag, err.value.offset) == (tag, offset)


def test_length_over_four_bytes_is_rejected() -> None:
    with pytest.raises(RemoteProtocolError) as err:
        tlv.decode(bytes.fromhex("9C850000000001FF"))
    assert err.value.offset == 1


def test_tag_longer_than_four_bytes_is_rejected() -> None:
    with pytest.raises(RemoteProtocolError, match="longer than 4"):
        tlv.decode(bytes.fromhex("9F8181818101FF"))


def test_padding_between_and_around_objects_is_skipped() -> None:
    # Book 3 Annex B: '00' may precede, separate or follow objects in a record; FF filler likewise.
    record = bytes.fromhex("0000" "700B" "5A03123456" "00FF" "9F360100" "FF00")
    objects = tlv.decode(record)
    assert [o.tag for o in objects] == [0x70]
    assert tlv.flatten(objects) == {0x5A: bytes.fromhex("123456"), 0x9F36: b"\x00"}


# An application FCI shaped like Book 1 §11.3.4 Table 45: 6F { 84, A5 { 50, 87, BF0C { 9F4D } } }.
FCI = bytes.fromhex("6F21" "8407A0000000031010" "A516" "500B5649534120435245444954" "870101" "BF0C039F4D00")


def test_nested_lookups() -> None:
    objects = tlv.decode(FCI)
    assert tlv.first(objects, 0x84) == bytes.fromhex("A0000000031010")
    assert tlv.first(objects, 0x50) == b"VISA CREDIT"
    assert tlv.first(objects, 0x9F4D) == b""
    assert tlv.first(objects, 0x5A) is None
    assert [o.tag for o in tlv.find(objects, 0x87)] == [0x87]
    assert set(tlv.flatten(objects)) == {0x84, 0x50, 0x87, 0x9F4D}
    assert objects[0].children[1].tag == 0xA5 and objects[0].constructed


def test_flatten_keeps_the_first_occurrence() -> None:
    objects = tlv.decode(bytes.fromhex("9F0201AA" "E0049F0201BB" "9F0201CC"))
    assert tlv.flatten(objects) == {0x9F02: b"\xaa"}


def test_encode_round_trips_the_fci() -> None:
    assert tlv.encode(tlv.decode(FCI)) == FCI


def test_repr_never_shows_the_value() -> None:
    assert repr(Tlv(0x5A, bytes.fromhex("6217000012345670"))) == "Tlv(5A, <8 bytes>)"


@pytest.mark.parametrize("tag", [0, 0x00, 0xFF01, 0x9F, 0x9F8180, 0x1F, 0x5A5A, 1 << 32])
def test_encoder_refuses_malformed_tags(tag: int) -> None:
    with pytest.raises(LocalProtocolError):
        tlv.encode_tag(tag)


def test_template_refuses_a_primitive_tag() -> None:
    with pytest.raises(LocalProtocolError):
        Tlv.template(0x5A, Tlv(0x9F36, b"\x00\x01"))


def test_every_prefix_of_a_record_decodes_to_a_prefix_or_raises() -> None:
    data = bytes.fromhex("9F3602001C" "5A0862170000123456709F2701805F24033012319C0100")
    whole = tlv.decode(data)
    for cut in range(len(data)):
        try:
            part = tlv.decode(data[:cut])
        except RemoteProtocolError as err:
            assert err.offset is not None and 0 <= err.offset <= cut
        else:
            assert whole[:len(part)] == part


# --- properties ---------------------------------------------------------------------------------------------


def _tags(constructed: bool) -> st.SearchStrategy[int]:
    first_class = st.sampled_from([0x40, 0x80, 0xC0, 0x00])
    cons = 0x20 if constructed else 0x00

    def one_byte(cls: int) -> st.SearchStrategy[int]:
        return st.integers(1, 0x1E).map(lambda n: cls | cons | n).filter(lambda b: b not in (0x00, 0xFF))

    def multi(cls: int) -> st.SearchStrategy[int]:
        lead = cls | cons | 0x1F
        return st.lists(st.integers(0x80, 0xFF), max_size=2).flatmap(
            lambda mids: st.integers(0x01, 0x7F).map(
                lambda last: int.from_bytes(bytes([lead, *mids, last]), "big"))
        ).filter(lambda t: t.to_bytes((t.bit_length() + 7) // 8, "big")[0] != 0xFF)

    return first_class.flatmap(lambda cls: st.one_of(one_byte(cls), multi(cls)))


primitives = st.builds(Tlv, _tags(False), st.binary(max_size=300))
objects_strategy = st.recursive(
    primitives,
    lambda children: st.builds(lambda tag, kids: Tlv.template(tag, *kids), _tags(True),
                               st.lists(children, max_size=4)),
    max_leaves=12,
)


@given(st.lists(objects_strategy, max_size=5))
@settings(max_examples=150, deadline=None)
def test_decode_inverts_encode(objects: list[Tlv]) -> None:
    assert tlv.decode(tlv.encode(objects)) == tuple(objects)


@given(st.lists(objects_strategy, min_size=2, max_size=4))
@settings(max_examples=80, deadline=None)
def test_concatenation_decodes_piecewise(objects: list[Tlv]) -> None:
    left, right = tlv.encode(objects[:1]), tlv.encode(objects[1:])
    assert tlv.decode(left + right) == tlv.decode(left) + tlv.decode(right)


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_random_bytes_raise_only_our_error(data: bytes) -> None:
    try:
        objects = tlv.decode(data)
    except RemoteProtocolError as err:
        assert err.offset is not None and 0 <= err.offset <= len(data)
    else:
        for obj in objects:  # whatever decodes is well formed all the way down
            list(tlv.find([obj], 0x9F36))
