"""Joining the pieces of a long message (link rule 9, both versions) back into one message.

A piece that does not follow its predecessor starts over, and pieces held without their end are lost (counted
as a bad frame): the sender has already reported that message failed. Pieces are also given up when nothing of
their sender arrives for ``hold_s`` (longer than it retries a frame: it has failed their message), and a frame
that would continue pieces given up is refused — neither acknowledged nor delivered, so its sender reports it
failed. Without that, the last piece of a message could be joined to the pieces of an earlier, failed one: a
v2 SEQ is counted mod 8, so after 8 failed frames a new one-frame message looks like the missing last piece.

In v2 the rest of an answer carries its first piece's reference (the ACK field), the rest of any other message
its CMD; an answer's CMD and echoed SEQ are restored from the command it names (``outbox.Unanswered``).

>>> from drivers.link.events import LinkStats
>>> pieces = Pieces(LinkStats())
>>> pieces.v1(DataFrame(seq=4, cmd=FRAGMENT, data=b"\\x12ab")), pieces.v1(DataFrame(seq=5, cmd=0x12, data=b"c"))
(None, (18, b'abc'))
"""

from __future__ import annotations

from drivers.link.events import LinkStats
from drivers.link.frames import FRAGMENT, DataFrame, V2Frame, response_cmd
from drivers.link.outbox import Unanswered

__all__ = ["Pieces"]


class Pieces:
    """The pieces of one incoming message so far; bad frames are counted in the link's ``stats``."""

    def __init__(self, stats: LinkStats, hold_s: float = 2.0) -> None:
        self.stats, self.hold_s = stats, hold_s
        self._parts: list[bytes] = []
        self._cmd, self._seq, self._ref = -1, -1, -1  # _ref: what an answer's pieces carry in their ACK field
        self._given_up: int | None = None  # SEQ of the last piece given up
        self._deadline = 0.0

    def reset(self) -> None:
        self._parts, self._given_up = [], None

    @property
    def deadline(self) -> float | None:
        """When held pieces are given up (None: none held)."""
        return self._deadline if self._parts else None

    def refuses(self, seq: int, now: float) -> bool:
        """Whether the data frame numbered ``seq`` arriving at ``now`` would continue pieces given up."""
        if self._given_up is not None and seq == (self._given_up + 1) & 0xFF:
            return True
        if self._given_up != seq:  # anything else but a repeat of the last piece given up: a new start
            self._given_up = None
        self._deadline = now + self.hold_s
        return False

    def expire(self, now: float) -> None:
        if self._parts and now >= self._deadline:
            self.stats.bad_frames += 1
            self._parts, self._given_up = [], self._seq

    def v1(self, frame: DataFrame) -> tuple[int, bytes] | None:
        """(CMD, DATA) once ``frame`` ends a message, else None."""
        follows = bool(self._parts) and frame.seq == (self._seq + 1) & 0xFF
        if frame.cmd == FRAGMENT:
            if not frame.data or (follows and frame.data[0] != self._cmd):
                follows = False  # a damaged piece with a good CRC cannot happen; a stale one can be dropped
            if not follows:
                self._parts = []
            if frame.data:
                self._parts.append(frame.data[1:])
                self._cmd, self._seq = frame.data[0], frame.seq
            return None
        parts, self._parts = self._parts, []
        if parts and not (follows and frame.cmd == self._cmd):
            self.stats.bad_frames += 1  # the rest of an earlier message never came: that message is lost
            parts = []
        return frame.cmd, b"".join(parts) + frame.data

    def v2(self, frame: V2Frame, seq: int, unanswered: Unanswered) -> tuple[int, bytes] | None:
        """(CMD, DATA) once ``frame`` (numbered ``seq`` by the receiver) ends a message, else None."""
        ref = -1 if frame.cmd is not None else frame.ack  # -1: an explicit CMD (never an answer's reference)
        cmd = self._cmd if frame.cmd is None else frame.cmd
        data = frame.data
        if frame.ok_implied or not (self._parts and seq == (self._seq + 1) & 0xFF and ref == self._ref
                                    and cmd == self._cmd):  # an implied OK is a whole answer (v3), never a piece
            if self._parts:
                self.stats.bad_frames += 1  # the rest of an earlier message never came: that message is lost
                self._parts = []
            if frame.cmd is None:
                command = unanswered.by_ref(frame.ack)
                if command is None:
                    self.stats.bad_frames += 1  # an answer to nothing this end sent: acknowledged, not delivered
                    return None
                cmd, data = response_cmd(command[1]), bytes([command[0]]) + data  # CMD and echo restored
        if frame.more:
            self._parts.append(data)
            self._cmd, self._seq, self._ref = cmd, seq, -1 if ref is None else ref
            return None
        parts, self._parts = self._parts, []
        return cmd, b"".join(parts) + data
