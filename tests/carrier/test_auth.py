"""Credentials on the carrier link, through real loopback HTTPS: signed requests, signed answers, TLS, the secret file.

Every test talks to ``CarrierSim`` over HTTPS with its per-simulator test CA, as the terminal does.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.carrier import CarrierClient, read_app_secret
from drivers.carrier_sign import request_string, sign_answer, sign_request
from flows.wallet_payment import apply_topup
from pos_errors import ConfigError, LinkError, RemoteProtocolError
from sim.backends.carrier import CarrierSim

ACTIVE = "89860424000000000017"
REJECT = "89860424000000000140"
DOC = Path(__file__).resolve().parents[2] / "docs" / "protocols" / "carrier-api.md"


@pytest.fixture
def sim() -> Iterator[CarrierSim]:
    carrier = CarrierSim(pending_s=0.2)
    carrier.start()
    yield carrier
    carrier.stop()


@pytest.fixture
def client(sim: CarrierSim) -> CarrierClient:
    return CarrierClient(sim.base_url, timeout_s=5.0, terminal_id="T0000001", **sim.client_options())


class _Clock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, 0.05))


def raw_request(sim: CarrierSim, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, object], dict[str, str]]:
    """One request over HTTPS (the sim's CA trusted) with exactly the headers given."""
    conn = http.client.HTTPSConnection("127.0.0.1", int(sim.base_url.rsplit(":", 1)[1]), timeout=5,
                                       context=ssl.create_default_context(cafile=sim.ca_file))
    try:
        conn.request(method, path, body=body or None, headers={"Content-Type": "application/json", **(headers or {})})
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read()), dict(answer.getheaders())
    finally:
        conn.close()


def signed_headers(sim: CarrierSim, method: str, path: str, body: bytes, *, nonce: str = "nonce-0000000000000001",
                   timestamp: int | None = None, secret: bytes | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-App-Id": sim.app_id, "X-Timestamp": ts, "X-Nonce": nonce,
            "X-Signature": sign_request(secret or sim.app_secret, method, path, ts, nonce, sim.app_id, body)}


ORDER = json.dumps({"order_id": "A1", "iccid": ACTIVE, "plan_id": "D1G-1M", "amount_minor": 1000}).encode()


# --- the documented worked example ------------------------------------------------------------------------

