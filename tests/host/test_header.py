"""The dialect's TPDU + application header (drivers.host.header): the documented hex example byte for byte,
the terminal and the simulated acquirer through real mutual TLS with the header, and every wrong TPDU or header
refused — by the host (no answer) and by the terminal (no answer either: reversed like a timeout)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.host import HostClient
from drivers.host import messages as m
from drivers.host.header import FrameHeader
from pos_errors import ConfigError, LinkTimeout, RemoteProtocolError
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from tests.host.conftest import BDK, TODAY
from tests.host.test_secure_link import TID, client, request

HEADER = FrameHeader.from_config("6000030000", "603100310701")
DOC = Path(__file__).resolve().parents[2] / "docs" / "protocols" / "acquirer.md"


def test_the_documented_echo_frame_byte_for_byte() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("## Frame header (TPDU)", 1)[1].split("Worked example", 1)[1].split("```", 2)[1]
    lines = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in block.strip().splitlines())}
    echo = {"t": "0800", "7": "0115103045", "11": "000001", "41": "SIM00001", "70": "301"}
    assert HEADER is not None
    request = m.frame(HEADER.request(m.pack(echo)))
    assert lines["request"] == request.hex(" ").upper()
    answer_iso = m.pack({**echo, "t": "0810", "39": "00"})
    answer = m.frame(HEADER.answer(request[2:2 + HEADER.size], answer_iso))
    assert lines["answer"] == answer.hex(" ").upper()
    assert HEADER.split_answer(answer[2:]) == answer_iso
    assert re.search(r"60 00 00 00 03", lines["answer"])  # the addresses swapped


@pytest.mark.parametrize(("tpdu", "header", "why"), [
    ("6000030000", "6031", "host.app_header must be 12 hex digits"),
    ("7000030000", "", "host.tpdu must be 10 hex digits starting with 60"),
    ("60000300", "", "host.tpdu must be 10 hex digits"),
    ("60000300zz", "", "host.tpdu must be hexadecimal"),
    ("", "603100310701", "host.app_header needs host.tpdu"),
])
def test_bad_configuration_is_named(tpdu: str, header: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        FrameHeader.from_config(tpdu, header)


@pytest.mark.parametrize(("body", "why"), [
    ("6000030000" "603100310701" "30383130", "answer TPDU 6000030000 is not 6000000003"),  # not swapped
    ("6000000004" "603100310701" "30383130", "answer TPDU"),  # another address
    ("6000000003" "613100310701" "30383130", "application type 61 is not 60"),
    ("60000000", "shorter than TPDU and header"),
])
def test_terminal_refuses_a_wrong_answer_header(body: str, why: str) -> None:
    assert HEADER is not None
    with pytest.raises(RemoteProtocolError, match=why):
        HEADER.split_answer(bytes.fromhex(body))


@pytest.fixture
def security(tmp_path: Path) -> AcquirerSecurity:
    return AcquirerSecurity.create(tmp_path, TID)


@pytest.fixture
def acquirer(security: AcquirerSecurity) -> Iterator[AcquirerSim]:
    sim = AcquirerSim(bdk=BDK, pin_scheme="aes", today=lambda: TODAY, security=security, header=HEADER)
    sim.start()
    yield sim
    sim.stop()


def _with_header(c: HostClient, header: FrameHeader | None) -> HostClient:
    c._transport.header = header  # noqa: SLF001 - the same client with another dialect
    return c


def test_sale_through_mutual_tls_with_the_header(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    c = _with_header(client(acquirer, security), HEADER)
    assert c.authorize(request(1)).approved
    assert acquirer.wire_log == ["0800", "0810", "0200", "0210"] and acquirer.header_refusals == 0


@pytest.mark.parametrize(("tpdu", "header"), [
    ("6000040000", "603100310701"),  # another NII: the front end does not route it
    ("6000030000", "603200310701"),  # another software version
    ("6000030000", "623100310701"),  # another application type
])
def test_host_drops_a_request_with_a_wrong_header(acquirer: AcquirerSim, security: AcquirerSecurity,
                                                  tpdu: str, header: str) -> None:
    c = _with_header(client(acquirer, security), FrameHeader.from_config(tpdu, header))
    with pytest.raises(LinkTimeout):
        c.sign_on()
    assert acquirer.wire_log == [] and acquirer.header_refusals == 1


def test_host_drops_a_request_without_the_header(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    with pytest.raises(LinkTimeout):
        _with_header(client(acquirer, security), None).sign_on()
    assert acquirer.header_refusals == 1


def test_an_answer_with_a_forged_tpdu_is_no_answer(caplog: pytest.LogCaptureFixture) -> None:
    """A counterpart that answers a good message behind a wrong TPDU: the terminal takes no answer from it."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            decoder = m.FrameDecoder()
            while (raw := decoder.next_frame()) is None:
                decoder.receive_data(conn.recv(4096))
            fields = m.unpack(raw[11:])
            answer = m.pack({"t": "0810", "7": fields["7"], "11": fields["11"], "41": fields["41"], "39": "00",
                             "70": "301"})
            conn.sendall(m.frame(bytes.fromhex("6000030000" "603100310701") + answer))  # not swapped

    threading.Thread(target=serve, daemon=True).start()
    host, port = listener.getsockname()
    c = HostClient(host, port, terminal_id=TID, merchant_id="M1", timeout_s=1.0, header=HEADER)
    assert c.echo() is False
    assert "answer TPDU 6000030000 is not 6000000003" in caplog.text
    listener.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_raise_only_our_error(body: bytes) -> None:
    assert HEADER is not None
    for split in (HEADER.split_answer, HEADER.split_request):
        try:
            split(body)
        except RemoteProtocolError:
            pass


@given(st.binary(min_size=4, max_size=60))
def test_request_and_answer_round_trip(message: bytes) -> None:
    assert HEADER is not None
    head, got = HEADER.split_request(HEADER.request(message))
    assert got == message and HEADER.split_answer(HEADER.answer(head, message)) == message


def test_answer_header_asking_for_sign_on_makes_the_terminal_sign_on(acquirer: AcquirerSim,
                                                                     security: AcquirerSecurity) -> None:
    c = _with_header(client(acquirer, security), HEADER)
    assert c.authorize(request(1)).approved
    acquirer.header_requirement = 3  # "重新签到" in the answer's application header
    assert c.echo()
    acquirer.header_requirement = 0
    assert c.authorize(request(2)).approved
    assert acquirer.wire_log == ["0800", "0810", "0200", "0210", "0800", "0810", "0800", "0810", "0200", "0210"]
    assert c.authorize(request(3)).approved and acquirer.wire_log[-2:] == ["0200", "0210"]  # once only
