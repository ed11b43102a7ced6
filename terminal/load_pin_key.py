"""Technician operation: load a new initial DUKPT key into the PIN pad, checked by its key check value.

    python -m terminal.load_pin_key --port /dev/ttyUSB1 --scheme aes \\
        --key <IK enciphered under the pad's key-loading key, hex> --ksn <initial KSN, hex> --kcv <3 bytes, hex>

The key arrives enciphered (the clear key never passes through the terminal); the pad deciphers it, compares
its check value with ``--kcv`` and only then replaces its key. Prints the pad's key status afterwards.
Exit 0 when loaded, 1 when the pad refused (KCV mismatch, busy) or could not be reached.
"""

from __future__ import annotations

import argparse
import sys

from drivers.pinpad import KeyLoad, PinPad
from emv.errors import PosError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m terminal.load_pin_key", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", required=True, help="PIN pad device path or pyserial URL")
    parser.add_argument("--scheme", choices=("aes", "tdes"), default="aes",
                        help="aes: AES DUKPT, PIN block format 4 (default); tdes: TDES DUKPT, format 0 (legacy)")
    parser.add_argument("--key", required=True, help="initial key enciphered under the key-loading key (hex)")
    parser.add_argument("--ksn", required=True, help="initial key serial number (hex; 12 bytes aes, 10 tdes)")
    parser.add_argument("--kcv", required=True, help="key check value of the clear key (3 bytes hex)")
    args = parser.parse_args(argv)
    try:
        load = KeyLoad(args.scheme, bytes.fromhex(args.key), bytes.fromhex(args.ksn), bytes.fromhex(args.kcv))
    except ValueError as exc:
        parser.error(f"hex values only: {exc}")
    if len(load.kcv) != 3:
        parser.error("--kcv is 3 bytes (6 hex digits)")
    try:
        with PinPad(args.port) as pad:
            status = pad.load_initial_key(load)
    except PosError as exc:
        print(f"NOT loaded: {exc}", file=sys.stderr)
        return 1
    print(f"loaded: scheme {status.scheme}, KSN {status.ksn.hex().upper() if status.ksn else '-'}, "
          f"{status.remaining} PINs before the key is exhausted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
