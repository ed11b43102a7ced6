"""``CarrierClient`` against a scripted peer on 127.0.0.1 that answers exactly the bytes a test gives it."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from drivers.carrier import CarrierClient
from drivers.carrier_sign import sign_answer
from pos_errors import LinkError, LinkTimeout, LocalProtocolError, RemoteProtocolError

ICCID = "89860424000000000017"
SECRET = b"scripted-peer-secret-0123456789"
NONCE = "n" * 16  # the client under test always sends this nonce, so a scripted answer can be signed ahead


class ScriptedPeer:
    """Accepts connections; for each, reads one HTTP request and sends ``answer`` (None: close silently)."""

    def __init__(self) -> None:
        self.answer: bytes | None = b""
        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                self.requests.append(_read_request(conn))
                if self.answer is not None:
                    conn.sendall(self.answer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


def _read_request(conn: socket.socket) -> bytes:
    conn.settimeout(2)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(4096)
    return head + b"\r\n\r\n" + body


def http_answer(status: str, body: bytes, content_type: str = "application/json", *, signed: bool = True,
                secret: bytes = SECRET) -> bytes:
    """A complete HTTP answer, signed as the platform signs (bound to NONCE) unless ``signed`` is False."""
    code = int(status.split(maxsplit=1)[0])
    signature = ""
    if signed:
        signature = (f"X-Timestamp: 1764000000\r\nX-Nonce: peer-nonce-000001\r\nX-Signature: "
                     f"{sign_answer(secret, code, '1764000000', 'peer-nonce-000001', NONCE, body)}\r\n")
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"{signature}Connection: close\r\n\r\n").encode() + body


def js(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


SIM = {"iccid": ICCID, "msisdn": "1064900000001", "status": "active", "plan_name": "1GB", "balance_minor": 1,
       "data_left_mb": 2, "expiry": "2027-01-31", "carrier": "X"}


@pytest.fixture
def peer() -> Iterator[ScriptedPeer]:
    scripted = ScriptedPeer()
    yield scripted
    scripted.close()


@pytest.fixture
def client(peer: ScriptedPeer) -> CarrierClient:
    return CarrierClient(peer.url + "/api/", timeout_s=1.0, terminal_id="T9", app_id="APP9", app_secret=SECRET,
                         insecure_plaintext=True, nonce=lambda: NONCE)


def test_request_shape(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = http_answer("201 Created", js({"order": {"order_id": "O1", "status": "applied",
                                                           "balance_minor": 5, "message": "ok"}}))
    result = client.create_topup("O1", ICCID, "D1G-1M", 1000)
    assert (result.status, result.balance_minor, result.message) == ("applied", 5, "ok")
    head, _, body = peer.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /api/v1/orders HTTP/1.1\r\n")
    assert b"X-Terminal-Id: T9" in head
    assert json.loads(body) == {"order_id": "O1", "iccid": ICCID, "plan_id": "D1G-1M", "amount_minor": 1000}


def test_sim_answer_parsed(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = http_answer("200 OK", js({"sim": SIM}))
    info = client.lookup_sim(ICCID)
    assert info is not None and info.carrier == "X"
    assert peer.requests[0].startswith(f"GET /api/v1/sims/{ICCID} ".encode())


@pytest.mark.parametrize("bad", [
    {"sim": {k: v for k, v in SIM.items() if k != "balance_minor"}},  # missing field
    {"sim": {**SIM, "balance_minor": "12.50"}},                        # wrong type
    {"sim": {**SIM, "data_left_mb": True}},                            # bool is not an int
    {"sim": {**SIM, "iccid": "89860424000000000025", "msisdn": "1064900000002"}},  # another SIM
    {"sim": "active"},
    ["not", "an", "object"],
])
def test_malformed_sim_answers(peer: ScriptedPeer, client: CarrierClient, bad: object) -> None:
    peer.answer = http_answer("200 OK", js(bad))
    with pytest.raises(RemoteProtocolError):
        client.lookup_sim(ICCID)


@pytest.mark.parametrize("bad", [
    {"order": {"order_id": "OTHER", "status": "applied"}},   # another order's answer
    {"order": {"order_id": "O1", "status": "done"}},         # unknown status
    {"order": {"order_id": "O1", "status": "not_found"}},    # not a status an order can have
    {"order": {"order_id": "O1"}},
    {"result": "ok"},
])
def test_malformed_order_answers(peer: ScriptedPeer, client: CarrierClient, bad: object) -> None:
    peer.answer = http_answer("200 OK", js(bad))
    with pytest.raises(RemoteProtocolError):
        client.order_status("O1")


@pytest.mark.parametrize("bad", [{"plans": "none"}, {"plans": [{"plan_id": "X"}]}, {"plans": [3]},
                                 {"plans": [{"plan_id": "X", "name": "a", "name_zh": "b", "period_months": 1,
                                             "price_minor": 1, "data_mb": 1, "promotion": 5}]}])
def test_malformed_plan_answers(peer: ScriptedPeer, client: CarrierClient, bad: object) -> None:
    peer.answer = http_answer("200 OK", js(bad))
    with pytest.raises(RemoteProtocolError):
        client.list_plans(ICCID)


def test_not_http_at_all(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = b"\x00\x01garbage that is not a status line\r\n\r\n"
    with pytest.raises(RemoteProtocolError):
        client.lookup_sim(ICCID)


def test_non_json_200(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = http_answer("200 OK", "维护中".encode("gbk"), "text/plain")
    with pytest.raises(RemoteProtocolError):
        client.order_status("O1")


def test_404_from_a_wrong_route_is_not_not_found(peer: ScriptedPeer, client: CarrierClient) -> None:
    # A misconfigured base URL must not make every SIM look unknown or every order look never sent.
    peer.answer = http_answer("404 Not Found", b"<html>nginx</html>", "text/html")
    with pytest.raises(LinkError):
        client.lookup_sim(ICCID)
    with pytest.raises(LinkError):
        client.order_status("O1")


def test_400_is_local_protocol_error(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = http_answer("400 Bad Request", js({"error": "bad_request", "message": "plan_id missing"}))
    with pytest.raises(LocalProtocolError, match="plan_id missing"):
        client.create_topup("O1", ICCID, "D1G-1M", 1000)


def test_500_on_a_read_is_link_error(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = http_answer("500 Internal Server Error", js({"error": "internal", "message": "数据库忙"}))
    with pytest.raises(LinkError, match="数据库忙") as caught:
        client.order_status("O1")
    assert not isinstance(caught.value, LinkTimeout)


def test_502_on_create_is_outcome_unknown(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = http_answer("502 Bad Gateway", b"<html>bad gateway</html>", "text/html")
    with pytest.raises(LinkTimeout, match="outcome unknown"):
        client.create_topup("O1", ICCID, "D1G-1M", 1000)


def test_connection_dropped_after_the_request(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = None
    with pytest.raises(LinkTimeout):  # the POST may have been applied
        client.create_topup("O1", ICCID, "D1G-1M", 1000)
    with pytest.raises(LinkError) as caught:  # a read lost is just a failed read
        client.lookup_sim(ICCID)
    assert not isinstance(caught.value, LinkTimeout)


def test_truncated_body(peer: ScriptedPeer, client: CarrierClient) -> None:
    peer.answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"order\""
    with pytest.raises(LinkTimeout):
        client.create_topup("O1", ICCID, "D1G-1M", 1000)


def test_connect_timeout_is_not_sent() -> None:
    # A listening socket whose backlog is full never completes the handshake.
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(0)
        fillers = []
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(blocker.getsockname())
            fillers.append(s)
        try:
            client = CarrierClient(f"http://127.0.0.1:{blocker.getsockname()[1]}", timeout_s=0.2, app_id="A",
                                   app_secret=SECRET, insecure_plaintext=True)
            with pytest.raises(LinkError, match="not sent") as caught:
                client.create_topup("O1", ICCID, "D1G-1M", 1000)
            assert not isinstance(caught.value, LinkTimeout)
        finally:
            for s in fillers:
                s.close()
