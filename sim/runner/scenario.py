"""Headless scenarios: a TOML file of steps run against a fresh ``SimWorld`` through the real ptys and sockets.

A scenario is ``name``, an optional ``[world]`` table (config overrides, e.g. ``host.timeout_s``) and a list of
``[[steps]]``; each step is one table with one action, optionally ``timeout`` (seconds, default 10)::

    wait = "home"                         wait until the terminal shows that screen state
    keys = "01 ENTER 1111 ENTER"          terminal keypad: digit runs are typed digit by digit; ENTER, CANCEL…
    expect_text = "Approved"              the screen text contains it (waits up to timeout); list = all of them
    expect_error = "Unknown SIM"          the screen's error line contains it ("": shows any error)
    insert_card = "unionpay-debit"        put a test card in the reader; remove_card = true takes it out
    swipe_card = "stripe-only"            swipe a test card's magnetic stripe (sim/devices/stripes.py, or any chip card)
    pinpad = "1234 ENTER"                 the customer types on the PIN pad (waits until it asks for a PIN)
    expect_receipt = ["621234", "TOTAL"]  the last printed receipt contains every string
    expect_host = {approved = 1}          acquirer ledger: approved / declined / reversed / requests (0200s) /
                                          advices (0220s recorded) / refunds counts; idle_closes / race_closes
                                          (connections the host closed for idleness / as a request arrived)
    expect_saf = {queued = 1, sent = 0}   the terminal's advice queue (journal) by status
    expect_carrier = {applied = 1}        carrier ledger: applied top-ups (and reversed = N: top-ups taken back)
    expect_host_order = ["0200", "0410"]  these MTIs (received or answered) arrived in this order (gaps allowed)
    expect_journal = {state = "completed"}  the newest journal row
    set = {acquirer_unreachable = true}   fault switches: acquirer_unreachable, acquirer_response, acquirer_delay_s,
                                          acquirer_forget_last (the host loses its newest approval: totals differ),
                                          acquirer_refuse_reversals (every reversal answered 12),
                                          acquirer_refuse_voids (every void, 0400 reason 17, answered 12),
                                          acquirer_down_s (how long the .99 "host down" lasts), pinpad_auto ("1234":
                                          the customer types that PIN whenever asked),
                                          carrier_unreachable, carrier_forge_answers (a man in the middle makes
                                          every order answer "applied"; its signature fails),
                                          carrier_use_topup (true: the newest applied top-up is used, the carrier
                                          refuses to reverse it; or an order id), printer_paper_out,
                                          printer_cover_open,
                                          printer_silent (switched off), reader_unplugged, pinpad_unplugged
                                          (device stops answering), scanner_noise, scanner_unplugged,
                                          wallet_unreachable, acquirer_tls_fault ("expired" / "wrong_host" /
                                          "unknown_ca" / "": the host's certificate), acquirer_bad_mac (answers
                                          carry a wrong MAC), acquirer_expire_keys (the host forgets the working
                                          keys: next request A0), acquirer_bad_kcv (sign-on sends a wrong KCV),
                                          acquirer_seen_stan (N: the host already has this terminal's purchases
                                          1..N today, as after a journal restored from an old backup),
                                          wallet_forge_paid (a man in the middle makes every
                                          WeChat Pay / Alipay / EMV QR code payment answer "paid"; its
                                          signature fails),
                                          wallet_refund_newest (the platform refunds the newest paid order
                                          behind the terminal's back),
                                          acquirer_answer_change ("0210:4": every 0210 carries another amount;
                                          MTI 0210/0230/0410, field 3/4/41/42/49; "" ends it; a partial
                                          approval is acquirer_response = "10"), acquirer_advice_code ("96":
                                          every advice answered so, not taken; "" ends it),
                                          acquirer_same_keys (sign-on delivers one key as PIN and MAC key),
                                          acquirer_idle_timeout_s (the host closes connections idle that long),
                                          acquirer_idle_race (true: the host closes the kept connection just
                                          as the next request arrives, unread)
    fault = {device = "reader", error_rate = 1e-2, seed = 7}   line faults (pty.LineFaults keys) on one device
                                          or "all"; a table with only ``device`` cleans the line
    silence = {device = "reader", seconds = 2}   the device's output is held back that long
    unplug = "reader"                     pull the cable: the pty closes under the terminal
    replug = "reader"                     plug it back at the same path
    scan_code = {wallet = "wechat", outcome = "paid"}   show a fresh payment code to the scanner (sim.backends.wallet
                                          outcomes); scan_code = "raw text" shows exactly that text
    phone_pays = true                     the customer scans the terminal's QR with a phone: pay (false: refuse)
    expect_wallet = {paid = 1}            wallet platform orders by status: paid, refunded, cancelled, failed…
    expect_platform_calls = {wechatpay = ["/pay/micropay", "/pay/orderquery"]}   calls a platform accepted one
                                          right after the other (wechatpay: API paths; alipay: method names)
    expect_emv = {outcome = "approved", tvr = "0000000000", tsi = "F800", cvm_results = "1F0002"}
                                          the last card payment's EMV data (kernel receipt keys: outcome, tvr,
                                          tsi, cvm, cvm_results, oda, aid, app_label, status = flow status)
    expect_no_text = "Home"               the screen text does not contain it (checked once); list = none of them
    expect_audit = {action = "lockout", user = "01", count = 1}   audit log rows with that action (and user)
    reset_key_count = true                start counting terminal key presses
    expect_key_count = 25                 exactly this many terminal keys pressed since the reset
    expect_beeps = 2                      the card reader's buzzer sounded exactly this many times so far
    sleep = 0.5
    tap = "quickpass-debit"               hold a contactless card or phone over the reader (sim/devices/
                                          contactless_cards.py TAP_KEYS); a table adds collide_with = "<key>"
                                          (a second card: collision), leave_after = 2 (pulled away after 2 APDUs)
                                          or tear_on = "AE" (pulled away while answering GENERATE AC: torn)
    take_one_away = true                  of two cards in the field, take one away
    take_away = true                      take the tapped card away
    expect_reader = {leds = "red", beeps = 1, field_off = true}  the reader's lights now (blue, yellow, green,
                                          red joined by "+", or "off"), beeps so far at least, a field-off seen
    expect_acquirer = {entry_mode = "071", pin = true, icc = {"9F34" = "020002"}}   the newest 0200 (or 0220
                                          with mti = "0220") as the acquirer received it; icc_has = ["9F66"]

A top-level ``[faults]`` table (LineFaults keys) sets the line quality of every serial link for the whole run.

>>> parse_keys("01 ENTER")
['0', '1', 'ENTER']
"""

