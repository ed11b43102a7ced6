"""Robust decoding: whatever the carrier (or a man in the middle holding the secret) answers, the client ends in a
clean, typed outcome naming the carrier — never RecursionError, ValueError or a crash that leaves a top-up unknown.

The answers are signed correctly, so every check below is the decoder's, not the signature's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.carrier import MAX_ANSWER, CarrierClient, _decode, _order, _plan
from pos_errors import LinkError, PosError, RemoteProtocolError
from tests.carrier.test_client_faults import ICCID, NONCE, SECRET, SIM, ScriptedPeer, http_answer

ORDER = {"order_id": "O1", "status": "applied", "balance_minor": 5, "message": "ok"}


@pytest.fixture
def peer() -> Iterator[ScriptedPeer]:
    scripted = ScriptedPeer()
    yield scripted
    scripted.close()


@pytest.fixture
def client(peer: ScriptedPeer) -> CarrierClient:
    return CarrierClient(peer.url, timeout_s=1.0, app_id="APP9", app_secret=SECRET, insecure_plaintext=True,
                         nonce=lambda: NONCE)


def deep(levels: int) -> bytes:
    return b'{"order": ' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize("body", [
    deep(100_000),                                                       # RecursionError in json.loads
    b"[" * 50_000,                                                       # unterminated and deep
    json.dumps({"order": {**ORDER, "balance_minor": 10 ** 4000}}).encode(),  # int() digit limit: ValueError
    json.dumps({"order": {**ORDER, "balance_minor": 1e308}}).encode(),   # a float where an int is due
    b'{"order": {"order_id": "O1", "status": "applied", "balance_minor": NaN}}',
    b'{"order": {"order_id": "O1", "status": "applied", "balance_minor": Infinity}}',
    b'{"order": {"order_id": "O1", "status": "failed", "status": "applied"}}',  # duplicate key: which one?
    json.dumps({"order": {**ORDER, "status": ["applied"]}}).encode(),   # wrong type
    json.dumps({"order": {**ORDER, "order_id": 1}}).encode(),
    json.dumps({"order": {**ORDER, "balance_minor": "5"}}).encode(),
    json.dumps({"order": {**ORDER, "balance_minor": True}}).encode(),
    json.dumps({"order": {**ORDER, "status": "x" * 10_000}}).encode(),
    b"\xff\xfe{}",                                                       # not UTF-8
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',  # XML entities: not JSON at all
    b"",
])
def test_wrong_answers_to_a_topup_are_outcome_unknown(peer: ScriptedPeer, client: CarrierClient, body: bytes) -> None:
    peer.answer = http_answer("201 Created", body)
    with pytest.raises(RemoteProtocolError, match="carrier") as caught:
        client.create_topup("O1", ICCID, "D1G-1M", 1000)
    assert len(str(caught.value)) < 500  # a clean message, not the answer echoed


def test_oversized_answer(peer: ScriptedPeer, client: CarrierClient) -> None:
    body = json.dumps({"order": {**ORDER, "message": "x" * MAX_ANSWER}}).encode()
    peer.answer = http_answer("200 OK", body)
    with pytest.raises(RemoteProtocolError, match=f"carrier .*over {MAX_ANSWER} bytes"):
        client.order_status("O1")


def test_deep_but_legal_nesting_in_a_sim_answer(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = http_answer("200 OK", json.dumps({"sim": {**SIM, "extra": [[[[["fine"]]]]]}}).encode())
    assert client.lookup_sim(ICCID) is not None


def test_brackets_inside_strings_are_not_nesting() -> None:
    assert _decode(json.dumps({"message": "[" * 1000 + '\\"{'}).encode()) == {"message": "[" * 1000 + '\\"{'}


# --- property tests: the decoder and the field readers --------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4),
                     max_leaves=30)


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_decode_never_raises_on_any_bytes(raw: bytes) -> None:
    _decode(raw)


@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["[", "{\"a\":", "[{\"b\":"]))
@settings(max_examples=30, deadline=None)
def test_decode_never_recurses_out(levels: int, opener: str) -> None:
    closer = {"[": "]", "{\"a\":": "}", "[{\"b\":": "}]"}[opener]
    _decode((opener * levels + "1" + closer * levels).encode())


@given(_json)
@settings(max_examples=300, deadline=None)
def test_order_reader_raises_only_remote_protocol_error(value: Any) -> None:
    for body in (value, {"order": value}, {"order": {"order_id": "O1", "status": value}},
                 {"order": {"order_id": "O1", "status": "applied", "balance_minor": value}}):
        try:
            _order(body if isinstance(body, dict) else {"order": body}, "O1")
        except RemoteProtocolError:
            pass


@given(_json)
@settings(max_examples=300, deadline=None)
def test_plan_reader_raises_only_remote_protocol_error(value: Any) -> None:
    try:
        _plan(value)
    except RemoteProtocolError:
        pass


@given(st.one_of(_json, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_signed_answer_over_the_wire_is_a_typed_outcome(peer: ScriptedPeer, client: CarrierClient,
                                                              value: Any) -> None:
    body = value.encode() if isinstance(value, str) else json.dumps(value).encode()
    peer.answer = http_answer("200 OK", body)
    for call in (lambda: client.order_status("O1"), lambda: client.lookup_sim(ICCID), lambda: client.list_plans(ICCID)):
        try:
            call()
        except PosError as exc:  # RemoteProtocolError above all; never an untyped exception
            assert isinstance(exc, RemoteProtocolError | LinkError)


def test_unsigned_answer_from_the_peer(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = http_answer("201 Created", json.dumps({"order": ORDER}).encode(), signed=False)
    with pytest.raises(RemoteProtocolError, match="unsigned or wrongly signed; outcome unknown"):
        client.create_topup("O1", ICCID, "D1G-1M", 1000)
    peer.answer = http_answer("200 OK", json.dumps({"order": ORDER}).encode(), secret=b"other-secret-0123456789")
    with pytest.raises(RemoteProtocolError, match="wrongly signed"):
        client.order_status("O1")


def test_answer_signed_for_another_request_is_refused(peer: ScriptedPeer) -> None:
    # The peer's answer is bound to NONCE; a client whose request carried another nonce must refuse it (replay).
    other = CarrierClient(peer.url, timeout_s=1.0, app_id="APP9", app_secret=SECRET, insecure_plaintext=True,
                          nonce=lambda: "another-nonce-000000")
    peer.answer = http_answer("200 OK", json.dumps({"order": ORDER}).encode())
    with pytest.raises(RemoteProtocolError, match="wrongly signed"):
        other.order_status("O1")


def test_signed_request_shape(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = http_answer("201 Created", json.dumps({"order": ORDER}).encode())
    client.create_topup("O1", ICCID, "D1G-1M", 1000, funding_ref="612510301234")
    head, _, body = peer.requests[0].partition(b"\r\n\r\n")
    assert json.loads(body)["funding_ref"] == "612510301234"
    for header in (b"X-App-Id: APP9", f"X-Nonce: {NONCE}".encode(), b"X-Timestamp: ", b"X-Signature: "):
        assert header in head


def test_a_huge_error_message_is_cut(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = http_answer("400 Bad Request", json.dumps({"error": "e" * 5000, "message": "m" * 100_000}).encode())
    with pytest.raises(PosError) as caught:
        client.create_topup("O1", ICCID, "D1G-1M", 1000)
    assert len(str(caught.value)) < 400
