"""The terminal application: one thread owns the state machine and the session; work runs beside it.

Keys, progress reports and finished work all arrive as events on one queue, so the machine is only ever touched
by the app thread. Anything that waits on the outside world (carrier lookup, the payment, printing, boot
recovery) runs in a worker thread and posts its result back; a generation number makes a result that arrives
after the cashier moved on (CANCEL) harmless. Every waiting screen has a deadline from the configuration.

>>> TerminalApp.__name__
'TerminalApp'
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from flows.card_payment import Step
from flows.duplicate import describe, find_duplicate, window_start
from flows.messages import Msg, Text, next_lang, say
from flows.ports import CancelToken
from flows.pricing import CHANNEL_LABELS, WALLET_CHANNELS, quote
from flows.receipt import receipt_to_json
from flows.recovery import RecoveryReport, recover
from flows.sim_number import check_sim_number
from flows.topup import TopupOrder, TopupOutcome
from flows.wallet_payment import WalletProgress
from flows.wallet_recovery import recover_wallet
from pos_errors import DeviceError, LinkError, PosError
from terminal.app_wallet import WalletScreens
from terminal.audit import AuditLog
from terminal.diagnostics import faults, run_checks
from terminal.machine import IDLE_LOGOUT, State, build_machine
from terminal.office import OfficeKeys
from terminal.office_state import OfficeState
from terminal.receipts import facts_for, print_lines
from terminal.screens import Key, Screen
from terminal.services import Services
from terminal.settings_store import SettingsStore
from terminal.supervisor import SupervisorScreens
from terminal.views import PRINTABLE, Session, keyed_kind
from terminal.views_office import render

__all__ = ["TerminalApp"]

_SWIPE_MESSAGES = {  # magstripe and chip fallback, shown on the "insert or swipe" screen (catalogue keys)
    Step.INSERT_CHIP: "swipe.insert_chip",
    Step.SWIPE_FALLBACK: "swipe.fallback",
    Step.BAD_SWIPE: "swipe.bad",
}
log = logging.getLogger("terminal.app")


@dataclass(frozen=True)
class _KeyEvent:
    key: Key


@dataclass(frozen=True)
class _Done:
    generation: int
    kind: str
    result: Any
    error: BaseException | None = None


@dataclass(frozen=True)
class _Progress:
    generation: int
    step: Step | WalletProgress | str  # a str is a message for the cashier (e.g. "not a payment code")


@dataclass(frozen=True)
class _Notice:
    """Lines from the background follow-up (recovery of pending rows) for the cashier."""

    lines: tuple[Text, ...]


_STOP = object()


class TerminalApp(WalletScreens, OfficeKeys, SupervisorScreens):
    """Construct with wired ``Services``; ``start()`` boots in the background; ``press()`` from any thread."""

    state: State  # set by the transitions machine, as are the two below
    trigger: Callable[[str], bool]
    may_trigger: Callable[[str], bool]

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.session = Session()
        self._events: queue.Queue[object] = queue.Queue()
        self._listeners: list[Callable[[Screen], None]] = []
        self._generation = 0
        self._cancel = CancelToken()
        self._deadline: float | None = None
        self._thread = threading.Thread(target=self._loop, name="terminal-app", daemon=True)
        # Held by a payment from its pre-sale recovery to its outcome, and by the background follow-up: recovery
        # never touches a transaction that is still in flight.
        self._money = threading.Lock()
        self._follow_up = threading.Thread(target=self._follow_up_loop, name="terminal-follow-up", daemon=True)
        self.audit = services.audit or AuditLog(services.journal)
        self.settings_store = SettingsStore(services.journal)
        self._apply_settings(self.settings_store.apply(services.settings))  # a supervisor's changes win
        self.device_check_lock = threading.Lock()  # a background device check and a payment never overlap
        self._stopping = threading.Event()
        self.machine = build_machine(self)
        self.screen: Screen = render(State.BOOT, self.session)

    # --- outside API ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._follow_up.start()
        self.start_health_timer(self.settings.timeouts.health_s, self._stopping)

    def stop(self) -> None:
        self._stopping.set()
        self._cancel.cancel()
        self._events.put(_STOP)
        self._thread.join(timeout=5)

    def press(self, key: Key | str) -> None:
        self._events.put(_KeyEvent(Key(key)))

    def _post(self, event: object) -> None:
        self._events.put(event)

    def add_listener(self, callback: Callable[[Screen], None]) -> None:
        self._listeners.append(callback)
        callback(self.screen)

    # --- machine callbacks ----------------------------------------------------------------------------------

    def _fire(self, trigger: str) -> None:
        """Every transition goes through here: one typed door into the machine's table."""
        self.trigger(trigger)

    def on_state_change(self) -> None:
        log.info("state %s", self.state.value)
        timeouts = self.settings.timeouts
        seconds = (timeouts.idle_s if self.state in IDLE_LOGOUT else timeouts.lookup_s if self.state is State.SIM_LOOKUP
                   else timeouts.result_s if self.state in (State.RESULT, State.BALANCE) else None)
        self._deadline = time.monotonic() + seconds if seconds else None
        self._refresh()

    def _refresh(self) -> None:
        self.screen = render(self.state, self.session)
        for callback in list(self._listeners):
            try:
                callback(self.screen)
            except Exception:  # a broken display must not stop the till
                log.exception("display listener failed")

    # --- the loop -------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        self._run_boot()
        while True:
            timeout = None if self._deadline is None else max(0.0, self._deadline - time.monotonic())
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                self._deadline = None
                self._on_timeout()
                continue
            if event is _STOP:
                return
            try:
                self._dispatch(event)
            except PosError as exc:  # a fault in one step shows on the screen; the terminal carries on
                log.warning("step failed: %s", exc)
                self.session.error = str(exc)
                self._refresh()
            except Exception:  # a bug must not freeze the till: log it whole, tell the cashier, keep going
                log.exception("internal error in state %s", self.state.value)
                self.session.error = self._say("app.internal_error")
                with contextlib.suppress(Exception):
                    self._refresh()

    def _dispatch(self, event: object) -> None:
        if isinstance(event, _KeyEvent):
            handler = getattr(self, f"_key_{self.state.value}", None)
            if handler is not None:
                handler(event.key)
            if self.state in IDLE_LOGOUT:  # any key is activity: the idle logout counts from the last key
                self._deadline = time.monotonic() + self.settings.timeouts.idle_s
        elif isinstance(event, _Progress) and event.generation == self._generation:
            self._on_progress(event.step)
        elif isinstance(event, _Done) and event.generation == self._generation:
            getattr(self, f"_done_{event.kind}")(event.result, event.error)
        elif isinstance(event, _Notice):  # shown on the login and home screens, now or when next there
            self.session.notice = tuple(self._say("followup.line", line=line) for line in event.lines)
            self._refresh()

        else:
            self.on_office_event(event)

    def _follow_up_loop(self) -> None:
        """Background: every ``follow_up_s`` finish pending top-ups and reversals while no payment runs."""
        while not self._stopping.wait(self.settings.carrier.follow_up_s):
            try:
                self._follow_up_once()
            except Exception:  # a failed round must not end the follow-ups; the next round tries again
                log.exception("follow-up failed")

    def _follow_up_once(self) -> None:
        journal = self.services.journal
        if self.state in (State.BOOT, State.OUT_OF_SERVICE) or not (journal.open_transactions()
                                                                     or journal.saf_items()):
            return
        if not self._money.acquire(blocking=False):  # a payment (or settlement, void) is running
            return
        try:
            report = self._recover()
        finally:
            self._money.release()
        if report.lines:
            self._events.put(_Notice(report.lines))

    def _recover(self) -> RecoveryReport:
        """Finish or undo every open card and wallet transaction (the caller holds ``_money``)."""
        sv = self.services
        report = recover(sv.journal, sv.host, sv.carrier, terminal_id=self.settings.terminal.id,
                         merchant_id=self.settings.terminal.merchant_id)
        report = replace(report, lines=(*report.lines, *self._drain_saf()))  # after reversals: see flows.saf
        if sv.wallet is not None and sv.wallet_topup is not None:
            lines, still_open = recover_wallet(sv.journal, sv.wallet, sv.carrier, sv.wallet_topup.clock)
            report = replace(report, lines=(*report.lines, *lines), still_open=report.still_open + still_open)
        return report

    def _refuse_new_sale(self) -> TopupOutcome | None:
        """Before taking new money: finish what is open; while the bank still owes a reversal, no new sale."""
        if self._recover().reversals_open:
            return TopupOutcome("failed", Msg("pay.reversal_open"), 0, "")
        return None

    def _spawn(self, kind: str, work: Callable[[], Any]) -> None:
        self._generation += 1
        generation = self._generation

        def run() -> None:
            try:
                self._events.put(_Done(generation, kind, work()))
            except BaseException as exc:  # noqa: BLE001 - reported to the app thread, which decides
                self._events.put(_Done(generation, kind, None, exc))

        threading.Thread(target=run, name=f"terminal-{kind}", daemon=True).start()

    def _progress_poster(self, generation: int) -> Callable[[Any], None]:
        """For a worker: post progress (a Step, a WalletProgress or a message) tagged with its generation."""
        return lambda item: self._events.put(_Progress(generation, item))

    def _abandon_work(self) -> None:
        self._generation += 1

    def _on_timeout(self) -> None:
        s = self.session
        if self.state is State.SIM_LOOKUP:
            self._abandon_work()
            s.error = self._say("sim.timeout")
            self._fire("sim_problem")
        elif self.state in (State.RESULT, State.BALANCE):
            s.reset_sale()
            self._fire("home")
        elif self.state is not State.LOGIN and self.may_trigger("logout"):
            s.reset_sale()
            self._audit("logout", "idle")
            s.user, s.notice, s.error, s.office = None, (self._say("login.idle_logout"),), None, OfficeState()
            self._fire("logout")

    # --- boot -----------------------------------------------------------------------------------------------

    def _run_boot(self) -> None:
        self._spawn("boot", self._boot_work)

    def _boot_work(self) -> tuple[bool, tuple[str, ...]]:
        sv = self.services
        if not sv.journal.check_integrity():
            return False, (self._say("boot.journal_damaged"),)
        self.session.health = tuple(faults(run_checks(sv)))  # shown on the home screen until fixed
        with self._money:
            report = self._recover()
        return True, tuple(self._say("boot.recovery", line=line) for line in report.lines)

    def _done_boot(self, result: tuple[bool, tuple[str, ...]] | None, error: BaseException | None) -> None:
        ok, lines = result if result else (False, (self._say("boot.failed", error=error),))
        self.session.notice = lines
        if ok:
            self._fire("booted")
        else:
            self.session.error = lines[0] if lines else self._say("boot.failed", error="")
            self._fire("boot_failed")

    def _key_out_of_service(self, key: Key) -> None:
        if key is Key.ENTER:
            self.session.error = None
            self._fire("retry_boot")
            self._run_boot()

    # --- login and home -------------------------------------------------------------------------------------

    def _key_login(self, key: Key) -> None:
        s = self.session
        field = "login_id" if s.login_field == "id" else "login_pw"
        if key.digit is not None and len(getattr(s, field)) < 12:
            setattr(s, field, getattr(s, field) + key.digit)
        elif key is Key.CLEAR:
            setattr(s, field, getattr(s, field)[:-1])
        elif key is Key.CANCEL:
            s.login_id, s.login_pw, s.login_field, s.error = "", "", "id", None
        elif key is Key.ENTER and s.login_field == "id" and s.login_id:
            s.login_field = "pw"
        elif key is Key.ENTER and s.login_field == "pw" and s.login_pw:  # an empty password is no attempt
            result = self.services.users.login(s.login_id, s.login_pw)
            s.login_pw, s.login_field = "", "pw" if result.user is None else "id"
            if result.user is None:
                s.error = self._say(result.message, **result.args)
                self._audit("lockout" if result.locked_now else "login_failed", result.message, s.login_id)
            else:
                s.user, s.login_id, s.error, s.notice = result.user, "", None, ()
                log.info("login %s", result.user.user_id)
                self._audit("login", result.user.role)
                self._fire("logged_in")
                return
        self._refresh()

    def _key_home(self, key: Key) -> None:
        self._home_menu(key)  # the role-checked menu (terminal.office)

    # --- SIM entry and lookup -------------------------------------------------------------------------------

    def _key_sim_entry(self, key: Key) -> None:
        s = self.session
        if key.digit is not None and len(s.entry) < 20:
            s.entry, s.error, s.warning_shown = s.entry + key.digit, None, False
        elif key is Key.CLEAR:
            s.entry, s.error, s.warning_shown = s.entry[:-1], None, False
        elif key is Key.CANCEL:
            if s.entry:
                s.entry, s.error = "", None
            else:
                s.error = None
                self._fire("back")
                return
        elif key is Key.ENTER:
            check = check_sim_number(s.entry)
            if check.error is not None:
                s.error = say(check.error, s.lang)
            elif check.warning and not s.warning_shown:
                s.error, s.warning_shown = say(check.warning, s.lang), True
            else:
                s.error = None
                self._fire("lookup")
                self._spawn("lookup", lambda: self._lookup_work(check.number))
                return
        self._refresh()

    def _lookup_work(self, number: str) -> tuple[Any, list[Any]]:
        carrier = self.services.carrier
        sim = carrier.lookup_sim(number)
        if sim is None or sim.status != "active" or self.session.purpose == "balance":
            return sim, []
        return sim, list(carrier.list_plans(sim.iccid))

    def _done_lookup(self, result: tuple[Any, list[Any]] | None, error: BaseException | None) -> None:
        s = self.session
        if error is not None or result is None:
            s.error = (self._say("sim.unreachable", error=error) if isinstance(error, LinkError | PosError)
                       else self._say("sim.lookup_failed", error=error))
            self._fire("sim_problem")
            return
        sim, plans = result
        if sim is None:
            s.error = self._say("sim.unknown")
            self._fire("sim_problem")
        elif s.purpose == "balance":  # the query shows any status, active or not
            s.sim, s.sim_after, s.error = sim, sim, None
            self._fire("status_found")
        elif sim.status != "active":
            s.error = self._say("sim.not_active", status=sim.status.upper())
            self._fire("sim_problem")
        else:
            s.sim, s.plans, s.error = sim, plans, None
            self._fire("sim_found")

    def _key_sim_lookup(self, key: Key) -> None:
        if key is Key.CANCEL:
            self._abandon_work()
            self._fire("back")

    def _key_sim_details(self, key: Key) -> None:
        if key is Key.CANCEL:
            self.session.error = None
            self._fire("back")
        elif key is Key.ENTER and self.session.plans:
            self._fire("choose_plan")

    # --- plan, channel, confirm -----------------------------------------------------------------------------

    def _key_plan_select(self, key: Key) -> None:
        s = self.session
        if key is Key.CANCEL:
            s.error = None
            self._fire("back")
        elif key is Key.D0 and s.plans:
            self._open_advice()
        elif key.digit is not None and 1 <= int(key.digit) <= min(9, len(s.plans)):
            self._pick_plan(s.plans[int(key.digit) - 1])

    def _key_channel_select(self, key: Key) -> None:
        s = self.session
        channels = list(CHANNEL_LABELS)
        if key is Key.CANCEL:
            self._fire("back")
        elif key.digit is not None and 1 <= int(key.digit) <= len(channels) and s.quote is not None:
            channel = channels[int(key.digit) - 1]
            spent = self.services.journal.spent_today(s.sim.iccid, channel) if s.sim else 0
            q = quote(s.quote.plan, channel, self.settings.fees, self.settings.terminal.max_amount_minor,
                      spent_today_minor=spent)
            if q.error:
                s.error = say(q.error, s.lang)
                self._refresh()
            else:
                s.quote, s.error, s.limits_line = q, None, self._limits_line(channel)
                self._fire("channel_chosen")

    def _key_confirm(self, key: Key) -> None:
        s = self.session
        if key.digit is not None and len(s.confirm_digits) < 4:
            s.confirm_digits, s.error = s.confirm_digits + key.digit, None
            self._refresh()
        elif key is Key.CLEAR:
            s.confirm_digits = s.confirm_digits[:-1]
            self._refresh()
        elif key is Key.CANCEL:
            s.confirm_digits, s.error = "", None
            self._fire("back")
        elif key is Key.ENTER and s.sim is not None and s.quote is not None and s.user is not None:
            keyed = s.sim.msisdn if keyed_kind(s) == "msisdn" else s.sim.iccid
            if s.confirm_digits != keyed[-4:]:  # the cashier read the number back: a misdirected top-up stops here
                s.confirm_digits, s.error = "", self._say("confirm.mismatch")
                self._refresh()
                return
            if self._earlier_same_sale():
                self._fire("duplicate")
                return
            self._start_payment()

    def _earlier_same_sale(self) -> bool:
        s = self.session
        if s.sim is None or s.quote is None:
            return False
        now, window = dt.datetime.now(), self.settings.terminal.duplicate_window_s
        recent = self.services.journal.query("iccid = ? AND created_at >= ?",
                                             (s.sim.iccid, window_start(now, window)))
        earlier = find_duplicate(recent, iccid=s.sim.iccid, total_minor=s.quote.total_minor, now=now,
                                 window_s=window)
        s.duplicate = tuple(say(line, s.lang) for line in describe(earlier, now)) if earlier else ()
        return earlier is not None

    def _key_duplicate_warning(self, key: Key) -> None:
        if key is Key.CANCEL:
            self.session.duplicate = ()
            self._fire("back")
        elif key is Key.F1:  # deliberately not ENTER: a bounced ENTER must never pay twice
            log.info("duplicate confirmed by %s", self.session.user.user_id if self.session.user else "?")
            self._start_payment()

    def _start_payment(self) -> None:
        s = self.session
        if s.sim is not None and s.quote is not None and s.user is not None:
            order = TopupOrder(s.sim.iccid, s.sim.msisdn, s.quote, s.user.user_id)
            self._cancel = CancelToken()
            if s.quote.channel in WALLET_CHANNELS:
                self._fire("scan_code")
                generation = self._generation + 1
                self._spawn("payment", lambda: self._locked(self._scan_work, order, generation))
                return
            self._fire("confirmed")
            generation = self._generation + 1  # the one _spawn is about to hand out
            self._spawn("payment", lambda: self._payment_work(order, generation))

    # --- payment --------------------------------------------------------------------------------------------

    def _payment_work(self, order: TopupOrder, generation: int) -> Any:
        return self._locked(self._pay, order, generation)

    def _locked(self, work: Callable[[TopupOrder, int], Any], order: TopupOrder, generation: int) -> Any:
        """One money movement at a time: the background follow-up waits while a sale runs."""
        with self._money:
            return work(order, generation)

    def _pay(self, order: TopupOrder, generation: int) -> Any:
        sv = self.services
        with self.device_check_lock:  # let a background device check finish before the devices are used
            pass
        if sv.journal.open_transactions():  # finish or undo what is still open before taking new money
            refused = self._refuse_new_sale()
            if refused is not None:
                return refused, None
        outcome = sv.topup.run_card(order, lambda step: self._events.put(_Progress(generation, step)),
                                    self._cancel)
        return outcome, self._fresh_balance(order, outcome)

    def _fresh_balance(self, order: TopupOrder, outcome: TopupOutcome) -> Any:
        sv = self.services
        fresh = None
        if outcome.status == "completed":  # what the customer now has, straight from the carrier
            try:
                fresh = sv.carrier.lookup_sim(order.iccid)
            except PosError as exc:
                log.info("balance refresh failed: %s", exc)
        return fresh

    def _on_progress(self, step: Step | WalletProgress | str) -> None:
        s = self.session
        if not isinstance(step, Step):
            self._on_wallet_progress(step)
            return
        trigger = {Step.READING_CARD: "card_reading", Step.PIN_ENTRY: "pin_entry",
                   Step.AUTHORIZING: "authorizing"}.get(step)
        if step is Step.WRONG_PIN:
            s.error = self._say("pay.wrong_pin")
        elif step in _SWIPE_MESSAGES:
            s.error = self._say(_SWIPE_MESSAGES[step])
            if self.may_trigger("card_again"):  # back to "insert or swipe" after a failed chip
                self._fire("card_again")
                return
        elif step is Step.READING_CARD and s.error in {self._say(k) for k in _SWIPE_MESSAGES.values()}:
            s.error = None  # the card is being read now: the earlier hint is over
        elif step is Step.TOPPING_UP:
            s.progress, s.error = self._say("pay.topping_up"), None
        elif step is Step.REVERSING:
            s.progress = self._say("pay.reversing")
        elif step is Step.AUTHORIZING:
            s.error = None
        if trigger and self.may_trigger(trigger):
            self._fire(trigger)
        else:
            self._refresh()

    def _done_payment(self, done: Any, error: BaseException | None) -> None:
        s = self.session
        result, fresh = done if done is not None else (None, None)
        if fresh is not None:
            s.sim_after = fresh
        if error is not None:
            log.error("payment flow crashed: %s", type(error).__name__)
            s.error = self._say("pay.crashed", error=type(error).__name__)
        s.outcome = result
        s.progress = ""
        if result is not None and result.status in ("cancelled", "declined", "failed"):
            s.error = None
        self._fire("finished")

    def _cancel_payment(self, key: Key) -> None:
        if key is Key.CANCEL:
            self._cancel.cancel()
            self.services.pinpad.abort()

    _key_insert_card = _cancel_payment
    _key_card_reading = _cancel_payment
    _key_pin_entry = _cancel_payment

    def _key_processing(self, key: Key) -> None:
        if key is Key.CANCEL:
            self.session.error = self._say("pay.wait")
            self._refresh()

    # --- result, receipt, balance ---------------------------------------------------------------------------

    def _key_result(self, key: Key) -> None:
        o = self.session.outcome
        printable = o is not None and o.status in PRINTABLE
        if key is Key.F1 and printable:  # this receipt's language, whatever the screen's
            self.session.receipt_lang = next_lang(self.session.receipt_lang or self.session.lang)
            self._refresh()
        elif key is Key.ENTER and printable:
            self._fire("print_receipt")
            self._start_printing()
        elif key in (Key.ENTER, Key.CANCEL):
            self.session.reset_sale()
            self._fire("home")

    def _start_printing(self) -> None:
        s = self.session
        if s.outcome is None or s.sim is None:
            return
        record = self.services.journal.get(s.outcome.txn_id)
        lines = print_lines(facts_for(self.settings, record, s.outcome, lang=s.receipt_lang or s.lang))
        self.services.journal.update(record.txn_id, record.state, receipt=receipt_to_json(lines))
        self._spawn("print", lambda: self.services.printer.print_receipt(lines))

    def _done_print(self, _result: Any, error: BaseException | None) -> None:
        if error is None:
            self.session.error = None
            self._fire("printed")
        else:
            msg = self.device_error_text(error) if isinstance(error, DeviceError) else repr(error)
            self.session.error = self._say("receipt.printer_error", error=msg)
            self._refresh()

    def _key_receipt(self, key: Key) -> None:
        if self.session.error and key is Key.ENTER:
            self.session.error = None
            self._refresh()
            self._start_printing()
        elif key is Key.CANCEL:
            self._abandon_work()
            self.session.reset_sale()
            self._fire("home")

    def _key_balance(self, key: Key) -> None:
        if key in (Key.ENTER, Key.CANCEL):
            self.session.reset_sale()
            self._fire("home")
