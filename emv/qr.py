"""EMV QR codes: merchant-presented payloads (build, parse, CRC) and consumer-presented codes (parse).

Merchant-presented mode (EMVCo "EMV QR Code Specification for Payment Systems: Merchant-Presented Mode" v1.1
§4) is a string of data objects ``ID (2 digits) | LENGTH (2 digits) | VALUE``; lengths count *characters*, not
bytes, so ``0104最佳运输`` is valid. IDs 26–51 (merchant account information), 62 (additional data) and 64
(language template) are templates of the same shape. The payload starts with ``000201`` (payload format
indicator 01) and ends with ``6304`` + CRC: CRC-16/CCITT-FALSE over the UTF-8 bytes of everything before it,
*including* ``6304``, written as four upper-case hex digits, leading zeros kept (§4.7.3).

Consumer-presented mode (EMVCo CPM v1.1 §7) is base64 of BER-TLV that starts with tag 85 "CPV01", decoded with
``emv.tlv``.

>>> p = build_mpm(account_gui="D156000000000", merchant_id="898440154110001", mcc="4814", amount_minor=3018,
...               merchant_name="IOT SIM TOPUP", city="SHENZHEN", bill_number="T1-0001")
>>> parse_mpm(p).amount_minor, parse_mpm(p).bill_number, p[-8:-4]
(3018, 'T1-0001', '6304')
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from emv.tlv import Tlv, decode
from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = ["MpmPayload", "build_mpm", "parse_mpm", "parse_cpm", "mpm_crc", "encode_objects", "CPM_VERSION"]

CPM_VERSION = b"CPV01"
_TEMPLATE_IDS = frozenset({*(f"{n:02d}" for n in range(26, 52)), "62", "64"})
_CRC_ID = "63"
_AMOUNT = re.compile(r"\d{1,10}(\.\d{1,2})?")
_MAX_LENGTH = {"59": 25, "60": 15, "62.01": 25, "62.07": 25}  # EMVCo MPM v1.1 §4.6 (format ans ..n)


def mpm_crc(text_before_crc_value: str) -> str:
    """CRC-16/CCITT-FALSE of the UTF-8 bytes, four upper-case hex digits (``binascii.crc_hqx`` seeded 0xFFFF).

    >>> mpm_crc("123456789")
    '29B1'
    """
    return f"{binascii.crc_hqx(text_before_crc_value.encode('utf-8'), 0xFFFF):04X}"


@dataclass(frozen=True)
class MpmPayload:
    """A parsed merchant-presented payload. ``objects`` maps ID -> value; ``templates`` maps a template ID to
    its own ID -> value map."""

    objects: Mapping[str, str]
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def point_of_initiation(self) -> str | None:
        return self.objects.get("01")

    @property
    def currency(self) -> str | None:
        return self.objects.get("53")

    @property
    def amount_minor(self) -> int | None:
        """Amount (ID 54, decimal text in yuan) as integer fen, None when absent."""
        text = self.objects.get("54")
        if text is None:
            return None
        whole, _, frac = text.partition(".")
        return int(whole) * 100 + int(frac.ljust(2, "0"))

    @property
    def bill_number(self) -> str | None:
        return self.templates.get("62", {}).get("01")

    @property
    def terminal_label(self) -> str | None:
        return self.templates.get("62", {}).get("07")

    @property
    def merchant_name(self) -> str | None:
        return self.objects.get("59")


def _objects(text: str, where: str) -> Iterator[tuple[str, str, int]]:
    """(id, value, offset) of each data object; lengths count characters."""
    pos = 0
    while pos < len(text):
        head = text[pos:pos + 4]
        if len(head) < 4 or not head.isdigit() or not head.isascii():
            raise RemoteProtocolError(f"{where}: no ID and length at character {pos}", offset=pos)
        length = int(head[2:])
        value = text[pos + 4:pos + 4 + length]
        if len(value) != length:
            raise RemoteProtocolError(f"{where}: object {head[:2]} says {length} characters, "
                                      f"{len(value)} remain", offset=pos, tag=head[:2])
        yield head[:2], value, pos
        pos += 4 + length


def parse_mpm(payload: str) -> MpmPayload:
    """Check and split a merchant-presented payload. Raises RemoteProtocolError (bad CRC, wrong payload format
    indicator, a length that does not match, a repeated ID, CRC not last) naming what is wrong."""
    if not isinstance(payload, str):
        raise RemoteProtocolError("an MPM payload is text")
    if not payload.startswith("000201"):
        raise RemoteProtocolError("payload format indicator must come first and be 01", offset=0, tag="00")
    objects: dict[str, str] = {}
    templates: dict[str, dict[str, str]] = {}
    for obj_id, value, pos in _objects(payload, "MPM"):
        if obj_id in objects:
            raise RemoteProtocolError(f"ID {obj_id} appears twice", offset=pos, tag=obj_id)
        if obj_id == _CRC_ID:
            if pos + 8 != len(payload) or len(value) != 4:
                raise RemoteProtocolError("the CRC (ID 63, length 04) must be the last object", offset=pos,
                                          tag=_CRC_ID)
            if value != mpm_crc(payload[:pos + 4]):
                raise RemoteProtocolError(f"CRC {value!r} does not match the payload", offset=pos, tag=_CRC_ID)
        if obj_id in _TEMPLATE_IDS:
            templates[obj_id] = {sub: v for sub, v, _ in _objects(value, f"template {obj_id}")}
        objects[obj_id] = value
    if _CRC_ID not in objects:
        raise RemoteProtocolError("no CRC (ID 63)", tag=_CRC_ID)
    amount = objects.get("54")
    if amount is not None and not _AMOUNT.fullmatch(amount):
        raise RemoteProtocolError(f"amount {amount!r} is not a decimal", tag="54")
    return MpmPayload(objects, templates)


def encode_objects(items: Mapping[str, str]) -> str:
    """``ID LEN VALUE`` for each item, in the given order. Raises LocalProtocolError for a bad ID or a value
    over 99 characters."""
    out = []
    for obj_id, value in items.items():
        if len(obj_id) != 2 or not obj_id.isdigit():
            raise LocalProtocolError(f"an MPM ID is two digits, not {obj_id!r}", tag=obj_id)
        if not 0 < len(value) <= 99:
            raise LocalProtocolError(f"ID {obj_id}: value of {len(value)} characters (1–99 allowed)", tag=obj_id)
        out.append(f"{obj_id}{len(value):02d}{value}")
    return "".join(out)


def build_mpm(*, account_gui: str, merchant_id: str, mcc: str, amount_minor: int, merchant_name: str, city: str,
              bill_number: str, currency: str = "156", country: str = "CN", account_id: str = "26",
              terminal_label: str = "") -> str:
    """A dynamic (point of initiation 12) merchant-presented payload with the CRC appended.

    The amount is written in yuan with two decimals (``3018`` fen → ``30.18``). Merchant name, bill number and
    terminal label are at most 25 characters, the city 15 (§4.6). Raises LocalProtocolError.
    """
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise LocalProtocolError(f"amount_minor must be a positive int, not {amount_minor!r}", tag="54")
    if len(mcc) != 4 or not mcc.isdigit():
        raise LocalProtocolError(f"MCC is four digits, not {mcc!r}", tag="52")
    if account_id not in _TEMPLATE_IDS or account_id in ("62", "64"):
        raise LocalProtocolError(f"merchant account information uses IDs 26–51, not {account_id!r}", tag=account_id)
    for tag, what, value in (("59", "merchant name", merchant_name), ("60", "merchant city", city),
                             ("62.01", "bill number", bill_number), ("62.07", "terminal label", terminal_label)):
        if len(value) > _MAX_LENGTH[tag]:
            raise LocalProtocolError(f"{what} is at most {_MAX_LENGTH[tag]} characters (MPM §4.6), "
                                     f"not {len(value)}", tag=tag)
    additional = {"01": bill_number} | ({"07": terminal_label} if terminal_label else {})
    body = encode_objects({
        "00": "01", "01": "12",
        account_id: encode_objects({"00": account_gui, "01": merchant_id}),
        "52": mcc, "53": currency, "54": f"{amount_minor // 100}.{amount_minor % 100:02d}",
        "58": country, "59": merchant_name, "60": city,
        "62": encode_objects(additional),
    }) + _CRC_ID + "04"
    return body + mpm_crc(body)


def parse_cpm(text: str) -> list[Tlv]:
    """Decode a consumer-presented code: base64 of BER-TLV whose first object is 85 "CPV01".

    Raises RemoteProtocolError when the text is not base64, the TLV is malformed, or the header is missing.
    """
    try:
        raw = base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise RemoteProtocolError("not base64 text") from exc
    objects = list(decode(raw))
    if not objects or objects[0].tag != 0x85 or objects[0].value != CPM_VERSION:
        raise RemoteProtocolError('a consumer-presented code starts with 85 "CPV01"', offset=0, tag="85")
    return objects
