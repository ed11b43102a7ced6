"""Answers that do not answer the request: what a faulty host (or a forger with the MAC key) sends.

Two ways the simulated acquirer can produce them, both after the issuer decided (the ledger holds the decision;
the answer is MACed as any answer, so only the terminal's own check against its request can catch it):

* a **partial approval** (field 39 ``10``): the magic amount ``x.10`` or ``force_response("10")``; the host
  approves half the amount (at least 0.01) and says so in field 4, as hosts that offer partial approval do. The
  ledger records the half as approved, so the money the terminal must give back is visible there.
* ``answer_change = (MTI, field)``: every answer of that MTI (``0210``, ``0230``, ``0410``) carries another
  value in that field (3 processing code, 4 amount, 41 terminal id, 42 merchant id, 49 currency) — scenario
  switch ``acquirer_answer_change = "0210:4"``.

>>> changed({"t": "0210", "4": "000000003000", "49": "156"}, "4")["4"]
'000000001500'
>>> changed({"t": "0410", "3": "000000"}, "3")["3"]
'200000'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.host import messages as m
from emv import tlv
from flows.ports import AuthRequest
from pos_errors import PosError

__all__ = ["PARTIAL", "CHANGEABLE", "partial_amount", "changed", "parse_change", "answer_to", "sale_totals",
           "received_summary"]

PARTIAL = "10"  # approved for a partial amount
CHANGEABLE = ("3", "4", "41", "42", "49")
_OTHER = {"3": ("000000", "200000"), "41": ("T9999999", "T9999998"), "42": ("M99999999999999", "M99999999999998"),
          "49": ("840", "344")}


def partial_amount(amount_minor: int) -> int:
    """What a partial approval of ``amount_minor`` approves: half, at least 1 fen."""
    return max(1, amount_minor // 2)


def changed(answer: Mapping[str, str], key: str) -> dict[str, str]:
    """A copy of ``answer`` whose field ``key`` holds another value of the same form."""
    if key not in CHANGEABLE:
        raise ValueError(f"answer field to change is one of {', '.join(CHANGEABLE)}, not {key!r}")
    out = dict(answer)
    value = out.get(key, "")
    if key == "4":
        amount = int(value) if value.isdigit() else 0
        out[key] = f"{partial_amount(amount) if amount > 1 else amount + 1:012d}"
    else:
        first, second = _OTHER[key]
        out[key] = second if value.rstrip() == first else first
    return out


def parse_change(value: str) -> tuple[str, str] | None:
    """The scenario switch's text ``"0210:4"`` as (MTI, field); ``""`` ends it. ValueError for anything else."""
    if not value:
        return None
    mti, _, key = value.partition(":")
    if mti not in ("0210", "0230", "0410") or key not in CHANGEABLE:
        raise ValueError(f"acquirer_answer_change is \"MTI:field\" (MTI 0210/0230/0410, field "
                         f"{'/'.join(CHANGEABLE)}) or \"\", not {value!r}")
    return mti, key


def sale_totals(amounts: list[int]) -> tuple[int, int]:
    """Count and sum, as field 63 of a settlement compares them."""
    return len(amounts), sum(amounts)


def answer_to(request: m.Fields, mti: str, echoed: tuple[str, ...], code: str) -> m.Fields:
    """An answer ``mti`` with ``code`` in field 39, echoing the request's ``echoed`` fields it carries."""
    fields = {key: request[key] for key in echoed if key in request}
    fields.update({"t": mti, "39": code})
    return fields


def received_summary(req: AuthRequest) -> dict[str, Any]:
    """What the scenarios check the acquirer received: entry mode, field 55 (no PAN in it), PIN or not."""
    try:
        icc = {f"{t:X}": v.hex().upper() for t, v in tlv.flatten(tlv.decode(req.icc_data)).items()}
    except PosError:
        icc = {}
    return {"entry_mode": req.pos_entry_mode, "icc": icc, "pin": req.pin_block is not None}
