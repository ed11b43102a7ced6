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

from drivers.escpos import MESSAGES as PRINTER_MESSAGES
from flows.advice import MAX_MONTHS, Need, advise
from flows.messages import Msg, next_lang, say
from flows.money import format_money
from flows.ports import Plan, ReceiptLine
from flows.pricing import CHANNEL_LABELS, quote
from flows.receipt import receipt_from_json
from pos_errors import DeviceError, PosError
from terminal.config import Settings
from terminal.diagnostics import Check, faults, run_checks
from terminal.firmware_screen import FirmwareKeys
from terminal.history import HistoryFilter, duplicate, search, shift_summary
from terminal.machine import State
from terminal.office_state import AUDIT_PAGE, OfficeState
from terminal.receipts import facts_for, print_lines
from terminal.roles import Action, Role, allowed, menu_entry
from terminal.screens import Key
from terminal.settings_store import EDITABLE, SettingsStore
from terminal.views import PRINTABLE
from terminal.views_office import channel_numbers

__all__ = ["OfficeKeys", "HealthDue", "HealthResult"]

log = logging.getLogger("terminal.office")

_HOME_TRIGGERS = {"1": "start_topup", "2": "start_balance", "3": "open_history", "4": "open_shift",
                  "5": "open_users", "6": "open_audit", "7": "open_diagnostics", "8": "open_password",
                  "F1": "open_settings"}
_SUPERVISOR_OPENERS = {"F2": "_open_void", "F3": "_open_settlement", "F4": "_open_open_items"}


@dataclass(frozen=True)
class HealthDue:
    """The background timer says: time for a device check (if the terminal is idle)."""


@dataclass(frozen=True)
class HealthResult:
    checks: tuple[Check, ...]


class OfficeKeys(FirmwareKeys):
    """Mixin: needs the app's session, services, ``_fire``, ``_refresh``, ``_spawn`` and ``_post``."""

    state: State
    settings_store: SettingsStore
    _spawn: Callable[[str, Callable[[], Any]], None]
    _post: Callable[[object], None]
    device_check_lock: threading.Lock

    def device_error_text(self, error: BaseException) -> str:
        """A device's error in the cashier's language: the printer driver's technical texts map to catalogue keys."""
        key = next((f"printer.{k}" for k, text in PRINTER_MESSAGES.items() if str(error).startswith(text)), None)
        return self._say(key) if key else str(error)

    # --- home -----------------------------------------------------------------------------------------------

    def _home_menu(self, key: Key) -> None:
        s = self.session
        s.error, s.office.info = None, None
        if key in (Key.D9, Key.CANCEL):
            self._audit("logout")
            s.user, s.office = None, OfficeState()  # nothing typed or listed outlives the session
            self._fire("logout")
            return
        entry = menu_entry(self._role(), key.value)
        if entry is None or not self._permit(entry[1]):
            return
        if entry[1] is Action.FIRMWARE:
            s.notice = ()
            self._open_firmware()
            return
        if key is Key.D0:
            s.lang = next_lang(s.lang)
            self._refresh()
            return
        s.reset_sale()
        s.notice = ()
        s.purpose = "balance" if key is Key.D2 else "topup"
        if key.value in _SUPERVISOR_OPENERS:  # terminal.supervisor: each opener fills its screen and fires
            getattr(self, _SUPERVISOR_OPENERS[key.value])()
            return
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
        self.session.office.audit, self.session.office.audit_page = self.audit.recent(limit=500), 0

    def _open_open_diagnostics(self) -> None:
        self.session.office.diagnostics = None
        self._spawn("diagnostics", self._check_devices)

    def _open_open_password(self) -> None:
        o = self.session.office
        o.password_field, o.password_values = 0, ["", "", ""]

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
            s.error = self._say("history.field_channel", channels=channel_numbers())
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

    def _done_reprint(self, _result: Any, error: BaseException | None, done: str = "history.reprinted") -> None:
        s = self.session
        if error is None:
            s.office.info = self._say(done)
        else:
            s.error = self.device_error_text(error) if isinstance(error, DeviceError) else repr(error)
        self._refresh()

    # --- shift summary --------------------------------------------------------------------------------------

    def _key_shift(self, key: Key) -> None:
        o = self.session.office
        if key is Key.CANCEL:
            self._go_home()
        elif key is Key.ENTER:
            lines = [ReceiptLine(self._say("shift.title", day=o.shift_day), bold=True)]
            lines += [ReceiptLine(line) for line in self._shift_lines()]
            self._spawn("shift_print", lambda: self.services.printer.print_receipt(lines))

    def _done_shift_print(self, result: Any, error: BaseException | None) -> None:
        self._done_reprint(result, error, "shift.printed")

    def _shift_lines(self) -> list[str]:
        return [self._say("shift.line", cashier=r.cashier_id, count=r.sales, total=format_money(r.sales_minor),
                          reversed=r.reversed) for r in self.session.office.shift] or [self._say("shift.none")]

    # --- settings ---------------------------------------------------------------------------------------------

    def _apply_settings(self, settings: Settings) -> None:
        """Use ``settings`` from now on (the stored overrides laid over the configuration)."""
        self.settings = self.services.settings = settings
        self.services.users.lock_s = settings.security.lock_s
        self.services.users.max_failed = settings.security.max_failed

    def _open_open_settings(self) -> None:
        o = self.session.office
        o.setting_pick, o.setting_entry, o.info = 0, "", None
        o.setting_values = {name: SettingsStore.current(self.settings, name) for name in EDITABLE}

    def _key_settings(self, key: Key) -> None:
        s, o = self.session, self.session.office
        names = list(EDITABLE)
        if key is Key.CANCEL and o.setting_entry:
            o.setting_entry = ""
        elif key is Key.CANCEL:
            self._go_home()
            return
        elif key is Key.F1:
            o.setting_pick, o.setting_entry, o.info, s.error = (o.setting_pick + 1) % len(names), "", None, None
        elif key.digit is not None and len(o.setting_entry) < 6:
            o.setting_entry += key.digit
        elif key is Key.CLEAR:
            o.setting_entry = o.setting_entry[:-1]
        elif key is Key.ENTER and o.setting_entry:
            name, value = names[o.setting_pick], int(o.setting_entry)
            label, low, high = EDITABLE[name]
            old = SettingsStore.current(self.settings, name)
            try:
                self.settings_store.set(name, value)
            except ValueError:
                s.error = self._say("settings.range", name=Msg(label), low=low, high=high)
            else:
                self._apply_settings(self.settings_store.apply(self.settings))
                self._audit("settings", f"{name} {old} -> {value}")
                o.setting_values[name] = value
                o.info, s.error = self._say("settings.saved", name=Msg(label), value=value), None
            o.setting_entry = ""
        self._refresh()

    # --- audit, diagnostics -------------------------------------------------------------------

    def _key_audit(self, key: Key) -> None:
        o = self.session.office
        if key in (Key.CANCEL, Key.ENTER):
            self._go_home()
        elif key is Key.F1 and len(o.audit) > (o.audit_page + 1) * AUDIT_PAGE:  # older
            o.audit_page += 1
            self._refresh()
        elif key is Key.F2 and o.audit_page:  # newer
            o.audit_page -= 1
            self._refresh()

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
