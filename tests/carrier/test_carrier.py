"""The real ``CarrierClient`` against ``CarrierSim`` over real HTTP on 127.0.0.1 (ephemeral ports)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest

from drivers.carrier import CONFLICT_MESSAGE, CarrierClient
from flows.ports import CarrierPort, SimInfo
from flows.sim_number import luhn_ok
from pos_errors import ConfigError, LinkError, LinkTimeout, LocalProtocolError, RemoteProtocolError
from sim.backends.carrier import PLANS, CarrierSim

ACTIVE = "89860424000000000017"
ACTIVE_MSISDN = "1064900000001"
EMPTY_BALANCE = "89860424000000000025"
SHORT_ICCID = "8986042400000000038"
UNKNOWN = "89860424000000000108"
INACTIVE = "89860424000000000116"
SUSPENDED = "89860424000000000124"
SLOW = "89860424000000000132"
REJECT = "89860424000000000140"
LOST = "89860424000000000157"
PENDING = "89860424000000000165"
NO_PLANS = "89860424000000000173"
GARBAGE = "89860424000000000181"
DOWN = "89860424000000000199"
HANG = "89860424000000000207"
BANK_TEST = "89860424000000000215"
TOPUP_5XX = "89860424000000000223"
TODAY = dt.date(2026, 11, 25)


@pytest.fixture
def sim() -> Iterator[CarrierSim]:
    carrier = CarrierSim(slow_s=1.0, hang_s=2.0, lost_answer_s=1.5, pending_s=0.4, today=lambda: TODAY)
    carrier.start()
    yield carrier
    carrier.stop()


@pytest.fixture
def client(sim: CarrierSim) -> CarrierClient:
    return CarrierClient(sim.base_url, timeout_s=5.0, terminal_id="T0000001", **sim.client_options())


def price(plan_id: str) -> int:
    plan = next(p for p in PLANS if p.plan_id == plan_id)
    return plan.payable_minor


# --- lookup -----------------------------------------------------------------------------------------------

def test_client_is_a_carrier_port(client: CarrierClient) -> None:
    port: CarrierPort = client
    assert port.lookup_sim(ACTIVE) is not None


def test_lookup_by_iccid_and_msisdn_give_the_same_sim(client: CarrierClient) -> None:
    by_iccid = client.lookup_sim(ACTIVE)
    assert by_iccid == SimInfo(ACTIVE, ACTIVE_MSISDN, "active", "1GB 月包", 1250, 300, "2027-01-31",
                               "SIM-CARRIER", data_used_mb=724)
    assert client.lookup_sim(ACTIVE_MSISDN) == by_iccid
    assert client.lookup_sim(" 8986 0424 0000 0000 0017 ") == by_iccid


def test_nineteen_digit_iccid(client: CarrierClient) -> None:
    info = client.lookup_sim(SHORT_ICCID)
    assert info is not None and info.iccid == SHORT_ICCID and info.data_left_mb == 8192


@pytest.mark.parametrize("number", [UNKNOWN, "1064900000010", "89860000000000000000"])
def test_unknown_sim_is_none(client: CarrierClient, number: str) -> None:
    assert client.lookup_sim(number) is None


@pytest.mark.parametrize("number", ["", "12ab", "8986/../orders", "106490000000", "898604240000000000171"])
def test_malformed_number_is_not_sent(sim: CarrierSim, client: CarrierClient, number: str) -> None:
    with pytest.raises(LocalProtocolError):
        client.lookup_sim(number)
    assert sim.requests == 0


@pytest.mark.parametrize(("iccid", "status"), [(INACTIVE, "inactive"), (SUSPENDED, "suspended")])
def test_inactive_and_suspended_are_reported_and_cannot_be_topped_up(
        sim: CarrierSim, client: CarrierClient, iccid: str, status: str) -> None:
    info = client.lookup_sim(iccid)
    assert info is not None and info.status == status
    result = client.create_topup(f"O-{status}", iccid, "D1G-1M", 1000)
    assert result.status == "failed"
    assert ("未激活" if status == "inactive" else "停机") in result.message
    assert sim.ledger == []


def test_slow_lookup_answers_late(client: CarrierClient) -> None:
    started = time.monotonic()
    assert client.lookup_sim(SLOW) is not None
    assert time.monotonic() - started >= 1.0


@pytest.mark.parametrize("number", [SLOW, HANG])
def test_slow_lookup_times_out_with_a_short_timeout(sim: CarrierSim, number: str) -> None:
    with pytest.raises(LinkTimeout):
        CarrierClient(sim.base_url, timeout_s=0.3, **sim.client_options()).lookup_sim(number)


def test_garbage_answer_is_remote_protocol_error(client: CarrierClient) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        client.lookup_sim(GARBAGE)
    assert caught.value.raw is not None and caught.value.raw.startswith(b"<html>")


def test_platform_503_is_link_error_with_its_message(client: CarrierClient) -> None:
    with pytest.raises(LinkError) as caught:
        client.lookup_sim(DOWN)
    assert not isinstance(caught.value, LinkTimeout)
    assert "503" in str(caught.value) and "平台维护中" in str(caught.value)


def test_unreachable_then_back(sim: CarrierSim, client: CarrierClient) -> None:
    sim.set_unreachable(True)
    with pytest.raises(LinkError) as caught:
        client.lookup_sim(ACTIVE)
    assert not isinstance(caught.value, LinkTimeout)  # refused: nothing was sent
    with pytest.raises(LinkError):
        client.create_topup("O-down", ACTIVE, "D1G-1M", 1000)
    assert sim.ledger == []
    sim.set_unreachable(False)
    assert client.lookup_sim(ACTIVE) is not None


def test_bad_base_url() -> None:
    with pytest.raises(ConfigError):
        CarrierClient("ftp://carrier", app_id="A", app_secret=b"s")


# --- plans ------------------------------------------------------------------------------------------------

def test_plan_catalogue(client: CarrierClient) -> None:
    plans = {p.plan_id: p for p in client.list_plans(ACTIVE)}
    assert [p.plan_id for p in client.list_plans(ACTIVE)] == [p.plan_id for p in PLANS]
    assert {p.period_months for p in plans.values()} >= {1, 3, 12}
    one_gb = plans["D1G-1M"]
    assert (one_gb.name_zh, one_gb.price_minor, one_gb.data_mb) == ("1GB 月包", 1000, 1024)
    assert one_gb.payable_minor == 1000 and one_gb.promotion is None
    assert (plans["D3G-1M"].price_minor, plans["D10G-1M"].price_minor) == (2000, 3000)
    annual = plans["D1G-12M"]
    assert annual.promotion and annual.promo_price_minor == 9900 and annual.payable_minor == 9900
    bonus = plans["D5G-1M-BONUS"]
    assert bonus.promotion and "加赠" in bonus.promotion and bonus.promo_price_minor is None
    assert plans["SMS100-1M"].sms == 100 and plans["VOICE50-1M"].voice_min == 50
    assert all(p.name and p.name_zh for p in plans.values())


def test_plans_of_unknown_or_planless_sim_are_empty(client: CarrierClient) -> None:
    assert client.list_plans(UNKNOWN) == []
    assert client.list_plans(NO_PLANS) == []


# --- top-ups ------------------------------------------------------------------------------------------------

def test_topup_applies_and_is_recorded(sim: CarrierSim, client: CarrierClient) -> None:
    result = client.create_topup("T1-000001", ACTIVE, "D3G-3M", price("D3G-3M"))
    assert (result.order_id, result.status, result.balance_minor) == ("T1-000001", "applied", 1250)
    state = sim.sims[ACTIVE]
    assert state.data_left_mb == 300 + 9216
    assert state.expiry == "2027-04-30"  # 2027-01-31 + 3 months, clamped to the month's end
    assert state.plan_name == "3GB 季包"
    [entry] = sim.ledger
    assert (entry.order_id, entry.iccid, entry.plan_id, entry.amount_minor) == ("T1-000001", ACTIVE, "D3G-3M",
                                                                                5400)
    assert client.order_status("T1-000001") == result
    assert sim.order("T1-000001")["terminal_id"] == "T0000001"  # type: ignore[index]


def test_promotion_price_is_what_the_carrier_takes(sim: CarrierSim, client: CarrierClient) -> None:
    assert client.create_topup("P1", EMPTY_BALANCE, "D1G-12M", 12000).status == "failed"  # list price: no
    assert client.create_topup("P2", EMPTY_BALANCE, "D1G-12M", 9900).status == "applied"
    assert sim.sims[EMPTY_BALANCE].expiry == "2027-12-31"


def test_recharge_and_add_on_packs(sim: CarrierSim, client: CarrierClient) -> None:
    assert client.create_topup("C1", EMPTY_BALANCE, "CREDIT-50", 5000).balance_minor == 5000
    client.create_topup("C2", EMPTY_BALANCE, "SMS100-1M", 500)
    client.create_topup("C3", EMPTY_BALANCE, "VOICE50-1M", 800)
    state = sim.sims[EMPTY_BALANCE]
    assert (state.balance_minor, state.sms_left, state.voice_left_min, state.plan_name) == (5000, 100, 50,
                                                                                           "3GB 月包")
    assert state.expiry == "2026-12-31", "recharges and add-ons add no months (docs/cashier.md)"
    info = client.lookup_sim(EMPTY_BALANCE)
    assert info is not None and info.balance_minor == 5000


def test_expired_sim_is_extended_from_today(sim: CarrierSim, client: CarrierClient) -> None:
    sim.sims[ACTIVE].expiry = "2026-01-15"
    client.create_topup("E1", ACTIVE, "D1G-1M", 1000)
    assert sim.sims[ACTIVE].expiry == "2026-12-25"


@pytest.mark.parametrize(("plan_id", "amount", "words"), [
    ("NOPE", 1000, "不支持"),
    ("D1G-1M", 999, "金额不符"),
])
def test_business_rejections_are_failed_orders(sim: CarrierSim, client: CarrierClient, plan_id: str,
                                               amount: int, words: str) -> None:
    result = client.create_topup("B1", ACTIVE, plan_id, amount)
    assert result.status == "failed" and words in result.message
    assert client.order_status("B1").status == "failed"
    assert sim.ledger == []


def test_same_order_twice_applies_once(sim: CarrierSim, client: CarrierClient) -> None:
    first = client.create_topup("T1-000002", ACTIVE, "D1G-1M", 1000)
    again = client.create_topup("T1-000002", ACTIVE, "D1G-1M", 1000)
    assert first == again and first.status == "applied"
    assert sim.applied_count("T1-000002") == 1
    assert sim.sims[ACTIVE].data_left_mb == 300 + 1024


def test_concurrent_duplicates_apply_once(sim: CarrierSim, client: CarrierClient) -> None:
    results = []

    def buy() -> None:
        results.append(client.create_topup("RACE", ACTIVE, "D1G-1M", 1000))

    threads = [threading.Thread(target=buy) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(results) == 8 and {r.status for r in results} == {"applied"}
    assert sim.applied_count("RACE") == 1


def test_same_id_different_body_is_a_conflict(sim: CarrierSim, client: CarrierClient) -> None:
    client.create_topup("T1-000003", ACTIVE, "D1G-1M", 1000)
    clash = client.create_topup("T1-000003", ACTIVE, "D3G-1M", 2000)
    assert clash.status == "failed" and clash.message == CONFLICT_MESSAGE
    assert sim.applied_count("T1-000003") == 1
    assert [e.plan_id for e in sim.ledger] == ["D1G-1M"]


def test_unknown_order_is_not_found(client: CarrierClient) -> None:
    result = client.order_status("NEVER-SENT")
    assert (result.order_id, result.status, result.balance_minor) == ("NEVER-SENT", "not_found", None)


@pytest.mark.parametrize(("order_id", "amount"), [("", 1000), ("a/b", 1000), ("x" * 65, 1000), ("ok", 0),
                                                  ("ok", -5), ("ok", True)])
def test_bad_order_is_not_sent(sim: CarrierSim, client: CarrierClient, order_id: str, amount: int) -> None:
    with pytest.raises(LocalProtocolError):
        client.create_topup(order_id, ACTIVE, "D1G-1M", amount)
    assert sim.requests == 0


def test_rejected_topup(sim: CarrierSim, client: CarrierClient) -> None:
    result = client.create_topup("R1", REJECT, "D1G-1M", 1000)
    assert result.status == "failed" and "风控" in result.message
    assert client.order_status("R1").status == "failed"
    assert sim.applied_count("R1") == 0


def test_pending_then_applied(sim: CarrierSim, client: CarrierClient) -> None:
    assert client.create_topup("PEND1", PENDING, "D3G-1M", 2000).status == "pending"
    assert client.order_status("PEND1").status == "pending"
    assert sim.applied_count("PEND1") == 0
    time.sleep(0.5)
    done = client.order_status("PEND1")
    assert done.status == "applied" and done.balance_minor == 0
    assert client.create_topup("PEND1", PENDING, "D3G-1M", 2000) == done
    assert sim.applied_count("PEND1") == 1
    assert sim.sims[PENDING].data_left_mb == 50 + 3072


def test_lost_answer_is_applied(sim: CarrierSim) -> None:
    impatient = CarrierClient(sim.base_url, timeout_s=0.3, **sim.client_options())
    with pytest.raises(LinkTimeout):
        impatient.create_topup("LOST1", LOST, "D1G-1M", 1000)
    assert impatient.order_status("LOST1").status == "applied"
    assert impatient.create_topup("LOST1", LOST, "D1G-1M", 1000).status == "applied"  # the retry is harmless
    assert sim.applied_count("LOST1") == 1


def test_topup_5xx_stores_nothing_so_status_then_resend_applies_once(sim: CarrierSim, client: CarrierClient) -> None:
    with pytest.raises(LinkTimeout, match="503"):  # a 5xx after the POST left: outcome unknown to the client
        client.create_topup("F5XX1", TOPUP_5XX, "D1G-1M", 1000)
    assert client.order_status("F5XX1").status == "not_found"
    assert client.create_topup("F5XX1", TOPUP_5XX, "D1G-1M", 1000).status == "applied"
    assert client.create_topup("F5XX1", TOPUP_5XX, "D1G-1M", 1000).status == "applied"
    assert sim.applied_count("F5XX1") == 1


# --- the catalogue itself ---------------------------------------------------------------------------------

def test_magic_sims_are_well_formed() -> None:
    numbers = [ACTIVE, EMPTY_BALANCE, SHORT_ICCID, UNKNOWN, INACTIVE, SUSPENDED, SLOW, REJECT, LOST, PENDING,
               NO_PLANS, GARBAGE, DOWN, HANG, BANK_TEST, TOPUP_5XX]
    assert all(n.startswith("8986") and len(n) in (19, 20) and luhn_ok(n) for n in numbers)
    sims = CarrierSim().sims
    assert UNKNOWN not in sims
    assert all(s.msisdn.startswith("1064") and len(s.msisdn) == 13 for s in sims.values())
    assert set(sims) == set(numbers) - {UNKNOWN}


def test_bank_test_sim_offers_plans_priced_on_the_acquirers_magic_amounts(client: CarrierClient) -> None:
    from sim.backends.acquirer import MAGIC_AMOUNTS

    plans = client.list_plans(BANK_TEST)
    assert [p.price_minor % 100 for p in plans] == [5, 51, 91, 96, 97, 98, 54, 93, 99]
    assert all(p.price_minor % 100 in MAGIC_AMOUNTS for p in plans)
