"""A NOR flash simulated in a file, with real flash rules and a power-cut hook for tests.

Rules (as MCUboot's simulator enforces them): sectors erase to 0xFF; writes are aligned to ``write_size`` in
address and length; a write may only land on erased bytes (no rewrite without erase). Every erase and write counts
as one *operation*; a test may cut the power at operation N: ``clean`` cuts before it does anything, ``torn`` lets
it go part way (``torn_fraction``, half by default: a write stores that share of its bytes, an erase erases that
share of the sector and leaves the rest as it was).
Then ``PowerCut`` is raised and the file holds exactly what the chip would. Reopen the file to "reboot".

The device layout is fixed by the file size (and ``FILE.chip.json``, the sector and write sizes): two equal
slots, then two sectors for the anti-rollback counter.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "flash.bin")
>>> flash = SimFlash.create(path, slot_sectors=4)
>>> flash.write(0, b"\\x00" * 8); flash.read(0, 9)
b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\xff'
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from firmware_image.errors import FlashError, PowerCut

__all__ = ["SimFlash", "Geometry", "SECTOR_SIZE", "WRITE_SIZE", "COUNTER_SECTORS", "ERASED"]

SECTOR_SIZE = 4096
WRITE_SIZE = 8
COUNTER_SECTORS = 2
ERASED = 0xFF


@dataclass(frozen=True)
class Geometry:
    sector_size: int
    write_size: int
    slot_sectors: int

    @property
    def slot_size(self) -> int:
        return self.sector_size * self.slot_sectors

    def slot_base(self, slot: int) -> int:
        return slot * self.slot_size

    @property
    def counter_base(self) -> int:
        return 2 * self.slot_size

    @property
    def image_capacity(self) -> int:
        """Bytes an image may use: the slot less its trailer sector."""
        return self.slot_size - self.sector_size

    @property
    def total_size(self) -> int:
        return (2 * self.slot_sectors + COUNTER_SECTORS) * self.sector_size


def _chip(path: Path) -> dict[str, int]:
    """The chip's sector and write sizes, kept beside the flash file (a real device knows its chip)."""
    try:
        return dict(json.loads(Path(f"{path}.chip.json").read_text()))
    except (OSError, ValueError):
        return {}


class SimFlash:
    """File-backed flash. ``cut_at`` (1-based operation number), ``torn`` and ``torn_fraction`` arm the power cut."""

    def __init__(self, path: str | Path, *, sector_size: int | None = None, write_size: int | None = None,
                 cut_at: int | None = None, torn: bool = False, torn_fraction: float = 0.5) -> None:
        self.path = Path(path)
        chip = _chip(self.path)
        sector_size = sector_size or chip.get("sector_size", SECTOR_SIZE)
        write_size = write_size or chip.get("write_size", WRITE_SIZE)
        size = self.path.stat().st_size
        slot_sectors, rest = divmod(size // sector_size - COUNTER_SECTORS, 2)
        if size % sector_size or rest or slot_sectors < 2:
            raise FlashError(f"{path}: {size} bytes is not a flash image of two slots + {COUNTER_SECTORS} sectors "
                             f"of {sector_size} bytes; create one with 'pos-fw slots --create'")
        self.geometry = Geometry(sector_size, write_size, slot_sectors)
        self.cut_at = cut_at
        self.torn = torn
        self.torn_fraction = torn_fraction
        self.ops = 0
        self.erases = 0
        self.writes = 0
        self._fd = os.open(self.path, os.O_RDWR)

    @classmethod
    def create(cls, path: str | Path, *, slot_sectors: int, sector_size: int = SECTOR_SIZE,
               write_size: int = WRITE_SIZE) -> SimFlash:
        geometry = Geometry(sector_size, write_size, slot_sectors)
        _write_private(Path(path), bytes([ERASED]) * geometry.total_size)  # the device's storage: owner only
        _write_private(Path(f"{path}.chip.json"),
                       json.dumps({"sector_size": sector_size, "write_size": write_size}).encode())
        return cls(path, sector_size=sector_size, write_size=write_size)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SimFlash:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def read(self, addr: int, length: int) -> bytes:
        self._bounds(addr, length)
        return os.pread(self._fd, length, addr)

    def _bounds(self, addr: int, length: int) -> None:
        if addr < 0 or length < 0 or addr + length > self.geometry.total_size:
            raise FlashError(f"access 0x{addr:x}+{length} outside the flash (0x{self.geometry.total_size:x} bytes)")

    def _operation(self) -> bool:
        """Count one operation; True when the power fails during it."""
        self.ops += 1
        return self.cut_at is not None and self.ops == self.cut_at

    def erase(self, addr: int) -> None:
        """Erase the sector starting at ``addr``."""
        size = self.geometry.sector_size
        if addr % size:
            raise FlashError(f"erase at 0x{addr:x} is not on a sector boundary ({size} bytes)")
        self._bounds(addr, size)
        self.erases += 1
        if self._operation():
            if self.torn:
                os.pwrite(self._fd, bytes([ERASED]) * int(size * self.torn_fraction), addr)
            raise PowerCut(f"power cut during erase of 0x{addr:x} (operation {self.ops})")
        os.pwrite(self._fd, bytes([ERASED]) * size, addr)

    def write(self, addr: int, data: bytes) -> None:
        align = self.geometry.write_size
        if addr % align or len(data) % align:
            raise FlashError(f"write 0x{addr:x}+{len(data)} is not aligned to {align} bytes")
        self._bounds(addr, len(data))
        current = os.pread(self._fd, len(data), addr)
        if current.count(ERASED) != len(current):
            raise FlashError(f"write at 0x{addr:x} over bytes that are not erased (erase the sector first)")
        self.writes += 1
        if self._operation():
            if self.torn:
                os.pwrite(self._fd, data[:int(len(data) * self.torn_fraction)], addr)
            raise PowerCut(f"power cut during write of 0x{addr:x}+{len(data)} (operation {self.ops})")
        os.pwrite(self._fd, data, addr)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
