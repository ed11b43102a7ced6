"""Every screen's handler, in one table keyed by ``State`` (``docs/architecture.md`` lists them as a table).

A handler is an object with ``on_key(core, key)``; it changes the session, fires machine triggers and asks for
work through the core (``terminal.core``). Finished work goes to the callback the handler named when it asked.

>>> from terminal.machine import State
>>> type(HANDLERS.screens[State.CONFIRM]).__name__
'Confirm'
>>> set(State) - set(HANDLERS.screens) == {State.BOOT, State.SETTLING, State.VOIDING}
True
"""

from __future__ import annotations

from terminal.core import Handler, HandlerTable
from terminal.handlers import (
                               advice,
                               boot,
                               card,
                               diagnostics,
                               firmware,
                               history,
                               home,
                               login,
                               open_items,
                               result,
                               sale,
                               settings,
                               settlement,
                               sim,
                               timeouts,
                               users,
                               void,
                               wallet,
)
from terminal.machine import State

__all__ = ["HANDLERS", "SCREENS"]

_card = card.CardPayment()
_wallet_waiting = wallet.WalletWaiting()

# BOOT, SETTLING and VOIDING take no keys: they wait for their work.
SCREENS: dict[State, Handler] = {
    State.OUT_OF_SERVICE: boot.OutOfService(),
    State.LOGIN: login.Login(),
    State.HOME: home.Home(),
    State.SIM_ENTRY: sim.SimEntry(),
    State.SIM_LOOKUP: sim.SimLookup(),
    State.SIM_DETAILS: sim.SimDetails(),
    State.BALANCE: sim.Balance(),
    State.PLAN_SELECT: sale.PlanSelect(),
    State.ADVICE: advice.Advice(),
    State.CHANNEL_SELECT: sale.ChannelSelect(),
    State.CONFIRM: sale.Confirm(),
    State.DUPLICATE_WARNING: sale.DuplicateWarning(),
    State.INSERT_CARD: _card,
    State.CARD_READING: _card,
    State.PIN_ENTRY: _card,
    State.PROCESSING: card.Processing(),
    State.SCAN_CODE: wallet.ScanCode(),
    State.SHOW_QR: _wallet_waiting,
    State.WALLET_WAITING: _wallet_waiting,
    State.RESULT: result.Result(),
    State.RECEIPT: result.Receipt(),
    State.HISTORY: history.History(),
    State.HISTORY_LIST: history.HistoryList(),
    State.HISTORY_DETAIL: history.HistoryDetail(),
    State.SHIFT: history.Shift(),
    State.USERS: users.Users(),
    State.USER_EDIT: users.UserEdit(),
    State.PASSWORD: users.Password(),
    State.AUDIT: diagnostics.AuditScreen(),
    State.DIAGNOSTICS: diagnostics.Diagnostics(),
    State.SETTINGS: settings.SettingsScreen(),
    State.FIRMWARE: firmware.Firmware(),
    State.FIRMWARE_REVERT: firmware.FirmwareRevert(),
    State.VOID_SELECT: void.VoidSelect(),
    State.VOID_CONFIRM: void.VoidConfirm(),
    State.VOID_DONE: void.VoidDone(),
    State.SETTLEMENT: settlement.Settlement(),
    State.SETTLED: settlement.Settled(),
    State.OPEN_ITEMS: open_items.OpenItems(),
}

HANDLERS = HandlerTable(screens=SCREENS, on_start=boot.start, on_timeout=timeouts.on_timeout,
                        on_health_due=diagnostics.health_due, on_journal_write=diagnostics.journal_write_changed)
