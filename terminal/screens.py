"""Screens as view models: what the terminal shows, free of any UI library.

The state machine produces one ``Screen`` per state change; a display port renders it (the simulator's Textual
app, a real LCD driver, or a test that reads it). Every cashier-facing text is bilingual: ``t("SIM number",
"SIM 卡号")`` yields ``"SIM number / SIM 卡号"``.

>>> Screen(state="home", title=t("Home", "主页"), menu=(MenuItem("1", t("Top up", "充值")),)).menu[0].label
'Top up / 充值'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Key", "MenuItem", "Screen", "t", "DIGIT_KEYS"]


class Key(StrEnum):
    """Keys of the terminal's own keypad (the PIN pad has its own)."""

    D0 = "0"
    D1 = "1"
    D2 = "2"
    D3 = "3"
    D4 = "4"
    D5 = "5"
    D6 = "6"
    D7 = "7"
    D8 = "8"
    D9 = "9"
    ENTER = "ENTER"
    CANCEL = "CANCEL"
    CLEAR = "CLEAR"
    F1 = "F1"
    F2 = "F2"
    F3 = "F3"
    F4 = "F4"

    @property
    def digit(self) -> str | None:
        value: str = self._value_  # not ``.value``: enum's property costs a Python call on every key
        return value if value.isdigit() else None


DIGIT_KEYS = frozenset(k for k in Key if k.digit is not None)


def t(english: str, chinese: str) -> str:
    """One bilingual label (English first). Legacy, kept for screens not converted yet: new texts go into the
    catalogue (``flows.messages.t(key, lang)``), which can show one language at a time."""
    return f"{english} / {chinese}"


@dataclass(frozen=True)
class MenuItem:
    key: str
    label: str
    enabled: bool = True


@dataclass(frozen=True)
class Screen:
    """One screen of the terminal.

    Attributes:
        state: the state machine's state name (stable, used by scenarios).
        title: the heading line.
        lines: body text, one entry per line.
        entry: what the cashier is typing (already masked for secrets), or None when nothing is typed here.
        menu: numbered choices; the key selects.
        error: a message shown in red; the screen stays until the cashier acts.
        hint: key help, e.g. "ENTER confirm · CANCEL back".
        busy: a wait is in progress (spinner), keys other than CANCEL are ignored.
        qr: a payload to draw as a QR code, if any.
    """

    state: str
    title: str
    lines: tuple[str, ...] = ()
    entry: str | None = None
    menu: tuple[MenuItem, ...] = ()
    error: str | None = None
    hint: str = ""
    busy: bool = False
    qr: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def text(self) -> str:
        """The whole screen as plain text (scenarios match expected text against this)."""
        parts = [self.title, *self.lines]
        if self.entry is not None:
            parts.append(f"> {self.entry}")
        parts.extend(f"[{m.key}] {m.label}" for m in self.menu if m.enabled)
        if self.error:
            parts.append(f"! {self.error}")
        if self.hint:
            parts.append(self.hint)
        return "\n".join(parts)
