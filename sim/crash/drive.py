"""The crash harness's scenarios and how it plays them on a separate ``pos-terminal`` process.

The cashier's part goes in through the process's console keypad (stdin) and the screens come back on its stdout
(``── state`` header lines); the customer's part goes through the simulated world the process is wired to: a
payment code shown to the scanner pty, a phone paying the QR payload the console printed (at the wallet
platform, loopback HTTP), a swipe or a dead chip on the card reader pty, a PIN on the PIN pad pty.

>>> [s.name for s in SCENARIOS if s.customer[:1] == ("code",)]
['wallet_code_paid', 'wallet_user_paying', 'wallet_never_confirmed', 'wallet_topup_refused', 'wallet_void']
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sim.backends.carrier import CarrierSim
from sim.backends.wallet import WalletSim
from sim.bench.suite import _toml
from sim.runner.world import SimWorld

__all__ = ["CrashScenario", "SCENARIOS", "TerminalProcess", "drive", "crash_world"]


@dataclass(frozen=True)
class CrashScenario:
    name: str
    iccid: str
    plan_key: str
    card: str  # the chip card lying in the reader before the sale ("" for none)
    expect_result: str  # what the clean run ends with on the result screen (sanity check of the scenario)
    channel_key: str = "1"  # 1 card, 2 WeChat Pay, 3 Alipay, 4 EMV QR, 5 tap
    customer: tuple[str, ...] = ()  # what the customer does after the confirmation (``_customer``)
    floor_limit_minor: int = 0  # > 0: the card may approve offline (store-and-forward advice)
    after: tuple[tuple[str, str], ...] = ()  # (keys, screen) once the sale is done and home: e.g. a supervisor void
    acquirer: tuple[tuple[str, object], ...] = ()  # the simulated acquirer's switches for the run: (method, arg)
    host: tuple[tuple[str, object], ...] = ()  # ``[host]`` settings of the world, e.g. (("key_scheme", "dukpt"),)


SUPERVISOR_VOID = (("9 ENTER", "login"), ("90 ENTER 9999 ENTER", "home"), ("F2", "void_select"),
                   ("1", "void_confirm"), ("F1", "void_done"), ("ENTER", "home"))

# the supervisor closes the day, then refunds the (now settled) card sale from the void/refund list
SUPERVISOR_SETTLE_REFUND = (("9 ENTER", "login"), ("90 ENTER 9999 ENTER", "home"), ("F3", "settlement"),
                            ("ENTER", "settled"), ("ENTER", "home"), ("F2", "void_select"), ("1", "void_confirm"),
                            ("F1", "void_done"), ("ENTER", "home"))

# the same, but the SIM has used the top-up: the carrier refuses to take it back, the supervisor refunds anyway
# (F1 again: the explicit, audited choice recorded with the intent). ``USE_TOPUP``: the SIM spends it (no key);
# keys "" only wait for the screen
USE_TOPUP = "!use_topup"
SUPERVISOR_SETTLE_REFUND_ANYWAY = (*SUPERVISOR_SETTLE_REFUND[:5], (USE_TOPUP, ""), ("F2", "void_select"),
                                   ("1", "void_confirm"), ("F1", "voiding"), ("", "void_confirm"),
                                   ("F1", "void_done"), ("ENTER", "home"))

# the carrier cannot be reached while the supervisor voids the card sale: the carrier's refusal ("could not be
# asked"), F1 again gives the money back anyway (top-up maybe still on the SIM); the carrier comes back and open
# items ENTER takes the top-up back (journal first: ``reversing_late``, then one reversal under the order id).
# ``CARRIER_DOWN`` / ``CARRIER_UP``: world events (no key); a cut leaves the carrier up for the restart
CARRIER_DOWN, CARRIER_UP = "!carrier_down", "!carrier_up"
SUPERVISOR_VOID_ANYWAY_UNREACHABLE = (("9 ENTER", "login"), ("90 ENTER 9999 ENTER", "home"), (CARRIER_DOWN, ""),
                                      ("F2", "void_select"), ("1", "void_confirm"), ("F1", "voiding"),
                                      ("", "void_confirm"), ("F1", "void_done"), ("ENTER", "home"),
                                      (CARRIER_UP, ""), ("F4", "open_items"), ("ENTER", "open_items"))
# the same for a settled sale's refund: the day closed, the carrier down, refunded anyway, then taken back
SUPERVISOR_SETTLE_REFUND_ANYWAY_UNREACHABLE = (*SUPERVISOR_SETTLE_REFUND[:5], *SUPERVISOR_VOID_ANYWAY_UNREACHABLE[2:])

SCENARIOS: tuple[CrashScenario, ...] = (
    CrashScenario("card_approve", "89860424000000000017", "3", "visa-credit", "completed"),
    CrashScenario("host_timeout", "89860424000000000215", "5", "visa-credit", "reversed"),
    CrashScenario("decline_after_approval", "89860424000000000017", "3", "card-declines-after-approval",
                  "reversed"),
    CrashScenario("topup_pending", "89860424000000000165", "3", "visa-credit", "completed"),
    CrashScenario("offline_approve", "89860424000000000017", "3", "offline-approve", "completed",
                  floor_limit_minor=100000),
    CrashScenario("wallet_code_paid", "89860424000000000017", "1", "", "completed", "2", ("code", "wechat", "paid")),
    CrashScenario("wallet_user_paying", "89860424000000000017", "1", "", "completed", "3",
                  ("code", "alipay", "user_paying_then_paid")),
    CrashScenario("wallet_never_confirmed", "89860424000000000017", "1", "", "cancelled", "2",
                  ("code", "wechat", "user_paying_forever")),
    CrashScenario("wallet_topup_refused", "89860424000000000140", "1", "", "reversed", "2",
                  ("code", "wechat", "paid")),
    CrashScenario("wallet_qr_paid", "89860424000000000017", "1", "", "completed", "2", ("phone",)),
    CrashScenario("magstripe_sale", "89860424000000000017", "1", "", "completed", "1", ("swipe", "stripe-only")),
    CrashScenario("chip_fallback", "89860424000000000017", "1", "", "completed", "1",
                  ("fallback", "stripe-dead-chip")),
    CrashScenario("tap_approve", "89860424000000000017", "3", "", "completed", "5", ("tap", "quickpass-debit")),
    CrashScenario("tap_host_timeout", "89860424000000000215", "5", "", "reversed", "5", ("tap", "quickpass-debit")),
    # a WeChat Pay sale, then the supervisor voids it: the carrier takes the top-up back, the platform refunds
    CrashScenario("wallet_void", "89860424000000000017", "1", "", "voided", "2", ("code", "wechat", "paid"),
                  after=SUPERVISOR_VOID),
    # a chip card sale, then the supervisor voids it (same batch): carrier first, then the 0400 reason 17
    CrashScenario("card_void", "89860424000000000017", "3", "visa-credit", "voided", after=SUPERVISOR_VOID),
    # a chip card sale, the day closed, then the supervisor refunds it: journal first (refund_pending + intent),
    # the carrier takes the top-up back, then the 0200 refund (200000) by reference
    CrashScenario("card_refund", "89860424000000000017", "3", "visa-credit", "refunded",
                  after=SUPERVISOR_SETTLE_REFUND),
    CrashScenario("card_refund_anyway", "89860424000000000017", "3", "visa-credit", "refunded",
                  after=SUPERVISOR_SETTLE_REFUND_ANYWAY),
    # the host approves half the amount (10): never an approval here, reversed; then an approval whose amount
    # (field 4) is not the one asked: outcome unknown, reversed (drivers.host.answer_check)
    CrashScenario("host_partial_approval", "89860424000000000017", "3", "visa-credit", "reversed",
                  acquirer=(("force_response", "10"),)),
    CrashScenario("host_answer_other_amount", "89860424000000000017", "3", "visa-credit", "reversed",
                  acquirer=(("set_answer_change", ("0210", "4")),)),
    # key scheme dukpt: the host never answers the 0200 (.97), then answers the first two reversals A0 without a
    # MAC: never a refusal, the reversal is repeated until acknowledged (drivers.host.dukpt_link)
    CrashScenario("dukpt_reversal_a0", "89860424000000000215", "5", "visa-credit", "reversed",
                  acquirer=(("a0_reversals", 2),), host=(("key_scheme", "dukpt"),)),
    # master/session keys: the host approves, a forger turns its 0210 into an A0 without a MAC: outcome unknown,
    # the terminal signs on again and reverses the approval (drivers.host.session_link)
    CrashScenario("host_forged_a0", "89860424000000000017", "3", "visa-credit", "reversed",
                  acquirer=(("forged_a0_purchases", 1),)),
    CrashScenario("card_void_anyway_unreachable", "89860424000000000017", "3", "visa-credit", "voided",
                  after=SUPERVISOR_VOID_ANYWAY_UNREACHABLE),
    CrashScenario("card_refund_anyway_unreachable", "89860424000000000017", "3", "visa-credit", "refunded",
                  after=SUPERVISOR_SETTLE_REFUND_ANYWAY_UNREACHABLE),
)

class TerminalProcess:
    """One ``pos-terminal`` child driven through its console; knows when it died."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "terminal.cli", "--config", str(config)],  # noqa: S603
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1, env={**os.environ, **env})
        self.states: queue.Queue[str] = queue.Queue()
        self.lines: list[str] = []  # everything the console display showed
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # noqa: S101
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("── "):
                self.states.put(line.split()[1])

    def wait(self, state: str, timeout: float = 20.0) -> bool:
        """True when the screen showed ``state``; False when the process exited first."""
        return self.wait_first((state,), timeout) is not None

    def wait_first(self, states: tuple[str, ...], timeout: float = 20.0) -> str | None:
        """The first of ``states`` the screen showed; None when the process exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if (state := self.states.get(timeout=0.05)) in states:
                    return state
            except queue.Empty:
                if self.proc.poll() is not None:
                    return None
        raise TimeoutError(f"terminal never showed {' or '.join(states)}")

    def wait_line(self, text: str, timeout: float = 20.0) -> str | None:
        """The first console line containing ``text``; None when the process exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in list(self.lines) if text in line), None)
            if found is not None:
                return found
            if self.proc.poll() is not None:
                return None
            time.sleep(0.05)
        raise TimeoutError(f"terminal never showed {text!r}")

    def keys(self, text: str) -> bool:
        assert self.proc.stdin is not None  # noqa: S101
        try:
            self.proc.stdin.write(text + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=10)


