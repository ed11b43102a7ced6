"""The acquirer's idle timeout against the terminal's kept connection, through real loopback mutual TLS: a host
that closed the idle connection (silently, or with a TLS close_notify) costs the next sale a new connection — a
resumed TLS session, no new sign-on (the working keys belong to the terminal, not to the connection), no
duplicate and no reversal; a close that races the request (the host's timer fires as the 0200 arrives) is
"outcome unknown": the 0200 is never sent again, the reversal goes on a new connection."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from flows.ports import ReversalRequest
from pos_errors import LinkTimeout
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from sim.backends.idle_close import DEFAULT_IDLE_TIMEOUT_S
from tests.host.conftest import started
from tests.host.test_keep_alive import approved_stans, client, request

IDLE_S = 0.15


@pytest.fixture
def acquirer(security: AcquirerSecurity) -> Iterator[AcquirerSim]:
    yield from started(security)


def wait_idle_close(sim: AcquirerSim, closes: int) -> None:
    assert sim.wait_until(lambda s: s.idle.idle_closes >= closes and s.connections == 0, timeout_s=5.0)
    time.sleep(0.02)  # the FIN (and alert) reach the terminal's socket


def test_default_idle_timeout_is_a_real_hosts() -> None:
    assert 30.0 <= DEFAULT_IDLE_TIMEOUT_S <= 120.0


@pytest.mark.parametrize("close_notify", [False, True], ids=["silent", "close_notify"])
def test_sale_after_the_host_closed_the_idle_connection(acquirer: AcquirerSim, security: AcquirerSecurity,
                                                        close_notify: bool) -> None:
    acquirer.idle.idle_timeout_s, acquirer.idle.close_notify = IDLE_S, close_notify
    c = client(acquirer, security, keep_alive_s=60.0)
    assert c.authorize(request(21)).approved  # sign-on + sale on one connection, kept by the terminal
    wait_idle_close(acquirer, 1)
    assert c.authorize(request(22)).approved
    assert approved_stans(acquirer) == [21, 22], "each sale once: none lost, none doubled"
    assert acquirer.reversals == []
    assert acquirer.wire_log == ["0800", "0810", "0200", "0210", "0200", "0210"], "no second sign-on"
    assert (acquirer.handshakes, acquirer.resumptions) == (2, 1), "a new connection, resuming the TLS session"
    assert c.connections == (2, 1)
    c.close()


def test_connection_in_use_is_not_closed_as_idle(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    acquirer.idle.idle_timeout_s = 0.4
    c = client(acquirer, security)
    for stan in (23, 24, 25):
        assert c.authorize(request(stan)).approved
        time.sleep(0.1)
    assert acquirer.idle.idle_closes == 0
    assert acquirer.handshakes == 1
    c.close()


def test_close_racing_the_request_is_reversed_never_resent(acquirer: AcquirerSim,
                                                           security: AcquirerSecurity) -> None:
    c = client(acquirer, security)
    assert c.authorize(request(26)).approved
    acquirer.idle.arm_race()  # the host's idle timer fires just as the next 0200 arrives: closed unread
    with pytest.raises(LinkTimeout, match="outcome unknown"):
        c.authorize(request(27))
    assert acquirer.idle.race_closes == 1
    assert acquirer.wire_log.count("0200") == 1, "the host never read the racing 0200, and it was not re-sent"
    assert c.reverse(ReversalRequest(stan=1027, original=request(27), reason_code="68")) == "00"
    assert acquirer.reversals[-1].original_stan == 27
    assert approved_stans(acquirer) == [26], "nothing charged for the raced sale"
    assert c.authorize(request(28)).approved, "the next sale goes through on the new connection"
    assert acquirer.handshakes == 2
    c.close()


def test_world_toggle_arms_and_disarms_the_race(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sim.runner.world import SimWorld  # a world that is never started: only its parts are built (the TUI's H)

    world = SimWorld(workdir=tmp_path)
    assert world.toggle_fault("acquirer_idle_race") and world.acquirer.idle.race_armed
    assert not world.toggle_fault("acquirer_idle_race") and not world.acquirer.idle.race_armed
    world.stop()
