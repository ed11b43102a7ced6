"""The terminal's screen flow: states as an Enum, transitions as a data table, one ``transitions`` machine.

The table is the single source of truth: the app fires triggers, ``make docs`` draws the Mermaid diagram from it,
and tests check that CANCEL has a defined outcome in every state (``CANCEL_OUTCOME``).

>>> State.HOME.value
'home'
>>> TRANSITIONS[0]  # (trigger, source, destination)
('booted', <State.BOOT: 'boot'>, <State.LOGIN: 'login'>)
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import Any

import transitions
from transitions import Machine

__all__ = ["State", "TRANSITIONS", "MOVES", "CANCEL_OUTCOME", "IDLE_LOGOUT", "build_machine", "mermaid"]


class State(StrEnum):
    BOOT = "boot"
    OUT_OF_SERVICE = "out_of_service"
    LOGIN = "login"
    HOME = "home"
    SIM_ENTRY = "sim_entry"
    SIM_LOOKUP = "sim_lookup"
    SIM_DETAILS = "sim_details"
    PLAN_SELECT = "plan_select"
    CHANNEL_SELECT = "channel_select"
    CONFIRM = "confirm"
    INSERT_CARD = "insert_card"
    CARD_READING = "card_reading"
    PIN_ENTRY = "pin_entry"
    PROCESSING = "processing"
    RESULT = "result"
    RECEIPT = "receipt"
    BALANCE = "balance"
    # cashier and supervisor functions (issue 8)
    ADVICE = "advice"
    HISTORY = "history"
    HISTORY_LIST = "history_list"
    HISTORY_DETAIL = "history_detail"
    SHIFT = "shift"
    USERS = "users"
    USER_EDIT = "user_edit"
    AUDIT = "audit"
    DIAGNOSTICS = "diagnostics"
    PASSWORD = "password"
    SETTINGS = "settings"
    SCAN_CODE = "scan_code"
    SHOW_QR = "show_qr"
    WALLET_WAITING = "wallet_waiting"
    DUPLICATE_WARNING = "duplicate_warning"
    SETTLEMENT = "settlement"
    SETTLING = "settling"
    SETTLED = "settled"
    VOID_SELECT = "void_select"
    VOID_CONFIRM = "void_confirm"
    VOIDING = "voiding"
    VOID_DONE = "void_done"
    OPEN_ITEMS = "open_items"
    # firmware slots (issue 7 item 3): supervisor and technician
    FIRMWARE = "firmware"
    FIRMWARE_REVERT = "firmware_revert"


S = State
PAYMENT = [S.INSERT_CARD, S.CARD_READING, S.PIN_ENTRY, S.PROCESSING]
# Screens opened from the home menu; CANCEL (trigger "home") returns there, inactivity logs out.
OFFICE = [S.HISTORY, S.HISTORY_LIST, S.HISTORY_DETAIL, S.SHIFT, S.USERS, S.USER_EDIT, S.AUDIT, S.DIAGNOSTICS,
          S.PASSWORD, S.SETTINGS, S.FIRMWARE, S.FIRMWARE_REVERT]
WALLET = [S.SCAN_CODE, S.SHOW_QR, S.WALLET_WAITING]
# Supervisor money screens log out on idle too (issue 19): a void screen left open must not void on F1.
SUPERVISOR_SCREENS = [S.VOID_SELECT, S.VOID_CONFIRM, S.VOID_DONE, S.SETTLEMENT, S.SETTLED, S.OPEN_ITEMS]
IDLE_LOGOUT = [S.HOME, S.SIM_ENTRY, S.SIM_DETAILS, S.PLAN_SELECT, S.CHANNEL_SELECT, S.CONFIRM, S.ADVICE, *OFFICE,
               *SUPERVISOR_SCREENS, S.DUPLICATE_WARNING]  # the duplicate warning's F1 takes a payment: it logs out too

# (trigger, source(s), destination)
TRANSITIONS: tuple[tuple[str, State | list[State], State], ...] = (
    ("booted", S.BOOT, S.LOGIN),
    ("boot_failed", S.BOOT, S.OUT_OF_SERVICE),
    ("retry_boot", S.OUT_OF_SERVICE, S.BOOT),
    ("logged_in", S.LOGIN, S.HOME),
    ("logout", IDLE_LOGOUT, S.LOGIN),
    ("start_topup", S.HOME, S.SIM_ENTRY),
    ("lookup", S.SIM_ENTRY, S.SIM_LOOKUP),
    ("sim_found", S.SIM_LOOKUP, S.SIM_DETAILS),
    ("sim_problem", S.SIM_LOOKUP, S.SIM_ENTRY),
    ("choose_plan", S.SIM_DETAILS, S.PLAN_SELECT),
    ("plan_chosen", S.PLAN_SELECT, S.CHANNEL_SELECT),
    ("channel_chosen", S.CHANNEL_SELECT, S.CONFIRM),
    ("confirmed", S.CONFIRM, S.INSERT_CARD),
    ("card_reading", [S.INSERT_CARD, S.PIN_ENTRY, S.PROCESSING], S.CARD_READING),
    ("pin_entry", [S.INSERT_CARD, S.CARD_READING], S.PIN_ENTRY),
    ("card_again", S.CARD_READING, S.INSERT_CARD),  # the chip failed: insert again or swipe (fallback)
    ("authorizing", [S.INSERT_CARD, S.CARD_READING, S.PIN_ENTRY], S.PROCESSING),
    ("finished", PAYMENT, S.RESULT),
    ("scan_code", [S.CONFIRM, S.DUPLICATE_WARNING], S.SCAN_CODE),
    ("show_qr", [S.SCAN_CODE, S.WALLET_WAITING], S.SHOW_QR),
    ("wallet_waiting", [S.SCAN_CODE, S.SHOW_QR], S.WALLET_WAITING),
    ("finished", WALLET, S.RESULT),
    ("print_receipt", S.RESULT, S.RECEIPT),
    ("printed", S.RECEIPT, S.BALANCE),
    ("home", [S.RESULT, S.RECEIPT, S.BALANCE], S.HOME),
    ("retry", S.RESULT, S.CHANNEL_SELECT),  # nothing charged: another channel, SIM, plan and amount kept
    ("back", S.SIM_ENTRY, S.HOME),
    ("back", S.SIM_LOOKUP, S.SIM_ENTRY),
    ("back", S.SIM_DETAILS, S.SIM_ENTRY),
    ("back", S.PLAN_SELECT, S.SIM_DETAILS),
    ("back", S.CHANNEL_SELECT, S.PLAN_SELECT),
    ("back", S.CONFIRM, S.CHANNEL_SELECT),
    # duplicate guard: same SIM and amount within the window; F1 (never ENTER) takes the payment anyway
    ("duplicate", S.CONFIRM, S.DUPLICATE_WARNING),
    ("confirmed", S.DUPLICATE_WARNING, S.INSERT_CARD),
    ("back", S.DUPLICATE_WARNING, S.CONFIRM),
    # end of day (supervisor): totals → 0500 (→ 0320 upload → 0500) → printed report → new batch
    ("settlement", S.HOME, S.SETTLEMENT),
    ("settle", S.SETTLEMENT, S.SETTLING),
    ("settled", S.SETTLING, S.SETTLED),
    ("home", [S.SETTLEMENT, S.SETTLED], S.HOME),
    # void (supervisor): pick a completed payment of the open batch, F1 confirms, receipt printed
    ("void", S.HOME, S.VOID_SELECT),
    ("void_chosen", S.VOID_SELECT, S.VOID_CONFIRM),
    ("back", S.VOID_CONFIRM, S.VOID_SELECT),
    ("voiding", S.VOID_CONFIRM, S.VOIDING),
    ("voided", S.VOIDING, S.VOID_DONE),
    ("carrier_refused", S.VOIDING, S.VOID_CONFIRM),  # the carrier kept the top-up: refuse, or F1 anyway
    ("home", [S.VOID_SELECT, S.VOID_DONE], S.HOME),
    # what is still being followed up (pending reversals, voids, top-ups); ENTER follows up now
    ("open_items", S.HOME, S.OPEN_ITEMS),
    ("home", S.OPEN_ITEMS, S.HOME),
    # balance query without paying: SIM entry → lookup → the status screen
    ("start_balance", S.HOME, S.SIM_ENTRY),
    ("status_found", S.SIM_LOOKUP, S.BALANCE),
    # plan advice
    ("advise", S.PLAN_SELECT, S.ADVICE),
    ("back", S.ADVICE, S.PLAN_SELECT),
    ("plan_chosen", S.ADVICE, S.CHANNEL_SELECT),
    # history, reprint, shift summary, users, audit, diagnostics, own password
    ("open_history", S.HOME, S.HISTORY),
    ("searched", S.HISTORY, S.HISTORY_LIST),
    ("back", S.HISTORY_LIST, S.HISTORY),
    ("open_detail", S.HISTORY_LIST, S.HISTORY_DETAIL),
    ("back", S.HISTORY_DETAIL, S.HISTORY_LIST),
    ("open_shift", S.HOME, S.SHIFT),
    ("open_users", S.HOME, S.USERS),
    ("open_user", S.USERS, S.USER_EDIT),
    ("back", S.USER_EDIT, S.USERS),
    ("open_audit", S.HOME, S.AUDIT),
    ("open_diagnostics", S.HOME, S.DIAGNOSTICS),
    ("open_password", S.HOME, S.PASSWORD),
    ("open_settings", S.HOME, S.SETTINGS),
    ("home", [S.HISTORY, S.SHIFT, S.USERS, S.AUDIT, S.DIAGNOSTICS, S.PASSWORD, S.SETTINGS], S.HOME),
    # firmware slots: F1 confirms the test image; F2 asks before a revert, F1 there reverts
    ("open_firmware", S.HOME, S.FIRMWARE),
    ("ask_revert", S.FIRMWARE, S.FIRMWARE_REVERT),
    ("back", S.FIRMWARE_REVERT, S.FIRMWARE),
    ("home", S.FIRMWARE, S.HOME),
)

# (trigger, source) pairs the table allows: the table has no conditions, so this is all ``may_trigger`` needs to
# know (transitions' own check scans every event of the machine, about 55 µs a question).
MOVES: frozenset[tuple[str, State]] = frozenset(
    (trigger, source) for trigger, sources, _ in TRANSITIONS
    for source in (sources if isinstance(sources, list) else [sources]))

# What CANCEL does on each screen (README table; a test checks every state has an entry).
CANCEL_OUTCOME: Mapping[State, str] = {
    S.BOOT: "ignored: recovery must finish before the first sale",
    S.OUT_OF_SERVICE: "ignored; ENTER retries the self-test",
    S.LOGIN: "clears what was typed",
    S.HOME: "stays on home (9 asks \"log out?\", ENTER logs out)",
    S.SIM_ENTRY: "clears the number; on an empty number returns home",
    S.SIM_LOOKUP: "abandons the lookup, back to SIM entry",
    S.SIM_DETAILS: "back to SIM entry",
    S.PLAN_SELECT: "back to SIM details",
    S.CHANNEL_SELECT: "back to plan selection",
    S.CONFIRM: "back to channel selection; nothing charged",
    S.INSERT_CARD: "ends the payment, nothing charged, result screen says so",
    S.CARD_READING: "ends the payment before it goes online, nothing charged",
    S.PIN_ENTRY: "aborts PIN entry on the PIN pad, nothing charged",
    S.PROCESSING: "refused with a message: the bank or carrier is being asked; the outcome is never lost",
    S.RESULT: "home (the receipt can be reprinted later); after a decline or cancel F2 picks another channel",
    S.RECEIPT: "skips printing, home",
    S.BALANCE: "home",
    S.ADVICE: "clears the field being typed; on an empty field back to plan selection",
    S.HISTORY: "clears the field being typed; on an empty field home",
    S.HISTORY_LIST: "back to the search",
    S.HISTORY_DETAIL: "back to the list",
    S.SHIFT: "home",
    S.USERS: "home (or ends adding a user)",
    S.USER_EDIT: "back to the user list",
    S.AUDIT: "home",
    S.DIAGNOSTICS: "home",
    S.PASSWORD: "home; the password is unchanged",
    S.SETTINGS: "clears the value being typed; otherwise home",
    S.SCAN_CODE: "ends the payment before any code is sent, nothing charged",
    S.SHOW_QR: "cancels the order at the wallet (reversed if the customer paid meanwhile)",
    S.WALLET_WAITING: "cancels the order at the wallet while the customer confirms; refused once paid",
    S.DUPLICATE_WARNING: "back to the confirmation; nothing charged",
    S.SETTLEMENT: "home; nothing sent to the host",
    S.SETTLING: "ignored: the host is closing the batch",
    S.SETTLED: "home",
    S.VOID_SELECT: "home; nothing voided",
    S.VOID_CONFIRM: "back to the list; nothing voided",
    S.VOIDING: "ignored: the host is being asked",
    S.VOID_DONE: "home",
    S.OPEN_ITEMS: "home",
    S.FIRMWARE: "home",
    S.FIRMWARE_REVERT: "back to the slot list; nothing reverted",
}


class _NamedState(transitions.State):
    """transitions' ``State`` with its name worked out once: the library asks a state's name six times a fire, and
    for an Enum state each is two property calls (its own ``name`` and the Enum's)."""

    def __init__(self, name: str | Enum, *args: Any, **kwargs: Any) -> None:
        super().__init__(name, *args, **kwargs)
        self._plain_name = name.name if isinstance(name, Enum) else name

    @property
    def name(self) -> str:
        return self._plain_name


class _Machine(Machine):
    state_cls = _NamedState  # the library's hook for its own State class


def build_machine(model: object, initial: State = S.BOOT) -> Machine:
    """Attach the table to ``model``; fires ``model.on_state_change`` after every transition."""
    table: list[Any] = [list(t) for t in TRANSITIONS]
    return _Machine(model=model, states=State, transitions=table, initial=initial,
                    auto_transitions=False, after_state_change="on_state_change", queued=False)


def mermaid() -> str:
    lines = ["stateDiagram-v2", "    [*] --> boot"]
    for trigger, sources, dest in TRANSITIONS:
        for source in sources if isinstance(sources, list) else [sources]:
            lines.append(f"    {source.value} --> {dest.value}: {trigger}")
    return "\n".join(lines)
