"""What became of the top-up when money is given back, and putting it back when the money-back step is refused.

A void or refund asks the carrier to take the top-up off the SIM first, journal first (``ask_carrier_first``:
``void_pending`` / ``refund_pending`` with the intent ``reversing`` / ``reversing_anyway`` before the request; a
refund's own STAN in the same write; recovery resumes a row cut there with ``resume_carrier``). The
row's ``topup_status`` then records the carrier's word, so receipts and reprints say what really happened:

    ==================  =====================================================================
    ``topup_status``    meaning
    ==================  =====================================================================
    ``reversed``        the carrier took the top-up back
    ``applied``         it stays on the SIM (the carrier refused; the supervisor chose "anyway")
    ``reverse_unknown`` the carrier could not be asked or its answer was lost ("anyway")
    ==================  =====================================================================

When the bank (0400 reason 17, refund 0200) or the wallet platform then **refuses** to give the money back, the
customer has paid and the top-up is gone. The row goes to ``topup_reapply`` in the same write that records the
refusal (journal first), and the top-up is put back as a new carrier order, ``<order>-RA1`` (deterministic: after
a crash the same order id is asked about again, never a second one), funded by the same payment; the row's
``topup_status`` becomes ``applied#1``, so a later void reverses ``<order>-RA1`` (``carrier_order``). Recovery
follows a ``topup_reapply`` row up the same way (status query first; resend only when it never arrived)::

    void_pending / refund_pending ─► topup_reapply ─► completed (topup_status applied: the sale stands)

A sale kept after the carrier could not be asked (``completed``, ``reverse_unknown``: the reversal may have
arrived) is followed up by ``ask_what_became``: a status query (the order's ``reversed_at``), never a second
reversal; taken back after all → ``completed ─► topup_reapply`` and put back.

A sale **given back** "anyway" (``voided`` / ``refunded``) while the carrier could not be asked (``reverse_unknown``:
the top-up may still be on the SIM — the carrier would keep a top-up the customer got their money back for) is
followed up by ``take_back_late`` at the same places: the order's status first; already taken back → ``reversed``;
still on the SIM → ``reversing_late`` written (journal first) and the reversal sent under the same order id (the
carrier's idempotency key: a repeat is the same reversal, never a second one), then its word — ``reversed``, or
``applied`` when the carrier now refuses (used, window passed: the carrier keeps it, as the supervisor accepted)::

    voided / refunded (reverse_unknown) ─► (reversing_late) ─► voided / refunded (reversed | applied)

>>> carrier_order(TxnRecord(1, "completed", "T1-42", "", "", "", "", 1, 0, "card", "", "", topup_status="applied#1"))
'T1-42-RA1'
"""

from __future__ import annotations

from collections.abc import Mapping

from flows.messages import Msg, state_label
from flows.ports import CarrierPort, CarrierStatus, JournalPort, TxnRecord
from flows.txn_state import TxnState
from pos_errors import LinkError, LocalProtocolError, RemoteProtocolError

__all__ = ["GIVEN_BACK_OPEN", "REVERSING", "REVERSING_ANYWAY", "REVERSING_LATE", "TOPUP_KEPT", "TOPUP_REVERSED",
           "TOPUP_UNKNOWN", "after_carrier", "ask_carrier_first", "ask_what_became", "carrier_order",
           "given_back_unknown", "reapply_order_id", "reapply_topup", "reason_msg", "receipt_footer", "refused_state",
           "resume_carrier", "resuming", "reverse_topup_first", "take_back_late", "topup_word", "unknown_topup"]

TOPUP_REVERSED = "reversed"
TOPUP_KEPT = str(CarrierStatus.APPLIED)
TOPUP_UNKNOWN = "reverse_unknown"
# written with ``void_pending`` / ``refund_pending`` BEFORE the carrier is asked (journal first): a cut there leaves
# a row recovery can finish — it asks the carrier again (safe to repeat) and goes on, or puts the row back to
# ``completed``
REVERSING, REVERSING_ANYWAY = "reversing", "reversing_anyway"
# a sale given back while the carrier was unreachable: written BEFORE the late reversal is sent (``take_back_late``)
REVERSING_LATE = "reversing_late"
GIVEN_BACK_OPEN = (TOPUP_UNKNOWN, REVERSING_LATE)  # a given-back sale's top-up words still to follow up


