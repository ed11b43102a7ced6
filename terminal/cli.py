"""``pos-terminal --config FILE``: the application on real serial ports and real endpoints.

The display and keypad of this build are the console: each new screen is printed, and typed lines become key
presses (digits, ENTER, CANCEL, CLEAR, F1–F4; an empty line is ENTER). ``--check-config`` validates the file and
prints the effective settings without touching any device.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import segno

from pos_errors import ConfigError, PosError
from terminal.config import load_settings
from terminal.screens import Key, Screen
from terminal.secret_file import create_private

__all__ = ["main"]


def _show(screen: Screen) -> None:
    rule = f"── {screen.state} " + "─" * max(0, 44 - len(screen.state))
    print(f"\n{rule}\n{screen.text()}\n" + "─" * 48, flush=True)
    if screen.qr:  # the merchant-presented QR, drawn in the console for the customer's phone
        segno.make_qr(screen.qr).terminal(compact=True)
        print(f"QR payload: {screen.qr}", flush=True)  # as text too: a phone simulator (sim/crash/harness.py) reads it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pos-terminal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="TOML file, see config/terminal.example.toml")
    parser.add_argument("--check-config", action="store_true", help="validate and print, then exit")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"pos-terminal: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        for section, values in asdict(settings).items():
            if section != "users":
                print(f"[{section}] {values}")
        print(f"users: {', '.join(u.id for u in settings.users) or 'none (nobody can log in)'}")
        return 0
    if settings.terminal.log_file:  # 0600 in a 0700 directory, like the journal
        create_private(Path(settings.terminal.log_file))
    logging.basicConfig(filename=settings.terminal.log_file or None, level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("transitions").setLevel(logging.WARNING)  # it logs every callback at INFO: noise and CPU
    from terminal.app import TerminalApp
    from terminal.wiring import build_services

    try:
        services = build_services(settings)
    except PosError as exc:
        print(f"pos-terminal: cannot start: {exc}", file=sys.stderr)
        return 1
    app = TerminalApp(services)
    app.add_listener(_show)
    app.start()
    try:
        for line in sys.stdin:
            for token in line.split() or ["ENTER"]:
                keys = list(token) if token.isdigit() else [token.upper()]
                for key in keys:
                    if key in Key._value2member_map_:
                        app.press(Key(key))
                    else:
                        print(f"unknown key {key!r}: use digits, ENTER, CANCEL, CLEAR, F1-F4", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        app.stop()
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
