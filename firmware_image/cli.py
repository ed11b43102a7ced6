"""``pos-fw``: build, sign, check and flash terminal images (imgtool / esptool conventions).

Exit codes: 0 done; 1 the image or the device said no (verification failed, device refused); 2 bad usage or
unreadable input; 3 the serial link failed.

>>> build_parser().prog
'pos-fw'
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import importlib.metadata
import json
import os
import sys
import time
import tomllib
from pathlib import Path

from firmware_image.cli_device import DEVICE_COMMANDS, add_device_commands, int_in, run_device
from firmware_image.errors import DeviceRefused, FirmwareError, FirmwareImageError, FlashProtocolError
from firmware_image.flasher import Flasher
from firmware_image.image import Version, make_image, parse_image, verify_image
from firmware_image.keys import (
    KEY_TYPES,
    PASSWORD_ENV,
    c_array,
    generate,
    load_key,
    public_der,
    public_pem,
    rust_array,
    save_private,
)
from firmware_image.link import SerialFlashLink
from firmware_image.payload import build_payload, read_manifest, tree_digest

__all__ = ["main", "build_parser", "DEFAULT_DEVICE_CLASS"]

DEFAULT_DEVICE_CLASS = "iotsim-pos-1"
_EPILOG = """examples:
  pos-fw keygen -k dev.pem                         new Ed25519 signing key (PEM, as imgtool writes it)
  pos-fw build --key dev.pem --output app.img      build + sign the current tree
  pos-fw verify --key dev.pem app.img              exit 0 only for a good image
  pos-fw flash --port /dev/ttyUSB0 --baud 921600 app.img
  pos-fw slots --flash device/flash.bin            both slots: version, state
  pos-fw confirm --port socket://10.0.0.7:4000     confirm the image on trial over the network (any pyserial URL)
