"""The ``dukpt`` key scheme of the acquirer link (``[host] key_scheme = "dukpt"``): every message is MACed
under the MAC key of a DUKPT transaction key held by the PIN pad — no terminal master key, no sign-on.

* The request carries the transaction's KSN in **field 53** (a 0200 with a DUKPT PIN block already has it: the
  MAC then uses the same transaction key as the PIN) and its MAC last, in field 64 or 128, over the packed
  message from the MTI to the end of the field before the MAC — as in the master/session scheme.
* **Request MAC**: the pad's ``mac_request`` — TDES: retail MAC under the MAC *request* variant; AES: AES-CMAC
  (8 bytes) under the *MAC generation* working key (``emv.crypto.dukpt_mac``).
* **Answer MAC**: under the same transaction's *response* key (TDES MAC response variant; AES *MAC
  verification* key), checked by the pad (``verify_response``). A missing or wrong one is no answer
  (RemoteProtocolError: reversed like a timeout).
* An ``A0`` answer (the host could not verify the request's MAC) comes without a MAC, so nothing in it is
  authenticated: not its code, not a field 61 view of our counters. It is never returned as an answer — it is
  ``UnmacedKeyError`` (a RemoteProtocolError, outcome unknown): a purchase is reversed (the host finds nothing
  to undo when it truly processed nothing), a reversal or refund is repeated, an advice stays queued, an echo
  reports no answer. Each retry takes a new KSN (a message without a PIN block), so new transaction keys.

>>> mac_input({"t": "0800", "11": "000001", "70": "301"}, bytes(10))[:4]
b'0800'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from drivers.host.messages import Fields, expected_key, pack
from drivers.host.signon import KEY_ERROR_CODE, MAC_LEN, mac_field
from pos_errors import DeviceError, LinkError, RemoteProtocolError, UnmacedKeyError

__all__ = ["DukptMacer", "UnmacedKeyError", "mac_input", "dukpt_exchange"]

RoundTrip = Callable[[bytes, tuple[str, str, str]], tuple[Fields, bytes]]


class DukptMacer(Protocol):
    """The device holding the DUKPT key: the PIN pad (``drivers.pinpad.PinPad``)."""

    def next_ksn(self) -> bytes: ...

    def mac_request(self, ksn: bytes, data: bytes) -> bytes: ...

    def verify_response(self, ksn: bytes, data: bytes, mac: bytes) -> bool: ...


def mac_input(fields: Mapping[str, str], ksn: bytes) -> bytes:
    """The packed message with field 53 = ``ksn`` and a zero MAC field last (the MAC covers all but its 8 bytes)."""
    body = {k: v for k, v in fields.items() if k not in ("64", "128")}
    body["53"] = ksn.hex().upper()
    body[mac_field(body)] = "00" * MAC_LEN
    return pack(body)


def dukpt_exchange(fields: Fields, macer: DukptMacer, round_trip: RoundTrip) -> Fields:
    """One MACed exchange. LinkError when the pad cannot MAC (nothing sent); RemoteProtocolError when the
    answer's MAC is missing or wrong (outcome unknown)."""
    try:
        ksn = bytes.fromhex(fields["53"]) if "53" in fields else macer.next_ksn()
        raw = mac_input(fields, ksn)
        message = raw[:-MAC_LEN] + macer.mac_request(ksn, raw[:-MAC_LEN])
    except DeviceError as exc:
        raise LinkError(f"message not sent: the PIN pad cannot MAC it ({exc})") from exc
    answer, answer_raw = round_trip(message, expected_key(fields))
    if answer.get("39") == KEY_ERROR_CODE and mac_field(answer) not in answer:
        raise UnmacedKeyError(f"{answer['t']}: key error (A0) without a MAC: not authenticated, not processed as "
                              "an answer (outcome unknown)", tag="39")
    key = mac_field(answer)
    numbered = [int(k) for k in answer if k.isdigit()]
    if key not in answer or max(numbered) != int(key):
        raise RemoteProtocolError(f"message {answer['t']} carries no MAC in field {key}", tag=key)
    try:
        good = macer.verify_response(ksn, answer_raw[:-MAC_LEN], answer_raw[-MAC_LEN:])
    except DeviceError as exc:
        raise RemoteProtocolError(f"the answer's MAC could not be checked: {exc}", tag=key) from exc
    if not good:
        raise RemoteProtocolError(f"message {answer['t']} has a wrong MAC", tag=key)
    return answer  # the transport decoded ``answer_raw`` to match it: the same fields
