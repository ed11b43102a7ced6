"""Certification Authority Public Keys (CAPK): the terminal's trust anchors for offline data authentication.

A CAPK is found by RID (first 5 bytes of the AID) and CA Public Key Index ``8F`` (EMV 4.4 Book 2 §5.1,
Book 3 §10.3). Each entry carries the checksum ``SHA-1(RID || index || modulus || exponent)`` the schemes
publish with it; ``Capk.__post_init__`` recomputes it, so a mistyped modulus is refused at start-up, never at
the first card. Every shipped key says where it comes from (``source``), whether it is a scheme **test** key
(``test``) and when it expires (``expiry``, YYMMDD; an expired CAPK is not used):

* ``LIVE_CAPKS``: the schemes' current production keys, Visa A000000003/09 and Mastercard A000000004/06 (1984
  bits), listed as *live* keys by emv-utils (``src/emv_capk_static_data.h``) and in proxmark3
  ``client/resources/capk.txt``, both with the checksum below; they expire on 31 Dec 2033 (EMVCo's annual key
  length review: Visa and Mastercard 1984-bit keys "updated to 12/31/2033", as acquirers publish it, e.g. Forte's
  release note "Certificate Authority Public (CAP) Key Requirement"). No UnionPay key is shipped: the public lists
  give its production keys (A000000333/02, 03, 04) dates no later than 2025 and no current one, so a UnionPay
  terminal adds its acquirer's keys in ``[[emv.capks]]``.
* ``RETIRED_CAPKS``: Visa 01 (1024 bits, expired 31 Dec 2009) and Mastercard 05 (1408 bits, expired 31 Dec 2024),
  kept only for the published emv-tools / proxmark3 ODA vectors (``client/src/emv/test/sda_test.c``,
  ``dda_test.c``: real cards' data), checked at their own date. No terminal trusts them: they are in neither
  ``LIVE_CAPKS`` nor ``SHIPPED_CAPKS`` (and ``emv.config.trusted_capks`` leaves out any key ``expired`` at the
  terminal's date; the kernels check the date again at each ODA).
* ``TEST_CAPKS``: Visa VSDC CA public **test** keys 92 (1408 bits), 94 (1984 bits), 95 (1152 bits): Visa Smart
  Debit/Credit "VSDC CA Public Test Keys" tables 2-1..2-3, as reproduced in merlokk/PCSCEMV ``EMVkeys.pas`` and
  emv-utils; every checksum matches the published one. Trusted only by a terminal whose profile is ``test``.

The simulator's own CA is not here: it is test data of the simulator (``sim.backends.pki``), handed to a
``test`` terminal through its configuration. A deployment adds its scheme keys from the TOML
(``[[emv.capks]]``); ``emv.config.terminal_config`` decides what a profile may trust.

>>> capk = TEST_CAPKS[(bytes.fromhex("A000000003"), 0x92)]
>>> len(capk.modulus) * 8, capk.checksum.hex().upper(), capk.test
(1408, '429C954A3859CEF91295F663C963E582ED6EB253', True)
>>> [(c.rid.hex().upper(), f"{c.index:02X}", c.expiry) for c in LIVE_CAPKS.values()]
[('A000000003', '09', '331231'), ('A000000004', '06', '331231')]
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pos_errors import ConfigError

__all__ = ["Capk", "LIVE_CAPKS", "TEST_CAPKS", "SHIPPED_CAPKS", "RETIRED_CAPKS", "capk_table", "retired"]


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

_RETIRED_SOURCE = ("emv-utils emv_capk_static_data.h ('live'); emv-tools ODA vectors "
                   "(proxmark3 client/src/emv/test)")
_LIVE_KEY: dict[str, Any] = {
    "expiry": "331231", "test": False,
    "source": "emv-utils emv_capk_static_data.h ('live'); proxmark3 client/resources/capk.txt; expiry: EMVCo "
              "1984-bit key review, Visa/Mastercard 12/31/2033 (acquirer notices, e.g. releases.forte.net)"}
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
    _capk(_VISA, 0x09,
          "9D912248DE0A4E39C1A7DDE3F6D2588992C1A4095AFBD1824D1BA74847F2BC4926D2EFD904B4B54954CD189A54C5D117"
          "9654F8F9B0D2AB5F0357EB642FEDA95D3912C6576945FAB897E7062CAA44A4AA06B8FE6E3DBA18AF6AE3738E30429EE9"
          "BE03427C9D64F695FA8CAB4BFE376853EA34AD1D76BFCAD15908C077FFE6DC5521ECEF5D278A96E26F57359FFAEDA194"
          "34B937F1AD999DC5C41EB11935B44C18100E857F431A4A5A6BB65114F174C2D7B59FDF237D6BB1DD0916E644D709DED5"
          "6481477C75D95CDD68254615F7740EC07F330AC5D67BCD75BF23D28A140826C026DBDE971A37CD3EF9B8DF644AC38501"
          "0501EFC6509D7A41",
          "1FF80A40173F52D7D27E0F26A146A1C8CCB29046", "Visa live 1984", **_LIVE_KEY),
    _capk(_MASTERCARD, 0x06,
          "CB26FC830B43785B2BCE37C81ED334622F9622F4C89AAE641046B2353433883F307FB7C974162DA72F7A4EC75D9D6573"
          "36865B8D3023D3D645667625C9A07A6B7A137CF0C64198AE38FC238006FB2603F41F4F3BB9DA1347270F2F5D8C606E42"
          "0958C5F7D50A71DE30142F70DE468889B5E3A08695B938A50FC980393A9CBCE44AD2D64F630BB33AD3F5F5FD495D31F3"
          "7818C1D94071342E07F1BEC2194F6035BA5DED3936500EB82DFDA6E8AFB655B1EF3D0D7EBF86B66DD9F29F6B1D324FE8"
          "B26CE38AB2013DD13F611E7A594D675C4432350EA244CC34F3873CBA06592987A1D7E852ADC22EF5A2EE28132031E48F"
          "74037E3B34AB747F",
          "F910A1504D5FFB793D94F3B500765E1ABCAD72D9", "Mastercard live 1984", **_LIVE_KEY),
)

# expired: the published ODA vectors' keys, never trusted by a terminal (see the module docstring)
_RETIRED: tuple[Capk, ...] = (
    _capk(_VISA, 0x01,
          "C696034213D7D8546984579D1D0F0EA519CFF8DEFFC429354CF3A871A6F7183F1228DA5C7470C055387100CB935A712C"
          "4E2864DF5D64BA93FE7E63E71F25B1E5F5298575EBE1C63AA617706917911DC2A75AC28B251C7EF40F2365912490B939"
          "BCA2124A30A28F54402C34AECA331AB67E1E79B285DD5771B5D9FF79EA630B75",
          "D34A6A776011C7E7CE3AEC5F03AD2F8CFC5503CC", "Visa live 1024",
          expiry="091231", source=_RETIRED_SOURCE + "; 1024-bit keys expired 31 Dec 2009 (EMVCo)", test=False),
    _capk(_MASTERCARD, 0x05,
          "B8048ABC30C90D976336543E3FD7091C8FE4800DF820ED55E7E94813ED00555B573FECA3D84AF6131A651D66CFF4284F"
          "B13B635EDD0EE40176D8BF04B7FD1C7BACF9AC7327DFAA8AA72D10DB3B8E70B2DDD811CB4196525EA386ACC33C0D9D45"
          "75916469C4E4F53E8E1C912CC618CB22DDE7C3568E90022E6BBA770202E4522A2DD623D180E215BD1D1507FE3DC90CA3"
          "10D27B3EFCCD8F83DE3052CAD1E48938C68D095AAC91B5F37E28BB49EC7ED597",
          "EBFA0D5D06D8CE702DA3EAE890701D45E274C845", "Mastercard live 1408",
          expiry="241231", source=_RETIRED_SOURCE + "; 1408-bit keys expired 31 Dec 2024 (EMVCo)", test=False),
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
RETIRED_CAPKS: Mapping[tuple[bytes, int], Capk] = capk_table(_RETIRED)