from __future__ import annotations

import datetime as dt
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from drivers.card_reader_codec import Led
from sim.backends.acquirer_answers import parse_change
from sim.backends.acquirer_security import TLS_FAULTS
from sim.devices.pty import LineFaults
from sim.runner.trace_dir import keep_receipts, run_log, scenario_dir
from sim.runner.world import SimWorld
from terminal.screens import Key

__all__ = ["Scenario", "StepFailure", "ScenarioResult", "load_scenario", "run_scenario", "parse_keys",
           "write_junit"]


class StepFailure(Exception):
    """A step did not see what it expected."""


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    world: Mapping[str, Mapping[str, Any]]
    steps: tuple[Mapping[str, Any], ...]
    faults: LineFaults | None = None


@dataclass
class ScenarioResult:
    scenario: Scenario
    passed: bool
    seconds: float
    failed_step: int | None = None
    message: str = ""
    log: list[str] = field(default_factory=list)


def parse_keys(text: str) -> list[str]:
    keys: list[str] = []
    for token in text.split():
        if token.isdigit():
            keys.extend(token)
        else:
            keys.append(Key(token.upper()).value)
    return keys


def load_scenario(path: str | Path) -> Scenario:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    steps = tuple(data.get("steps", ()))
    if not steps:
        raise StepFailure(f"{path}: a scenario needs [[steps]]")
    faults = LineFaults.from_mapping(data["faults"]) if "faults" in data else None
    return Scenario(data.get("name", Path(path).stem), str(path), data.get("world", {}), steps, faults)


