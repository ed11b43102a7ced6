"""``pos-emv``: look at EMV data and card sessions.

* ``pos-emv decode HEX`` — the TLV tree with tag names; TVR, TSI, CVM List, CVM Results, AIP, AUC and CID in
  words. ``pos-emv decode --tag 95 8000048000`` explains one raw value.
* ``pos-emv replay FILE`` — runs the kernel on a recorded transcript (``emv.transcript``) and prints a
  readable trace, the outcome and the TVR/TSI in words; a tap transcript (``meta.interface`` = ``contactless``)
  runs through Entry Point and its kernels instead (``emv.tap_replay``). A transcript that keeps the full PAN
  is replayed with a warning and the PAN is never printed in full.

Exit status 0 on success, 2 when the input is malformed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import sys
from collections.abc import Sequence

from emv import tlv
from emv.actions import Finished, GoOnline, RequestOnlinePin, SendApdu, VerifyOfflinePin
from emv.capk import TEST_CAPKS
from emv.config import STANDARD_AIDS, TerminalConfig
from emv.describe import describe, tree
from emv.kernel import Transaction
from emv.tap_replay import is_tap, replay_tap
from emv.transcript import ReplayCard, Transcript, find_pan
from pos_errors import PosError

__all__ = ["main", "replay"]


def _hex(text: str) -> bytes:
    cleaned = "".join(text.split())
    try:
        return bytes.fromhex(cleaned)
    except ValueError as exc:
        raise PosError(f"not hexadecimal: {exc}") from exc


def decode(text: str, tag: str | None) -> list[str]:
    data = _hex(text)
    if tag is not None:
        number = int(tag, 16)
        return [f"{number:X} [{len(data)}] {data.hex().upper()}"] + [f"    → {w}" for w in describe(number, data)]
    return tree(tlv.decode(data))


def replay(transcript: Transcript, config: TerminalConfig | None = None) -> tuple[list[str], Finished]:
    """Run the kernel against the transcript; the trace lines and how it ended."""
    meta = transcript.meta
    config = config or TerminalConfig(aids=STANDARD_AIDS, capabilities=bytes.fromhex("E0F8C8"))
    un = bytes.fromhex(meta.get("unpredictable_number", "00000000"))
    tx = Transaction(config, amount_minor=int(meta.get("amount_minor", 0)),
                     when=dt.datetime.fromisoformat(meta.get("when", "2026-01-01T12:00:00")),
                     unpredictable_number=lambda: un, sequence_counter=int(meta.get("sequence_counter", 1)),
                     transaction_type=int(meta.get("transaction_type", 0)))
    card, pins = ReplayCard(transcript), list(transcript.pins)
    lines: list[str] = []
    action = tx.start()
    for _ in range(500):
        if isinstance(action, Finished):
            break
        if isinstance(action, SendApdu):
            answer = card.process(action.apdu)
            lines.append(f"→ {action.purpose}: {action.apdu.hex().upper()}")
            lines.append(f"← {answer.hex().upper()}")
            action = tx.on_response(answer)
        elif isinstance(action, RequestOnlinePin):
            lines.append("PIN pad: online PIN (replayed as entered)")
            action = tx.on_pin("entered")
        elif isinstance(action, VerifyOfflinePin):
            pin = pins.pop(0) if pins else {"status": "cancelled"}
            sw = int(pin["sw"], 16) if pin.get("sw") else None
            lines.append(f"PIN pad: offline {'enciphered ' if action.enciphered else ''}PIN → {pin['status']} "
                         f"{pin.get('sw', '')}")
            action = tx.on_offline_pin(pin["status"], sw)
        elif isinstance(action, GoOnline):
            host = transcript.host or {}
            code = host.get("code")
            lines.append(f"host: {code or 'unreachable'}")
            action = tx.on_online_result(code, bytes.fromhex(host.get("issuer_data", "")))
    if not isinstance(action, Finished):
        raise PosError("the replay did not finish")
    if card.divergences:
        lines.append(f"! the kernel sent {len(card.divergences)} command(s) the transcript does not have")
    pan = find_pan(transcript)
    if pan is not None:  # never print a full PAN, even from a local transcript
        lines = [line.replace(pan, pan[:6] + "*" * (len(pan) - 10) + pan[-4:]) for line in lines]
    lines.append(f"outcome: {action.outcome.value} — {action.reason}")
    for key, tag in (("tvr", 0x95), ("tsi", 0x9B)):
        value = bytes.fromhex(action.receipt.get(key, ""))
        lines.append(f"{key.upper()} {value.hex().upper()}: " + "; ".join(describe(tag, value) or ["nothing set"]))
    return lines, action


def _replay_any(transcript: Transcript) -> list[str]:
    """The trace of a chip or a tap transcript, the full PAN never printed."""
    if not is_tap(transcript):
        return replay(transcript)[0]
    lines, _ = replay_tap(transcript, TEST_CAPKS)
    pan = find_pan(transcript)
    if pan is not None:
        lines = [line.replace(pan, pan[:6] + "*" * (len(pan) - 10) + pan[-4:]) for line in lines]
    return lines


def _version() -> str:
    try:
        return importlib.metadata.version("iotsim-pos")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pos-emv", description="Decode EMV data; replay card transcripts.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_decode = sub.add_parser("decode", help="TLV tree with names; TVR/TSI/CVM/AIP/AUC/CID in words")
    p_decode.add_argument("hex", nargs="+", help="hex bytes (spaces allowed)")
    p_decode.add_argument("--tag", help="explain HEX as the raw value of this tag, e.g. 95")
    p_replay = sub.add_parser("replay", help="run the kernel on a transcript JSON file")
    p_replay.add_argument("file")
    args = parser.parse_args(argv)
    try:
        if args.command == "decode":
            print("\n".join(decode(" ".join(args.hex), args.tag)))
            return 0
        with open(args.file, encoding="utf-8") as fh:
            transcript = Transcript.from_json(fh.read())
        if not transcript.meta.get("masked") and find_pan(transcript):
            print("warning: this transcript keeps the full PAN; share only masked transcripts", file=sys.stderr)
        lines = _replay_any(transcript)
        print("\n".join(lines))
        return 0
    except (PosError, OSError) as exc:
        print(f"pos-emv: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
