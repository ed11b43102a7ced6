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

from collections.abc import Mapping
from dataclasses import dataclass, field

from emv.capk import TEST_CAPKS, Capk
from emv.errors import ConfigError

__all__ = ["AidConfig", "TerminalConfig", "STANDARD_AIDS", "SCHEME_DEFAULTS", "ONLINE_CAPABLE_TERMINAL_TYPES"]

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
    capks: Mapping[tuple[bytes, int], Capk] = field(default_factory=lambda: TEST_CAPKS)
    revoked: frozenset[tuple[bytes, int, bytes]] = frozenset()  # CRL: (RID, CA index, certificate serial)
    exception_file: frozenset[str] = frozenset()  # PANs (with "-PSN" suffix to name one card) refused offline

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
