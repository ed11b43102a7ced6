"""Contactless data model: reader combinations, pre-processing, the PPSE and kernel outcomes (EMV Contactless
Book A v2.x §5–6, §9; Book B v2.x §3.1–3.3).

A *combination* is one {AID, kernel ID} pair the reader supports, with its own limits (Book B §3.1.1,
"Entry Point Configuration Data"). ``preprocess`` turns the amount into the per-combination
*pre-processing indicators* and the TTQ ``9F66`` each kernel receives (Book B §3.1.1.1–3.1.1.12).
``parse_ppse`` reads the directory entries ``61`` of the PPSE's ``BF0C`` (Book B §3.3.2.4); ``match``
builds the candidate list (Book B §3.3.2.5) and ``order`` the priority order (Book B §3.3.3).
A kernel ends with an ``Outcome``: the Book A §6.2 Outcome Parameter Set (status, start, CVM, UI requests,
field-off) and the data record for the host.

Limits are in the currency's minor unit; ``None`` is "absent" in the Book B sense (no check).

>>> combo = Combination(bytes.fromhex("A0000003330101"), 7, ReaderLimits(contactless_limit=50000, floor_limit=10000))
>>> ind = preprocess((combo,), 60000, currency_exponent=2)[0]
>>> ind.not_allowed, ind.ttq.hex().upper()
(True, '3680C000')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum

from emv import tlv
from pos_errors import ConfigError, RemoteProtocolError

__all__ = ["ReaderLimits", "Combination", "Indicators", "preprocess", "DirectoryEntry", "parse_ppse",
           "Candidate", "match", "order", "requested_kernel_id", "DEFAULT_KERNEL", "PPSE",
           "Status", "Start", "Cvm", "Message", "UiStatus", "UiRequest", "Outcome", "TTQ_ONLINE_CRYPTOGRAM",
           "TTQ_CVM_REQUIRED", "DEFAULT_TTQ"]

PPSE = b"2PAY.SYS.DDF01"  # Book B §3.3.2.2
# TTQ 9F66 (Book C-3 Annex A): byte 1 b6 qVSDC, b3 online PIN, b2 signature; byte 3 b8 issuer update processing,
# b7 consumer device CVM.
DEFAULT_TTQ = bytes.fromhex("3600C000")  # qVSDC, contact chip, online PIN, signature; issuer update; CDCVM
TTQ_ONLINE_CRYPTOGRAM = (1, 0x80)  # byte 2 b8 "Online cryptogram required" (index, mask)
TTQ_CVM_REQUIRED = (1, 0x40)  # byte 2 b7 "CVM required"
# Book B Table 3-6: the kernel a directory entry without 9F2A asks for, by RID.
DEFAULT_KERNEL: dict[bytes, int] = {
    bytes.fromhex("A000000004"): 2, bytes.fromhex("A000000003"): 3, bytes.fromhex("A000000025"): 4,
    bytes.fromhex("A000000065"): 5, bytes.fromhex("A000000152"): 6, bytes.fromhex("A000000333"): 7,
}


# --- configuration and pre-processing (Book B §3.1) -------------------------------------------------------


@dataclass(frozen=True)
class ReaderLimits:
    """The per-combination Entry Point configuration (Book B §3.1.1 Table 3-2)."""

    contactless_limit: int | None = None  # Reader Contactless Transaction Limit: at or above → not allowed
    floor_limit: int | None = None  # Reader Contactless Floor Limit: above → online cryptogram required
    cvm_required_limit: int | None = None  # Reader CVM Required Limit: at or above → CVM required
    status_check: bool = False  # a one-unit amount asks for an online cryptogram
    zero_amount_allowed: bool = True  # option 1: a zero amount goes online; False: not allowed
    extended_selection: bool = False  # append 9F29 to the SELECT (Book B §3.3.3.3)
    ttq: bytes = DEFAULT_TTQ

    def __post_init__(self) -> None:
        if len(self.ttq) != 4:
            raise ConfigError("ttq must be 4 bytes (9F66)")
        for name in ("contactless_limit", "floor_limit", "cvm_required_limit"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{name} cannot be negative")


@dataclass(frozen=True)
class Combination:
    """One {AID, kernel ID} the reader supports (Book B §3.1.1)."""

    aid: bytes
    kernel_id: int
    limits: ReaderLimits = ReaderLimits()


@dataclass(frozen=True)
class Indicators:
    """Entry Point Pre-Processing Indicators of one combination (Book B §3.1.1 Table 3-3)."""

    status_check_requested: bool = False
    not_allowed: bool = False  # Contactless Application Not Allowed
    zero_amount: bool = False
    cvm_limit_exceeded: bool = False
    floor_limit_exceeded: bool = False
    contactless_limit_exceeded: bool = False
    ttq: bytes = DEFAULT_TTQ


def _set(ttq: bytearray, bit: tuple[int, int]) -> None:
    ttq[bit[0]] |= bit[1]


def preprocess(combos: Sequence[Combination], amount_minor: int, *, currency_exponent: int = 2,
               terminal_floor_limit: int | None = None) -> tuple[Indicators, ...]:
    """Book B §3.1.1: the indicators and TTQ of each combination, in the same order as ``combos``."""
    out = []
    for combo in combos:
        lim = combo.limits
        ttq = bytearray(lim.ttq)
        ttq[1] &= 0x3F  # §3.1.1.2: reset "online cryptogram required" and "CVM required"
        status = lim.status_check and amount_minor == 10 ** currency_exponent  # §3.1.1.3
        if status:
            _set(ttq, TTQ_ONLINE_CRYPTOGRAM)
        zero = amount_minor == 0  # §3.1.1.4
        not_allowed = zero and not lim.zero_amount_allowed
        if zero and lim.zero_amount_allowed:
            _set(ttq, TTQ_ONLINE_CRYPTOGRAM)
        over_cl = lim.contactless_limit is not None and amount_minor >= lim.contactless_limit  # §3.1.1.5
        floor = lim.floor_limit if lim.floor_limit is not None else terminal_floor_limit
        over_floor = floor is not None and amount_minor > floor  # §3.1.1.6–7
        if over_floor:
            _set(ttq, TTQ_ONLINE_CRYPTOGRAM)
        over_cvm = lim.cvm_required_limit is not None and amount_minor >= lim.cvm_required_limit  # §3.1.1.8
        if over_cvm:
            _set(ttq, TTQ_CVM_REQUIRED)
        out.append(Indicators(status, not_allowed or over_cl, zero, over_cvm, over_floor, over_cl, bytes(ttq)))
    return tuple(out)


# --- the PPSE and combination selection (Book B §3.3) ----------------------------------------------------


@dataclass(frozen=True)
class DirectoryEntry:
    """One ``61`` entry of the PPSE's FCI Issuer Discretionary Data ``BF0C`` (Book B §3.3.2.4)."""

    adf_name: bytes
    label: str | None = None
    priority: int | None = None
    kernel_identifier: bytes | None = None
    extended_selection: bytes | None = None


