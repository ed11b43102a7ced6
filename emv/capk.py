"""Certification Authority Public Keys (CAPK): the terminal's trust anchors for offline data authentication.

A CAPK is found by RID (first 5 bytes of the AID) and CA Public Key Index ``8F`` (EMV 4.4 Book 2 §5.1,
Book 3 §10.3). Each entry carries the checksum ``SHA-1(RID || index || modulus || exponent)`` the schemes
publish with it; ``Capk.__post_init__`` recomputes it, so a mistyped modulus is refused at start-up, never at
the first card. Every shipped key says where it comes from (``source``), whether it is a scheme **test** key
(``test``) and when it expires (``expiry``, YYMMDD; an expired CAPK is not used):

* ``LIVE_CAPKS``: Visa A000000003/01 (1024 bits) and Mastercard A000000004/05 (1408 bits), listed as *live*
  keys by emv-utils (``src/emv_capk_static_data.h``) and used by the emv-tools / proxmark3 ODA vectors
  (``client/src/emv/test/sda_test.c``, ``dda_test.c``), which are real cards' data. Both have **expired**
  (31 Dec 2009 and 31 Dec 2024): they stay in the list with their dates, for the published vectors (checked at
  their own date), and no terminal trusts them now (``emv.config.trusted_capks`` leaves out every key
  ``expired`` at the terminal's date, and the kernels check the date again at each ODA).
* ``TEST_CAPKS``: Visa VSDC CA public **test** keys 92 (1408 bits), 94 (1984 bits), 95 (1152 bits): Visa Smart
  Debit/Credit "VSDC CA Public Test Keys" tables 2-1..2-3, as reproduced in merlokk/PCSCEMV ``EMVkeys.pas`` and
  emv-utils; every checksum matches the published one. Trusted only by a terminal whose profile is ``test``.

The simulator's own CA is not here: it is test data of the simulator (``sim.backends.pki``), handed to a
``test`` terminal through its configuration. A deployment adds its scheme keys from the TOML
(``[[emv.capks]]``); ``emv.config.terminal_config`` decides what a profile may trust.

>>> capk = TEST_CAPKS[(bytes.fromhex("A000000003"), 0x92)]
>>> len(capk.modulus) * 8, capk.checksum.hex().upper(), capk.test
(1408, '429C954A3859CEF91295F663C963E582ED6EB253', True)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pos_errors import ConfigError

__all__ = ["Capk", "LIVE_CAPKS", "TEST_CAPKS", "SHIPPED_CAPKS", "capk_table", "retired"]


@dataclass(frozen=True)
class Capk:
    """One CA public key; ``checksum`` empty means "compute it" (for keys the operator trusts by other means)."""

    rid: bytes
    index: int
    modulus: bytes
    exponent: bytes = b"\x03"
    checksum: bytes = b""
    expiry: str = "491231"  # YYMMDD
    label: str = ""
    source: str = ""  # where the key was published (or "operator" for keys the configuration adds)
    test: bool = False  # a scheme or simulator TEST key: trusted only by a terminal with profile "test"

    def __post_init__(self) -> None:
        name = f"CAPK {self.rid.hex().upper()}/{self.index:02X}"
        if len(self.rid) != 5 or not 0 <= self.index <= 0xFF:
            raise ConfigError(f"{name}: the RID is 5 bytes and the index one byte")
        if not 64 <= len(self.modulus) <= 248 or not self.modulus[0]:
            raise ConfigError(f"{name}: the modulus must be 64 to 248 bytes without a leading zero")
        if self.exponent not in (b"\x03", b"\x01\x00\x01"):
            raise ConfigError(f"{name}: the exponent must be 3 or 65537 (Book 2 §11.2)")
        if len(self.expiry) != 6 or not self.expiry.isdigit() or _last_day(self.expiry) is None:
            raise ConfigError(f"{name}: expiry must be a date YYMMDD, not {self.expiry!r}")
        digest = hashlib.sha1(self.rid + bytes([self.index]) + self.modulus + self.exponent).digest()  # noqa: S324
        if self.checksum and self.checksum != digest:
            raise ConfigError(f"{name}: the checksum does not match the modulus and exponent")
        object.__setattr__(self, "checksum", digest)

    @property
    def key(self) -> tuple[bytes, int]:
        return self.rid, self.index

    def expired(self, today: dt.date) -> bool:
        """Past its expiry date (valid through that day): the terminal no longer uses it for ODA (Book 2 §5.1,
        "CA public key management": a key is withdrawn at its expiry), and a certificate under it fails.

        >>> Capk(bytes(5), 1, b"\x01" * 64, expiry="241231").expired(dt.date(2024, 12, 31))
        False
        >>> Capk(bytes(5), 1, b"\x01" * 64, expiry="241231").expired(dt.date(2025, 1, 1))
        True
        """
        last = _last_day(self.expiry)
        return last is None or today > last


def _last_day(yymmdd: str) -> dt.date | None:
    """The last day a key of expiry ``YYMMDD`` is valid (years 2000-2099), None if not a date."""
    try:
        return dt.date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return None


def retired(capks: Iterable[Capk], today: dt.date) -> list[Capk]:
    """The keys of ``capks`` that have expired by ``today`` (a terminal trusts none of them)."""
    return [c for c in capks if c.expired(today)]


def _capk(rid: str, index: int, modulus: str, checksum: str, label: str, *, expiry: str, source: str,
          test: bool) -> Capk:
    return Capk(bytes.fromhex(rid), index, bytes.fromhex(modulus), b"\x03", bytes.fromhex(checksum), expiry,
                label, source, test)


_VISA, _MASTERCARD = "A000000003", "A000000004"

_LIVE_SOURCE = "emv-utils emv_capk_static_data.h ('live'); emv-tools ODA vectors (proxmark3 client/src/emv/test)"
# test keys have no published expiry: the far date only keeps them usable on a test bench
_TEST_KEY: dict[str, Any] = {"expiry": "491231", "test": True,
                             "source": "Visa VSDC CA Public Test Keys (PCSCEMV EMVkeys.pas; emv-utils 'test')"}

_TEST: tuple[Capk, ...] = (
    _capk(_VISA, 0x92,
          "996AF56F569187D09293C14810450ED8EE3357397B18A2458EFAA92DA3B6DF6514EC060195318FD43BE9B8F0CC669E3F"
          "844057CBDDF8BDA191BB64473BC8DC9A730DB8F6B4EDE3924186FFD9B8C7735789C23A36BA0B8AF65372EB57EA5D89E7"
          "D14E9C7B6B557460F10885DA16AC923F15AF3758F0F03EBD3C5C2C949CBA306DB44E6A2C076C5F67E281D7EF56785DC4"
          "D75945E491F01918800A9E2DC66F60080566CE0DAF8D17EAD46AD8E30A247C9F",
          "429C954A3859CEF91295F663C963E582ED6EB253", "Visa VSDC test 1408", **_TEST_KEY),
    _capk(_VISA, 0x94,
          "ACD2B12302EE644F3F835ABD1FC7A6F62CCE48FFEC622AA8EF062BEF6FB8BA8BC68BBF6AB5870EED579BC3973E121303"
          "D34841A796D6DCBC41DBF9E52C4609795C0CCF7EE86FA1D5CB041071ED2C51D2202F63F1156C58A92D38BC60BDF424E1"
          "776E2BC9648078A03B36FB554375FC53D57C73F5160EA59F3AFC5398EC7B67758D65C9BFF7828B6B82D4BE124A416AB7"
          "301914311EA462C19F771F31B3B57336000DFF732D3B83DE07052D730354D297BEC72871DCCF0E193F171ABA27EE464C"
          "6A97690943D59BDABB2A27EB71CEEBDAFA1176046478FD62FEC452D5CA393296530AA3F41927ADFE434A2DF2AE3054F8"
          "840657A26E0FC617",
          "C4A3C43CCF87327D136B804160E47D43B60E6E0F", "Visa VSDC test 1984", **_TEST_KEY),
    _capk(_VISA, 0x95,
          "BE9E1FA5E9A803852999C4AB432DB28600DCD9DAB76DFAAA47355A0FE37B1508AC6BF38860D3C6C2E5B12A3CAAF2A700"
          "5A7241EBAA7771112C74CF9A0634652FBCA0E5980C54A64761EA101A114E0F0B5572ADD57D010B7C9C887E104CA4EE12"
          "72DA66D997B9A90B5A6D624AB6C57E73C8F919000EB5F684898EF8C3DBEFB330C62660BED88EA78E909AFF05F6DA627B",
          "EE1511CEC71020A9B90443B37B1D5F6E703030F6", "Visa VSDC test 1152", **_TEST_KEY),
)

_LIVE: tuple[Capk, ...] = (
    _capk(_VISA, 0x01,
          "C696034213D7D8546984579D1D0F0EA519CFF8DEFFC429354CF3A871A6F7183F1228DA5C7470C055387100CB935A712C"
          "4E2864DF5D64BA93FE7E63E71F25B1E5F5298575EBE1C63AA617706917911DC2A75AC28B251C7EF40F2365912490B939"
          "BCA2124A30A28F54402C34AECA331AB67E1E79B285DD5771B5D9FF79EA630B75",
          "D34A6A776011C7E7CE3AEC5F03AD2F8CFC5503CC", "Visa live 1024",
          expiry="091231", source=_LIVE_SOURCE + "; 1024-bit keys expired 31 Dec 2009 (EMVCo)", test=False),
    _capk(_MASTERCARD, 0x05,
          "B8048ABC30C90D976336543E3FD7091C8FE4800DF820ED55E7E94813ED00555B573FECA3D84AF6131A651D66CFF4284F"
          "B13B635EDD0EE40176D8BF04B7FD1C7BACF9AC7327DFAA8AA72D10DB3B8E70B2DDD811CB4196525EA386ACC33C0D9D45"
          "75916469C4E4F53E8E1C912CC618CB22DDE7C3568E90022E6BBA770202E4522A2DD623D180E215BD1D1507FE3DC90CA3"
          "10D27B3EFCCD8F83DE3052CAD1E48938C68D095AAC91B5F37E28BB49EC7ED597",
          "EBFA0D5D06D8CE702DA3EAE890701D45E274C845", "Mastercard live 1408",
          expiry="241231", source=_LIVE_SOURCE + "; 1408-bit keys expire 31 Dec 2024 (EMVCo)", test=False),
)


def capk_table(capks: Iterable[Capk]) -> Mapping[tuple[bytes, int], Capk]:
    """Index keys by (RID, index); the same pair twice is a configuration error."""
    table: dict[tuple[bytes, int], Capk] = {}
    for capk in capks:
        if capk.key in table:
            raise ConfigError(f"CAPK {capk.rid.hex().upper()}/{capk.index:02X} is listed twice")
        table[capk.key] = capk
    return table


LIVE_CAPKS: Mapping[tuple[bytes, int], Capk] = capk_table(_LIVE)
TEST_CAPKS: Mapping[tuple[bytes, int], Capk] = capk_table(_TEST)
SHIPPED_CAPKS: Mapping[tuple[bytes, int], Capk] = capk_table(_LIVE + _TEST)
