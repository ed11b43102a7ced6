"""The simulated acquirer's records and its magic amounts (``sim.backends.acquirer`` documents what each does)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from drivers.host import messages as m

__all__ = ["Delivery", "LedgerEntry", "Magic", "MAGIC_AMOUNTS"]

Delivery = Literal["normal", "none", "late", "garbled", "disconnect", "down"]


@dataclass(frozen=True)
class Magic:
    """What a magic amount does: a response code, and/or a way of (not) delivering the answer."""

    code: str | None = None
    delivery: Delivery = "normal"
    reversal_code: str = "00"  # what a reversal (reason 68) of this amount is answered with


MAGIC_AMOUNTS: dict[int, Magic] = {  # amount_minor % 100 -> outcome; documented in the module docstring
    5: Magic(code="05"), 51: Magic(code="51"), 54: Magic(code="54"), 61: Magic(code="61"), 91: Magic(code="91"),
    93: Magic(delivery="disconnect"), 96: Magic(delivery="garbled"), 97: Magic(delivery="none"),
    98: Magic(delivery="late"), 94: Magic(reversal_code="12"), 99: Magic(delivery="down"),
    10: Magic(code="10"),  # approved for a partial amount (half): ``sim.backends.acquirer_answers``
}



@dataclass
class LedgerEntry:
    """A 0200 decision (in ``ledger``) or a 0400/0401 received (in ``reversals``, ``original_stan`` set)."""

    stan: int
    mti: str
    masked_pan: str
    amount_minor: int
    response_code: str
    auth_code: str = ""
    rrn: str = ""
    reversed: bool = False
    terminal_id: str = ""
    original_stan: int | None = None
    batch: int = 0
    lost: bool = False  # ``forget_last_approval``: the host lost it, so settlement totals differ
    entry_mode: str = ""  # field 22 as received (071 = contactless chip)
    icc: Mapping[str, str] = field(default_factory=dict)  # field 55 as received: tag hex -> value hex
    pin: bool = False  # an encrypted PIN block came with it
    transmitted: str = ""  # field 7 as received (MMDDhhmmss): with the STAN, what field 90 of a reversal quotes

    def names(self, terminal_id: str, original: m.OriginalData) -> bool:
        """True when field 90 (with field 41) designates this 0200: same terminal, STAN and transmission time."""
        return (self.terminal_id == terminal_id and self.stan == original.stan
                and self.transmitted in ("", original.transmitted))
