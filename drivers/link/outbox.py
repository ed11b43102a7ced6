"""What one end of the link has sent: frames on their way (``Outgoing``) and, in v2, the commands whose
answers are still to come (``Unanswered``), so that an answer is matched to its own command and no other.

A v2 answer names its command only by SEQ mod 4 (docs/protocols/card-reader.md, link rule 10). ``Unanswered``
keeps that name unique: a command waits (``blocks``) while an earlier command with the same SEQ mod 4 may still
be answered — acknowledged and unanswered, or failed after it was sent (it may have arrived, only its ACK lost).
A device answers in order, so an answer to a command also closes every earlier one.

>>> refs = Unanswered()
>>> refs.expect(5, 0x12)
>>> refs.blocks(9), refs.blocks(6), refs.by_ref(1)
(True, False, (5, 18))
>>> refs.answered(5)
>>> refs.blocks(9)
False
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from drivers.link.frames import FRAGMENT, IMPLIED_CMD, V2Frame, encode_data, encode_v2, expects_answer

__all__ = ["Outgoing", "Unanswered", "Guard", "acknowledges", "message", "encode"]

_SW_OK = b"\x90\x00"


@dataclass
class Outgoing:
    """One frame of a message on its way (a message longer than a piece on a noisy line is several)."""

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


def message(first_seq: int, cmd: int, data: bytes, piece_size: int | None, echo: int | None) -> list[Outgoing]:
    """The frames of one message numbered from ``first_seq``: one, or pieces of ``piece_size`` bytes when it is
    longer (link rule 9); every piece carries the SEQ of the last, the one the message is answered under."""
    if not piece_size or len(data) <= piece_size:  # the usual case: one frame
        return [Outgoing(seq=first_seq & 0xFF, cmd=cmd, piece=data, message_seq=first_seq & 0xFF, echo=echo)]
    pieces = [data[i:i + piece_size] for i in range(0, len(data), piece_size)]
    last = (first_seq + len(pieces) - 1) & 0xFF
    return [Outgoing(seq=(first_seq + i) & 0xFF, cmd=cmd, piece=piece, message_seq=last, last=i == len(pieces) - 1,
                     first=i == 0, echo=echo) for i, piece in enumerate(pieces)]


def encode(out: Outgoing, version: int, ack: int | None) -> bytes:
    """The bytes of ``out`` on a link that speaks ``version``, carrying ``ack`` (v2: the peer's SEQ to
    acknowledge, mod 4; an answer acknowledges its own command). The shortest form the version allows: v3 an
    OK answer without its 00, v4 also without its trailing 90 00 and a TRANSMIT without its CMD (STX4)."""
    if version >= 2 and out.echo is not None:
        ok = version >= 3 and out.first and out.last and out.piece[:1] == b"\x00"  # v3: OK implied
        sw = version >= 4 and ok and len(out.piece) >= 3 and out.piece[-2:] == _SW_OK  # v4: and 90 00
        return encode_v2(out.seq, None, out.piece, ack=out.echo & 3, more=not out.last, ok_implied=ok,
                         sw_implied=sw)
    if version >= 2:
        return encode_v2(out.seq, out.cmd, out.piece, ack=ack, more=not out.last,
                         cmd_implied=version >= 4 and out.cmd == IMPLIED_CMD)
    piece = bytes([out.echo]) + out.piece if out.echo is not None and out.first else out.piece
    return encode_data(out.seq, out.cmd, piece) if out.last else \
        encode_data(out.seq, FRAGMENT, bytes([out.cmd]) + piece)


def acknowledges(frame: V2Frame, inflight: Outgoing | None) -> bool:
    """Whether the ACK field of ``frame`` (a fresh one: a duplicate's ACK is old and may alias a newer SEQ)
    acknowledges the frame in flight. An answer's ACK names the command it answers, so it acknowledges only
    that command's last frame (a command waits while an earlier one with its reference is ``Unanswered``)."""
    if inflight is None or frame.ack is None or inflight.seq & 3 != frame.ack:
        return False
    return frame.cmd is not None or (inflight.last and expects_answer(inflight.cmd))


class Unanswered:
    """(SEQ, CMD) of our commands that may still be answered, oldest first; at most one per SEQ mod 4."""

    def __init__(self) -> None:
        self._commands: deque[tuple[int, int]] = deque()

    def __bool__(self) -> bool:
        return bool(self._commands)

    def expect(self, seq: int, cmd: int) -> None:
        self._commands.append((seq, cmd))

    def blocks(self, message_seq: int) -> bool:
        """A command with this SEQ must wait: its answer would be taken for an earlier command's."""
        return any(seq & 3 == message_seq & 3 for seq, _ in self._commands)

    def by_ref(self, ref: int | None) -> tuple[int, int] | None:
        """The command an answer names by SEQ mod 4 (``ref``), if any."""
        return next((command for command in self._commands if command[0] & 3 == ref), None)

    def answered(self, seq: int) -> None:
        """The command with this SEQ is answered; earlier ones never will be."""
        commands = self._commands
        if commands and commands[0][0] == seq:  # the usual case: the oldest (and only) one
            commands.popleft()
        elif any(command_seq == seq for command_seq, _ in self._commands):
            while self._commands.popleft()[0] != seq:
                pass

    def clear(self) -> None:
        self._commands.clear()


class Guard:
    """v2: SEQs (mod 8) no message may start with after a frame of ours failed, until a later frame of ours is
    acknowledged (the peer answers in line order, so then no late ACK of the failed frame is still on its way
    and the peer has dropped any pieces it held) or the peer restarts (SYN).

    A failed frame ``f`` guards ``f`` and ``f + 4`` (a late ACK names SEQ mod 4: it must not acknowledge the
    next frame), ``f + 1`` when ``f`` was a leading piece (the peer may hold the pieces up to it: the next frame
    must not continue them), and the last frame acknowledged before (the peer's last SEQ: a frame with it and
    the same content would be taken for a duplicate). Without it, SEQs skipped after a failed message in pieces
    could wrap the next message onto the failed one's pieces (link rules 3 and 9). Only when every SEQ is
    guarded (``full``: several frames failed, none acknowledged since) does it end by time, ``expiry_s`` after
    the last failure (the peer gives up held pieces by then): nothing could be sent otherwise.

    >>> guard = Guard(expiry_s=5.0)
    >>> guard.failed(seq=9, piece=True, last_acked=8, now=1.0)
    >>> sorted(guard.seqs), guard.blocks(11, now=2.0), guard.blocks(9 + 8, now=60.0), guard.full
    ([0, 1, 2, 5], False, True, False)
    """

    def __init__(self, expiry_s: float) -> None:
        self.expiry_s = expiry_s
        self.seqs: set[int] = set()
        self._last_failure = 0.0

    @property
    def full(self) -> bool:
        return len(self.seqs) == 8

    @property
    def deadline(self) -> float | None:
        """When a full guard ends (None: not full)."""
        return self._last_failure + self.expiry_s if self.full else None

    def failed(self, seq: int, piece: bool, last_acked: int | None, now: float) -> None:
        self.seqs |= {seq & 7, (seq + 4) & 7} | ({(seq + 1) & 7} if piece else set()) \
            | (set() if last_acked is None else {last_acked & 7})
        self._last_failure = now

    def blocks(self, seq: int, now: float) -> bool:
        if self.full and now >= self._last_failure + self.expiry_s:
            self.clear()
        return seq & 7 in self.seqs

    def free_seq(self, seq: int, now: float) -> int:
        """The first SEQ from ``seq`` on that is not guarded (``seq`` itself when all are)."""
        if not self.seqs:
            return seq & 0xFF
        for skip in range(8):
            if not self.blocks(seq + skip, now):
                return (seq + skip) & 0xFF
        return seq

    def clear(self) -> None:
        self.seqs = set()
