"""Boot and out-of-service: the journal check and recovery before the first sale (the device self-test runs
right after the login screen shows); the technician's recovery of a damaged journal.

A journal found damaged when it was opened (``terminal.journal``: missing, empty, rolled back, broken) keeps the
terminal out of service with what was found, in the cashier's language, and where the damaged file was kept. F4
asks for a technician's id and password (``Action.JOURNAL_RECOVERY``; anyone else is refused and audited), then
F1 accepts the journal as it now stands (``accept_damage``: audited) and boots again. The self-test never shows
a Python error text: an unexpected failure names only its kind.

>>> OutOfService().__class__.__name__
'OutOfService'
"""

from __future__ import annotations

import logging
from typing import Any

from flows.messages import t
from pos_errors import PosError
from terminal.core import TerminalCore
from terminal.diagnostics import faults
from terminal.machine import State
from terminal.profile import pin_test_key_id
from terminal.roles import Action, allowed
from terminal.screens import Key
from terminal.work import WorkContext, check_devices, journal_writable, recover_all

__all__ = ["start", "OutOfService", "damage_lines"]

log = logging.getLogger("terminal.boot")


def damage_lines(damage: Any, lang: str) -> tuple[str, ...]:
    """What the boot check found, what it means and what to do, for the out-of-service screen."""
    lines = [t(f"journal.damage.{damage.kind}", lang, row=damage.row or "?"), t("journal.oos_stop", lang)]
    if damage.kept:
        lines.append(t("journal.oos_kept", lang, file=damage.kept))
    return (*lines, t("journal.oos_call", lang))


def _boot_work(lang: str) -> Any:
    def run(ctx: WorkContext) -> tuple[bool, tuple[str, ...], tuple[Any, ...]]:
        sv = ctx.services
        damage = getattr(sv.journal, "damage", None)  # the whole journal was checked when it was opened
        if damage is not None:
            return False, damage_lines(damage, lang), ()
        test_key = _test_pin_key(sv)  # a production terminal with a test PIN key never reaches a sale
        if test_key:
            return False, (t("boot.test_pin_key", lang, key_id=test_key),), ()
        if not journal_writable(sv):  # storage full or failing: nothing could be recorded
            return False, (t("journal.write_failed", lang), t("journal.write_action", lang)), ()
        with ctx.money:
            report = recover_all(sv, unknown=True)
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
    if error is not None:
        log.error("self-test failed: %r", error)
    ok, lines, health = result if result else (False, (core.say("boot.selftest_error", error=type(error).__name__),),
                                                ())
    core.session.notice, core.session.health = lines, health or core.session.health
    if ok:
        core.fire("booted")
        # the device self-test runs after the login screen shows: boot stays short, warnings follow in a moment
        core.start("self_test", check_devices, _self_tested, background=True)
    else:
        core.audit("self_test", "; ".join(lines) or "failed")
        core.session.journal_hold = getattr(core.services.journal, "damage", None) is not None
        core.session.error = None if core.session.journal_hold else lines[0]
        core.fire("boot_failed")


def _self_tested(core: TerminalCore, result: Any, error: BaseException | None) -> None:
    checks = list(result or ())
    core.session.health = tuple(faults(checks))  # shown on the home screen until fixed
    found = [check.text("en") for check in core.session.health]
    core.audit("self_test", "; ".join(found) or ("ok" if error is None else f"not run: {type(error).__name__}"))
    if core.state in (State.HOME, State.LOGIN):  # pos-terminal --status shows the last self_test entry
        core.refresh()


class OutOfService:
    """ENTER retries the self-test; with a damaged journal, F4 starts the technician's recovery."""

    def on_key(self, core: TerminalCore, key: Key) -> None:
        s, journal = core.session, core.services.journal
        step = s.login_field if s.login_field in ("tech_id", "tech_pw", "tech_ok") else ""
        if key is Key.CANCEL or (key is Key.ENTER and not step):
            s.login_id, s.login_pw, s.login_field, s.error = "", "", "id", None
            if key is Key.ENTER:
                core.fire("retry_boot")
                start(core)
                return
        elif key is Key.F4 and not step and getattr(journal, "damage", None) is not None:
            s.login_field, s.error = "tech_id", None
        elif key.digit is not None and step in ("tech_id", "tech_pw"):
            if step == "tech_id" and len(s.login_id) < 12:
                s.login_id += key.digit
            elif step == "tech_pw" and len(s.login_pw) < 12:
                s.login_pw += key.digit
        elif key is Key.CLEAR and step in ("tech_id", "tech_pw"):
            s.login_id, s.login_pw = (s.login_id[:-1], s.login_pw) if step == "tech_id" else (s.login_id,
                                                                                             s.login_pw[:-1])
        elif key is Key.ENTER and step == "tech_id" and s.login_id:
            s.login_field = "tech_pw"
        elif key is Key.ENTER and step == "tech_pw" and s.login_pw:
            self._log_in(core)
        elif key is Key.F1 and step == "tech_ok" and s.user is not None:
            user = s.user.user_id
            journal.accept_damage(user)
            s.user, s.login_id, s.login_field, s.notice = None, "", "id", (core.say("journal.recovered", user=user),)
            core.fire("retry_boot")
            start(core)
            return
        core.refresh()

    def _log_in(self, core: TerminalCore) -> None:
        s = core.session
        result = core.services.users.login(s.login_id, s.login_pw)
        s.login_pw = ""
        if result.user is None:
            s.error = core.say(result.message, **result.args)
            core.audit(result.audit_action, result.detail, result.known_id or "?")
        elif not allowed(result.user.role, Action.JOURNAL_RECOVERY):
            s.error, s.login_field = core.say("journal.tech_only"), "tech_id"
            core.audit("refused", Action.JOURNAL_RECOVERY.value, result.user.user_id)
        else:
            s.user, s.login_field, s.error = result.user, "tech_ok", None
            core.audit("login", f"{result.user.role} journal recovery", result.user.user_id)
        s.login_id = "" if s.user is None else s.login_id
