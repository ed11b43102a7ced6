"""Every screen's handler, in one table keyed by ``State`` (``docs/architecture.md`` lists them as a table).

A handler is an object with ``on_key(core, key)``; it changes the session, fires machine triggers and asks for
work through the core (``terminal.core``). Finished work goes to the callback the handler named when it asked.

The table is complete from the start (``WHERE``: every state that takes keys, its module in this package and its
class), but a screen's module is imported and its handler built only the first time its state is looked up
(issue 17: the boot path imports what the login screen needs, not every screen). Boot, the deadline, the health
check and the journal watch are needed from the first moment and are imported at once.

>>> from terminal.machine import State
>>> type(HANDLERS.screens[State.CONFIRM]).__name__
'Confirm'
>>> set(State) - set(HANDLERS.screens) == {State.BOOT, State.SETTLING, State.VOIDING}
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module

from terminal.core import Handler, HandlerTable
from terminal.handlers import boot, diagnostics, timeouts
from terminal.machine import State

__all__ = ["HANDLERS", "SCREENS", "WHERE", "LazyScreens"]

# State → (handler module of this package, handler class). One class named for several states is one object.
# BOOT, SETTLING and VOIDING take no keys: they wait for their work.
WHERE: Mapping[State, tuple[str, str]] = {
    State.OUT_OF_SERVICE: ("boot", "OutOfService"),
    State.LOGIN: ("login", "Login"),
    State.HOME: ("home", "Home"),
    State.SIM_ENTRY: ("sim", "SimEntry"),
    State.SIM_LOOKUP: ("sim", "SimLookup"),
    State.SIM_DETAILS: ("sim", "SimDetails"),
    State.BALANCE: ("sim", "Balance"),
    State.PLAN_SELECT: ("sale", "PlanSelect"),
    State.ADVICE: ("advice", "Advice"),
    State.CHANNEL_SELECT: ("sale", "ChannelSelect"),
    State.CONFIRM: ("sale", "Confirm"),
    State.DUPLICATE_WARNING: ("sale", "DuplicateWarning"),
    State.INSERT_CARD: ("card", "CardPayment"),
    State.CARD_READING: ("card", "CardPayment"),
    State.PIN_ENTRY: ("card", "CardPayment"),
    State.PROCESSING: ("card", "Processing"),
    State.SCAN_CODE: ("wallet", "ScanCode"),
    State.SHOW_QR: ("wallet", "WalletWaiting"),
    State.WALLET_WAITING: ("wallet", "WalletWaiting"),
    State.RESULT: ("result", "Result"),
    State.RECEIPT: ("result", "Receipt"),
    State.HISTORY: ("history", "History"),
    State.HISTORY_LIST: ("history", "HistoryList"),
    State.HISTORY_DETAIL: ("history", "HistoryDetail"),
    State.SHIFT: ("history", "Shift"),
    State.USERS: ("users", "Users"),
    State.USER_EDIT: ("users", "UserEdit"),
    State.PASSWORD: ("users", "Password"),
    State.AUDIT: ("diagnostics", "AuditScreen"),
    State.DIAGNOSTICS: ("diagnostics", "Diagnostics"),
    State.SETTINGS: ("settings", "SettingsScreen"),
    State.FIRMWARE: ("firmware", "Firmware"),
    State.FIRMWARE_REVERT: ("firmware", "FirmwareRevert"),
    State.VOID_SELECT: ("void", "VoidSelect"),
    State.VOID_CONFIRM: ("void", "VoidConfirm"),
    State.VOID_DONE: ("void", "VoidDone"),
    State.SETTLEMENT: ("settlement", "Settlement"),
    State.SETTLED: ("settlement", "Settled"),
    State.OPEN_ITEMS: ("open_items", "OpenItems"),
}


class LazyScreens(Mapping[State, Handler]):
    """The screen handlers of ``where``: every key known at once, each handler built on first lookup and kept.

    Looked up by the core on the app thread only (a key press); a state that is not in ``where`` is a KeyError,
    as in a dict. ``built()`` names the states whose handler exists so far.
    """

    def __init__(self, where: Mapping[State, tuple[str, str]]) -> None:
        self._where = dict(where)
        self._built: dict[State, Handler] = {}
        self._objects: dict[tuple[str, str], Handler] = {}

    def __getitem__(self, state: State) -> Handler:
        handler = self._built.get(state)
        if handler is None:
            place = self._where[state]
            handler = self._objects.get(place)
            if handler is None:
                module, name = place
                handler = self._objects[place] = getattr(import_module(f"{__name__}.{module}"), name)()
            self._built[state] = handler
        return handler

    def get(self, state: State, default: Handler | None = None) -> Handler | None:  # type: ignore[override]
        """As ``Mapping.get``, without its ``try: self[key]`` round trip: the core asks on every key."""
        handler = self._built.get(state)
        if handler is None:
            return self[state] if state in self._where else default
        return handler

    def __iter__(self) -> Iterator[State]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def built(self) -> frozenset[State]:
        return frozenset(self._built)


SCREENS = LazyScreens(WHERE)

HANDLERS = HandlerTable(screens=SCREENS, on_start=boot.start, on_timeout=timeouts.on_timeout,
                        on_health_due=diagnostics.health_due, on_journal_write=diagnostics.journal_write_changed)
