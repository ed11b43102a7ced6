"""The sans-I/O link core with injected time: ACK, retransmission, NAK, duplicates, resync, SYN, timers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.link.core import FrameAcked, FrameReceived, LinkCore, LinkFailed, PeerReset
from drivers.link.frames import FRAGMENT, Control, DataFrame, decode_frame, encode_control, encode_data, find_frame
from tests.drivers.conftest import EveryNth, Wire

SYN = encode_control(Control.SYN, 0)


def fresh(**kwargs: object) -> LinkCore:
    """A core that speaks only version 1 (the rules of v1 stay the contract with v1-only readers)."""
    core = LinkCore(**{"version": 1, **kwargs})  # type: ignore[arg-type]
    assert core.data_to_send() == SYN  # every fresh core first announces itself
    return core


def events(core: LinkCore) -> list[object]:
    return list(iter(core.next_event, None))


# --- sending side -------------------------------------------------------------------------------------------


def test_send_transmits_once_and_ack_completes() -> None:
    core = fresh(ack_timeout_s=0.2)
    seq = core.send(0x01, b"", now=10.0)
    assert core.data_to_send() == encode_data(0, 0x01)
    assert core.get_timer() == pytest.approx(10.2)
    core.receive_data(encode_control(Control.ACK, seq), now=10.05)
    assert events(core) == [FrameAcked(seq=0, cmd=0x01)]
    assert core.get_timer() is None and core.idle


def test_no_ack_retransmits_same_bytes_then_fails() -> None:
    core = fresh(ack_timeout_s=0.2, retries=3)
    core.send(0x01, b"\xaa", now=0.0)
    first = core.data_to_send()
    for attempt in range(1, 4):
        core.handle_timer(0.2 * attempt - 0.001)  # just before the deadline: nothing happens
        assert core.data_to_send() == b""
        core.handle_timer(0.2 * attempt)
        assert core.data_to_send() == first  # the SAME frame, same SEQ
    core.handle_timer(0.8)
    assert core.data_to_send() == b""
    assert events(core) == [LinkFailed(seq=0, cmd=0x01, reason="no ACK after 4 attempts")]
    assert core.stats.retransmissions == 3 and core.stats.failures == 1


def test_ack_wait_includes_the_frames_line_time() -> None:
    core = fresh(ack_timeout_s=0.2, byte_time_s=10 / 9600)  # 9600 baud: a 270-byte frame takes 0.28 s
    core.send(0x92, bytes(263), now=0.0)
    assert core.get_timer() == pytest.approx(0.2 + 270 * 10 / 9600)


def test_retries_is_configurable() -> None:
    core = fresh(ack_timeout_s=0.1, retries=0)
    core.send(0x01, b"", now=0.0)
    core.handle_timer(0.1)
    assert [type(e) for e in events(core)] == [LinkFailed]


def test_frames_queue_behind_the_one_in_flight() -> None:
    core = fresh()
    core.send(0x01, b"a", now=0.0)
    core.send(0x02, b"b", now=0.0)
    assert core.data_to_send() == encode_data(0, 0x01, b"a")  # stop and wait: only the first
    core.receive_data(encode_control(Control.ACK, 0), now=0.1)
    assert core.data_to_send() == encode_data(1, 0x02, b"b")
    assert core.get_timer() == pytest.approx(0.3)  # the second frame's timer starts when it is sent


def test_failed_frame_lets_the_next_one_go() -> None:
    core = fresh(ack_timeout_s=0.1, retries=0)
    core.send(0x01, b"", now=0.0)
    core.send(0x02, b"", now=0.0)
    core.data_to_send()
    core.handle_timer(0.1)
    assert core.data_to_send() == encode_data(1, 0x02)
    assert [type(e) for e in events(core)] == [LinkFailed]


def test_nak_retransmits_at_once_and_counts_as_attempt_but_never_fails_a_frame_early() -> None:
    core = fresh(ack_timeout_s=0.2, retries=1)
    core.send(0x01, b"", now=0.0)
    frame = core.data_to_send()
    core.receive_data(encode_control(Control.NAK, 0), now=0.05)
    assert core.data_to_send() == frame
    assert core.get_timer() == pytest.approx(0.25)  # timer restarted by the retransmission
    core.receive_data(encode_control(Control.NAK, 0), now=0.06)  # after the last attempt: its ACK may follow
    assert events(core) == [] and core.data_to_send() == b"" and core.get_timer() == pytest.approx(0.25)
    core.handle_timer(0.25)
    assert [type(e) for e in events(core)] == [LinkFailed]  # failed at its time-out (rule 3)


@pytest.mark.parametrize("stray", [encode_control(Control.ACK, 9), encode_control(Control.NAK, 9)])
def test_ack_or_nak_for_another_seq_is_ignored(stray: bytes) -> None:
    core = fresh()
    core.send(0x01, b"", now=0.0)
    core.data_to_send()
    core.receive_data(stray, now=0.01)
    assert core.data_to_send() == b"" and events(core) == []


def test_send_failed_fails_everything_pending() -> None:
    core = fresh()
    core.send(0x01, b"", now=0.0)
    core.send(0x02, b"", now=0.0)
    core.send_failed()
    assert [(e.seq, e.reason) for e in events(core)] == [(0, "write failed"), (1, "write failed")]
    assert core.idle and core.get_timer() is None


def test_seq_wraps_after_255() -> None:
    core = fresh(initial_seq=255)
    assert core.send(0x01, b"", now=0.0) == 255
    core.receive_data(encode_control(Control.ACK, 255), now=0.0)
    assert core.send(0x01, b"", now=0.0) == 0


# --- receiving side -----------------------------------------------------------------------------------------

STREAM = encode_data(0, 0x40) + encode_data(1, 0x92, b"\x00\x00\x90\x00") + encode_data(2, 0x41)


@pytest.mark.parametrize("split", ["whole", "halves", "bytes"])
def test_receiver_acks_and_delivers_however_bytes_arrive(split: str) -> None:
    core = fresh()
    pieces = {"whole": [STREAM], "halves": [STREAM[:9], STREAM[9:]],
              "bytes": [STREAM[i:i + 1] for i in range(len(STREAM))]}[split]
    for piece in pieces:
        core.receive_data(piece, now=0.0)
    assert events(core) == [FrameReceived(0x40, b"", 0), FrameReceived(0x92, b"\x00\x00\x90\x00", 1),
                            FrameReceived(0x41, b"", 2)]
    assert core.data_to_send() == b"".join(encode_control(Control.ACK, s) for s in (0, 1, 2))


def test_duplicate_seq_is_acked_again_but_not_delivered() -> None:
    core = fresh()
    frame = encode_data(4, 0x40)
    core.receive_data(frame, now=0.0)
    core.receive_data(frame, now=0.3)  # our ACK was lost: the peer sent it again
    assert events(core) == [FrameReceived(0x40, b"", 4)]
    assert core.data_to_send() == encode_control(Control.ACK, 4) * 2
    assert core.stats.duplicates == 1


def test_syn_resets_duplicate_detection() -> None:
    core = fresh()
    core.receive_data(encode_data(0, 0x01), now=0.0)
    core.receive_data(SYN + encode_data(0, 0x01), now=1.0)  # a reopened peer starts at SEQ 0 again
    assert events(core) == [FrameReceived(1, b"", 0), PeerReset(), FrameReceived(1, b"", 0)]


def test_reopened_terminal_is_not_mistaken_for_a_retransmission() -> None:
    wire = Wire()
    wire.terminal.send(0x01, b"", wire.now)
    wire.run()
    wire.terminal = LinkCore(role="terminal")  # close + open: fresh core, SEQ 0 again
    wire.terminal.send(0x01, b"", wire.now)
    wire.run()
    assert [f.seq for f in wire.received("device")] == [0, 0]


@pytest.mark.parametrize(("name", "prefix", "suffix"), [
    ("garbage before", b"\x00\xff\x13\x37", b""),
    ("garbage after",  b"",                 b"\xff\xfe"),
    ("stray control",  b"\x06\x15",         b""),
    ("bogus STX+LEN",  b"\x02\x00\x03",     b""),
])
def test_resync_after_garbage(name: str, prefix: bytes, suffix: bytes) -> None:
    core = fresh(ack_timeout_s=0.2)
    core.receive_data(prefix + encode_data(3, 0x40) + suffix, now=0.0)
    if core.get_timer() is not None:  # a partial candidate waits for more bytes, then is given up
        core.handle_timer(core.get_timer() or 0.0)
        core.receive_data(encode_data(3, 0x40), now=0.2)  # the peer's retransmission
    assert [e for e in events(core) if isinstance(e, FrameReceived)] == [FrameReceived(0x40, b"", 3)]


def test_bad_crc_is_naked_then_good_frame_delivered() -> None:
    core = fresh()
    bad = bytearray(encode_data(5, 0x40, b"xy"))
    bad[-1] ^= 0xFF
    core.receive_data(bytes(bad), now=0.0)
    assert core.data_to_send() == encode_control(Control.NAK, 5)
    core.receive_data(encode_data(5, 0x40, b"xy"), now=0.01)
    assert events(core) == [FrameReceived(0x40, b"xy", 5)]
    assert core.stats.bad_frames >= 1 and core.stats.naks_sent == 1


@pytest.mark.parametrize("split", [None, 5, 1])
def test_bad_then_good_in_one_stream(split: int | None) -> None:
    bad = bytearray(encode_data(6, 0x41, b"\x11\x22"))
    bad[5] ^= 0x01  # a payload byte: the CRC no longer matches
    stream = bytes(bad) + encode_data(7, 0x40, b"ok")
    core = fresh()
    step = split or len(stream)
    for start in range(0, len(stream), step):
        core.receive_data(stream[start:start + step], now=0.0)
    assert events(core) == [FrameReceived(0x40, b"ok", 7)]  # at once, no timer needed
    assert core.data_to_send() == encode_control(Control.NAK, 6) + encode_control(Control.ACK, 7)


@given(st.binary(max_size=200), st.integers(1, 50))
def test_random_bytes_never_raise_and_yield_only_link_events(noise: bytes, step: int) -> None:
    core = fresh()
    now = 0.0
    for start in range(0, len(noise), step):
        now += 0.01
        core.pump(noise[start:start + step], now)
    core.pump(b"", now + 10)  # every stall timer has fired
    assert core.get_timer() is None
    assert all(isinstance(e, FrameReceived | PeerReset) for e in events(core))


def test_bogus_length_cannot_hold_the_line() -> None:
    """An STX with a plausible but false LEN swallows the real frame; the stall timer gives it up."""
    core = fresh(ack_timeout_s=0.2)
    core.receive_data(b"\x02\x01\x00" + encode_data(1, 0x40), now=0.0)  # claims 256 bytes
    assert events(core) == []
    assert core.get_timer() == pytest.approx(0.1)
    core.handle_timer(0.1)
    assert events(core) == [FrameReceived(0x40, b"", 1)]


def test_receive_data_refuses_empty_input() -> None:
    with pytest.raises(ValueError):
        fresh().receive_data(b"", now=0.0)


# --- both ends in memory ------------------------------------------------------------------------------------


def test_pair_request_response_and_unsolicited_event() -> None:
    wire = Wire()
    wire.on_device_frame = lambda f: wire.device.send(f.cmd | 0x80, bytes([f.seq]) + b"pong", wire.now)
    wire.terminal.send(0x01, b"ping", wire.now)
    wire.device.send(0x40, b"", wire.now)  # an event crosses the request on the wire
    wire.run()
    assert [(f.cmd, f.data) for f in wire.received("terminal")] == [(0x40, b""), (0x81, b"\x00pong")]
    assert [(f.cmd, f.data) for f in wire.received("device")] == [(0x01, b"ping")]


@pytest.mark.parametrize("chunk", [0, 1, 5])
def test_pair_with_corrupted_line_delivers_every_frame_once(chunk: int) -> None:
    wire = Wire(t2d=EveryNth(3), d2t=EveryNth(4, offset=1), chunk=chunk)
    for i in range(20):
        wire.terminal.send(0x12, bytes([i]) * 10, wire.now)
        wire.device.send(0x40, bytes([i]), wire.now)
    wire.run()
    assert [f.data for f in wire.received("device")] == [bytes([i]) * 10 for i in range(20)]
    assert [f.data for f in wire.received("terminal")] == [bytes([i]) for i in range(20)]
    assert wire.terminal.stats.retransmissions + wire.device.stats.retransmissions > 0
    assert not any(isinstance(e, LinkFailed) for e in wire.terminal_events + wire.device_events)


def test_silent_peer_fails_after_retries() -> None:
    wire = Wire(t2d=lambda data: b"")  # the device hears nothing
    wire.terminal.send(0x01, b"", wire.now)
    wire.run()
    assert [type(e) for e in wire.terminal_events] == [PeerReset, LinkFailed]
    assert wire.now == pytest.approx(1.8)  # 9 attempts (8 retries) x 0.2 s


_faults = st.lists(st.tuples(st.sampled_from(["ok", "flip", "drop", "garbage"]), st.integers(0, 255)),
                   min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(t2d=_faults, d2t=_faults, count=st.integers(1, 8))
def test_any_line_faults_never_duplicate_or_reorder(t2d: list, d2t: list, count: int) -> None:
    """Whatever the line does, each frame arrives at most once, in order; a missing one was reported."""

    def line(schedule: list) -> object:
        state = iter(schedule * 50)

        def damage(data: bytes) -> bytes:
            kind, value = next(state, ("ok", 0))
            if kind == "flip":
                index = value % len(data)
                return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1:]
            if kind == "drop":
                return data[: value % len(data)]
            if kind == "garbage":
                return bytes([value, 0x02, value]) + data
            return data
        return damage

    wire = Wire(t2d=line(t2d), d2t=line(d2t))  # type: ignore[arg-type]
    for i in range(count):
        wire.terminal.send(0x12, bytes([i]), wire.now)
    wire.run(max_time=600)
    delivered = [f.data[0] for f in wire.received("device")]
    failed = {e.seq for e in wire.terminal_events if isinstance(e, LinkFailed)}
    assert delivered == sorted(set(delivered))  # no duplicates, no reordering
    assert set(range(count)) - set(delivered) <= failed


# --- short frames on a noisy line (issue 15: survive a 1e-2 byte error rate) ----------------------------------


def _frames(raw: bytes) -> list[tuple[int, int, int]]:
    """(seq, cmd, data length) of each data frame in ``raw`` (control frames skipped)."""
    out, buffer = [], bytearray(raw)
    while buffer:
        start, end = find_frame(buffer)
        del buffer[:start]
        if end is None:
            break
        frame = decode_frame(bytes(buffer[:end - start]))
        del buffer[:end - start]
        if isinstance(frame, DataFrame):
            out.append((frame.seq, frame.cmd, len(frame.data)))
    return out


def test_a_clean_line_keeps_long_messages_in_one_frame() -> None:
    core = LinkCore()
    core.data_to_send()  # the SYN
    assert core.send(0x12, bytes(200), now=0.0) == 0
    assert _frames(core.data_to_send()) == [(0, 0x12, 200)]


def v1_wire(**kwargs: object) -> Wire:
    """Two cores that speak only version 1."""
    return Wire(terminal=LinkCore(role="terminal", version=1), device=LinkCore(role="device", version=1),
                **kwargs)  # type: ignore[arg-type]


def test_after_line_damage_a_long_message_goes_in_pieces_and_arrives_whole_once() -> None:
    wire = v1_wire()
    wire.run()  # both SYNs crossed (a SYN clears the noise count: what went before met an absent peer)
    wire.terminal.receive_data(b"\x02\x00\x03\x00\x01\x00\x00\x00", now=0.0)  # a damaged frame: the line is noisy
    wire.terminal.data_to_send()  # its NAK
    message = bytes(range(200))
    sent: list[bytes] = []
    wire.t2d = lambda data: sent.append(data) or data
    assert wire.terminal.send(0x12, message, wire.now) == 3  # delivered under its last frame's SEQ
    wire.run()
    pieces = [f for chunk in sent for f in _frames(chunk)]
    assert pieces == [(0, FRAGMENT, 65), (1, FRAGMENT, 65), (2, FRAGMENT, 65), (3, 0x12, 8)]
    assert [(f.cmd, f.data, f.seq) for f in wire.received("device")] == [(0x12, message, 3)]


def test_a_piece_that_never_gets_through_fails_the_message_and_its_rest_is_not_sent() -> None:
    sent: list[bytes] = []
    seen = {"frames": 0}

    def second_piece_lost(data: bytes) -> bytes:
        sent.append(data)
        if any(seq == 1 for seq, _cmd, _n in _frames(data)):
            return b""
        seen["frames"] += 1
        return data

    wire = v1_wire(t2d=second_piece_lost)
    wire.terminal._noisy = 5  # as after line damage
    wire.terminal.send(0x12, bytes(200), wire.now)
    wire.terminal.send(0x13, b"\x01", wire.now)
    wire.run()
    failed = [e for e in wire.terminal_events if isinstance(e, LinkFailed)]
    assert [(e.seq, e.cmd) for e in failed] == [(3, 0x12)]
    assert not any(seq in (2, 3) for chunk in sent for seq, _cmd, _n in _frames(chunk))  # the rest never left
    assert [(f.cmd, f.data) for f in wire.received("device")] == [(0x13, b"\x01")]  # no partial 0x12


@settings(max_examples=60, deadline=None)
@given(t2d=_faults, sizes=st.lists(st.integers(0, 300), min_size=1, max_size=5))
def test_long_messages_on_any_damaged_line_arrive_whole_once_or_are_reported(t2d: list, sizes: list) -> None:
    state = iter(t2d * 50)

    def damage(data: bytes) -> bytes:
        kind, value = next(state, ("ok", 0))
        if kind == "flip":
            index = value % len(data)
            return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1:]
        return data[: value % len(data)] if kind == "drop" else data

    wire = Wire(t2d=damage)
    wire.terminal._noisy = 5
    messages = {wire.terminal.send(0x12, bytes([i]) * size, wire.now): bytes([i]) * size
                for i, size in enumerate(sizes)}
    wire.run(max_time=600)
    failed = {e.seq for e in wire.terminal_events if isinstance(e, LinkFailed)}
    delivered = {f.seq: f.data for f in wire.received("device")}
    assert all(messages[seq] == data for seq, data in delivered.items())  # whole, under the right SEQ
    assert len(wire.received("device")) == len(delivered)  # once
    assert set(messages) == set(delivered) | failed
