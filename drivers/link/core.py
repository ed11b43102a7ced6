"""Sans-I/O core of our serial link: stop-and-wait ARQ over the frames of ``drivers.link.frames``.

Theory of operation (h11 / aioquic style). The core owns no port, no thread and no clock. The shell feeds it
the bytes it read (``receive_data``), asks it for the bytes to write (``data_to_send``), sleeps at most until
``get_timer()`` and then calls ``handle_timer(now)``. Whatever happened comes out of ``next_event()``. Every
method that can start a timer takes ``now`` (any monotonic seconds), so tests drive time by hand. The SAME
class runs at both ends of the wire: the terminal's drivers and the simulated devices.

The rules (stop and wait per direction, ACK/NAK, bounded retransmission with the frame's line time added,
duplicates, resync by one byte, stall, SYN, short frames on a noisy line, and the v2 framing negotiated at
open when both ends speak it (``version=1`` is a v1-only end): piggybacked acknowledgements, implied answer
CMD/echo kept unambiguous by ``outbox.Unanswered``, delayed 5-byte ACKs, idempotent replay of an answer to a
repeated command; v3: an answer's leading 00, STATUS OK, implied; v4: its trailing 90 00 too, and a TRANSMIT's
CMD) are docs/protocols/card-reader.md, link rules 1-12; the versions and their negotiation are
``drivers.link.versions``; after a failed frame ``outbox.Guard`` keeps the next SEQs from aliasing it.

>>> t, d = LinkCore(role="terminal"), LinkCore(role="device")
>>> seq = t.send(0x01, b"", now=0.0)
>>> d.receive_data(t.data_to_send(), now=0.0)
>>> d.next_event(), d.next_event()
(PeerReset(), FrameReceived(cmd=1, seq=0))
"""

from __future__ import annotations

from collections import deque

from drivers.link.events import Event, FrameAcked, FrameReceived, LinkFailed, LinkStats, PeerReset
from drivers.link.frames import (
    FRAGMENT,
    MAX_DATA,
    Control,
    ControlFrame,
    Frame,
    V2Frame,
    encode_control,
    encode_v2_control,
    expects_answer,
    find_frame,
    is_response,
    response_cmd,
)
from drivers.link.outbox import Guard, Outgoing, Unanswered, acknowledges, encode, message
from drivers.link.reassembly import Pieces
from drivers.link.versions import LATEST, SYN_REPLY, VERSIONS, agreed, decode_on, nak_for, syn, syn_reply
from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = ["FrameReceived", "FrameAcked", "LinkFailed", "PeerReset", "Event", "LinkStats", "LinkCore"]

NOISY_FRAMES = 64  # how long one sign of line damage keeps long messages in short frames


