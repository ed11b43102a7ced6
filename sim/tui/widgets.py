"""Widgets of the simulator's Textual UI: the terminal's screen, its keypad and the side panels.

No widget here holds the simulated world: the app (``sim.tui.app``) reads the world on the UI thread and hands
each panel plain data, so panels render and test on their own. Two pure helpers do the real work:
``render_screen`` turns a ``terminal.screens.Screen`` view model into rich ``Text``, and ``qr_lines`` draws a
QR payload with Unicode half blocks (two module rows per text row, so the code stays square in a terminal).

>>> qr_lines("IoT", border=0)[0][:7]
'█▀▀▀▀▀█'
"""

from __future__ import annotations

from collections.abc import Sequence

import segno
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Grid
from textual.message import Message
from textual.widgets import Static

from terminal.screens import Key, Screen

__all__ = [
    "SPINNER",
    "qr_lines",
    "render_screen",
    "ScreenView",
    "KeyCap",
    "Keypad",
    "PinPadPanel",
    "CardSlotPanel",
    "PrinterView",
    "StatusPanel",
]

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
QR_STYLE = "black on white"  # fixed colours: a QR drawn light-on-dark by a dark theme would not scan
_HALF_BLOCK = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}

# The on-screen keypad row by row (None = empty cell): a POS keypad with the function keys beside it.
KEYPAD_ROWS: tuple[tuple[Key | None, ...], ...] = (
    (Key.D1, Key.D2, Key.D3, Key.F1, Key.CANCEL),
    (Key.D4, Key.D5, Key.D6, Key.F2, Key.CLEAR),
    (Key.D7, Key.D8, Key.D9, Key.F3, Key.ENTER),
    (None, Key.D0, None, Key.F4, None),
)
KEYCAP_LABELS = {Key.CANCEL: "Esc CANCEL", Key.CLEAR: "⌫ CLEAR", Key.ENTER: "↵ ENTER"}


