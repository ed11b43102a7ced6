"""Top-up reversal (``POST /v1/topups/{order_id}/reverse``): the real ``CarrierClient`` against ``CarrierSim``
over signed HTTPS on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from drivers.carrier import CarrierClient
from pos_errors import LinkError, LocalProtocolError, RemoteProtocolError
from sim.backends.carrier import CarrierSim

ACTIVE = "89860424000000000017"
REJECT = "89860424000000000140"


@pytest.fixture
def sim() -> Iterator[CarrierSim]:
    carrier = CarrierSim(reverse_window_s=0.6)
    carrier.start()
    yield carrier
    carrier.stop()


@pytest.fixture
def client(sim: CarrierSim) -> CarrierClient:
    return CarrierClient(sim.base_url, timeout_s=5.0, terminal_id="T0000001", **sim.client_options())


def test_reverse_takes_the_topup_back_and_is_safe_to_repeat(sim: CarrierSim, client: CarrierClient) -> None:
    before = client.lookup_sim(ACTIVE)
    assert client.create_topup("R1", ACTIVE, "D1G-1M", 1000).status == "applied"
    topped = client.lookup_sim(ACTIVE)
    assert before is not None and topped is not None and topped.data_left_mb == before.data_left_mb + 1024
    assert topped.expiry != before.expiry
    first = client.reverse_topup("R1", "void")
    assert first.reversed and first.reason == ""
    after = client.lookup_sim(ACTIVE)
    assert after is not None
    assert (after.data_left_mb, after.expiry, after.plan_name) == (before.data_left_mb, before.expiry,
                                                                   before.plan_name)
    again = client.reverse_topup("R1", "void")  # the answer was lost, the terminal asks again: taken back once
    assert again.reversed
    assert sim.reversals == ["R1"]
    assert client.lookup_sim(ACTIVE) == after
    assert sim.order("R1")["reversed_at"] is not None  # type: ignore[index]


def test_used_topup_is_refused_with_its_reason(sim: CarrierSim, client: CarrierClient) -> None:
    client.create_topup("R2", ACTIVE, "SMS100-1M", 500)
    assert sim.use_topup() == "R2"
    result = client.reverse_topup("R2")
    assert (result.reversed, result.reason) == (False, "used")
    assert "used" in result.message
    assert sim.reversals == []


def test_past_the_window_is_refused(sim: CarrierSim, client: CarrierClient) -> None:
    client.create_topup("R3", ACTIVE, "D1G-1M", 1000)
    time.sleep(0.8)
    result = client.reverse_topup("R3")
    assert (result.reversed, result.reason) == (False, "window_passed")
    assert sim.reversals == []


def test_failed_or_unknown_orders_cannot_be_reversed(client: CarrierClient) -> None:
    assert client.create_topup("R4", REJECT, "D1G-1M", 1000).status == "failed"
    assert (client.reverse_topup("R4").reversed, client.reverse_topup("R4").reason) == (False, "not_applied")
    unknown = client.reverse_topup("NEVER-SENT")
    assert (unknown.reversed, unknown.reason) == (False, "not_found")


@pytest.mark.parametrize("order_id, reason", [("bad id", ""), ("R5", "x" * 65), ("R5", "line\nbreak")])
def test_bad_request_is_not_sent(sim: CarrierSim, client: CarrierClient, order_id: str, reason: str) -> None:
    sent = sim.requests
    with pytest.raises(LocalProtocolError):
        client.reverse_topup(order_id, reason)
    assert sim.requests == sent


def test_unsigned_reverse_changes_nothing(sim: CarrierSim, client: CarrierClient) -> None:
    client.create_topup("R6", ACTIVE, "D1G-1M", 1000)
    forger = CarrierClient(sim.base_url, app_id=sim.app_id, app_secret=b"not-the-secret-0123456789",
                           ca_file=sim.ca_file, timeout_s=5.0)
    with pytest.raises(LinkError):
        forger.reverse_topup("R6")
    assert sim.reversals == [] and sim.refused[-1] == "bad_signature"


def test_forged_reversal_answer_is_not_believed(sim: CarrierSim, client: CarrierClient) -> None:
    client.create_topup("R7", ACTIVE, "D1G-1M", 1000)
    sim.use_topup("R7")
    sim.tamper = lambda m, p, s, b: (200, b'{"reversal": {"order_id": "R7", "status": "reversed"}}')
    with pytest.raises(RemoteProtocolError) as caught:
        client.reverse_topup("R7")
    assert "signed" in str(caught.value)


def test_the_order_status_says_whether_an_applied_topup_was_taken_back(sim: CarrierSim, client: CarrierClient) -> None:
    """Issue 14: after a reversal whose answer was lost, a status query (never a second reversal) tells whether the
    top-up is still on the SIM: the order stays ``applied``; its ``reversed_at`` says it was taken back."""
    client.create_topup("R9", ACTIVE, "D1G-1M", 1000)
    kept = client.order_status("R9")
    assert (kept.status, kept.reversed) == ("applied", False)
    client.reverse_topup("R9", "void")
    gone = client.order_status("R9")
    assert (gone.status, gone.reversed) == ("applied", True) and sim.reversals == ["R9"]


@pytest.mark.parametrize("forged", [0, "", ["2026-12-01"], True])
def test_a_reversed_at_that_is_not_a_time_is_refused(forged: object) -> None:
    """The order answer's decoder (signature already checked): ``reversed_at`` is null or a time, nothing else."""
    from drivers.carrier import _order

    body = {"order": {"order_id": "R10", "status": "applied", "balance_minor": 100, "reversed_at": forged}}
    with pytest.raises(RemoteProtocolError, match="reversed_at"):
        _order(body, "R10")
    assert _order({**body, "order": {**body["order"], "reversed_at": None}}, "R10").reversed is False
