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

__all__ = ["Outgoing", "Unanswered", "message"]


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
    pieces = [data[i:i + piece_size] for i in range(0, len(data), piece_size)] \
        if piece_size and len(data) > piece_size else [data]
    last = (first_seq + len(pieces) - 1) & 0xFF
    return [Outgoing(seq=(first_seq + i) & 0xFF, cmd=cmd, piece=piece, message_seq=last, last=i == len(pieces) - 1,
                     first=i == 0, echo=echo) for i, piece in enumerate(pieces)]


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
        if any(command_seq == seq for command_seq, _ in self._commands):
            while self._commands.popleft()[0] != seq:
                pass

    def clear(self) -> None:
        self._commands.clear()
