"""The product's exception tree, in one neutral package below every layer so each can catch without importing up.

Business outcomes (a decline, a TVR bit, a failed signature check) are values, never exceptions. Exceptions mean
that something could not be done at all::

    PosError
    ├── ProtocolError                 bytes that do not follow a protocol (.offset, .tag, .raw); a ValueError
    │   ├── LocalProtocolError        we were asked to build something invalid
    │   └── RemoteProtocolError       the peer (card, device, host) sent garbage
    │       ├── OdaError              a certificate or signature of the card does not verify (emv.oda)
    │       └── AnswerMismatch        the host's answer is not an answer to what was asked (amount, currency,
    │                                 ids, a partial approval): outcome unknown, reverse
    ├── CryptoError                   a key or cryptogram operation could not be done (bad key length, exhausted KSN)
    ├── DeviceError                   a peripheral failed (serial shells)
    │   ├── DeviceTimeout             no answer within the deadline, retransmissions exhausted
    │   ├── DeviceGone                port vanished (unplugged) or could not be opened
    │   └── CardRemoved               the card left the reader during a transaction
    ├── LinkError                     a network peer failed (acquirer host, carrier, wallet)
    │   ├── LinkTimeout               no answer within the deadline: outcome UNKNOWN
    │   ├── LinkSecurityError         TLS handshake or sign-on refused (``fault``: a LinkFault): nothing was sent
    │   └── StanInUse                 the host refused a purchase whose STAN it already has (94): not processed
    ├── Cancelled                     the cashier or customer cancelled a wait
    └── ConfigError                   the configuration file is wrong (says which key)

>>> issubclass(DeviceTimeout, PosError)
True
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "PosError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "OdaError",
    "AnswerMismatch",
    "UnmacedKeyError",
    "CryptoError",
    "DeviceFault",
    "DeviceError",
    "DeviceTimeout",
    "DeviceGone",
    "CardRemoved",
    "LinkError",
    "LinkTimeout",
    "LinkFault",
    "LinkSecurityError",
    "StanInUse",
    "Cancelled",
    "ConfigError",
]


class PosError(Exception):
    """Root of every error raised by product code."""


class ProtocolError(PosError, ValueError):
    """Bytes that do not follow the protocol (also a ``ValueError``: it is always about malformed input).

    Args:
        message: what is wrong, for a person.
        offset: byte offset in ``raw`` where decoding failed, if known.
        tag: the TLV tag or field being decoded, if any.
        raw: the offending bytes. Callers must not put PAN or PIN data here unmasked.
    """

    def __init__(self, message: str, *, offset: int | None = None, tag: str | None = None,
                 raw: bytes | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.tag = tag
        self.raw = raw


class LocalProtocolError(ProtocolError):
    """We were asked to produce something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class OdaError(RemoteProtocolError):
    """A certificate or signed data object of the card cannot be recovered or does not verify (Book 2)."""


class AnswerMismatch(RemoteProtocolError):
    """An authenticated answer that does not answer the request (``drivers.host.answer_check``): another amount,
    processing code, currency, terminal or merchant (``tag`` = that field), or a partial approval (``tag`` =
    ``"39"``) the terminal never offers. The host may have taken money: the outcome is unknown, as after a
    time-out (a purchase is reversed, a reversal or refund repeated)."""


class UnmacedKeyError(RemoteProtocolError):
    """The host answered ``A0`` (key error) without a MAC that verifies: nothing was authenticated, nothing is
    read from it (``drivers.host.session_link``, ``drivers.host.dukpt_link``). Anyone on the path could have put it
    over an approval, so the outcome is unknown: a purchase is reversed, a reversal or refund repeated. Here, not in
    ``drivers``, so the flows can tell the cashier what happened (``pay.key_error_unverified``)."""


class CryptoError(PosError):
    """A cryptographic operation could not be performed."""


class DeviceFault(StrEnum):
    """What went wrong with a peripheral, as a code: callers choose the cashier's message by it, never by text."""

    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    PRINTER_ERROR = "error"
    OFFLINE = "offline"
    NO_ANSWER = "no_answer"
    GARBLED = "garbled"
    PORT = "port"
    CARD_REMOVED = "card_removed"
    OTHER = "other"


class DeviceError(PosError):
    """A serial peripheral failed; ``fault`` says how (the message is for logs and engineers)."""

    default_fault = DeviceFault.OTHER

    def __init__(self, message: str = "", fault: DeviceFault | None = None) -> None:
        super().__init__(message)
        self.fault = fault or self.default_fault


class DeviceTimeout(DeviceError):
    """The device did not answer in time, after all retransmissions."""

    default_fault = DeviceFault.NO_ANSWER


class DeviceGone(DeviceError):
    """The device's port vanished or could not be opened."""

    default_fault = DeviceFault.PORT


class CardRemoved(DeviceError):
    """The card was removed (or lost power) while the transaction still needed it."""

    default_fault = DeviceFault.CARD_REMOVED


class LinkError(PosError):
    """A network peer could not be reached or answered garbage."""


class LinkTimeout(LinkError):
    """No answer in time: whether the request took effect is unknown."""


class LinkFault(StrEnum):
    """Why a secured link was refused, as a code: the cashier's message is chosen by it, never by text."""

    CERT_EXPIRED = "cert_expired"  # the host's certificate is outside its validity period
    WRONG_HOST = "wrong_host"  # the host's certificate does not name the configured host
    UNKNOWN_CA = "unknown_ca"  # the host's certificate does not chain to the configured CA
    CLIENT_REFUSED = "client_refused"  # the host refused our client certificate
    TLS_OTHER = "tls_other"  # any other handshake failure (protocol version, cipher, reset mid-handshake)
    KEY_CHECK = "key_check"  # sign-on: a working key's check value does not match (keys refused)
    KEY_SEPARATION = "key_separation"  # sign-on: the PIN key and the MAC key are one key (keys refused)
    SIGN_ON = "sign_on"  # sign-on refused or unusable (no keys, bad answer)
    STAN_IN_USE = "stan_in_use"  # the host already has the STAN of a purchase (94): counters were behind


class LinkSecurityError(LinkError):
    """A secured link could not be set up (TLS handshake, sign-on); no request was sent. ``fault`` says why."""

    def __init__(self, message: str, fault: LinkFault) -> None:
        super().__init__(message)
        self.fault = fault


class StanInUse(LinkError):
    """The host answered a purchase with 94 (duplicate transmission): it already has a message with this STAN
    from this terminal and did not process this one. The terminal never sends one purchase twice under one STAN,
    so the other message was an earlier transaction (counters gone back): nothing to reverse — a reversal quoting
    this STAN could only name that older one. ``fault`` is ``LinkFault.STAN_IN_USE``."""

    fault = LinkFault.STAN_IN_USE


class Cancelled(PosError):
    """A wait was cancelled by the cashier or the customer."""


class ConfigError(PosError):
    """The configuration is invalid; the message names the key."""