def drive(term: TerminalProcess, sc: CrashScenario, world: SimWorld) -> bool:
    """The cashier's keys and the customer's part of one top-up; False as soon as the terminal is gone."""
    paying = {"code": "scan_code", "phone": "scan_code", "swipe": "insert_card", "fallback": "insert_card",
              "tap": "insert_card"}
    script = [("01 ENTER 1111 ENTER", "home"), ("1", "sim_entry"), (f"{sc.iccid} ENTER", "sim_details"),
              ("ENTER", "plan_select"), (sc.plan_key, "channel_select"), (sc.channel_key, "confirm"),
              (f"{sc.iccid[-4:]} ENTER", paying.get(sc.customer[0], "result") if sc.customer else "result")]
    for method, arg in sc.acquirer:
        getattr(world.acquirer, method)(arg)
    if not term.wait("login", 30):
        return False
    for keys, state in script:
        if not term.keys(keys) or not term.wait(state, 30):
            return False
    if sc.customer and not (_customer(term, sc.customer, world) and term.wait("result", 30)):
        return False
    if not term.keys("ENTER") or (after := term.wait_first(("balance", "home"), 30)) is None:
        return False  # a top-up shows the SIM's new balance next; a cancelled sale goes home
    if not (after == "home" or (term.keys("ENTER") and term.wait("home", 30))):
        return False
    return all(_after(term, world, keys, state) for keys, state in sc.after)


