"""``http.client``'s connections for the platform clients (``drivers.http_keep``), cheaper on the terminal's CPU:
an answer read strictly and without the e-mail parser (``StrictResponse``, through ``response_class``, the stdlib's
hook for it), and a request's header block and body sent in one write (``Connection`` / ``TlsConnection``).

``http.client`` hands the header block to ``email.parser`` (a feed parser, a policy object per header, a linear
scan per ``getheader``: ~90 µs of CPU per exchange on the terminal, issue 17) and takes whatever it makes of a
malformed block: a line without a colon silently ends the headers, two ``Content-Length`` fields are read as the
first. Here one regular expression checks and splits the whole block (RFC 9112 §5) into a dictionary, and an
answer whose header block is not well formed is refused (``BadHeaders``, an ``http.client.HTTPException``: the
clients report "did not answer HTTP", outcome unknown for a write) instead of being guessed at:

* a field name that is not an RFC 9110 token (§5.1; that includes white space before the colon: RFC 9112 §5.1
  "MUST reject"), a line without a colon, a line folded onto the one before (obs-fold, RFC 9112 §5.2), a control
  character in a value;
* framing that is not exactly one reading (RFC 9112 §6.3): ``Content-Length`` that is not digits, or given twice;
  ``Transfer-Encoding`` other than a single ``chunked``; both of them (request smuggling's shape);
* as before, a line over 65,536 bytes or more than 100 fields (``http.client``'s own limits and errors).

Everything else is ``http.client``'s unchanged: the status line, ``100 Continue``, chunked and sized bodies,
keep-alive, and values as it gave them (leading blanks dropped, trailing ones kept, several fields of one name
joined by ``", "`` in ``getheader``).

>>> import io
>>> class Wire:
...     def makefile(self, mode):
...         return io.BytesIO(b"HTTP/1.1 200 OK\\r\\nX-Nonce: n1\\r\\nContent-Length: 2\\r\\n\\r\\nok")
>>> answer = StrictResponse(Wire(), method="GET"); answer.begin()
>>> answer.status, answer.getheader("x-nonce"), answer.read()
(200, 'n1', b'ok')
"""

from __future__ import annotations

import http.client
import re
from typing import Any

__all__ = ["StrictResponse", "FieldBlock", "BadHeaders", "MAX_LINE", "MAX_FIELDS", "Connection", "TlsConnection"]

MAX_LINE = 65536  # http.client's _MAXLINE: a longer line is LineTooLong
MAX_FIELDS = 100  # http.client's _MAXHEADERS (lines of the block with its empty line: 99 fields)
_NAME = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # a token (RFC 9110 §5.6.2 tchar)
# One field line (RFC 9112 §5): name, colon, value without its leading blanks and with no control character but HTAB
# (RFC 9110 §5.5), ended by CRLF (or a bare LF, as http.client takes it).
_FIELD_LINE = f"({_NAME}):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*)\r?\n"
_FIELD = re.compile(_FIELD_LINE)
_BLOCK = re.compile(f"(?:{_FIELD_LINE})*")
_TOKEN = re.compile(_NAME)
_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit would take "²" (0xB2 in ISO 8859-1)
_BLANK = frozenset((b"\r\n", b"\n", b""))


class BadHeaders(http.client.HTTPException):
    """The answer's header block is not well formed HTTP/1.1 (the reason in the text; nothing of it was used)."""


