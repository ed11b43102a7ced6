"""The rules the terminal core asks: SIM lookup decisions, the daily spending check, the settlement gate."""

import datetime as dt

import pytest

from flows.messages import Msg
from flows.ports import Plan, SimInfo, TxnRecord
from flows.pricing import ChannelLimits, FeeSchedule
from flows.sale_checks import NOT_SPENT_STATES, channel_quote, settlement_blocker, spent_today
from flows.sim_lookup import LookupOutcome, decide, needs_plans
from pos_errors import DeviceError, LinkError

ICCID = "89860424000000000017"
DAY = dt.date(2026, 12, 1)


def _sim(status: str) -> SimInfo:
    return SimInfo(ICCID, "1064800000017", status, "IoT", 0, 0, "")


@pytest.mark.parametrize(("sim", "error", "purpose", "outcome", "key"), [
    (_sim("active"),    None,                    "topup",   LookupOutcome.FOUND,        None),
    (_sim("suspended"), None,                    "topup",   LookupOutcome.NOT_ACTIVE,   "sim.not_active"),
    (_sim("suspended"), None,                    "balance", LookupOutcome.STATUS,       None),
    (None,              None,                    "topup",   LookupOutcome.UNKNOWN,      "sim.unknown"),
    (None,              None,                    "balance", LookupOutcome.UNKNOWN,      "sim.unknown"),
    (None,              LinkError("refused"),    "topup",   LookupOutcome.UNREACHABLE,  "sim.unreachable"),
    (None,              DeviceError("x"),        "topup",   LookupOutcome.UNREACHABLE,  "sim.unreachable"),
    (None,              RuntimeError("bug"),     "topup",   LookupOutcome.FAILED,       "sim.lookup_failed"),
])
def test_lookup_decision_table(sim, error, purpose, outcome, key):
    decision = decide(sim, error, purpose=purpose)
    assert decision.outcome is outcome
    assert (decision.message.key if decision.message else None) == key


def test_not_active_names_the_status_in_the_readers_language():
    assert decide(_sim("suspended"), None, purpose="topup").message == \
        Msg("sim.not_active", {"status": Msg("simstatus.suspended")})
    assert decide(_sim("barred"), None, purpose="topup").message == Msg("sim.not_active", {"status": "BARRED"})


def test_plans_are_asked_for_only_for_an_active_sim_being_topped_up():
    assert needs_plans(_sim("active"), purpose="topup")
    assert not needs_plans(_sim("active"), purpose="balance")
    assert not needs_plans(_sim("suspended"), purpose="topup")
    assert not needs_plans(None, purpose="topup")


def _row(state: str, channel: str = "wechat", day: str = "2026-12-01", total: int = 3000) -> TxnRecord:
    return TxnRecord(1, state, "O1", ICCID, "1064", "P", "p", total, 0, channel, "01", f"{day}T10:00:00.000")


def test_spent_today_counts_money_taken_today_on_that_channel_only():
    rows = [_row("completed"), _row("topup_pending", total=500), _row("completed", channel="card"),
            _row("completed", day="2026-11-30"), *(_row(state) for state in sorted(NOT_SPENT_STATES))]
    assert spent_today(rows, channel="wechat", day=DAY) == 3500
    assert spent_today(rows, channel="card", day=DAY) == 3000
    assert spent_today([], channel="wechat", day=DAY) == 0


def test_channel_quote_refuses_what_would_pass_the_daily_limit():
    fees = FeeSchedule(limits={"wechat": ChannelLimits(daily_minor=5000)})
    plan = Plan("P1", "Monthly", "包月", 1, 3000, 1024)
    assert channel_quote(plan, "wechat", fees, 100_000, [], DAY).error is None
    assert channel_quote(plan, "wechat", fees, 100_000, [_row("completed")], DAY).error is not None
    assert channel_quote(plan, "wechat", fees, 100_000, [_row("reversed")], DAY).error is None


@pytest.mark.parametrize(("open_left", "advices_left", "key"), [
    (0, 0, None),
    (2, 0, "settle.open_left"),
    (0, 1, "saf.not_drained"),
    (3, 1, "saf.not_drained"),  # the advice queue is named first: it is what the host is still owed
])
def test_settlement_gate(open_left, advices_left, key):
    blocker = settlement_blocker(open_left=open_left, advices_left=advices_left)
    assert (blocker.key if blocker else None) == key
