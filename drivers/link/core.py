"""Sans-I/O core of our serial link: stop-and-wait ARQ over the frames of ``drivers.link.frames``.

Theory of operation (h11 / aioquic style). The core owns no port, no thread and no clock. The shell feeds it
the bytes it read (``receive_data``), asks it for the bytes to write (``data_to_send``), sleeps at most until
``get_timer()`` and then calls ``handle_timer(now)``. Whatever happened comes out of ``next_event()``. Every
method that can start a timer takes ``now`` (any monotonic seconds), so tests drive time by hand. The SAME
class runs at both ends of the wire: the terminal's drivers and the simulated devices.

Rules, per direction (each side numbers its own data frames, SEQ 0..255 wrapping):

* One data frame in flight; later ``send`` calls queue behind it in order.
* The receiver ACKs every intact data frame. A frame with the SEQ it delivered last is a retransmission
  (our ACK was lost): ACK it again, deliver nothing.
* No ACK within ``ack_timeout_s`` (plus the frame's own line time, ``byte_time_s`` per byte, so a long
  frame on a slow line is not sent twice) -> retransmit the same bytes, at most ``retries`` times; then
  ``LinkFailed`` for that frame and the next one in the queue starts.
* A data frame with a bad CRC is answered with NAK(its SEQ byte); a NAK for the frame in flight retransmits it
  at once (it counts as an attempt). Any bad candidate costs one byte: drop it, hunt for the next start byte.
* When the line stays quiet for ``ack_timeout_s / 2`` with an incomplete candidate buffered, the buffered
  bytes are given up the same way, byte by byte, still delivering any complete frame found behind them: a
  garbage STX with a plausible LEN cannot hold the line until the peer's retries run out.
* A fresh core first sends SYN: the peer forgets the last SEQ it delivered, so a reopened link whose first SEQ
  happens to equal the old last SEQ is not mistaken for a retransmission.
* Short frames on a noisy line: once this end has seen the line damage a frame (a retransmission, a NAK, a bad
  or duplicate frame), it sends the next ``NOISY_FRAMES`` messages longer than ``fragment_size`` bytes as
  several frames: leading pieces with CMD ``FRAGMENT`` (0x7F, DATA = the real CMD + the piece), the last piece
  as a normal frame with the real CMD. A 250-byte frame survives a 1e-2 byte error rate one time in thirteen, a
  64-byte piece one time in two. The receiver joins consecutive pieces and delivers one message with the SEQ
  of its last frame; a piece that never gets through fails the whole message, and its remaining pieces are
  not sent. A clean line keeps whole frames (fewer turnarounds).

>>> t, d = LinkCore(role="terminal"), LinkCore(role="device")
>>> seq = t.send(0x01, b"", now=0.0)
>>> d.receive_data(t.data_to_send(), now=0.0)
>>> d.next_event(), d.next_event()
(PeerReset(), FrameReceived(cmd=1, seq=0))
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from drivers.link.frames import (
    FRAGMENT,
    STX,
    Control,
    ControlFrame,
    DataFrame,
    Frame,
    decode_frame,
    encode_control,
    encode_data,
    find_frame,
)
from pos_errors import RemoteProtocolError

__all__ = [
    "FrameReceived",
    "FrameAcked",
    "LinkFailed",
    "PeerReset",
    "Event",
    "LinkStats",
    "LinkCore",
]


# --- events (facts) -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameReceived:
    """A new data frame from the peer, delivered exactly once. ``data`` may hold a PAN: not in ``repr``."""

    cmd: int
    data: bytes = field(repr=False)
    seq: int


@dataclass(frozen=True)
class FrameAcked:
    """The peer ACKed our data frame ``seq``."""

    seq: int
    cmd: int


@dataclass(frozen=True)
class LinkFailed:
    """Our data frame ``seq`` was never ACKed (or could not be written); shells map it to DeviceTimeout."""

    seq: int
    cmd: int
    reason: str


@dataclass(frozen=True)
class PeerReset:
    """The peer's link restarted (it sent SYN): it may have lost state, e.g. a reader that rebooted."""


Event = FrameReceived | FrameAcked | LinkFailed | PeerReset


@dataclass
class LinkStats:
    """Counters that make link efficiency and robustness measurable."""

    frames_sent: int = 0
    frames_received: int = 0
    retransmissions: int = 0
    duplicates: int = 0
    bad_frames: int = 0
    naks_sent: int = 0
    bytes_dropped: int = 0
    failures: int = 0


@dataclass
class _Outgoing:
    seq: int
    cmd: int
    raw: bytes = field(repr=False)
    attempts: int = 0
    deadline: float = 0.0
    message_seq: int = -1  # SEQ of the message's last frame (its own SEQ for a one-frame message)


NOISY_FRAMES = 64  # how long one sign of line damage keeps long messages in short frames


# --- the core -----------------------------------------------------------------------------------------------


