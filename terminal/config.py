"""Terminal configuration from TOML: every key has a default or a clear error naming it.

See ``config/terminal.example.toml`` for every key with an example; ``pos-terminal --config FILE`` reads it and
the simulator builds the same structure for its ptys and loopback ports.

>>> s = Settings.from_dict({"terminal": {"id": "T0000001"}})
>>> s.terminal.id, s.timeouts.pin_s, s.fees.fee("card", 1000)
('T0000001', 60.0, 0)
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from emv.config import terminal_config
from flows.pricing import ChannelLimits, FeeSchedule
from pos_errors import ConfigError
from terminal.config_wallets import WALLET_CHANNEL_ORDER, AlipaySection, WeChatPaySection, check_wallet_channels

__all__ = ["Settings", "TerminalSection", "DevicesSection", "HostSection", "CarrierSection", "WalletSection",
           "TimeoutsSection", "EmvSection", "SecuritySection", "FirmwareSection", "UserEntry",
           "load_settings", "ContactlessSection", "MAX_IDLE_S", "MIN_LOCK_S", "WeChatPaySection", "AlipaySection"]

log = logging.getLogger(__name__)

MAX_IDLE_S = 900.0  # idle logout is capped at 15 minutes (issue 19)
MIN_LOCK_S = 900.0  # a lockout lasts at least 15 minutes (issue 19)


@dataclass(frozen=True)
class TerminalSection:
    id: str = "T0000001"
    merchant_id: str = "898440154110001"
    merchant_name: str = "IoT SIM Top-up Shop / 物联网卡充值点"
    journal: str = "var/journal.db"
    max_amount_minor: int = 100_000
    duplicate_window_s: float = 600.0  # same SIM + amount inside this window needs an explicit confirmation
    log_file: str = ""
    log_max_bytes: int = 5_000_000  # the log rotates at this size ...
    log_backups: int = 5  # ... keeping this many old files
    profile: str = "production"  # "production": live trust anchors only; "test": test keys allowed (simulator)
    refund_window_days: int = 30  # a sale of a closed batch may be refunded (card or wallet) this long after it


@dataclass(frozen=True)
class DevicesSection:
    reader: str = "/dev/ttyS1"
    reader_baud: int = 115200
    pinpad: str = "/dev/ttyS2"
    pinpad_baud: int = 115200
    printer: str = "/dev/ttyS3"
    printer_baud: int = 19200
    scanner: str = "/dev/ttyS4"
    scanner_baud: int = 9600
    scanner_mode: str = "triggered"


@dataclass(frozen=True)
class HostSection:
    address: str = "127.0.0.1"
    port: int = 8583
    timeout_s: float = 15.0
    connect_timeout_s: float = 3.0
    saf_max_attempts: int = 10  # store-and-forward: tries per advice before it stops (supervisor sees it)
    saf_expiry_s: float = 604800.0  # an advice not delivered within a week stops as expired
    # --- mutual TLS and message MACs (docs/protocols/acquirer.md) ---
    ca_file: str = ""  # PEM CA the acquirer's certificate must chain to (only this CA is trusted)
    server_name: str = ""  # the name the acquirer's certificate must carry; "" = address
    client_cert: str = ""  # this terminal's client certificate (PEM), issued by the acquirer
    client_key: str = ""  # its private key (PEM, 0600)
    insecure_plaintext: bool = False  # plain TCP, no TLS (test benches only; warned at boot)
    key_scheme: str = "master_session"  # "master_session" (TMK, sign-on, MAC under the MAK), "dukpt" or "none"
    tmk_file: str = ""  # terminal master key: TR-31 key block, usage K0, mode 0600 (drivers/host/tmk.py)
    tmk_kbpk_file: str = ""  # KBPK the TR-31 TMK block in tmk_file is wrapped under (hex, 0600, another directory)
    pin_key: str = "dukpt"  # online PIN blocks: "dukpt" (PIN pad's DUKPT key, KSN in 53) or "pik" (format 0, PIK)
    tpdu: str = ""  # dialect header: 5-byte TPDU in hex, "60" + acquirer NII + terminal address; "" = none
    app_header: str = ""  # 6-byte application header after the TPDU, hex (e.g. 603100310701); "" = none
    keep_alive_s: float = 60.0  # an idle acquirer connection is kept this long for the next message; 0 = one each


@dataclass(frozen=True)
class CarrierSection:
    """The carrier platform (docs/protocols/carrier-api.md): every request signed with the app secret, HTTPS."""

    url: str = "https://127.0.0.1:8443"
    app_id: str = ""  # issued by the carrier with the app secret
    app_secret_file: str = ""  # file holding the app secret, mode 0600; read at boot
    ca_file: str = ""  # PEM CA(s) the platform's certificate must chain to; "" = the system's trust store
    insecure_plaintext: bool = False  # allow http:// (test benches only)
    timeout_s: float = 10.0
    status_polls: int = 3
    poll_interval_s: float = 1.0
    follow_up_s: float = 5.0  # background follow-up of pending top-ups and reversals
    keep_alive_s: float = 20.0  # the last HTTPS connection is kept this long for the next request; 0 = one each


@dataclass(frozen=True)
class WalletSection:
    """Wallet platform (WeChat Pay / Alipay / EMV QR) and the waits of a QR payment."""

    url: str = "https://127.0.0.1:8090"
    timeout_s: float = 10.0
    poll_interval_s: float = 3.0
    merchant_timeout_s: float = 90.0
    scan_timeout_s: float = 60.0
    qr_expiry_s: int = 120
    mcc: str = "4814"
    account_gui: str = "D156000000000"
    merchant_city: str = "SHENZHEN"
    app_id: str = ""  # issued by the wallet platform with the app secret (requests signed as the carrier's)
    app_secret_file: str = ""  # file holding the app secret, mode 0600; read at boot
    ca_file: str = ""  # PEM CA(s) the platform's certificate must chain to; "" = the system's trust store
    insecure_plaintext: bool = False  # allow http:// (test benches only)
    keep_alive_s: float = 20.0  # the last HTTPS connection is kept this long for the next request; 0 = one each
    channels: tuple[str, ...] = WALLET_CHANNEL_ORDER  # wallet channels offered; app id/secret needed only for these


@dataclass(frozen=True)
class TimeoutsSection:
    idle_s: float = 300.0
    lookup_s: float = 20.0
    card_s: float = 60.0
    pin_s: float = 60.0
    result_s: float = 60.0
    health_s: float = 300.0  # background device check while idle; 0 = off

    def __post_init__(self) -> None:  # issue 19: an unattended session logs out within 15 minutes
        if not 0 < self.idle_s <= MAX_IDLE_S:
            log.warning("timeouts.idle_s %s clamped to %s s", self.idle_s, MAX_IDLE_S)
            object.__setattr__(self, "idle_s", MAX_IDLE_S)


@dataclass(frozen=True)
class SecuritySection:
    lock_s: float = 900.0  # how long too many wrong passwords lock an account
    max_failed: int = 5  # wrong passwords in a row that lock it
    key_load_dual: int = 0  # 1: loading a PIN key needs a second person (dual control, terminal.load_pin_key)
    device_secret_file: str = ""  # 0600 file holding the device secret (not beside the journal); PAN sealing key
    device_secret_env: str = ""  # test benches only: environment variable holding the secret as hex (simulator)

    def __post_init__(self) -> None:  # issue 19: a lockout lasts at least 15 minutes
        if self.lock_s < MIN_LOCK_S:
            log.warning("security.lock_s %s raised to %s s", self.lock_s, MIN_LOCK_S)
            object.__setattr__(self, "lock_s", MIN_LOCK_S)


@dataclass(frozen=True)
class FirmwareSection:
    """The A/B flash the supervisor's Firmware screen shows; empty ``flash``: no slots configured."""

    flash: str = ""  # the flash file (simulated NOR flash, see docs/firmware.md)
    public_key: str = ""  # PEM the launcher trusts; when set the screen says why it would refuse an image
    device_class: str = "iotsim-pos-1"

    def check(self) -> None:
        """Raises ConfigError naming the bad key."""
        if not _DEVICE_CLASS.fullmatch(self.device_class):
            raise ConfigError(f"firmware.device_class must be 1-64 letters, digits, '.', '_' or '-', "
                              f"not {self.device_class!r}")
        for key in ("flash", "public_key"):
            value = getattr(self, key)
            if value != value.strip() or "\0" in value:
                raise ConfigError(f"firmware.{key} must be a file path, not {value!r}")
        if self.public_key and not self.flash:
            raise ConfigError("firmware.public_key is set but firmware.flash is not: name the flash file too")


