"""The home menu: role-checked entries, each opening its screen through the opener of that screen's module.

An opener's module is imported the first time its entry is picked (``Opener``), not with the home screen
(issue 17: like the handler table, ``terminal.handlers``).

>>> sorted(OPENERS)[:3]
['home.audit', 'home.balance', 'home.diagnostics']
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from flows.messages import next_lang
from terminal.core import TerminalCore
from terminal.handlers import diagnostics
from terminal.office_state import OfficeState
from terminal.roles import Action, menu_entry
from terminal.screens import Key

__all__ = ["Home", "OPENERS", "Opener"]


class Opener:
    """The opener ``name`` of the handler module ``module`` (``terminal.handlers.<module>``), imported on first use."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def target(self) -> Callable[[TerminalCore], None]:
        opener: Callable[[TerminalCore], None] = getattr(import_module(f"terminal.handlers.{self.module}"), self.name)
        return opener

    def __call__(self, core: TerminalCore) -> None:
        self.target()(core)


def _fire(trigger: str) -> Callable[[TerminalCore], None]:
    return lambda core: core.fire(trigger)


def _start_sim_entry(purpose: str, trigger: str) -> Callable[[TerminalCore], None]:
    def open_(core: TerminalCore) -> None:
        core.session.purpose = purpose
        core.fire(trigger)
    return open_


# The home-menu item (its catalogue label, terminal.roles.HOME_MENU) → what opens its screen.
OPENERS: dict[str, Callable[[TerminalCore], None]] = {
    "home.topup": _start_sim_entry("topup", "start_topup"),
    "home.balance": _start_sim_entry("balance", "start_balance"),
    "home.history": Opener("history", "open_history"),
    "home.shift": Opener("history", "open_shift"),
    "home.users": Opener("users", "open_users"),
    "home.audit": diagnostics.open_audit,
    "home.diagnostics": diagnostics.open_diagnostics,
    "home.password": Opener("users", "open_password"),
    "home.settings": Opener("settings", "open_settings"),
    "home.void": Opener("void", "open_void"),
    "home.settlement": Opener("settlement", "open_settlement"),
    "home.open_items": Opener("open_items", "open_open_items"),
}
_FIRMWARE = Opener("firmware", "open_firmware")


class Home:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        s.error, s.office.info = None, None
        if s.logout_asked:  # "log out?": ENTER logs out; any other key stays logged in
            s.logout_asked = False
            if key is Key.ENTER:
                core.audit("logout")
                s.user, s.office = None, OfficeState()  # nothing typed or listed outlives the session
                core.fire("logout")
            else:
                core.refresh()
            return
        if key is Key.D9:  # the dedicated logout key asks first; CANCEL (Esc) on home never logs out
            s.logout_asked = True
            core.refresh()
            return
        if key is Key.CANCEL:
            core.refresh()
            return
        if key is Key.ENTER and s.health:  # the device warning: check again (anyone; nothing intrusive)
            diagnostics.recheck(core)
            return
        entry = menu_entry(core.role(), key.value)
        if entry is None or not core.permit(entry[1]):
            return
        if entry[1] is Action.FIRMWARE:
            s.notice = ()
            _FIRMWARE(core)
        elif entry[1] is Action.LANGUAGE:
            s.lang = next_lang(s.lang)
            core.refresh()
        else:
            s.reset_sale()
            s.notice = ()
            OPENERS[entry[2]](core)
