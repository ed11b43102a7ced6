"""EMV data element dictionary: name, format and source of every tag the kernel, card and host exchange.

Formats follow EMV 4.4 Book 3 §4.3 and Annex A1: ``n`` numeric BCD right-justified (left-padded with ``0``
digits), ``cn`` compressed numeric BCD left-justified (right-padded with ``F``), ``b`` binary, ``a``
alphabetic, ``an`` alphanumeric, ``ans`` alphanumeric special. The format drives DOL padding (``emv.dol``).
Sources: ``ICC``, ``Terminal``, ``Issuer``. Unknown tags format as ``b``.

Length rules are in bytes, ``(min, max)``, from the "Length" column of Book 3 Annex A1 (for ``n``/``cn`` the
byte count of the digits: ``n 12`` is 6 bytes) and, for the contactless objects, EMV Contactless Book A Annex
A, Book C-2 Annex A and Book C-3 Annex A. ``check_length`` says whether a received value obeys them.

>>> TAGS[0x9F02].name, TAGS[0x9F02].fmt, fmt(0x5A), name(0xDF7F), fmt(0x9F20), TAGS[0x9F66].length
('Amount, Authorised (Numeric)', 'n', 'cn', 'Unknown DF7F', 'cn', (4, 4))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TagInfo", "TAGS", "Format", "Source", "name", "fmt", "check_length"]

Format = Literal["n", "cn", "b", "a", "an", "ans"]
Source = Literal["ICC", "Terminal", "Issuer"]


@dataclass(frozen=True)
class TagInfo:
    name: str
    fmt: Format
    source: Source
    length: tuple[int, int] = (0, 255)  # (min, max) bytes; the default means "var." with no stated bound


# EMV 4.4 Book 3 Annex A1 (data elements dictionary); a few ISO 7816-4 / Book 1 selection objects.
TAGS: dict[int, TagInfo] = {
    # --- selection (Book 1 §11–12) ---
    0x4F: TagInfo("Application Dedicated File (ADF) Name", "b", "ICC", (5, 16)),
    0x50: TagInfo("Application Label", "ans", "ICC", (1, 16)),
    0x61: TagInfo("Application Template", "b", "ICC"),
    0x6F: TagInfo("File Control Information (FCI) Template", "b", "ICC"),
    0x73: TagInfo("Directory Discretionary Template", "b", "ICC"),
    0x84: TagInfo("Dedicated File (DF) Name", "b", "ICC", (5, 16)),
    0x87: TagInfo("Application Priority Indicator", "b", "ICC", (1, 1)),
    0x88: TagInfo("Short File Identifier (SFI)", "b", "ICC", (1, 1)),
    0x9D: TagInfo("Directory Definition File (DDF) Name", "b", "ICC"),
    0xA5: TagInfo("File Control Information (FCI) Proprietary Template", "b", "ICC"),
    0xBF0C: TagInfo("File Control Information (FCI) Issuer Discretionary Data", "b", "ICC"),
    0x5F2D: TagInfo("Language Preference", "an", "ICC", (2, 8)),
    0x9F11: TagInfo("Issuer Code Table Index", "n", "ICC", (1, 1)),
    0x9F12: TagInfo("Application Preferred Name", "ans", "ICC", (1, 16)),
    0x9F38: TagInfo("Processing Options Data Object List (PDOL)", "b", "ICC"),
    0x9F4D: TagInfo("Log Entry", "b", "ICC"),
    # --- GPO and records (Book 3 §6.5.8, §10.1–10.2) ---
    0x70: TagInfo("READ RECORD Response Message Template", "b", "ICC"),
    0x77: TagInfo("Response Message Template Format 2", "b", "ICC"),
    0x80: TagInfo("Response Message Template Format 1", "b", "ICC"),
    0x82: TagInfo("Application Interchange Profile", "b", "ICC", (2, 2)),
    0x83: TagInfo("Command Template", "b", "Terminal"),
    0x94: TagInfo("Application File Locator (AFL)", "b", "ICC"),
    0x57: TagInfo("Track 2 Equivalent Data", "b", "ICC", (0, 19)),
    0x5A: TagInfo("Application Primary Account Number (PAN)", "cn", "ICC", (0, 10)),
    0x5F20: TagInfo("Cardholder Name", "ans", "ICC", (2, 26)),
    0x5F24: TagInfo("Application Expiration Date", "n", "ICC", (3, 3)),
    0x5F25: TagInfo("Application Effective Date", "n", "ICC", (3, 3)),
    0x5F28: TagInfo("Issuer Country Code", "n", "ICC", (2, 2)),
    0x5F30: TagInfo("Service Code", "n", "ICC", (2, 2)),
    0x5F34: TagInfo("Application Primary Account Number (PAN) Sequence Number", "n", "ICC", (1, 1)),
    0x8C: TagInfo("Card Risk Management Data Object List 1 (CDOL1)", "b", "ICC"),
    0x8D: TagInfo("Card Risk Management Data Object List 2 (CDOL2)", "b", "ICC"),
    0x8E: TagInfo("Cardholder Verification Method (CVM) List", "b", "ICC"),
    0x8F: TagInfo("Certification Authority Public Key Index", "b", "ICC", (1, 1)),
    0x90: TagInfo("Issuer Public Key Certificate", "b", "ICC"),
    0x92: TagInfo("Issuer Public Key Remainder", "b", "ICC"),
    0x93: TagInfo("Signed Static Application Data", "b", "ICC"),
    0x9F07: TagInfo("Application Usage Control", "b", "ICC", (2, 2)),
    0x9F08: TagInfo("Application Version Number (ICC)", "b", "ICC", (2, 2)),
    0x9F0D: TagInfo("Issuer Action Code - Default", "b", "ICC", (5, 5)),
    0x9F0E: TagInfo("Issuer Action Code - Denial", "b", "ICC", (5, 5)),
    0x9F0F: TagInfo("Issuer Action Code - Online", "b", "ICC", (5, 5)),
    0x9F13: TagInfo("Last Online Application Transaction Counter (ATC) Register", "b", "ICC", (2, 2)),
    0x9F14: TagInfo("Lower Consecutive Offline Limit", "b", "ICC", (1, 1)),
    0x9F17: TagInfo("Personal Identification Number (PIN) Try Counter", "b", "ICC", (1, 1)),
    0x9F1F: TagInfo("Track 1 Discretionary Data", "ans", "ICC"),
    0x9F23: TagInfo("Upper Consecutive Offline Limit", "b", "ICC", (1, 1)),
    0x9F32: TagInfo("Issuer Public Key Exponent", "b", "ICC", (1, 3)),
    0x9F42: TagInfo("Application Currency Code", "n", "ICC", (2, 2)),
    0x9F44: TagInfo("Application Currency Exponent", "n", "ICC", (1, 1)),
    0x9F46: TagInfo("ICC Public Key Certificate", "b", "ICC"),
    0x9F47: TagInfo("ICC Public Key Exponent", "b", "ICC", (1, 3)),
    0x9F49: TagInfo("Dynamic Data Authentication Data Object List (DDOL)", "b", "ICC"),
    0x9F4A: TagInfo("Static Data Authentication Tag List", "b", "ICC"),
    # --- GENERATE AC (Book 3 §6.5.5) ---
    0x9F26: TagInfo("Application Cryptogram", "b", "ICC", (8, 8)),
    0x9F27: TagInfo("Cryptogram Information Data", "b", "ICC", (1, 1)),
    0x9F36: TagInfo("Application Transaction Counter (ATC)", "b", "ICC", (2, 2)),
    0x9F10: TagInfo("Issuer Application Data", "b", "ICC", (0, 32)),
    0x9F4B: TagInfo("Signed Dynamic Application Data", "b", "ICC"),
    # --- terminal (Book 4 Annex A, Book 3 Annex A1) ---
    0x95: TagInfo("Terminal Verification Results", "b", "Terminal", (5, 5)),
    0x9A: TagInfo("Transaction Date", "n", "Terminal", (3, 3)),
    0x9B: TagInfo("Transaction Status Information", "b", "Terminal", (2, 2)),
    0x9C: TagInfo("Transaction Type", "n", "Terminal", (1, 1)),
    0x5F2A: TagInfo("Transaction Currency Code", "n", "Terminal", (2, 2)),
    0x5F36: TagInfo("Transaction Currency Exponent", "n", "Terminal", (1, 1)),
    0x9F01: TagInfo("Acquirer Identifier", "n", "Terminal", (6, 6)),
    0x9F02: TagInfo("Amount, Authorised (Numeric)", "n", "Terminal", (6, 6)),
    0x9F03: TagInfo("Amount, Other (Numeric)", "n", "Terminal", (6, 6)),
    0x9F06: TagInfo("Application Identifier (AID) - terminal", "b", "Terminal", (5, 16)),
    0x9F09: TagInfo("Application Version Number (Terminal)", "b", "Terminal", (2, 2)),
    0x9F15: TagInfo("Merchant Category Code", "n", "Terminal", (2, 2)),
    0x9F16: TagInfo("Merchant Identifier", "ans", "Terminal", (15, 15)),
    0x9F1A: TagInfo("Terminal Country Code", "n", "Terminal", (2, 2)),
    0x9F1B: TagInfo("Terminal Floor Limit", "b", "Terminal", (4, 4)),
    0x9F1C: TagInfo("Terminal Identification", "an", "Terminal", (8, 8)),
    0x9F1E: TagInfo("Interface Device (IFD) Serial Number", "an", "Terminal", (8, 8)),
    0x9F21: TagInfo("Transaction Time", "n", "Terminal", (3, 3)),
    0x9F33: TagInfo("Terminal Capabilities", "b", "Terminal", (3, 3)),
    0x9F34: TagInfo("Cardholder Verification Method (CVM) Results", "b", "Terminal", (3, 3)),
    0x9F35: TagInfo("Terminal Type", "n", "Terminal", (1, 1)),
    0x9F37: TagInfo("Unpredictable Number", "b", "Terminal", (4, 4)),
    0x9F39: TagInfo("Point-of-Service (POS) Entry Mode", "n", "Terminal", (1, 1)),
    0x9F40: TagInfo("Additional Terminal Capabilities", "b", "Terminal", (5, 5)),
    0x9F41: TagInfo("Transaction Sequence Counter", "n", "Terminal", (2, 4)),
    0x9F4E: TagInfo("Merchant Name and Location", "ans", "Terminal", (0, 255)),
    0x8A: TagInfo("Authorisation Response Code", "an", "Issuer", (2, 2)),
    # --- issuer (Book 3 §10.9–10.10) ---
    0x71: TagInfo("Issuer Script Template 1", "b", "Issuer"),
    0x72: TagInfo("Issuer Script Template 2", "b", "Issuer"),
    0x86: TagInfo("Issuer Script Command", "b", "Issuer"),
    0x89: TagInfo("Authorisation Code", "ans", "Issuer", (6, 6)),
    0x91: TagInfo("Issuer Authentication Data", "b", "Issuer", (8, 16)),
    0x9F18: TagInfo("Issuer Script Identifier", "b", "Issuer", (4, 4)),
    0x9F5B: TagInfo("Issuer Script Results", "b", "Terminal", (0, 255)),
    # --- offline data authentication (Book 2, Book 3 §10.3) ---
    0x9F48: TagInfo("ICC Public Key Remainder", "b", "ICC"),
    0x9F4C: TagInfo("ICC Dynamic Number", "b", "ICC", (2, 8)),
    0x9F45: TagInfo("Data Authentication Code", "b", "ICC", (2, 2)),
    0x9F2D: TagInfo("ICC PIN Encipherment Public Key Certificate", "b", "ICC"),
    # --- the rest of Book 3 Annex A1 ---
    0x42: TagInfo("Issuer Identification Number (IIN)", "n", "ICC", (3, 3)),
    0x5F50: TagInfo("Issuer URL", "ans", "ICC"),
    0x5F53: TagInfo("International Bank Account Number (IBAN)", "b", "ICC", (0, 34)),
    0x5F54: TagInfo("Bank Identifier Code (BIC)", "an", "ICC", (8, 11)),
    0x5F55: TagInfo("Issuer Country Code (alpha2 format)", "a", "ICC", (2, 2)),
    0x5F56: TagInfo("Issuer Country Code (alpha3 format)", "a", "ICC", (3, 3)),
    0x5F57: TagInfo("Account Type", "n", "Terminal", (1, 1)),
    0x81: TagInfo("Amount, Authorised (Binary)", "b", "Terminal", (4, 4)),
    0x97: TagInfo("Transaction Certificate Data Object List (TDOL)", "b", "ICC", (0, 252)),
    0x98: TagInfo("Transaction Certificate (TC) Hash Value", "b", "Terminal", (20, 20)),
    0x9F04: TagInfo("Amount, Other (Binary)", "b", "Terminal", (4, 4)),
    0x9F05: TagInfo("Application Discretionary Data", "b", "ICC", (1, 32)),
    0x9F0A: TagInfo("Application Selection Registered Proprietary Data", "b", "ICC"),
    0x9F0B: TagInfo("Cardholder Name Extended", "ans", "ICC", (27, 45)),
    0x9F19: TagInfo("Token Requestor ID", "n", "Terminal", (6, 6)),
    0x9F1D: TagInfo("Terminal Risk Management Data", "b", "Terminal", (1, 8)),
    0x9F20: TagInfo("Track 2 Discretionary Data", "cn", "ICC"),
    0x9F22: TagInfo("Certification Authority Public Key Index (Terminal)", "b", "Terminal", (1, 1)),
    0x9F24: TagInfo("Payment Account Reference (PAR)", "an", "ICC", (29, 29)),
    0x9F25: TagInfo("Last 4 Digits of PAN", "n", "ICC", (2, 2)),
    0x9F2E: TagInfo("ICC PIN Encipherment Public Key Exponent", "b", "ICC", (1, 3)),
    0x9F2F: TagInfo("ICC PIN Encipherment Public Key Remainder", "b", "ICC"),
    0x9F3A: TagInfo("Amount, Reference Currency", "b", "Terminal", (4, 4)),
    0x9F3B: TagInfo("Application Reference Currency", "n", "ICC", (2, 8)),
    0x9F3C: TagInfo("Transaction Reference Currency Code", "n", "Terminal", (2, 2)),
    0x9F3D: TagInfo("Transaction Reference Currency Exponent", "n", "Terminal", (1, 1)),
    0x9F43: TagInfo("Application Reference Currency Exponent", "n", "ICC", (1, 4)),
    0x9F4F: TagInfo("Log Format", "b", "ICC"),
    # --- contactless: Entry Point (Book B §3, Book A Annex A) ---
    0x9F29: TagInfo("Extended Selection", "b", "ICC"),
    0x9F2A: TagInfo("Kernel Identifier", "b", "ICC", (1, 8)),
    0x9F66: TagInfo("Terminal Transaction Qualifiers (TTQ)", "b", "Terminal", (4, 4)),
    0xDF8129: TagInfo("Outcome Parameter Set", "b", "Terminal", (8, 8)),
    0xDF8116: TagInfo("User Interface Request Data", "b", "Terminal", (22, 22)),
    # --- contactless: C-3 qVSDC / UnionPay qUICS (Book C-3 Annex A) ---
    0x9F5D: TagInfo("Available Offline Spending Amount", "n", "ICC", (6, 6)),
    0x9F69: TagInfo("Card Authentication Related Data", "b", "ICC", (5, 16)),
    0x9F6C: TagInfo("Card Transaction Qualifiers (CTQ)", "b", "ICC", (2, 2)),
    0x9F6E: TagInfo("Form Factor Indicator", "b", "ICC", (4, 4)),
    0x9F7C: TagInfo("Customer Exclusive Data", "b", "ICC", (0, 32)),
    0x9F5A: TagInfo("Application Program Identifier", "b", "ICC", (1, 16)),
    0x9F6B: TagInfo("Track 2 Data (contactless)", "b", "ICC", (0, 19)),
    0x9F51: TagInfo("Application Currency Code (qUICS)", "n", "ICC", (2, 2)),
    0x9F79: TagInfo("Electronic Cash Balance (qUICS)", "n", "ICC", (6, 6)),
    0xDF61: TagInfo("Partial Online / Card Feature Indicator (qUICS)", "b", "ICC", (1, 1)),
}


def name(tag: int) -> str:
    """The spec's name of ``tag``, or ``Unknown <hex>``."""
    info = TAGS.get(tag)
    return info.name if info else f"Unknown {tag:X}"


def fmt(tag: int) -> Format:
    """The tag's format; unknown tags are treated as binary (Book 3 §5.4)."""
    info = TAGS.get(tag)
    return info.fmt if info else "b"


def check_length(tag: int, value: bytes) -> bool:
    """True when ``value`` is as long as the dictionary allows for ``tag`` (unknown tags: any length)."""
    info = TAGS.get(tag)
    if info is None:
        return True
    low, high = info.length
    return low <= len(value) <= high