class FieldBlock(http.client.HTTPMessage):
    """An answer's header fields: looked up by lower-case name in a dictionary; the e-mail ``Message`` API
    (``items``, ``keys``, ``as_string``) still works from the same fields, in their order."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        super().__init__()
        self._by_name: dict[str, list[str]] = {}
        for name, value in fields:
            self.set_raw(name, value)  # the e-mail API's own store, in wire order
            self._by_name.setdefault(name.lower(), []).append(value)

    def get(self, name: str, failobj: Any = None) -> Any:
        values = self._by_name.get(name.lower())
        return values[0] if values else failobj

    def get_all(self, name: str, failobj: Any = None) -> Any:
        values = self._by_name.get(name.lower())
        return list(values) if values else failobj

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name


def read_fields(fp: Any) -> FieldBlock:
    """The header block after the status line, up to and including its empty line. Raises BadHeaders,
    ``http.client.LineTooLong`` or ``http.client.HTTPException`` (over MAX_FIELDS)."""
    lines: list[bytes] = []
    while True:
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        if len(lines) >= MAX_FIELDS:  # counting the empty line, as http.client does: at most 99 fields
            raise http.client.HTTPException(f"got more than {MAX_FIELDS} headers")
        if line in _BLANK:
            break
        lines.append(line)
    block = b"".join(lines).decode("iso-8859-1")
    if not _BLOCK.fullmatch(block):  # every line checked in one C pass; the Python below only names the first bad one
        raise BadHeaders(_first_bad(block))
    return FieldBlock(_FIELD.findall(block))


def _first_bad(block: str) -> str:
    for number, line in enumerate(block.splitlines(keepends=True), 1):
        if not _BLOCK.fullmatch(line):
            text = line.rstrip("\r\n")
            name, colon, _value = text.partition(":")
            what = ("folded onto the one before (obs-fold)" if text[:1] in " \t" else
                    "not a header field" if not colon or not _TOKEN.fullmatch(name) else
                    f"{name[:40]!r}: a control character in its value, or no line end")
            return f"header line {number} {what}: {text[:40]!r}"
    return "header block not well formed"


def _framing(fields: FieldBlock) -> tuple[bool, int | None]:
    """(chunked, Content-Length) when they give the body exactly one reading (RFC 9112 §6.3); raises BadHeaders."""
    encodings = fields.get_all("transfer-encoding") or []
    lengths = fields.get_all("content-length") or []
    if encodings and lengths:
        raise BadHeaders("both Transfer-Encoding and Content-Length")
    if encodings:
        if len(encodings) != 1 or encodings[0].strip().lower() != "chunked":
            raise BadHeaders(f"Transfer-Encoding {', '.join(encodings)[:40]!r} is not one 'chunked'")
        return True, None
    if not lengths:
        return False, None
    if len(lengths) != 1 or not _DIGITS.fullmatch(digits := lengths[0].strip()):
        raise BadHeaders(f"Content-Length {', '.join(lengths)[:40]!r} is not one number")
    return False, int(digits)


class StrictResponse(http.client.HTTPResponse):
    """``http.client.HTTPResponse`` whose ``begin`` reads the header block with ``read_fields``."""

    def begin(self) -> None:
        if self.headers is not None:  # already begun
            return
        version, status, reason = self._read_status()  # http.client's own reader
        while status == http.client.CONTINUE:  # an interim 100 answer: its fields are dropped, as http.client does
            read_fields(self.fp)
            version, status, reason = self._read_status()
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        fields = read_fields(self.fp)
        self.headers = self.msg = fields
        self.chunked, self.length = _framing(fields)
        if self.chunked:
            self.chunk_left = None
        self.will_close = self._check_close()
        if status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED) or status < 200 or self._method == "HEAD":
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True  # no length and no chunks: the body ends when the server closes


class _OneWrite:
    """``http.client`` sends a request's header block and its body in two writes: over TLS two records, two
    ``SSL_write``s and two system calls (~50-100 µs of CPU each on the terminal). A body given as bytes now leaves
    with its header block in one write: the same bytes on the wire, one TLS record. ``send`` and ``endheaders``
    are ``http.client``'s public methods; anything else (no body, a file, chunked) is sent as before."""

    _hold = False
    _held: bytes | None = None

    def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
        self._hold = isinstance(message_body, bytes) and bool(message_body) and not encode_chunked
        try:
            super().endheaders(message_body, encode_chunked=encode_chunked)  # type: ignore[misc]
        except BaseException:
            self._held = None  # never sent half: the request did not leave
            raise
        finally:
            self._hold = False
        if self._held is not None:  # the body never came (cannot happen for non-empty bytes): the head alone
            held, self._held = self._held, None
            super().send(held)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        if self._hold and self._held is None and isinstance(data, bytes):
            self._held = data  # the header block: it waits for its body
            return
        if self._held is not None:
            data, self._held = self._held + bytes(data), None
        super().send(data)  # type: ignore[misc]


class Connection(_OneWrite, http.client.HTTPConnection):
    """Plain HTTP (tests): answers read by ``StrictResponse``, a request with a body in one write."""

    response_class = StrictResponse


class TlsConnection(_OneWrite, http.client.HTTPSConnection):
    """HTTPS: answers read by ``StrictResponse``, a request with a body in one write (one TLS record)."""

    response_class = StrictResponse
