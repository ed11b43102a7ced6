"""Power-fail campaigns in the style of MCUboot's simulator: cut the power at every flash operation, reboot, check.

A *sequence* is what a field update does to the flash: the launcher boots, the update agent downloads a new image
into the inactive slot and finalizes it, the launcher test-boots it, the application confirms it after its
self-test (or fails it), the launcher boots again. A campaign first counts the flash operations (erases and
writes) of a clean run, then for every operation N and for both a clean cut and a torn one (the operation stops
half way) runs the sequence from the same starting flash, cuts the power at N, and reboots. After every cut:

* the launcher must find a bootable image, and it must be the old or the new signed image, never a partial one;
* the rollback counter never exceeds the counter of an image that was confirmed;
* repeating the whole update then completes: the new image runs confirmed (or, when its self-test fails, the old
  one runs again and the counter never rose);
* a cut during the download costs at most one block again: the repeat sends no block below the one being written.

Random multi-cut sequences cut several times in a row before the repeat, torn operations stopping at a random
point. ``survived / total`` is the result.
"""

from __future__ import annotations

import random
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

from firmware_image.agent import AgentCore
from firmware_image.boot import decide
from firmware_image.errors import PowerCut
from firmware_image.flash import SimFlash
from firmware_image.flasher import Flasher, FlashReport
from firmware_image.image import Version, make_image
from firmware_image.keys import PrivateKey, generate
from firmware_image.link import LoopLink
from firmware_image.slots import confirm_flash, read_counter

__all__ = ["Campaign", "CampaignResult", "make_campaign"]

DEVICE = "iotsim-pos-powerfail"


@dataclass
class CampaignResult:
    survived: int = 0
    total: int = 0
    failures: list[str] = field(default_factory=list)
    operations: int = 0

    def add(self, label: str, problem: str | None) -> None:
        self.total += 1
        if problem is None:
            self.survived += 1
        else:
            self.failures.append(f"{label}: {problem}")


