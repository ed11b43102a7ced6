"""Sans-I/O core of our serial link: stop-and-wait ARQ over the frames of ``drivers.link.frames``.

Theory of operation (h11 / aioquic style). The core owns no port, no thread and no clock. The shell feeds it
the bytes it read (``receive_data``), asks it for the bytes to write (``data_to_send``), sleeps at most until
``get_timer()`` and then calls ``handle_timer(now)``. Whatever happened comes out of ``next_event()``. Every
method that can start a timer takes ``now`` (any monotonic seconds), so tests drive time by hand. The SAME
class runs at both ends of the wire: the terminal's drivers and the simulated devices.

The rules (stop and wait per direction, ACK/NAK, bounded retransmission with the frame's line time added,
duplicates, resync by one byte, stall, SYN, short frames on a noisy line, and the v2 framing negotiated by
``version=2``: piggybacked acknowledgements, implied answer CMD/echo, delayed 5-byte ACKs, idempotent replay of
an answer to a repeated command) are docs/protocols/card-reader.md, link rules 1-10.

>>> t, d = LinkCore(role="terminal"), LinkCore(role="device")
>>> seq = t.send(0x01, b"", now=0.0)
>>> d.receive_data(t.data_to_send(), now=0.0)
>>> d.next_event(), d.next_event()
(PeerReset(), FrameReceived(cmd=1, seq=0))
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from drivers.link.events import Event, FrameAcked, FrameReceived, LinkFailed, LinkStats, PeerReset
from drivers.link.frames import (
    FRAGMENT,
    MAX_DATA,
    STX,
    STX2,
    Control,
    ControlFrame,
    DataFrame,
    Frame,
    V2Frame,
    decode_frame,
    encode_control,
    encode_data,
    encode_v2,
    encode_v2_control,
    find_frame,
    is_response,
    response_cmd,
)
from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = ["FrameReceived", "FrameAcked", "LinkFailed", "PeerReset", "Event", "LinkStats", "LinkCore"]

SYN_REPLY = 0x80  # bit 7 of a SYN's SEQ byte: a reply to a v2 SYN (no restart); bits 6-0: the version spoken
NOISY_FRAMES = 64  # how long one sign of line damage keeps long messages in short frames


@dataclass
class _Outgoing:
    seq: int
    cmd: int
    piece: bytes = field(repr=False)
    message_seq: int = -1  # SEQ of the message's last frame (its own SEQ for a one-frame message)
    last: bool = True
    first: bool = True
    echo: int | None = None  # an answer to the peer's message with this SEQ (v2 sends neither CMD nor echo)
    raw: bytes = field(default=b"", repr=False)  # built when the frame goes out (a v2 frame carries an ACK)
    attempts: int = 0
    deadline: float = 0.0




class LinkCore:
    """One end of the link.

    Args:
        ack_timeout_s: how long to wait for an ACK before retransmitting.
        byte_time_s: line time of one byte (10 / baud for 8N1), added per byte of the frame to its ACK wait.
        retries: retransmissions after the first attempt before ``LinkFailed``.
        role: a label ("terminal", "device") for diagnostics; the rules are the same at both ends.
        initial_seq: SEQ of the first data frame (tests pick it to provoke collisions).
        version: the highest link version this end offers (1, the default, as before; 2 negotiates v2).
    """

    def __init__(self, *, ack_timeout_s: float = 0.2, retries: int = 8, role: str = "terminal",
                 initial_seq: int = 0, byte_time_s: float = 0.0, fragment_size: int = 64,
                 version: int = 1) -> None:
        if ack_timeout_s <= 0 or retries < 0 or byte_time_s < 0 or not 0 <= initial_seq <= 0xFF \
                or fragment_size < 8 or version not in (1, 2):
            raise ValueError("ack_timeout_s > 0, retries >= 0, byte_time_s >= 0, initial_seq 0..255, "
                             "fragment_size >= 8, version 1 or 2")
        self.fragment_size = fragment_size
        self._noisy = 0  # messages still to send in short frames since the line last damaged a frame
        self._pieces: list[bytes] = []  # pieces of an incoming message so far
        self._pieces_cmd, self._pieces_seq, self._pieces_ack = -1, -1, -1  # _ack: what an answer's pieces carry
        self.byte_time_s, self.role = byte_time_s, role
        self.ack_timeout_s = ack_timeout_s
        self.retries = retries
        self.version = version
        self.peer_version = 1  # 2 once the peer said (SYN, SYN reply) or showed (a v2 frame) that it speaks v2
        self.stats = LinkStats()
        self._next_seq = initial_seq
        self._last_rx_seq: int | None = None
        self._ack_due: int | None = None  # v2: SEQ (mod 8) of the peer's frame still to acknowledge
        self._ack_deadline: float | None = None
        self._answerable: tuple[int, int] | None = None  # (SEQ, CMD) of the peer's last message, unanswered
        self._last_acked: dict[int, tuple[int, int]] = {}  # (SEQ, CMD) of our messages acknowledged, by SEQ & 3
        self._rx = bytearray()
        self._rx_deadline: float | None = None
        self._naked = False  # a NAK went out for the damaged bytes being skipped
        self._out = bytearray(encode_control(Control.SYN, 0 if version == 1 else version))
        self._events: deque[Event] = deque()
        self._queue: deque[_Outgoing] = deque()
        self._inflight: _Outgoing | None = None

    def __repr__(self) -> str:
        inflight = None if self._inflight is None else self._inflight.seq
        return f"<LinkCore {self.role} v{self.peer_version} inflight={inflight} queued={len(self._queue)}>"


    def send(self, cmd: int, data: bytes, now: float) -> int:
        """Queue one message; returns the SEQ it is delivered (and answered) under: its last frame's. Raises
        LocalProtocolError if it cannot be framed."""
        if not 0 <= cmd <= 0xFF or len(data) > MAX_DATA:
            raise LocalProtocolError(f"CMD {cmd} must be one byte, DATA at most {MAX_DATA} bytes")
        echo, answerable = None, self._answerable
        if self.peer_version >= 2 and answerable is not None and cmd == response_cmd(answerable[1]) \
                and len(data) >= 2 and data[0] == answerable[0]:
            echo, data, self._answerable = answerable[0], data[1:], None  # a v2 answer: CMD and echo implied
        size = self.fragment_size
        pieces = [data[i:i + size] for i in range(0, len(data), size)] if self._noisy and len(data) > size \
            else [data]
        self._noisy = max(0, self._noisy - 1)
        first = self._next_seq
        message_seq = (first + len(pieces) - 1) & 0xFF
        for i, piece in enumerate(pieces):
            self._queue.append(_Outgoing(seq=(first + i) & 0xFF, cmd=cmd, piece=piece, message_seq=message_seq,
                                         last=i == len(pieces) - 1, first=i == 0, echo=echo))
        self._next_seq = (message_seq + 1) & 0xFF
        self._start_next(now)
        return message_seq

    def data_to_send(self) -> bytes:
        """Bytes the shell must write now (frames, retransmissions, ACK/NAK); empties the buffer."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def send_failed(self) -> None:
        """The shell could not write: every frame in flight or queued fails, pending output is dropped."""
        self._out.clear()
        pending = ([self._inflight] if self._inflight else []) + list(self._queue)
        self._inflight = None
        self._queue.clear()
        for outgoing in pending:
            self._fail(outgoing, "write failed")

    @property
    def idle(self) -> bool:
        """Nothing in flight, queued, waiting to be written or still to be acknowledged."""
        return self._inflight is None and not self._queue and not self._out and self._ack_due is None


    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the line (never empty: an empty read is ``handle_timer``'s business)."""
        if not data:
            raise ValueError("receive_data(b'') - call handle_timer(now) on an empty read")
        self._rx += data
        self._parse(now)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None


    def get_timer(self) -> float | None:
        """Earliest deadline at which ``handle_timer`` must run, or None when nothing waits on time."""
        deadlines = [d for d in (self._rx_deadline, self._ack_deadline) if d is not None]
        if self._inflight is not None:
            deadlines.append(self._inflight.deadline)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Act on every passed deadline: retransmit or fail the frame in flight, give up stalled bytes, send
        a v2 ACK nothing rode on."""
        inflight = self._inflight
        if inflight is not None and now >= inflight.deadline:
            self._retransmit(inflight, now, "no ACK")
        if self._ack_deadline is not None and now >= self._ack_deadline:
            self._send_ack()
        if self._rx_deadline is not None and now >= self._rx_deadline:
            while self._rx:  # all of it is older than the gap: a partial candidate in it will not complete
                self._drop(1)
                self._parse(now)  # still delivers a complete frame found behind the dead bytes

    def pump(self, data: bytes, now: float) -> list[Event]:
        """A shell's step after each read: feed ``data`` (if any), run due timers, drain the events."""
        if data:
            self.receive_data(data, now)
        self.handle_timer(now)
        return list(iter(self.next_event, None))


    def _start_next(self, now: float) -> None:
        if self._inflight is None and self._queue:
            outgoing = self._inflight = self._queue.popleft()
            outgoing.raw = self._encode(outgoing)
            self._transmit(outgoing, now)
            self.stats.frames_sent += 1

    def _encode(self, out: _Outgoing) -> bytes:
        if self.peer_version >= 2 and out.echo is not None:
            if self._ack_due == out.echo & 7:
                self._take_ack()
            return encode_v2(out.seq, None, out.piece, ack=out.echo & 3, more=not out.last)
        if self.peer_version >= 2:
            return encode_v2(out.seq, out.cmd, out.piece, ack=self._take_ack(), more=not out.last)
        piece = bytes([out.echo]) + out.piece if out.echo is not None and out.first else out.piece
        return encode_data(out.seq, out.cmd, piece) if out.last else \
            encode_data(out.seq, FRAGMENT, bytes([out.cmd]) + piece)

    def _take_ack(self) -> int | None:  # the pending v2 acknowledgement (SEQ mod 4), now on its way: sent once
        due, self._ack_due, self._ack_deadline = self._ack_due, None, None
        return None if due is None else due & 3

    def _send_ack(self) -> None:
        due = self._take_ack()
        if due is not None:
            self._out, self.stats.acks_sent = self._out + encode_v2_control(Control.ACK, due), self.stats.acks_sent + 1

    def _transmit(self, outgoing: _Outgoing, now: float) -> None:
        self._out += outgoing.raw
        outgoing.attempts += 1
        outgoing.deadline = now + self.ack_timeout_s + len(outgoing.raw) * self.byte_time_s

    def _retransmit(self, outgoing: _Outgoing, now: float, why: str) -> None:
        self._noisy = NOISY_FRAMES
        if outgoing.attempts > self.retries:
            self._inflight = None
            self._fail(outgoing, f"{why} after {outgoing.attempts} attempts")
            self._start_next(now)
            return
        self.stats.retransmissions += 1
        self._transmit(outgoing, now)

    def _fail(self, outgoing: _Outgoing, reason: str) -> None:
        """The message of ``outgoing`` failed: its pieces still queued are never sent."""
        self.stats.failures += 1
        self._queue = deque(o for o in self._queue if o.message_seq != outgoing.message_seq)
        self._events.append(LinkFailed(seq=outgoing.message_seq, cmd=outgoing.cmd, reason=reason))

    def _acked(self, now: float) -> None:
        inflight, self._inflight = self._inflight, None
        assert inflight is not None
        if inflight.last:  # by SEQ mod 4: an answer may come after later commands were acknowledged
            self._last_acked[inflight.message_seq & 3] = (inflight.message_seq, inflight.cmd)
        self._events.append(FrameAcked(seq=inflight.seq, cmd=inflight.cmd))
        self._start_next(now)


    def _drop(self, count: int) -> None:
        del self._rx[:count]
        self.stats.bytes_dropped += count

    def _parse(self, now: float) -> None:
        while self._rx:
            start, end = find_frame(self._rx)
            if start:
                self._drop(start)
            if end is None:
                break
            end -= start
            try:
                if self.version == 1 and self._rx[0] == STX2:
                    raise RemoteProtocolError("a v2 frame on a v1 link", offset=0)
                frame = decode_frame(bytes(self._rx[:end]))
            except RemoteProtocolError:
                self.stats.bad_frames += 1
                self._noisy = NOISY_FRAMES
                if self._naked:
                    pass  # one NAK per damaged stretch: start bytes inside a damaged frame must not add more
                elif self._rx[0] == STX:  # a damaged data frame: ask for it again without waiting for a timeout
                    self._out += encode_control(Control.NAK, self._rx[3])
                    self.stats.naks_sent, self._naked = self.stats.naks_sent + 1, True
                elif self._rx[0] == STX2 and self.version >= 2:
                    self._out += encode_v2_control(Control.NAK, self._rx[1])
                    self.stats.naks_sent, self._naked = self.stats.naks_sent + 1, True
                self._drop(1)
                continue
            del self._rx[:end]
            self._naked = False
            self._handle(frame, now)
        # Bytes of a partial frame: give them up if nothing more arrives soon (see the module docstring).
        self._rx_deadline = now + self.ack_timeout_s / 2 if self._rx else None

    def _handle(self, frame: Frame, now: float) -> None:
        if isinstance(frame, ControlFrame):
            self._handle_control(frame, now)
            return
        last = self._last_rx_seq
        if isinstance(frame, V2Frame):
            self.peer_version = 2  # it speaks v2: the SYN reply may have been lost
            seq = frame.seq if last is None else (last + ((frame.seq - last) & 7)) & 0xFF
            more = frame.more
        else:
            seq, more = frame.seq, frame.cmd == FRAGMENT
        v2 = self.peer_version >= 2
        fresh = seq != last
        if fresh:
            self._last_rx_seq = seq
            self.stats.frames_received += 1
            if v2:
                self._ack_due, self._ack_deadline = seq & 7, now + self.ack_timeout_s / 4
            else:
                self._out += encode_control(Control.ACK, seq)
        if isinstance(frame, V2Frame) and frame.ack is not None and self._inflight is not None \
                and self._inflight.seq & 3 == frame.ack:
            self._acked(now)  # the frame acknowledges ours (and what was queued may now carry our ACK)
        if not fresh:
            self.stats.duplicates += 1
            self._noisy = NOISY_FRAMES  # our ACK was lost: the line is damaging frames
            inflight = self._inflight
            if v2 and inflight is not None and inflight.echo == seq:
                self._retransmit(inflight, now, "repeated command")  # replay the answer: it acknowledges
            elif v2:
                self._ack_due = seq & 7
                self._send_ack()
            else:
                self._out += encode_control(Control.ACK, seq)
            return
        if v2 and more:
            self._send_ack()  # the sender waits for it before the next piece: nothing will ride on it
        if isinstance(frame, V2Frame):
            self._deliver_v2(frame, seq)
        else:
            self._deliver(frame)

    def _deliver(self, frame: DataFrame) -> None:
        """Join pieces (see the module docstring); a piece that does not follow its predecessor starts over."""
        follows = bool(self._pieces) and frame.seq == (self._pieces_seq + 1) & 0xFF
        if frame.cmd == FRAGMENT:
            if not frame.data or (follows and frame.data[0] != self._pieces_cmd):
                follows = False  # a damaged piece with a good CRC cannot happen; a stale one can be dropped
            if not follows:
                self._pieces = []
            if frame.data:
                self._pieces.append(frame.data[1:])
                self._pieces_cmd, self._pieces_seq = frame.data[0], frame.seq
            return
        pieces, self._pieces = self._pieces, []
        if pieces and not (follows and frame.cmd == self._pieces_cmd):
            self.stats.bad_frames += 1  # the rest of an earlier message never came: that message is lost
            pieces = []
        self._complete(frame.cmd, b"".join(pieces) + frame.data, frame.seq)

    def _deliver_v2(self, frame: V2Frame, seq: int) -> None:
        cmd, echo = frame.cmd, b""
        if cmd is None and self._pieces and seq == (self._pieces_seq + 1) & 0xFF and self._pieces_ack == frame.ack:
            cmd = self._pieces_cmd  # the rest of an answer: it still refers to the message its first piece did
        elif cmd is None:
            ref = self._last_acked.get(-1 if frame.ack is None else frame.ack)
            if ref is None:
                self.stats.bad_frames += 1  # an answer to nothing this end sent: acknowledged, not delivered
                self._pieces = []
                return
            cmd, echo = response_cmd(ref[1]), bytes([ref[0]])
        if self._pieces and not (seq == (self._pieces_seq + 1) & 0xFF and cmd == self._pieces_cmd):
            self.stats.bad_frames += 1  # the rest of an earlier message never came: that message is lost
            self._pieces = []
        data = frame.data if self._pieces else echo + frame.data
        if frame.more:
            self._pieces.append(data)
            self._pieces_cmd, self._pieces_seq, self._pieces_ack = cmd, seq, -1 if frame.ack is None else frame.ack
            return
        pieces, self._pieces = self._pieces, []
        self._complete(cmd, b"".join(pieces) + data, seq)

    def _complete(self, cmd: int, data: bytes, seq: int) -> None:
        self._answerable = None if is_response(cmd) else (seq, cmd)
        self._events.append(FrameReceived(cmd=cmd, data=data, seq=seq))

    def _handle_control(self, frame: ControlFrame, now: float) -> None:
        inflight = self._inflight
        if frame.kind is Control.SYN:
            if frame.seq & SYN_REPLY:  # the peer answered our v2 SYN: it speaks v2
                self.peer_version = 2 if self.version >= 2 and frame.seq & 0x7F >= 2 else self.peer_version
                return
            self._last_rx_seq = self._ack_due = self._ack_deadline = self._answerable = None
            self._pieces = []
            self.peer_version = 2 if self.version >= 2 and frame.seq >= 2 else 1
            if self.peer_version >= 2:
                self._out += encode_control(Control.SYN, SYN_REPLY | 2)
            self._events.append(PeerReset())
        elif inflight is None:
            pass  # a late or stray ACK/NAK: nothing of ours is waiting for it
        elif frame.version == 2 and frame.kind is Control.ACK:
            if inflight.seq & 3 == frame.seq:
                self._acked(now)
        elif frame.version == 2:
            if inflight.seq & 7 == frame.seq:
                self._retransmit(inflight, now, "NAK")
        elif frame.seq == inflight.seq:  # else a late or stray ACK/NAK: nothing of ours waits for it
            self._acked(now) if frame.kind is Control.ACK else self._retransmit(inflight, now, "NAK")