def _doc_block(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {title} -->\n```\n(.*?)\n```", text, re.S)
    assert found, f"docs/protocols/carrier-api.md lacks the block {title}"
    return found.group(1)


def test_worked_example_in_the_docs_byte_for_byte() -> None:
    body = b'{"order_id": "T000000126112510301200042", "iccid": "89860424000000000017", "plan_id": "D10G-1M", ' \
           b'"amount_minor": 3000, "funding_ref": "612510301234"}'
    canonical = request_string("POST", "/v1/orders", "1764037812", "3f9a1c0e5b7d4a2e8c6f1b0d9e7a5c3b",
                               "POSSIM-APP-0001", body)
    assert canonical.decode() == _doc_block("canonical-request")
    secret = b"test-secret-0123456789abcdef0123"
    signature = sign_request(secret, "POST", "/v1/orders", "1764037812", "3f9a1c0e5b7d4a2e8c6f1b0d9e7a5c3b",
                             "POSSIM-APP-0001", body)
    assert signature == _doc_block("signature")
    answer = b'{"order": {"order_id": "T000000126112510301200042", "status": "applied"}}'
    assert sign_answer(secret, 201, "1764037813", "b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1",
                       "3f9a1c0e5b7d4a2e8c6f1b0d9e7a5c3b", answer) == _doc_block("answer-signature")


# --- the platform refuses, and changes nothing --------------------------------------------------------------

def test_unsigned_request_is_401_and_nothing_applied(sim: CarrierSim) -> None:
    status, body, _ = raw_request(sim, "POST", "/v1/orders", ORDER)
    assert (status, body["error"]) == (401, "unsigned")
    assert sim.ledger == [] and sim.order("A1") is None
    status, body, _ = raw_request(sim, "GET", f"/v1/sims/{ACTIVE}")
    assert (status, body["error"]) == (401, "unsigned")


def test_wrongly_signed_request_is_401(sim: CarrierSim) -> None:
    headers = signed_headers(sim, "POST", "/v1/orders", ORDER, secret=b"not-the-secret-0123456789")
    status, body, _ = raw_request(sim, "POST", "/v1/orders", ORDER, headers)
    assert (status, body["error"]) == (401, "bad_signature") and sim.ledger == []
    # a signature over another body (the amount changed on the way) fails too
    tampered = ORDER.replace(b"1000", b"1")
    status, body, _ = raw_request(sim, "POST", "/v1/orders", tampered, signed_headers(sim, "POST", "/v1/orders", ORDER))
    assert (status, body["error"]) == (401, "bad_signature") and sim.ledger == []


def test_unknown_app_is_401(sim: CarrierSim) -> None:
    headers = {**signed_headers(sim, "POST", "/v1/orders", ORDER), "X-App-Id": "SOMEONE-ELSE"}
    status, body, _ = raw_request(sim, "POST", "/v1/orders", ORDER, headers)
    assert (status, body["error"]) == (401, "unknown_app") and sim.ledger == []


def test_replayed_nonce_is_401_and_applies_once(sim: CarrierSim) -> None:
    headers = signed_headers(sim, "POST", "/v1/orders", ORDER)
    assert raw_request(sim, "POST", "/v1/orders", ORDER, headers)[0] == 201
    status, body, _ = raw_request(sim, "POST", "/v1/orders", ORDER, headers)  # the same bytes, captured and resent
    assert (status, body["error"]) == (401, "replayed_nonce")
    assert sim.applied_count("A1") == 1


def test_replayed_nonce_through_the_client(sim: CarrierSim) -> None:
    client = CarrierClient(sim.base_url, timeout_s=5.0, nonce=lambda: "always-the-same-nonce", **sim.client_options())
    assert client.lookup_sim(ACTIVE) is not None
    with pytest.raises(LinkError, match="401 replayed_nonce"):
        client.lookup_sim(ACTIVE)


@pytest.mark.parametrize("skew", [-305, 305, -3600])  # past ±300 s by more than the whole-second rounding
def test_stale_timestamp_is_401_and_nothing_applied(sim: CarrierSim, skew: int) -> None:
    late = CarrierClient(sim.base_url, timeout_s=5.0, clock=lambda: time.time() + skew, **sim.client_options())
    with pytest.raises(LinkError, match="401 stale_timestamp"):
        late.create_topup("S1", ACTIVE, "D1G-1M", 1000)
    assert sim.ledger == [] and sim.order("S1") is None and sim.refused == ["stale_timestamp"]


def test_a_few_seconds_of_skew_is_fine(sim: CarrierSim) -> None:
    client = CarrierClient(sim.base_url, timeout_s=5.0, clock=lambda: time.time() - 240, **sim.client_options())
    assert client.create_topup("K1", ACTIVE, "D1G-1M", 1000).status == "applied"


def test_health_needs_a_signature_too(sim: CarrierSim, client: CarrierClient) -> None:
    assert raw_request(sim, "GET", "/v1/health")[0] == 401
    assert client.health() is True


# --- answers are signed; the terminal believes nothing else ------------------------------------------------

def test_answers_carry_a_signature_bound_to_the_request(sim: CarrierSim) -> None:
    headers = signed_headers(sim, "GET", f"/v1/sims/{ACTIVE}", b"")
    conn = http.client.HTTPSConnection("127.0.0.1", int(sim.base_url.rsplit(":", 1)[1]), timeout=5,
                                       context=ssl.create_default_context(cafile=sim.ca_file))
    conn.request("GET", f"/v1/sims/{ACTIVE}", headers=headers)
    answer = conn.getresponse()
    raw = answer.read()
    conn.close()
    expected = sign_answer(sim.app_secret, 200, answer.getheader("X-Timestamp", ""), answer.getheader("X-Nonce", ""),
                           headers["X-Nonce"], raw)
    assert answer.getheader("X-Signature") == expected


def _forge_applied(method: str, path: str, status: int, body: bytes) -> tuple[int, bytes]:
    """A man in the middle turns every order answer into "applied" (the signature no longer matches)."""
    if "/v1/orders" not in path or status >= 300:
        return status, body
    order = json.loads(body)
    order["order"]["status"] = "applied"
    return status, json.dumps(order).encode()


def test_forged_applied_answer_is_not_believed(sim: CarrierSim, client: CarrierClient) -> None:
    sim.tamper = _forge_applied
    with pytest.raises(RemoteProtocolError, match="unsigned or wrongly signed; outcome unknown"):
        client.create_topup("F1", REJECT, "D1G-1M", 1000)
    with pytest.raises(RemoteProtocolError, match="wrongly signed"):
        client.order_status("F1")
    sim.tamper = None
    assert client.order_status("F1").status == "failed"  # the platform's own, signed word
    assert sim.ledger == []


def test_forged_answer_leads_to_a_status_query_and_no_topup_believed(sim: CarrierSim, client: CarrierClient) -> None:
    # The flows' apply step: a wrongly signed "applied" is "no valid answer", so the order's status is asked.
    def forge_post_only(method: str, path: str, status: int, body: bytes) -> tuple[int, bytes]:
        return _forge_applied(method, path, status, body) if method == "POST" else (status, body)

    sim.tamper = forge_post_only
    result = apply_topup(client, _Clock(), "F2", REJECT, "D1G-1M", 1000)  # type: ignore[arg-type]
    assert result is not None and result.status == "failed"  # from the signed status query
    assert sim.ledger == []
    assert sim.requests == 2  # the POST, then GET /v1/orders/F2


def test_answer_with_a_corrupted_signature_on_a_real_topup(sim: CarrierSim, client: CarrierClient) -> None:
    def corrupt(method: str, path: str, status: int, body: bytes) -> tuple[int, bytes]:
        return status, body + b" " if method == "POST" else body

    sim.tamper = corrupt
    result = apply_topup(client, _Clock(), "F3", ACTIVE, "D1G-1M", 1000)  # type: ignore[arg-type]
    assert result is not None and result.status == "applied"  # believed from the signed status answer only
    assert sim.applied_count("F3") == 1


def test_answer_signed_with_another_secret_is_refused(sim: CarrierSim) -> None:
    stranger = CarrierClient(sim.base_url, timeout_s=5.0, **{**sim.client_options(), "app_secret": b"x" * 32})
    with pytest.raises(LinkError, match="401"):  # our request is refused; its (unverifiable) answer says so
        stranger.lookup_sim(ACTIVE)


# --- funding_ref ---------------------------------------------------------------------------------------------

def test_the_topup_names_the_payment_that_funds_it(sim: CarrierSim, client: CarrierClient) -> None:
    assert client.create_topup("P1", ACTIVE, "D1G-1M", 1000, funding_ref="612510301234").status == "applied"
    assert sim.ledger[0].funding_ref == "612510301234"
    assert sim.order("P1")["funding_ref"] == "612510301234"  # type: ignore[index]
    # a resend without it (recovery) is the same order, never a conflict
    assert client.create_topup("P1", ACTIVE, "D1G-1M", 1000).status == "applied"
    assert sim.applied_count("P1") == 1


# --- TLS -----------------------------------------------------------------------------------------------------

def test_the_simulator_serves_https_only(sim: CarrierSim) -> None:
    assert sim.base_url.startswith("https://127.0.0.1:")
    plain = CarrierClient(sim.base_url.replace("https", "http"), timeout_s=2.0,
                          **{**sim.client_options(), "insecure_plaintext": True})
    with pytest.raises(LinkError):
        plain.lookup_sim(ACTIVE)


def test_a_certificate_from_another_ca_is_refused(sim: CarrierSim, tmp_path: Path) -> None:
    other = CarrierSim(workdir=str(tmp_path))  # its own CA, never started
    untrusting = CarrierClient(sim.base_url, timeout_s=2.0, **{**sim.client_options(), "ca_file": other.ca_file})
    with pytest.raises(LinkError, match="TLS handshake failed \\(not sent\\)"):
        untrusting.create_topup("C1", ACTIVE, "D1G-1M", 1000)
    system_trust = CarrierClient(sim.base_url, timeout_s=2.0, **{**sim.client_options(), "ca_file": ""})
    with pytest.raises(LinkError, match="TLS handshake failed"):
        system_trust.lookup_sim(ACTIVE)
    assert sim.ledger == [] and sim.requests == 0


def test_plain_http_needs_insecure_plaintext() -> None:
    with pytest.raises(ConfigError, match="plain http"):
        CarrierClient("http://127.0.0.1:8080", app_id="A", app_secret=b"s" * 16)


def test_unreadable_ca_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="carrier.ca_file"):
        CarrierClient("https://127.0.0.1:8443", app_id="A", app_secret=b"s" * 16, ca_file=str(bad))


@pytest.mark.parametrize("app_id", ["", "has space", "x" * 65])
def test_bad_app_id_is_a_config_error(app_id: str) -> None:
    with pytest.raises(ConfigError, match="carrier.app_id"):
        CarrierClient("https://127.0.0.1:8443", app_id=app_id, app_secret=b"s" * 16)


# --- the secret file -----------------------------------------------------------------------------------------

def test_secret_file_0600_is_read(sim: CarrierSim, tmp_path: Path) -> None:
    path = sim.write_secret(str(tmp_path / "secret"))
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert read_app_secret(path) == sim.app_secret


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_secret_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret"
    path.write_text("0123456789abcdef0123456789abcdef\n")
    path.chmod(mode)
    with pytest.raises(ConfigError, match=f"mode {mode:04o}.*0600"):
        read_app_secret(str(path))


def test_secret_file_missing_empty_or_unset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="app_secret_file is not set"):
        read_app_secret("")
    with pytest.raises(ConfigError, match="cannot open"):
        read_app_secret(str(tmp_path / "none"))
    short = tmp_path / "short"
    short.write_text("abc")
    short.chmod(0o600)
    with pytest.raises(ConfigError, match="16-4096"):
        read_app_secret(str(short))
