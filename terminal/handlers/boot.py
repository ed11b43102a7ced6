"""Boot and out-of-service: the journal check and recovery before the first sale; the first device check
right after the login screen shows.

>>> OutOfService().__class__.__name__
'OutOfService'
"""

from __future__ import annotations

from typing import Any

from flows.messages import t
from pos_errors import PosError
from terminal.core import TerminalCore
from terminal.diagnostics import faults
from terminal.machine import State
from terminal.profile import pin_test_key_id
from terminal.screens import Key
from terminal.work import WorkContext, check_devices, recover_all

__all__ = ["start", "OutOfService"]


def _boot_work(lang: str) -> Any:
    def run(ctx: WorkContext) -> tuple[bool, tuple[str, ...], tuple[Any, ...]]:
        sv = ctx.services
        if not sv.journal.check_integrity():
            return False, (t("boot.journal_damaged", lang),), ()
        test_key = _test_pin_key(sv)  # a production terminal with a test PIN key never reaches a sale
        if test_key:
            return False, (t("boot.test_pin_key", lang, key_id=test_key),), ()
        with ctx.money:
            report = recover_all(sv)
        return True, tuple(t("boot.recovery", lang, line=line) for line in report.lines), ()
    return run


def _test_pin_key(sv: Any) -> str | None:
    """A production terminal refuses a PIN pad holding a published test key (``terminal.profile``)."""
    key_status = getattr(sv.pinpad, "key_status", None)
    if key_status is None or sv.settings.terminal.profile != "production":
        return None
    try:
        return pin_test_key_id(sv.settings.terminal.profile, key_status().ksn)
    except PosError:
        return None  # an unreachable pad is the device check's finding


def start(core: TerminalCore) -> None:
    core.start("boot", _boot_work(core.session.lang), _booted)


def _booted(core: TerminalCore, result: Any, error: BaseException | None) -> None:
    ok, lines, health = result if result else (False, (core.say("boot.failed", error=error),), ())
    core.session.notice, core.session.health = lines, health or core.session.health
    if ok:
        core.fire("booted")
        # the device self-test runs after the login screen shows: boot stays short, warnings follow in a moment
        core.start("self_test", check_devices, _self_tested, background=True)
    else:
        core.audit("self_test", "; ".join(lines) or "failed")
        core.session.error = lines[0] if lines else core.say("boot.failed", error="")
        core.fire("boot_failed")


def _self_tested(core: TerminalCore, result: Any, error: BaseException | None) -> None:
    checks = list(result or ())
    core.session.health = tuple(faults(checks))  # shown on the home screen until fixed
    found = [check.text("en") for check in core.session.health]
    core.audit("self_test", "; ".join(found) or ("ok" if error is None else f"not run: {type(error).__name__}"))
    if core.state in (State.HOME, State.LOGIN):  # pos-terminal --status shows the last self_test entry
        core.refresh()


class OutOfService:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key is Key.ENTER:
            core.session.error = None
            core.fire("retry_boot")
            start(core)
