"""``pos-fw``: build, sign, check and flash terminal images (imgtool / esptool conventions).

Exit codes: 0 done; 1 the image or the device said no (verification failed, device refused); 2 bad usage or
unreadable input; 3 the serial link failed.

>>> build_parser().prog
'pos-fw'
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import tomllib
from pathlib import Path

from firmware_image.errors import DeviceRefused, FirmwareError, FirmwareImageError, FlashProtocolError
from firmware_image.flash import SimFlash
from firmware_image.flasher import Flasher
from firmware_image.image import Version, make_image, parse_image, verify_image
from firmware_image.keys import KEY_TYPES, c_array, generate, load_key, public_pem, save_private
from firmware_image.link import SerialFlashLink
from firmware_image.payload import build_payload, read_manifest, tree_digest
from firmware_image.slots import confirm, describe, read_image, revert, running_slot, set_pending

__all__ = ["main", "build_parser", "DEFAULT_DEVICE_CLASS"]

DEFAULT_DEVICE_CLASS = "iotsim-pos-1"
_EPILOG = """examples:
  pos-fw keygen -k dev.pem                         new Ed25519 signing key (PEM, as imgtool writes it)
  pos-fw build --key dev.pem --output app.img      build + sign the current tree
  pos-fw verify --key dev.pem app.img              exit 0 only for a good image
  pos-fw flash --port /dev/ttyUSB0 --baud 921600 app.img
  pos-fw slots --flash device/flash.bin            both slots: version, state
