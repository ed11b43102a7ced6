"""Application selection: PSE directory or list of AIDs, candidate list, final selection (EMV 4.4 Book 1 §12).

``build_candidates`` first selects the Payment System Environment ``1PAY.SYS.DDF01`` and reads its directory
(Book 1 §12.3.2); when the card has no PSE, or the PSE yields nothing usable, it selects each terminal AID in
turn, with SELECT next occurrence where partial selection is allowed (Book 1 §12.3.3). Candidates are ordered
by the Application Priority Indicator ``87`` (Book 1 §12.4). ``final_select`` selects the first candidate,
dropping those the card refuses. Only ``6A81`` (card blocked / SELECT not supported) ends the transaction
here.

>>> fci = parse_fci(bytes.fromhex("6F1B8407A0000000031010A510500B5649534120435245444954870101"))
>>> fci.df_name.hex().upper(), fci.label, fci.priority
('A0000000031010', 'VISA CREDIT', 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emv import apdu, tlv
from emv.actions import KernelReason, Outcome, Step, Stop, transmit
from emv.config import AidConfig, TerminalConfig
from pos_errors import RemoteProtocolError

__all__ = ["Fci", "Candidate", "parse_fci", "parse_directory_record", "match_aid", "order_candidates",
           "build_candidates", "final_select"]

_MAX_RECORDS = 30  # a directory is a few records; guard against a card that never answers 6A83
_MAX_OCCURRENCES = 16
_LIKELY_SFI = 1  # the PSE directory's SFI (88 in its FCI) on nearly every card: read ahead before the FCI says
_LOOKAHEAD = 2  # directory records read ahead: a directory is one or two records, then 6A83
_CONFIRMATION_REQUIRED = 0x80  # 87 b8 (Book 1 §12.2.3 Table 48)


@dataclass(frozen=True)
class Fci:
    """The parts of a File Control Information template ``6F`` the kernel uses (Book 1 §11.3.4)."""

    df_name: bytes
    label: str | None = None
    priority: int | None = None
    pdol: bytes | None = None
    sfi: int | None = None
    data: dict[int, bytes] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Candidate:
    """An application both card and terminal support (Book 1 §12.3)."""

    adf_name: bytes
    config: AidConfig
    label: str
    priority: int | None = None  # 87 byte; low nibble 1 = highest, 0 = no priority


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1").strip() if value else None


def parse_fci(data: bytes) -> Fci:
    """Decode a SELECT response. Raises RemoteProtocolError if ``6F`` or its DF name ``84`` is missing."""
    objects = tlv.decode(data)
    fci = next((o for o in objects if o.tag == 0x6F), None)
    if fci is None:
        raise RemoteProtocolError("SELECT response has no FCI template 6F", offset=0, tag="6F")
    top = {o.tag: o for o in fci.children}
    if 0x84 not in top:
        raise RemoteProtocolError("FCI has no DF name 84", tag="84")
    proprietary = top.get(0xA5)
    values = tlv.flatten(proprietary.children) if proprietary else {}
    priority = values.get(0x87)
    sfi = values.get(0x88)
    return Fci(
        df_name=top[0x84].value,
        label=_text(values.get(0x50)),
        priority=priority[0] if priority and len(priority) == 1 else None,
        pdol=values.get(0x9F38),
        sfi=sfi[0] if sfi and len(sfi) == 1 else None,
        data={0x84: top[0x84].value, **values},
    )


def parse_directory_record(data: bytes) -> list[tuple[bytes, str | None, int | None]]:
    """``(ADF name, label, priority)`` of each ``61`` entry in a PSE record ``70`` (Book 1 §12.2.3)."""
    objects = tlv.decode(data)
    if len(objects) != 1 or objects[0].tag != 0x70:
        raise RemoteProtocolError("PSE directory record is not one 70 template", offset=0, tag="70")
    entries = []
    for entry in objects[0].children:
        if entry.tag != 0x61:
            continue  # DDF entries (9D) are not followed: no nested directories in this kernel
        values = tlv.flatten(entry.children)
        if 0x4F not in values:
            continue
        priority = values.get(0x87)
        entries.append((values[0x4F], _text(values.get(0x50)),
                        priority[0] if priority and len(priority) == 1 else None))
    return entries


def match_aid(aids: tuple[AidConfig, ...], adf_name: bytes) -> AidConfig | None:
    """The terminal AID matching ``adf_name``: exactly, or as a prefix where partial selection is allowed."""
    for config in aids:
        if adf_name == config.aid:
            return config
    for config in aids:
        if config.partial_selection and adf_name.startswith(config.aid):
            return config
    return None


def order_candidates(candidates: list[Candidate], cardholder_selection: bool = False) -> list[Candidate]:
    """Sort by priority 1..15; without cardholder selection, drop those needing cardholder confirmation."""
    usable = [c for c in candidates if cardholder_selection or not (c.priority or 0) & _CONFIRMATION_REQUIRED]
    return sorted(usable, key=lambda c: (c.priority or 0) & 0x0F or 16)  # sorted() is stable


def _add(found: list[Candidate], adf_name: bytes, config: AidConfig, label: str | None,
         priority: int | None) -> None:
    if all(c.adf_name != adf_name for c in found):
        found.append(Candidate(adf_name, config, label or config.label, priority))


def build_candidates(config: TerminalConfig) -> Step[list[Candidate]]:
    """The ordered candidate list, by PSE when the card has one, else by the list of AIDs."""
    response = yield from transmit(apdu.select(apdu.PSE), "SELECT PSE", then=_directory_reads(_LIKELY_SFI, 1))
    if response.sw == 0x6A81:
        raise Stop(Outcome.TERMINATED, KernelReason.CARD_BLOCKED, "card blocked or SELECT not supported (6A81)")
    found: list[Candidate] = []
    if response.ok:
        found = yield from _read_directory(config, response.data)
    if not found:  # no PSE, blocked PSE, bad directory or nothing in common: Book 1 §12.3.2 step 5
        found = yield from _list_of_aids(config)
    return order_candidates(found, config.cardholder_selection)


def _directory_reads(sfi: int, first: int) -> tuple[bytes, ...]:
    """The directory READ RECORDs likely next (``SendApdu.then``): the directory ends at the first 6A83, which
    stops a batch, and READ RECORD changes nothing on the card, so reading ahead is harmless."""
    return tuple(apdu.read_record(sfi, r) for r in range(first, min(first + _LOOKAHEAD, _MAX_RECORDS + 1)))


def _read_directory(config: TerminalConfig, fci_data: bytes) -> Step[list[Candidate]]:
    found: list[Candidate] = []
    try:
        sfi = parse_fci(fci_data).sfi
    except RemoteProtocolError:
        return found
    if sfi is None or not 1 <= sfi <= 10:
        return found
    for record in range(1, _MAX_RECORDS + 1):
        response = yield from transmit(apdu.read_record(sfi, record), f"READ RECORD {sfi}.{record} (PSE)",
                                       then=_directory_reads(sfi, record + 1))
        if response.sw == 0x6A83:
            break
        if not response.ok:
            return []
        try:
            entries = parse_directory_record(response.data)
        except RemoteProtocolError:
            return []
        for adf_name, label, priority in entries:
            aid_config = match_aid(config.aids, adf_name)
            if aid_config is not None:
                _add(found, adf_name, aid_config, label, priority)
    return found


def _list_of_aids(config: TerminalConfig) -> Step[list[Candidate]]:
    found: list[Candidate] = []
    for aid_config in config.aids:
        next_occurrence = False
        for _ in range(_MAX_OCCURRENCES):
            command = apdu.select(aid_config.aid, next_occurrence=next_occurrence)
            response = yield from transmit(command, f"SELECT {aid_config.aid.hex().upper()}")
            if response.sw == 0x6A81:
                raise Stop(Outcome.TERMINATED, KernelReason.CARD_BLOCKED, "card blocked or SELECT not supported (6A81)")
            if response.sw not in (0x9000, 0x6283):
                break
            try:
                fci = parse_fci(response.data)
            except RemoteProtocolError:
                break
            exact = fci.df_name == aid_config.aid
            partial = aid_config.partial_selection and fci.df_name.startswith(aid_config.aid)
            if response.ok and (exact or partial):  # 6283: application blocked, not a candidate
                _add(found, fci.df_name, aid_config, fci.label, fci.priority)
            if not aid_config.partial_selection:
                break
            next_occurrence = True
    return found


def final_select(candidates: list[Candidate]) -> Step[tuple[Candidate, Fci]]:
    """SELECT the first candidate; drop candidates the card refuses (Book 1 §12.4). Mutates ``candidates``."""
    while candidates:
        candidate = candidates[0]
        name = candidate.adf_name.hex().upper()
        response = yield from transmit(apdu.select(candidate.adf_name), f"SELECT {name} (final)")
        if response.sw == 0x6A81:
            raise Stop(Outcome.TERMINATED, KernelReason.CARD_BLOCKED, "card blocked or SELECT not supported (6A81)")
        if response.ok:
            try:
                fci = parse_fci(response.data)
            except RemoteProtocolError:
                fci = None
            if fci is not None and fci.df_name == candidate.adf_name:
                return candidate, fci
        candidates.pop(0)
    raise Stop(Outcome.TERMINATED, KernelReason.NO_APPLICATION, "no candidate application could be selected")
