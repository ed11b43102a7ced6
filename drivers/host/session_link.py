"""Key errors (``A0``) of the master/session key scheme (``[host] key_scheme = "master_session"``, the default).

The host answers ``A0`` when it cannot verify a request's MAC (it no longer has the working keys of our last
sign-on): it processed nothing, and it cannot MAC the answer under keys it does not share. So an ``A0`` usually
comes **without a MAC** — and then nothing in it is authenticated: anyone who can inject on the path could turn a
real approval into an ``A0`` (the customer charged, no top-up, no reversal). What the client does with it:

=====================================  ==========================================================================
the answer                             what happens
=====================================  ==========================================================================
``A0`` without a MAC, or with one      the working keys are dropped and the client signs on again (a failed
that does not verify under our MAK,    sign-on is logged: the next message tries again). Then, to a message that
to a 0200 (purchase or refund),        moves money, ``UnmacedKeyError`` (a RemoteProtocolError, outcome
0400/0401 or 0220/0221                 unknown): a purchase is reversed journal first, a reversal or refund is
                                       repeated under its STAN, an advice stays queued. Never "nothing charged"
the same, to an echo, a settlement     sent once more under the new keys as a **new message**: a fresh STAN
(0500) or a batch upload (0320)        (field 11) and transmission time (field 7) — ISO 8583 keeps a STAN only
                                       within one exchange (the request, its repeats, its answer), and the
                                       acquirer refuses a second 0320 / 0500 under a STAN it has (94): a
                                       forged ``A0`` may hide one it took. The upload is keyed by the original
                                       sale's STAN (field 62), so taking it twice changes nothing (moves no
                                       money; a second ``A0`` is a RemoteProtocolError)
``A0`` whose MAC verifies under our    authenticated: the keys are renewed; the message is sent once more under
MAK                                    them, except a 0200 whose PIN block is under the PIK the host dropped
                                       (field 52 without 53): that ``A0`` is its answer ("nothing charged")
=====================================  ==========================================================================

The same rule as the dukpt scheme (``drivers.host.dukpt_link``, security T16): an unauthenticated ``A0`` is
never an answer.

>>> sorted(MONEY_MTIS)
['0200', '0220', '0221', '0400', '0401']
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from drivers.host.dukpt_link import UnmacedKeyError
from drivers.host.messages import Fields, expected_key, transmission_time
from drivers.host.signon import KEY_ERROR_CODE, TerminalKeys, pack_with_mac, verify_mac
from pos_errors import LinkError, RemoteProtocolError

__all__ = ["MONEY_MTIS", "after_key_error", "renumbered", "session_exchange"]

log = logging.getLogger(__name__)

MONEY_MTIS = frozenset({"0200", "0400", "0401", "0220", "0221"})  # an unknown outcome of these can cost money

RoundTrip = Callable[[bytes, tuple[str, str, str]], tuple[Fields, bytes]]


def session_exchange(fields: Fields, keys: TerminalKeys, round_trip: RoundTrip) -> Fields:
    """One exchange MACed under ``keys.mak``; the answer's MAC verified.

    Raises:
        UnmacedKeyError: an ``A0`` without a MAC that verifies (the caller renews the keys: ``after_key_error``).
        RemoteProtocolError: any other answer whose MAC is missing or wrong (outcome unknown).
    """
    answer, raw = round_trip(pack_with_mac(fields, keys.mak), expected_key(fields))
    if answer.get("39") == KEY_ERROR_CODE and not _maced(raw, keys.mak):
        raise UnmacedKeyError(f"{answer['t']} stan={answer.get('11', '?')}: key error (A0) without a valid MAC: "
                              "not authenticated, not taken as an answer (outcome unknown)", tag="39")
    return verify_mac(raw, keys.mak, answer)


def after_key_error(fields: Fields, answer: Fields | UnmacedKeyError, renew: Callable[[], TerminalKeys],
                    send: Callable[[Fields, TerminalKeys], Fields],
                    renumber: Callable[[Fields], Fields] | None = None) -> Fields:
    """What follows an ``A0`` to ``fields`` (the module table); the caller has already dropped its keys.

    Args:
        answer: the authenticated ``A0``, or the ``UnmacedKeyError`` ``session_exchange`` raised.
        renew: signs on and returns the new keys (the client's ``_session``).
        send: one exchange under the given keys (``session_exchange``).
        renumber: the message sent again after the sign-on, as a new message (fresh STAN and field 7); only
            messages that move no money are sent so (a purchase's STAN is the journal's, named by its reversal).

    Raises:
        UnmacedKeyError: unauthenticated ``A0`` to a message that moves money (after the new sign-on, even a
            failed one: a LinkError here would tell the caller "not sent", and a purchase would not be reversed).
        LinkError, RemoteProtocolError: as any exchange (renewal or resend failed; ``A0`` again after it).
    """
    if isinstance(answer, UnmacedKeyError):
        if fields["t"] in MONEY_MTIS:
            try:
                renew()
            except (LinkError, RemoteProtocolError) as exc:  # the next message signs on again
                log.warning("%s stan=%s: new sign-on after an unMACed A0 failed: %s", fields["t"],
                            fields.get("11"), exc)
            raise answer
    elif "52" in fields and "53" not in fields:  # its PIN block is under the PIK the host dropped: not resent
        renew()
        return answer
    keys = renew()
    if renumber is not None and fields["t"] not in MONEY_MTIS:
        fields = renumber(fields)
    again = send(fields, keys)
    if again.get("39") == KEY_ERROR_CODE:
        raise RemoteProtocolError("acquirer reports a key error again after a new sign-on", tag="39")
    return again


def renumbered(fields: Fields, stan: int, now: dt.datetime) -> Fields:
    """``fields`` as a new message: STAN ``stan`` and, when it has one, transmission time ``now`` (field 7).

    >>> renumbered({"t": "0320", "7": "0101000000", "11": "000007"}, 9, dt.datetime(2026, 12, 3, 20, 1, 2))
    {'t': '0320', '7': '1203200102', '11': '000009'}
    """
    again = {**fields, "11": f"{stan:06d}"}
    if "7" in fields:
        again["7"] = transmission_time(now)
    log.info("%s stan=%s sent again after the new sign-on as stan=%s", fields["t"], fields.get("11"), again["11"])
    return again


def _maced(raw: bytes, mak: bytes) -> bool:
    """True when the answer carries a MAC (last) that verifies under ``mak``."""
    try:
        verify_mac(raw, mak)
    except RemoteProtocolError:
        return False
    return True