def qr_lines(payload: str, border: int = 4) -> list[str]:
    """Draw ``payload`` as a QR code, one string per text row, upper module = top half of the cell.

    Always a full QR code, never Micro QR (segno's pick for short payloads): phone wallets cannot scan it.
    ``█`` / ``▀`` / ``▄`` are dark modules; print the lines dark-on-light (``QR_STYLE``). The default
    ``border`` is the 4-module quiet zone ISO/IEC 18004 asks for.
    """
    rows = [[bool(module) for module in row] for row in segno.make_qr(payload).matrix_iter(border=border)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))  # an odd last row pairs with a light one
    return [
        "".join(_HALF_BLOCK[top, bottom] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(rows[0::2], rows[1::2], strict=True)
    ]


def render_screen(screen: Screen, frame: int = 0) -> Text:
    """The terminal's screen as styled text, in the order an LCD would show it.

    Unlike ``Screen.text()``, disabled menu items are shown (dimmed, struck through) so the cashier sees why a
    number does nothing. ``frame`` animates the busy spinner.
    """
    rows: list[Text] = [Text(screen.title, style="bold")]
    rows.extend(Text(line) for line in screen.lines)
    if screen.entry is not None:
        rows.append(Text.assemble(("> ", "bold"), (screen.entry, "bold cyan")))
    for item in screen.menu:
        rows.append(Text(f"[{item.key}] {item.label}", style="" if item.enabled else "dim strike"))
    if screen.qr:
        rows.append(Text(""))
        rows.extend(Text(line, style=QR_STYLE) for line in qr_lines(screen.qr))
    if screen.busy:
        rows.append(Text(f"{SPINNER[frame % len(SPINNER)]} Please wait / 请稍候", style="bold yellow"))
    if screen.error:
        rows.append(Text(f"! {screen.error}", style="bold red"))
    if screen.hint:
        rows.append(Text(screen.hint, style="dim"))
    return Text("\n").join(rows)


class ScreenView(Static):
    """The terminal's display; animates its spinner while the screen is busy."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("…"), id=id)
        self.screen_model: Screen | None = None
        self._frame = 0

    def on_mount(self) -> None:
        self.set_interval(0.1, self._tick)

    def show(self, screen: Screen) -> None:
        self.screen_model = screen
        self.update(render_screen(screen, self._frame))

    def _tick(self) -> None:
        if self.screen_model is not None and self.screen_model.busy:
            self._frame += 1
            self.update(render_screen(self.screen_model, self._frame), layout=False)


class KeyCap(Static):
    """One key of the on-screen terminal keypad; a click presses it (the keyboard does the same)."""

    class Pressed(Message):
        def __init__(self, key: Key) -> None:
            super().__init__()
            self.key = key

    def __init__(self, key: Key) -> None:
        super().__init__(KEYCAP_LABELS.get(key, key.value), id=f"key-{key.value}", classes="keycap")
        self.key = key

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Pressed(self.key))


class Keypad(Grid):
    """The terminal keypad legend, as a grid of clickable keycaps."""

    def compose(self) -> ComposeResult:
        for row in KEYPAD_ROWS:
            for key in row:
                yield KeyCap(key) if key is not None else Static(classes="keycap -blank")


class PinPadPanel(Static):
    """The customer's PIN pad: its two-line display and whether it is taking the PIN (and the keyboard)."""

    def show(self, display: tuple[str, str], awaiting_pin: bool) -> None:
        width = max(16, *(len(line) for line in display))
        rows = [Text(f" {line:<{width}} ", style="bold black on green") for line in display]
        if awaiting_pin:
            rows.append(Text("● Customer enters PIN / 顾客输入密码", style="bold yellow"))
            rows.append(Text("keys → PIN pad: 0-9 ↵ ⌫ Esc", style="bold yellow"))
        else:
            rows.append(Text("idle / 空闲 — keys → terminal", style="dim"))
        self.update(Text("\n").join(rows))
        self.set_class(awaiting_pin, "-active")


CARD_ROWS = 7  # cards shown at once: with the slot line and two "more" lines it fits the panel (max-height 12)


def card_window(count: int, selected: int, size: int = CARD_ROWS) -> tuple[int, int]:
    """The slice of a ``count``-card list to show so that ``selected`` is always on screen (kept in the middle
    when it can be).

    >>> card_window(30, 0), card_window(30, 15), card_window(30, 29), card_window(3, 2)
    ((0, 7), (12, 19), (23, 30), (0, 3))
    """
    if count <= size:
        return 0, count
    start = min(max(0, selected - size // 2), count - size)
    return start, start + size


class CardSlotPanel(Static):
    """The card reader's slot and the test-card catalogue, with the chosen card highlighted."""

    def show(
        self, cards: Sequence[tuple[str, str]], selected: int, present: bool, inserted: str | None
    ) -> None:
        rows: list[Text] = []
        if present:
            label = dict(cards).get(inserted or "", "")
            rows.append(Text(f"▣ Card in slot / 已插卡 {label}".rstrip(), style="bold green"))
        else:
            rows.append(Text("□ Slot empty / 无卡", style="dim"))
        start, end = card_window(len(cards), selected, CARD_ROWS)
        if start:
            rows.append(Text(f"  ↑ {start} more / 更多", style="dim"))
        for index, (key, label) in enumerate(cards[start:end], start):
            mark = "▶" if index == selected else " "
            in_slot = " ⏏" if present and key == inserted else ""
            rows.append(Text(f"{mark} {label}{in_slot}", style="reverse" if index == selected else ""))
        if end < len(cards):
            rows.append(Text(f"  ↓ {len(cards) - end} more / 更多", style="dim"))
        if not cards:
            rows.append(Text("(no test cards / 无测试卡)", style="dim"))
        self.update(Text("\n").join(rows))


class PrinterView(Static):
    """The last printed receipt, line by line (the app wraps it in a scroll container)."""

    def show(self, receipts: Sequence[Sequence[str]]) -> None:
        if not receipts:
            self.update(Text("No receipt yet / 尚无小票", style="dim"))
            return
        heading = Text(f"— receipt {len(receipts)} of {len(receipts)} / 小票 —", style="dim")
        self.update(Text("\n").join([heading, *(Text(line) for line in receipts[-1])]))


class StatusPanel(Static):
    """The back ends' status lines (host ledger, carrier top-ups)."""

    def show(self, lines: Sequence[str]) -> None:
        self.update(Text("\n").join(Text(line) for line in lines) if lines else Text("—", style="dim"))