def _after(term: TerminalProcess, world: SimWorld, keys: str, state: str) -> bool:
    """One supervisor step after the sale: keys then the screen they lead to (or a world event, no key)."""
    if keys == USE_TOPUP:  # the SIM's traffic spends the top-up: the carrier will refuse to take it back
        world.carrier.use_topup()
        return True
    if keys in (CARRIER_DOWN, CARRIER_UP):  # the carrier's platform goes away / comes back (connection refused)
        world.carrier.set_unreachable(keys == CARRIER_DOWN)
        return True
    return (not keys or term.keys(keys)) and term.wait(state, 30)


def _customer(term: TerminalProcess, action: tuple[str, ...], world: SimWorld) -> bool:
    """The customer's part, through the simulated devices and platforms the terminal process talks to."""
    kind, *args = action
    if kind == "code":  # shows a payment code to the scanner (pty)
        world.show_code(args[0], args[1])
    elif kind == "phone":  # reads the terminal's QR off its display, pays at the wallet platform (HTTP)
        if not term.keys("F1") or not term.wait("show_qr", 30) or (line := term.wait_line("QR payload: ")) is None:
            return False
        answer = world.wallet.phone_scan(line.split("QR payload: ", 1)[1], True)
        if answer != "paid" and term.proc.poll() is None:
            raise RuntimeError(f"the phone could not pay: {answer}")
    elif kind == "swipe":  # once the sale waits for it: a swipe from before the sale is dropped (not this customer's)
        if not term.wait("insert_card", 10):  # drawn again, its spinner stopped, once the reader waits (WAIT_CARD)
            return False
        world.swipe_card(args[0])
    elif kind == "tap":  # a contactless card held over the reader once the terminal polls for it
        if not term.wait("insert_card", 10):
            return False
        world.tap_card(args[0])
    elif kind == "fallback":  # a dead chip first; the terminal then accepts a swipe of the same card
        world.insert_card(args[0])
        if term.wait_line("Chip unreadable") is None:
            return False
        world.remove_card()
        world.swipe_card(args[0])
    return True


def crash_world(workdir: Path, floor_limit_minor: int = 0,
                host: tuple[tuple[str, object], ...] = ()) -> tuple[SimWorld, Path]:
    """A fresh world tuned for speed: short host timeout, short carrier pending time (``host``: more [host])."""
    world = SimWorld(workdir=workdir, overrides={"host": {"timeout_s": 2.0, **dict(host)},
                                                 "carrier": {"timeout_s": 2.0, "poll_interval_s": 0.2,
                                                             "follow_up_s": 0.5},
                                                 "wallet": {"timeout_s": 2.0, "poll_interval_s": 0.5,
                                                            "merchant_timeout_s": 5.0},
                                                 "emv": {"floor_limit_minor": floor_limit_minor}})
    world.carrier = CarrierSim(pending_s=1.0)
    world.wallet = WalletSim(user_paying_s=1.0)
    world.wechatpay.engine = world.alipay.engine = world.wallet  # the gateways keep their books there
    world.acquirer.late_reply_s = 2.0
    world.reader.reinsert_on_beep = True  # a card put in before the sale: the customer re-inserts it when asked
    config = workdir / "terminal.toml"
    config.write_text(_toml(world.config()), encoding="utf-8")
    return world, config
