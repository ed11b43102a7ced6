"""HostClient over real TCP on 127.0.0.1 against scripted one-connection servers: matching, stale answers,
split answers, timeouts, refusals, garbage. (The client against the simulated acquirer: test_acquirer.py.)"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from drivers.host import HostClient
from drivers.host import messages as m
from flows.ports import AuthRequest, ReversalRequest
from pos_errors import ConfigError, LinkError, LinkTimeout, LocalProtocolError, RemoteProtocolError

PAN = "6212345678901234"
REQUEST = AuthRequest(stan=42, amount_minor=1250, local_time=dt.datetime(2025, 1, 15, 10, 30, 45), pan=PAN,
                      expiry_yymm="2712", pin_block=bytes(16), ksn=bytes(12))

Script = Callable[[socket.socket, m.Fields], object]


class ScriptedHost:
    """Accepts one connection, reads one framed request, then runs ``script(conn, request_fields)``."""

    def __init__(self, script: Script) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.script = script
        self.requests: list[m.Fields] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            decoder = m.FrameDecoder()
            while (raw := decoder.next_frame()) is None:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                decoder.receive_data(chunk)
            fields = m.unpack(raw)
            self.requests.append(fields)
            self.script(conn, fields)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


def answer(request: m.Fields, **overrides: str) -> m.Fields:
    """As a real host answers: fields 3, 4, 41, 42 and 49 echoed (``drivers.host.answer_check``)."""
    fields = {key: request[key] for key in ("3", "4", "42", "49") if key in request}
    fields.update({"t": m.response_mti(request["t"]), "11": request["11"], "41": request["41"], "39": "00",
                   "37": "000000000001", "38": "A1B2C3"})
    fields.update(overrides)
    return fields


def send(conn: socket.socket, fields: m.Fields) -> None:
    conn.sendall(m.frame(m.pack(fields)))


@pytest.fixture
def host() -> Iterator[Callable[[Script], ScriptedHost]]:
    started: list[ScriptedHost] = []

    def start(script: Script) -> ScriptedHost:
        started.append(ScriptedHost(script))
        return started[-1]

    yield start
    for h in started:
        h.close()


def client_for(port: int, timeout_s: float = 2.0) -> HostClient:
    return HostClient("127.0.0.1", port, timeout_s=timeout_s, connect_timeout_s=1.0, terminal_id="T0000001",
                      merchant_id="M00000000000001",
                      clock=lambda: dt.datetime(2025, 1, 15, 2, 31, tzinfo=dt.UTC))


def test_approval_and_request_fields(host: Callable[[Script], ScriptedHost]) -> None:
    h = host(lambda conn, req: send(conn, answer(req, **{"55": "910A" + "11" * 8 + "3030"})))
    response = client_for(h.port).authorize(REQUEST)
    assert (response.response_code, response.auth_code, response.rrn) == ("00", "A1B2C3", "000000000001")
    assert response.icc_data == bytes.fromhex("910A" + "11" * 8 + "3030")
    sent = h.requests[0]
    assert (sent["t"], sent["3"], sent["11"], sent["41"], sent["52"]) == ("0200", "000000", "000042",
                                                                         "T0000001", "00" * 16)


def test_stale_answer_is_discarded(host: Callable[[Script], ScriptedHost],
                                   caplog: pytest.LogCaptureFixture) -> None:
    def script(conn: socket.socket, req: m.Fields) -> None:
        send(conn, answer(req, **{"11": "000041", "39": "05"}))  # late reply to the previous STAN
        send(conn, answer(req, **{"41": "OTHERTID", "39": "05"}))  # someone else's terminal
        send(conn, answer(req, t="0410", **{"39": "05"}))  # another message class
        send(conn, answer(req))

    h = host(script)
    with caplog.at_level(logging.WARNING, logger="drivers.host.client"):
        assert client_for(h.port).authorize(REQUEST).response_code == "00"
    assert sum("discarding stale answer" in r.getMessage() for r in caplog.records) == 3


def test_answer_dribbled_byte_at_a_time(host: Callable[[Script], ScriptedHost]) -> None:
    def script(conn: socket.socket, req: m.Fields) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in m.frame(m.pack(answer(req, **{"39": "51"}))):
            conn.sendall(bytes([b]))

    h = host(script)
    assert client_for(h.port).authorize(REQUEST).response_code == "51"


def test_no_answer_is_link_timeout(host: Callable[[Script], ScriptedHost]) -> None:
    release = threading.Event()
    h = host(lambda conn, req: release.wait(5))
    with pytest.raises(LinkTimeout, match="outcome unknown"):
        client_for(h.port, timeout_s=0.3).authorize(REQUEST)
    release.set()
    assert h.requests, "the request did reach the host: that is why the outcome is unknown"


def test_close_without_answer_is_link_timeout(host: Callable[[Script], ScriptedHost]) -> None:
    h = host(lambda conn, req: None)
    with pytest.raises(LinkTimeout):
        client_for(h.port).authorize(REQUEST)


@pytest.mark.parametrize("garbage", [
    b"\x00\x060210\xff\xff",  # MTI then a truncated bitmap
    b"\xff\xff" + b"x" * 10,  # a length no answer can have
    m.frame(m.pack({"t": "0210", "11": "000042", "41": "T0000001", "39": "00"})[:-3]),  # cut short
])
def test_garbled_answer_is_remote_protocol_error(host: Callable[[Script], ScriptedHost],
                                                  garbage: bytes) -> None:
    h = host(lambda conn, req: conn.sendall(garbage))
    with pytest.raises(RemoteProtocolError):
        client_for(h.port).authorize(REQUEST)


def test_matching_answer_without_response_code(host: Callable[[Script], ScriptedHost]) -> None:
    h = host(lambda conn, req: send(conn, {"t": "0210", "11": req["11"], "41": req["41"]}))
    with pytest.raises(RemoteProtocolError):
        client_for(h.port).authorize(REQUEST)


def test_refused_is_link_error_not_timeout() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with pytest.raises(LinkError) as err:
        client_for(port).authorize(REQUEST)
    assert not isinstance(err.value, LinkTimeout)


def test_invalid_request_never_touches_the_network() -> None:
    from dataclasses import replace
    with pytest.raises(LocalProtocolError):
        client_for(1).authorize(replace(REQUEST, pan="123"))


def test_reversal_and_echo(host: Callable[[Script], ScriptedHost]) -> None:
    h = host(lambda conn, req: send(conn, answer(req)))
    code = client_for(h.port).reverse(ReversalRequest(stan=43, original=REQUEST, repeat=True))
    assert code == "00"
    sent = h.requests[0]
    assert (sent["t"], sent["11"], sent["7"]) == ("0401", "000043", "0115023100")
    assert sent["90"][:10] == "0200" "000042"
    h2 = host(lambda conn, req: send(conn, {"t": "0810", "11": req["11"], "41": req["41"], "39": "00"}))
    assert client_for(h2.port).echo() is True
    assert (h2.requests[0]["t"], h2.requests[0]["70"]) == ("0800", "301")


def test_echo_false_when_unanswered(host: Callable[[Script], ScriptedHost]) -> None:
    h = host(lambda conn, req: None)
    assert client_for(h.port).echo() is False


def test_logs_never_carry_the_pan(host: Callable[[Script], ScriptedHost],
                                  caplog: pytest.LogCaptureFixture) -> None:
    h = host(lambda conn, req: send(conn, answer(req, **{"39": "55"})))
    with caplog.at_level(logging.DEBUG):
        client_for(h.port).authorize(REQUEST)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "621234******1234" in text and PAN not in text


@pytest.mark.parametrize("kwargs", [{"terminal_id": ""}, {"merchant_id": "M" * 16}, {"timeout_s": 0}])
def test_config_errors(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"terminal_id": "T1", "merchant_id": "M1", **kwargs}
    with pytest.raises(ConfigError):
        HostClient("127.0.0.1", 1, **args)  # type: ignore[arg-type]
