"""The audit log screen, the diagnostics screen and the periodic background device check.

>>> Diagnostics().__class__.__name__
'Diagnostics'
"""

from __future__ import annotations

import logging
from typing import Any

from terminal.core import TerminalCore
from terminal.diagnostics import Check, faults, write_fault
from terminal.machine import State
from terminal.office_state import AUDIT_PAGE
from terminal.screens import Key
from terminal.work import check_devices

__all__ = ["AuditScreen", "Diagnostics", "open_audit", "open_diagnostics", "health_due", "journal_write_changed"]

log = logging.getLogger("terminal.diagnostics")


def open_audit(core: TerminalCore) -> None:
    audit = core.services.audit
    core.session.office.audit = audit.recent(limit=500) if audit is not None else []
    core.session.office.audit_page = 0
    core.fire("open_audit")


def _start_check(core: TerminalCore) -> None:
    core.session.office.diagnostics = None
    core.start("diagnostics", check_devices, _checked)


def open_diagnostics(core: TerminalCore) -> None:
    _start_check(core)
    core.fire("open_diagnostics")


def _checked(core: TerminalCore, result: list[Check] | None, error: BaseException | None) -> None:
    checks = result or []
    core.session.office.diagnostics = checks
    core.session.health = tuple(faults(checks))
    if error is not None:
        core.session.error = core.say("boot.failed", error=error)
    core.audit("diagnostics", f"{sum(not c.ok for c in checks)} fault(s)")
    core.refresh()


def health_due(core: TerminalCore) -> None:
    """The background timer fired: check the devices when the terminal is idle and no check is still asking."""
    if core.state in (State.HOME, State.LOGIN) and not core.work_running(_health_checked):
        core.start("health", check_devices, _health_checked, background=True)


def recheck(core: TerminalCore) -> None:
    """Anyone on the home screen may run the non-intrusive checks again (status queries only, nothing printed):
    a warning goes away as soon as a check passes."""
    if not core.work_running(_health_checked):
        core.session.office.info = core.say("home.rechecking")
        core.start("health", check_devices, _health_checked, background=True)
    core.refresh()


def _health_checked(core: TerminalCore, result: Any, error: BaseException | None) -> None:
    core.session.office.info = None
    if error is not None:  # run_checks turns ours into lines; anything else is logged
        log.warning("background check failed: %s", error)
        core.refresh()
        return
    before = core.session.health
    core.session.health = tuple(faults(list(result)))
    if before != core.session.health and core.state in (State.HOME, State.LOGIN):
        core.refresh()


def journal_write_changed(core: TerminalCore) -> None:
    """The journal's writes began (or ceased) to fail during the last step: its home warning now, not at the next
    background check; the other warnings stay as that check left them."""
    error = getattr(core.services.journal, "write_error", None)
    if error:  # SQLite's own text goes to the log only; the screens say it in the cashier's language
        log.warning("journal writes fail: %s", error)
    others = tuple(c for c in core.session.health if c.problem is None or c.problem.key != "fault.write_failed")
    core.session.health = others + ((write_fault(error),) if error else ())
    if core.state in (State.HOME, State.LOGIN):
        core.refresh()


class AuditScreen:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        o = core.session.office
        if key in (Key.CANCEL, Key.ENTER):
            core.go_home()
        elif key is Key.F1 and len(o.audit) > (o.audit_page + 1) * AUDIT_PAGE:  # older
            o.audit_page += 1
            core.refresh()
        elif key is Key.F2 and o.audit_page:  # newer
            o.audit_page -= 1
            core.refresh()


class Diagnostics:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key is Key.CANCEL:
            core.go_home()
        elif key is Key.ENTER and core.session.office.diagnostics is not None:
            _start_check(core)
            core.refresh()
