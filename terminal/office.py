"""Key handling of the cashier and supervisor functions, mixed into ``TerminalApp``: the role-checked home menu,
plan advice, history and reprint, shift summary, user management, audit log, diagnostics, own password, the
language key, and the periodic background health check.

Runs on the app thread like every ``_key_<state>`` handler; slow work (printing, device checks) goes through
``_spawn`` and comes back as ``_done_<kind>``. Every sensitive action is written to the audit log.

>>> OfficeKeys.__name__
'OfficeKeys'
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emv.errors import DeviceError, PosError
from flows.advice import MAX_MONTHS, Need, advise
from flows.messages import Msg, next_lang, say, t
from flows.money import format_money
from flows.ports import Plan, ReceiptLine
from flows.pricing import CHANNEL_LABELS, quote
from flows.receipt import receipt_from_json
from terminal.audit import AuditLog
from terminal.config import Settings
from terminal.diagnostics import Check, faults, run_checks
from terminal.history import HistoryFilter, duplicate, search, shift_summary
from terminal.machine import State
from terminal.receipts import facts_for, print_lines
from terminal.roles import HOME_MENU, Action, Role, allowed, roles_for
from terminal.screens import Key
from terminal.services import Services
from terminal.views import PRINTABLE, Session

__all__ = ["OfficeKeys", "HealthDue", "HealthResult"]

log = logging.getLogger("terminal.office")

_HOME_TRIGGERS = {"1": "start_topup", "2": "start_balance", "3": "open_history", "4": "open_shift",
                  "5": "open_users", "6": "open_audit", "7": "open_diagnostics", "8": "open_password"}
_ROLE_KEYS = {"1": Role.CASHIER, "2": Role.SUPERVISOR, "3": Role.TECHNICIAN}


@dataclass(frozen=True)
class HealthDue:
    """The background timer says: time for a device check (if the terminal is idle)."""


@dataclass(frozen=True)
class HealthResult:
    checks: tuple[Check, ...]


class OfficeKeys:
    """Mixin: needs the app's session, services, ``_fire``, ``_refresh``, ``_spawn`` and ``_events``."""

    session: Session
    services: Services
    settings: Settings
    state: State
    audit: AuditLog
    _fire: Callable[[str], None]
    _refresh: Callable[[], None]
    _spawn: Callable[[str, Callable[[], Any]], None]
    _post: Callable[[object], None]
    device_check_lock: threading.Lock

    # --- helpers --------------------------------------------------------------------------------------------

    def _say(self, key: str, **args: Any) -> str:
        return t(key, self.session.lang, **args)

    def _audit(self, action: str, detail: str = "", user_id: str | None = None) -> None:
        who = user_id or (self.session.user.user_id if self.session.user else "-")
        self.audit.record(who, action, detail)

    def _role(self) -> str:
        return self.session.user.role if self.session.user else ""

    def _permit(self, action: Action) -> bool:
        """True when the logged-in user may; otherwise says who may, audits the refusal, returns False."""
        if allowed(self._role(), action):
            return True
        who = "_".join(r.value for r in roles_for(action))
        self.session.error = self._say("home.refused", role=Msg(f"role.{self._role()}"), allowed=Msg(f"role.{who}"))
        self._audit("refused", action.value)
        self._refresh()
        return False

    # --- home -----------------------------------------------------------------------------------------------

    def _home_menu(self, key: Key) -> None:
        s = self.session
        s.error, s.office.info = None, None
        if key in (Key.D9, Key.CANCEL):
            self._audit("logout")
            s.user = None
            self._fire("logout")
            return
        entry = next((e for e in HOME_MENU if e[0] == key.value), None)
        if entry is None or not self._permit(entry[1]):
            return
        if key is Key.D0:
            s.lang = next_lang(s.lang)
            self._refresh()
            return
        s.reset_sale()
        s.notice = ()
        s.purpose = "balance" if key is Key.D2 else "topup"
        opener = getattr(self, f"_open_{_HOME_TRIGGERS[key.value]}", None)
        if opener is not None:
            opener()
        self._fire(_HOME_TRIGGERS[key.value])

    def _open_open_history(self) -> None:
        o = self.session.office
        o.history_field, o.history_values, o.history_results = 0, ["", "", "", ""], []

    def _open_open_shift(self) -> None:
        o = self.session.office
        o.shift_day = dt.date.today().isoformat()
        mine = "" if allowed(self._role(), Action.SHIFT_ALL) else self._uid()
        o.shift = shift_summary(self.services.journal, o.shift_day, mine)

    def _open_open_users(self) -> None:
        o = self.session.office
        o.users, o.adding, o.user_entry = self.services.users.list_users(), "", ""

    def _open_open_audit(self) -> None:
        self.session.office.audit = self.audit.recent()

    def _open_open_diagnostics(self) -> None:
        self.session.office.diagnostics = None
        self._spawn("diagnostics", self._check_devices)

    def _open_open_password(self) -> None:
        o = self.session.office
        o.password_field, o.password_values = 0, ["", "", ""]

    def _uid(self) -> str:
        return self.session.user.user_id if self.session.user else ""

    def _go_home(self, _key: Key | None = None) -> None:
        self.session.error = None
        self._fire("home")

    # --- plan choice and advice -----------------------------------------------------------------------------

    def _pick_plan(self, plan: Plan) -> None:
        """Quote ``plan`` on the first channel and go on to the channel choice (or say why not)."""
        s = self.session
        q = quote(plan, next(iter(CHANNEL_LABELS)), self.settings.fees, self.settings.terminal.max_amount_minor)
        if q.error:
            s.error = say(q.error, s.lang)
            self._refresh()
        else:
            s.quote, s.error = q, None
            self._fire("plan_chosen")

    def _open_advice(self) -> None:
        o = self.session.office
        o.advice, o.advice_field, o.advice_values, self.session.error = None, 0, ["", "", "", ""], None
        self._fire("advise")

    def _key_advice(self, key: Key) -> None:
        s, o = self.session, self.session.office
        if o.advice is not None:
            if key is Key.ENTER and o.advice and o.advice.single is not None:
                self._pick_plan(o.advice.single)
                return
            if key is Key.CANCEL:
                o.advice, o.advice_field = None, 0
            self._refresh()
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
            self._fire("back")
            return
        elif key is Key.ENTER and o.advice_field < 3:
            o.advice_field += 1
        elif key is Key.ENTER:
            data, sms, voice = (int(v or 0) for v in o.advice_values[:3])
            months = int(o.advice_values[3] or 1)
            if not 1 <= months <= MAX_MONTHS:
                s.error = self._say("advice.bad_months")
            else:
                s.error = None
                o.advice = advise(s.plans, Need(data_mb=data * 1024, sms=sms, voice_min=voice, months=months)) \
                    or False
        self._refresh()

    # --- history and reprint --------------------------------------------------------------------------------

    def _key_history(self, key: Key) -> None:
        s, o = self.session, self.session.office
        value = o.history_values[o.history_field]
        limits = (8, 7, 8, 1)
        if key.digit is not None and len(value) < limits[o.history_field]:
            o.history_values[o.history_field] = value + key.digit
        elif key is Key.CLEAR:
            o.history_values[o.history_field] = value[:-1]
        elif key is Key.F1:
            o.history_field = (o.history_field + 1) % 4
        elif key is Key.CANCEL and value:
            o.history_values[o.history_field] = ""
        elif key is Key.CANCEL:
            self._go_home()
            return
        elif key is Key.ENTER:
            found = self._search()
            if found is not None:
                o.history_results, s.error = found, None
                self._fire("searched")
                return
        self._refresh()

    def _search(self) -> list[Any] | None:
        s, o = self.session, self.session.office
        tail, amount, date, channel = o.history_values
        day = ""
        if date:
            try:
                day = dt.datetime.strptime(date, "%Y%m%d").date().isoformat()
            except ValueError:
                s.error = self._say("history.field_date")
                return None
        channels = list(CHANNEL_LABELS)
        if channel and not 1 <= int(channel) <= len(channels):
            s.error = self._say("history.field_channel", channels=", ".join(channels))
            return None
        mine = "" if self._role() == Role.SUPERVISOR else self._uid()
        return search(self.services.journal, HistoryFilter(
            sim_tail=tail, amount_minor=int(amount) if amount else None, day=day,
            channel=channels[int(channel) - 1] if channel else "", cashier_id=mine))

    def _key_history_list(self, key: Key) -> None:
        o = self.session.office
        if key is Key.CANCEL:
            self._fire("back")
        elif key.digit is not None and 1 <= int(key.digit) <= min(9, len(o.history_results)):
            o.history_pick, o.detail_lang, o.info = int(key.digit) - 1, "", None
            self._fire("open_detail")

    def _key_history_detail(self, key: Key) -> None:
        s, o = self.session, self.session.office
        if key is Key.CANCEL:
            s.error, o.info = None, None
            self._fire("back")
        elif key is Key.F1:
            o.detail_lang = next_lang(o.detail_lang or s.lang)
            self._refresh()
        elif key is Key.ENTER and self._permit(Action.REPRINT):
            rec = o.history_results[o.history_pick]
            lines = self._reprint_lines(rec)
            if lines is None:
                s.error = self._say("history.no_receipt")
                self._refresh()
                return
            self._audit("reprint", f"txn {rec.txn_id} order {rec.order_id}")
            s.error, o.info = None, None
            self._spawn("reprint", lambda: self.services.printer.print_receipt(lines))
            self._refresh()

    def _reprint_lines(self, rec: Any) -> tuple[ReceiptLine, ...] | None:
        """The stored receipt word for word; rebuilt from the journal when another language was chosen or the
        receipt was never printed (only for outcomes that have a receipt)."""
        o = self.session.office
        if rec.receipt and not o.detail_lang:
            return duplicate(receipt_from_json(rec.receipt), self.session.lang)
        status = {"completed": "completed", "topup_pending": "pending", "reversed": "reversed",
                  "reversal_pending": "reversal_pending"}.get(rec.state)
        if status not in PRINTABLE:
            return None
        lang = o.detail_lang or self.session.lang
        return duplicate(print_lines(facts_for(self.settings, rec, None, lang=lang)), lang)

    def _done_reprint(self, _result: Any, error: BaseException | None) -> None:
        s = self.session
        if error is None:
            s.office.info = self._say("history.reprinted")
        else:
            s.error = str(error) if isinstance(error, DeviceError) else self._say("boot.failed", error=error)
        self._refresh()

    # --- shift summary --------------------------------------------------------------------------------------

    def _key_shift(self, key: Key) -> None:
        o = self.session.office
        if key is Key.CANCEL:
            self._go_home()
        elif key is Key.ENTER:
            lines = [ReceiptLine(self._say("shift.title", day=o.shift_day), bold=True)]
            lines += [ReceiptLine(line) for line in self._shift_lines()]
            self._spawn("reprint", lambda: self.services.printer.print_receipt(lines))

    def _shift_lines(self) -> list[str]:
        return [self._say("shift.line", cashier=r.cashier_id, count=r.sales, total=format_money(r.sales_minor),
                          reversed=r.reversed) for r in self.session.office.shift] or [self._say("shift.none")]

    # --- users ----------------------------------------------------------------------------------------------

    def _key_users(self, key: Key) -> None:
        s, o = self.session, self.session.office
        if o.adding:
            self._adding_user(key)
        elif key is Key.CANCEL:
            self._go_home()
            return
        elif key is Key.F1:
            o.adding, o.add_id, o.add_role, o.user_entry, o.info = "id", "", "", "", None
        elif key.digit is not None and 1 <= int(key.digit) <= min(9, len(o.users)):
            o.user_pick, o.user_entry, o.info, s.error = o.users[int(key.digit) - 1].user_id, "", None, None
            self._fire("open_user")
            return
        self._refresh()

    def _adding_user(self, key: Key) -> None:
        s, o = self.session, self.session.office
        if key is Key.CANCEL:
            o.adding, s.error = "", None
        elif o.adding == "id" and key.digit is not None and len(o.add_id) < 6:
            o.add_id += key.digit
        elif o.adding == "id" and key is Key.ENTER and o.add_id:
            o.adding = "role"
        elif o.adding == "role" and key.value in _ROLE_KEYS:
            o.add_role, o.adding = _ROLE_KEYS[key.value].value, "password"
        elif o.adding == "password" and key.digit is not None and len(o.user_entry) < 12:
            o.user_entry += key.digit
        elif key is Key.CLEAR:
            o.add_id, o.user_entry = (o.add_id[:-1], "") if o.adding == "id" else (o.add_id, o.user_entry[:-1])
        elif o.adding == "password" and key is Key.ENTER:
            done = self.services.users.add(o.add_id, o.add_role, o.user_entry)
            o.user_entry = ""
            if done.ok:
                self._audit("user_add", f"{o.add_id} {o.add_role}")
                o.adding, o.info, s.error = "", self._say(done.message, **done.args), None
                o.users = self.services.users.list_users()
            else:
                s.error = self._say(done.message, **done.args)

    def _key_user_edit(self, key: Key) -> None:
        s, o = self.session, self.session.office
        users = self.services.users
        done = None
        if key is Key.CANCEL:
            o.users, s.error, o.info = users.list_users(), None, None
            self._fire("back")
            return
        if key.digit is not None and len(o.user_entry) < 12:
            o.user_entry += key.digit
        elif key is Key.CLEAR:
            o.user_entry = o.user_entry[:-1]
        elif key is Key.ENTER and o.user_entry:
            done, action = users.reset_password(o.user_pick, o.user_entry), "password_reset"
            o.user_entry = ""
        elif key is Key.F2:
            done, action = users.unlock(o.user_pick), "unlock"
        elif key is Key.F3 and o.user_pick != self._uid():  # nobody changes their own role
            current = users.get(o.user_pick)
            roles = list(Role)
            role = roles[(roles.index(Role(current.role)) + 1) % len(roles)] if current else Role.CASHIER
            done, action = users.set_role(o.user_pick, role.value), "role_change"
        if done is not None:
            if done.ok:
                self._audit(action, f"{o.user_pick} {done.args.get('role', '')}".strip())
                o.info, s.error = self._say(done.message, **{k: Msg(f"role.{v}") if k == "role" else v
                                                             for k, v in done.args.items()}), None
                o.users = users.list_users()
            else:
                s.error = self._say(done.message, **done.args)
        self._refresh()

    # --- audit, diagnostics, own password -------------------------------------------------------------------

    def _key_audit(self, key: Key) -> None:
        if key in (Key.CANCEL, Key.ENTER):
            self._go_home()

    def _check_devices(self) -> list[Check]:
        with self.device_check_lock:
            return run_checks(self.services)

    def _key_diagnostics(self, key: Key) -> None:
        if key is Key.CANCEL:
            self._go_home()
        elif key is Key.ENTER and self.session.office.diagnostics is not None:
            self._open_open_diagnostics()
            self._refresh()

    def _done_diagnostics(self, result: list[Check] | None, error: BaseException | None) -> None:
        checks = result or []
        self.session.office.diagnostics = checks
        self.session.health = tuple(faults(checks))
        if error is not None:
            self.session.error = self._say("boot.failed", error=type(error).__name__)
        self._audit("diagnostics", f"{sum(not c.ok for c in checks)} fault(s)")
        self._refresh()

    def _key_password(self, key: Key) -> None:
        s, o = self.session, self.session.office
        value = o.password_values[o.password_field]
        if key is Key.CANCEL:
            self._go_home()
            return
        if key.digit is not None and len(value) < 12:
            o.password_values[o.password_field] = value + key.digit
        elif key is Key.CLEAR:
            o.password_values[o.password_field] = value[:-1]
        elif key is Key.ENTER and o.password_field < 2:
            o.password_field += 1
        elif key is Key.ENTER:
            old, new, again = o.password_values
            o.password_field, o.password_values = 0, ["", "", ""]
            if new != again:
                s.error = self._say("password.mismatch")
            else:
                done = self.services.users.change_own_password(self._uid(), old, new)
                if done.ok:
                    self._audit("password_change")
                    s.error, s.notice = None, (self._say("password.changed"),)
                    self._fire("home")
                    return
                s.error = self._say(done.message, **done.args)
        self._refresh()

    # --- background health check ----------------------------------------------------------------------------

    def start_health_timer(self, interval_s: float, stopping: threading.Event) -> None:
        """Post ``HealthDue`` every ``interval_s`` until ``stopping`` is set (0 disables the timer)."""
        if interval_s <= 0:
            return

        def tick() -> None:
            while not stopping.wait(interval_s):
                self._post(HealthDue())

        threading.Thread(target=tick, name="terminal-health", daemon=True).start()

    def on_office_event(self, event: object) -> None:
        if isinstance(event, HealthDue) and self.state in (State.HOME, State.LOGIN):
            if self.device_check_lock.locked():
                return  # the previous check is still asking

            def work() -> None:
                try:
                    self._post(HealthResult(tuple(self._check_devices())))
                except PosError as exc:  # run_checks turns ours into lines; anything else is logged
                    log.warning("background check failed: %s", exc)

            threading.Thread(target=work, name="terminal-health-check", daemon=True).start()
        elif isinstance(event, HealthResult):
            before = self.session.health
            self.session.health = tuple(faults(list(event.checks)))
            if before != self.session.health and self.state in (State.HOME, State.LOGIN):
                self._refresh()
