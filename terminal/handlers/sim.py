"""SIM entry, the carrier lookup, the SIM's details and the balance (status) screen.

The decision what the carrier's answer means is ``flows.sim_lookup``; this module only types, asks and shows.

>>> SimEntry().__class__.__name__
'SimEntry'
"""

from __future__ import annotations

from typing import Any

from flows.messages import say
from flows.sim_lookup import LookupOutcome, decide, needs_plans
from flows.sim_number import check_sim_number
from terminal.core import TerminalCore
from terminal.screens import Key
from terminal.work import WorkContext

__all__ = ["SimEntry", "SimLookup", "SimDetails", "Balance"]


def _lookup_work(number: str, purpose: str) -> Any:
    def run(ctx: WorkContext) -> tuple[Any, list[Any]]:
        carrier = ctx.services.carrier
        sim = carrier.lookup_sim(number)
        return sim, list(carrier.list_plans(sim.iccid)) if sim is not None and needs_plans(sim, purpose=purpose) else []
    return run


def _looked_up(core: TerminalCore, result: Any, error: BaseException | None) -> None:
    s = core.session
    sim, plans = result if result is not None else (None, [])
    decision = decide(sim, error, purpose=s.purpose)
    if decision.outcome is LookupOutcome.STATUS:
        s.sim, s.sim_after, s.error = sim, sim, None
        core.fire("status_found")
    elif decision.outcome is LookupOutcome.FOUND:
        s.sim, s.plans, s.error = sim, plans, None
        core.fire("sim_found")
    else:
        s.error = say(decision.message, s.lang) if decision.message else None
        core.fire("sim_problem")


class SimEntry:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        if key.digit is not None and len(s.entry) < 20:
            s.entry, s.error, s.warning_shown = s.entry + key.digit, None, False
        elif key is Key.CLEAR:
            s.entry, s.error, s.warning_shown = s.entry[:-1], None, False
        elif key is Key.CANCEL and s.entry:
            s.entry, s.error = "", None
        elif key is Key.CANCEL:
            s.error = None
            core.fire("back")
            return
        elif key is Key.ENTER:
            check = check_sim_number(s.entry)
            if check.error is not None:
                s.error = say(check.error, s.lang)
            elif check.warning and not s.warning_shown:
                s.error, s.warning_shown = say(check.warning, s.lang), True
            else:
                s.error = None
                core.fire("lookup")
                core.start("lookup", _lookup_work(check.number, s.purpose), _looked_up)
                return
        core.refresh()


class SimLookup:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key is Key.CANCEL:
            core.abandon_work()
            core.fire("back")


class SimDetails:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key is Key.CANCEL:
            core.session.error = None
            core.fire("back")
        elif key is Key.ENTER and core.session.plans:
            core.fire("choose_plan")


class Balance:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key in (Key.ENTER, Key.CANCEL):
            core.session.reset_sale()
            core.fire("home")
