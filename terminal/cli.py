"""``pos-terminal --config FILE``: the application on real serial ports and real endpoints.

The display and keypad of this build are the console: each new screen is printed, and typed lines become key
presses (digits, ENTER, CANCEL, CLEAR, F1–F4; an empty line is ENTER). ``--check-config`` validates the file,
prints the effective settings and runs every check the terminal runs at start (secret files, TLS files, TMK,
wallet channels …) without touching any device, socket or the journal: exit 0 when it would start, 2 if not.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from emv.pan import mask_pan
from pos_errors import ConfigError, PosError
from terminal import log_setup
from terminal.config import Settings, load_settings
from terminal.screens import Key, Screen
from terminal.secret_file import create_private

__all__ = ["main"]

log = logging.getLogger("terminal.cli")
_KEYS: dict[str, Key] = {key.value: key for key in Key}
_RULE = "─" * 48


def _show(screen: Screen) -> None:
    """Print the screen in one write (a message the console thread prints never lands inside it)."""
    state = screen.state
    sys.stdout.write(f"\n── {state} {_RULE[:max(0, 44 - len(state))]}\n{screen.text()}\n{_RULE}\n")
    sys.stdout.flush()
    if screen.qr:  # the merchant-presented QR, drawn in the console for the customer's phone
        import segno  # only when a QR shows: keeps it out of the boot path

        segno.make_qr(screen.qr).terminal(compact=True)
        print(f"QR payload: {screen.qr}", flush=True)  # as text too: a phone simulator (sim/crash/harness.py) reads it


def _keys_of(line: str) -> tuple[list[Key], str]:
    """The keys of one console line (``01 ENTER 1111 ENTER``; an empty line is ENTER) and the first token that is
    not a key (empty when all are)."""
    keys: list[Key] = []
    for token in line.split() or ["ENTER"]:
        for name in token if token.isdigit() else (token.upper(),):
            key = _KEYS.get(name)
            if key is None:
                return [], name
            keys.append(key)
    return keys, ""


def _version() -> str:
    """The installed project's version; run from a firmware image, the image's (its manifest)."""
    import importlib.metadata  # only for --version: importing it costs tens of ms of every boot
    import json
    import zipfile  # with shutil, bz2, lzma: about 3 ms of every boot otherwise

    try:
        return importlib.metadata.version("iotsim-pos")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        with zipfile.ZipFile(Path(__file__).resolve().parents[1]) as image:
            return f"{json.loads(image.read('pos_manifest.json'))['version']} (firmware image)"
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        print(f"{parser.prog} {_version()}")
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pos-terminal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    parser.add_argument("--config", help="TOML file; start from: pos-terminal --example-config > terminal.toml")
    parser.add_argument("--check-config", action="store_true",
                        help="validate, print, run the start checks, then exit (0: would start, 2: would not)")
    parser.add_argument("--verify-audit", action="store_true",
                        help="check the journal's seal chain and the audit log; name the first broken or missing row")
    parser.add_argument("--example-config", action="store_true",
                        help="print the example configuration (every key, with its default) and exit")
    parser.add_argument("--status", action="store_true",
                        help="the last boot's self-test, journal health (open transactions, advice queue, last "
                             "settlement) and versions; changes nothing")
    parser.add_argument("--json", action="store_true", help="--status as JSON")
    args = parser.parse_args(argv)
    if args.example_config:
        from importlib import resources  # only here: importing it costs tens of ms of every boot

        print(resources.files("terminal").joinpath("example_config.toml").read_text(encoding="utf-8"), end="")
        return 0
    if not args.config:
        parser.error("--config FILE is needed (pos-terminal --example-config prints one to start from)")
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"pos-terminal: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.status:
        from terminal import status

        print(status.render(status.collect(settings), as_json=args.json))
        return 0
    if args.check_config:
        for section, values in asdict(settings).items():
            if section == "emv":  # exception-file PANs are shown first 6 / last 4, like everywhere else
                values["exception_file"] = tuple(mask_pan(p.split("-")[0]) for p in values["exception_file"])
            if section != "users":
                print(f"[{section}] {values}")
        print(f"users: {', '.join(u.id for u in settings.users) or 'none (nobody can log in)'}")
        return _check_start(settings)
    if args.verify_audit:
        return _verify_audit(settings)
    if settings.terminal.log_file:  # 0600 in a 0700 directory, like the journal
        create_private(Path(settings.terminal.log_file))
    log_setup.configure(settings.terminal.log_file, terminal_id=settings.terminal.id,
                        max_bytes=settings.terminal.log_max_bytes, backups=settings.terminal.log_backups)
    from terminal.app import TerminalApp
    from terminal.wiring import build_services

    log.info("pos-terminal starting, config %s", args.config)
    try:
        services = build_services(settings)
    except PosError as exc:
        log.error("cannot start: %s", exc)
        print(f"pos-terminal: cannot start: {exc}", file=sys.stderr)
        return 1
    app = TerminalApp(services)
    app.add_listener(_show)
    app.start()
    try:
        for line in sys.stdin:
            keys, unknown = _keys_of(line)
            if unknown:  # the whole line is refused: nothing typed half-way
                sys.stdout.write(f"unknown key {unknown!r}: use digits, ENTER, CANCEL, CLEAR, F1-F4; line ignored\n")
                sys.stdout.flush()
            else:
                app.press_keys(keys)  # handled in order, the screen drawn once after the last (a keypad buffer)
    except KeyboardInterrupt:
        pass
    finally:
        app.stop()
        services.close()
    return 0


def _check_start(settings: Settings) -> int:
    """Run every check the terminal runs at start (``terminal.wiring.START_CHECKS``: the same list), opening
    nothing; 0 when it would start, else 2 with one line per refusal on stderr."""
    from terminal.wiring import START_CHECKS, check_start

    problems = check_start(settings)
    withdrawn = _withdrawn_capks(settings)
    if withdrawn:  # not a refusal: the kernel leaves them out (EMV Book 2 §5.1); the schemes' current keys are needed
        print(f"CA keys past their expiry, not trusted: {withdrawn}")
    for name, problem in problems:
        print(f"pos-terminal: configuration error ({name}): {problem}", file=sys.stderr)
    if problems:
        print(f"start checks: {len(problems)} of {len(START_CHECKS)} refused: the terminal would not start",
              file=sys.stderr)
        return 2
    print(f"start checks: all {len(START_CHECKS)} passed ({', '.join(name for name, _ in START_CHECKS)})")
    return 0


def _withdrawn_capks(settings: Settings) -> str:
    """The CA keys this terminal would trust but for their expiry date, as ``RID/INDEX (YYMMDD)``."""
    import datetime as dt

    from emv.capk import retired
    from emv.config import trusted_capks

    try:
        keys = retired(trusted_capks(asdict(settings.emv), settings.terminal.profile), dt.date.today())
    except ConfigError:  # a bad [emv] section: the "emv" start check names it
        return ""
    return ", ".join(f"{c.rid.hex().upper()}/{c.index:02X} ({c.expiry})" for c in keys)


def _verify_audit(settings: Settings) -> int:
    """Exit 0 when every audit row matches its seal and none is missing; 1 with the first broken or missing row.
    A journal found damaged as it is opened is also taken out of service, exactly as at boot."""
    from terminal.device_secret import journal_chain_key
    from terminal.journal import Journal

    try:
        journal = Journal(settings.terminal.journal, chain_key=journal_chain_key(settings))
    except PosError as exc:
        print(f"pos-terminal: cannot open the journal: {exc}", file=sys.stderr)
        return 1
    try:
        damage = journal.damage or journal.verify(("audit",))
        rows = len(journal.audit_rows(10**9))
    finally:
        journal.close()
    if damage is None:
        print(f"audit log: {rows} rows, every one sealed and in order")
        return 0
    print(f"audit log: first broken or missing row: {damage.row or '?'} ({damage.kind}: {damage.detail})")
    if damage.kept:
        print(f"damaged journal kept at {damage.kept}; the terminal stays out of service until a technician accepts")
    return 1


if __name__ == "__main__":
    sys.exit(main())
