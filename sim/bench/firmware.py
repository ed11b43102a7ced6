"""``make bench`` firmware part: flashing speed against the line rate, resume cost, re-flash cost, power-fail score.

Throughput runs the real agent core behind a pty master and the real host (pyserial on the slave), both pacing
their output at the baud rate (10 bits per byte, as a UART would): effective rate = image bytes / seconds of the
whole session (sync, negotiation from 115200, hashes, blocks, read-back hash, finalize). Targets from issue 7:
≥ 0.90 of the line rate for an incompressible image, ≥ 1.5 for the real application image, ≤ 1 block re-sent
after a cut mid-transfer, ≤ 0.02 bytes sent per image byte when re-flashing an identical image. Measured, never
asserted.

Delta flashing (issue 17): bytes the host sends / image size when the device runs build 1.0.0 of this tree and the
new image is the same build, the tree with one module edited by one line, the tree after a dependency upgrade
(the manifest's version and requirement of one dependency change: platform packages are not inside the image),
or an unrelated image (the simulator's own package). Bytes coming back (the running image's chunk sums) are
reported beside. Target for the one-line change: ≤ 0.05.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import threading
import tty
from pathlib import Path
from typing import Any

from firmware_image.agent import AgentCore
from firmware_image.agent_shell import serve
from firmware_image.boot import decide
from firmware_image.errors import PowerCut
from firmware_image.flash import SimFlash
from firmware_image.flasher import Flasher
from firmware_image.image import Version, make_image
from firmware_image.keys import generate
from firmware_image.link import FdLink, LoopLink, SerialFlashLink
from firmware_image.payload import APP_PACKAGES, build_payload, runtime_dependencies
from firmware_image.slots import confirm_flash
from sim.crash.flash_powerfail import CampaignResult, make_campaign

__all__ = ["measure"]

ROOT = Path(__file__).resolve().parents[2]  # the source tree (this file moved into sim/bench/)
DEVICE = "iotsim-pos-bench"
TARGETS = {"incompressible": 0.90, "application": 1.5}


def _paced_flash(workdir: Path, image: bytes, baud: int, key: Any, running: bytes | None = None) -> dict[str, float]:
    path = workdir / f"flash-{baud}-{len(image)}-{running is not None}.bin"
    flash = SimFlash.create(path, slot_sectors=max(len(image), len(running or b"")) // 4096 + 4)
    if running is not None:  # installed at the factory (in memory): the device runs it from slot 0
        Flasher(LoopLink(AgentCore(flash, [key], DEVICE))).flash(running, permanent=True)
    master, slave = os.openpty()
    tty.setraw(slave)
    device_link = FdLink(master, 115200)
    core = AgentCore(flash, [key], DEVICE, 0 if running is not None else None)
    agent = threading.Thread(target=serve, args=(device_link, core), kwargs={"idle_timeout": 30}, daemon=True)
    agent.start()
    host_link = SerialFlashLink(os.ttyname(slave), 115200, pace=True)
    try:
        report = Flasher(host_link, baud=baud if baud != 115200 else 0, window=4).flash(image)
    finally:
        host_link.close()
        agent.join(timeout=5)
        os.close(master)
        os.close(slave)
        flash.close()
    return {"seconds": round(report.seconds, 3),
            "ratio_to_line_rate": round(len(image) / report.seconds / (baud / 10), 3),
            "wire_bytes_per_image_byte": round(report.bytes_ratio, 4)}


def _resume_after_cut(workdir: Path, image: bytes, key: Any) -> dict[str, int]:
    path = workdir / "cut.bin"
    SimFlash.create(path, slot_sectors=len(image) // 4096 + 4).close()
    blocks = -(-len(image) // 4096)
    cut_flash = SimFlash(path, cut_at=blocks // 2, torn=True)  # half way: one write per block on erased flash
    core = AgentCore(cut_flash, [key], DEVICE)
    try:
        Flasher(LoopLink(core)).flash(image)
    except PowerCut:
        pass
    cut_flash.close()
    cut_offset = core.last_write_offset or 0
    with SimFlash(path) as flash:
        report = Flasher(LoopLink(AgentCore(flash, [key], DEVICE))).flash(image)
    return {"blocks_written_before_cut": cut_offset // 4096,
            "blocks_resent_after_cut": len([o for o in report.sent_offsets if o <= cut_offset]),
            "blocks_sent_on_resume": report.blocks_sent, "blocks_total": report.blocks_total}


def _identical_reflash(workdir: Path, image: bytes, key: Any) -> float:
    with SimFlash.create(workdir / "same.bin", slot_sectors=len(image) // 4096 + 4) as flash:
        Flasher(LoopLink(AgentCore(flash, [key], DEVICE))).flash(image)
        decide(flash, [key], DEVICE)
        confirm_flash(flash)
        running = decide(flash, [key], DEVICE).slot
        report = Flasher(LoopLink(AgentCore(flash, [key], DEVICE, running))).flash(image)
    return round(report.bytes_ratio, 4)


def _delta(workdir: Path, old: bytes, new: bytes, key: Any) -> dict[str, float]:
    with SimFlash.create(workdir / "delta.bin", slot_sectors=max(len(old), len(new)) // 4096 + 4) as flash:
        Flasher(LoopLink(AgentCore(flash, [key], DEVICE))).flash(old, permanent=True)
        report = Flasher(LoopLink(AgentCore(flash, [key], DEVICE, 0))).flash(new)
    return {"bytes_sent_ratio": round(report.bytes_ratio, 4),
            "bytes_back_ratio": round(report.wire_bytes_in / report.image_size, 4),
            "blocks_copied": report.copied, "blocks_delta": report.delta, "blocks_total": report.blocks_total}


def _edited_tree(workdir: Path) -> Path:
    tree = workdir / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir()
    for name in APP_PACKAGES:
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def delta_cases(workdir: Path, key: Any) -> dict[str, Any]:
    deps = runtime_dependencies(ROOT)

    def image(payload: bytes, version: str) -> bytes:
        return make_image(payload, version=Version.parse(version), key=key, security_counter=1,
                          device_class=DEVICE)

    base = image(build_payload(ROOT, version="1.0.0", dependencies=deps), "1.0.0")
    tree = _edited_tree(workdir)
    module = tree / "flows" / "topup.py"  # in the middle of the zipapp: everything after it shifts
    # a line of code, not a comment: the image holds bytecode, which a comment does not change
    module.write_text(module.read_text(encoding="utf-8") + "ONE_LINE_MORE = 1\n", encoding="utf-8")
    one_line = image(build_payload(tree, version="1.0.1", dependencies=deps), "1.0.1")
    upgraded = [dict(d, version=d["version"] + ".post1") if i == 0 else d for i, d in enumerate(deps)]
    dependency = image(build_payload(ROOT, version="1.0.1", dependencies=upgraded), "1.0.1")
    unrelated = image(build_payload(ROOT, version="1.0.1", packages=("sim",), dependencies=deps), "1.0.1")
    cases = {"identical": base, "one_line_change": one_line, "dependency_upgrade": dependency,
             "unrelated_image": unrelated}
    out: dict[str, Any] = {name: dict(_delta(workdir, base, new, key), image_bytes=len(new))
                           for name, new in cases.items()}
    paced = _paced_flash(workdir, one_line, 115200, key, running=base)  # the whole session over a paced pty
    out["one_line_change"]["seconds_115200"] = paced["seconds"]
    out["one_line_change"]["wire_bytes_per_image_byte_115200"] = paced["wire_bytes_per_image_byte"]
    return out


def measure(bauds: tuple[int, ...] = (115200, 921600), incompressible_size: int = 128 * 1024) -> dict[str, Any]:
    key = generate()
    app = make_image(build_payload(ROOT, version="1.0.0"), version=Version(1), key=key, security_counter=1,
                     device_class=DEVICE)
    noise = make_image(random.Random(1).randbytes(incompressible_size), version=Version(1), key=key,
                       security_counter=1, device_class=DEVICE)
    out: dict[str, Any] = {"application_image_bytes": len(app), "incompressible_image_bytes": len(noise)}
    with tempfile.TemporaryDirectory(prefix="pos-fw-bench-") as tmp:
        work = Path(tmp)
        for baud in bauds:
            for name, image in (("incompressible", noise), ("application", app)):
                row = _paced_flash(work, image, baud, key)
                row["target"] = TARGETS[name]
                row["ratio_to_target"] = round(row["ratio_to_line_rate"] / TARGETS[name], 2)
                out[f"throughput_{name}_{baud}"] = row
        out["resume_after_cut"] = dict(_resume_after_cut(work, app, key), target_blocks_resent=1)
        ratio = _identical_reflash(work, app, key)
        out["identical_reflash_bytes_ratio"] = {"value": ratio, "target": 0.02,
                                                "ratio_to_target": round(ratio / 0.02, 2)}
        delta = delta_cases(work, key)
        out["delta"] = delta
        out["delta_one_line_change_ratio"] = delta["one_line_change"]["bytes_sent_ratio"]
        result = CampaignResult()
        for passes in (True, False):
            campaign = make_campaign(work, payload_size=5000, sector_size=1024, new_passes_self_test=passes)
            campaign.single_cuts(work / "pf.bin", result, "bench")
            campaign.multi_cuts(work / "pf.bin", result, "bench", runs=10, seed=5)
        out["power_cut_points_survived"] = f"{result.survived} / {result.total}"
    return out


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
