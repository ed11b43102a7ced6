"""The supervisor gate of the void, settlement and open-items screens, and the audit detail they share.

>>> SUPERVISOR_ROLE
'supervisor'
"""

from __future__ import annotations

from typing import Any

from flows.messages import CATALOGUE, Msg
from flows.money import format_money
from terminal.core import TerminalCore

__all__ = ["SUPERVISOR_ROLE", "is_supervisor", "audit_what"]

SUPERVISOR_ROLE = "supervisor"


def is_supervisor(core: TerminalCore, what: str) -> bool:
    """True for a supervisor; otherwise the screen says who may (``what``: the menu item's catalogue key)."""
    if core.role() == SUPERVISOR_ROLE:
        return True
    core.session.error = core.say("super.required", what=Msg(what) if what in CATALOGUE else what)
    core.refresh()
    return False


def audit_what(record: Any, status: str) -> str:
    """An audit detail: which payment, how much, what happened (no PAN beyond the masked one)."""
    return (f"txn {record.txn_id} order {record.order_id} {format_money(record.total_minor)} "
            f"SIM …{record.iccid[-4:]} {status}")