"""


def _auto_counter(version: Version) -> int:
    return (version.major << 24) | (version.minor << 16) | version.revision  # imgtool's "auto" rule


def _tree_version(root: Path) -> str:
    try:
        return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0.0.0"


def _progress(done: int, total: int, started: list[float], shown: list[int]) -> None:
    """A bar redrawn in place on a terminal; plain lines (every 10 %) when stderr is a file or a pipe."""
    percent = 100 * done // max(total, 1)
    rate = done / max(time.perf_counter() - started[0], 1e-6) / 1024
    if sys.stderr.isatty():
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {percent:3d}% "
                         f"{done}/{total} bytes {rate:7.1f} KiB/s")
    elif percent // 10 > shown[0] // 10 or (done == total and shown[0] < 100):
        shown[0] = percent
        sys.stderr.write(f"flash: {percent}% {done}/{total} bytes {rate:.1f} KiB/s\n")
    sys.stderr.flush()


def package_version() -> str:
    """The installed project's version (``--version`` of every command)."""
    try:
        return importlib.metadata.version("iotsim-pos")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _sign_common(p: argparse.ArgumentParser, key_required: bool) -> None:
    p.add_argument("-k", "--key", required=key_required, help="private key PEM (pos-fw keygen / imgtool keygen)")
    p.add_argument("-v", "--version", help="major.minor.revision+build (default: pyproject version, build 0)")
    p.add_argument("-s", "--security-counter", type=int_in(0, 0xFFFFFFFF, "counter"),
                   help="anti-rollback counter (default: from the version, "
                   "as imgtool's 'auto': major<<24 | minor<<16 | revision)")
    p.add_argument("--device-class", default=DEFAULT_DEVICE_CLASS, help=f"default {DEFAULT_DEVICE_CLASS}")
    p.add_argument("-H", "--header-size", type=int_in(0x20, 0x10000, "size"), default=0x20, help="default 0x20")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pos-fw", description="Terminal firmware images: MCUboot format, signed "
                                     "with Ed25519 (default) or ECDSA-P256, flashed over the maintenance port.",
                                     epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("keygen", help="generate a signing key")
    p.add_argument("-k", "--key", required=True, help="PEM file to write, mode 0600 (refuses to overwrite)")
    p.add_argument("-t", "--type", choices=KEY_TYPES, default="ed25519")
    p.add_argument("-p", "--password", action="store_true", help="prompt for a passphrase that encrypts the key "
                   f"(as imgtool keygen -p; or set {PASSWORD_ENV})")
    p = sub.add_parser("getpub", help="print the public key of a key file")
    p.add_argument("-k", "--key", required=True)
    p.add_argument("-e", "--encoding", choices=("pem", "raw", "lang-c", "lang-rust"), default="pem",
                   help="imgtool's names: pem (default here), raw (DER bytes), lang-c, lang-rust")
    p = sub.add_parser("build", help="build the current tree's zipapp and sign it into an image")
    _sign_common(p, key_required=False)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--root", default=".", help="source tree (default: current directory)")
    p.add_argument("--requires", help="comma-separated platform packages the self-test requires "
                   "(default: the standard set)")
    p.add_argument("--sources-only", action="store_true", help="ship the modules as sources (a smaller image for "
                   "any Python, compiled at every boot; default: bytecode for this Python)")
    p = sub.add_parser("sign", help="wrap a payload file (a zipapp) into a signed image, like imgtool sign")
    _sign_common(p, key_required=False)
    p.add_argument("infile")
    p.add_argument("outfile")
    p = sub.add_parser("verify", help="check hash, signature (and device class / counter): exit 0 only when good")
    p.add_argument("-k", "--key", action="append", required=True, help="private or public key PEM (repeatable)")
    p.add_argument("--device-class", help="also require this device class")
    p.add_argument("--min-counter", type=int_in(0, 0xFFFFFFFF, "counter"),
                   help="also refuse security counters below this")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("image")
    p = sub.add_parser("info", help="print an image's header, TLVs and manifest (like imgtool dumpinfo)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("image")
    p = sub.add_parser("flash", help="download an image into the device's inactive slot over serial")
    p.add_argument("-p", "--port", required=True, help="the terminal's maintenance port: a device path or a "
                   "pyserial URL (socket://host:port, rfc2217://host:port, spy:///dev/ttyS1)")
    p.add_argument("-b", "--baud", type=int_in(300, 4_000_000, "baud"), default=115200,
                   help="link rate to switch to after sync")
    p.add_argument("--initial-baud", type=int_in(300, 4_000_000, "baud"), default=115200,
                   help="rate the agent listens at")
    p.add_argument("--pace", action="store_true", help="emulate the line rate (ptys have none)")
    p.add_argument("--block-size", type=int_in(256, 16384, "bytes"), default=4096, help="256..16384")
    p.add_argument("--window", type=int_in(1, 8, "blocks"), default=4, help="blocks in flight, 1..8")
    p.add_argument("--confirm", action="store_true", help="mark the image confirmed at once (no test boot)")
    p.add_argument("--no-reset", action="store_true", help="leave the device running after the download")
    p.add_argument("--no-delta", action="store_true", help="send changed blocks whole (deflated), without "
                   "copying pieces of the running image (delta)")
    p.add_argument("image")
    add_device_commands(sub, DEFAULT_DEVICE_CLASS)
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
    payload = build_payload(root, version=str(version), compiled=not opts.sources_only,
                            **({"requires": requires} if requires else {}))
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
    try:
        info = verify_image(Path(opts.image).read_bytes(), [load_key(k) for k in opts.key],
                            device_class=opts.device_class, min_counter=opts.min_counter)
    except FirmwareImageError as exc:
        if not opts.json:
            raise
        print(json.dumps({"image": opts.image, "valid": False, "reason": exc.reason, "message": str(exc)}))
        return 1
    if opts.json:
        print(json.dumps({"image": opts.image, "valid": True, "version": str(info.version),
                          "security_counter": info.security_counter, "device_class": info.device_class,
                          "sha256": info.sha256.hex() if info.sha256 else None}))
    else:
        print(f"Image was correctly validated\nImage version: {info.version}\nImage digest: {info.sha256.hex()}"
              if info.sha256 else "validated")
    return 0


def _cmd_info(opts: argparse.Namespace) -> int:
    info = parse_image(Path(opts.image).read_bytes())
    try:
        manifest: dict[str, object] | None = read_manifest(info.payload)
    except FirmwareImageError:
        manifest = None
    if opts.json:
        print(json.dumps({"version": str(info.version), "header_size": info.header_size,
                          "load_addr": info.load_addr, "flags": info.flags, "payload_bytes": len(info.payload),
                          "security_counter": info.security_counter, "device_class": info.device_class,
                          "image_bytes": info.total_size, "sha256": info.sha256.hex() if info.sha256 else None,
                          "tlvs": [{"area": a, "type": n, "length": size} for a, n, size in info.tlv_names()],
                          "manifest": manifest}, sort_keys=True))
        return 0
    print(f"version:          {info.version}\nheader size:      0x{info.header_size:x}\n"
          f"load address:     0x{info.load_addr:x}\nflags:            0x{info.flags:x}\n"
          f"payload:          {len(info.payload)} bytes\nsecurity counter: {info.security_counter}\n"
          f"device class:     {info.device_class}\nimage size:       {info.total_size} bytes")
    for area, name, length in info.tlv_names():
        print(f"  {area:<12} {name:<13} {length} bytes")
    print("manifest: " + (json.dumps(manifest, sort_keys=True) if manifest is not None
                          else "none (payload is not a pos-fw zipapp)"))
    return 0


def _cmd_flash(opts: argparse.Namespace) -> int:
    image = Path(opts.image).read_bytes()
    parse_image(image)
    link = SerialFlashLink(opts.port, opts.initial_baud, pace=opts.pace)
    started, shown = [time.perf_counter()], [-1]
    try:
        flasher = Flasher(link, baud=opts.baud if opts.baud != opts.initial_baud else 0,
                          block_size=opts.block_size, window=opts.window, chunk_size=0 if opts.no_delta else 2048,
                          progress=lambda d, t: _progress(d, t, started, shown))
        report = flasher.flash(image, permanent=opts.confirm, reset=not opts.no_reset)
    finally:
        link.close()
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    print(f"{report.message}; sent {report.blocks_sent}/{report.blocks_total} blocks, "
          f"{report.wire_bytes_out} bytes on the wire for {report.image_size} (ratio {report.bytes_ratio:.3f}), "
          f"{report.seconds:.2f} s; {report.copied} blocks copied and {report.delta} rebuilt from the running "
          f"image (delta), {report.wire_bytes_in} bytes back")
    return 0


def _cmd_keygen(opts: argparse.Namespace) -> int:
    if Path(opts.key).exists():
        raise FirmwareImageError(f"{opts.key} exists: choose another file (keys are never overwritten)", "usage")
    password = _new_password() if opts.password else None
    save_private(generate(opts.type), opts.key, password=password)
    state = "encrypted" if password else "unencrypted"
    print(f"{opts.key}: new {opts.type} key ({state}, mode 0600). Keep it secret; give devices "
          f"'pos-fw getpub -k {opts.key}'")
    return 0


def _new_password() -> bytes:
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV].encode()
    first = getpass.getpass("Enter key passphrase: ")
    if not first or first != getpass.getpass("Reenter passphrase: "):
        raise FirmwareImageError("the passphrases are empty or differ: no key written", "usage")
    return first.encode()


