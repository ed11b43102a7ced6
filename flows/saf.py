"""Store-and-forward: advices (0220, repeats 0221) of payments the host has not yet heard of, in a persistent queue.

A card that approves offline (TC at the first GENERATE AC, under the floor limit) has charged the cardholder
without the host knowing; the acquirer pays the merchant only once it receives the advice. So the advice is
queued **in the same commit** that makes the transaction ``paid`` (``Journal.saf_offline_approved``), and
drained in the background, at boot and before settlement, until the host answers 0230.

What the queue keeps: the masked PAN (first 6 / last 4), expiry, PAN sequence, field 55 (with the TC) and the
original time, plus the full PAN **sealed** with AES-256-GCM under a key derived (HKDF-SHA256) from the device
secret, never kept beside the journal (``terminal.device_secret``), with the queue row's STAN as associated data.
The advice needs the PAN (the acquirer routes and finds the card by it); storing it sealed means a copied journal file
reveals nothing, and the clear PAN exists only in memory while an advice is built. The track-2 equivalent is
not kept: field 55 already carries what the issuer checks (TC, ATC, TVR).

Each try counts first (write-ahead: after a power cut the next send is a 0221 repeat; a connection refused
before anything left is taken back, so a host that is down for hours uses up no tries); ``max_attempts`` tries
or ``expiry_s`` after queuing, an advice stops (``failed`` / ``expired``) and stays on the supervisor's Open
items screen; settlement then goes through batch upload. An advice answered ``94`` (the host has another
payment under this STAN: the terminal's counters went back, e.g. a journal restored from an old backup) was not
taken, and repeating it under the same STAN never will be: as a purchase does (``flows.authorize``), it is sent
**once more under a fresh STAN** — the host client has asked the host's view first (echo), which moved the
journal's counters past the host's last STAN. The sale's row takes the new STAN first (voids, refunds and batch
upload name the payment by it), then the queue row (new STAN, PAN sealed anew under it, attempts from zero, the
94 kept as the mark of the one renumbering), so a cut between the two only costs one more 94 and renumbering.
A second 94 stops it ``failed``. An advice whose payment was reversed or voided before it left is ``cancelled``
(the host never charged it).

Only ``00`` acknowledges an advice (and only then is its sealed PAN erased). Any other answer — ``96``
system malfunction, ``30`` format error, a decline code — keeps it queued with the try counted and the answer in
its message, and the drain goes on with the next advice (the host is up); after ``max_attempts`` tries it stops
``failed`` with the sealed PAN **kept**, named on Open items for a supervisor. An ``A0`` (the host could not
verify our MAC: nothing processed) that the host port returns as an answer — its MAC verified — is sent once
more at once, under renewed keys, and counts as a try like any send. An ``A0`` without a valid MAC never reaches
here as an answer: the host port raises (outcome unknown, the advice stays queued, a try).

>>> sealer = PanSealer(b"k" * 32, "T0000001")
>>> sealer.open(sealer.seal("6212345678901234", 7), 7)
'6212345678901234'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from emv import tlv
from emv.crypto.sealer import PanSealer
from emv.crypto.sealer import SealedPanError as SafError
from flows.ports import AdviceHostPort, AdviceRequest, AuthRequest, TxnRecord, mask_pan
from flows.txn_state import TxnState
from pos_errors import LinkError, RemoteProtocolError

__all__ = ["SafStatus", "SafRow", "PanSealer", "SafError", "SafJournal", "DrainReport", "offline_row", "drain",
           "OFFLINE_AUTH", "STOPPED", "CANCEL_STATES"]

ACKNOWLEDGED = "00"  # the only code that acknowledges an advice: any other keeps it queued (a try counted)
DUPLICATE_STAN = "94"  # the host has another advice under this STAN (counters went back): never acknowledged
KEY_ERROR = "A0"  # the host could not verify our MAC: nothing processed; sent once more under renewed keys
OFFLINE_AUTH = "Y1"  # EMV Book 4: approval code of an offline approval (field 38 of the advice)
_STAN_TRIES = 2  # the advice's STAN, and one fresh one after a 94 (as flows.authorize does for a purchase)
class SafStatus(StrEnum):
    """Where one queued advice stands (``saf.status`` in the journal)."""

    QUEUED = "queued"  # waiting, or being sent (attempts counts the sends)
    SENT = "sent"  # the host acknowledged it
    FAILED = "failed"  # too many tries: a supervisor looks at it
    EXPIRED = "expired"  # not delivered in time
    CANCELLED = "cancelled"  # the payment was reversed or voided before the advice left


STOPPED = (SafStatus.FAILED, SafStatus.EXPIRED)
CANCEL_STATES = frozenset({TxnState.REVERSAL_PENDING, TxnState.REVERSED, TxnState.VOID_PENDING, TxnState.VOIDED})


@dataclass(frozen=True)
class SafRow:
    """One queued advice, as the journal's ``saf`` table holds it (``pan_sealed`` is never the clear PAN)."""

    saf_id: int
    txn_id: int
    kind: str
    stan: int
    amount_minor: int
    masked_pan: str
    pan_sealed: bytes
    expiry: str
    pan_sequence: str | None
    icc_data: bytes
    local_time: str
    auth_code: str
    batch: int = 0
    status: str = SafStatus.QUEUED
    attempts: int = 0
    created_at: str = ""
    last_try_at: str | None = None
    response_code: str | None = None
    message: str | None = None


