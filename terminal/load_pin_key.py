"""Technician operation: load a new initial DUKPT key into the PIN pad from a TR-31 key block.

    python -m terminal.load_pin_key --port /dev/ttyUSB1 --journal var/journal.db --user 80 \\
        --key-block D0144B1AX00N0200IK10...  [--kcv 3-byte hex] [--second-user 90] [--config terminal.toml]

The key arrives as a TR-31 key block (version D: AES KBPK, or B: TDES KBPK; key usage B1; the initial KSN in
optional block IK for AES DUKPT or KS for TDES DUKPT; docs/protocols/pinpad.md says how to prepare one) — or,
for an acquirer whose PIN blocks go under the sign-on PIK (``[host] pin_key = "pik"``), the terminal master key
as a block of usage K0 (TDES, mode B or D), the same TMK as ``[host] tmk_file`` (docs/protocols/acquirer.md). The
clear key never passes through the terminal: the pad unwraps the block under its key block protection key,
checks the usage, the check value (``--kcv`` and/or the block's KC) and that the KSN does not go back, and only
then replaces its key.

The operator must be a technician (password asked for, never on the command line). When dual control is on
(``[security] key_load_dual = 1`` in the configuration, or set by a supervisor on the terminal), a second
person — another technician or a supervisor — confirms with ``--second-user`` and their own password. A KSN
lower than the pad's current one (a replayed load, which would restart the counter) is refused before anything
is sent, and the pad refuses it too. Every attempt is written to the append-only audit log as ``key_load``
with the KSN and the key's check value (never key material). Exit 0 when loaded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from emv.crypto.tr31 import KEY_ENCRYPTION, KeyBlockError, dukpt_initial_ksn, parse_header
from pos_errors import PosError
from terminal.audit import AuditLog
from terminal.config import Settings, load_settings
from terminal.device_secret import journal_chain_key
from terminal.journal import Journal
from terminal.roles import Action, allowed
from terminal.settings_store import SettingsStore
from terminal.users import User, UserStore
from terminal.wiring import KeyLoadRequest, KeyStatus, load_initial_key

__all__ = ["main", "KsnReplay"]

_SCHEMES = {"A": "aes", "T": "tdes"}


class KsnReplay(PosError):
    """The key block's initial KSN is lower than the one the pad uses now: nothing was sent."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m terminal.load_pin_key", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", required=True, help="PIN pad device path or pyserial URL")
    parser.add_argument("--key-block", required=True, help="the TR-31 key block (ASCII) holding the initial key")
    parser.add_argument("--kcv", default="", help="check value of the key from the custodian's form (3 bytes hex)")
    parser.add_argument("--journal", required=True, help="the terminal's journal database (users, audit log)")
    parser.add_argument("--user", required=True, help="technician's user id; the password is asked for")
    parser.add_argument("--second-user", help="dual control: the second person's user id (technician or "
                        "supervisor); the password is asked for")
    parser.add_argument("--config", help="the terminal's configuration (TOML), for [security] key_load_dual")
    args = parser.parse_args(argv)
    try:
        kcv = bytes.fromhex(args.kcv)
        header = parse_header(args.key_block)
        tmk = header.key_usage == KEY_ENCRYPTION  # the master/session TMK (usage K0): no KSN, no counter
        scheme, ksn = ("tmk", b"") if tmk else (_SCHEMES.get(header.algorithm, ""), dukpt_initial_ksn(header))
    except (ValueError, KeyBlockError) as exc:
        parser.error(f"not a usable key block or KCV: {exc}")
    if len(kcv) not in (0, 3):
        parser.error("--kcv is 3 bytes (6 hex digits)")
    settings = load_settings(args.config) if args.config else Settings()
    journal = Journal(args.journal, chain_key=journal_chain_key(settings))
    settings = SettingsStore(journal).apply(settings)
    audit = AuditLog(journal)
    users = UserStore(journal, lock_s=settings.security.lock_s, max_failed=settings.security.max_failed)
    operator = _login(users, audit, args.user, Action.KEY_LOAD, "not a technician")
    if operator is None:
        return 1
    second = None
    if settings.security.key_load_dual:
        if not args.second_user or args.second_user == operator.user_id:
            audit.record(operator.user_id, "refused", "key_load: dual control needs a second person")
            print("NOT loaded: dual control is on: a second person must confirm (--second-user)", file=sys.stderr)
            return 1
        second = _login(users, audit, args.second_user, Action.KEY_LOAD_WITNESS, "not a technician or supervisor")
        if second is None:
            return 1
    what = ("terminal master key" if tmk else f"{scheme}, KSN {ksn.hex().upper()}") + (
        f", second person {second.user_id}" if second else "")

    def refuse_replay(status: KeyStatus) -> None:
        if status.scheme == scheme and status.ksn is not None and len(status.ksn) == len(ksn) and ksn < status.ksn:
            raise KsnReplay(f"the key block's KSN {ksn.hex().upper()} is lower than the PIN pad's current KSN "
                            f"{status.ksn.hex().upper()}: a replayed key load")

    try:
        status, loaded_kcv = load_initial_key(args.port, KeyLoadRequest(args.key_block, kcv), refuse_replay)
    except PosError as exc:
        audit.record(operator.user_id, "key_load", f"NOT loaded {what}: {exc}")
        print(f"NOT loaded: {exc}", file=sys.stderr)
        return 1
    audit.record(operator.user_id, "key_load", f"loaded {what}, KCV {loaded_kcv.hex().upper()}")
    if tmk:
        print(f"loaded: terminal master key, KCV {loaded_kcv.hex().upper()}")
        return 0
    print(f"loaded: scheme {status.scheme}, KCV {loaded_kcv.hex().upper()}, KSN "
          f"{status.ksn.hex().upper() if status.ksn else '-'}, {status.remaining} PINs before the key is exhausted")
    return 0


def _login(users: UserStore, audit: AuditLog, user_id: str, action: Action, refusal: str) -> User | None:
    """The user when the password is right and the role may do ``action``; None (said and audited) if not."""
    result = users.login(user_id, getpass.getpass(f"password of {user_id}: "))
    if result.user is None or not allowed(result.user.role, action):
        why = refusal if result.user else "login failed"
        audit.record(result.user.user_id if result.user else "-", "refused", f"key_load: {why}")
        print(f"NOT loaded: {user_id} may not load keys ({why})", file=sys.stderr)
        return None
    return result.user


if __name__ == "__main__":
    sys.exit(main())
