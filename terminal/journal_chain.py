"""The journal's integrity, without SQL: canonical row bytes, the HMAC chain, the high-water record, the damage.

Every row the journal writes is sealed in the same commit by one chain entry: ``seq`` (1, 2, 3 … within a
generation), the row's table and key, the SHA-256 of its canonical bytes (``row_digest``) and
``mac = HMAC-SHA256(key, previous mac ‖ seq ‖ generation ‖ table ‖ key ‖ digest)`` (``link``). The newest entry of
a row must match the row as it is stored; a gap, a wrong MAC, a changed or unsealed row is damage.

Beside the database the journal keeps a small **high-water record** (``HighWater``: generation, last chain seq and
head, STAN, invoice and batch), MACed with the same key. A journal behind its record was rolled back (a WAL frame
lost, an old copy restored); a journal missing or empty while a record exists was lost. ``Damage`` names what was
found, for the cashier (a catalogue key per ``kind``) and for the technician (``detail``, ``row``, ``kept``).

>>> key = b"k" * 32
>>> first = link(key, GENESIS, 1, 1, "txn", "1", row_digest((1, "completed", None)))
>>> len(first), first != link(key, GENESIS, 1, 1, "txn", "1", row_digest((1, "completed", 0)))
(32, True)
>>> hw = HighWater(1, 7, first, stan=12, invoice=3, batch=1)
>>> HighWater.decode(hw.encode(key), key) == hw, HighWater.decode(hw.encode(key)[:-3], key)
(True, None)
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["GENESIS", "DAMAGE_KINDS", "row_digest", "link", "HighWater", "Damage", "newest", "check_rows", "against",
           "Chain", "derive_key"]

GENESIS = bytes(32)
# what the terminal found at boot (each has a catalogue key ``journal.damage.<kind>``)
DAMAGE_KINDS = ("missing", "empty", "older", "broken", "unreadable", "record")


def derive_key(device_secret: bytes) -> bytes:
    """The chain's HMAC key, derived from the device's secret (domain-separated: never the secret itself)."""
    return hmac.new(device_secret, b"iotsim-pos journal seal chain v1", hashlib.sha256).digest()


def _canonical(values: Sequence[object]) -> bytes:
    """One row as bytes that cannot be confused: a type letter, a length for byte strings, a terminator.

    The journal reads rows with text as bytes, so nearly every value is ``bytes``, ``int`` or ``None``: those are
    told apart by their exact type first (sealing runs at every COMMIT); anything else (``str``, ``float``, a
    ``bool`` or another subclass) takes the general path, which gives the same bytes for every value."""
    out = []
    for value in values:
        kind = type(value)
        if kind is bytes:
            out.append(b"B%d:%b" % (len(value), value))  # type: ignore[arg-type, str-format]
        elif kind is int:
            out.append(b"I%d;" % value)  # type: ignore[str-format]
        elif value is None:
            out.append(b"N;")
        else:
            out.append(_canonical_other(value))
    return b"".join(out)


def _canonical_other(value: object) -> bytes:
    if isinstance(value, int):
        return b"I%d;" % value
    if isinstance(value, float):
        return b"F" + repr(value).encode("ascii") + b";"
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)  # type: ignore[call-overload]
    return b"B%d:" % len(data) + data


def row_digest(values: Sequence[object]) -> bytes:
    """SHA-256 of a row's canonical bytes (text read as bytes, so a damaged, undecodable row still has one)."""
    return hashlib.sha256(_canonical(values)).digest()


def link(key: bytes, previous: bytes, seq: int, generation: int, table: str, ref: str, digest: bytes) -> bytes:
    """The chain value of one entry: HMAC-SHA256 over the previous value and the entry."""
    message = previous + seq.to_bytes(8, "big") + generation.to_bytes(8, "big") + \
        table.encode("ascii") + b"\0" + ref.encode("utf-8", "surrogateescape") + b"\0" + digest
    return hmac.new(key, message, hashlib.sha256).digest()


@dataclass(frozen=True)
class HighWater:
    """What the journal had reached when it last committed; kept outside the database."""

    generation: int
    seq: int
    head: bytes
    stan: int = 0
    invoice: int = 0
    batch: int = 1

    def _body(self) -> bytes:  # every field by name, sorted: the bytes ``json.dumps(sort_keys=True)`` gives, built
        # directly (``asdict`` deep-copies and ``json`` walks the dict: too slow for every COMMIT; a test compares)
        return b'{"batch":%d,"generation":%d,"head":"%s","invoice":%d,"seq":%d,"stan":%d}' % (
            self.batch, self.generation, self.head.hex().encode("ascii"), self.invoice, self.seq, self.stan)

    def encode(self, key: bytes) -> bytes:
        body = self._body()
        return body + b"\n" + hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii") + b"\n"

    @classmethod
    def decode(cls, data: bytes, key: bytes) -> HighWater | None:
        """The record in ``data``; None when it is torn, garbled or not MACed with ``key``."""
        try:
            body, mac, _ = data.split(b"\n")
            if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii")):
                return None
            fields = json.loads(body)
            record = cls(int(fields["generation"]), int(fields["seq"]), bytes.fromhex(fields["head"]),
                         int(fields["stan"]), int(fields["invoice"]), int(fields["batch"]))
        except (ValueError, KeyError, TypeError):
            return None
        return record if record._body() == body else None

    @property
    def position(self) -> tuple[int, int]:
        return self.generation, self.seq


