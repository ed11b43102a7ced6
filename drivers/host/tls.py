"""Mutual TLS for the acquirer link: the client context from configuration, and handshake failures as codes.

The terminal verifies the host's chain against ``ca_file`` only (never the system store: an acquirer link
trusts the acquirer's CA, nothing else) and the configured host name, offers TLS 1.2 at least (1.3 preferred,
as OpenSSL negotiates it first), and presents ``cert_file``/``key_file`` as its client identity (the key file
must be private: mode 0600 or 0400, owned by the terminal's user, not a symlink, unencrypted PEM). Failures are
turned into ``LinkSecurityError`` with a ``LinkFault`` so the cashier sees *why* in their language:

==========================================  =======================
OpenSSL says                                ``LinkFault``
==========================================  =======================
verify code 10 (certificate has expired)    ``CERT_EXPIRED``
verify code 62 (hostname mismatch)          ``WRONG_HOST``
verify codes 2, 18, 19, 20, 21 (issuer)     ``UNKNOWN_CA``
peer's alert during/after our handshake     ``CLIENT_REFUSED``
anything else in the handshake              ``TLS_OTHER``
==========================================  =======================

Under TLS 1.3 the server checks the client certificate after the client considers the handshake done, so
its refusal arrives as an alert on the first read, or — when the server has already closed — as an EOF or reset
on the first write; ``refused_after_send`` / ``refused_before_send`` recognise both. Either way the server
aborted before reading application data: the request was never processed.

>>> refusal_of(ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required"))
<LinkFault.CLIENT_REFUSED: 'client_refused'>
"""

from __future__ import annotations

import os
import socket
import ssl

from drivers.secret_file import load_identity, read_private
from pos_errors import ConfigError, LinkError, LinkFault, LinkSecurityError

__all__ = ["client_context", "fault_of", "refusal_of", "handshake", "refused_after_send", "refused_before_send"]

_EXPIRED = {10}
_WRONG_HOST = {62}
_UNKNOWN_CA = {2, 18, 19, 20, 21}
MAX_KEY_FILE = 16 * 1024  # an RSA 4096 PEM key is about 3.3 kB


def client_context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    """The terminal's TLS context for the acquirer. Raises ConfigError naming the ``[host]`` key that is wrong."""
    for key, path in (("ca_file", ca_file), ("client_cert", cert_file), ("client_key", key_file)):
        if not path:
            raise ConfigError(f"host.{key} is required for TLS (or set host.insecure_plaintext = true on a "
                              "test bench)")
        if not os.path.isfile(path):
            raise ConfigError(f"host.{key}: file {path} not found")
    pem = _checked_private_key(key_file)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"host.ca_file {ca_file}: not a PEM CA certificate ({type(exc).__name__})") from exc
    try:
        load_identity(context, cert_file, key_file, pem)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"host.client_cert/client_key: unusable pair ({type(exc).__name__})") from exc
    return context


def _checked_private_key(key_file: str) -> bytes:
    """The terminal's TLS private key is a secret at rest: a regular file (no symlink followed), mode 0600 or
    0400, owned by the terminal's user (``drivers.secret_file``), holding an unencrypted PEM key — the terminal
    starts unattended, nobody types a passphrase. Returns the PEM; ConfigError names ``host.client_key``."""
    pem = read_private(key_file, "host.client_key", MAX_KEY_FILE)
    if len(pem) > MAX_KEY_FILE or b"PRIVATE KEY-----" not in pem:
        raise ConfigError(f"host.client_key {key_file} is not a PEM private key")
    if b"ENCRYPTED" in pem:
        raise ConfigError(f"host.client_key {key_file} is encrypted: the terminal starts unattended and cannot "
                          "ask for a passphrase; install the key unencrypted, mode 0600, owned by the terminal's user")
    return pem


def fault_of(exc: ssl.SSLError) -> LinkFault:
    """What a handshake failure means for the cashier."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in _EXPIRED:
            return LinkFault.CERT_EXPIRED
        if code in _WRONG_HOST:
            return LinkFault.WRONG_HOST
        if code in _UNKNOWN_CA:
            return LinkFault.UNKNOWN_CA
        return LinkFault.TLS_OTHER
    return refusal_of(exc) or LinkFault.TLS_OTHER


def refusal_of(exc: ssl.SSLError) -> LinkFault | None:
    """``CLIENT_REFUSED`` when ``exc`` is the peer's alert about our certificate, else None."""
    text = str(exc).upper()
    if "ALERT" in text and any(word in text for word in ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED")):
        return LinkFault.CLIENT_REFUSED
    return None


def handshake(context: ssl.SSLContext, sock: socket.socket, server_name: str, peer: str,
              session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
    """TLS over a connected socket (bounded by its timeout), offering to resume ``session`` (a session of this
    context with the same host; the host may refuse and do a full handshake). Raises LinkSecurityError (a
    refused handshake, with its fault) or LinkError; either way ``sock`` is closed and nothing was sent."""
    try:
        return context.wrap_socket(sock, server_hostname=server_name, session=session)
    except ssl.SSLError as exc:
        sock.close()
        raise LinkSecurityError(f"TLS handshake with acquirer {peer} failed: {exc.reason or type(exc).__name__}",
                                fault_of(exc)) from exc
    except OSError as exc:
        sock.close()
        raise LinkError(f"TLS handshake with acquirer {peer} failed: {exc.strerror or type(exc).__name__}") from exc


def refused_after_send(exc: ssl.SSLError, peer: str) -> LinkSecurityError | None:
    """The error to raise when a read fails because the host refused our certificate (TLS 1.3), else None."""
    fault = refusal_of(exc)
    if fault is None:
        return None
    return LinkSecurityError(f"acquirer {peer} refused our client certificate: {exc.reason or type(exc).__name__}",
                             fault)


def refused_before_send(sock: object, exc: OSError, peer: str) -> LinkSecurityError | None:
    """The error to raise when the first write on a fresh TLS 1.3 connection fails because the host already
    refused our certificate and closed: its alert is read if it is still there; an EOF or reset on the first
    write after a TLS 1.3 handshake has no other cause a host gives, so it counts as the refusal too."""
    if not isinstance(sock, ssl.SSLSocket):
        return None
    try:
        sock.settimeout(0.2)
        sock.recv(1)
    except ssl.SSLError as pending:
        refused = refused_after_send(pending, peer)
        if refused is not None:
            return refused
    except OSError:
        pass
    if sock.version() == "TLSv1.3" and isinstance(exc, (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError)):
        return LinkSecurityError(f"acquirer {peer} closed the connection right after the TLS handshake: it "
                                 "refused our client certificate", LinkFault.CLIENT_REFUSED)
    return None