def _split(topup_status: str | None) -> tuple[str, int]:
    """``applied#2`` → (``applied``, 2): the word, and how many times the top-up was put back (its order)."""
    word, _, gen = (topup_status or "").partition("#")
    return word, int(gen) if gen.isdigit() else 0


def topup_word(record: TxnRecord) -> str:
    return _split(record.topup_status)[0]


def carrier_order(record: TxnRecord, generation: int | None = None) -> str:
    """The carrier order whose top-up is (or was last) on the SIM: the sale's, or the latest put-back one."""
    gen = _split(record.topup_status)[1] if generation is None else generation
    return record.order_id if gen == 0 else f"{record.order_id[:56]}-RA{gen}"


def after_carrier(reason: str, record: TxnRecord) -> str:
    """``topup_status`` to record after ``reverse_topup_first`` answered ``reason`` ("" = reversed)."""
    return _with_gen(TOPUP_REVERSED if not reason else TOPUP_UNKNOWN if reason == "unreachable" else TOPUP_KEPT,
                     record)


def reverse_topup_first(carrier: CarrierPort, order_id: str, why: str) -> str:
    """Ask the carrier to take the top-up back: "" when it did, else the reason (the carrier's code, or
    ``unreachable`` when it could not be asked or its answer was lost or not believed)."""
    try:
        answer = carrier.reverse_topup(order_id, why)
    except (LinkError, RemoteProtocolError, LocalProtocolError):
        return "unreachable"
    return "" if answer.reversed else (answer.reason or "refused")


def _with_gen(word: str, record: TxnRecord) -> str:
    gen = _split(record.topup_status)[1]
    return f"{word}#{gen}" if gen else word


def ask_carrier_first(carrier: CarrierPort, journal: JournalPort, record: TxnRecord, *, anyway: bool,
                      supervisor_id: str, pending: str = TxnState.VOID_PENDING,
                      intent: Mapping[str, object] | None = None) -> tuple[str, bool]:
    """A void's or refund's carrier step, journal first: ``pending`` (``void_pending`` / ``refund_pending``) +
    intent, then the carrier, then its word.

    Returns (the carrier's reason, "" when it reversed; go on with the money-back step). When the carrier kept the
    top-up and the supervisor did not choose "anyway", the row is ``completed`` again and nothing else is sent.
    ``intent``: more columns for the intent write (a void's STAN cleared, a refund's own STAN). Also called by
    recovery for a row cut between the intent and the carrier's word (``resume_carrier``)."""
    kind = "refund" if pending == TxnState.REFUND_PENDING else "void"
    if record.state != pending or topup_word(record) not in (REVERSING, REVERSING_ANYWAY):
        columns = {"reversal_stan": None} if intent is None else dict(intent)  # a new void: a new STAN
        journal.update(record.txn_id, pending, **columns,
                       topup_status=_with_gen(REVERSING_ANYWAY if anyway else REVERSING, record),
                       message=f"{kind} requested by supervisor {supervisor_id}: asking the carrier first")
    reason = reverse_topup_first(carrier, carrier_order(record), kind)
    if reason and not anyway:
        journal.update(record.txn_id, TxnState.COMPLETED, topup_status=after_carrier(reason, record),
                       message=f"{kind}: carrier kept the top-up ({reason}); nothing else sent")
        return reason, False
    trail = (f"top-up NOT reversed ({reason}): supervisor {supervisor_id} chose to give the money back anyway"
             if reason else "top-up reversed by the carrier")
    journal.update(record.txn_id, pending, topup_status=after_carrier(reason, record),
                   message=f"{kind} by supervisor {supervisor_id}; {trail}")
    return reason, True


def resuming(record: TxnRecord) -> bool:
    """A ``void_pending`` / ``refund_pending`` row cut before the carrier's word was journalled."""
    return (record.state in (TxnState.VOID_PENDING, TxnState.REFUND_PENDING)
            and topup_word(record) in (REVERSING, REVERSING_ANYWAY))


