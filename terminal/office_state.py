"""What the cashier and supervisor screens (history, users, audit, diagnostics, advice, password) are showing:
one small mutable record inside the ``Session``, owned by the app thread like the rest of it.

>>> OfficeState().history_values
['', '', '', '']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["OfficeState", "HISTORY_FIELDS", "ADVICE_FIELDS", "PASSWORD_FIELDS", "AUDIT_PAGE", "VOID_PAGE"]

HISTORY_FIELDS = ("history.field_tail", "history.field_yuan", "history.field_date", "history.field_channel")
ADVICE_FIELDS = ("advice.field_data", "advice.field_sms", "advice.field_voice", "advice.field_months")
PASSWORD_FIELDS = ("password.old", "password.new", "password.again")
AUDIT_PAGE = 12  # audit rows per screen
VOID_PAGE = 9  # the void/refund list: keys 1-9 pick on the page shown, F1 older, F2 newer


@dataclass
class OfficeState:
    info: str | None = None  # a green "done" line (duplicate printed, password changed …)
    # help me choose
    advice_field: int = 0
    advice_values: list[str] = field(default_factory=lambda: ["", "", "", ""])  # months: empty = 1
    advice: Any = None  # flows.advice.Advice, or False when nothing covers the need
    # history and reprint
    history_field: int = 0
    history_values: list[str] = field(default_factory=lambda: ["", "", "", ""])
    history_results: list[Any] = field(default_factory=list)  # TxnRecord, newest first
    history_pick: int = 0
    detail_lang: str = ""
    # shift summary, audit, diagnostics
    shift_day: str = ""
    shift: list[Any] = field(default_factory=list)
    audit: list[Any] = field(default_factory=list)  # newest first
    audit_page: int = 0
    diagnostics: list[Any] | None = None  # None while running
    # users
    users: list[Any] = field(default_factory=list)
    user_pick: str = ""
    user_entry: str = ""
    adding: str = ""  # "", "id", "role", "password"
    add_id: str = ""
    add_role: str = ""
    # settings
    setting_pick: int = 0
    setting_entry: str = ""
    setting_values: dict[str, int] = field(default_factory=dict)
    # firmware slots (terminal.firmware_screen)
    firmware_configured: bool = False
    firmware: list[Any] = field(default_factory=list)  # firmware_image.slots.SlotInfo, slot 0 then 1
    firmware_counter: int = 0  # the stored anti-rollback counter
    # own password
    password_field: int = 0
    password_values: list[str] = field(default_factory=lambda: ["", "", ""])
