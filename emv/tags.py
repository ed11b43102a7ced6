"""EMV data element dictionary: name, format and source of every tag the kernel, card and host exchange.

Formats follow EMV 4.4 Book 3 §4.3 and Annex A1: ``n`` numeric BCD right-justified (left-padded with ``0``
digits), ``cn`` compressed numeric BCD left-justified (right-padded with ``F``), ``b`` binary, ``a``
alphabetic, ``an`` alphanumeric, ``ans`` alphanumeric special. The format drives DOL padding (``emv.dol``).
Sources: ``ICC``, ``Terminal``, ``Issuer``. Tags 0x9F and 0xDF private ranges are not listed; unknown tags
format as ``b``.

>>> TAGS[0x9F02].name, TAGS[0x9F02].fmt, fmt(0x5A), name(0xDF7F)
('Amount, Authorised (Numeric)', 'n', 'cn', 'Unknown DF7F')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TagInfo", "TAGS", "Format", "Source", "name", "fmt"]

Format = Literal["n", "cn", "b", "a", "an", "ans"]
Source = Literal["ICC", "Terminal", "Issuer"]


@dataclass(frozen=True)
class TagInfo:
    name: str
    fmt: Format
    source: Source


# EMV 4.4 Book 3 Annex A1 (data elements dictionary); a few ISO 7816-4 / Book 1 selection objects.
TAGS: dict[int, TagInfo] = {
    # --- selection (Book 1 §11–12) ---
    0x4F: TagInfo("Application Dedicated File (ADF) Name", "b", "ICC"),
    0x50: TagInfo("Application Label", "ans", "ICC"),
    0x61: TagInfo("Application Template", "b", "ICC"),
    0x6F: TagInfo("File Control Information (FCI) Template", "b", "ICC"),
    0x73: TagInfo("Directory Discretionary Template", "b", "ICC"),
    0x84: TagInfo("Dedicated File (DF) Name", "b", "ICC"),
    0x87: TagInfo("Application Priority Indicator", "b", "ICC"),
    0x88: TagInfo("Short File Identifier (SFI)", "b", "ICC"),
    0x9D: TagInfo("Directory Definition File (DDF) Name", "b", "ICC"),
    0xA5: TagInfo("File Control Information (FCI) Proprietary Template", "b", "ICC"),
    0xBF0C: TagInfo("File Control Information (FCI) Issuer Discretionary Data", "b", "ICC"),
    0x5F2D: TagInfo("Language Preference", "an", "ICC"),
    0x9F11: TagInfo("Issuer Code Table Index", "n", "ICC"),
    0x9F12: TagInfo("Application Preferred Name", "ans", "ICC"),
    0x9F38: TagInfo("Processing Options Data Object List (PDOL)", "b", "ICC"),
    0x9F4D: TagInfo("Log Entry", "b", "ICC"),
    # --- GPO and records (Book 3 §6.5.8, §10.1–10.2) ---
    0x70: TagInfo("READ RECORD Response Message Template", "b", "ICC"),
    0x77: TagInfo("Response Message Template Format 2", "b", "ICC"),
    0x80: TagInfo("Response Message Template Format 1", "b", "ICC"),
    0x82: TagInfo("Application Interchange Profile", "b", "ICC"),
    0x83: TagInfo("Command Template", "b", "Terminal"),
    0x94: TagInfo("Application File Locator (AFL)", "b", "ICC"),
    0x57: TagInfo("Track 2 Equivalent Data", "b", "ICC"),
    0x5A: TagInfo("Application Primary Account Number (PAN)", "cn", "ICC"),
    0x5F20: TagInfo("Cardholder Name", "ans", "ICC"),
    0x5F24: TagInfo("Application Expiration Date", "n", "ICC"),
    0x5F25: TagInfo("Application Effective Date", "n", "ICC"),
    0x5F28: TagInfo("Issuer Country Code", "n", "ICC"),
    0x5F30: TagInfo("Service Code", "n", "ICC"),
    0x5F34: TagInfo("Application Primary Account Number (PAN) Sequence Number", "n", "ICC"),
    0x8C: TagInfo("Card Risk Management Data Object List 1 (CDOL1)", "b", "ICC"),
    0x8D: TagInfo("Card Risk Management Data Object List 2 (CDOL2)", "b", "ICC"),
    0x8E: TagInfo("Cardholder Verification Method (CVM) List", "b", "ICC"),
    0x8F: TagInfo("Certification Authority Public Key Index", "b", "ICC"),
    0x90: TagInfo("Issuer Public Key Certificate", "b", "ICC"),
    0x92: TagInfo("Issuer Public Key Remainder", "b", "ICC"),
    0x93: TagInfo("Signed Static Application Data", "b", "ICC"),
    0x9F07: TagInfo("Application Usage Control", "b", "ICC"),
    0x9F08: TagInfo("Application Version Number (ICC)", "b", "ICC"),
    0x9F0D: TagInfo("Issuer Action Code - Default", "b", "ICC"),
    0x9F0E: TagInfo("Issuer Action Code - Denial", "b", "ICC"),
    0x9F0F: TagInfo("Issuer Action Code - Online", "b", "ICC"),
    0x9F13: TagInfo("Last Online Application Transaction Counter (ATC) Register", "b", "ICC"),
    0x9F14: TagInfo("Lower Consecutive Offline Limit", "b", "ICC"),
    0x9F17: TagInfo("Personal Identification Number (PIN) Try Counter", "b", "ICC"),
    0x9F1F: TagInfo("Track 1 Discretionary Data", "ans", "ICC"),
    0x9F23: TagInfo("Upper Consecutive Offline Limit", "b", "ICC"),
    0x9F32: TagInfo("Issuer Public Key Exponent", "b", "ICC"),
    0x9F42: TagInfo("Application Currency Code", "n", "ICC"),
    0x9F44: TagInfo("Application Currency Exponent", "n", "ICC"),
    0x9F46: TagInfo("ICC Public Key Certificate", "b", "ICC"),
    0x9F47: TagInfo("ICC Public Key Exponent", "b", "ICC"),
    0x9F49: TagInfo("Dynamic Data Authentication Data Object List (DDOL)", "b", "ICC"),
    0x9F4A: TagInfo("Static Data Authentication Tag List", "b", "ICC"),
    # --- GENERATE AC (Book 3 §6.5.5) ---
    0x9F26: TagInfo("Application Cryptogram", "b", "ICC"),
    0x9F27: TagInfo("Cryptogram Information Data", "b", "ICC"),
    0x9F36: TagInfo("Application Transaction Counter (ATC)", "b", "ICC"),
    0x9F10: TagInfo("Issuer Application Data", "b", "ICC"),
    0x9F4B: TagInfo("Signed Dynamic Application Data", "b", "ICC"),
    # --- terminal (Book 4 Annex A, Book 3 Annex A1) ---
    0x95: TagInfo("Terminal Verification Results", "b", "Terminal"),
    0x9A: TagInfo("Transaction Date", "n", "Terminal"),
    0x9B: TagInfo("Transaction Status Information", "b", "Terminal"),
    0x9C: TagInfo("Transaction Type", "n", "Terminal"),
    0x5F2A: TagInfo("Transaction Currency Code", "n", "Terminal"),
    0x5F36: TagInfo("Transaction Currency Exponent", "n", "Terminal"),
    0x9F01: TagInfo("Acquirer Identifier", "n", "Terminal"),
    0x9F02: TagInfo("Amount, Authorised (Numeric)", "n", "Terminal"),
    0x9F03: TagInfo("Amount, Other (Numeric)", "n", "Terminal"),
    0x9F06: TagInfo("Application Identifier (AID) - terminal", "b", "Terminal"),
    0x9F09: TagInfo("Application Version Number (Terminal)", "b", "Terminal"),
    0x9F15: TagInfo("Merchant Category Code", "n", "Terminal"),
    0x9F16: TagInfo("Merchant Identifier", "ans", "Terminal"),
    0x9F1A: TagInfo("Terminal Country Code", "n", "Terminal"),
    0x9F1B: TagInfo("Terminal Floor Limit", "b", "Terminal"),
    0x9F1C: TagInfo("Terminal Identification", "an", "Terminal"),
    0x9F1E: TagInfo("Interface Device (IFD) Serial Number", "an", "Terminal"),
    0x9F21: TagInfo("Transaction Time", "n", "Terminal"),
    0x9F33: TagInfo("Terminal Capabilities", "b", "Terminal"),
    0x9F34: TagInfo("Cardholder Verification Method (CVM) Results", "b", "Terminal"),
    0x9F35: TagInfo("Terminal Type", "n", "Terminal"),
    0x9F37: TagInfo("Unpredictable Number", "b", "Terminal"),
    0x9F39: TagInfo("Point-of-Service (POS) Entry Mode", "n", "Terminal"),
    0x9F40: TagInfo("Additional Terminal Capabilities", "b", "Terminal"),
    0x9F41: TagInfo("Transaction Sequence Counter", "n", "Terminal"),
    0x9F4E: TagInfo("Merchant Name and Location", "ans", "Terminal"),
    0x8A: TagInfo("Authorisation Response Code", "an", "Issuer"),
    # --- issuer (Book 3 §10.9–10.10) ---
    0x71: TagInfo("Issuer Script Template 1", "b", "Issuer"),
    0x72: TagInfo("Issuer Script Template 2", "b", "Issuer"),
    0x86: TagInfo("Issuer Script Command", "b", "Issuer"),
    0x89: TagInfo("Authorisation Code", "ans", "Issuer"),
    0x91: TagInfo("Issuer Authentication Data", "b", "Issuer"),
    0x9F18: TagInfo("Issuer Script Identifier", "b", "Issuer"),
    0x9F5B: TagInfo("Issuer Script Results", "b", "Terminal"),
    # --- offline data authentication (Book 2, Book 3 §10.3) ---
    0x9F48: TagInfo("ICC Public Key Remainder", "b", "ICC"),
    0x9F4C: TagInfo("ICC Dynamic Number", "b", "ICC"),
    0x9F45: TagInfo("Data Authentication Code", "b", "ICC"),
    0x9F2D: TagInfo("ICC PIN Encipherment Public Key Certificate", "b", "ICC"),
}


def name(tag: int) -> str:
    """The spec's name of ``tag``, or ``Unknown <hex>``."""
    info = TAGS.get(tag)
    return info.name if info else f"Unknown {tag:X}"


def fmt(tag: int) -> Format:
    """The tag's format; unknown tags are treated as binary (Book 3 §5.4)."""
    info = TAGS.get(tag)
    return info.fmt if info else "b"
