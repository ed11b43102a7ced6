"""``drivers.http_strict``: a well-formed answer reads exactly as stdlib ``http.client`` reads it (the oracle), a
malformed header block is refused, and the platform clients use it over a real socket."""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.carrier import CarrierClient
from drivers.http_strict import MAX_FIELDS, MAX_LINE, BadHeaders, StrictResponse
from pos_errors import RemoteProtocolError
from tests.carrier.test_client_faults import ICCID, NONCE, SECRET, SIM, ScriptedPeer, http_answer, js


class _Wire:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.raw)


def _read(cls: type[http.client.HTTPResponse], raw: bytes, method: str = "GET") -> tuple[object, ...]:
    answer = cls(_Wire(raw), method=method)  # type: ignore[arg-type]
    answer.begin()
    framing = (answer.chunked, answer.length, answer.will_close)  # type: ignore[attr-defined]
    names = {name.lower() for name, _ in answer.getheaders()} | {"content-length", "x-missing"}
    looked_up = {(n, case): answer.getheader(case(n), "?") for n in sorted(names) for case in (str.lower, str.upper)}
    return answer.status, answer.reason, answer.version, framing, answer.getheaders(), looked_up, answer.read()


WELL_FORMED = [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}",
    b"HTTP/1.1 201 Created\r\nX-Signature: ab\r\nX-Nonce: n\r\nX-Timestamp: 1\r\nContent-Length: 3\r\n\r\nabcEXTRA",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length:5\r\nX-Empty:\r\nX-Tab:\tv\r\nX-Trail: v  \r\n\r\nhello",
    b"HTTP/1.1 200 OK\nContent-Length: 2\nX-Bare-Lf: yes\n\nok",           # bare LF line ends, as http.client
    b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n",  # joined by ", "
    b"HTTP/1.1 200 OK\r\nX-Latin: caf\xe9\r\nContent-Length: 0\r\n\r\n",  # obs-text, ISO 8859-1
    b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\nuntil the server closes",                  # no length: will_close
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
    b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",                        # no reason phrase
]


@pytest.mark.parametrize("raw", WELL_FORMED)
def test_a_well_formed_answer_reads_as_http_client_reads_it(raw: bytes) -> None:
    assert _read(StrictResponse, raw) == _read(http.client.HTTPResponse, raw)


def test_head_has_no_body() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    assert _read(StrictResponse, raw, "HEAD") == _read(http.client.HTTPResponse, raw, "HEAD")


_NAMES = st.text(alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                 min_size=1, max_size=12).filter(lambda n: n.lower() not in ("content-length", "transfer-encoding"))
_VALUES = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
                  max_size=30)


@settings(max_examples=150, deadline=None)
@given(fields=st.lists(st.tuples(_NAMES, _VALUES), max_size=12), body=st.binary(max_size=20))
def test_any_well_formed_field_block_reads_as_http_client_reads_it(fields: list[tuple[str, str]],
                                                                   body: bytes) -> None:
    head = "".join(f"{name}: {value}\r\n" for name, value in fields).encode("iso-8859-1")
    raw = b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    assert _read(StrictResponse, raw) == _read(http.client.HTTPResponse, raw)


MALFORMED = [
    (b"X-Junk\r\n", "line 2 not a header field"),                                   # no colon
    (b"X-Signature : ab\r\n", "line 2 not a header field"),                         # blank before the colon
    (b"X-A: 1\r\n  folded\r\n", "line 3 folded onto the one before"),              # obs-fold
    (b"X Sig: ab\r\n", "not a header field"),                                       # not a token
    (b": empty name\r\n", "not a header field"),
    (b"X-A: a\x00b\r\n", "control character"),
    (b"X-A: a\rb\r\n", "control character"),                                        # a bare CR inside a value
    (b"Content-Length: 2\r\n", "Content-Length .* is not one number"),              # a second, same value
    (b"Content-Length: 7\r\n", "Content-Length .* is not one number"),              # a second, other value
    (b"Transfer-Encoding: chunked\r\n", "both Transfer-Encoding and Content-Length"),
]


@pytest.mark.parametrize(("extra", "reason"), MALFORMED)
def test_a_malformed_header_block_is_refused(extra: bytes, reason: str) -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + extra + b"\r\nok"
    with pytest.raises(BadHeaders, match=reason):
        _read(StrictResponse, raw)