def parse_ppse(data: bytes) -> tuple[DirectoryEntry, ...]:
    """The directory entries of a SELECT PPSE answer (without SW). Entries without a usable ``4F`` are skipped
    (Book B §3.3.2.5 A).

    Raises:
        RemoteProtocolError: not a TLV string, no ``6F``/``A5``/``BF0C``, or a malformed entry.
    """
    objects = tlv.decode(data)
    fci = next((o for o in objects if o.tag == 0x6F), None)
    if fci is None:
        raise RemoteProtocolError("PPSE answer has no FCI template 6F", offset=0, tag="6F")
    proprietary = next((o for o in fci.children if o.tag == 0xA5), None)
    if proprietary is None:
        raise RemoteProtocolError("PPSE FCI has no proprietary template A5", tag="A5")
    discretionary = next((o for o in proprietary.children if o.tag == 0xBF0C), None)
    if discretionary is None:
        raise RemoteProtocolError("PPSE FCI has no issuer discretionary data BF0C", tag="BF0C")
    entries = []
    for entry in discretionary.children:
        if entry.tag != 0x61:
            continue
        values = {o.tag: o.value for o in entry.children}
        adf = values.get(0x4F)
        if adf is None or not 5 <= len(adf) <= 16:
            continue
        priority = values.get(0x87)
        label = values.get(0x50)
        entries.append(DirectoryEntry(
            adf, label.decode("latin-1").strip() if label else None,
            priority[0] if priority is not None and len(priority) == 1 else None,
            values.get(0x9F2A), values.get(0x9F29)))
    return tuple(entries)


def requested_kernel_id(entry: DirectoryEntry) -> int | None:
    """Book B §3.3.2.5 C–D: the kernel the entry asks for; ``None`` when it names no kernel we can read.

    An international kernel ID (byte 1 b8–b7 ``00`` or ``01``) is byte 1; a domestic one (``10``/``11``) is the
    first three bytes. Absent, empty or ``00`` means the default kernel for the RID (Table 3-6).
    """
    kid = entry.kernel_identifier
    if not kid or kid[0] == 0:
        return DEFAULT_KERNEL.get(entry.adf_name[:5])
    if kid[0] & 0xC0 in (0x00, 0x40):
        return kid[0]
    if len(kid) < 3:
        return None  # Book B: a domestic kernel ID shorter than 3 bytes is not matched
    return int.from_bytes(kid[:3], "big")


