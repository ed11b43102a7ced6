"""SMP image management (group 1) on the A/B slots: state read/write, upload with offsets and resume, erase.

The same rules as POSFW1 (``firmware_image.agent``): uploads go only to the inactive slot, each sector is erased
just before it is first written, the finished image is checked by ``verify_image`` (hash, signature, device
class, rollback counter) before the slot is marked for a test boot, and the running slot is never touched.

How mcumgr's words map to the slots (one application image, ``image`` 0, two slots that either may run, as
MCUboot's direct-XIP with revert):

* **upload** (``image`` 0 or absent): a new session starts at offset 0 with ``len`` (and ``sha``, the SHA-256
  of the whole file); an offset-0 request with the same ``len`` and ``sha`` as an unfinished session *resumes*
  it (the answer's ``off`` says where); a chunk at another offset than expected is answered with the expected
  one. A complete upload that verifies is marked for a **test boot** at once (``smpmgr upgrade`` sends no test
  command); one that does not is refused with the reason's code and never becomes bootable.
* **state write** ``hash`` (test): mark that slot's image for one test boot; ``confirm`` without a hash (or with
  the running image's hash): confirm the image on trial; ``confirm`` with the other slot's hash: make it the
  permanent next image (as ``pos-fw flash --confirm``); it must verify first.
* **erase** ``slot``: the inactive slot only, never the running one nor the fallback of an image on trial.
* **while an image is on trial** the other slot is the one the next boot may fall back to: uploads and a test of
  it are refused (``IMAGE_ALREADY_PENDING``, "confirm or revert the image on trial first"), as Zephyr's img_mgmt
  treats the revert slot as in use; ``confirm`` with its hash (a revert) stays allowed.

>>> REFUSAL_CODES["downgrade"].name
'CURRENT_VERSION_IS_NEWER'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from construct import ConstructError
from smp.error import MGMT_ERR
from smp.image_management import IMG_MGMT_ERR, ImageUploadWriteRequest

from firmware_image.errors import FirmwareImageError, FlashError
from firmware_image.flash import ERASED, SimFlash
from firmware_image.image import ImageInfo, Version, parse_image, verify_image
from firmware_image.keys import PrivateKey, PublicKey
from firmware_image.layout import HEADER, HEADER_SIZE, IMAGE_MAGIC
from firmware_image.slots import (
    SlotState,
    confirm_flash,
    invalidate,
    read_counter,
    read_image,
    read_trailer,
    set_pending,
    trial_refusal,
)

__all__ = ["ImageGroup", "SmpRefused", "REFUSAL_CODES"]

# verify_image's reasons → the closest image-management error code (the device's log has the full reason)
REFUSAL_CODES = {
    "malformed": IMG_MGMT_ERR.INVALID_IMAGE_HEADER,
    "tampered": IMG_MGMT_ERR.INVALID_HASH,
    "unsigned": IMG_MGMT_ERR.NO_TLVS,
    "wrong-key": IMG_MGMT_ERR.INVALID_TLV,
    "downgrade": IMG_MGMT_ERR.CURRENT_VERSION_IS_NEWER,
    "wrong-device-class": IMG_MGMT_ERR.INVALID_FLASH_ADDRESS,
}


class SmpRefused(Exception):
    """A request the device refuses: ``rc`` is a group code (``IMG_MGMT_ERR``, …) or a general ``MGMT_ERR``."""

    def __init__(self, rc: Any, message: str) -> None:
        super().__init__(message)
        self.rc = rc


@dataclass
class _Upload:
    target: int
    length: int
    sha: bytes | None
    off: int = 0
    written: int = 0  # bytes on flash (a multiple of the write size)
    tail: bytes = b""  # received, not yet a whole write unit
    erased: set[int] = field(default_factory=set)


def _zephyr_version(v: Version) -> str:
    return f"{v.major}.{v.minor}.{v.revision}" + (f".{v.build}" if v.build else "")


class ImageGroup:
    """Image management against ``flash``; ``running`` is the slot the application runs from (None: none)."""

    def __init__(self, flash: SimFlash, keys: list[PrivateKey | PublicKey], device_class: str,
                 running: int | None) -> None:
        self.flash = flash
        self.keys = keys
        self.device_class = device_class
        self.running = running
        self._upload: _Upload | None = None

    # -- state -------------------------------------------------------------------------------------------
    def _info(self, slot: int) -> ImageInfo | None:
        blob = read_image(self.flash, slot)
        try:
            return parse_image(blob) if blob else None
        except FirmwareImageError:
            return None

    def states(self) -> list[dict[str, Any]]:
        """One ``ImageState`` mapping per slot holding an image (only the flags that are true, as Zephyr)."""
        running_seq = read_trailer(self.flash, self.running).sequence if self.running is not None else -1
        out = []
        for slot in (0, 1):
            info = self._info(slot)
            if info is None:
                continue
            t = read_trailer(self.flash, slot)
            pending = (slot != self.running and t.magic and not t.tried
                       and (not t.image_ok or t.sequence > running_seq))
            flags = {"bootable": True, "pending": pending, "permanent": pending and t.image_ok,
                     "confirmed": t.magic and t.image_ok and not pending, "active": slot == self.running}
            out.append({"image": 0, "slot": slot, "version": _zephyr_version(info.version),
                        "hash": info.sha256 or b"", **{k: True for k, v in flags.items() if v}})
        return out

    def _verify(self, slot: int) -> ImageInfo:
        blob = read_image(self.flash, slot)
        if blob is None:
            raise SmpRefused(IMG_MGMT_ERR.NO_IMAGE, f"slot {slot} holds no image")
        try:
            return verify_image(blob, self.keys, device_class=self.device_class,
                                min_counter=read_counter(self.flash))
        except FirmwareImageError as exc:
            raise SmpRefused(REFUSAL_CODES.get(exc.reason, IMG_MGMT_ERR.UNKNOWN),
                             f"slot {slot} refused ({exc.reason}): {exc}") from exc

    def state_write(self, digest: bytes | None, confirm: bool) -> None:
        running_info = self._info(self.running) if self.running is not None else None
        if confirm and (digest is None or (running_info and digest == running_info.sha256)):
            if self.running is None:
                raise SmpRefused(IMG_MGMT_ERR.NO_IMAGE, "no image is running: nothing to confirm")
            try:  # confirms the image on trial and raises the rollback counter from it, once verified; else no-op
                confirm_flash(self.flash, self.keys, self.device_class)
            except FirmwareImageError as exc:
                raise SmpRefused(REFUSAL_CODES.get(exc.reason, IMG_MGMT_ERR.UNKNOWN),
                                 f"the image on trial is refused ({exc.reason}): {exc}") from exc
            return
        if digest is None:
            raise SmpRefused(IMG_MGMT_ERR.INVALID_HASH, "test needs the image's hash (see image state-read)")
        slot = next((s for s in (0, 1) if (i := self._info(s)) is not None and i.sha256 == digest), None)
        if slot is None:
            raise SmpRefused(IMG_MGMT_ERR.HASH_NOT_FOUND, f"no slot holds an image with hash {digest.hex()}")
        if slot == self.running:
            raise SmpRefused(IMG_MGMT_ERR.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED,
                             f"slot {slot} is running: it cannot be tested again")
        if not confirm:  # confirm of the fallback is a revert (allowed); a test of it would demote it
            self._guard_fallback(slot)
        self._verify(slot)
        if not confirm and read_trailer(self.flash, slot).state is SlotState.PENDING:
            return
        self._guarded(lambda: set_pending(self.flash, slot, permanent=confirm))

    def _guard_fallback(self, target: int) -> None:
        if (why := trial_refusal(self.flash, target)) is not None:
            raise SmpRefused(IMG_MGMT_ERR.IMAGE_ALREADY_PENDING, why)

    def _guarded(self, action: Any) -> None:
        try:
            action()
        except FlashError as exc:
            raise SmpRefused(IMG_MGMT_ERR.FLASH_WRITE_FAILED, str(exc)) from exc

    # -- upload ------------------------------------------------------------------------------------------
    def upload(self, req: ImageUploadWriteRequest) -> dict[str, Any]:
        data = bytes(req.data)
        session = self._upload
        if req.off == 0 and req.len is not None:
            if session and session.length == req.len and session.sha and session.sha == req.sha:
                return {"off": session.off}  # same image again: resume where it stopped
            session = self._start(req, data)
        elif session is None:
            raise SmpRefused(MGMT_ERR.EINVAL, "no upload in progress: start at offset 0 with len")
        if req.off != session.off:
            return {"off": session.off}
        if session.off + len(data) > session.length:
            raise SmpRefused(IMG_MGMT_ERR.INVALID_IMAGE_DATA_OVERRUN,
                             f"{session.off}+{len(data)} bytes run past the announced {session.length}")
        self._guard_fallback(session.target)  # every chunk: a session started before a trial cannot go on
        self._guarded(lambda: self._write(session, data, final=session.off + len(data) == session.length))
        session.off += len(data)
        if session.off < session.length:
            return {"off": session.off}
        return self._finish(session)

    def _start(self, req: ImageUploadWriteRequest, data: bytes) -> _Upload:
        g = self.flash.geometry
        if req.image not in (None, 0):
            raise SmpRefused(IMG_MGMT_ERR.INVALID_SLOT, f"image {req.image}: this device has one image (0)")
        self._guard_fallback(0 if self.running is None else 1 - self.running)
        if req.len is None or req.len < HEADER_SIZE:
            raise SmpRefused(IMG_MGMT_ERR.INVALID_IMAGE_HEADER, "len is smaller than an image header")
        if req.len > g.image_capacity:
            raise SmpRefused(IMG_MGMT_ERR.INVALID_IMAGE_TOO_LARGE,
                             f"{req.len} bytes do not fit the slot's {g.image_capacity}")
        if req.sha is not None and len(req.sha) != 32:
            raise SmpRefused(IMG_MGMT_ERR.INVALID_HASH, "sha must be the 32-byte SHA-256 of the image")
        if len(data) >= 4 and int.from_bytes(data[:4], "little") != IMAGE_MAGIC:
            raise SmpRefused(IMG_MGMT_ERR.INVALID_IMAGE_HEADER_MAGIC, "not an MCUboot image (magic)")
        if req.upgrade:
            self._check_upgrade(data)
        target = 0 if self.running is None else 1 - self.running
        if read_trailer(self.flash, target).magic:  # the slot is about to change: never bootable half-written
            self._guarded(lambda: invalidate(self.flash, target))
        self._upload = _Upload(target, req.len, req.sha)
        return self._upload

    def _check_upgrade(self, data: bytes) -> None:
        running = self._info(self.running) if self.running is not None else None
        try:
            v = HEADER.parse(data[:HEADER_SIZE]).version
        except ConstructError as exc:
            raise SmpRefused(IMG_MGMT_ERR.INVALID_IMAGE_HEADER, "upgrade needs the whole header in the first "
                             "chunk") from exc
        if running and (v.major, v.minor, v.revision) <= (running.version.major, running.version.minor,
                                                           running.version.revision):
            raise SmpRefused(IMG_MGMT_ERR.CURRENT_VERSION_IS_NEWER,
                             f"{v.major}.{v.minor}.{v.revision} is not newer than the running {running.version}")

    def _write(self, session: _Upload, data: bytes, final: bool) -> None:
        g = self.flash.geometry
        pending = session.tail + data
        usable = len(pending) if final else len(pending) - len(pending) % g.write_size
        chunk, session.tail = pending[:usable], pending[usable:]
        chunk += bytes([ERASED]) * (-len(chunk) % g.write_size)
        if not chunk:
            return
        base = g.slot_base(session.target)
        start = session.written
        for sector in range(start - start % g.sector_size, start + len(chunk), g.sector_size):
            if sector not in session.erased:
                if self.flash.read(base + sector, g.sector_size).count(ERASED) != g.sector_size:
                    self.flash.erase(base + sector)
                session.erased.add(sector)
        self.flash.write(base + start, chunk)
        session.written += len(chunk)

    def _finish(self, session: _Upload) -> dict[str, Any]:
        self._upload = None
        base = self.flash.geometry.slot_base(session.target)
        blob = self.flash.read(base, session.length)
        try:
            if session.sha is not None and hashlib.sha256(blob).digest() != session.sha:
                raise SmpRefused(IMG_MGMT_ERR.INVALID_HASH, "the bytes received differ from the announced sha")
            info = self._verify(session.target)
            if info.total_size != session.length:
                raise SmpRefused(IMG_MGMT_ERR.INVALID_IMAGE_HEADER,
                                 f"the image is {info.total_size} bytes, the upload announced {session.length}")
        except SmpRefused:
            self._guarded(lambda: self.flash.erase(base))  # a refused image leaves no header to list or test
            raise
        self._guarded(lambda: set_pending(self.flash, session.target))
        return {"off": session.off, **({"match": True} if session.sha is not None else {})}

    # -- erase -------------------------------------------------------------------------------------------
    def erase(self, slot: int | None) -> None:
        slot = (0 if self.running is None else 1 - self.running) if slot is None else slot
        if slot not in (0, 1):
            raise SmpRefused(IMG_MGMT_ERR.INVALID_SLOT, f"slot {slot}: this device has slots 0 and 1")
        if slot == self.running:
            raise SmpRefused(MGMT_ERR.EBADSTATE, f"slot {slot} is running: it cannot be erased")
        if self.running is not None and read_trailer(self.flash, self.running).state is SlotState.TRIAL:
            raise SmpRefused(MGMT_ERR.EBADSTATE, f"slot {slot} is the fallback of the image on trial")
        if self._upload and self._upload.target == slot:
            self._upload = None
        g = self.flash.geometry
        base = g.slot_base(slot)

        def wipe() -> None:
            invalidate(self.flash, slot)  # trailer first: a cut half way leaves a slot that never boots
            for sector in range(0, g.image_capacity, g.sector_size):
                if self.flash.read(base + sector, g.sector_size).count(ERASED) != g.sector_size:
                    self.flash.erase(base + sector)
        self._guarded(wipe)