class LinkCore:
    """One end of the link.

    Args:
        ack_timeout_s: how long to wait for an ACK before retransmitting.
        byte_time_s: line time of one byte (10 / baud for 8N1), added per byte of the frame to its ACK wait.
        retries: retransmissions after the first attempt before ``LinkFailed``.
        role: a label ("terminal", "device") for diagnostics; the rules are the same at both ends.
        initial_seq: SEQ of the first data frame (tests pick it to provoke collisions).
        version: the highest link version this end offers (1: a v1-only reader; the default, ``LATEST``).
    """

    def __init__(self, *, ack_timeout_s: float = 0.2, retries: int = 8, role: str = "terminal",
                 initial_seq: int = 0, byte_time_s: float = 0.0, fragment_size: int = 64,
                 version: int = LATEST) -> None:
        if ack_timeout_s <= 0 or retries < 0 or byte_time_s < 0 or not 0 <= initial_seq <= 0xFF \
                or fragment_size < 8 or version not in VERSIONS:
            raise ValueError("ack_timeout_s > 0, retries >= 0, byte_time_s >= 0, initial_seq 0..255, "
                             f"fragment_size >= 8, version in {VERSIONS}")
        self.fragment_size = fragment_size
        self._noisy = 0  # messages still to send in short frames since the line last damaged a frame
        self.byte_time_s, self.role = byte_time_s, role
        self.ack_timeout_s = ack_timeout_s
        self.retries = retries
        self.version = version
        self.peer_version = 1  # raised once the peer said (SYN, SYN reply) or showed (its frames) what it speaks
        self.stats = LinkStats()
        self._pieces = Pieces(self.stats, hold_s=2 * (retries + 1) * (ack_timeout_s + (MAX_DATA + 8) * byte_time_s)
                              )  # twice as long as this end retries its longest frame: a peer may retry longer
        self._next_seq = initial_seq
        self._last_rx_seq: int | None = None
        self._last_rx_key: object = None  # v2: what the last fresh frame said (a duplicate says the same)
        self._ack_due: int | None = None  # v2: SEQ (mod 8) of the peer's frame still to acknowledge
        self._ack_deadline: float | None = None
        self._answerable: tuple[int, int] | None = None  # (SEQ, CMD) of the peer's last message, unanswered
        self._unanswered = Unanswered()  # v2: our commands that may still be answered (outbox.py)
        self._hold_deadline: float | None = None  # v2: when a command held back by ``_held`` fails
        self._guard = Guard(self._pieces.hold_s)  # v2: SEQs that could alias a failed frame (outbox.Guard)
        self._last_acked: int | None = None  # SEQ of our last frame the peer acknowledged
        self._rx = bytearray()
        self._rx_deadline: float | None = None
        self._naked = False  # a NAK went out for the damaged bytes being skipped
        self._out = bytearray(syn(version))
        self._events: deque[Event] = deque()
        self._queue: deque[Outgoing] = deque()
        self._inflight: Outgoing | None = None

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
        if self.peer_version >= 2:
            self._next_seq = self._guard.free_seq(self._next_seq, now)
        frames = message(self._next_seq, cmd, data, self.fragment_size if self._noisy else None, echo)
        self._noisy = max(0, self._noisy - 1)
        self._queue.extend(frames)
        self._next_seq = (frames[-1].seq + 1) & 0xFF
        self._start_next(now)
        return frames[-1].seq

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
        timer = None if self._inflight is None else self._inflight.deadline
        for deadline in (self._rx_deadline, self._ack_deadline, self._hold_deadline, self._pieces.deadline,
                         self._guard.deadline if self._queue else None):
            if deadline is not None and (timer is None or deadline < timer):
                timer = deadline
        return timer

    def handle_timer(self, now: float) -> None:
        """Act on every passed deadline: retransmit or fail the frame in flight, give up stalled bytes, send
        a v2 ACK nothing rode on."""
        timer = self.get_timer()
        if timer is None or now < timer:
            return  # nothing is due (every check below is one of get_timer's deadlines passed)
        inflight = self._inflight
        if inflight is not None and now >= inflight.deadline and self._rx and self._rx_deadline is not None:
            inflight.deadline = self._rx_deadline  # a frame is arriving: its ACK may ride on it (v2, long answers)
        elif inflight is not None and now >= inflight.deadline:
            self._retransmit(inflight, now, "no ACK")
        if self._ack_deadline is not None and now >= self._ack_deadline:
            self._send_ack()
        if self._hold_deadline is not None and now >= self._hold_deadline:  # the earlier answer never came
            held, self._hold_deadline = self._queue[0], None
            self._fail(held, "an answer to an earlier command with its reference is outstanding")
            self._start_next(now)
        self._pieces.expire(now)
        if self._guard.deadline is not None and now >= self._guard.deadline:
            self._start_next(now)  # a full guard ends
        if self._rx_deadline is not None and now >= self._rx_deadline:
            while self._rx:  # all of it is older than the gap: a partial candidate in it will not complete
                self._drop(1)
                self._parse(now)  # still delivers a complete frame found behind the dead bytes

    def pump(self, data: bytes, now: float) -> list[Event]:
        """A shell's step after each read: feed ``data`` (if any), run due timers, drain the events."""
        if data:
            self.receive_data(data, now)
        self.handle_timer(now)
        events = list(self._events)
        self._events.clear()
        return events

    def _start_next(self, now: float) -> None:
        if self._inflight is not None or not self._queue:
            return
        while self._guard.seqs and self._queue and self._queue[0].first and self.peer_version >= 2 \
                and self._guard.blocks(self._queue[0].seq, now):
            if self._guard.full:
                return  # no SEQ is safe: waits for the guard to end (handle_timer)
            self._fail(self._queue[0], "queued under a SEQ that a failed frame's late ACK could name")
        if self._queue and self._held(self._queue[0]):
            if self._hold_deadline is None:
                self._hold_deadline = now + self._hold_s
        elif self._queue:
            self._hold_deadline = None
            outgoing = self._inflight = self._queue.popleft()
            outgoing.raw = self._encode(outgoing)
            self._transmit(outgoing, now)
            self.stats.frames_sent += 1

    @property
    def _hold_s(self) -> float:
        """Peer quiet this long: it delivered the answer a held command waits for, or gave up on it."""
        return (self.retries + 1) * self.ack_timeout_s

    def _held(self, head: Outgoing) -> bool:
        """v2: a command waits while an earlier one with the same reference (SEQ mod 4) is unanswered, so an
        answer can never be matched to the wrong command."""
        return self.peer_version >= 2 and head.first and expects_answer(head.cmd) \
            and self._unanswered.blocks(head.message_seq)

    def _encode(self, out: Outgoing) -> bytes:
        if self.peer_version >= 2 and out.echo is not None and self._ack_due == out.echo & 7:
            self._take_ack()  # the answer acknowledges its command
        return encode(out, self.peer_version, None if self.peer_version < 2 or out.echo is not None
                      else self._take_ack())

    def _take_ack(self) -> int | None:  # the pending v2 acknowledgement (SEQ mod 4), now on its way: sent once
        due, self._ack_due, self._ack_deadline = self._ack_due, None, None
        return None if due is None else due & 3

    def _send_ack(self) -> None:
        due = self._take_ack()
        if due is not None:
            self._out, self.stats.acks_sent = self._out + encode_v2_control(Control.ACK, due), self.stats.acks_sent + 1

    def _transmit(self, outgoing: Outgoing, now: float) -> None:
        self._out += outgoing.raw
        outgoing.attempts += 1
        outgoing.deadline = now + self.ack_timeout_s + len(outgoing.raw) * self.byte_time_s

    def _retransmit(self, outgoing: Outgoing, now: float, why: str) -> None:
        self._noisy = NOISY_FRAMES
        if outgoing.attempts > self.retries:  # out of attempts: it fails at its time-out, never sooner (rule 3)
            if now >= outgoing.deadline:  # a NAK or a repeated command: the ACK of the last copy may still come
                self._inflight = None
                self._fail(outgoing, f"{why} after {outgoing.attempts} attempts")
                self._start_next(now)
            return
        self.stats.retransmissions += 1
        outgoing.raw = self._encode(outgoing)  # v2: a fresh piggybacked ACK, never one older than the line
        self._transmit(outgoing, now)

    def _fail(self, outgoing: Outgoing, reason: str) -> None:
        """The message of ``outgoing`` failed: its pieces still queued are never sent."""
        self.stats.failures += 1
        if outgoing.attempts and self.peer_version >= 2:
            self._guard.failed(outgoing.seq, not outgoing.last, self._last_acked, outgoing.deadline)
        self._queue = deque(o for o in self._queue if o.message_seq != outgoing.message_seq)
        if outgoing.last and outgoing.attempts:  # it may have arrived (only its ACK lost): it may be answered
            self._expect_answer(outgoing)
        self._events.append(LinkFailed(seq=outgoing.message_seq, cmd=outgoing.cmd, reason=reason))

    def _acked(self, now: float) -> None:
        inflight, self._inflight = self._inflight, None
        assert inflight is not None
        self._last_acked = inflight.seq
        self._guard.clear()  # a later frame arrived: no late ACK of a failed one is still on its way
        if inflight.last:
            self._expect_answer(inflight)
        self._events.append(FrameAcked(seq=inflight.seq, cmd=inflight.cmd))
        self._start_next(now)

    def _expect_answer(self, sent: Outgoing) -> None:
        if expects_answer(sent.cmd) and self.peer_version >= 2:
            self._unanswered.expect(sent.message_seq, sent.cmd)

    def _drop(self, count: int) -> None:
        del self._rx[:count]
        self.stats.bytes_dropped += count

    def _parse(self, now: float) -> None:
        while self._rx:
            start, end = find_frame(self._rx, self.version >= 4)
            if start:
                self._drop(start)
            if end is None:
                break
            end -= start
            try:
                frame = decode_on(bytes(self._rx[:end]), self.version)
            except RemoteProtocolError:
                self.stats.bad_frames += 1
                self._noisy = NOISY_FRAMES
                # one NAK per damaged stretch: start bytes inside a damaged frame must not add more
                nak = b"" if self._naked else nak_for(self._rx, self.version)
                if nak:  # a damaged data frame: ask for it again without waiting for a timeout
                    self._out += nak
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
        last, key = self._last_rx_seq, None
        if isinstance(frame, V2Frame):
            self.peer_version = max(self.peer_version, frame.version)  # the SYN reply may have been lost
            seq = frame.seq if last is None else (last + ((frame.seq - last) & 7)) & 0xFF
            more, key = frame.more, (frame.seq, frame.more, frame.cmd, frame.ack if frame.cmd is None else 0,
                                     frame.data)
            if seq == last and self._last_rx_key not in (None, key):  # SEQ mod 8 wrapped: 8 frames failed
                seq = (seq + 8) & 0xFF
        else:
            seq, more = frame.seq, frame.cmd == FRAGMENT
        if self._pieces.refuses(seq, now):
            return  # unacknowledged, so its sender fails it: it would continue a failed message (reassembly.py)
        v2 = self.peer_version >= 2
        fresh = seq != last
        if fresh:
            self._last_rx_key = key
            if self._hold_deadline is not None:  # the peer is still busy: its answer may be queued
                self._hold_deadline = now + self._hold_s
            self._last_rx_seq = seq
            self.stats.frames_received += 1
            if v2:
                self._ack_due, self._ack_deadline = seq & 7, now + self.ack_timeout_s / 4
            else:
                self._out += encode_control(Control.ACK, seq)
        if fresh and isinstance(frame, V2Frame) and acknowledges(frame, self._inflight):
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
        message = self._pieces.v2(frame, seq, self._unanswered) if isinstance(frame, V2Frame) \
            else self._pieces.v1(frame)
        if message is not None:
            self._complete(*message, seq)
            self._start_next(now)  # an answer may release a held command

    def _complete(self, cmd: int, data: bytes, seq: int) -> None:
        if is_response(cmd) and data and self._unanswered:
            self._unanswered.answered(data[0])  # an answer with CMD and echo written out
        self._answerable = (seq, cmd) if expects_answer(cmd) else None
        self._events.append(FrameReceived(cmd=cmd, data=data, seq=seq))

    def _handle_control(self, frame: ControlFrame, now: float) -> None:
        inflight = self._inflight
        if frame.kind is Control.SYN:
            if frame.seq & SYN_REPLY:  # the peer answered our SYN: it speaks v2 or later
                self.peer_version = max(self.peer_version, agreed(self.version, frame.seq))
                return
            self._last_rx_seq = self._ack_due = self._ack_deadline = self._answerable = None
            self._pieces.reset()
            self._unanswered.clear()  # the peer restarted: its answers to come are gone
            self._guard.clear()  # and it forgot our last SEQ and any pieces
            self._noisy = 0  # frames unanswered until now met an absent peer, not a damaged line
            self.peer_version = agreed(self.version, frame.seq)
            if self.peer_version >= 2:
                self._out += syn_reply(self.version)
            self._queue = deque(o for o in self._queue if not is_response(o.cmd))  # answers to its past life
            if inflight is not None and is_response(inflight.cmd):
                self._inflight = inflight = None
                self._start_next(now)
            if inflight is not None:  # the peer just started and may have missed it: again now, not in 0.2 s
                inflight.raw = self._encode(inflight)
                self._transmit(inflight, now)
                inflight.attempts -= 1  # not an attempt on this peer: a silent one still fails after 9
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
