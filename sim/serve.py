"""``pos-sim --serve``: every simulated device and back end, without the terminal, for a real ``pos-terminal``.

It starts the card reader, PIN pad, printer and scanner on pseudo-terminals and the acquirer, carrier, wallet
platform and the WeChat Pay / Alipay gateways (HTTPS, signed both ways) on loopback, writes the terminal
configuration that points at them (``terminal.toml`` in the work directory), prints one JSON object on stdout —
endpoints, ptys, the config path, the demo accounts and the test key material — and runs until interrupted
(Ctrl-C, SIGTERM, or ``quit`` on stdin). Lines on stdin act as the
customer: ``insert CARD``, ``swipe CARD``, ``tap CARD`` (contactless), ``remove``, ``pin 1234 ENTER`` (keys on
the PIN pad), ``code wechat|alipay|emvqr [OUTCOME]``, ``phone QR_PAYLOAD [refuse]``, ``receipt`` (the last one
printed), ``cards``.

The terminal's maintenance port runs too: the update agent (POSFW1 and SMP) with its own flash file
``device-flash.bin``, booting what is flashed; its pty is key ``maintenance`` of the JSON.

>>> _toml_value("a\\"b"), _toml_value(1.5), _toml_value(True)
('"a\\\\"b"', '1.5', 'true')
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from sim.devices.contactless_cards import TAP_KEYS
from sim.devices.update_device import UpdateDevice, device_for_serve
from sim.runner.world import DEMO_BDK, DEMO_DEVICE_CLASS, DEMO_KSN, DEMO_USERS, SIM_DEVICE_SECRET_ENV, SimWorld

__all__ = ["serve", "to_toml", "describe"]

_HELP = ("commands: insert CARD | swipe CARD | tap CARD | remove | pin KEYS | code WALLET [OUTCOME] | receipt | "
         "cards | phone QR_PAYLOAD [refuse] | quit")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):  # an inline table ([emv] capks, [fees] channel = { rate_bps = 60, … })
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def to_toml(config: Mapping[str, Any]) -> str:
    """The terminal configuration as TOML: tables first, arrays of tables (``users``) after."""
    lines: list[str] = []
    for section, values in config.items():
        if isinstance(values, list):
            for item in values:
                lines += [f"[[{section}]]", *(f"{k} = {_toml_value(v)}" for k, v in item.items()), ""]
        else:
            lines += [f"[{section}]", *(f"{k} = {_toml_value(v)}" for k, v in values.items()), ""]
    return "\n".join(lines)


def describe(world: SimWorld, config: Mapping[str, Any], config_path: Path) -> dict[str, Any]:
    """What a technician needs to point a terminal at this world (test credentials only)."""
    host = config["host"]
    return {
        "config": str(config_path),
        "endpoints": {
            "acquirer": {"scheme": "tls" if not host.get("insecure_plaintext") else "tcp", "host": host["address"],
                         "port": host["port"], "server_name": host.get("server_name", ""),
                         "ca_file": host.get("ca_file", ""), "client_cert": host.get("client_cert", ""),
                         "client_key": host.get("client_key", ""), "tmk_file": host.get("tmk_file", ""),
                         "tmk_kbpk_file": host.get("tmk_kbpk_file", ""),
                         "tpdu": host.get("tpdu", ""), "app_header": host.get("app_header", ""),
                         "key_scheme": host.get("key_scheme", "master_session")},
            "carrier": {"url": config["carrier"]["url"], "ca_file": config["carrier"]["ca_file"],
                        "app_id": config["carrier"]["app_id"],
                        "app_secret_file": config["carrier"]["app_secret_file"]},
            "wallet": {"url": config["wallet"]["url"], "ca_file": config["wallet"]["ca_file"],
                       "app_id": config["wallet"]["app_id"], "app_secret_file": config["wallet"]["app_secret_file"]},
            **{name: dict(config[name]) for name in ("wechatpay", "alipay") if name in config},
        },
        "devices": {name: path for name, path in config["devices"].items() if isinstance(path, str)},
        "firmware": config.get("firmware", {}),
        "users": [{"id": u, "name": n, "role": r, "password": p} for u, n, r, p in DEMO_USERS],
        "test_keys": {"pin_bdk_aes128": DEMO_BDK.hex().upper(), "pin_initial_ksn": DEMO_KSN.hex().upper()},
        # the terminal's device secret (test bench): export it before starting pos-terminal with this config
        "environment": {SIM_DEVICE_SECRET_ENV: os.environ.get(SIM_DEVICE_SECRET_ENV, "")},
        "cards": sorted(world.cards),
        "tap_cards": list(TAP_KEYS),
        "stdin": _HELP,
        # how long each simulated back end keeps an idle connection before closing it (as real hosts do)
        "idle_timeout_s": {name: getattr(world, name).idle.idle_timeout_s
                           for name in ("acquirer", "carrier", "wallet", "wechatpay", "alipay")},
    }


def _command(world: SimWorld, line: str) -> str:
    words = line.split()
    if not words:
        return ""
    verb, args = words[0].lower(), words[1:]
    try:
        if verb == "insert" and args:
            world.insert_card(args[0])
        elif verb == "swipe" and args:
            world.swipe_card(args[0])
        elif verb == "tap" and args:  # a contactless card or phone held over the reader (TAP_KEYS)
            world.tap_card(args[0])
        elif verb == "remove":
            world.remove_card()
            world.reader.take_away()
        elif verb == "pin" and args:
            for key in args:
                for k in list(key) if key.isdigit() else [key.upper()]:
                    world.pinpad.press(k)
        elif verb == "receipt":
            return "\n".join(world.printer.receipts[-1]) if world.printer.receipts else "no receipt yet"
        elif verb == "code" and args:
            return "showed " + world.show_code(args[0], args[1] if len(args) > 1 else "paid")
        elif verb == "phone" and args:  # the customer's phone scans the QR the terminal shows (its payload)
            return world.wallet.phone_scan(args[0], not (len(args) > 1 and args[1].lower() == "refuse"))
        elif verb == "cards":
            return " ".join(sorted(world.cards)) + " | tap: " + " ".join(TAP_KEYS)
        else:
            return _HELP
    except (KeyError, ValueError) as exc:
        return f"cannot {verb}: {exc}"
    return "ok"


def serve(workdir: str | None = None, baud: int | None = None, *, stdin: TextIO = sys.stdin,
          stdout: TextIO = sys.stdout) -> int:
    world = SimWorld(workdir=workdir, baud=baud)
    device: UpdateDevice | None = None
    stop = threading.Event()
    # SIGTERM (CI stopping it) and SIGHUP (the terminal window it ran in closed) stop it cleanly
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        config = world.config()
        path = world.workdir / "terminal.toml"
        path.write_text(to_toml(config), encoding="utf-8")
        path.chmod(0o600)  # it carries password hashes
        info = describe(world, config, path)
        device, info["maintenance"] = _maintenance(world, config)
        print(json.dumps(info, ensure_ascii=False), file=stdout, flush=True)
        device.start()
        reader = threading.Thread(target=_read_commands, args=(world, stdin, stdout, stop), daemon=True)
        reader.start()
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if device is not None:
            device.stop()
        world.stop()
    return 0


def _maintenance(world: SimWorld, config: Mapping[str, Any]) -> tuple[UpdateDevice, dict[str, object]]:
    """The terminal's maintenance port (update agent: POSFW1 + SMP) with its own flash file."""
    public = config.get("firmware", {}).get("public_key")
    return device_for_serve(world.workdir, DEMO_DEVICE_CLASS, Path(public) if public else None)


def _read_commands(world: SimWorld, stdin: TextIO, stdout: TextIO, stop: threading.Event) -> None:
    for line in stdin:
        if line.strip().lower() not in {"quit", "exit"}:
            answer = _command(world, line)
            if answer:
                print(answer, file=stdout, flush=True)
            continue
        stop.set()  # quit; a closed stdin (started with </dev/null) keeps serving until a signal
        return
