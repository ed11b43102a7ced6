"""Framing (whole, split, byte at a time, garbage) and the codec's properties under hypothesis."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.host import messages as m
from flows.ports import AuthRequest, ReversalRequest
from pos_errors import LocalProtocolError, RemoteProtocolError

MESSAGES = [b"0800" + bytes(range(20)), b"0210", b"\x00\x01" * 300]
STREAM = b"".join(m.frame(msg) for msg in MESSAGES)


def _drain(decoder: m.FrameDecoder) -> list[bytes]:
    out = []
    while (raw := decoder.next_frame()) is not None:
        out.append(raw)
    return out


def test_whole_stream() -> None:
    d = m.FrameDecoder()
    d.receive_data(STREAM)
    assert _drain(d) == MESSAGES and d.buffered == 0


@pytest.mark.parametrize("cut", [1, 2, 3, 24, 26, 27, len(STREAM) - 1])
def test_split_in_two(cut: int) -> None:
    d = m.FrameDecoder()
    d.receive_data(STREAM[:cut])
    first = _drain(d)
    d.receive_data(STREAM[cut:])
    assert first + _drain(d) == MESSAGES


def test_byte_at_a_time() -> None:
    d, out = m.FrameDecoder(), []
    for i in range(len(STREAM)):
        d.receive_data(STREAM[i : i + 1])
        out += _drain(d)
    assert out == MESSAGES


def test_keepalive_is_skipped_and_partial_frame_waits() -> None:
    d = m.FrameDecoder()
    d.receive_data(b"\x00\x00" + m.frame(b"0810") + b"\x00\x05081")
    assert _drain(d) == [b"0810"] and d.buffered == 5


def test_oversized_length_is_a_remote_error() -> None:
    d = m.FrameDecoder()
    d.receive_data(b"\xff\xff0200")
    with pytest.raises(RemoteProtocolError) as err:
        d.next_frame()
    assert err.value.offset == 0


@pytest.mark.parametrize("size", [0, m.MAX_MESSAGE_LEN + 1])
def test_frame_refuses_what_cannot_be_framed(size: int) -> None:
    with pytest.raises(LocalProtocolError):
        m.frame(bytes(size))


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=6), st.data())
def test_any_split_reassembles(messages: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(m.frame(msg) for msg in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    d, out, last = m.FrameDecoder(), [], 0
    for cut in [*cuts, len(stream)]:
        d.receive_data(stream[last:cut])
        out += _drain(d)
        last = cut
    assert out == messages


# --- codec properties ---------------------------------------------------------------------------------------

digits = st.text("0123456789", min_size=1)
requests = st.builds(
    AuthRequest,
    stan=st.integers(0, 999_999),
    amount_minor=st.integers(0, 999_999_999_999),
    local_time=st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2024, 12, 31)).map(
        lambda t: t.replace(microsecond=0)),
    pan=st.text("0123456789", min_size=12, max_size=19),
    expiry_yymm=st.text("0123456789", min_size=4, max_size=4),
    pan_sequence=st.none() | st.text("0123456789", min_size=2, max_size=2),
    track2=st.none() | st.tuples(st.text("0123456789", min_size=12, max_size=19),
                                 st.text("0123456789", max_size=17)).map(
        lambda p: bytes.fromhex(f"{p[0]}D{p[1]}" + "F" * ((len(p[0]) + len(p[1]) + 1) % 2))),
    pos_entry_mode=st.sampled_from(["051", "071", "901", "801"]),
    icc_data=st.binary(max_size=255),
    pin_block=st.none() | st.sampled_from([8, 16]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    currency=st.just("156"),
    terminal_id=st.text("ABCDEFGHIJ0123456789", min_size=1, max_size=8),
    merchant_id=st.text("ABCDEFGHIJ0123456789 ", min_size=1, max_size=15).map(str.rstrip).filter(bool),
).map(lambda r: r if r.pin_block is None else _with_ksn(r))


def _with_ksn(r: AuthRequest) -> AuthRequest:
    from dataclasses import replace
    return replace(r, ksn=bytes(range(12 if len(r.pin_block or b"") == 16 else 10)))


@settings(max_examples=200, deadline=None)
@given(requests)
def test_request_round_trip(req: AuthRequest) -> None:
    raw = m.pack(m.build_auth_request(req, terminal_id="X", merchant_id="Y"))
    assert m.parse_auth_request(m.unpack(raw), year=req.local_time.year) == req


@settings(max_examples=100, deadline=None)
@given(requests, st.integers(0, 999_999), st.booleans())
def test_reversal_quotes_the_original(req: AuthRequest, stan: int, repeat: bool) -> None:
    fields = m.unpack(m.pack(m.build_reversal(ReversalRequest(stan, req, repeat=repeat), terminal_id="X",
                                              merchant_id="Y", transmitted_at=dt.datetime(2024, 6, 1))))
    original = m.parse_original_data(fields["90"])
    assert (original.mti, original.stan) == ("0200", req.stan)
    assert m.expected_key(fields) == ("0410", f"{stan:06d}", req.terminal_id)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200) | st.binary(max_size=200).map(lambda b: b"0210" + b))
def test_garbage_raises_only_remote_protocol_error(raw: bytes) -> None:
    try:
        fields = m.unpack(raw)
        m.parse_auth_response(fields)
        m.parse_auth_request(fields, year=2025)
    except RemoteProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(requests, st.data())
def test_truncated_message_is_a_remote_error(req: AuthRequest, data: st.DataObject) -> None:
    raw = m.pack(m.build_auth_request(req, terminal_id="X", merchant_id="Y"))
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(RemoteProtocolError):
        m.unpack(raw[:cut])


def test_pin_block_under_the_pik_goes_without_a_ksn() -> None:  # master/session: format 0, field 52 only
    req = AuthRequest(stan=1, amount_minor=1, local_time=dt.datetime(2025, 1, 1), pan="6212345678901234",
                      expiry_yymm="2712", pin_block=bytes.fromhex("0123456789ABCDEF"))
    fields = m.build_auth_request(req, terminal_id="T", merchant_id="M")
    assert fields["52"] == "0123456789ABCDEF" and "53" not in fields
    parsed = m.parse_auth_request(m.unpack(m.pack(fields)), year=2025)
    assert parsed.pin_block == req.pin_block and parsed.ksn is None


@pytest.mark.parametrize("change", [
    {"pan": "12345"}, {"pan": "62123456789012345x"}, {"stan": 1_000_000}, {"amount_minor": -1},
    {"expiry_yymm": "271"}, {"pin_block": bytes(9), "ksn": bytes(10)}, {"pin_block": bytes(16), "ksn": None},
    {"icc_data": bytes(256)}, {"track2": b"\x62\x12"}, {"terminal_id": "TOOLONG01"},
])
def test_invalid_requests_are_local_errors_without_the_pan(change: dict[str, object]) -> None:
    from dataclasses import replace
    base = AuthRequest(stan=1, amount_minor=1, local_time=dt.datetime(2025, 1, 1), pan="6212345678901234",
                       expiry_yymm="2712")
    with pytest.raises(LocalProtocolError) as err:
        m.build_auth_request(replace(base, **change), terminal_id="T", merchant_id="M")  # type: ignore[arg-type]
    assert "6212345678901234" not in str(err.value) and "62123456" not in str(err.value)


def test_answer_without_response_code_is_a_remote_error() -> None:
    with pytest.raises(RemoteProtocolError) as err:
        m.parse_auth_response(m.unpack(m.pack({"t": "0210", "11": "000001"})))
    assert err.value.tag == "39"


def test_response_mti_and_keys() -> None:
    assert [m.response_mti(x) for x in ("0200", "0400", "0401", "0800")] == ["0210", "0410", "0410", "0810"]
    assert m.expected_key({"t": "0800", "11": "000009", "41": "T1      "}) == ("0810", "000009", "T1")