def _cmd_getpub(opts: argparse.Namespace) -> int:
    key = load_key(opts.key)
    if opts.encoding == "raw":
        sys.stdout.flush()
        sys.stdout.buffer.write(public_der(key))
    else:
        sys.stdout.write({"pem": lambda: public_pem(key).decode(), "lang-c": lambda: c_array(key),
                          "lang-rust": lambda: rust_array(key)}[opts.encoding]())
    return 0


_COMMANDS = {"keygen": _cmd_keygen, "getpub": _cmd_getpub, "build": _cmd_build, "sign": _cmd_sign,
             "verify": _cmd_verify, "info": _cmd_info, "flash": _cmd_flash,
             **dict.fromkeys(DEVICE_COMMANDS, run_device)}


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    try:
        return _COMMANDS[opts.command](opts)
    except FirmwareImageError as exc:
        print(f"pos-fw: error: {exc}", file=sys.stderr)
        return 2 if exc.reason in ("usage", "malformed") and opts.command != "verify" else 1
    except DeviceRefused as exc:
        print(f"pos-fw: {exc}", file=sys.stderr)
        if exc.code == "on_trial" and getattr(opts, "port", None):
            print(f"pos-fw: keep the new image with 'pos-fw confirm --port {opts.port}' or go back with "
                  f"'pos-fw revert --port {opts.port}' (then reset), and flash again", file=sys.stderr)
        return 1
    except FlashProtocolError as exc:
        print(f"pos-fw: link error: {exc}", file=sys.stderr)
        return 3
    except (FirmwareError, OSError) as exc:
        print(f"pos-fw: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
