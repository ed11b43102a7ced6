"""The simulated world around one terminal: card reader, PIN pad and printer on ptys, acquirer and carrier on
loopback, and the real terminal application wired to them exactly as ``pos-terminal`` would be to hardware.

Nothing here reaches into the terminal: keys go in through ``terminal.press`` (the keypad is the terminal's own
hardware), everything else crosses a pty or a socket.

>>> DEMO_USERS[0][:3]
('01', 'Cashier Li / 李收银', 'cashier')
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drivers.card_reader_codec import Led
from drivers.host.header import FrameHeader
from emv.crypto.pin import derive_initial_key
from firmware_image.flash import SimFlash
from firmware_image.image import Version, make_image
from firmware_image.keys import generate, public_pem, save_private
from firmware_image.slots import mark_tried, set_pending
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from sim.backends.alipay import AlipaySim
from sim.backends.carrier import CarrierSim
from sim.backends.pki import capk_entries
from sim.backends.wallet import WalletSim
from sim.backends.wechatpay import WeChatPaySim
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from sim.devices.contactless_cards import tap_applet
from sim.devices.pinpad import PinPadSim
from sim.devices.printer import PrinterSim
from sim.devices.pty import LineFaults, PtyPort
from sim.devices.reader import Applet, ReaderSim
from sim.devices.scanner import ScannerSim
from sim.devices.stripes import STRIPE_CARDS, STRIPE_PROFILES, tracks_of
from sim.runner.trace_dir import private_tree
from terminal.app import TerminalApp
from terminal.config import Settings
from terminal.screens import Screen
from terminal.secret_file import private_dir
from terminal.users import hash_password
from terminal.wiring import build_services

__all__ = ["SimWorld", "DEMO_USERS", "DEMO_BDK", "DEMO_KSN", "DEMO_DEVICE_CLASS", "demo_flash"]

_TRACED = ("reader", "pinpad", "printer", "scanner")

# (id, name, role, password) — the simulator's built-in accounts, documented in the README.
DEMO_USERS: tuple[tuple[str, str, str, str], ...] = (
    ("01", "Cashier Li / 李收银", "cashier", "1111"),
    ("90", "Supervisor Wang / 王主管", "supervisor", "9999"),
    ("80", "Technician Zhao / 赵技术", "technician", "8888"),
)
# Test keys only: the AES-128 BDK and initial KSN the simulated PIN pad and acquirer share.
DEMO_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
DEMO_KSN = bytes.fromhex("123456789012345600000000")
DEMO_HEADER = {"tpdu": "6000030000", "app_header": "603100310701"}  # UnionPay-style: NII 0003, POS type 60 v31
# The terminal's device secret on the test bench: an environment variable (one random value per process, which
# child processes such as pos-terminal inherit), never a file in the world's work directory beside the journal.
SIM_DEVICE_SECRET_ENV = "POS_SIM_DEVICE_SECRET"


DEMO_DEVICE_CLASS = "iotsim-pos-1"


def demo_flash(directory: Path, *, trial: bool = True) -> tuple[Path, Path]:
    """A flash file with a confirmed 1.0.0 in slot 0 and (``trial``) a 1.1.0 on its test boot in slot 1, signed
    with a development key made here; returns (flash, public key PEM). Both images carry security counter 1, so
    the supervisor can revert even after confirming 1.1.0 (a higher counter would make 1.0.0 a refused downgrade).
    """
    key = generate("ed25519")  # DEVELOPMENT key, lives only in the world's temp dir
    (directory / "fw-dev-key.pem").unlink(missing_ok=True)  # a work directory used again (--trace-dir, --workdir)
    save_private(key, directory / "fw-dev-key.pem")
    public = directory / "fw-dev-key.pub"
    public.touch(mode=0o600)  # nothing in a world's work directory is readable by others
    public.write_bytes(public_pem(key))
    path = directory / "flash.bin"
    with SimFlash.create(path, slot_sectors=4, sector_size=1024) as flash:
        for slot, version in enumerate(("1.0.0", "1.1.0")[:2 if trial else 1]):
            payload = f"pos-terminal {version} (simulator demo image)\n".encode() * 16
            image = make_image(payload, version=Version.parse(version), key=key, security_counter=1,
                               device_class=DEMO_DEVICE_CLASS)
            image += bytes([0xFF]) * (-len(image) % flash.geometry.write_size)
            flash.write(flash.geometry.slot_base(slot), image)
            set_pending(flash, slot, permanent=slot == 0)
            if slot == 1:
                mark_tried(flash, slot)  # the launcher started its one trial boot: it runs now, unconfirmed
    return path, public


@functools.cache
def _demo_hash(user_id: str, password: str) -> str:
    # Deterministic salt so a simulator start costs one scrypt per user, with no secret to protect; remembered per
    # process (50 ms of CPU each: a test process starts hundreds of worlds).
    return hash_password(password, salt=hashlib.sha256(user_id.encode()).digest()[:16])


# The simulator's default fees and limits (a scenario's [world.fees.<channel>] replaces a channel's entry). Wallets
# charge the platforms' usual 0.6 % (at least ￥0.10), at most ￥500 a payment and ￥200 per SIM per day; the
# UnionPay QR 0.38 %, at most ￥100 a payment (small amounts without PIN). Cards carry no customer fee here: the
# acquirer's magic amounts (decline codes, timeouts) must reach the host unchanged; ``min_fee_fen`` with a rate
# is the card-fee shape a real deployment would configure (config/terminal.example.toml).
SIM_FEES: dict[str, dict[str, int]] = {
    "wechat": {"rate_bps": 60, "min_fee_fen": 10, "max_minor": 50000, "daily_minor": 20000},
    "alipay": {"rate_bps": 60, "min_fee_fen": 10, "max_minor": 50000, "daily_minor": 20000},
    "emvqr": {"rate_bps": 38, "max_minor": 10000},
}


class SimWorld:
    """Start with ``start()``; ``stop()`` tears everything down. ``overrides`` patch the generated config;
    ``faults`` is the line quality of every serial link (reader, PIN pad, printer). The acquirer link is mutual TLS
    with MACs (``sim.backends.acquirer_security``) unless ``secure_host=False`` (the bench's plaintext baseline)."""

    DEVICES = ("reader", "pinpad", "printer")

    def __init__(self, *, workdir: str | Path | None = None, baud: int | None = None,
                 overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 faults: LineFaults | None = None, secure_host: bool = True, trace: bool = False) -> None:
        self.trace = trace  # keep every serial trace (spy://, masked) and card transcript in the work directory
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="pos-sim-")
        self.workdir = private_dir(Path(workdir) if workdir else Path(self._tmp.name))  # type: ignore[union-attr]
        self.baud = baud
        self.overrides = overrides or {}
        carrier = dict(self.overrides.get("carrier", {}))  # [world.carrier] reverse_window_s: the simulator's, not
        window = carrier.pop("reverse_window_s", None)     # the terminal's
        if window is not None:
            self.overrides = {**self.overrides, "carrier": carrier}
        self.cards = {**CATALOGUE, **STRIPE_PROFILES}  # chip cards, then magstripe test cards (sim/devices/stripes.py)
        self.reader = ReaderSim(baud=baud, faults=faults)
        initial_key = derive_initial_key("aes", DEMO_BDK, DEMO_KSN)
        self.pinpad = PinPadSim(scheme="aes", initial_key=initial_key, initial_ksn=DEMO_KSN, baud=baud,
                                faults=faults)
        self.printer = PrinterSim(baud=baud, faults=faults)
        tid = str(self.overrides.get("terminal", {}).get("id", "SIM00001"))
        self.host_security = AcquirerSecurity.create(self.workdir / "acquirer-tls", tid) if secure_host else None
        if self.host_security is not None:  # the technician loaded the same TMK into the PIN pad (pin_key = "pik")
            self.pinpad.tmk = self.host_security.tmks[tid]
            if self.overrides.get("host", {}).get("key_scheme") == "dukpt":  # MACs under the pad's DUKPT keys
                self.host_security.dukpt = ("aes", DEMO_BDK)
        self.header = {**DEMO_HEADER, **{k: v for k, v in self.overrides.get("host", {}).items() if k in DEMO_HEADER}}
        self.acquirer = AcquirerSim(bdk=DEMO_BDK, pin_scheme="aes", cards=self.cards, security=self.host_security,
                                    header=FrameHeader.from_config(self.header["tpdu"], self.header["app_header"]))
        self.carrier = CarrierSim() if window is None else CarrierSim(reverse_window_s=float(window))
        self.scanner = ScannerSim(mode="triggered", baud=baud)
        self.wallet = WalletSim()
        # WeChat Pay and Alipay on their real merchant APIs, keeping their books in the shared wallet platform
        self.wechatpay = WeChatPaySim(self.wallet, workdir=str(self.workdir))
        self.alipay = AlipaySim(self.wallet, workdir=str(self.workdir))
        self.terminal: TerminalApp | None = None
        self._tap_cards: dict[str, Applet] = {}  # contactless cards tapped so far, by key: one card each
        self.settings: Settings | None = None
        self._config: dict[str, dict[str, Any]] | None = None  # made once, by the first config()

    def config(self) -> dict[str, dict[str, Any]]:
        """The terminal's configuration for this world; the first call starts the simulated devices and back ends,
        a later call returns (a copy of) the same configuration and starts nothing again."""
        if self._config is None:
            self._config = self._first_config()
        return copy.deepcopy(self._config)

    def _first_config(self) -> dict[str, dict[str, Any]]:
        os.environ.setdefault(SIM_DEVICE_SECRET_ENV, os.urandom(32).hex())
        reader, pinpad, printer = self.reader.start(), self.pinpad.start(), self.printer.start()
        host, port = self.acquirer.start()
        url = self.carrier.start()
        scanner, wallet_url = self.scanner.start(), self.wallet.start()
        data: dict[str, Any] = {
            "terminal": {"id": "SIM00001", "merchant_id": "898440154110001",
                         "journal": str(self.workdir / "journal.db"), "profile": "test"},
            "emv": {"capks": capk_entries()},  # the simulator's CA: a test key, trusted by profile "test" only
            "devices": {"reader": reader, "pinpad": pinpad, "printer": printer, "scanner": scanner},
            "wallet": {"url": wallet_url, "timeout_s": 3.0, "poll_interval_s": 0.5, "merchant_timeout_s": 20.0,
                       "app_id": self.wallet.app_id, "ca_file": self.wallet.ca_file,
                       "app_secret_file": self.wallet.write_secret(str(self.workdir / "wallet-app-secret")),
                       "insecure_plaintext": not self.wallet.ca_file},
            "host": {"address": host, "port": port, "timeout_s": 3.0, "connect_timeout_s": 1.0},
            "carrier": {"url": url, "timeout_s": 3.0, "poll_interval_s": 0.3, "app_id": self.carrier.app_id,
                        "app_secret_file": self.carrier.write_secret(str(self.workdir / "carrier-app-secret")),
                        "ca_file": self.carrier.ca_file, "insecure_plaintext": not self.carrier.ca_file},
            "timeouts": {"card_s": 60.0, "pin_s": 60.0},
            "security": {"device_secret_env": SIM_DEVICE_SECRET_ENV},  # a test-bench secret, not in the workdir
            "users": [{"id": u, "name": n, "role": r, "password_hash": _demo_hash(u, p)}
                      for u, n, r, p in DEMO_USERS],
        }
        data["fees"] = dict(SIM_FEES)  # realistic defaults, visible on the channel list (issue 14 item 7)
        sec = self.host_security
        data["host"].update({"ca_file": sec.ca.ca_file, "server_name": "localhost", "client_cert": sec.client_cert,
                             "client_key": sec.client_key, "tmk_file": sec.tmk_file,
                             "tmk_kbpk_file": sec.tmk_kbpk_file} if sec is not None else
                            {"insecure_plaintext": True, "key_scheme": "none"})
        data["host"].update(self.header)  # the dialect's TPDU + application header (docs/protocols/acquirer.md)
        if "flash" not in self.overrides.get("firmware", {}):  # flash = "" in a scenario: no slots configured
            flash, public = demo_flash(self.workdir)
            data["firmware"] = {"flash": str(flash), "public_key": str(public), "device_class": DEMO_DEVICE_CLASS}
        data.update(self._platform_config())
        for section, values in self.overrides.items():
            data.setdefault(section, {}).update(values)
        if self.trace:
            data["devices"].update({name: f"spy://{path}?file={self.workdir / f'trace-{name}.txt'}"
                                    for name, path in data["devices"].items() if name in _TRACED})
            data.setdefault("emv", {})["transcripts_dir"] = str(self.workdir / "transcripts")
        return data

    def _platform_config(self) -> dict[str, dict[str, Any]]:
        """The [wechatpay] and [alipay] sections a technician would write, with this world's test credentials."""
        wx_url, ali_url = self.wechatpay.start(), self.alipay.start()
        private, public = self.alipay.write_keys(str(self.workdir))
        return {"wechatpay": {"url": wx_url, "appid": self.wechatpay.appid, "mch_id": self.wechatpay.mch_id,
                              "api_key_file": self.wechatpay.write_key(str(self.workdir / "wechatpay-api-key")),
                              "ca_file": self.wechatpay.ca_file, "timeout_s": 3.0,
                              **dict(zip(("client_cert_file", "client_key_file"), self.wechatpay.client_cert or (),
                                          strict=False))},
                "alipay": {"url": ali_url, "app_id": self.alipay.app_id, "app_private_key_file": private,
                           "alipay_public_key_file": public, "ca_file": self.alipay.ca_file, "timeout_s": 3.0}}

    def start(self) -> SimWorld:
        if self.terminal is not None:  # a second terminal on the same ptys and journal: refused, nothing touched
            raise RuntimeError("this SimWorld's terminal is running already: stop() it, or make another SimWorld")
        self.settings = Settings.from_dict(self.config())
        if self.trace:  # the simulator's own files (test CAs, certificates) owner-only, like the terminal's
            private_tree(self.workdir)
        self.services = build_services(self.settings)
        self.terminal = TerminalApp(self.services)
        self.terminal.start()
        return self

    # --- what a person does -----------------------------------------------------------------------------

    def insert_card(self, key: str) -> None:
        if key in STRIPE_CARDS:
            chip = STRIPE_CARDS[key].chip_applet()
            if chip is None:
                raise ValueError(f"{key} has no chip: swipe it")
            card = chip
        else:
            card = CardApplet(self.cards[key])
        self.pinpad.card_channel = card.process  # offline PIN: the pad VERIFYs with the card in the reader
        self.reader.insert(card)

    def swipe_card(self, key: str) -> None:
        """Swipe any test card's magnetic stripe (chip cards have one too, with a chip service code)."""
        track1, track2 = tracks_of(self.cards[key])
        self.reader.swipe(track2, track1)

    def tap_card(self, key: str, *, collide_with: str | None = None, leave_after: int | None = None,
                 tear_on_ins: int | None = None) -> None:
        """Hold a contactless card or phone (``sim.devices.contactless_cards.TAP_KEYS``) over the reader;
        ``collide_with``: a second card held with it; ``leave_after``: pulled away after that many APDUs;
        ``tear_on_ins``: pulled away while answering that command. The same key is the same card all along (its
        ATC and memory go on between taps)."""
        if key not in self._tap_cards:
            self._tap_cards[key] = tap_applet(key)
        card = self._tap_cards[key]
        self.reader.tap(card, also=tap_applet(collide_with) if collide_with else None, leave_after=leave_after,
                        tear_on_ins=tear_on_ins)

    def remove_card(self) -> None:
        self.pinpad.card_channel = None
        self.reader.remove()

    def save_receipt_png(self) -> str:
        """The last receipt as a PNG in the work directory (needs Pillow); returns its path."""
        path = self.workdir / f"receipt-{len(self.printer.receipts)}.png"
        return str(self.printer.save_png(path))

    def device(self, name: str) -> ReaderSim | PinPadSim | PrinterSim:
        if name not in self.DEVICES:
            raise ValueError(f"no device {name!r}; devices: {', '.join(self.DEVICES)}")
        device: ReaderSim | PinPadSim | PrinterSim = getattr(self, name)
        return device

    def ports(self, name: str) -> list[PtyPort]:
        """The serial lines named: one device, or ``all``."""
        return [self.device(n).port for n in (self.DEVICES if name == "all" else (name,))]

    def pull(self, name: str) -> None:
        """Pull a device's cable out (the terminal's port fails); ``plug`` puts it back at the same path."""
        self.device(name).pull()

    def plug(self, name: str) -> None:
        self.device(name).plug()

    def toggle_cable(self, name: str) -> bool:
        """Pull the cable if it is in, else plug it back; returns whether it is in now."""
        device = self.device(name)
        (device.pull if device.connected else device.plug)()
        return device.connected

    def set_faults(self, name: str, faults: LineFaults | None) -> None:
        for port in self.ports(name):
            port.set_faults(faults)
    def show_code(self, wallet: str, outcome: str = "paid") -> str:
        """The customer holds a fresh payment code of ``wallet`` (wechat, alipay, emvqr) to the scanner."""
        code = self.wallet.make_code(wallet, outcome)
        self.scanner.show(code)
        return code

    def phone_scan(self, pay: bool = True) -> str:
        """The customer scans the QR on the terminal's screen with a phone and pays (or refuses)."""
        payload = self.screen.qr
        if not payload:
            return "no QR on the terminal's screen"
        return self.wallet.phone_scan(payload, pay)

    @property
    def screen(self) -> Screen:
        assert self.terminal is not None  # noqa: S101 - start() first
        return self.terminal.screen

    def wait_for(self, state: str, timeout_s: float = 10.0) -> Screen:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.screen.state == state:
                return self.screen
            time.sleep(0.01)
        raise TimeoutError(f"expected screen '{state}', still on '{self.screen.state}':\n{self.screen.text()}")

    def status_lines(self) -> list[str]:
        approved = sum(1 for e in self.acquirer.ledger if e.response_code == "00" and not e.reversed)
        return [f"Host: {len(self.acquirer.ledger)} requests, {approved} approved",
                f"Carrier: {len(self.carrier.ledger)} top-ups applied",
                f"Printer: {len(self.printer.receipts)} receipts",
                "Cables: " + "  ".join(f"{n} {'✓' if self.device(n).connected else '✗ pulled'}"
                                       for n in self.DEVICES),
                "Wallet: " + (", ".join(f"{k} {v}" for k, v in self.wallet.counts().items() if v) or "no orders"),
                self.reader_lights()]

    def reader_lights(self) -> str:
        """The contactless reader's four lights, beeps and field, as a person at the counter sees them."""
        r = self.reader
        lights = " ".join(("●" if r.leds & led else "○") + name for led, name in (
            (Led.BLUE, "blue"), (Led.YELLOW, "yellow"), (Led.GREEN, "green"), (Led.RED, "red")))
        field = "card in the field" if r.card_in_field else "field empty"
        return f"Tap: {lights} · {len(r.beeps)} beeps · {field}"

    def toggle_fault(self, name: str) -> bool:
        """Flip one device fault a person can cause at the counter; returns whether it is now on."""
        if name == "printer_paper_out":
            self.printer.paper_out = not self.printer.paper_out
            return self.printer.paper_out
        sec = self.host_security
        if name == "acquirer_tls_expired" and sec is not None:  # the bank's certificate expires (or is renewed)
            self.acquirer.set_tls_fault(None if sec.tls_fault == "expired" else "expired")
            return sec.tls_fault == "expired"
        if name == "acquirer_bad_mac" and sec is not None:  # the bank's approvals arrive with a wrong MAC
            sec.bad_mac_answers = not sec.bad_mac_answers
            return sec.bad_mac_answers
        if name == "acquirer_partial":  # the bank approves only half of every purchase (10), or decides again
            self.acquirer.force_response(None if self.acquirer.forced_response == "10" else "10")
            return self.acquirer.forced_response == "10"
        if name == "acquirer_idle_race":  # the bank's idle timer fires just as the next message arrives (once)
            self.acquirer.idle.arm_race(not self.acquirer.idle.race_armed)
            return self.acquirer.idle.race_armed
        if name == "acquirer_forged_a0" and sec is not None:  # the next approval replaced by an unMACed A0 (or not)
            sec.forged_a0_purchases = 0 if sec.forged_a0_purchases else 1
            return sec.forged_a0_purchases > 0
        raise ValueError(f"unknown fault {name!r}")

    def stop(self) -> None:
        if self.terminal is not None:
            self.terminal.stop()
            self.services.close()
        for part in (self.reader, self.pinpad, self.printer, self.acquirer, self.carrier, self.scanner, self.wallet,
                     self.wechatpay, self.alipay):
            try:
                part.stop()
            except Exception:  # noqa: BLE001, S110 - best effort teardown of simulated parts
                pass
        if self._tmp is not None:
            self._tmp.cleanup()