class LinkCore:
    """One end of the link.

    Args:
        ack_timeout_s: how long to wait for an ACK before retransmitting.
        byte_time_s: line time of one byte (10 / baud for 8N1), added per byte of the frame to its ACK wait.
        retries: retransmissions after the first attempt before ``LinkFailed``.
        role: a label ("terminal", "device") for diagnostics; the rules are the same at both ends.
        initial_seq: SEQ of the first data frame (tests pick it to provoke collisions).
    """

    def __init__(self, *, ack_timeout_s: float = 0.2, retries: int = 8, role: str = "terminal",
                 initial_seq: int = 0, byte_time_s: float = 0.0, fragment_size: int = 64) -> None:
        if ack_timeout_s <= 0 or retries < 0 or byte_time_s < 0 or not 0 <= initial_seq <= 0xFF \
                or fragment_size < 8:
            raise ValueError("ack_timeout_s > 0, retries >= 0, byte_time_s >= 0, initial_seq 0..255, "
                             "fragment_size >= 8")
        self.fragment_size = fragment_size
        self._noisy = 0  # messages still to send in short frames since the line last damaged a frame
        self._pieces: list[bytes] = []  # pieces of an incoming message so far
        self._pieces_cmd, self._pieces_seq = -1, -1
        self.byte_time_s = byte_time_s
        self.role = role
        self.ack_timeout_s = ack_timeout_s
        self.retries = retries
        self.stats = LinkStats()
        self._next_seq = initial_seq
        self._last_rx_seq: int | None = None
        self._rx = bytearray()
        self._rx_deadline: float | None = None
        self._out = bytearray(encode_control(Control.SYN, 0))
        self._events: deque[Event] = deque()
        self._queue: deque[_Outgoing] = deque()
        self._inflight: _Outgoing | None = None

    def __repr__(self) -> str:
        inflight = None if self._inflight is None else self._inflight.seq
        return f"<LinkCore {self.role} inflight={inflight} queued={len(self._queue)}>"

    # --- sending ---

    def send(self, cmd: int, data: bytes, now: float) -> int:
        """Queue one message; returns the SEQ it is delivered (and answered) under: its last frame's. Raises
        LocalProtocolError if it cannot be framed."""
        size = self.fragment_size
        pieces = [data[i:i + size] for i in range(0, len(data), size)] if self._noisy and len(data) > size \
            else [data]
        self._noisy = max(0, self._noisy - 1)
        first = self._next_seq
        message_seq = (first + len(pieces) - 1) & 0xFF
        frames = [encode_data((first + i) & 0xFF, FRAGMENT, bytes([cmd]) + piece)
                  for i, piece in enumerate(pieces[:-1])]
        frames.append(encode_data(message_seq, cmd, pieces[-1]))
        for i, raw in enumerate(frames):
            self._queue.append(_Outgoing(seq=(first + i) & 0xFF, cmd=cmd, raw=raw, message_seq=message_seq))
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
        """Nothing in flight, queued or waiting to be written."""
        return self._inflight is None and not self._queue and not self._out

    # --- receiving ---

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the line (never empty: an empty read is ``handle_timer``'s business)."""
        if not data:
            raise ValueError("receive_data(b'') - call handle_timer(now) on an empty read")
        self._rx += data
        self._parse(now)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # --- time ---

    def get_timer(self) -> float | None:
        """Earliest deadline at which ``handle_timer`` must run, or None when nothing waits on time."""
        deadlines = [] if self._rx_deadline is None else [self._rx_deadline]
        if self._inflight is not None:
            deadlines.append(self._inflight.deadline)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Act on every passed deadline: retransmit or fail the frame in flight, give up stalled bytes."""
        inflight = self._inflight
        if inflight is not None and now >= inflight.deadline:
            self._retransmit(inflight, now, "no ACK")
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

    # --- internals ---

    def _start_next(self, now: float) -> None:
        if self._inflight is None and self._queue:
            self._inflight = self._queue.popleft()
            self._transmit(self._inflight, now)
            self.stats.frames_sent += 1

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
                frame = decode_frame(bytes(self._rx[:end]))
            except RemoteProtocolError:
                self.stats.bad_frames += 1
                self._noisy = NOISY_FRAMES
                if self._rx[0] == STX:  # a damaged data frame: ask for it again without waiting for a timeout
                    self._out += encode_control(Control.NAK, self._rx[3])
                    self.stats.naks_sent += 1
                self._drop(1)
                continue
            del self._rx[:end]
            self._handle(frame, now)
        # Bytes of a partial frame: give them up if nothing more arrives soon (see the module docstring).
        self._rx_deadline = now + self.ack_timeout_s / 2 if self._rx else None

    def _handle(self, frame: Frame, now: float) -> None:
        if isinstance(frame, DataFrame):
            self._out += encode_control(Control.ACK, frame.seq)
            if frame.seq == self._last_rx_seq:
                self.stats.duplicates += 1
                self._noisy = NOISY_FRAMES  # our ACK was lost: the line is damaging frames
                return
            self._last_rx_seq = frame.seq
            self.stats.frames_received += 1
            self._deliver(frame)
            return
        self._handle_control(frame, now)

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
        self._events.append(FrameReceived(cmd=frame.cmd, data=b"".join(pieces) + frame.data, seq=frame.seq))

    def _handle_control(self, frame: ControlFrame, now: float) -> None:
        inflight = self._inflight
        if frame.kind is Control.SYN:
            self._last_rx_seq = None
            self._pieces = []
            self._events.append(PeerReset())
        elif inflight is None or frame.seq != inflight.seq:
            return  # a late or stray ACK/NAK: nothing of ours is waiting for it
        elif frame.kind is Control.ACK:
            self._inflight = None
            self._events.append(FrameAcked(seq=inflight.seq, cmd=inflight.cmd))
            self._start_next(now)
        else:
            self._retransmit(inflight, now, "NAK")