_DEVICE_CLASS = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class EmvSection:
    terminal_type: str = "22"
    capabilities: str = "E0F8C8"
    additional_capabilities: str = "6000F0A001"
    aids: tuple[Mapping[str, Any], ...] = ({"aid": "A000000333010101", "label": "UnionPay Debit"},
                                           {"aid": "A000000333010102", "label": "UnionPay Credit"},
                                           {"aid": "A0000000031010", "label": "Visa"},
                                           {"aid": "A0000000041010", "label": "Mastercard"})
    floor_limit_minor: int = 0
    # checked and turned into the kernel's configuration by emv.config.terminal_config (names the bad key)
    country_code: str = "0156"
    currency_code: str = "0156"
    include_test_capks: bool = False  # the schemes' test CA keys: profile "test" only
    capks: tuple[Mapping[str, Any], ...] = ()
    revoked: tuple[str, ...] = ()
    exception_file: tuple[str, ...] = ()
    approve_offline_when_unable_online: bool = False
    cardholder_selection: bool = False  # offer several applications to the customer on the PIN pad
    transcripts_dir: str = ""  # when set, every card session is saved there as a PAN-masked JSON transcript


_CL_LIMITS = ("limit_minor", "floor_limit_minor", "cvm_required_limit_minor")


@dataclass(frozen=True)
class ContactlessSection:
    """The reader's contactless side (EMV Book B §3.1.1 limits, the same for every combination); -1 = absent."""

    enabled: bool = True  # offer "Tap / 闪付": the reader has an antenna
    limit_minor: int = 100_000  # Reader Contactless Transaction Limit: at or above, insert the card instead
    floor_limit_minor: int = 0  # Reader Contactless Floor Limit: above it the card must go online
    cvm_required_limit_minor: int = 100_000  # Reader CVM Required Limit: at or above, PIN / CDCVM / signature
    status_check: bool = False
    tap_timeout_s: float = 30.0
    presentations: int = 3  # a card pulled away too early may be presented this many times
    # per combination: RID (10 hex digits) -> any of the three limits and status_check, over the ones above
    per_aid: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def limits_for(self, rid: str) -> dict[str, Any]:
        """The limits and status check of ``rid``'s combination: its ``per_aid`` table over the section's."""
        own = {k.upper(): v for k, v in self.per_aid.items()}.get(rid.upper(), {})
        return {**{key: getattr(self, key) for key in (*_CL_LIMITS, "status_check")}, **own}

    def check(self) -> None:
        """Raises ConfigError naming the bad key."""
        for key in _CL_LIMITS:
            if getattr(self, key) < -1:
                raise ConfigError(f"contactless.{key} must be a whole number of fen ≥ 0, or -1 for none")
        for rid, table in self.per_aid.items():
            where = f"contactless.per_aid.{rid}"
            if not re.fullmatch(r"[0-9A-Fa-f]{10}", rid) or not isinstance(table, Mapping):
                raise ConfigError(f"{where}: name a RID of 10 hex digits and give it a table")
            for key, value in table.items():
                ok = (isinstance(value, bool) if key == "status_check" else
                      key in _CL_LIMITS and isinstance(value, int) and not isinstance(value, bool) and value >= -1)
                if not ok:
                    raise ConfigError(f"{where}.{key}: keys are {', '.join(_CL_LIMITS)} (fen ≥ 0 or -1) and "
                                      "status_check (true/false)")
        if not 1 <= self.presentations <= 10 or self.tap_timeout_s <= 0:
            raise ConfigError("contactless.presentations must be 1..10 and contactless.tap_timeout_s above 0")


