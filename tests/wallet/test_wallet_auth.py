"""The wallet platform link is as strict as the carrier's, through loopback HTTPS with the per-world test CA:
requests signed (unsigned, stale, wrongly signed and replayed ones refused with 401 before the platform acts),
answers signed and bound to the request (a forged "paid" is not believed), certificates verified."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from pathlib import Path

import pytest

from drivers.carrier import CarrierClient
from drivers.carrier_sign import sign_request
from drivers.wallet import WalletClient
from flows.ports import CancelToken, Plan
from flows.pricing import FeeSchedule, quote
from flows.topup import TopupOrder
from flows.wallet_payment import WalletSettings, WalletTopupService
from pos_errors import ConfigError, LinkError, RemoteProtocolError
from sim.backends.carrier import CarrierSim
from sim.backends.wallet import WalletSim
from terminal.journal import Journal
from terminal.services import SystemClock

PLAN = Plan("D1G-1M", "1 GB monthly data", "1GB 月包", 1, 1000, 1024)


@pytest.fixture(scope="module")
def sim():  # type: ignore[no-untyped-def]
    platform = WalletSim(user_paying_s=0.2)
    platform.start()
    yield platform
    platform.stop()


def _raw_post(sim: WalletSim, path: str, payload: dict[str, object], headers: dict[str, str]) -> tuple[int, dict]:
    """One request over HTTPS (the test CA verified), signed only as the caller says."""
    context = ssl.create_default_context(cafile=sim.ca_file)
    conn = http.client.HTTPSConnection("127.0.0.1", int(sim.base_url.rsplit(":", 1)[1]), timeout=3, context=context)
    try:
        conn.request("POST", path, body=json.dumps(payload).encode(),
                     headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_serves_https_with_its_test_ca(sim: WalletSim) -> None:
    assert sim.base_url.startswith("https://") and Path(sim.ca_file).is_file()


def test_unsigned_request_is_refused_and_changes_nothing(sim: WalletSim) -> None:
    code = sim.make_code("emvqr", "paid")
    status, body = _raw_post(sim, "/v1/micropay", {"order_id": "U1", "auth_code": code, "amount_minor": 100,
                                                    "subject": "x"}, {"X-Terminal-Id": "T1"})
    assert (status, body["error"]) == (401, "unsigned")
    assert sim.find("U1") is None


def test_wrongly_signed_request_is_refused(sim: WalletSim) -> None:
    payload = {"order_id": "U2", "auth_code": sim.make_code("wechat"), "amount_minor": 100, "subject": "x"}
    timestamp, nonce = str(int(time.time())), "n" * 32
    signature = sign_request(b"not-the-secret-0123", "POST", "/v1/micropay", timestamp, nonce, sim.app_id,
                             json.dumps(payload).encode())
    status, body = _raw_post(sim, "/v1/micropay", payload, {"X-App-Id": sim.app_id, "X-Timestamp": timestamp,
                                                            "X-Nonce": nonce, "X-Signature": signature})
    assert (status, body["error"]) == (401, "bad_signature") and sim.find("U2") is None


def test_stale_request_is_refused(sim: WalletSim) -> None:
    client = WalletClient(sim.base_url, **sim.client_options(), clock=lambda: time.time() - 301)
    with pytest.raises(LinkError, match="401 stale_timestamp"):
        client.micropay("U3", sim.make_code("alipay"), 100, "x")
    assert sim.find("U3") is None and sim.refused[-1] == "stale_timestamp"


def test_replayed_request_is_refused(sim: WalletSim) -> None:
    client = WalletClient(sim.base_url, **sim.client_options(), nonce=lambda: "replayed-nonce-0001")
    assert client.query("U4").status == "not_found"
    with pytest.raises(LinkError, match="401 replayed_nonce"):
        client.micropay("U4", sim.make_code("wechat"), 100, "x")
    assert sim.find("U4") is None


def test_client_refuses_an_untrusted_certificate_and_plain_http(sim: WalletSim) -> None:
    options = {**sim.client_options(), "ca_file": ""}  # the system trust store does not know the test CA
    with pytest.raises(LinkError, match="TLS handshake failed"):
        WalletClient(sim.base_url, **options).query("U5")
    with pytest.raises(ConfigError, match="plain http"):
        WalletClient("http://127.0.0.1:1", app_id="A1", app_secret=b"s" * 16)


def test_answer_signed_with_another_secret_is_not_believed(sim: WalletSim) -> None:
    options = {**sim.client_options(), "app_secret": b"another-secret-0123456"}
    with pytest.raises(LinkError, match="401 bad_signature"):  # the platform refuses it, unsigned 401 named
        WalletClient(sim.base_url, **options).query("U6")


def test_forged_paid_answer_is_a_wrong_answer(sim: WalletSim) -> None:
    client = WalletClient(sim.base_url, **sim.client_options())
    sim.forge_paid_answers(True)
    try:
        with pytest.raises(RemoteProtocolError, match="unsigned or wrongly signed; outcome unknown"):
            client.micropay("F1", sim.make_code("emvqr", "insufficient_balance"), 100, "x")
        assert client.query("F1").status == "failed"  # the platform's signed word
    finally:
        sim.forge_paid_answers(False)


def test_forged_paid_never_tops_up(sim: WalletSim, tmp_path: Path) -> None:
    carrier_sim = CarrierSim()
    carrier = CarrierClient(carrier_sim.start(), timeout_s=2.0, **carrier_sim.client_options())
    journal = Journal(tmp_path / "j.db")
    settings = WalletSettings(terminal_id="T9", merchant_id="898440154110001", poll_interval_s=0.05,
                              merchant_timeout_s=1.0, status_polls=2)
    service = WalletTopupService(WalletClient(sim.base_url, **sim.client_options()), carrier, journal,
                                 SystemClock(), settings)
    order = TopupOrder("89860424000000000017", "1064900000001", quote(PLAN, "emvqr", FeeSchedule({}), 100_000),
                       "01")
    sim.forge_paid_answers(True)
    try:
        result = service.pay_with_code(order, sim.make_code("emvqr", "insufficient_balance"), lambda _p: None,
                                       CancelToken())
    finally:
        sim.forge_paid_answers(False)
        carrier_sim.stop()
    row = journal.get(result.txn_id)
    assert result.status == "declined" and row.state == "declined"
    assert sim.orders[row.order_id].status == "failed" and carrier_sim.ledger == []
    journal.close()
