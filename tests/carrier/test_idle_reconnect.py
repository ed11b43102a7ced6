"""The carrier platform closes idle kept connections (its keep-alive timeout), through real loopback HTTPS with a
short server idle timeout: a connection it closed while idle is replaced before anything is sent; a close that
meets the request as it goes out (the "connection reset on a reused socket" problem: nothing comes back) sends
the request once more on a new connection, re-signed — a lookup because it changes nothing, an order because the
platform applies one order id at most once. Never on a new connection: there the outcome stays unknown."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import NoReturn

import pytest

from drivers.carrier import CarrierClient
from pos_errors import LinkTimeout
from sim.backends.carrier import PLANS, CarrierSim
from sim.backends.loopback_http import HTTP_IDLE_TIMEOUT_S

ACTIVE = "89860424000000000017"
TODAY = dt.date(2026, 11, 25)


@pytest.fixture
def sim() -> Iterator[CarrierSim]:
    carrier = CarrierSim(today=lambda: TODAY)
    carrier.idle.idle_timeout_s = 0.15
    carrier.start()
    yield carrier
    carrier.stop()


def client(sim: CarrierSim) -> CarrierClient:
    return CarrierClient(sim.base_url, timeout_s=5.0, terminal_id="T0000001", keep_alive_s=20.0,
                         **sim.client_options())


def price(plan_id: str) -> int:
    return next(p for p in PLANS if p.plan_id == plan_id).payable_minor


def test_default_idle_timeout_is_a_front_ends() -> None:
    assert HTTP_IDLE_TIMEOUT_S == 30.0


def test_idle_close_is_seen_before_sending(sim: CarrierSim) -> None:
    c = client(sim)
    assert c.lookup_sim(ACTIVE) is not None
    deadline = time.monotonic() + 5.0
    while sim.idle.idle_closes < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.02)  # the FIN reaches the terminal's socket
    assert c.create_topup("K2-000001", ACTIVE, "D3G-3M", price("D3G-3M")).status == "applied"
    assert sim.idle.idle_closes == 1 and sim.idle.race_closes == 0
    assert sim.applied_count("K2-000001") == 1
    assert (sim.connections_accepted, c.connections.opened) == (2, 2)
    c.close()


def test_lookup_on_a_socket_closed_under_it_is_sent_again(sim: CarrierSim) -> None:
    sim.idle.idle_timeout_s = 30.0
    c = client(sim)
    assert c.lookup_sim(ACTIVE) is not None
    sim.idle.arm_race()  # the platform closes the kept connection as the next request arrives, unread
    assert c.lookup_sim(ACTIVE) is not None
    assert sim.idle.race_closes == 1
    assert (sim.connections_accepted, c.connections.opened) == (2, 2)
    assert c.list_plans(ACTIVE), "the new connection is kept in turn"
    assert sim.connections_accepted == 2
    c.close()


def test_order_on_a_socket_closed_under_it_is_applied_once(sim: CarrierSim) -> None:
    sim.idle.idle_timeout_s = 30.0
    c = client(sim)
    assert c.lookup_sim(ACTIVE) is not None
    sim.idle.arm_race()
    assert c.create_topup("K2-000002", ACTIVE, "D3G-3M", price("D3G-3M")).status == "applied"
    assert sim.idle.race_closes == 1
    assert sim.applied_count("K2-000002") == 1
    assert len([e for e in sim.ledger if e.order_id == "K2-000002"]) == 1
    c.close()


def test_order_applied_then_connection_dropped_is_resent_re_signed_and_not_doubled(sim: CarrierSim) -> None:
    """The worst case of a reused socket: the platform read and applied the order, then the connection died
    before any answer. The resend carries the same order id under a fresh nonce (the platform refuses a replayed
    one) and gets the stored order back."""
    sim.idle.idle_timeout_s = 30.0
    c = client(sim)
    assert c.lookup_sim(ACTIVE) is not None
    drops = []

    def drop_once(method: str, path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if method == "POST" and not drops:
            drops.append(status)
            raise ConnectionAbortedError("the platform's worker died before answering")
        return status, body
    sim.tamper = drop_once
    result = c.create_topup("K2-000003", ACTIVE, "D3G-3M", price("D3G-3M"))
    assert drops == [201], "the first POST was applied (201 new) and its answer lost"
    assert result.status == "applied"
    assert sim.applied_count("K2-000003") == 1
    c.close()


def test_new_connection_closed_without_answer_stays_outcome_unknown(sim: CarrierSim) -> None:
    sim.idle.idle_timeout_s = 30.0
    c = CarrierClient(sim.base_url, timeout_s=5.0, keep_alive_s=0.0, **sim.client_options())

    def drop(method: str, path: str, status: int, body: bytes) -> NoReturn:
        raise ConnectionAbortedError("dropped")
    sim.tamper = drop
    with pytest.raises(LinkTimeout, match="outcome unknown"):
        c.create_topup("K2-000004", ACTIVE, "D3G-3M", price("D3G-3M"))
    assert sim.connections_accepted == 1, "not sent again: only a reused connection's close is retried"
    assert sim.applied_count("K2-000004") == 1
