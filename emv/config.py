"""Terminal and application configuration the kernel runs with (EMV 4.4 Book 4 §5, Book 3 Annex A1).

``TerminalConfig`` holds the terminal's own data elements (``9F1A``, ``5F2A``, ``9F33``, ``9F40``, ``9F35``,
``9F1C``, ``9F16``, ``9F15``, ``9F1E``) and one ``AidConfig`` per supported application: the terminal AID
``9F06``, whether partial selection is allowed, the terminal application version numbers ``9F09`` and the
Terminal Action Codes, which default to the scheme's usual values. ``STANDARD_AIDS`` are the schemes this
product accepts.

>>> cfg = TerminalConfig(aids=STANDARD_AIDS, terminal_id="T0000001", merchant_id="M00000000000001")
>>> cfg.aids[3].label, cfg.aids[3].tac_online.hex().upper(), cfg.capabilities.hex().upper()
('Visa', 'DC4004F800', 'E068C8')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emv.capk import LIVE_CAPKS, TEST_CAPKS, Capk, capk_table
from emv.exception_file import ExceptionFile
from pos_errors import ConfigError

__all__ = ["AidConfig", "TerminalConfig", "STANDARD_AIDS", "SCHEME_DEFAULTS", "ONLINE_CAPABLE_TERMINAL_TYPES",
           "terminal_config", "trusted_capks", "PROFILES"]

# Terminal type 9F35 (Book 4 Annex A1): 1x financial institution, 2x merchant, 3x cardholder;
# low digit 1 online only, 2 offline with online capability, 3 offline only (4-6 the same, unattended).
ONLINE_CAPABLE_TERMINAL_TYPES = frozenset({0x11, 0x12, 0x14, 0x15, 0x21, 0x22, 0x24, 0x25, 0x34, 0x35})


@dataclass(frozen=True)
class _SchemeDefaults:
    app_versions: tuple[bytes, ...]
    tac_default: bytes
    tac_denial: bytes
    tac_online: bytes


def _scheme(versions: tuple[str, ...], default: str, denial: str, online: str) -> _SchemeDefaults:
    return _SchemeDefaults(tuple(bytes.fromhex(v) for v in versions), bytes.fromhex(default),
                           bytes.fromhex(denial), bytes.fromhex(online))


# RID -> the scheme's application versions and TACs as commonly published in acquirer parameter files; used
# for any AidConfig field left empty. Unknown RIDs get _GENERIC and no version check.
SCHEME_DEFAULTS: dict[bytes, _SchemeDefaults] = {
    # RID: app versions, TAC-Default, TAC-Denial, TAC-Online
    bytes.fromhex("A000000333"): _scheme(("0030", "0020"), "D84000A800", "0010000000", "D84004F800"),  # CUP
    bytes.fromhex("A000000003"): _scheme(("008C", "0096"), "DC4000A800", "0010000000", "DC4004F800"),  # Visa
    bytes.fromhex("A000000004"): _scheme(("0002",), "F45084800C", "0000000000", "F45084800C"),  # MC
}
_GENERIC = _scheme((), "DC4000A800", "0010000000", "DC4004F800")


@dataclass(frozen=True)
class AidConfig:
    """One application the terminal supports.

    TACs are 5 bytes matched bit for bit against the TVR; ``app_versions`` are the terminal's ``9F09``
    values (the first is sent). Left empty, each comes from ``SCHEME_DEFAULTS`` by the AID's RID; an AID of
    an unknown scheme with no ``app_versions`` skips the version check (Book 3 §10.4.1).
    """

    aid: bytes
    label: str
    partial_selection: bool = True
    app_versions: tuple[bytes, ...] = ()
    tac_default: bytes = b""
    tac_denial: bytes = b""
    tac_online: bytes = b""
    floor_limit_minor: int = 0
    # Random transaction selection (Book 3 §10.6.2): below the floor limit, amounts under the threshold are
    # sent online with target_percent probability, rising towards max_target_percent at the floor limit.
    threshold_minor: int = 0
    target_percent: int = 0
    max_target_percent: int = 0
    default_ddol: bytes = bytes.fromhex("9F3704")  # Book 3 §10.3: used when the card has no 9F49
    default_tdol: bytes = b""

    def __post_init__(self) -> None:
        name = self.aid.hex().upper()
        if not 5 <= len(self.aid) <= 16:
            raise ConfigError(f"AID {name} must be 5 to 16 bytes (RID + PIX)")
        scheme = SCHEME_DEFAULTS.get(self.aid[:5], _GENERIC)
        for field_name in ("app_versions", "tac_default", "tac_denial", "tac_online"):
            if not getattr(self, field_name):
                object.__setattr__(self, field_name, getattr(scheme, field_name))
        for field_name in ("tac_default", "tac_denial", "tac_online"):
            if len(getattr(self, field_name)) != 5:
                raise ConfigError(f"{field_name} of AID {name} must be 5 bytes")
        if any(len(v) != 2 for v in self.app_versions):
            raise ConfigError(f"app_versions of AID {name} must be 2-byte values")
        if self.floor_limit_minor < 0:
            raise ConfigError(f"floor_limit_minor of AID {name} cannot be negative")
        if not 0 <= self.target_percent <= self.max_target_percent <= 99:
            raise ConfigError(f"target_percent and max_target_percent of AID {name} must be 0 <= target <= max "
                              "<= 99")
        if not 0 <= self.threshold_minor <= max(self.floor_limit_minor - 1, 0):
            raise ConfigError(f"threshold_minor of AID {name} must be below floor_limit_minor")


@dataclass(frozen=True)
class TerminalConfig:
    """The terminal's data elements and its list of supported AIDs, in the order they are tried."""

    aids: tuple[AidConfig, ...]
    terminal_id: str = "00000001"
    merchant_id: str = "000000000000001"
    country_code: bytes = b"\x01\x56"
    currency_code: bytes = b"\x01\x56"
    currency_exponent: int = 2
    terminal_type: int = 0x22
    capabilities: bytes = bytes.fromhex("E068C8")  # IC, mag, manual; online PIN, signature, no CVM; SDA, DDA, CDA
    additional_capabilities: bytes = bytes.fromhex("6000B0F001")  # goods, services; keys; print, display
    merchant_category_code: bytes = bytes.fromhex("4814")  # telecommunication services
    ifd_serial: str = "POS00001"
    capks: Mapping[tuple[bytes, int], Capk] = field(default_factory=lambda: LIVE_CAPKS)  # profile "production"
    revoked: frozenset[tuple[bytes, int, bytes]] = frozenset()  # CRL: (RID, CA index, certificate serial)
    # PANs (with "-PSN" suffix to name one card) refused offline, held as keyed hashes (emv.exception_file);
    # a plain set of strings given here is hashed at once
    exception_file: ExceptionFile | frozenset[str] = field(default_factory=ExceptionFile, repr=False)
    # Unable to go online: follow the default action codes (TC possible, ARC Y3) — off by default, because this
    # product has no advice/clearing path for such approvals; off means always AAC (Z3).
    approve_offline_when_unable_online: bool = False
    # Book 1 §12.4: offer the candidates to the cardholder (on the PIN pad) when more than one, or when the only
    # one asks for confirmation; off: the highest priority is taken, those needing confirmation are dropped.
    cardholder_selection: bool = False

    def __post_init__(self) -> None:
        if not self.aids:
            raise ConfigError("aids: the terminal needs at least one application")
        checks = (
            (len(self.terminal_id) == 8 and self.terminal_id.isascii(), "terminal_id must be 8 characters"),
            (len(self.merchant_id) == 15 and self.merchant_id.isascii(), "merchant_id must be 15 characters"),
            (len(self.country_code) == 2, "country_code must be 2 bytes (n3)"),
            (len(self.currency_code) == 2, "currency_code must be 2 bytes (n3)"),
            (0 <= self.currency_exponent <= 9, "currency_exponent must be 0-9"),
            (len(self.capabilities) == 3, "capabilities (9F33) must be 3 bytes"),
            (len(self.additional_capabilities) == 5, "additional_capabilities (9F40) must be 5 bytes"),
            (len(self.merchant_category_code) == 2, "merchant_category_code must be 2 bytes (n4)"),
            (len(self.ifd_serial) == 8 and self.ifd_serial.isascii(), "ifd_serial must be 8 characters"),
            (0 <= self.terminal_type <= 0x99, "terminal_type must be n2"),
        )
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if not isinstance(self.exception_file, ExceptionFile):
            object.__setattr__(self, "exception_file", ExceptionFile.of(self.exception_file))

    @property
    def online_capable(self) -> bool:
        return self.terminal_type in ONLINE_CAPABLE_TERMINAL_TYPES


