"""Who may do what: the three roles and the permission table every sensitive screen consults.

Actions are facts about the product (``Action.VOID``), roles are the people (``Role.SUPERVISOR``); the table
is data, so the README and the tests read the same thing the terminal enforces.

>>> allowed("cashier", Action.TOPUP), allowed("cashier", Action.VOID), allowed("technician", Action.KEY_LOAD)
(True, False, True)
>>> [(k, a.value) for k, a, _ in home_menu("technician") if allowed("technician", a)]
[('6', 'firmware'), ('7', 'diagnostics'), ('8', 'own_password'), ('0', 'language')]
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from enum import StrEnum

__all__ = ["Role", "Action", "PERMISSIONS", "HOME_MENU", "allowed", "roles_for", "parse_role", "home_menu",
           "menu_entry", "usable_menu"]


class Role(StrEnum):
    CASHIER = "cashier"
    SUPERVISOR = "supervisor"
    TECHNICIAN = "technician"


class Action(StrEnum):
    TOPUP = "topup"
    BALANCE = "balance"
    HISTORY = "history"
    REPRINT = "reprint"
    OWN_PASSWORD = "own_password"
    LANGUAGE = "language"
    VOID = "void"
    REFUND = "refund"
    SETTLEMENT = "settlement"
    SETTINGS = "settings"
    USERS = "users"
    AUDIT = "audit"
    SHIFT_ALL = "shift_all"  # end-of-shift summary of every cashier (each cashier sees their own)
    FLASH = "flash"  # write a new build into a slot (pos-fw over the maintenance port): technicians only
    FIRMWARE = "firmware"  # see both slots, confirm the running test image, revert to the other slot
    KEY_LOAD = "key_load"
    KEY_LOAD_WITNESS = "key_load_witness"  # dual control: the second person who confirms a key load
    DIAGNOSTICS = "diagnostics"
    OPEN_ITEMS = "open_items"  # what recovery is still following up (reversals, voids, pending top-ups)
    JOURNAL_RECOVERY = "journal_recovery"  # accept a damaged journal as it now stands (out-of-service screen)


_EVERYONE = frozenset(Role)
_SELLERS = frozenset({Role.CASHIER, Role.SUPERVISOR})
_SUPERVISOR = frozenset({Role.SUPERVISOR})
_TECHNICIAN = frozenset({Role.TECHNICIAN})
_SUPERVISOR_TECHNICIAN = frozenset({Role.SUPERVISOR, Role.TECHNICIAN})

PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    Action.TOPUP: _SELLERS,
    Action.BALANCE: _SELLERS,
    Action.HISTORY: _SELLERS,
    Action.REPRINT: _SELLERS,
    Action.OWN_PASSWORD: _EVERYONE,
    Action.LANGUAGE: _EVERYONE,
    Action.VOID: _SUPERVISOR,
    Action.REFUND: _SUPERVISOR,
    Action.SETTLEMENT: _SUPERVISOR,
    Action.SETTINGS: _SUPERVISOR,
    Action.USERS: _SUPERVISOR,
    Action.AUDIT: _SUPERVISOR,
    Action.SHIFT_ALL: _SUPERVISOR,
    Action.FLASH: _TECHNICIAN,
    Action.FIRMWARE: _SUPERVISOR_TECHNICIAN,
    Action.KEY_LOAD: _TECHNICIAN,
    Action.KEY_LOAD_WITNESS: _SUPERVISOR_TECHNICIAN,
    Action.DIAGNOSTICS: _TECHNICIAN,
    Action.JOURNAL_RECOVERY: _TECHNICIAN,
    Action.OPEN_ITEMS: _SUPERVISOR,
}

# The home screen: (key, action, catalogue key of the label). Items the role may not use are hidden; pressing
# their key anyway says who may (and is audited as "refused"). Key 9 logs out. A key may carry two items for
# different roles (the keypad has no free key left): each role gets the first item on it that it may use, so
# Firmware is 7 for a supervisor (who has no Diagnostics) and 6 for a technician (who has no Audit log).
HOME_MENU: tuple[tuple[str, Action, str], ...] = (
    ("1", Action.TOPUP, "home.topup"),
    ("2", Action.BALANCE, "home.balance"),
    ("3", Action.HISTORY, "home.history"),
    ("4", Action.HISTORY, "home.shift"),
    ("5", Action.USERS, "home.users"),
    ("6", Action.AUDIT, "home.audit"),
    ("6", Action.FIRMWARE, "home.firmware"),
    ("7", Action.DIAGNOSTICS, "home.diagnostics"),
    ("7", Action.FIRMWARE, "home.firmware"),
    ("8", Action.OWN_PASSWORD, "home.password"),
    ("0", Action.LANGUAGE, "home.language"),
    ("F1", Action.SETTINGS, "home.settings"),
    ("F2", Action.VOID, "home.void"),
    ("F3", Action.SETTLEMENT, "home.settlement"),
    ("F4", Action.OPEN_ITEMS, "home.open_items"),
)


def parse_role(text: str) -> Role | None:
    """The role named ``text``, or None for an unknown name (an unknown role may do nothing)."""
    try:
        return Role(text)
    except ValueError:
        return None


def allowed(role: str, action: Action) -> bool:
    """True when ``role`` may do ``action``; unknown roles may do nothing."""
    known = parse_role(role)
    return known is not None and known in PERMISSIONS[action]


def roles_for(action: Action) -> tuple[Role, ...]:
    """The roles allowed to do ``action``, in table order (for "supervisor only" messages)."""
    return tuple(r for r in Role if r in PERMISSIONS[action])


def menu_entry(role: str, key: str) -> tuple[str, Action, str] | None:
    """The home-menu item ``key`` opens for ``role``: the first one on that key the role may use, else the first
    one (whose refusal then says who may); None when no item uses the key."""
    items = [e for e in HOME_MENU if e[0] == key]
    return next((e for e in items if allowed(role, e[1])), items[0] if items else None)


def home_menu(role: str) -> list[tuple[str, Action, str]]:
    """One item per key, in table order: the one ``menu_entry`` picks for ``role`` (check ``allowed`` to grey out
    the items it may not use)."""
    keys = dict.fromkeys(e[0] for e in HOME_MENU)
    return [entry for key in keys if (entry := menu_entry(role, key)) is not None]


@functools.cache  # the tables are constants: the home screen renders without checking 14 entries each time
def usable_menu(role: str) -> tuple[tuple[str, Action, str], ...]:
    """The items of ``home_menu(role)`` that ``role`` may use: what its home screen lists."""
    return tuple(entry for entry in home_menu(role) if allowed(role, entry[1]))