def resume_carrier(carrier: CarrierPort, journal: JournalPort, record: TxnRecord) -> tuple[str, bool]:
    """Recovery of such a row: the carrier step again, with the supervisor's recorded choice (and, for a refund,
    the refund STAN already on the row: the same refund is sent, never a second one)."""
    return ask_carrier_first(carrier, journal, record, anyway=topup_word(record) == REVERSING_ANYWAY,
                             supervisor_id="recovery", pending=record.state)


def refused_state(record: TxnRecord, otherwise: str = TxnState.COMPLETED) -> str:
    """Where a refused void/refund leaves the row: ``topup_reapply`` when the top-up is (or may be) off the SIM."""
    return TxnState.TOPUP_REAPPLY if topup_word(record) in (TOPUP_REVERSED, TOPUP_UNKNOWN) else otherwise


def receipt_footer(topup_status: str | None) -> str:
    """The void/refund receipt's last line (catalogue key) for the row's ``topup_status``."""
    return {TOPUP_REVERSED: "vrcpt.topup_reversed", TOPUP_UNKNOWN: "vrcpt.topup_unknown",
            REVERSING_LATE: "vrcpt.topup_unknown"}.get(
        _split(topup_status)[0], "vrcpt.topup_not_reversed")


def reapply_order_id(record: TxnRecord) -> str:
    """The next put-back order: ``<order>-RA1``, then ``-RA2`` after a second refused void (same row)."""
    return carrier_order(record, _split(record.topup_status)[1] + 1)


def reapply_topup(carrier: CarrierPort, journal: JournalPort, record: TxnRecord, what: Msg) -> Msg:
    """Put the top-up of a ``topup_reapply`` row back on the SIM. ``what``: the refusal, said first on screen.

    Completes the row when the carrier applied it (or the original top-up was never taken back); otherwise the
    row stays ``topup_reapply`` for recovery and the message says so."""
    order, sim = reapply_order_id(record), f"…{record.iccid[-4:]}"
    gen = _split(record.topup_status)[1]
    try:
        # unknown whether the carrier took it back: asking to reverse again settles it (safe to repeat: an order
        # reversed before answers "reversed"; one still on the SIM and no longer reversible answers why not)
        unknown = topup_word(record) == TOPUP_UNKNOWN
        if unknown and not carrier.reverse_topup(carrier_order(record), "void refused").reversed:
            journal.update(record.txn_id, TxnState.COMPLETED, message="money-back refused; the carrier kept the top-up",
                           topup_status=f"{TOPUP_KEPT}#{gen}" if gen else TOPUP_KEPT)
            return Msg("reapply.done", {"what": what, "sim": sim})
        result = carrier.order_status(order)
        if result.status == CarrierStatus.NOT_FOUND:
            result = carrier.create_topup(order, record.iccid, record.plan_id, record.amount_minor,
                                          funding_ref=record.rrn or "")
    except (LinkError, RemoteProtocolError, LocalProtocolError) as exc:
        journal.update(record.txn_id, TxnState.TOPUP_REAPPLY, message=f"top-up {order} not answered: {exc}")
        return Msg("reapply.pending", {"what": what, "sim": sim, "order": order})
    if result.status == CarrierStatus.APPLIED:
        journal.update(record.txn_id, TxnState.COMPLETED, topup_status=f"{TOPUP_KEPT}#{gen + 1}",
                       balance_after_minor=result.balance_minor, message=f"top-up put back as order {order}")
        return Msg("reapply.done", {"what": what, "sim": sim})
    journal.update(record.txn_id, TxnState.TOPUP_REAPPLY, message=f"top-up {order}: {result.status}")
    return Msg("reapply.pending", {"what": what, "sim": sim, "order": order})


def unknown_topup(record: TxnRecord) -> bool:
    """A kept sale (the supervisor cancelled the void/refund) whose carrier reversal was sent but never answered:
    nobody knows whether the top-up is still on the SIM (``ask_what_became`` finds out)."""
    return record.state == TxnState.COMPLETED and topup_word(record) == TOPUP_UNKNOWN


