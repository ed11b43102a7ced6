"""A/B slots on the simulated flash: slot trailers (MCUboot's magic / image_ok / copy_done) and the rollback counter.

Each slot's last sector is its trailer; the image uses the rest. Trailer fields, each one 8-byte write unit,
counted back from the slot's end::

    end-16  magic (16 bytes, MCUboot boot_img_magic)   written LAST: a slot without it is never booted
    end-24  image_ok  0x01 = confirmed
    end-32  copy_done 0x01 = the launcher has started a trial boot of this image ("tried")
    end-40  sequence  u32, one more than the other slot's: among two confirmed slots the newer one boots

Every change is a single erase or a single aligned write, in an order where a cut between any two steps leaves a
state the launcher handles (see ``docs/firmware.md``). The anti-rollback counter lives in two sectors of 8-byte
records (``value``, ``~value``); its value is the largest valid record, so a torn record or an erase of the
sector that does not hold the maximum loses nothing.

This module is the small API the supervisor menu uses: ``describe``, ``confirm``, ``revert``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from construct import ConstructError

from firmware_image.errors import FirmwareImageError, FlashError
from firmware_image.flash import COUNTER_SECTORS, ERASED, SimFlash
from firmware_image.image import ImageInfo, parse_image, verify_image
from firmware_image.keys import PrivateKey, PublicKey
from firmware_image.layout import BOOT_MAGIC, HEADER, HEADER_SIZE, IMAGE_MAGIC, TLV_INFO

__all__ = ["SlotState", "Trailer", "SlotInfo", "read_trailer", "read_image", "set_pending", "mark_tried",
           "mark_confirmed", "invalidate", "read_counter", "raise_counter", "describe", "describe_flash",
           "confirm", "confirm_flash", "revert", "running_slot", "trial_refusal"]

_FLAG_SET = b"\x01" + bytes([ERASED]) * 7
_RECORD = struct.Struct("<II")


class SlotState(StrEnum):
    EMPTY = "empty"  # no image header
    IDLE = "idle"  # an image but no trailer magic: never booted (old, reverted, or half downloaded)
    PENDING = "pending"  # magic set, not tried yet: the next boot tries it once
    TRIAL = "trial"  # tried but not confirmed: running its trial now, or reverted at the next boot
    CONFIRMED = "confirmed"


@dataclass(frozen=True)
class Trailer:
    magic: bool
    image_ok: bool
    tried: bool
    sequence: int

    @property
    def state(self) -> SlotState:
        if not self.magic:
            return SlotState.IDLE
        if self.image_ok:
            return SlotState.CONFIRMED
        return SlotState.TRIAL if self.tried else SlotState.PENDING


@dataclass(frozen=True)
class SlotInfo:
    slot: int
    state: SlotState
    version: str | None
    security_counter: int | None
    device_class: str | None
    sequence: int
    running: bool
    problem: str | None  # why the launcher would refuse it (when keys were given), else None


def _trailer_base(flash: SimFlash, slot: int) -> int:
    g = flash.geometry
    return g.slot_base(slot) + g.slot_size - g.sector_size


def _slot_end(flash: SimFlash, slot: int) -> int:
    return flash.geometry.slot_base(slot) + flash.geometry.slot_size


def read_trailer(flash: SimFlash, slot: int) -> Trailer:
    end = _slot_end(flash, slot)
    tail = flash.read(end - 40, 40)
    seq_raw, tried, image_ok, magic = tail[0:8], tail[8:16], tail[16:24], tail[24:40]
    seq = int.from_bytes(seq_raw[:4], "little") if seq_raw[4:] == bytes(4) else 0
    # a flag byte that is neither erased nor 0x01 (damaged) counts as "tried" and "not ok": the safe side
    return Trailer(magic == BOOT_MAGIC, image_ok[0] == 0x01, tried[0] != ERASED, seq)


def read_image(flash: SimFlash, slot: int) -> bytes | None:
    """The image bytes in a slot (header to end of TLVs), or None when no image header is there."""
    base = flash.geometry.slot_base(slot)
    head = flash.read(base, HEADER_SIZE)
    if int.from_bytes(head[:4], "little") != IMAGE_MAGIC:
        return None
    try:
        hdr = HEADER.parse(head)
        tlv_at = hdr.hdr_size + hdr.img_size + hdr.protect_tlv_size
        if tlv_at + 4 > flash.geometry.image_capacity:
            return None
        total = tlv_at + TLV_INFO.parse(flash.read(base + tlv_at, 4)).total
    except ConstructError:
        return None
    return flash.read(base, min(total, flash.geometry.image_capacity))


def set_pending(flash: SimFlash, slot: int, *, permanent: bool = False) -> None:
    """Finalize a download: fresh trailer, sequence, [image_ok], magic last."""
    other = read_trailer(flash, 1 - slot)
    flash.erase(_trailer_base(flash, slot))
    end = _slot_end(flash, slot)
    flash.write(end - 40, (other.sequence + 1).to_bytes(4, "little") + bytes(4))
    if permanent:
        flash.write(end - 24, _FLAG_SET)
    flash.write(end - 16, BOOT_MAGIC)


def mark_tried(flash: SimFlash, slot: int) -> None:
    flash.write(_slot_end(flash, slot) - 32, _FLAG_SET)


def mark_confirmed(flash: SimFlash, slot: int) -> None:
    flash.write(_slot_end(flash, slot) - 24, _FLAG_SET)


def invalidate(flash: SimFlash, slot: int) -> None:
    """Take a slot out of the boot choice: erase its trailer (a torn erase leaves it as it was or magic-less)."""
    flash.erase(_trailer_base(flash, slot))


def _counter_records(flash: SimFlash) -> list[tuple[int, int, int | None]]:
    """(sector index, record index, value or None when damaged) of every written record."""
    g = flash.geometry
    out = []
    for sector in range(COUNTER_SECTORS):
        data = flash.read(g.counter_base + sector * g.sector_size, g.sector_size)
        for index in range(g.sector_size // _RECORD.size):
            raw = data[index * _RECORD.size:(index + 1) * _RECORD.size]
            if raw.count(ERASED) == len(raw):
                continue
            value, check = _RECORD.unpack(raw)
            out.append((sector, index, value if value ^ check == 0xFFFFFFFF else None))
    return out


def read_counter(flash: SimFlash) -> int:
    return max((v for _, _, v in _counter_records(flash) if v is not None), default=0)


def raise_counter(flash: SimFlash, value: int) -> None:
    """Make the stored security counter at least ``value``; never lowers it."""
    records = _counter_records(flash)
    best = max((r for r in records if r[2] is not None), key=lambda r: r[2] or 0, default=None)
    if best is not None and best[2] is not None and best[2] >= value:
        return
    g = flash.geometry
    sector = best[0] if best else 0
    last = max((i for s, i, _ in records if s == sector), default=-1)
    if last + 1 >= g.sector_size // _RECORD.size:  # full: start over in the other sector, which is not the max
        sector, last = 1 - sector, -1
        flash.erase(g.counter_base + sector * g.sector_size)
    addr = g.counter_base + sector * g.sector_size + (last + 1) * _RECORD.size
    flash.write(addr, _RECORD.pack(value, value ^ 0xFFFFFFFF))


def running_slot(flash: SimFlash) -> int | None:
    """The slot the application runs from: the one on trial, else the newest confirmed one."""
    trailers = [read_trailer(flash, s) for s in (0, 1)]
    trial = [s for s in (0, 1) if trailers[s].state is SlotState.TRIAL]
    if trial:
        return trial[0]
    confirmed = [s for s in (0, 1) if trailers[s].state is SlotState.CONFIRMED and read_image(flash, s)]
    return max(confirmed, key=lambda s: trailers[s].sequence, default=None)


def trial_refusal(flash: SimFlash, target: int) -> str | None:
    """Why ``target`` may not change now, or None: the other slot runs an image on trial (not confirmed).

    While a trial is open the next boot may revert to ``target``'s confirmed image, so nothing may write it,
    re-mark it or demote it (MCUboot / Zephyr img_mgmt treat the revert slot as in use). Uploads wait for the
    technician to confirm the trial (or revert it).
    """
    other = 1 - target
    if read_trailer(flash, other).state is not SlotState.TRIAL:
        return None
    info = _parse_or_none(read_image(flash, other))
    fallback = read_trailer(flash, target).state is SlotState.CONFIRMED and read_image(flash, target) is not None
    return (f"slot {other} runs {info.version if info else 'an image'} on trial (not confirmed)"
            + (f" and slot {target} holds the confirmed image it falls back to" if fallback else "")
            + ": confirm or revert the image on trial first")


def describe(flash_path: str | Path, keys: list[PrivateKey | PublicKey] | None = None,
             device_class: str | None = None) -> list[SlotInfo]:
    """Both slots: version, state, and (given the device's keys) whether the launcher would accept the image."""
    with SimFlash(flash_path) as flash:
        return describe_flash(flash, keys, device_class)


def describe_flash(flash: SimFlash, keys: list[PrivateKey | PublicKey] | None = None,
                   device_class: str | None = None) -> list[SlotInfo]:
    running = running_slot(flash)
    counter = read_counter(flash)
    out = []
    for slot in (0, 1):
        trailer = read_trailer(flash, slot)
        blob = read_image(flash, slot)
        info: ImageInfo | None = None
        problem = None
        try:
            if blob is not None:
                info = (verify_image(blob, keys, device_class=device_class, min_counter=counter) if keys
                        else parse_image(blob))
        except FirmwareImageError as exc:
            problem = str(exc)
            info = _parse_or_none(blob)
        state = SlotState.EMPTY if blob is None else trailer.state
        out.append(SlotInfo(slot, state, str(info.version) if info else None,
                            info.security_counter if info else None, info.device_class if info else None,
                            trailer.sequence, slot == running, problem))
    return out


def _parse_or_none(blob: bytes | None) -> ImageInfo | None:
    try:
        return parse_image(blob) if blob else None
    except FirmwareImageError:
        return None


def confirm(flash_path: str | Path, keys: list[PrivateKey | PublicKey] | None = None,
            device_class: str | None = None) -> bool:
    """Confirm the image on trial (the running application calls this after its self-test).

    Returns False when nothing was on trial (already confirmed). The rollback counter rises only from verified
    data: here when ``keys`` are given (the image must then verify under them and ``device_class``, or nothing
    changes and ``FirmwareImageError`` says why), otherwise at the next boot, when the launcher has verified the
    confirmed image (MCUboot raises it from the validated image too).
    """
    with SimFlash(flash_path) as flash:
        return confirm_flash(flash, keys, device_class)


def confirm_flash(flash: SimFlash, keys: list[PrivateKey | PublicKey] | None = None,
                  device_class: str | None = None) -> bool:
    trial = [s for s in (0, 1) if read_trailer(flash, s).state is SlotState.TRIAL]
    if not trial:
        return False
    verified: ImageInfo | None = None
    if keys:
        blob = read_image(flash, trial[0])
        if blob is None:
            raise FirmwareImageError(f"slot {trial[0]} holds no image to confirm")
        verified = verify_image(blob, keys, device_class=device_class, min_counter=read_counter(flash))
    mark_confirmed(flash, trial[0])
    if verified is not None:
        raise_counter(flash, verified.security_counter)
    return True


def revert(flash_path: str | Path) -> int:
    """Go back to the other slot at the next boot; returns the slot that will run.

    Raises:
        FlashError: the other slot holds no confirmed image to go back to (flash is unchanged).
    """
    with SimFlash(flash_path) as flash:
        running = running_slot(flash)
        if running is None:
            raise FlashError("no image is running: nothing to revert")
        other = 1 - running
        info = _parse_or_none(read_image(flash, other))
        if read_trailer(flash, other).state is not SlotState.CONFIRMED or info is None:
            raise FlashError(f"slot {other} holds no confirmed image to go back to; flash a build instead")
        if info.security_counter < read_counter(flash):
            raise FlashError(f"slot {other} ({info.version}) is below the rollback counter: the launcher would "
                             "refuse it; flash a build instead")
        invalidate(flash, running)
        return other
