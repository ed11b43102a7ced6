"""Plan advice ("help me choose"): data, SMS, voice and months typed in; ``flows.advice`` finds the plan.

>>> Advice().__class__.__name__
'Advice'
"""

from __future__ import annotations

from flows.advice import MAX_MONTHS, Need, advise
from flows.messages import say
from flows.ports import Plan
from flows.pricing import CHANNEL_LABELS, quote
from terminal.core import TerminalCore
from terminal.screens import Key

__all__ = ["Advice", "open_advice", "pick_plan"]


def pick_plan(core: TerminalCore, plan: Plan) -> None:
    """Quote ``plan`` on the first channel and go on to the channel choice (or say why not)."""
    s, cfg = core.session, core.settings
    q = quote(plan, next(iter(CHANNEL_LABELS)), cfg.fees, cfg.terminal.max_amount_minor)
    if q.error:
        s.error = say(q.error, s.lang)
        core.refresh()
    else:
        s.quote, s.error = q, None
        core.fire("plan_chosen")


def open_advice(core: TerminalCore) -> None:
    o = core.session.office
    o.advice, o.advice_field, o.advice_values, core.session.error = None, 0, ["", "", "", ""], None
    core.fire("advise")


class Advice:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s, o = core.session, core.session.office
        if o.advice is not None:
            if key is Key.ENTER and o.advice and o.advice.single is not None:
                pick_plan(core, o.advice.single)
                return
            if key is Key.CANCEL:
                o.advice, o.advice_field = None, 0
            core.refresh()
            return
        value = o.advice_values[o.advice_field]
        if key.digit is not None and len(value) < 4:
            o.advice_values[o.advice_field] = value + key.digit
        elif key is Key.CLEAR:
            o.advice_values[o.advice_field] = value[:-1]
        elif key is Key.CANCEL and value:
            o.advice_values[o.advice_field] = ""
        elif key is Key.CANCEL:
            s.error = None
            core.fire("back")
            return
        elif key is Key.ENTER and o.advice_field < 3:
            o.advice_field += 1
        elif key is Key.ENTER:
            data, sms, voice = (int(v or 0) for v in o.advice_values[:3])
            months = int(o.advice_values[3] or 1)
            if not 1 <= months <= MAX_MONTHS:
                s.error = core.say("advice.bad_months")
            else:
                s.error = None
                o.advice = advise(s.plans, Need(data_mb=data * 1024, sms=sms, voice_min=voice, months=months)) \
                    or False
        core.refresh()
