"""What happens when a screen's deadline passes (the core arms it on every state change, keys re-arm it).

>>> on_timeout.__name__
'on_timeout'
"""

from __future__ import annotations

from terminal.core import TerminalCore
from terminal.machine import State
from terminal.office_state import OfficeState

__all__ = ["on_timeout"]


def on_timeout(core: TerminalCore) -> None:
    s = core.session
    if core.state is State.SIM_LOOKUP:
        core.abandon_work()
        s.error = core.say("sim.timeout")
        core.fire("sim_problem")
    elif core.state in (State.RESULT, State.BALANCE):
        s.reset_sale()
        core.fire("home")
    elif core.state is not State.LOGIN and core.may_trigger("logout"):
        s.reset_sale()
        core.audit("logout", "idle")
        s.user, s.notice, s.error, s.office = None, (core.say("login.idle_logout"),), None, OfficeState()
        s.void_list, s.void_pick, s.void_result, s.open_items = [], None, None, []  # nothing left to commit
        s.settle_totals, s.settlement = None, None
        core.fire("logout")