@dataclass(frozen=True)
class Candidate:
    """A directory entry matched to a combination (Book B §3.3.2.5 E)."""

    entry: DirectoryEntry
    combination: Combination
    indicators: Indicators
    position: int  # order in which it was added: the tie-break of §3.3.3.2

    def select_name(self) -> bytes:
        """ADF name, plus the Extended Selection when both sides support it (Book B §3.3.3.3)."""
        ext = self.entry.extended_selection
        return self.entry.adf_name + (ext if ext and self.combination.limits.extended_selection else b"")


def match(entries: Sequence[DirectoryEntry], combos: Sequence[Combination],
          indicators: Sequence[Indicators]) -> list[Candidate]:
    """Book B §3.3.2.5: every (entry, combination) where the ADF name starts with the AID, the kernel IDs are
    equal and the combination is allowed for this amount."""
    out: list[Candidate] = []
    for entry in entries:
        kernel = requested_kernel_id(entry)
        for combo, ind in zip(combos, indicators, strict=True):
            if entry.adf_name.startswith(combo.aid) and kernel == combo.kernel_id and not ind.not_allowed:
                out.append(Candidate(entry, combo, ind, len(out)))
    return out


def order(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Book B §3.3.3.2: by priority ``87`` (1 highest, absent or 0 last), ties in directory order."""
    return sorted(candidates, key=lambda c: ((c.entry.priority or 0) & 0x0F or 16, c.position))


# --- outcomes (Book A §6.2, §9) ---------------------------------------------------------------------------


class Status(Enum):
    """Outcome Parameter Set, Status (Book A §6.2.1)."""

    APPROVED = "approved"
    DECLINED = "declined"
    ONLINE_REQUEST = "online_request"
    END_APPLICATION = "end_application"
    SELECT_NEXT = "select_next"
    TRY_ANOTHER_INTERFACE = "try_another_interface"
    TRY_AGAIN = "try_again"


class Start(Enum):
    """Where Entry Point restarts (Book A §6.2.2; Book B §3.5)."""

    NA = "n/a"
    A = "A"  # pre-processing
    B = "B"  # protocol activation
    C = "C"  # combination selection
    D = "D"  # kernel activation


class Cvm(Enum):
    """Outcome Parameter Set, CVM (Book A §6.2.5)."""

    NA = "n/a"
    NO_CVM = "no_cvm"
    ONLINE_PIN = "online_pin"
    SIGNATURE = "signature"
    CONFIRMATION_CODE_VERIFIED = "confirmation_code_verified"  # consumer device CVM on a phone


class Message(IntEnum):
    """User Interface Request message identifiers (Book A §9.4 Table 9-2)."""

    APPROVED = 0x03
    NOT_AUTHORISED = 0x07
    ENTER_PIN = 0x09
    PROCESSING_ERROR = 0x0F
    REMOVE_CARD = 0x10
    PRESENT_CARD = 0x15
    PROCESSING = 0x16
    CARD_READ_OK = 0x17
    INSERT_OR_SWIPE = 0x18
    PRESENT_ONE_CARD_ONLY = 0x19
    APPROVED_PLEASE_SIGN = 0x1A
    AUTHORISING = 0x1B
    TRY_ANOTHER_CARD = 0x1C
    INSERT_CARD = 0x1D
    SEE_PHONE = 0x20
    PRESENT_CARD_AGAIN = 0x21


class UiStatus(IntEnum):
    """User Interface Request status: what the four lights show (Book A §9.2 Table 9-1)."""

    NOT_READY = 0x00
    IDLE = 0x01
    READY_TO_READ = 0x02
    PROCESSING = 0x03
    CARD_READ_SUCCESSFULLY = 0x04
    PROCESSING_ERROR = 0x05


@dataclass(frozen=True)
class UiRequest:
    """One User Interface Request (Book A §6.2.9): message, lights, and how long to hold it."""

    message: Message
    status: UiStatus
    hold_ms: int = 0


@dataclass(frozen=True)
class Outcome:
    """A kernel's outcome: the Book A §6.2 Outcome Parameter Set plus the data record for the host."""

    status: Status
    reason: str
    start: Start = Start.NA
    cvm: Cvm = Cvm.NA
    ui: UiRequest | None = None  # UI Request on Outcome
    ui_on_restart: UiRequest | None = None
    field_off_ms: int | None = None  # Field Off Request: None = no request
    receipt: bool = False
    data_record: Mapping[int, bytes] = field(default_factory=dict, repr=False)
