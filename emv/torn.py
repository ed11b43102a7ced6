"""Torn transaction log of kernel 2 (EMV Contactless Book C-2 v2.x, "torn transaction recovery"): a card taken
away during GENERATE AC may have computed its cryptogram (the ATC moved on) without the terminal seeing it.

The kernel writes a ``TornRecord`` *before* it sends GENERATE AC and drops it when the answer arrives, so a record
left behind names exactly the tap whose answer was lost. When the same card (PAN + PSN) is tapped again for the
same amount, the kernel sends RECOVER AC with the torn tap's CDOL1 data; a card that had finished answers with
the lost response and that transaction completes, verified against the torn tap's own data (UN, PDOL and CDOL1
data for the CDA hash). Otherwise the record is dropped and a fresh GENERATE AC is sent.

The log lives in memory (as in the reader): ``max_records`` like Max Number of Torn Transaction Log Records
``DF811D``, oldest dropped first. Deviation: no Max Lifetime ``DF811C`` (the core has no clock); a record older
than the sale it belongs to is never recovered because the amount must match.

>>> log = TornLog(max_records=1)
>>> log.put(TornRecord("5413330089010434", "01", {}, b"", b"\\x01", True))
>>> log.put(TornRecord("1", "", {}, b"", b"", False))
>>> log.take("5413330089010434", "01") is None, len(log)
(True, 1)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["TornRecord", "TornLog", "recover_ac"]


def recover_ac(data: bytes) -> bytes:
    """RECOVER AC (Book C-2): 80 D0 00 00 Lc <the torn GENERATE AC's CDOL1 data> 00."""
    return bytes([0x80, 0xD0, 0x00, 0x00, len(data)]) + data + b"\x00"


@dataclass(frozen=True)
class TornRecord:
    """What the kernel needs to finish a torn tap: its terminal data (9F37, 9F02, TVR …), PDOL and CDOL1 data."""

    pan: str = field(repr=False)
    psn: str
    terminal: Mapping[int, bytes] = field(repr=False)
    pdol_data: bytes = field(repr=False)
    cdol1_data: bytes = field(repr=False)
    cda: bool


class TornLog:
    """The torn transaction log: at most ``max_records`` records, one per card."""

    def __init__(self, max_records: int = 1) -> None:
        self.max_records = max(1, max_records)
        self._records: dict[tuple[str, str], TornRecord] = {}

    def __len__(self) -> int:
        return len(self._records)

    def put(self, record: TornRecord) -> None:
        key = (record.pan, record.psn)
        self._records.pop(key, None)
        self._records[key] = record
        while len(self._records) > self.max_records:
            self._records.pop(next(iter(self._records)))

    def take(self, pan: str, psn: str) -> TornRecord | None:
        """The card's record, removed from the log (None when there is none)."""
        return self._records.pop((pan, psn), None)

    def discard(self, pan: str, psn: str) -> None:
        self._records.pop((pan, psn), None)