# The schemes this product accepts, in the order the list-of-AIDs method tries them.
STANDARD_AIDS: tuple[AidConfig, ...] = (
    AidConfig(bytes.fromhex("A000000333010101"), "UnionPay Debit"),
    AidConfig(bytes.fromhex("A000000333010102"), "UnionPay Credit"),
    AidConfig(bytes.fromhex("A000000333010103"), "UnionPay Quasi Credit"),
    AidConfig(bytes.fromhex("A0000000031010"), "Visa"),
    AidConfig(bytes.fromhex("A0000000041010"), "Mastercard"),
)


# --- from the terminal's TOML [emv] table ---------------------------------------------------------------------

_AID_KEYS = {"aid", "label", "partial_selection", "app_versions", "tac_default", "tac_denial", "tac_online",
             "floor_limit_minor", "threshold_minor", "target_percent", "max_target_percent", "default_ddol",
             "default_tdol"}
_CAPK_KEYS = {"rid", "index", "modulus", "exponent", "checksum", "expiry", "label", "source", "test"}


def _hex_value(value: Any, where: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a hex string, not {value!r}")
    try:
        data = bytes.fromhex(value)
    except ValueError as exc:
        raise ConfigError(f"{where} is not hexadecimal: {value!r}") from exc
    if length is not None and len(data) != length:
        raise ConfigError(f"{where} must be {length} bytes ({2 * length} hex digits), not {len(data)}")
    return data


def _int_value(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{where} must be an integer, not {value!r}")
    return value


def _aid_config(entry: Any, where: str, floor_limit: int) -> AidConfig:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} must be a table like {{ aid = \"A0000000031010\", label = \"Visa\" }}")
    unknown = set(entry) - _AID_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]} (known: {', '.join(sorted(_AID_KEYS))})")
    if "aid" not in entry:
        raise ConfigError(f"{where}.aid is required")
    kwargs: dict[str, Any] = {"aid": _hex_value(entry["aid"], f"{where}.aid"),
                              "label": str(entry.get("label", "")),
                              "floor_limit_minor": _int_value(entry.get("floor_limit_minor", floor_limit),
                                                              f"{where}.floor_limit_minor")}
    for key in ("tac_default", "tac_denial", "tac_online"):
        if key in entry:
            kwargs[key] = _hex_value(entry[key], f"{where}.{key}", 5)
    for key in ("default_ddol", "default_tdol"):
        if key in entry:
            kwargs[key] = _hex_value(entry[key], f"{where}.{key}")
    for key in ("threshold_minor", "target_percent", "max_target_percent"):
        if key in entry:
            kwargs[key] = _int_value(entry[key], f"{where}.{key}")
    if "app_versions" in entry:
        versions = entry["app_versions"]
        if not isinstance(versions, list | tuple):
            raise ConfigError(f"{where}.app_versions must be a list like [\"0030\"]")
        kwargs["app_versions"] = tuple(_hex_value(v, f"{where}.app_versions[{i}]", 2) for i, v in enumerate(versions))
    if "partial_selection" in entry:
        if not isinstance(entry["partial_selection"], bool):
            raise ConfigError(f"{where}.partial_selection must be true or false")
        kwargs["partial_selection"] = entry["partial_selection"]
    try:
        return AidConfig(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _capk(entry: Any, where: str) -> Capk:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} must be a table with rid, index, modulus, exponent, checksum")
    unknown = set(entry) - _CAPK_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]} (known: {', '.join(sorted(_CAPK_KEYS))})")
    for key in ("rid", "index", "modulus"):
        if key not in entry:
            raise ConfigError(f"{where}.{key} is required")
    try:
        index = _hex_value(entry["index"], f"{where}.index", 1)[0]
        return Capk(_hex_value(entry["rid"], f"{where}.rid", 5), index,
                    _hex_value(entry["modulus"], f"{where}.modulus"),
                    _hex_value(entry.get("exponent", "03"), f"{where}.exponent"),
                    _hex_value(entry.get("checksum", ""), f"{where}.checksum"), str(entry.get("expiry", "491231")),
                    str(entry.get("label", "")), str(entry.get("source", "operator")), _test_flag(entry, where))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _revoked(entry: Any, where: str) -> tuple[bytes, int, bytes]:
    parts = entry.split("/") if isinstance(entry, str) else []
    if len(parts) != 3:
        raise ConfigError(f"{where} must be \"RID/INDEX/SERIAL\", e.g. \"A000000003/92/000001\"")
    return (_hex_value(parts[0], f"{where} RID", 5), _hex_value(parts[1], f"{where} index", 1)[0],
            _hex_value(parts[2], f"{where} serial", 3))


