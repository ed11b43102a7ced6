"""Failures in the cashier's words: an exception shown on a screen becomes a catalogue text chosen by its kind.

Technical detail (host:port, timeouts, exception names, the peer's garbage) belongs in the log and on the
diagnostics screen; a cashier reads what happened and what to do next. ``flows.messages`` renders any exception
passed as a message argument through ``explain`` (so ``Msg("sim.unreachable", {"error": exc})`` never shows
``carrier 127.0.0.1:39157: no answer within 3.0 s``), and ``pair`` turns a counterpart's bilingual
``"English / 中文"`` text into a text that follows the screen's language.

>>> from pos_errors import LinkTimeout
>>> explain(LinkTimeout("carrier 127.0.0.1:39157: no answer within 3.0 s")).key
'err.timeout'
>>> pair("top-up refused by carrier risk control / 运营商风控拒绝充值").render("zh")
'运营商风控拒绝充值'
"""

from __future__ import annotations

from flows.messages import Msg
from pos_errors import (
    Cancelled,
    CardRemoved,
    ConfigError,
    DeviceError,
    DeviceFault,
    LinkError,
    LinkTimeout,
    RemoteProtocolError,
)

__all__ = ["explain", "explain_key", "pair", "Pair"]

_DEVICE_FAULTS = {
    DeviceFault.PAPER_OUT: "printer.paper_out", DeviceFault.COVER_OPEN: "printer.cover_open",
    DeviceFault.CARD_REMOVED: "err.card_removed", DeviceFault.GARBLED: "err.device_garbled",
}


def explain_key(exc: BaseException) -> str:
    """The catalogue key that tells a person about ``exc`` (most specific kind first)."""
    if isinstance(exc, Cancelled):
        return "err.cancelled"
    if isinstance(exc, CardRemoved):
        return "err.card_removed"
    if isinstance(exc, DeviceError):
        return _DEVICE_FAULTS.get(exc.fault, "err.device") if getattr(exc, "fault", None) else "err.device"
    if isinstance(exc, LinkTimeout):
        return "err.timeout"
    if isinstance(exc, LinkError):
        return "err.unreachable"
    if isinstance(exc, RemoteProtocolError):
        return "err.garbled"
    if isinstance(exc, ConfigError):
        return "err.config"
    return "err.other"


def explain(exc: BaseException) -> Msg:
    return Msg(explain_key(exc))


class Pair(Msg):
    """A text that came in both languages (not from our catalogue): shown one language at a time."""

    def render(self, lang: str = "both") -> str:
        en, zh = self.args["en"], self.args["zh"]
        return en if lang == "en" else zh if lang == "zh" else f"{en} / {zh}"


def pair(text: str) -> Msg | str:
    """A counterpart's ``"English / 中文"`` text as a ``Msg`` that shows one language at a time; other text as it is."""
    english, sep, chinese = text.partition(" / ")
    if not sep or not english.strip() or not chinese.strip():
        return text
    return Pair("pair", {"en": english.strip(), "zh": chinese.strip()})

