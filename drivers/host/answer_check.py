"""Does an answer answer what was asked? The 0210 / 0230 / 0410 checked field by field against its request.

The exchange already ties an answer to its request by (MTI, STAN, terminal id) and, on a secured link, its MAC
proves the host sent it. That is not yet agreement: a host (or anything between it and its HSM) may answer a
30.00 purchase with an approval of 1.00, of a refund (processing code 20) instead of a purchase, in another
currency, or for another merchant. ISO 8583:1987 makes fields 3, 4, 41 and 49 mandatory echoes ("ME") of the
0210 / 0230 / 0410 and the acquirers of this dialect echo 42 too, so the terminal checks them:

* a field of ``ECHOED`` the answer carries must equal the request's (trailing spaces of 41/42 aside);
* a positive answer (field 39 ``00`` or ``11``) must carry every one the request carried;
* a **partial approval** (``10``) is never accepted: the terminal does not offer partial approval (a top-up is
  all or nothing), so the host took *some* money the terminal did not ask for.

Any of these raises ``AnswerMismatch`` (a ``RemoteProtocolError``): the outcome is unknown exactly as after a
time-out, so the caller takes the path it already has — a purchase is reversed (journal first), a reversal or
refund is repeated under the same STAN, an advice stays queued. Messages name the field, never its value.

>>> request = {"t": "0200", "3": "000000", "4": "000000003000", "41": "T1", "42": "M1", "49": "156"}
>>> check_answer(request, {**request, "t": "0210", "39": "05"})
>>> try:
...     check_answer(request, {**request, "t": "0210", "39": "00", "4": "000000000100"})
... except AnswerMismatch as exc:
...     print(exc.tag, exc)
4 0210 answers another amount (field 4) than the request's: outcome unknown
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flows.ports import APPROVAL_CODES, PARTIAL_APPROVAL
from pos_errors import AnswerMismatch

__all__ = ["ECHOED", "POSITIVE", "check_answer", "checked"]

log = logging.getLogger(__name__)

ECHOED: dict[str, str] = {  # field -> what the cashier's log calls it
    "3": "processing code", "4": "amount", "41": "terminal id", "42": "merchant id", "49": "currency"}
POSITIVE = APPROVAL_CODES  # approved / acknowledged: the answer must echo every field of ECHOED the request had
_PADDED = ("41", "42")  # fixed-width text: a host may trim the spaces


def check_answer(request: Mapping[str, str], answer: Mapping[str, str]) -> None:
    """Raise ``AnswerMismatch`` (``.tag`` = the field) when ``answer`` does not answer ``request``."""
    mti, code = answer.get("t", ""), answer.get("39", "")
    if code == PARTIAL_APPROVAL:
        raise AnswerMismatch(f"{mti} is a partial approval (10), which this terminal never offers: outcome unknown",
                             tag="39")
    for key, name in ECHOED.items():
        if key not in request:
            continue
        if key not in answer:
            if code in POSITIVE:
                raise AnswerMismatch(f"{mti} {code} does not echo the {name} (field {key}): outcome unknown",
                                     tag=key)
            continue
        sent, got = request[key], answer[key]
        if key in _PADDED:
            sent, got = sent.rstrip(), got.rstrip()
        if sent != got:
            raise AnswerMismatch(f"{mti} answers another {name} (field {key}) than the request's: outcome unknown",
                                 tag=key)


def checked(request: Mapping[str, str], answer: dict[str, str]) -> dict[str, str]:
    """``answer`` when it answers ``request``; else the mismatch is logged (MTI, STAN, field) and raised."""
    try:
        check_answer(request, answer)
    except AnswerMismatch as exc:
        log.warning("%s stan=%s: %s", request.get("t"), request.get("11"), exc)
        raise
    return answer
