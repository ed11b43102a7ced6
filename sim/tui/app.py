"""The simulator's Textual UI: one keyboard drives the whole simulated POS terminal, PIN pad and card slot.

Left, the terminal's screen (rendered from its ``Screen`` view model) above a clickable keypad legend;
right, the PIN pad, the card slot with the test-card catalogue, the printer's last receipt and the back ends'
status. The world's devices report changes from their own threads; their listeners only post a message
(thread-safe and non-blocking, so a device thread can never deadlock against the UI), and the UI thread then
reads the device's state.

Keys: digits, Enter, Backspace and Escape go to the terminal keypad, except while the PIN pad is waiting for
a PIN: then they go to the PIN pad (the customer is typing), as the mode line and the PIN pad panel show.
The customer's phone: ``w`` / ``o`` pick a wallet and an outcome, ``s`` shows that payment code to the scanner;
``p`` / ``x`` scan the QR on the terminal's screen and pay / refuse. Contactless: ``y`` picks a tap card or phone
(``sim.devices.contactless_cards.TAP_KEYS``), ``t`` holds it over the reader, ``Y`` takes it away.

>>> [b.key for b in PosSimApp.BINDINGS if b.action == "insert_card"]
['i']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static

from sim.devices.contactless_cards import TAP_KEYS
from sim.tui.widgets import (
    CardSlotPanel,
    KeyCap,
    Keypad,
    PinPadPanel,
    PrinterView,
    ScreenView,
    StatusPanel,
)
from terminal.screens import Key, Screen

__all__ = ["PosSimApp", "run_tui", "WorldView", "TerminalScreenChanged", "DeviceChanged"]

WALLETS = ("wechat", "alipay", "emvqr")
WALLET_OUTCOMES = ("paid", "user_paying_then_paid", "user_paying_then_cancelled", "insufficient_balance",
                   "expired_code", "platform_error", "no_answer", "user_paying_forever")
STATUS_POLL_S = 1.0  # the back ends have no listener; their counters are cheap to read

# What the UI needs of ``sim.runner.world.World`` (duck-typed; tests pass a fake).


class _Terminal(Protocol):
    @property
    def screen(self) -> Screen: ...
    def press(self, key: Key) -> None: ...
    def add_listener(self, cb: Callable[[Screen], None]) -> None: ...


class _PinPad(Protocol):
    @property
    def display(self) -> tuple[str, str]: ...
    @property
    def awaiting_pin(self) -> bool: ...
    def press(self, key: str) -> None: ...
    def add_listener(self, cb: Callable[..., None]) -> None: ...


class _Reader(Protocol):
    @property
    def card_present(self) -> bool: ...
    def add_listener(self, cb: Callable[..., None]) -> None: ...
    def take_away(self) -> None: ...


class _Printer(Protocol):
    @property
    def receipts(self) -> list[list[str]]: ...
    def add_listener(self, cb: Callable[..., None]) -> None: ...  # sim.devices.printer passes the new receipt


class WorldView(Protocol):
    """The running simulator as the UI sees it."""

    @property
    def terminal(self) -> _Terminal: ...
    @property
    def pinpad(self) -> _PinPad: ...
    @property
    def reader(self) -> _Reader: ...
    @property
    def printer(self) -> _Printer: ...
    @property
    def cards(self) -> Mapping[str, Any]: ...
    def insert_card(self, key: str) -> None: ...
    def remove_card(self) -> None: ...
    def swipe_card(self, key: str) -> None: ...
    def tap_card(self, key: str) -> None: ...
    def save_receipt_png(self) -> str: ...
    def toggle_cable(self, device: str) -> bool: ...
    def status_lines(self) -> list[str]: ...
    def show_code(self, wallet: str, outcome: str = "paid") -> str: ...
    def phone_scan(self, pay: bool = True) -> str: ...
    def toggle_fault(self, name: str) -> bool: ...


class TerminalScreenChanged(Message):
    """The terminal showed a new screen (posted from the terminal's thread)."""

    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.screen = screen


class DeviceChanged(Message):
    """A simulated device changed: ``device`` is "pinpad", "reader" or "printer"."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.device = device


_DIGITS = "0123456789"
_FKEYS = ("F1", "F2", "F3", "F4")

_APP_CSS = """
#main { height: 1fr; }
#left { width: 3fr; }
#right { width: 2fr; }
#screen-box { height: 1fr; border: round $primary; padding: 0 1; }
#mode { height: 1; padding: 0 1; background: $panel; }
#mode.-pin { background: $warning; color: $text; text-style: bold; }
#keypad { grid-size: 5 4; grid-gutter: 0 1; height: 4; padding: 0 1; margin-bottom: 1; }
#keypad.-pin .keycap { color: $text-disabled; }  /* the keyboard is the PIN pad's now */
.keycap { content-align: center middle; background: $boost; }
.keycap.-blank { background: transparent; }
#pinpad { height: auto; border: round $secondary; padding: 0 1; }
#pinpad.-active { border: heavy $warning; }
#cards { height: auto; max-height: 12; border: round $secondary; padding: 0 1; }
#printer-box { height: 1fr; border: round $secondary; padding: 0 1; }
#status { height: auto; border: round $secondary; padding: 0 1; }
"""


class PosSimApp(App[None]):
    """The simulated POS terminal, driven from the keyboard alone. Construct as ``PosSimApp(world)``."""

    TITLE = "IoT-SIM POS simulator / 物联网卡充值终端模拟器"
    CSS = _APP_CSS
    ENABLE_COMMAND_PALETTE = False  # ctrl+p and the palette would only confuse a keypad-style UI
    # Priority bindings: no widget may swallow a keypad key (scroll containers would take up/down/Enter).
    BINDINGS = [
        *(
            Binding(d, f"digit('{d}')", "Keys", key_display="0-9", show=d == "0", priority=True)
            for d in _DIGITS
        ),
        Binding("enter", "special('ENTER')", "ENTER", key_display="↵", priority=True),
        Binding("backspace", "special('CLEAR')", "CLEAR", key_display="⌫", priority=True),
        Binding("escape", "special('CANCEL')", "CANCEL", key_display="Esc", priority=True),
        *(
            Binding(f.lower(), f"fkey('{f}')", "Fn", key_display="F1-F4", show=f == "F1", priority=True)
            for f in _FKEYS
        ),
        Binding("left_square_bracket,up", "select_card(-1)", "Card", key_display="[/]", priority=True),
        Binding("right_square_bracket,down", "select_card(1)", "Card", show=False, priority=True),
        Binding("i", "insert_card", "Insert", priority=True),
        Binding("r", "remove_card", "Remove", priority=True),
        Binding("m", "swipe_card", "Swipe", priority=True),
        Binding("y", "pick_tap_card(1)", "Tap card", key_display="y/t/Y", priority=True),
        Binding("t", "tap_card", "Tap", show=False, priority=True),
        Binding("Y", "take_away", "Take away", show=False, priority=True),
        Binding("g", "save_receipt", "Receipt PNG", show=False, priority=True),
        Binding("u", "toggle_cable('reader')", "Reader cable", key_display="u/U", priority=True),
        Binding("U", "toggle_cable('pinpad')", "PIN pad cable", show=False, priority=True),
        Binding("P", "toggle_fault('printer_paper_out')", "Paper out", key_display="P", priority=True),
        Binding("T", "toggle_fault('acquirer_tls_expired')", "Bank cert expired", show=False, priority=True),
        Binding("M", "toggle_fault('acquirer_bad_mac')", "Bank bad MAC", show=False, priority=True),
        Binding("H", "toggle_fault('acquirer_idle_race')", "Bank idle close race", show=False, priority=True),
        Binding("A", "toggle_fault('acquirer_partial')", "Bank partial approval", show=False, priority=True),
        Binding("K", "toggle_fault('acquirer_forged_a0')", "Bank A0 forged", show=False, priority=True),
        Binding("pageup", "scroll_receipt(-1)", "Receipt", key_display="PgUp/Dn", priority=True),
        Binding("pagedown", "scroll_receipt(1)", "Receipt", show=False, priority=True),
        Binding("home", "scroll_screen(-1)", "Screen ↑", show=False, priority=True),
        Binding("end", "scroll_screen(1)", "Screen ↓", show=False, priority=True),
        Binding("w", "pick_wallet(1)", "Wallet", key_display="w/o", priority=True),
        Binding("o", "pick_outcome(1)", "Outcome", show=False, priority=True),
        Binding("s", "show_code", "Show code", priority=True),
        Binding("p", "phone(True)", "Phone pays", key_display="p/x", priority=True),
        Binding("x", "phone(False)", "Phone refuses", show=False, priority=True),
        Binding("q", "quit", "Quit", priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, world: WorldView) -> None:
        super().__init__()
        self.world = world
        self.selected_card = 0
        self._inserted: str | None = None  # which card *we* inserted; a scenario may insert one we don't know
        self._was_present = False
        self.wallet_idx = 0
        self.outcome_idx = 0
        self.tap_idx = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="left"):
                with VerticalScroll(id="screen-box"):
                    yield ScreenView(id="screen")
                yield Static(id="mode")
                yield Keypad(id="keypad")
            with Vertical(id="right"):
                yield PinPadPanel(id="pinpad")
                yield CardSlotPanel(id="cards")
                with VerticalScroll(id="printer-box"):
                    yield PrinterView(id="printer")
                yield StatusPanel(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        titles = {
            "#screen-box": "Terminal / 终端",
            "#pinpad": "PIN pad / 密码键盘",
            "#cards": "Card slot / 读卡器",
            "#printer-box": "Printer / 打印机",
            "#status": "Back ends / 后台",
        }
        for selector, title in titles.items():
            self.query_one(selector).border_title = title
        for widget in self.query("#screen-box, #printer-box"):
            widget.can_focus = False  # keys belong to the keypad, not to a focused scroll view
        world = self.world
        # Register first, then paint: a change in between is then repainted, never lost. Device listeners
        # ignore their arguments (the printer passes the new receipt): the UI re-reads the device instead.
        world.terminal.add_listener(self._post_screen)
        world.pinpad.add_listener(self._poster("pinpad"))
        world.reader.add_listener(self._poster("reader"))
        world.printer.add_listener(self._poster("printer"))
        self._show_screen(world.terminal.screen)
        self._refresh_pinpad()
        self._refresh_cards()
        self._refresh_printer()
        self._refresh_status()
        self.set_interval(STATUS_POLL_S, self._refresh_status)

    # --- world → UI (listeners run on device threads, so they only post a message) ----------------------

    def _post_screen(self, screen: Screen) -> None:
        self.post_message(TerminalScreenChanged(screen))

    def _poster(self, device: str) -> Callable[..., None]:
        def post(*_: object) -> None:
            self.post_message(DeviceChanged(device))

        return post

    @on(TerminalScreenChanged)
    def _on_screen(self, message: TerminalScreenChanged) -> None:
        self._show_screen(message.screen)
        self._refresh_status()

    @on(DeviceChanged)
    def _on_device(self, message: DeviceChanged) -> None:
        refresh = {
            "pinpad": self._refresh_pinpad,
            "reader": self._refresh_cards,
            "printer": self._refresh_printer,
        }
        refresh[message.device]()
        self._refresh_status()

    def _show_screen(self, screen: Screen) -> None:
        self.query_one(ScreenView).show(screen)
        self.query_one("#screen-box").border_subtitle = screen.state

    def _refresh_pinpad(self) -> bool:
        awaiting = bool(self.world.pinpad.awaiting_pin)
        self.query_one(PinPadPanel).show(self.world.pinpad.display, awaiting)
        mode = self.query_one("#mode", Static)
        if awaiting:
            mode.update(Text("⌨ keys → PIN pad (customer types the PIN) / 按键→密码键盘"))
        else:
            wallet, outcome = self._wallet_choice()
            mode.update(Text(f"⌨ keys → terminal keypad / 按键→终端键盘 · phone / 手机: {wallet}, {outcome} "
                             "(w o s · p x)"))
        mode.set_class(awaiting, "-pin")
        self.query_one(Keypad).set_class(awaiting, "-pin")
        return awaiting

    def _card_list(self) -> list[tuple[str, str]]:
        return [(key, str(card.label)) for key, card in self.world.cards.items()]

    def _refresh_cards(self) -> None:
        present = bool(self.world.reader.card_present)
        # Forget the name only when the card goes out (by us or a scenario): an insert in flight keeps it.
        if self._was_present and not present:
            self._inserted = None
        self._was_present = present
        self.query_one(CardSlotPanel).show(self._card_list(), self.selected_card, present, self._inserted)

    def _refresh_printer(self) -> None:
        self.query_one(PrinterView).show(self.world.printer.receipts)
        # A new receipt is read from its top.
        self.query_one("#printer-box", VerticalScroll).scroll_home(animate=False)

    def _refresh_status(self) -> None:
        self._guard(lambda: self.query_one(StatusPanel).show(self.world.status_lines()))

    # --- keyboard → world -----------------------------------------------------------------------------------

    def _guard(self, call: Callable[[], object]) -> bool:
        """Run one call into the world; a refused action becomes a message, never a dead UI."""
        try:
            call()
        except Exception as exc:  # the simulator UI must outlive any device error
            self.notify(str(exc) or type(exc).__name__, title="Refused / 拒绝", severity="error")
            return False
        return True

    def _press(self, terminal_key: Key, pinpad_key: str) -> None:
        # Ask the PIN pad itself at key time: the panel may be a message behind.
        if self.world.pinpad.awaiting_pin:
            self._guard(lambda: self.world.pinpad.press(pinpad_key))
        else:
            self._guard(lambda: self.world.terminal.press(terminal_key))
        self._refresh_pinpad()

    def action_digit(self, digit: str) -> None:
        self._press(Key(digit), digit)

    def action_special(self, name: str) -> None:
        self._press(Key[name], name)

    def action_fkey(self, name: str) -> None:
        self._guard(lambda: self.world.terminal.press(Key[name]))  # the PIN pad has no function keys

    @on(KeyCap.Pressed)
    def _on_keycap(self, message: KeyCap.Pressed) -> None:
        self._guard(lambda: self.world.terminal.press(message.key))  # the on-screen keypad is the terminal's

    def action_select_card(self, step: int) -> None:
        count = len(self.world.cards)
        if count:
            self.selected_card = (self.selected_card + step) % count
        self._refresh_cards()

    def action_insert_card(self) -> None:
        cards = self._card_list()
        if not cards:
            self.notify("No test cards / 无测试卡", severity="warning")
            return
        key = cards[self.selected_card % len(cards)][0]
        if self._guard(lambda: self.world.insert_card(key)):
            self._inserted = key
        self._refresh_cards()

    def action_swipe_card(self) -> None:
        """Swipe the chosen card's magnetic stripe (chip cards have one too: the terminal asks for the chip)."""
        cards = self._card_list()
        if cards:
            key = cards[self.selected_card % len(cards)][0]
            if self._guard(lambda: self.world.swipe_card(key)):
                self.notify(f"Swiped / 已刷卡: {cards[self.selected_card % len(cards)][1]}")

    def action_pick_tap_card(self, step: int) -> None:
        self.tap_idx = (self.tap_idx + step) % len(TAP_KEYS)
        self.notify(f"Tap card / 闪付卡: {TAP_KEYS[self.tap_idx]} (t = tap / 挥卡)")

    def action_tap_card(self) -> None:
        """Hold the picked contactless card or phone over the reader until ``Y`` takes it away."""
        key = TAP_KEYS[self.tap_idx % len(TAP_KEYS)]
        if self._guard(lambda: self.world.tap_card(key)):
            self.notify(f"Tapped / 已挥卡: {key}")

    def action_take_away(self) -> None:
        if self._guard(self.world.reader.take_away):
            self.notify("Card taken away / 已移开")

    def action_save_receipt(self) -> None:
        saved: list[str] = []
        if self._guard(lambda: saved.append(self.world.save_receipt_png())):
            self.notify(f"Receipt saved / 小票已保存: {saved[0]}")

    def action_remove_card(self) -> None:
        if self._guard(self.world.remove_card):
            self._inserted = None
        self._refresh_cards()

    def action_toggle_fault(self, name: str) -> None:
        """``P`` empties/refills the printer's paper (to see diagnostics and the home screen react); ``T`` makes the
        acquirer present an expired certificate, ``M`` sends its approvals with a wrong MAC (and back), ``H`` makes
        the acquirer close the kept connection just as the next message arrives (once), ``A`` makes it approve only
        half of every purchase (10: the terminal reverses it)."""
        state: list[bool] = []
        if self._guard(lambda: state.append(self.world.toggle_fault(name))):
            self.notify(f"{name}: {'ON' if state[0] else 'off'}", title="Fault / 故障")

    def action_toggle_cable(self, device: str) -> None:
        """Pull a device's cable out, or plug it back (a new pty at the same path)."""
        connected: list[bool] = []
        if self._guard(lambda: connected.append(self.world.toggle_cable(device))):
            state = "plugged back / 已重新连接" if connected[0] else "pulled out / 已拔出"
            self.notify(f"{device} cable {state}", severity="information" if connected[0] else "warning")
        self._refresh_status()
    # --- wallet: a customer's phone -------------------------------------------------------------------------

    def _wallet_choice(self) -> tuple[str, str]:
        return WALLETS[self.wallet_idx % len(WALLETS)], WALLET_OUTCOMES[self.outcome_idx % len(WALLET_OUTCOMES)]

    def _announce_wallet(self) -> None:
        wallet, outcome = self._wallet_choice()
        self.notify(f"{wallet} code, outcome {outcome} — press s to show it to the scanner / 按 s 出示付款码",
                    title="Customer's phone / 顾客手机")

    def action_pick_wallet(self, step: int) -> None:
        self.wallet_idx += step
        self._announce_wallet()
        self._refresh_pinpad()

    def action_pick_outcome(self, step: int) -> None:
        self.outcome_idx += step
        self._announce_wallet()
        self._refresh_pinpad()

    def action_show_code(self) -> None:
        wallet, outcome = self._wallet_choice()
        if self._guard(lambda: self.world.show_code(wallet, outcome)):
            self.notify(f"{wallet} code ({outcome}) shown to the scanner / 已出示付款码", title="Scanner / 扫码器")

    def action_phone(self, pay: bool) -> None:
        answers: list[str] = []
        if self._guard(lambda: answers.append(self.world.phone_scan(pay))):
            self.notify(f"Phone: {answers[0]}", title="Customer's phone / 顾客手机")

    def action_scroll_receipt(self, direction: int) -> None:
        box = self.query_one("#printer-box", VerticalScroll)
        (box.scroll_page_up if direction < 0 else box.scroll_page_down)(animate=False)

    def action_scroll_screen(self, direction: int) -> None:
        box = self.query_one("#screen-box", VerticalScroll)
        (box.scroll_home if direction < 0 else box.scroll_end)(animate=False)


def run_tui(world: WorldView) -> None:
    """Run the UI in the foreground until the user quits (``q`` or ctrl+c)."""
    PosSimApp(world).run()
