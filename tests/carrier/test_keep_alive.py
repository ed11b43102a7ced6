"""HTTP/1.1 keep-alive between ``CarrierClient`` and ``CarrierSim`` over real loopback HTTPS: one TLS connection
for a top-up's requests, a platform that closed its side (idle timeout, restart) replaced before anything is sent,
no order applied twice, an unreachable platform unreachable on a kept connection too."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from drivers.carrier import CarrierClient
from pos_errors import ConfigError, LinkError
from sim.backends.carrier import PLANS, CarrierSim

ACTIVE = "89860424000000000017"
TODAY = dt.date(2026, 11, 25)


@pytest.fixture
def sim() -> Iterator[CarrierSim]:
    carrier = CarrierSim(pending_s=0.2, today=lambda: TODAY)
    carrier.start()
    yield carrier
    carrier.stop()


def client(sim: CarrierSim, keep_alive_s: float = 20.0) -> CarrierClient:
    return CarrierClient(sim.base_url, timeout_s=5.0, terminal_id="T0000001", keep_alive_s=keep_alive_s,
                         **sim.client_options())


def price(plan_id: str) -> int:
    return next(p for p in PLANS if p.plan_id == plan_id).payable_minor


def test_a_top_up_uses_one_connection(sim: CarrierSim) -> None:
    assert sim.base_url.startswith("https://")
    c = client(sim)
    assert c.lookup_sim(ACTIVE) is not None
    assert c.list_plans(ACTIVE)
    assert c.create_topup("K1-000001", ACTIVE, "D3G-3M", price("D3G-3M")).status == "applied"
    assert c.lookup_sim(ACTIVE) is not None
    assert sim.connections_accepted == 1
    assert c.connections.opened == 1
    assert sim.applied_count("K1-000001") == 1
    c.close()


def test_without_keep_alive_a_connection_per_request(sim: CarrierSim) -> None:
    c = client(sim, keep_alive_s=0.0)
    assert c.lookup_sim(ACTIVE) is not None
    assert c.lookup_sim(ACTIVE) is not None
    assert sim.connections_accepted == 2


def test_platform_restart_between_requests_reconnects_without_doubling(sim: CarrierSim) -> None:
    c = client(sim)
    assert c.lookup_sim(ACTIVE) is not None
    sim.set_unreachable(True)  # the platform restarts: its open connections close too
    sim.set_unreachable(False)
    time.sleep(0.05)  # the close reaches the terminal's socket
    assert c.create_topup("K1-000002", ACTIVE, "D3G-3M", price("D3G-3M")).status == "applied"
    assert sim.applied_count("K1-000002") == 1, "the order was sent once, on a new connection"
    assert c.connections.opened == 2
    c.close()


def test_unreachable_platform_is_unreachable_on_a_kept_connection(sim: CarrierSim) -> None:
    c = client(sim)
    assert c.lookup_sim(ACTIVE) is not None
    sim.set_unreachable(True)
    time.sleep(0.05)
    with pytest.raises(LinkError, match="not sent"):
        c.create_topup("K1-000003", ACTIVE, "D3G-3M", price("D3G-3M"))
    assert sim.applied_count("K1-000003") == 0
    sim.set_unreachable(False)
    assert c.create_topup("K1-000003", ACTIVE, "D3G-3M", price("D3G-3M")).status == "applied"
    assert sim.applied_count("K1-000003") == 1
    c.close()


def test_idle_connection_older_than_keep_alive_is_not_reused(sim: CarrierSim) -> None:
    c = client(sim, keep_alive_s=0.05)
    assert c.lookup_sim(ACTIVE) is not None
    time.sleep(0.1)
    assert c.lookup_sim(ACTIVE) is not None
    assert sim.connections_accepted == 2
    c.close()


@pytest.mark.parametrize("bad", [-1.0, 3601.0])
def test_keep_alive_out_of_range_is_refused(sim: CarrierSim, bad: float) -> None:
    with pytest.raises(ConfigError, match="keep_alive_s"):
        client(sim, keep_alive_s=bad)