@pytest.mark.parametrize("framing", [
    b"Content-Length: +2", b"Content-Length: 2, 2", b"Content-Length: -1", b"Content-Length: \xb2",  # "²": isdigit
    b"Content-Length: 1234567890123456789", b"Transfer-Encoding: gzip", b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
])
def test_framing_with_more_than_one_reading_is_refused(framing: bytes) -> None:
    with pytest.raises(BadHeaders, match="Content-Length|Transfer-Encoding"):
        _read(StrictResponse, b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n\r\nok")


def test_limits_are_http_clients() -> None:
    too_long = b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * MAX_LINE + b"\r\n\r\n"
    with pytest.raises(http.client.LineTooLong):
        _read(StrictResponse, too_long)
    for fields in (MAX_FIELDS - 1, MAX_FIELDS, MAX_FIELDS + 1):  # http.client counts the empty line too
        many = b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * fields + b"\r\n"
        if fields < MAX_FIELDS:
            assert _read(StrictResponse, many) == _read(http.client.HTTPResponse, many)
            continue
        for cls in (StrictResponse, http.client.HTTPResponse):
            with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
                _read(cls, many)


def test_the_header_block_must_end() -> None:
    with pytest.raises(BadHeaders, match="no line end"):
        _read(StrictResponse, b"HTTP/1.1 200 OK\r\nContent-Length: 2")  # cut off inside the block


# --- through the carrier client, over a real socket --------------------------------------------------------------


@pytest.fixture
def peer() -> Iterator[ScriptedPeer]:
    scripted = ScriptedPeer()
    yield scripted
    scripted.close()


@pytest.fixture
def client(peer: ScriptedPeer) -> CarrierClient:
    return CarrierClient(peer.url, timeout_s=1.0, app_id="APP9", app_secret=SECRET, insecure_plaintext=True,
                         nonce=lambda: NONCE)


def test_a_signed_answer_with_two_lengths_is_outcome_unknown(peer: ScriptedPeer, client: CarrierClient) -> None:
    body = json.dumps({"order": {"order_id": "O1", "status": "applied"}}).encode()
    signed = http_answer("201 Created", body)
    head, _, _ = signed.partition(b"\r\n\r\n")
    peer.answer = head + b"\r\nContent-Length: 0\r\n\r\n" + body  # which length? a smuggled second answer?
    with pytest.raises(RemoteProtocolError, match="did not answer HTTP.*Content-Length"):
        client.create_topup("O1", ICCID, "D1G-1M", 1000)


def test_a_signed_chunked_answer_is_read(peer: ScriptedPeer, client: CarrierClient) -> None:
    body = js({"sim": SIM})
    head, _, _ = http_answer("200 OK", body).partition(b"\r\n\r\n")
    head = b"\r\n".join(line for line in head.split(b"\r\n") if not line.startswith(b"Content-Length"))
    chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
    peer.answer = head + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    sim = client.lookup_sim(ICCID)
    assert sim is not None and sim.iccid == ICCID and sim.balance_minor == SIM["balance_minor"]


# --- a request with a body leaves in one write --------------------------------------------------------------------


class _Socket:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


@pytest.mark.parametrize(("body", "writes"), [(b'{"order_id": "O1"}', 1), (None, 1), (b"", 1)])
def test_a_request_leaves_in_one_write(body: bytes | None, writes: int) -> None:
    from drivers.http_strict import Connection

    conn, stock = Connection("127.0.0.1", 9), http.client.HTTPConnection("127.0.0.1", 9)
    for each in (conn, stock):
        each.sock = _Socket()  # type: ignore[assignment]
        each.request("POST" if body is not None else "GET", "/v1/orders", body=body, headers={"X-A": "1"})
    assert len(conn.sock.writes) == writes  # type: ignore[union-attr]
    assert len(stock.sock.writes) == (2 if body else 1)  # type: ignore[union-attr]  # http.client: head, then body
    assert b"".join(conn.sock.writes) == b"".join(stock.sock.writes)  # type: ignore[union-attr]  # same bytes


def test_a_failed_write_sends_nothing_half() -> None:
    from drivers.http_strict import Connection

    class Broken(_Socket):
        def sendall(self, data: bytes) -> None:
            raise BrokenPipeError

    conn = Connection("127.0.0.1", 9)
    conn.sock = Broken()  # type: ignore[assignment]
    with pytest.raises(BrokenPipeError):
        conn.request("POST", "/v1/orders", body=b"{}")
    assert conn._held is None