"""


def _auto_counter(version: Version) -> int:
    return (version.major << 24) | (version.minor << 16) | version.revision  # imgtool's "auto" rule


def _tree_version(root: Path) -> str:
    try:
        return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0.0.0"


def _progress(done: int, total: int, started: list[float]) -> None:
    width = 30
    filled = width * done // max(total, 1)
    rate = done / max(time.perf_counter() - started[0], 1e-6) / 1024
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * done // max(total, 1):3d}% "
                     f"{done}/{total} bytes {rate:7.1f} KiB/s")
    sys.stderr.flush()


def _sign_common(p: argparse.ArgumentParser, key_required: bool) -> None:
    p.add_argument("-k", "--key", required=key_required, help="private key PEM (pos-fw keygen / imgtool keygen)")
    p.add_argument("-v", "--version", help="major.minor.revision+build (default: pyproject version, build 0)")
    p.add_argument("-s", "--security-counter", type=int, help="anti-rollback counter (default: from the version, "
                   "as imgtool's 'auto': major<<24 | minor<<16 | revision)")
    p.add_argument("--device-class", default=DEFAULT_DEVICE_CLASS, help=f"default {DEFAULT_DEVICE_CLASS}")
    p.add_argument("-H", "--header-size", type=lambda v: int(v, 0), default=0x20, help="default 0x20")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pos-fw", description="Terminal firmware images: MCUboot format, signed "
                                     "with Ed25519 (default) or ECDSA-P256, flashed over the maintenance port.",
                                     epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("keygen", help="generate a signing key")
    p.add_argument("-k", "--key", required=True, help="PEM file to write (refuses to overwrite)")
    p.add_argument("-t", "--type", choices=KEY_TYPES, default="ed25519")
    p = sub.add_parser("getpub", help="print the public key of a key file")
    p.add_argument("-k", "--key", required=True)
    p.add_argument("-e", "--encoding", choices=("pem", "c"), default="pem")
    p = sub.add_parser("build", help="build the current tree's zipapp and sign it into an image")
    _sign_common(p, key_required=False)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--root", default=".", help="source tree (default: current directory)")
    p.add_argument("--requires", help="comma-separated platform packages the self-test requires "
                   "(default: the standard set)")
    p = sub.add_parser("sign", help="wrap a payload file (a zipapp) into a signed image, like imgtool sign")
    _sign_common(p, key_required=False)
    p.add_argument("infile")
    p.add_argument("outfile")
    p = sub.add_parser("verify", help="check hash, signature (and device class / counter): exit 0 only when good")
    p.add_argument("-k", "--key", action="append", required=True, help="private or public key PEM (repeatable)")
    p.add_argument("--device-class", help="also require this device class")
    p.add_argument("--min-counter", type=int, help="also refuse security counters below this")
    p.add_argument("image")
    p = sub.add_parser("info", help="print an image's header, TLVs and manifest (like imgtool dumpinfo)")
    p.add_argument("image")
    p = sub.add_parser("flash", help="download an image into the device's inactive slot over serial")
    p.add_argument("-p", "--port", required=True, help="serial port of the terminal's maintenance link")
    p.add_argument("-b", "--baud", type=int, default=115200, help="link rate to switch to after sync")
    p.add_argument("--initial-baud", type=int, default=115200, help="rate the agent listens at")
    p.add_argument("--pace", action="store_true", help="emulate the line rate (ptys have none)")
    p.add_argument("--block-size", type=int, default=4096)
    p.add_argument("--window", type=int, default=4, help="blocks in flight")
    p.add_argument("--confirm", action="store_true", help="mark the image confirmed at once (no test boot)")
    p.add_argument("--no-reset", action="store_true", help="leave the device running after the download")
    p.add_argument("image")
    for name, text in (("slots", "show both slots (version, state)"),
                       ("test", "mark the inactive slot's image for one test boot"),
                       ("confirm", "confirm the image on trial"), ("revert", "go back to the other slot"),
                       ("reset", "reset the device through its update agent")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--flash", help="simulated flash file of the device (local access)")
        if name in ("slots", "reset"):
            p.add_argument("-p", "--port", help="serial port of the device's update agent")
            p.add_argument("-b", "--baud", type=int, default=115200)
        if name == "slots":
            p.add_argument("--create", type=int, metavar="SECTORS", help="create an erased flash file with "
                           "slots of this many 4 KiB sectors")
            p.add_argument("-k", "--key", action="append", help="device key(s): also say if each slot would boot")
            p.add_argument("--device-class", default=DEFAULT_DEVICE_CLASS)
    return parser


def _image_inputs(opts: argparse.Namespace, default_version: str) -> tuple[Version, int, object]:
    version = Version.parse(opts.version or default_version)
    counter = opts.security_counter if opts.security_counter is not None else _auto_counter(version)
    key = load_key(opts.key) if opts.key else None
    if key is not None and not hasattr(key, "private_bytes"):
        raise FirmwareImageError(f"{opts.key} is a public key: signing needs the private key", "usage")
    return version, counter, key


def _cmd_build(opts: argparse.Namespace) -> int:
    root = Path(opts.root).resolve()
    version, counter, key = _image_inputs(opts, _tree_version(root))
    requires = opts.requires.split(",") if opts.requires else None
    payload = build_payload(root, version=str(version), **({"requires": requires} if requires else {}))
    info = {"tree_sha256": tree_digest(root), "payload_sha256": hashlib.sha256(payload).hexdigest()}
    blob = make_image(payload, version=version, key=key, security_counter=counter,  # type: ignore[arg-type]
                      device_class=opts.device_class, build_info=info, header_size=opts.header_size)
    Path(opts.output).write_bytes(blob)
    print(f"{opts.output}: {len(blob)} bytes, version {version}, counter {counter}, "
          f"{'signed' if key else 'UNSIGNED'}")
    return 0


def _cmd_sign(opts: argparse.Namespace) -> int:
    version, counter, key = _image_inputs(opts, "0.0.0")
    payload = Path(opts.infile).read_bytes()
    blob = make_image(payload, version=version, key=key, security_counter=counter,  # type: ignore[arg-type]
                      device_class=opts.device_class, header_size=opts.header_size)
    Path(opts.outfile).write_bytes(blob)
    print(f"{opts.outfile}: {len(blob)} bytes, version {version}")
    return 0


def _cmd_verify(opts: argparse.Namespace) -> int:
    info = verify_image(Path(opts.image).read_bytes(), [load_key(k) for k in opts.key],
                        device_class=opts.device_class, min_counter=opts.min_counter)
    print(f"Image was correctly validated\nImage version: {info.version}\nImage digest: {info.sha256.hex()}"
          if info.sha256 else "validated")
    return 0


def _cmd_info(opts: argparse.Namespace) -> int:
    info = parse_image(Path(opts.image).read_bytes())
    print(f"version:          {info.version}\nheader size:      0x{info.header_size:x}\n"
          f"load address:     0x{info.load_addr:x}\nflags:            0x{info.flags:x}\n"
          f"payload:          {len(info.payload)} bytes\nsecurity counter: {info.security_counter}\n"
          f"device class:     {info.device_class}\nimage size:       {info.total_size} bytes")
    for area, name, length in info.tlv_names():
        print(f"  {area:<12} {name:<13} {length} bytes")
    try:
        print("manifest: " + json.dumps(read_manifest(info.payload), sort_keys=True))
    except FirmwareImageError:
        print("manifest: none (payload is not a pos-fw zipapp)")
    return 0


def _cmd_flash(opts: argparse.Namespace) -> int:
    image = Path(opts.image).read_bytes()
    parse_image(image)
    link = SerialFlashLink(opts.port, opts.initial_baud, pace=opts.pace)
    started = [time.perf_counter()]
    try:
        flasher = Flasher(link, baud=opts.baud if opts.baud != opts.initial_baud else 0,
                          block_size=opts.block_size, window=opts.window,
                          progress=lambda d, t: _progress(d, t, started))
        report = flasher.flash(image, permanent=opts.confirm, reset=not opts.no_reset)
    finally:
        link.close()
    sys.stderr.write("\n")
    print(f"{report.message}; sent {report.blocks_sent}/{report.blocks_total} blocks, "
          f"{report.wire_bytes_out} bytes on the wire for {report.image_size} (ratio {report.bytes_ratio:.3f}), "
          f"{report.seconds:.2f} s")
    return 0


def _cmd_device(opts: argparse.Namespace) -> int:
    if getattr(opts, "port", None):
        link = SerialFlashLink(opts.port, opts.baud)
        try:
            flasher = Flasher(link)
            if opts.command == "reset":
                flasher.reset()
                print("device resetting")
            else:
                print(json.dumps(json.loads(flasher.slots()), indent=1))
        finally:
            link.close()
        return 0
    if not opts.flash:
        raise FirmwareImageError("give --flash FILE (or --port for slots/reset)", "usage")
    if opts.command == "slots":
        if opts.create:
            SimFlash.create(opts.flash, slot_sectors=opts.create).close()
        keys = [load_key(k) for k in opts.key] if opts.key else None
        for s in describe(opts.flash, keys, opts.device_class if keys else None):
            flag = "*" if s.running else " "
            print(f"{flag} slot {s.slot}: {s.state.value:<9} version {s.version or '-':<12} counter "
                  f"{s.security_counter if s.security_counter is not None else '-'}"
                  + (f"  REFUSED: {s.problem}" if s.problem else ""))
    elif opts.command == "confirm":
        print("confirmed" if confirm(opts.flash) else "nothing on trial: the running image is already confirmed")
    elif opts.command == "revert":
        print(f"slot {revert(opts.flash)} will run after the next reset")
    elif opts.command == "test":
        with SimFlash(opts.flash) as flash:
            running = running_slot(flash)
            target = 0 if running is None else 1 - running
            if read_image(flash, target) is None:
                raise FirmwareImageError(f"slot {target} holds no image to test: flash one with 'pos-fw flash'",
                                         "usage")
            set_pending(flash, target)
        print(f"slot {target} will be test-booted at the next reset")
    else:
        raise FirmwareImageError("reset needs --port (the device's update agent)", "usage")
    return 0


_COMMANDS = {"keygen": None, "getpub": None, "build": _cmd_build, "sign": _cmd_sign, "verify": _cmd_verify,
             "info": _cmd_info, "flash": _cmd_flash}


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    try:
        if opts.command == "keygen":
            if Path(opts.key).exists():
                raise FirmwareImageError(f"{opts.key} exists: choose another file (keys are never overwritten)",
                                         "usage")
            save_private(generate(opts.type), opts.key)
            print(f"{opts.key}: new {opts.type} key. Keep it secret; give devices 'pos-fw getpub -k {opts.key}'")
            return 0
        if opts.command == "getpub":
            key = load_key(opts.key)
            sys.stdout.write(public_pem(key).decode() if opts.encoding == "pem" else c_array(key))
            return 0
        handler = _COMMANDS.get(opts.command) or _cmd_device
        return handler(opts)
    except FirmwareImageError as exc:
        print(f"pos-fw: error: {exc}", file=sys.stderr)
        return 2 if exc.reason in ("usage", "malformed") and opts.command != "verify" else 1
    except DeviceRefused as exc:
        print(f"pos-fw: {exc}", file=sys.stderr)
        return 1
    except FlashProtocolError as exc:
        print(f"pos-fw: link error: {exc}", file=sys.stderr)
        return 3
    except (FirmwareError, OSError) as exc:
        print(f"pos-fw: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
