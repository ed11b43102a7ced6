"""The simulated issuer's card crypto, called by the simulated acquirer: ARQC check, ARPC (method 1 or 2) and
issuer scripts with secure messaging (EMV 4.4 Book 2 §8, §9).

Keys per card: the AC key is the card's ``issuer_master_key`` (option A → common session key by ATC, as in
``emv.crypto.arqc``); the secure-messaging MAC key is a second issuer master key derived from it by XOR with
``F0``×16 (a simulator convention: real issuers keep an independent IMK-SMI), through the same derivations.

A card with ``issuer_script`` gets, with every approval, one template ``72`` script (identifier
``00000001``): PUT DATA of the Lower Consecutive Offline Limit ``9F14`` = ``05``, class ``84`` with a 4-byte MAC
over header, ATC, ARQC and data (``emv.crypto.arqc.script_mac``).

>>> from sim.devices.cards import CATALOGUE
>>> len(response_icc_data(CATALOGUE["unionpay-debit"], b"\\x00\\x01", bytes(8), "00"))
12
"""

from __future__ import annotations

from emv import tlv
from emv.crypto import arqc
from emv.crypto.des import xor
from sim.devices.cards import SimCardProfile

__all__ = ["ac_session_key", "mac_session_key", "response_icc_data", "script_command", "CSU_APPROVED",
           "CSU_DECLINED", "SCRIPT_ID", "SCRIPT_LCOL"]

CSU_APPROVED, CSU_DECLINED = bytes.fromhex("00800000"), bytes.fromhex("00000000")  # CSU byte 2 b8: approved
SCRIPT_ID = bytes.fromhex("00000001")
SCRIPT_LCOL = b"\x05"


def _psn(card: SimCardProfile, psn: str | None) -> str:
    return psn if psn is not None else card.psn


def ac_session_key(card: SimCardProfile, atc: bytes, psn: str | None = None) -> bytes:
    icc_mk = arqc.derive_icc_master_key(card.issuer_master_key, card.pan, _psn(card, psn))
    return arqc.derive_session_key(icc_mk, atc)


def mac_session_key(card: SimCardProfile, atc: bytes, psn: str | None = None) -> bytes:
    imk_smi = xor(card.issuer_master_key, b"\xf0" * 16)
    icc_mk = arqc.derive_icc_master_key(imk_smi, card.pan, _psn(card, psn))
    return arqc.derive_session_key(icc_mk, atc)


def script_command(card: SimCardProfile, atc: bytes, cryptogram: bytes, psn: str | None = None) -> bytes:
    """PUT DATA 9F14 with secure messaging: ``84 DA 9F 14 Lc value MAC``."""
    header = bytes([0x84, 0xDA, 0x9F, 0x14, len(SCRIPT_LCOL) + 4])
    mac = arqc.script_mac(mac_session_key(card, atc, psn), header, atc, cryptogram, SCRIPT_LCOL)
    return header + SCRIPT_LCOL + mac


def response_icc_data(card: SimCardProfile, atc: bytes, cryptogram: bytes, code: str,
                      psn: str | None = None) -> bytes:
    """Field 55 of the answer: ``91`` (ARPC by the card's method) and, for script cards, a ``72`` script."""
    key = ac_session_key(card, atc, psn)
    if card.arpc_method == 2:
        csu = CSU_APPROVED if code == "00" else CSU_DECLINED
        objects = [tlv.Tlv(0x91, arqc.generate_arpc_method2(key, cryptogram, csu) + csu)]
    else:
        arc = code.encode("ascii")
        objects = [tlv.Tlv(0x91, arqc.generate_arpc(key, cryptogram, arc) + arc)]
    if card.issuer_script and code == "00":
        objects.append(tlv.Tlv.template(0x72, tlv.Tlv(0x9F18, SCRIPT_ID),
                                        tlv.Tlv(0x86, script_command(card, atc, cryptogram, psn))))
    return tlv.encode(objects)