@dataclass(frozen=True)
class UserEntry:
    id: str
    name: str
    role: str
    password_hash: str


@dataclass(frozen=True)
class Settings:
    terminal: TerminalSection = field(default_factory=TerminalSection)
    devices: DevicesSection = field(default_factory=DevicesSection)
    host: HostSection = field(default_factory=HostSection)
    carrier: CarrierSection = field(default_factory=CarrierSection)
    wallet: WalletSection = field(default_factory=WalletSection)
    timeouts: TimeoutsSection = field(default_factory=TimeoutsSection)
    emv: EmvSection = field(default_factory=EmvSection)
    security: SecuritySection = field(default_factory=SecuritySection)
    firmware: FirmwareSection = field(default_factory=FirmwareSection)
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    users: tuple[UserEntry, ...] = ()
    wechatpay: WeChatPaySection = field(default_factory=WeChatPaySection)
    alipay: AlipaySection = field(default_factory=AlipaySection)
    contactless: ContactlessSection = field(default_factory=ContactlessSection)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        known = {"terminal", "devices", "host", "carrier", "wallet", "timeouts", "emv", "fees", "users", "security",
                 "firmware", "wechatpay", "alipay", "contactless"}
        for key in data:
            if key not in known:
                raise ConfigError(f"unknown section [{key}] (known: {', '.join(sorted(known))})")
        emv = dict(data.get("emv", {}))
        for key in ("aids", "capks", "revoked", "exception_file"):
            if isinstance(emv.get(key), list):
                emv[key] = tuple(emv[key])
        if isinstance(data.get("wallet"), Mapping) and "channels" in data["wallet"]:
            data = {**data, "wallet": {**data["wallet"], "channels": check_wallet_channels(data["wallet"]["channels"])}}
        fees, limits, min_fees = _fees(data.get("fees", {}))
        log_size = data.get("terminal", {}).get("log_max_bytes", 5_000_000)
        if isinstance(log_size, int) and not 10_000 <= log_size <= 1_000_000_000:
            raise ConfigError(f"terminal.log_max_bytes must be 10000..1000000000, not {log_size}")
        if data.get("devices", {}).get("scanner_mode", "triggered") not in ("triggered", "continuous"):
            raise ConfigError("devices.scanner_mode must be 'triggered' or 'continuous'")
        users = tuple(UserEntry(_need(u, "id", "users"), u.get("name", ""), u.get("role", "cashier"),
                                _need(u, "password_hash", "users")) for u in data.get("users", []))
        settings = cls(
            terminal=_section(TerminalSection, data, "terminal"),
            devices=_section(DevicesSection, data, "devices"),
            host=_section(HostSection, data, "host"),
            carrier=_section(CarrierSection, data, "carrier"),
            wallet=_section(WalletSection, data, "wallet"),
            timeouts=_section(TimeoutsSection, data, "timeouts"),
            emv=_section(EmvSection, {"emv": emv}, "emv"),
            security=_section(SecuritySection, data, "security"),
            firmware=_section(FirmwareSection, data, "firmware"),
            fees=FeeSchedule(fees, limits, min_fees),
            users=users,
            wechatpay=_section(WeChatPaySection, data, "wechatpay"),
            alipay=_section(AlipaySection, data, "alipay"),
            contactless=_section(ContactlessSection, data, "contactless"),
        )
        settings.firmware.check()
        settings.contactless.check()
        terminal_config(asdict(settings.emv), terminal_id=settings.terminal.id,  # refuse bad [emv] at boot
                        merchant_id=settings.terminal.merchant_id, ifd_serial=settings.terminal.id,
                        profile=settings.terminal.profile)
        if settings.terminal.profile == "production":
            _refuse_test_settings(data)
            if settings.security.device_secret_env:
                raise ConfigError("security.device_secret_env is for test benches: a production terminal reads "
                                  "its device secret from security.device_secret_file")
            if settings.emv.transcripts_dir:  # card sessions on disk, even masked: a test bench's tool
                raise ConfigError("emv.transcripts_dir is for test benches: a terminal with [terminal] profile = "
                                  "\"production\" does not save card sessions")
        _refuse_unmaced_host(settings.host.key_scheme, settings.terminal.profile)
        return settings


