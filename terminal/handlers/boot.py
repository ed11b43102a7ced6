"""Boot and out-of-service: the journal check, the first device check and recovery before the first sale.

>>> OutOfService().__class__.__name__
'OutOfService'
"""

from __future__ import annotations

from typing import Any

from flows.messages import t
from pos_errors import PosError
from terminal.core import TerminalCore
from terminal.diagnostics import faults, run_checks
from terminal.profile import pin_test_key_id
from terminal.screens import Key
from terminal.work import WorkContext, recover_all

__all__ = ["start", "OutOfService"]


def _boot_work(lang: str) -> Any:
    def run(ctx: WorkContext) -> tuple[bool, tuple[str, ...], tuple[Any, ...]]:
        sv = ctx.services
        if not sv.journal.check_integrity():
            return False, (t("boot.journal_damaged", lang),), ()
        test_key = _test_pin_key(sv)
        if test_key:
            return False, (t("boot.test_pin_key", lang, key_id=test_key),), ()
        health = tuple(faults(run_checks(sv)))  # shown on the home screen until fixed
        with ctx.money:
            report = recover_all(sv)
        return True, tuple(t("boot.recovery", lang, line=line) for line in report.lines), health
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
    else:
        core.session.error = lines[0] if lines else core.say("boot.failed", error="")
        core.fire("boot_failed")


class OutOfService:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key is Key.ENTER:
            core.session.error = None
            core.fire("retry_boot")
            start(core)
