"""The acquirer host's ISO 8583:1987 dialect as a pyiso8583 spec, plus the response-code table.

Wire choices (fixed here, nowhere else):

* MTI: 4 ASCII digits (``b"0200"``).
* Bitmaps: **binary**, 8 bytes each (primary, and secondary when a field 65–128 is present). Binary is what
  most acquirers behind a 2-byte length prefix use and it keeps a 0200 shorter than the hex-string variant.
* Numeric and text fields: ASCII, right-justified zero-padded numbers, space-padded fixed text.
* Variable lengths: ASCII digits (``LL`` = 2 bytes, ``LLL`` = 3 bytes), also for binary fields.
* Binary fields (52, 53, 55, 64): raw bytes; pyiso8583 presents them as upper-case hex strings.

Deviations from the 1987 field table, on purpose:

====  ==========================  ===================================================================
 52   PIN data                    1987: ``b 64`` fixed. Here ``LL b ..16`` so one field carries an
                                  8-byte ISO 9564 format 0 (TDES) or a 16-byte format 4 (AES) block.
 53   Security related control    1987: ``n 16`` fixed. Here ``LL b ..12``: the DUKPT KSN as sent by
                                  the PIN pad, 10 bytes (TDES, X9.24-1) or 12 bytes (AES, X9.24-3).
 55   ICC data                    not in 1987 (reserved ISO); ``LLL b ..255`` as in the 1993 edition.
 60   batch number                private use ``LLL ans``; we send the 6-digit batch number.
 61   host's view of the terminal private use ``LLL ans``, in an 0810 only: the last STAN, batch and invoice
                                  the host received from this terminal, 6 digits each (``counters.py``).
 62   invoice number              private use ``LLL ans``; we send the 6-digit invoice number (in a 0320:
                                  the original STAN).
 63   settlement totals           private use ``LLL ans``, 30 digits: sale count (3), sale amount (12),
                                  void count (3), void amount (12).
====  ==========================  ===================================================================

Fields 64 and 128 carry the MAC (field 64 with a primary bitmap only, 128 with a secondary one); what is MACed and
how is in ``drivers.host.signon`` and docs/protocols/acquirer.md.

>>> import iso8583
>>> raw, _ = iso8583.encode({"t": "0800", "11": "000007", "70": "301"}, SPEC)
>>> bytes(raw).hex(" ")
'30 38 30 30 80 20 00 00 00 00 00 00 04 00 00 00 00 00 00 00 30 30 30 30 30 37 33 30 31'
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SPEC",
    "FIELDS_USED",
    "RESPONSE_CODES",
    "APPROVED_CODES",
    "describe_response",
    "MTI_AUTH_REQUEST",
    "MTI_AUTH_RESPONSE",
    "MTI_REVERSAL",
    "MTI_REVERSAL_REPEAT",
    "MTI_REVERSAL_RESPONSE",
    "MTI_ECHO",
    "MTI_ECHO_RESPONSE",
    "PROCESSING_PURCHASE",
    "NMI_ECHO",
    "MTI_SETTLEMENT",
    "MTI_BATCH_UPLOAD",
    "PROCESSING_SETTLE",
    "PROCESSING_SETTLE_AFTER_UPLOAD",
]

MTI_AUTH_REQUEST = "0200"
MTI_AUTH_RESPONSE = "0210"
MTI_REVERSAL = "0400"
MTI_REVERSAL_REPEAT = "0401"
MTI_REVERSAL_RESPONSE = "0410"
MTI_ECHO = "0800"
MTI_ECHO_RESPONSE = "0810"
PROCESSING_PURCHASE = "000000"
NMI_ECHO = "301"  # field 70 network management information code: echo test
MTI_SETTLEMENT = "0500"
MTI_BATCH_UPLOAD = "0320"
PROCESSING_SETTLE = "920000"  # close the batch
PROCESSING_SETTLE_AFTER_UPLOAD = "960000"  # close the batch again after a batch upload


def _fixed(max_len: int, desc: str, enc: str = "ascii") -> dict[str, Any]:
    return {"data_enc": enc, "len_enc": "ascii", "len_type": 0, "max_len": max_len, "desc": desc}


def _var(digits: int, max_len: int, desc: str, enc: str = "ascii") -> dict[str, Any]:
    return {"data_enc": enc, "len_enc": "ascii", "len_type": digits, "max_len": max_len, "desc": desc}


SPEC: dict[str, dict[str, Any]] = {
    "h": _fixed(0, "Message Header (none)"),
    "t": _fixed(4, "Message Type Indicator"),
    "p": _fixed(8, "Bitmap, Primary", enc="b"),
    "1": _fixed(8, "Bitmap, Secondary", enc="b"),
    "2": _var(2, 19, "Primary Account Number (PAN)"),
    "3": _fixed(6, "Processing Code"),
    "4": _fixed(12, "Amount, Transaction"),
    "7": _fixed(10, "Transmission Date and Time (MMDDhhmmss)"),
    "11": _fixed(6, "System Trace Audit Number"),
    "12": _fixed(6, "Time, Local Transaction (hhmmss)"),
    "13": _fixed(4, "Date, Local Transaction (MMDD)"),
    "14": _fixed(4, "Date, Expiration (YYMM)"),
    "22": _fixed(3, "POS Entry Mode"),
    "23": _fixed(3, "Card Sequence Number"),
    "25": _fixed(2, "POS Condition Code"),
    "35": _var(2, 37, "Track 2 Data"),
    "37": _fixed(12, "Retrieval Reference Number"),
    "38": _fixed(6, "Authorization Identification Response"),
    "39": _fixed(2, "Response Code"),
    "41": _fixed(8, "Card Acceptor Terminal Identification"),
    "42": _fixed(15, "Card Acceptor Identification Code"),
    "49": _fixed(3, "Currency Code, Transaction"),
    "52": _var(2, 16, "PIN Data (8-byte format 0 or 16-byte format 4)", enc="b"),
    "53": _var(2, 12, "Security Related Control Information (DUKPT KSN)", enc="b"),
    "55": _var(3, 255, "ICC Data (EMV BER-TLV)", enc="b"),
    "60": _var(3, 999, "Private: Batch Number"),
    "61": _var(3, 999, "Private: Host's View of the Terminal (last STAN, batch, invoice)"),
    "62": _var(3, 999, "Private: Invoice Number"),
    "63": _var(3, 999, "Private: Settlement Totals"),
    "64": _fixed(8, "Message Authentication Code", enc="b"),
    "70": _fixed(3, "Network Management Information Code"),
    "90": _fixed(42, "Original Data Elements"),
    "128": _fixed(8, "Message Authentication Code (with a secondary bitmap)", enc="b"),
}

FIELDS_USED: tuple[int, ...] = tuple(sorted(int(k) for k in SPEC if k.isdigit() and k != "1"))

# ISO 8583:1987 field 39, the codes this dialect produces or expects; "Q1" is our private code for a
# cryptogram (ARQC) that failed issuer verification, kept apart from 05 so scenarios tell the causes apart.
RESPONSE_CODES: dict[str, str] = {
    "00": "Approved",
    "01": "Refer to card issuer",
    "03": "Invalid merchant",
    "04": "Pick up card",
    "05": "Do not honour",
    "10": "Approved for partial amount",
    "11": "Approved (VIP)",
    "12": "Invalid transaction",
    "13": "Invalid amount",
    "14": "Invalid card number (no such card)",
    "25": "Unable to locate original transaction",
    "30": "Format error",
    "41": "Lost card, pick up",
    "43": "Stolen card, pick up",
    "51": "Insufficient funds",
    "54": "Expired card",
    "55": "Incorrect PIN",
    "57": "Transaction not permitted to cardholder",
    "58": "Transaction not permitted to terminal",
    "61": "Exceeds amount limit",
    "63": "Security violation (PIN block could not be verified)",
    "68": "Response received too late",
    "75": "Allowable number of PIN tries exceeded",
    "91": "Issuer or switch inoperative",
    "94": "Duplicate transmission",
    "95": "Reconcile error (settlement totals differ)",
    "96": "System malfunction",
    "Q1": "Card authentication failed (ARQC did not verify)",
    "A0": "MAC or key error: sign on again (never an approval)",
}

APPROVED_CODES: frozenset[str] = frozenset({"00", "10", "11"})


def describe_response(code: str) -> str:
    """Meaning of a field 39 value for logs and the cashier's screen.

    >>> describe_response("51")
    'Insufficient funds'
    >>> describe_response("ZZ")
    'Unknown response code ZZ'
    """
    return RESPONSE_CODES.get(code, f"Unknown response code {code}")