class SafJournal(Protocol):
    def saf_items(self, statuses: tuple[str, ...] = (SafStatus.QUEUED,)) -> list[SafRow]: ...

    def saf_update(self, saf_id: int, status: str, *, tries: int = 0, response_code: str | None = None,
                   message: str | None = None, stan: int | None = None, sealed: bytes | None = None) -> None:
        """One commit. ``tries`` is added to the attempt count (+1 before a send; -1 takes back one never sent);
        ``response_code`` and ``message`` replace the stored ones when given; ``stan`` and ``sealed``: the advice
        renumbered, its PAN sealed anew under the new STAN. ``sent``, ``cancelled`` and ``expired`` erase the
        sealed PAN (it is never needed again)."""

    def get(self, txn_id: int) -> TxnRecord: ...

    def next_stan(self) -> int: ...

    def update(self, txn_id: int, state: str, **values: object) -> None: ...


def offline_row(request: AuthRequest, sealer: PanSealer) -> SafRow:
    """The queue row for an offline approval (``saf_id``/``txn_id`` are set by the journal)."""
    return SafRow(0, 0, "offline", request.stan, request.amount_minor, mask_pan(request.pan),
                  sealer.seal(request.pan, request.stan), request.expiry_yymm, request.pan_sequence,
                  request.icc_data, request.local_time.isoformat(timespec="seconds"), OFFLINE_AUTH)


@dataclass(frozen=True)
class DrainReport:
    sent: int
    queued: int  # still waiting (host not reachable)
    stopped: tuple[SafRow, ...]  # newly failed, expired or cancelled this round


def _advice(row: SafRow, sealer: PanSealer, terminal_id: str, merchant_id: str) -> AdviceRequest:
    auth = AuthRequest(stan=row.stan, amount_minor=row.amount_minor,
                       local_time=dt.datetime.fromisoformat(row.local_time), pan=sealer.open(row.pan_sealed, row.stan),
                       expiry_yymm=row.expiry, pan_sequence=row.pan_sequence, icc_data=row.icc_data,
                       pos_entry_mode=entry_mode_of(row.icc_data), terminal_id=terminal_id, merchant_id=merchant_id)
    return AdviceRequest(auth, row.auth_code, repeat=row.attempts > 0)


def entry_mode_of(icc_data: bytes) -> str:
    """The advice's POS entry mode (field 22) from its field 55: a tap's carries the reader's TTQ ``9F66``, a
    contactless-only data element (EMV Book C-3 / Book B), so ``071``; otherwise chip ``051``.

    >>> entry_mode_of(bytes.fromhex("9F660436804000")), entry_mode_of(bytes.fromhex("9F270180"))
    ('071', '051')
    """
    try:
        tags = tlv.flatten(tlv.decode(icc_data))
    except RemoteProtocolError:
        return "051"
    return "071" if 0x9F66 in tags else "051"


def _age_s(row: SafRow, now: dt.datetime) -> float:
    return (now - dt.datetime.fromisoformat(row.created_at)).total_seconds()


def drain(host: AdviceHostPort, journal: SafJournal, sealer: PanSealer, *, terminal_id: str, merchant_id: str,
          max_attempts: int = 10, expiry_s: float = 7 * 86400, now: dt.datetime | None = None) -> DrainReport:
    """Send every queued advice, oldest first, until the host stops answering. Never raises for link trouble."""
    now = now or dt.datetime.now()
    sent, queued, stopped = 0, 0, []
    rows: Sequence[SafRow] = journal.saf_items()
    for index, row in enumerate(rows):
        if journal.get(row.txn_id).state in CANCEL_STATES:
            journal.saf_update(row.saf_id, SafStatus.CANCELLED, message="payment reversed before the advice left")
            stopped.append(row)
            continue
        if _age_s(row, now) > expiry_s:
            journal.saf_update(row.saf_id, SafStatus.EXPIRED, message=f"not delivered within {expiry_s:g} s")
            stopped.append(row)
            continue
        if row.attempts >= max_attempts:
            journal.saf_update(row.saf_id, SafStatus.FAILED, message=f"{row.attempts} tries")
            stopped.append(row)
            continue
        ended, left, last = _send(host, journal, sealer, row, terminal_id, merchant_id, max_attempts)
        if ended is SafStatus.SENT:
            sent += 1
        elif ended is not None:
            stopped.append(last)
        if left is _UNREACHABLE:  # the host cannot be reached or answers garbage: the rest waits for the next round
            return DrainReport(sent, queued + len(rows) - index - (ended is not None), tuple(stopped))
        queued += left is _KEPT
    return DrainReport(sent, queued, tuple(stopped))