_LIMIT_KEYS = ("min_minor", "max_minor", "daily_minor")
_TEST_ONLY_KEYS = ("insecure_plaintext",)  # by name in every section, so keys other sections add are covered


def _refuse_test_settings(data: Mapping[str, Any], where: str = "") -> None:
    """A production terminal refuses to boot with a test-bench setting switched on (in any table, at any
    depth), and names it."""
    for key, value in data.items():
        if isinstance(value, Mapping):
            _refuse_test_settings(value, f"{where}{key}.")
        elif key in _TEST_ONLY_KEYS and value is True:
            raise ConfigError(f"{where}{key} = true is for test benches: a terminal with [terminal] "
                              "profile = \"production\" refuses it")


def _refuse_unmaced_host(key_scheme: str, profile: str) -> None:
    """``[host] key_scheme = "none"`` (no MAC on any acquirer message) exists for the codec's test benches only."""
    if key_scheme == "none" and profile != "test":
        raise ConfigError(f'host.key_scheme = "none" sends acquirer messages without a MAC (test benches only): '
                          f'a terminal with [terminal] profile = "{profile}" refuses it — use "master_session" or '
                          f'"dukpt"')


def _fees(raw: Mapping[str, Any]) -> tuple[dict[str, tuple[int, int]], dict[str, ChannelLimits], dict[str, int]]:
    """``channel = [fixed_fen, basis_points]`` or a table with fixed_fen, rate_bps, min_fee_fen and the limits
    in fen."""
    fees, limits, min_fees = {}, {}, {}
    for channel, value in raw.items():
        if isinstance(value, Mapping):
            allowed = {"fixed_fen", "rate_bps", "min_fee_fen", *_LIMIT_KEYS}
            bad = [k for k, v in value.items() if k not in allowed or isinstance(v, bool) or not isinstance(v, int)
                   or v < 0]
            if bad:
                raise ConfigError(f"fees.{channel}.{bad[0]}: keys are {', '.join(sorted(allowed))}, "
                                  "each a whole number of fen (basis points for rate_bps) ≥ 0")
            fees[channel] = (value.get("fixed_fen", 0), value.get("rate_bps", 0))
            limits[channel] = ChannelLimits(*(value.get(k) for k in _LIMIT_KEYS))
            if value.get("min_fee_fen"):
                min_fees[channel] = value["min_fee_fen"]
        elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
            fees[channel] = (value[0], value[1])
        else:
            raise ConfigError(f"fees.{channel} must be [fixed_fen, basis_points], e.g. [0, 60], or a table")
    return fees, limits, min_fees


def _need(entry: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise ConfigError(f"{where}: every entry needs '{key}'")
    return entry[key]


def _section(kind: type, data: Mapping[str, Any], name: str) -> Any:
    raw = data.get(name, {})
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[{name}] must be a table")
    allowed = {f.name: f for f in fields(kind)}
    values = {}
    for key, given in raw.items():
        if key not in allowed:
            raise ConfigError(f"unknown key {name}.{key} (known: {', '.join(sorted(allowed))})")
        default = getattr(kind(), key)
        value = float(given) if isinstance(default, float) and isinstance(given, int) else given
        if not isinstance(value, type(default)):
            raise ConfigError(f"{name}.{key} must be {type(default).__name__}, not {given!r}")
        values[key] = value
    return kind(**values)


def load_settings(path: str | Path) -> Settings:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    return Settings.from_dict(data)