def ask_what_became(carrier: CarrierPort, journal: JournalPort, record: TxnRecord) -> Msg:
    """Follow-up of an ``unknown_topup`` row (recovery at boot, open items, before settlement): ask the carrier
    about the order — a query, never a second reversal, so asking again is safe — and record its word. Still on
    the SIM → ``applied`` (the sale stands as the supervisor chose). Taken back after all (the lost reversal had
    arrived) → the customer paid and has no top-up: ``topup_reapply`` (journal first) and it is put back."""
    order, sim = carrier_order(record), f"…{record.iccid[-4:]}"
    facts = {"sim": sim, "order": order}
    try:
        result = carrier.order_status(order)
    except (LinkError, RemoteProtocolError, LocalProtocolError):
        return Msg("unknown.still", facts)  # nothing learned, nothing written: asked again next time
    if result.status == CarrierStatus.APPLIED and not result.reversed:
        journal.update(record.txn_id, TxnState.COMPLETED, topup_status=_with_gen(TOPUP_KEPT, record),
                       message=f"carrier: top-up {order} is still on the SIM")
        return Msg("unknown.kept", facts)
    if result.status == CarrierStatus.APPLIED:
        journal.update(record.txn_id, TxnState.TOPUP_REAPPLY, topup_status=_with_gen(TOPUP_REVERSED, record),
                       message=f"carrier: top-up {order} had been taken back; the sale stands: putting it back")
        return reapply_topup(carrier, journal, journal.get(record.txn_id), Msg("unknown.was_reversed", facts))
    return Msg("unknown.still", facts)  # pending / failed / not found: not an answer to "is it on the SIM"


def reason_msg(reason: str) -> Msg:
    """The carrier's reason for keeping a top-up, in the supervisor's words."""
    known = ("used", "window_passed", "not_applied", "not_found", "unreachable")
    return Msg(f"reverse.{reason if reason in known else 'other'}")


def given_back_unknown(record: TxnRecord) -> bool:
    """A sale given back (voided / refunded) "anyway" while the carrier could not be asked, or whose late reversal
    is still unanswered: the top-up may still be on the SIM (``take_back_late`` follows it up)."""
    return record.state in (TxnState.VOIDED, TxnState.REFUNDED) and topup_word(record) in GIVEN_BACK_OPEN


def take_back_late(carrier: CarrierPort, journal: JournalPort, record: TxnRecord) -> Msg:
    """Follow-up of a ``given_back_unknown`` row (recovery at boot, open items ENTER, before settlement).

    Asks the order's status first (safe to repeat). Already taken back → ``reversed``. Still on the SIM → the
    intent ``reversing_late`` is journalled, then the reversal is sent under the order's own id (a repeat after a
    cut is the same reversal at the carrier) and its word recorded: ``reversed``, or ``applied`` when the carrier
    keeps it now. No answer, or an answer that says nothing about the SIM (pending, failed, unknown order): nothing
    more is written and the row is asked about again next time. The row's state (voided / refunded) never changes:
    the money went back already."""
    order, sim = carrier_order(record), f"…{record.iccid[-4:]}"
    facts = {"sim": sim, "order": order, "what": state_label(record.state)}
    try:
        result = carrier.order_status(order)
    except (LinkError, RemoteProtocolError, LocalProtocolError):
        return Msg("givenback.still", facts)
    if result.status != CarrierStatus.APPLIED:
        return Msg("givenback.still", facts)
    if result.reversed:
        journal.update(record.txn_id, record.state, topup_status=_with_gen(TOPUP_REVERSED, record),
                       message=f"carrier: top-up {order} of the sale given back was already taken back")
        return Msg("givenback.gone", facts)
    if topup_word(record) != REVERSING_LATE:
        journal.update(record.txn_id, record.state, topup_status=_with_gen(REVERSING_LATE, record),
                       message=f"carrier reachable again: taking back top-up {order} of the sale given back")
    kind = "void" if record.state == TxnState.VOIDED else "refund"
    reason = reverse_topup_first(carrier, order, kind)
    if reason in ("unreachable", "not_applied", "not_found"):  # no word about the SIM: asked again next time
        return Msg("givenback.still", facts)
    journal.update(record.txn_id, record.state, topup_status=_with_gen(TOPUP_KEPT if reason else TOPUP_REVERSED,
                                                                       record),
                   message=(f"carrier keeps top-up {order} ({reason}) although the money was given back" if reason
                            else f"top-up {order} taken back by the carrier after the money was given back"))
    return Msg("givenback.kept", {**facts, "reason": reason_msg(reason)}) if reason else Msg("givenback.reversed",
                                                                                               facts)