def _poll(check: Callable[[], str | None], timeout: float) -> None:
    """Retry ``check`` (returns None when satisfied, else what is wrong) until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        problem = check()
        if problem is None:
            return
        if time.monotonic() > deadline:
            raise StepFailure(problem)
        time.sleep(0.02)


class _Runner:
    def __init__(self, world: SimWorld) -> None:
        self.w = world
        self.pressed = 0

    def _screen(self) -> str:
        return self.w.screen.text()

    def wait(self, state: str, timeout: float) -> None:
        _poll(lambda: None if self.w.screen.state == state else
              f"expected screen '{state}', on '{self.w.screen.state}':\n{self._screen()}", timeout)

    def keys(self, text: str, timeout: float) -> None:
        assert self.w.terminal is not None  # noqa: S101
        for key in parse_keys(text):
            self.w.terminal.press(key)
            self.pressed += 1
        time.sleep(0.05)

    def reset_key_count(self, _flag: bool, timeout: float) -> None:
        self.pressed = 0

    def expect_key_count(self, wanted: int, timeout: float) -> None:
        if self.pressed != wanted:
            raise StepFailure(f"{self.pressed} terminal keys pressed, expected {wanted}")

    def expect_no_text(self, unwanted: str | list[str], timeout: float) -> None:
        items = [unwanted] if isinstance(unwanted, str) else unwanted
        found = [u for u in items if u in self._screen()]
        if found:
            raise StepFailure(f"screen shows {found}:\n{self._screen()}")

    def expect_audit(self, wanted: Mapping[str, Any], timeout: float) -> None:
        def rows() -> list[Any]:
            audit = self.w.services.audit
            entries = audit.recent(limit=1000, action=wanted["action"]) if audit is not None else []
            return [e for e in entries if "user" not in wanted or e.user_id == wanted["user"]]
        _poll(lambda: None if len(rows()) == wanted.get("count", 1) else
              f"audit has {len(rows())} {wanted['action']!r} rows, expected {wanted.get('count', 1)}: {rows()}",
              timeout)

    def expect_text(self, wanted: str | list[str], timeout: float) -> None:
        items = [wanted] if isinstance(wanted, str) else wanted
        _poll(lambda: next((f"screen lacks {w!r}:\n{self._screen()}" for w in items if w not in self._screen()),
                           None), timeout)

    def expect_error(self, wanted: str, timeout: float) -> None:
        _poll(lambda: None if self.w.screen.error and wanted in self.w.screen.error else
              f"error line lacks {wanted!r}: {self.w.screen.error!r}", timeout)

    def insert_card(self, key: str, timeout: float) -> None:
        self.w.insert_card(key)

    def swipe_card(self, key: str, timeout: float) -> None:
        self.w.swipe_card(key)

    def tap(self, what: str | Mapping[str, Any], timeout: float) -> None:
        if isinstance(what, str):
            self.w.tap_card(what)
        else:
            leave, tear = what.get("leave_after"), what.get("tear_on")
            self.w.tap_card(str(what["card"]), collide_with=what.get("collide_with"),
                            leave_after=int(leave) if leave is not None else None,
                            tear_on_ins=int(str(tear), 16) if tear is not None else None)

    def take_one_away(self, _flag: bool, timeout: float) -> None:
        self.w.reader.take_one_away()

    def take_away(self, _flag: bool, timeout: float) -> None:
        self.w.reader.take_away()

    def expect_reader(self, wanted: Mapping[str, Any], timeout: float) -> None:
        def check() -> str | None:
            r = self.w.reader
            leds = "+".join(n.lower() for n in ("BLUE", "YELLOW", "GREEN", "RED") if r.leds & Led[n]) or "off"
            seen = {"leds": leds, "beeps": len(r.beeps), "field_off": bool(r.field_offs)}
            wrong = {k: seen[k] for k, v in wanted.items()
                     if (seen[k] < v if k == "beeps" else seen[k] != v)}
            return f"reader shows {seen}, expected {dict(wanted)}" if wrong else None
        _poll(check, timeout)

    def expect_acquirer(self, wanted: Mapping[str, Any], timeout: float) -> None:
        mti = str(wanted.get("mti", "0200"))

        def check() -> str | None:
            entries = [e for e in self.w.acquirer.ledger if e.mti == mti]
            if not entries:
                return f"the acquirer received no {mti}"
            e = entries[-1]
            problems = [f"entry mode {e.entry_mode}" for v in [wanted.get("entry_mode")] if v and e.entry_mode != v]
            problems += [f"pin {e.pin}" for v in [wanted.get("pin")] if v is not None and e.pin != v]
            problems += [f"{t}={e.icc.get(t)}" for t, v in dict(wanted.get("icc", {})).items() if e.icc.get(t) != v]
            problems += [f"no {t}" for t in wanted.get("icc_has", ()) if t not in e.icc]
            return f"{mti} received with {problems}, expected {dict(wanted)}" if problems else None
        _poll(check, timeout)

    def remove_card(self, _flag: bool, timeout: float) -> None:
        self.w.remove_card()

    def pinpad(self, text: str, timeout: float) -> None:
        _poll(lambda: None if self.w.pinpad.awaiting_pin else "the PIN pad never asked for a PIN", timeout)
        for key in text.split():
            for k in (list(key) if key.isdigit() else [key.upper()]):
                self.w.pinpad.press(k)

    def expect_receipt(self, wanted: list[str], timeout: float) -> None:
        def check() -> str | None:
            if not self.w.printer.receipts:
                return "nothing was printed"
            text = "\n".join(self.w.printer.receipts[-1])
            missing = [w for w in wanted if w not in text]
            return f"receipt lacks {missing}:\n{text}" if missing else None
        _poll(check, timeout)

    def expect_host(self, wanted: Mapping[str, int], timeout: float) -> None:
        def counts() -> dict[str, int]:
            ledger = [e for e in self.w.acquirer.ledger if e.mti == "0200"]
            return {"requests": len(ledger), "refunds": len(self.w.acquirer.refunds),
                    "advices": sum(e.mti == "0220" for e in self.w.acquirer.ledger),
                    "approved": sum(e.response_code == "00" and not e.reversed for e in ledger),
                    "declined": sum(e.response_code != "00" for e in ledger),
                    "reversed": sum(bool(e.reversed) for e in ledger),
                    "idle_closes": self.w.acquirer.idle.idle_closes, "race_closes": self.w.acquirer.idle.race_closes}
        _poll(lambda: None if all(counts()[k] == v for k, v in wanted.items()) else
              f"host ledger {counts()} != expected {dict(wanted)}", timeout)

    def expect_saf(self, wanted: Mapping[str, int], timeout: float) -> None:
        def counts() -> dict[str, int]:
            rows = self.w.services.journal.saf_items(("queued", "sent", "failed", "expired", "cancelled"))
            return {status: sum(r.status == status for r in rows) for status in wanted}
        _poll(lambda: None if counts() == dict(wanted) else f"advice queue {counts()} != {dict(wanted)}", timeout)

    def expect_host_order(self, wanted: list[str], timeout: float) -> None:
        def check() -> str | None:
            log = iter(self.w.acquirer.wire_log)
            return None if all(mti in log for mti in wanted) else \
                f"host saw {self.w.acquirer.wire_log}, not {wanted} in that order"
        _poll(check, timeout)

    def expect_carrier(self, wanted: Mapping[str, int], timeout: float) -> None:
        _poll(lambda: None if len(self.w.carrier.ledger) == wanted.get("applied", 0) else
              f"carrier applied {len(self.w.carrier.ledger)} top-ups, expected {wanted.get('applied', 0)}",
              timeout)
        if "reversed" in wanted:  # top-ups taken back (POST /v1/topups/{order_id}/reverse)
            _poll(lambda: None if len(self.w.carrier.reversals) == wanted["reversed"] else
                  f"carrier reversed {len(self.w.carrier.reversals)} top-ups, expected {wanted['reversed']}",
                  timeout)

    def expect_journal(self, wanted: Mapping[str, Any], timeout: float) -> None:
        def check() -> str | None:
            rows = self.w.services.journal.all_transactions()
            if not rows:
                return "the journal is empty"
            last = rows[-1]
            wrong = {k: getattr(last, k) for k, v in wanted.items() if getattr(last, k) != v}
            return f"journal row {last.txn_id} has {wrong}, expected {dict(wanted)}" if wrong else None
        _poll(check, timeout)

    def expect_emv(self, wanted: Mapping[str, str], timeout: float) -> None:
        def check() -> str | None:
            outcome = self.w.terminal.session.outcome if self.w.terminal is not None else None
            payment = getattr(outcome, "payment", None)
            if payment is None:
                return "no card payment has finished yet"
            seen = {**payment.emv_receipt, "status": payment.status}
            wrong = {k: seen.get(k) for k, v in wanted.items() if seen.get(k) != v}
            return f"EMV data {wrong} differ from expected {dict(wanted)}" if wrong else None
        _poll(check, timeout)

    def set(self, switches: Mapping[str, Any], timeout: float) -> None:
        for name, value in switches.items():
            if name == "acquirer_unreachable":
                self.w.acquirer.set_unreachable(bool(value))
            elif name == "acquirer_response":
                self.w.acquirer.force_response(value or None)
            elif name == "acquirer_delay_s":
                self.w.acquirer.reply_delay_s = float(value)
            elif name == "acquirer_idle_timeout_s":
                self.w.acquirer.idle.idle_timeout_s = float(value)
            elif name == "acquirer_idle_race":
                self.w.acquirer.idle.arm_race(bool(value))
            elif name == "pinpad_auto":
                self.w.pinpad.auto_pin = str(value) or None
            elif name == "acquirer_down_s":
                self.w.acquirer.down_s = float(value)
            elif name == "acquirer_refuse_reversals":
                self.w.acquirer.refuse_reversals = bool(value)
            elif name == "acquirer_refuse_voids":
                self.w.acquirer.refuse_voids = bool(value)
            elif name == "acquirer_answer_change":  # "0210:4": those answers carry another value in that field
                try:
                    self.w.acquirer.answer_change = parse_change(str(value))
                except ValueError as exc:
                    raise StepFailure(str(exc)) from exc
            elif name == "acquirer_advice_code":  # "96": every 0220/0221 answered so and not taken
                if value and not (isinstance(value, str) and len(value) == 2 and value.isalnum()):
                    raise StepFailure(f"acquirer_advice_code is a 2-character response code or \"\", not {value!r}")
                self.w.acquirer.advice_code = str(value) or None
            elif name == "acquirer_forget_last":
                self.w.acquirer.forget_last_approval()
            elif name == "carrier_unreachable":
                self.w.carrier.set_unreachable(bool(value))
            elif name == "carrier_forge_answers":
                self.w.carrier.forge_order_answers(bool(value))
            elif name == "carrier_use_topup" and value:  # the SIM spends its newest top-up: no reversal any more
                try:
                    self.w.carrier.use_topup("" if value is True else str(value))
                except KeyError as exc:
                    raise StepFailure(str(exc)) from exc
            elif name == "printer_paper_out":
                self.w.printer.paper_out = bool(value)
            elif name == "wallet_refund_newest" and value:  # the merchant's back office refunds it at the platform
                paid = [o for o in self.w.wallet.orders.values() if o.status == "paid"]
                if not paid:
                    raise StepFailure("no paid wallet order to refund")
                paid[-1].status = "refunded"
            elif name == "wallet_unreachable":  # the wallet platform and the WeChat Pay / Alipay gateways
                for platform in (self.w.wallet, self.w.wechatpay, self.w.alipay):
                    platform.set_unreachable(bool(value))
            elif name == "wallet_forge_paid":  # a man in the middle turns every code payment answer into "paid"
                self.w.wechatpay.forge_paid(bool(value))
                self.w.alipay.forge_paid(bool(value))
                self.w.wallet.forge_paid_answers(bool(value))  # the EMV QR platform link too
            elif name == "scanner_noise":  # raw bytes on the scanner line (text, \u escapes for control bytes)
                self.w.scanner.noise(str(value).encode("latin-1"))
            elif name == "scanner_unplugged" and value:  # for good: the pty goes away
                self.w.scanner.unplug()
            elif name == "reader_unplugged":
                (self.w.reader.unplug if value else self.w.reader.replug)()
            elif name == "pinpad_unplugged":
                (self.w.pinpad.unplug if value else self.w.pinpad.replug)()
            elif name in ("printer_cover_open", "printer_silent"):
                setattr(self.w.printer, name.removeprefix("printer_"), bool(value))
            elif name.startswith("acquirer_") and self._security_switch(name, value):
                pass
            else:
                raise StepFailure(f"unknown switch {name!r}")

    def _security_switch(self, name: str, value: Any) -> bool:
        sec = self.w.host_security
        if sec is None:
            raise StepFailure(f"{name}: this world's acquirer runs without TLS and MACs")
        if name == "acquirer_tls_fault":
            if value and value not in TLS_FAULTS:
                raise StepFailure(f"acquirer_tls_fault is one of {', '.join(TLS_FAULTS)} or \"\", not {value!r}")
            self.w.acquirer.set_tls_fault(str(value) or None)
        elif name == "acquirer_bad_mac":
            sec.bad_mac_answers = bool(value)
        elif name == "acquirer_forged_a0":  # the next N purchases decided, their 0210 replaced by an unMACed A0
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 99:
                raise StepFailure(f"acquirer_forged_a0 is a count 0..99, not {value!r}")
            sec.forged_a0_purchases = value
        elif name == "acquirer_expire_keys" and value:
            sec.expire_keys()
        elif name == "acquirer_bad_kcv":
            sec.bad_kcv = bool(value)
        elif name == "acquirer_same_keys":  # sign-on delivers one key as PIK and MAK: the terminal refuses it
            sec.same_keys = bool(value)
        elif name == "acquirer_seen_stan":  # the host already has this terminal's purchases 1..N today
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 999999:
                raise StepFailure(f"acquirer_seen_stan is a STAN 1..999998, not {value!r}")
            sec.already_seen(self.w.services.settings.terminal.id, value, dt.date.today())  # the world's calendar
        else:
            return False
        return True

    def fault(self, table: Mapping[str, Any], timeout: float) -> None:
        settings = dict(table)
        device = str(settings.pop("device", "all"))
        try:
            self.w.set_faults(device, LineFaults.from_mapping(settings))
        except ValueError as exc:
            raise StepFailure(str(exc)) from exc

    def silence(self, table: Mapping[str, Any], timeout: float) -> None:
        for port in self.w.ports(str(table.get("device", "all"))):
            port.silence(float(table["seconds"]))

    def unplug(self, device: str, timeout: float) -> None:
        self.w.pull(device)

    def replug(self, device: str, timeout: float) -> None:
        self.w.plug(device)

    def scan_code(self, what: str | Mapping[str, str], timeout: float) -> None:
        if isinstance(what, str):
            self.w.scanner.show(what)
        else:
            self.w.show_code(what.get("wallet", "wechat"), what.get("outcome", "paid"))

    def phone_pays(self, pay: bool, timeout: float) -> None:
        _poll(lambda: None if self.w.screen.qr else f"no QR on the screen:\n{self._screen()}", timeout)
        answer = self.w.phone_scan(bool(pay))
        if answer not in ("paid", "failed"):
            raise StepFailure(f"the phone could not pay: {answer}")

    def expect_platform_calls(self, wanted: Mapping[str, list[str]], timeout: float) -> None:
        """A platform accepted these calls one right after the other (``wechatpay``: API paths, ``alipay``: method
        names) at some point of the scenario (polls going on meanwhile cannot make the check racy)."""
        def check() -> str | None:
            for name, calls in wanted.items():
                seen, run = list(getattr(self.w, name).calls), list(calls)
                if not any(seen[i:i + len(run)] == run for i in range(len(seen) - len(run) + 1)):
                    return f"{name} calls {seen[-12:]} lack the run {run}"
            return None
        _poll(check, timeout)

    def expect_wallet(self, wanted: Mapping[str, int], timeout: float) -> None:
        _poll(lambda: None if all(self.w.wallet.counts().get(k, 0) == v for k, v in wanted.items()) else
              f"wallet orders {self.w.wallet.counts()} != expected {dict(wanted)}", timeout)

    def expect_beeps(self, wanted: int, timeout: float) -> None:
        _poll(lambda: None if len(self.w.reader.beeps) == wanted else
              f"the reader beeped {len(self.w.reader.beeps)} times, expected {wanted}", timeout)

    def sleep(self, seconds: float, timeout: float) -> None:
        time.sleep(seconds)


def run_scenario(scenario: Scenario, *, echo: Callable[[str], None] | None = None,
                 inspect: Callable[[SimWorld], None] | None = None,
                 faults: LineFaults | None = None, trace_dir: Path | None = None,
                 on_start: Callable[[SimWorld], None] | None = None) -> ScenarioResult:
    """Run on a fresh world; ``inspect(world)`` sees the world (journal, ledgers, receipts) before teardown.
    ``faults`` (e.g. a CI fault profile) replaces the scenario's own ``[faults]``. ``trace_dir``: keep the
    world, its traces, log and receipts in ``trace_dir/<scenario>/`` (``sim.runner.trace_dir``)."""
    started = time.monotonic()
    workdir = scenario_dir(trace_dir, Path(scenario.path)) if trace_dir is not None else None
    world = SimWorld(overrides=scenario.world, faults=faults or scenario.faults, workdir=workdir,
                     trace=workdir is not None)
    result = ScenarioResult(scenario, passed=True, seconds=0.0)
    logged = run_log(workdir)
    logged.__enter__()
    try:
        world.start()
        if on_start is not None:  # e.g. a display listener that records every screen
            on_start(world)
        runner = _Runner(world)
        for index, step in enumerate(scenario.steps, 1):
            timeout = float(step.get("timeout", 10))
            actions = [k for k in step if k != "timeout"]
            if len(actions) != 1 or not hasattr(runner, actions[0]) or actions[0].startswith("_"):
                raise StepFailure(f"step {index}: one action per step, got {actions}")
            action = actions[0]
            line = f"  step {index}: {action} = {step[action]!r}"
            result.log.append(line)
            if echo:
                echo(line)
            try:
                getattr(runner, action)(step[action], timeout)
            except StepFailure as exc:
                result.passed, result.failed_step, result.message = False, index, f"step {index} ({action}): {exc}"
                break
    except Exception as exc:  # noqa: BLE001 - a scenario that crashes is a failed scenario, said clearly
        result.passed, result.message = False, f"{type(exc).__name__}: {exc}"
    finally:
        try:
            if inspect is not None:
                inspect(world)
        finally:
            world.stop()
            keep_receipts(world, workdir)
            logged.__exit__(None, None, None)
        result.seconds = time.monotonic() - started
    return result


def write_junit(results: list[ScenarioResult], path: str | Path) -> None:
    suite = ET.Element("testsuite", name="pos-sim scenarios", tests=str(len(results)),
                       failures=str(sum(not r.passed for r in results)))
    for r in results:
        case = ET.SubElement(suite, "testcase", classname="scenarios", name=r.scenario.name,
                             time=f"{r.seconds:.3f}", file=r.scenario.path)
        if not r.passed:
            failure = ET.SubElement(case, "failure", message=r.message.splitlines()[0] if r.message else "")
            failure.text = r.message + "\n" + "\n".join(r.log)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