def _test_flag(entry: Mapping[str, Any], where: str) -> bool:
    value = entry.get("test", False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.test must be true or false")
    return value


PROFILES = ("production", "test")


def trusted_capks(section: Mapping[str, Any], profile: str, today: dt.date | None = None) -> list[Capk]:
    """The CA keys a terminal of ``profile`` trusts: the live keys, the configured ones, and (profile "test"
    only) the schemes' test keys — on ``today``, none that has expired (``Capk.expired``: withdrawn at its
    expiry date, Book 2 §5.1). A production terminal given a test key refuses it, naming the setting."""
    if profile not in PROFILES:
        raise ConfigError(f"terminal.profile must be \"production\" or \"test\", not {profile!r}")
    include_test = section.get("include_test_capks", profile == "test")
    if not isinstance(include_test, bool):
        raise ConfigError("emv.include_test_capks must be true or false")
    configured = [_capk(c, f"emv.capks[{i}]") for i, c in enumerate(section.get("capks", ()))]
    if profile == "production":
        if include_test:
            raise ConfigError("emv.include_test_capks = true: the schemes' test CA keys are trusted only with "
                              "[terminal] profile = \"test\"")
        known_test = {c.checksum for c in TEST_CAPKS.values()}
        for i, capk in enumerate(configured):
            if capk.test or capk.checksum in known_test:
                raise ConfigError(f"emv.capks[{i}] ({capk.rid.hex().upper()}/{capk.index:02X}) is a test CA key: "
                                  "trusted only with [terminal] profile = \"test\"")
    trusted = [*LIVE_CAPKS.values(), *(TEST_CAPKS.values() if include_test else ()), *configured]
    return [c for c in trusted if today is None or not c.expired(today)]


def terminal_config(section: Mapping[str, Any], *, terminal_id: str, merchant_id: str,
                    ifd_serial: str, profile: str = "production", today: dt.date | None = None) -> TerminalConfig:
    """Build and check the kernel configuration from the TOML ``[emv]`` table (already a mapping).

    Keys: ``terminal_type``, ``capabilities`` (9F33), ``additional_capabilities`` (9F40), ``country_code``,
    ``currency_code`` (n3 as 4 hex digits), ``floor_limit_minor`` (default for every AID), ``aids`` (tables,
    see ``_AID_KEYS``), ``include_test_capks`` (default: true for profile "test" only), ``capks`` (extra CA
    keys; ``test = true`` marks a test key, refused in production: ``trusted_capks``), ``revoked``
    (``"RID/INDEX/SERIAL"``), ``exception_file`` (PANs or ``PAN-PSN``). Raises ConfigError naming the key.
    ``today``: the CA keys expired by then are left out (the kernels also check each key's date at ODA).
    """
    floor = _int_value(section.get("floor_limit_minor", 0), "emv.floor_limit_minor")
    aids_raw = section.get("aids", ())
    aids = tuple(_aid_config(a, f"emv.aids[{i}]", floor) for i, a in enumerate(aids_raw))
    if not aids:
        raise ConfigError("emv.aids: the terminal needs at least one application")
    capks = trusted_capks(section, profile, today)
    try:
        terminal_type = int(str(section.get("terminal_type", "22")), 16)
        return TerminalConfig(
            aids=aids, terminal_id=terminal_id, merchant_id=merchant_id, ifd_serial=ifd_serial,
            terminal_type=terminal_type,
            capabilities=_hex_value(section.get("capabilities", "E0F8C8"), "emv.capabilities", 3),
            additional_capabilities=_hex_value(section.get("additional_capabilities", "6000F0A001"),
                                               "emv.additional_capabilities", 5),
            country_code=_hex_value(section.get("country_code", "0156"), "emv.country_code", 2),
            currency_code=_hex_value(section.get("currency_code", "0156"), "emv.currency_code", 2),
            capks=capk_table(capks),
            revoked=frozenset(_revoked(r, f"emv.revoked[{i}]") for i, r in enumerate(section.get("revoked", ()))),
            exception_file=ExceptionFile.of(str(p) for p in section.get("exception_file", ())),
            approve_offline_when_unable_online=bool(section.get("approve_offline_when_unable_online", False)),
            cardholder_selection=bool(section.get("cardholder_selection", False)))
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"emv.terminal_type must be two digits, e.g. \"22\": {exc}") from exc