_KEPT, _UNREACHABLE = "kept", "unreachable"  # the advice stays queued: its answer was no acknowledgement / no answer


def _send(host: AdviceHostPort, journal: SafJournal, sealer: PanSealer, row: SafRow, terminal_id: str,
          merchant_id: str, max_attempts: int) -> tuple[SafStatus | None, str | None, SafRow]:
    """Send one advice until its answer settles it: (how it ended — ``sent``, ``failed`` or None when still
    queued —, why it stays queued: ``_KEPT`` an answer that is no acknowledgement, ``_UNREACHABLE`` none, and
    the advice as last sent: a 94 renumbers it)."""
    item, key_resent = row, False  # renumbered at most once (a 94), sent again at most once after an A0
    while True:
        request = _advice(item, sealer, terminal_id, merchant_id)
        journal.saf_update(item.saf_id, SafStatus.QUEUED, tries=1)  # before it leaves: a repeat after a power cut
        try:
            code = host.advise(request)
        except (LinkError, RemoteProtocolError) as exc:
            if type(exc) is LinkError:  # refused before sending: the host never saw it, so it was no try
                journal.saf_update(item.saf_id, SafStatus.QUEUED, tries=-1, message=f"host not reachable: {exc}")
                return None, _UNREACHABLE, item
            return _not_acknowledged(journal, item, max_attempts, f"not acknowledged: {exc}"), _UNREACHABLE, item
        if code == ACKNOWLEDGED:
            journal.saf_update(item.saf_id, SafStatus.SENT, response_code=code, message=f"acknowledged ({code})")
            return SafStatus.SENT, None, item
        if code == DUPLICATE_STAN and item.response_code == DUPLICATE_STAN:  # renumbered once already: it ends
            journal.saf_update(item.saf_id, SafStatus.FAILED, response_code=code, message=(
                f"the bank already has STAN {item.stan:06d} from another payment, after renumbering too (94)"))
            return SafStatus.FAILED, None, item
        if code == DUPLICATE_STAN:
            item = _renumber(journal, sealer, item, request.auth.pan)
            continue
        if code == KEY_ERROR and not key_resent and item.attempts + 1 < max_attempts:  # keys renewed: sent again
            key_resent, item = True, replace(item, attempts=item.attempts + 1)
            journal.saf_update(item.saf_id, SafStatus.QUEUED, message="bank key error (A0): sent again")
            continue
        why = f"not acknowledged: the bank answered {code}"
        return _not_acknowledged(journal, item, max_attempts, why), _KEPT, item


def _not_acknowledged(journal: SafJournal, item: SafRow, max_attempts: int, why: str) -> SafStatus | None:
    """The try is counted (before the send); it stays queued, or after the last try stops ``failed`` for a
    supervisor — the sealed PAN kept, so it can still be delivered by hand or in a batch upload."""
    if item.attempts + 1 >= max_attempts:
        journal.saf_update(item.saf_id, SafStatus.FAILED, message=f"{max_attempts} tries, last: {why}")
        return SafStatus.FAILED
    journal.saf_update(item.saf_id, SafStatus.QUEUED, message=why)
    return None


def _renumber(journal: SafJournal, sealer: PanSealer, row: SafRow, pan: str) -> SafRow:
    """The advice under a fresh STAN (see the module docstring): the sale's row first, then the queue row."""
    fresh = journal.next_stan()  # past the host's last STAN: the client took its view (echo) before answering
    journal.update(row.txn_id, journal.get(row.txn_id).state, stan=fresh)
    sealed = sealer.seal(pan, fresh)
    journal.saf_update(row.saf_id, SafStatus.QUEUED, tries=-(row.attempts + 1), response_code=DUPLICATE_STAN,
                       stan=fresh, sealed=sealed,
                       message=f"the bank had STAN {row.stan:06d} from another payment (94): sent as {fresh:06d}")
    return replace(row, stan=fresh, pan_sealed=sealed, attempts=0, response_code=DUPLICATE_STAN)
