"""Technician operation: load a new initial DUKPT key into the PIN pad, checked by its key check value.

    python -m terminal.load_pin_key --port /dev/ttyUSB1 --scheme aes \\
        --key <IK enciphered under the pad's key-loading key, hex> --ksn <initial KSN, hex> --kcv <3 bytes, hex>

The key arrives enciphered (the clear key never passes through the terminal); the pad deciphers it, compares
its check value with ``--kcv`` and only then replaces its key. Prints the pad's key status afterwards.
Exit 0 when loaded, 1 when the pad refused (KCV mismatch, busy) or could not be reached.

With ``--journal FILE --user ID`` (the terminal's journal database) the operator must be a technician: the
password is asked for (never on the command line), and the attempt — loaded, refused or failed — is written to
the terminal's append-only audit log as ``key_load`` (KSN only, never key material).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from pos_errors import PosError
from terminal.audit import AuditLog
from terminal.journal import Journal
from terminal.roles import Action, allowed
from terminal.users import UserStore
from terminal.wiring import KeyLoadRequest, load_initial_key

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
    parser.add_argument("--journal", help="the terminal's journal database: check the operator, audit the load")
    parser.add_argument("--user", help="technician's user id (with --journal); the password is asked for")
    args = parser.parse_args(argv)
    try:
        load = KeyLoadRequest(args.scheme, bytes.fromhex(args.key), bytes.fromhex(args.ksn), bytes.fromhex(args.kcv))
    except ValueError as exc:
        parser.error(f"hex values only: {exc}")
    if len(load.kcv) != 3:
        parser.error("--kcv is 3 bytes (6 hex digits)")
    if args.journal and not args.user:
        parser.error("--journal needs --user (the technician doing the load)")
    audit = _authorised(args.journal, args.user) if args.journal else None
    if args.journal and audit is None:
        return 1
    try:
        status = load_initial_key(args.port, load)
    except PosError as exc:
        print(f"NOT loaded: {exc}", file=sys.stderr)
        if audit:
            audit.record(args.user, "key_load", f"failed, KSN {load.initial_ksn.hex().upper()}: {exc}")
        return 1
    if audit:
        audit.record(args.user, "key_load", f"loaded {status.scheme}, KSN {load.initial_ksn.hex().upper()}")
    print(f"loaded: scheme {status.scheme}, KSN {status.ksn.hex().upper() if status.ksn else '-'}, "
          f"{status.remaining} PINs before the key is exhausted")
    return 0


def _authorised(journal_path: str, user_id: str) -> AuditLog | None:
    """The audit log when ``user_id`` is a technician with the right password; None (said and audited) if not."""
    journal = Journal(journal_path)
    audit = AuditLog(journal)
    result = UserStore(journal).login(user_id, getpass.getpass(f"password of {user_id}: "))
    if result.user is None or not allowed(result.user.role, Action.KEY_LOAD):
        why = "not a technician" if result.user else result.message
        audit.record(user_id, "refused", f"key_load: {why}")
        print(f"NOT loaded: {user_id} may not load keys ({why})", file=sys.stderr)
        return None
    return audit


if __name__ == "__main__":
    sys.exit(main())