def newest(records: Iterable[HighWater | None]) -> HighWater | None:
    """The furthest of the records that decoded (two slots are written in turn: a torn one leaves the other)."""
    good = [r for r in records if r is not None]
    return max(good, key=lambda r: r.position) if good else None


@dataclass(frozen=True)
class Damage:
    """What the boot check found. ``kind`` picks the cashier's message; the rest is for the technician."""

    kind: str
    detail: str
    row: str = ""  # the first broken or missing row ("chain 17", "txn 3"), when one is known
    kept: str = ""  # where the damaged files were kept
    at: str = ""  # when it was found (ISO time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Damage:
        """A stored notice; an unreadable one is itself damage (never a reason to sell)."""
        try:
            fields = json.loads(text)
            return cls(**{k: str(fields.get(k, "")) for k in ("kind", "detail", "row", "kept", "at")})
        except (ValueError, TypeError, AttributeError):
            return cls("unreadable", "out-of-service notice unreadable")


def check_rows(key: bytes, generation: int, entries: Sequence[Sequence[Any]],
               tables: Mapping[str, Sequence[Sequence[Any]]]) -> Damage | None:
    """The first problem of a generation's chain ``entries`` (seq, table, rowid, digest, mac) and of the rows of
    ``tables`` (rowid first, text as bytes) against it: a gap, a wrong MAC, a changed, unsealed or missing row."""
    latest: dict[tuple[str, int], bytes] = {}
    head = GENESIS
    for expected, (seq, table, ref, digest, mac) in enumerate(entries, 1):
        if seq != expected:
            return Damage("broken", f"chain entry {expected} missing", f"chain {expected}")
        if not hmac.compare_digest(mac, link(key, head, seq, generation, table, str(ref), digest)):
            return Damage("broken", f"chain entry {seq} does not verify", f"chain {seq}")
        latest[(table, ref)], head = digest, mac
    for table, rows in tables.items():
        for row in rows:
            if latest.pop((table, row[0]), None) != row_digest(tuple(row[1:])):
                return Damage("broken", f"{table} row {row[0]} changed or not sealed", f"{table} {row[0]}")
    missing = sorted(key for key in latest if key[0] in tables)
    return Damage("broken", f"{missing[0][0]} row {missing[0][1]} missing", f"{missing[0][0]} {missing[0][1]}"
                  ) if missing else None


def against(here: tuple[int, int], mac_there: bytes | None, record: HighWater | None, *, recorded: bool,
            chained: bool) -> Damage | None:
    """The journal at ``here`` (generation, seq) against its high-water record: it may be ahead, never behind, and
    its entry at the record's seq must be the record's head (``mac_there``). ``recorded``: a record file exists;
    ``chained``: the journal was chained before this open (so a record must exist)."""
    if record is None:
        return Damage("record", "high-water record unreadable or missing") if recorded or chained else None
    if here < record.position:
        return Damage("older", f"journal at {here}, high-water record at {record.position}",
                      f"chain {here[1] + 1}" if here[0] == record.generation else "")
    if here[0] == record.generation and mac_there != record.head:
        return Damage("broken", "journal and high-water record differ", f"chain {record.seq}")
    return None


class Chain:
    """The running chain of one journal: generation, last seq and head, and the entries of the commit under way
    (``begin`` … ``entry`` … ``commit``; a rolled-back commit simply never calls ``commit``)."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.generation, self.seq, self.head = 1, 0, GENESIS
        self._pending = (0, GENESIS)

    def resume(self, generation: int, seq: int, head: bytes) -> None:
        self.generation, self.seq, self.head = generation, seq, head
        self._pending = (seq, head)

    def restart(self, generation: int) -> None:
        """A new generation (after damage): the chain starts again from ``GENESIS``, every row sealed anew."""
        self.resume(generation, 0, GENESIS)

    def begin(self) -> None:
        self._pending = (self.seq, self.head)

    def entry(self, table: str, rowid: int, values: Sequence[Any]) -> tuple[int, int, str, int, bytes, bytes]:
        """The chain row (generation, seq, table, rowid, digest, mac) sealing one row as it now stands."""
        seq, head = self._pending
        digest = row_digest(values)
        mac = link(self.key, head, seq + 1, self.generation, table, str(rowid), digest)
        self._pending = (seq + 1, mac)
        return self.generation, seq + 1, table, rowid, digest, mac

    def commit(self) -> None:
        self.seq, self.head = self._pending

    def record(self, counters: Mapping[str, int]) -> HighWater:
        return HighWater(self.generation, self.seq, self.head, counters.get("stan", 0), counters.get("invoice", 0),
                         counters.get("batch", 1))

    def check(self, entries: Sequence[Sequence[Any]], tables: Mapping[str, Sequence[Sequence[Any]]]) -> Damage | None:
        return check_rows(self.key, self.generation, entries, tables)