@dataclass
class Campaign:
    """A starting flash file (old image confirmed and running) and the new image to install."""

    base: Path
    key: PrivateKey
    old: bytes
    new: bytes
    new_passes_self_test: bool
    block_size: int
    new_counter: int
    old_counter: int
    chunk_size: int = 2048  # delta flashing's chunk (the shifted campaign uses small ones: many DELTA writes)

    def _payloads(self) -> tuple[bytes, bytes]:
        return self.old[32:64], self.new[32:64]  # a payload prefix tells the images apart

    def _app_runs(self, flash: SimFlash, payload: bytes) -> None:
        """The application on trial: confirms itself when its self-test passes (the new image may fail it)."""
        if payload[:32] != self.new[32:64] or self.new_passes_self_test:
            confirm_flash(flash)

    def sequence(self, flash: SimFlash, reports: list[FlashReport], cores: list[AgentCore]) -> None:
        running = decide(flash, [self.key], DEVICE)
        core = AgentCore(flash, [self.key], DEVICE, running.slot)
        cores.append(core)
        reports.append(Flasher(LoopLink(core), block_size=self.block_size, window=4,
                               chunk_size=self.chunk_size).flash(self.new))
        trial = decide(flash, [self.key], DEVICE)
        if trial.trial and trial.info is not None:
            self._app_runs(flash, trial.info.payload)
        decide(flash, [self.key], DEVICE)

    def count_operations(self, work: Path) -> int:
        shutil.copyfile(self.base, work)
        shutil.copyfile(f"{self.base}.chip.json", f"{work}.chip.json")
        with SimFlash(work) as flash:
            self.sequence(flash, [], [])
            return flash.ops

    def run(self, work: Path, cuts: list[tuple[int, float]]) -> str | None:
        """Apply ``cuts`` one after another, then repeat the update; None when all is well.

        A cut is (operation number, torn fraction): 0 cuts before the operation, 0 < f < 1 lets it do that share.
        """
        shutil.copyfile(self.base, work)
        shutil.copyfile(f"{self.base}.chip.json", f"{work}.chip.json")
        download_cut_at: int | None = None
        for number, torn in cuts:
            cores: list[AgentCore] = []
            done: list[FlashReport] = []
            with SimFlash(work, cut_at=number, torn=torn > 0, torn_fraction=torn) as flash:
                try:
                    self.sequence(flash, done, cores)
                except PowerCut:
                    in_download = cores and not done and cores[-1].last_write_offset is not None
                    if in_download and len(cuts) == 1:
                        download_cut_at = cores[-1].last_write_offset
            problem = self._after_reboot(work)
            if problem:
                return f"after cut at op {number}{f' (torn at {torn:.2f})' if torn else ''}: {problem}"
        reports: list[FlashReport] = []
        with SimFlash(work) as flash:
            self.sequence(flash, reports, [])
            final = decide(flash, [self.key], DEVICE)
            counter = read_counter(flash)
        expected = self.new if self.new_passes_self_test else self.old
        if final.info is None or final.info.payload != expected[32:32 + len(final.info.payload)] or final.trial:
            return "the repeated update did not end on the expected confirmed image"
        if counter != (self.new_counter if self.new_passes_self_test else self.old_counter):
            return f"rollback counter is {counter} after the update"
        if download_cut_at is not None and reports:
            again = [o for o in reports[0].sent_offsets if o < download_cut_at]
            if again:
                return f"resume re-sent {len(again)} block(s) the device had already written"
        return None

    def _after_reboot(self, work: Path) -> str | None:
        with SimFlash(work) as flash:
            decision = decide(flash, [self.key], DEVICE)
            if decision.info is None:
                return "no bootable image: " + "; ".join(decision.messages)
            old_payload, new_payload = self._payloads()
            if decision.info.payload[:32] not in (old_payload, new_payload):
                return "booted an image that is neither the old nor the new one"
            confirmed_max = max(self.old_counter, self.new_counter if self.new_passes_self_test else 0)
            if read_counter(flash) > confirmed_max:
                return "rollback counter rose past every confirmed image"
            if decision.trial:
                self._app_runs(flash, decision.info.payload)
        return None

    def single_cuts(self, work: Path, result: CampaignResult, label: str, every: int = 1,
                    fractions: tuple[float, ...] = (0.0, 0.5)) -> None:
        total = self.count_operations(work)
        result.operations += total
        for number in range(1, total + 1, every):
            for torn in fractions:
                result.add(f"{label} op {number} torn {torn}", self.run(work, [(number, torn)]))

    def multi_cuts(self, work: Path, result: CampaignResult, label: str, runs: int, seed: int) -> None:
        total = self.count_operations(work)
        rng = random.Random(seed)
        for index in range(runs):
            cuts = [(rng.randint(1, total), rng.choice((0.0, rng.random()))) for _ in range(rng.randint(2, 4))]
            result.add(f"{label} multi #{index} {cuts}", self.run(work, cuts))


def make_campaign(workdir: Path, *, payload_size: int, sector_size: int, new_passes_self_test: bool,
                  counter_nearly_full: bool = False, seed: int = 1, shifted: bool = False) -> Campaign:
    """A device whose slots hold an older image and the running one (1.0.0, counter 1); the new one is 1.1.0.

    ``shifted``: the new payload is the running one with 37 bytes put in front, so everything moves and the
    download goes as DELTA writes (copies from the running slot) rather than same-offset copies."""
    key = generate("ed25519")
    rng = random.Random(seed)
    images = [make_image(rng.randbytes(payload_size), version=Version(0, 9 + i), key=key, security_counter=1,
                         device_class=DEVICE) for i in range(2)]
    running_payload = images[1][32:32 + payload_size]
    payload = (rng.randbytes(37) + running_payload if shifted else
               rng.randbytes(payload_size // 2) + running_payload[payload_size // 2:])
    new = make_image(payload, version=Version(1, 1), key=key, security_counter=2, device_class=DEVICE)
    base = workdir / "base.bin"
    slot_sectors = (len(new) + sector_size - 1) // sector_size + 2
    with SimFlash.create(base, slot_sectors=slot_sectors, sector_size=sector_size) as flash:
        for image in images:
            running = decide(flash, [key], DEVICE)
            Flasher(LoopLink(AgentCore(flash, [key], DEVICE, running.slot)), block_size=sector_size).flash(image)
            decide(flash, [key], DEVICE)
            confirm_flash(flash)
        if counter_nearly_full:  # fill the counter's sector: the new image's confirm must roll over to the other
            base_addr = flash.geometry.counter_base
            for index in range(1, sector_size // 8):
                flash.write(base_addr + index * 8, struct.pack("<II", 1, 1 ^ 0xFFFFFFFF))
    return Campaign(base, key, images[1], new, new_passes_self_test, sector_size, 2, 1, 256 if shifted else 2048)
