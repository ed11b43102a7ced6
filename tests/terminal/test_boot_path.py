"""Issue 17 item 3: the boot path holds only what the login screen needs.

A screen's handler module is imported the first time its state is looked up (``terminal.handlers.LazyScreens``),
a home-menu opener's module the first time its entry is picked (``terminal.handlers.home.Opener``), and the
device self-test runs after the login screen shows. Speed itself is measured in ``make bench``, never here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from importlib import import_module
from pathlib import Path
from typing import Any

from terminal.core import Render, Started, StartWork, WorkDone
from terminal.handlers import HANDLERS, WHERE, LazyScreens
from terminal.handlers.home import OPENERS, Opener
from terminal.machine import State
from tests.terminal.test_core import Driver

ROOT = Path(__file__).resolve().parents[2]


def _fresh_python(code: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter (nothing imported yet) and return the JSON it prints."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                         cwd=ROOT, check=True)
    result: dict[str, object] = json.loads(run.stdout.splitlines()[-1])
    return result


def test_a_screens_module_is_imported_only_when_its_state_is_looked_up() -> None:
    seen = _fresh_python(
        "import json, sys\n"
        "import terminal.app\n"  # what pos-terminal imports before the login screen
        "from terminal.handlers import SCREENS\n"
        "from terminal.machine import State\n"
        "mods = lambda: sorted(m for m in sys.modules if m.startswith('terminal.handlers.'))\n"
        "before = mods()\n"
        "login = type(SCREENS[State.LOGIN]).__name__\n"
        "after_login = mods()\n"
        "SCREENS[State.CONFIRM]\n"
        "print(json.dumps({'before': before, 'login': login, 'after_login': after_login, 'after_confirm': mods(),\n"
        "                  'built': sorted(s.value for s in SCREENS.built()),\n"
        "                  'firmware_image': sorted(m for m in sys.modules if m.startswith('firmware_image'))}))\n")
    eager = ["terminal.handlers.boot", "terminal.handlers.diagnostics", "terminal.handlers.settings",
             "terminal.handlers.timeouts"]
    assert seen["before"] == eager
    assert seen["login"] == "Login" and seen["after_login"] == sorted([*eager, "terminal.handlers.login"])
    after_confirm = set(seen["after_confirm"])  # type: ignore[arg-type]
    assert {"terminal.handlers.sale", "terminal.handlers.card", "terminal.handlers.wallet"} <= after_confirm
    assert not after_confirm & {"terminal.handlers.void", "terminal.handlers.firmware", "terminal.handlers.history",
                                "terminal.handlers.settlement", "terminal.handlers.home"}
    assert seen["built"] == ["confirm", "login"]
    # the Firmware screen's slot machinery (image parsing, keys, construct) waits for the Firmware screen
    assert seen["firmware_image"] == ["firmware_image", "firmware_image.errors"]


def test_the_lazy_table_is_complete_and_every_entry_resolves_to_a_handler() -> None:
    waiting = {State.BOOT, State.SETTLING, State.VOIDING}
    assert set(HANDLERS.screens) == set(WHERE) == set(State) - waiting and len(HANDLERS.screens) == len(WHERE)
    table = LazyScreens(WHERE)
    assert table.built() == frozenset()
    for state in WHERE:
        assert callable(table[state].on_key), state
    assert table.built() == frozenset(WHERE)
    # one class named for several states is one object, as when the table was built by hand
    assert table[State.INSERT_CARD] is table[State.CARD_READING] is table[State.PIN_ENTRY]
    assert table[State.SHOW_QR] is table[State.WALLET_WAITING]
    assert table[State.SIM_ENTRY] is not table[State.SIM_LOOKUP]
    assert table.get(State.BOOT) is None and State.BOOT not in table


def test_every_home_opener_names_an_opener_that_exists() -> None:
    lazy = [opener for opener in OPENERS.values() if isinstance(opener, Opener)]
    assert len(lazy) >= 8
    for opener in lazy:
        assert callable(opener.target()), (opener.module, opener.name)
        assert opener.target() is getattr(import_module(f"terminal.handlers.{opener.module}"), opener.name)


def test_the_login_screen_is_rendered_before_the_self_test_is_asked_for() -> None:
    d = Driver()
    boot = d.work(d.feed(Started()), "boot")
    out = d.feed(WorkDone(boot.ticket, (True, (), ())))
    kinds = [("render", c.screen.state) if isinstance(c, Render) else ("work", c.kind) for c in out
             if isinstance(c, Render | StartWork)]
    assert ("render", "login") in kinds and ("work", "self_test") in kinds
    assert kinds.index(("render", "login")) < kinds.index(("work", "self_test"))
    assert d.core.state is State.LOGIN


def test_the_pos_terminal_process_shows_login_before_the_self_test_starts(tmp_path: Path) -> None:
    """Through the real process, ptys and loopback acquirer: the screen (stdout) and the log (stderr) share one
    pipe, each write flushed, so their order in it is the order things happened. The login screen is printed
    before the self-test's thread (``terminal-self_test``: device checks, sign-on) writes anything."""
    from sim.bench.suite import _toml
    from sim.runner.world import SimWorld

    world = SimWorld(workdir=tmp_path)
    config = tmp_path / "terminal.toml"
    config.write_text(_toml(world.config()), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "terminal.cli", "--config", str(config)],  # noqa: S603
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=ROOT)
    lines: list[str] = []
    watchdog = threading.Timer(60, proc.kill)  # a terminal that never signs on ends the read below, not the run
    watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "terminal-self_test" in line and "signed on" in line:
                break
    finally:
        watchdog.cancel()
        proc.terminate()
        proc.wait(timeout=10)
        world.stop()
    login = [i for i, line in enumerate(lines) if line.startswith("── login")]
    self_test = [i for i, line in enumerate(lines) if "terminal-self_test" in line]
    assert login and self_test, "".join(lines)
    assert login[0] < self_test[0], "".join(lines)
    assert world.acquirer.handshakes >= 1  # the self-test did reach the acquirer (its sign-on)


def test_the_wechat_pay_and_alipay_adapters_are_not_imported_when_neither_is_configured() -> None:
    seen = _fresh_python(
        "import json, sys\n"
        "from terminal.config import Settings\n"
        "from terminal.wiring import _merchant_platforms\n"
        "ports = _merchant_platforms(Settings())\n"
        "adapters = ('drivers.merchant_keys', 'drivers.wechatpay', 'drivers.alipay')\n"
        "print(json.dumps({'channels': sorted(ports),\n"
        "                  'loaded': sorted(m for m in adapters if m in sys.modules)}))\n")
    assert seen == {"channels": [], "loaded": []}  # every channel goes through the [wallet] platform


# What login does not need (issue 17 item 3, second pass): the card and wallet payment flows with the EMV kernels,
# and the refund / void rules recovery uses only for such a row.
CARD_PAYMENT = ("flows.topup", "flows.card_payment", "flows.contactless_payment", "flows.magstripe_payment",
                "emv.kernel", "emv.kernel_c2", "emv.kernel_c3", "emv.entry_point")
WALLET_PAYMENT = ("flows.wallet_payment", "flows.wallet_recovery")
RECOVERY_ONLY = ("flows.refund", "flows.void")
PAYMENT = (*CARD_PAYMENT, *WALLET_PAYMENT, *RECOVERY_ONLY)


def test_the_boot_path_imports_no_payment_flow_until_a_sale_starts() -> None:
    seen = _fresh_python(
        "import json, sys\n"
        "import terminal.cli, terminal.app, terminal.wiring\n"  # everything pos-terminal imports before login
        "from terminal.handlers import SCREENS\n"
        "from terminal.machine import State\n"
        f"payment = {PAYMENT!r}\n"
        "loaded = lambda: sorted(m for m in payment if m in sys.modules)\n"
        "SCREENS[State.LOGIN], SCREENS[State.SIM_ENTRY]\n"
        "before = loaded()\n"
        "SCREENS[State.CONFIRM]\n"  # the sale's read-back: the payment that follows is imported with its screen
        "print(json.dumps({'before': before, 'at_confirm': loaded()}))\n")
    assert seen["before"] == []
    assert set(CARD_PAYMENT) <= set(seen["at_confirm"])  # type: ignore[arg-type]


_BOOT = (  # in a fresh process: the composition root, then what the boot work does before the login screen
    "import json, sys\n"
    "from terminal.config import load_settings\n"
    "from terminal.wiring import build_services\n"
    "from terminal.work import recover_all\n"
    f"payment = {PAYMENT!r}\n"
    "loaded = lambda: sorted(m for m in payment if m in sys.modules)\n"
    "from terminal.app import TerminalApp\n"
    "sv = build_services(load_settings(sys.argv[1]))\n"
    "try:\n"
    "    channels = TerminalApp(sv).core.session.channels\n"  # the channel menu, made before the first screen
    "    report = recover_all(sv, unknown=True)\n"
    "    out = {'loaded': loaded(), 'lines': [getattr(m, 'key', str(m)) for m in report.lines],\n"
    "           'card_built': sv.card_topup.built, 'wallet_built': sv.wallet_payments.built, 'channels': channels,\n"
    "           'states': {r.order_id: r.state for r in sv.journal.all_transactions()}}\n"
    "    tap = sv.topup.tap is not None\n"  # the first card sale asks for the card top-up
    "    out.update(after_sale=loaded(), tap=tap, tap_offered=sv.tap_offered)\n"
    "finally:\n"
    "    sv.close()\n"
    "print(json.dumps(out))\n")


def _boot_in_fresh_process(world_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    from sim.bench.suite import _toml

    config = tmp_path / "terminal.toml"
    config.write_text(_toml(world_config), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # with the device secret the world put in os.environ
    run = subprocess.run([sys.executable, "-c", _BOOT, str(config)], capture_output=True, text=True,  # noqa: S603
                         timeout=60, env=env, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    result: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return result


def test_boot_recovery_with_nothing_open_imports_no_payment_flow(tmp_path: Path) -> None:
    """Through the real drivers (ptys, loopback TLS acquirer, HTTPS carrier and wallet platforms) and SQLite."""
    from sim.runner.world import SimWorld

    world = SimWorld(workdir=tmp_path)
    try:
        seen = _boot_in_fresh_process(world.config(), tmp_path)
    finally:
        world.stop()
    assert seen["loaded"] == [] and seen["lines"] == [] and seen["states"] == {}
    assert (seen["card_built"], seen["wallet_built"]) == (False, False) and "tap" in seen["channels"]
    # the first sale builds the card top-up, and the channel menu's "tap" agreed with it before it existed
    assert set(CARD_PAYMENT) <= set(seen["after_sale"]) and seen["tap"] == seen["tap_offered"] is True


def test_boot_recovery_imports_the_wallet_flow_only_for_an_open_wallet_row_and_still_finishes_it(
        tmp_path: Path) -> None:
    """A power cut while the customer confirmed on the phone: the next boot completes the paid order (as in
    ``test_wallet_boot_recovery``), importing the wallet flows for it — and still none of the card machinery."""
    from sim.backends.wallet import WalletOrder
    from sim.runner.world import SimWorld
    from terminal.device_secret import chain_key
    from terminal.journal import Journal

    world = SimWorld(workdir=tmp_path)
    try:
        cfg = world.config()
        secret = bytes.fromhex(os.environ[cfg["security"]["device_secret_env"]])
        journal = Journal(cfg["terminal"]["journal"], chain_key=chain_key(secret, cfg["terminal"]["id"]))
        txn = journal.begin(order_id="CUT-PAID", iccid="89860424000000000017", msisdn="1064900000001",
                            plan_id="D1G-1M", plan_name="1 GB monthly data", amount_minor=1000, fee_minor=0,
                            channel="alipay", cashier_id="01")
        journal.update(txn, "wallet_intended")
        journal.update(txn, "wallet_waiting")
        journal.close()
        world.wallet.orders["CUT-PAID"] = WalletOrder("CUT-PAID", 1000, "paid", wallet="alipay", transaction_id="W1")
        seen = _boot_in_fresh_process(cfg, tmp_path)
        assert [e.order_id for e in world.carrier.ledger] == ["CUT-PAID"]  # topped up once, at the carrier
    finally:
        world.stop()
    assert seen["states"] == {"CUT-PAID": "completed"} and seen["lines"] == ["wrecovery.completed"]
    loaded = set(seen["loaded"])
    assert set(WALLET_PAYMENT) <= loaded and not loaded & set(CARD_PAYMENT)
    assert (seen["card_built"], seen["wallet_built"]) == (False, True)


def test_a_service_built_on_first_use_is_built_once_for_every_thread_and_again_after_a_failed_build() -> None:
    from terminal.services import OnFirstUse

    calls: list[int] = []
    gate = threading.Event()

    def build() -> object:
        calls.append(1)
        gate.wait(5)  # every thread asks while the first build is still running
        if len(calls) == 1:
            raise OSError("the first build fails")
        return object()

    once = OnFirstUse(build)
    failed: list[BaseException] = []
    got: list[object] = []

    def ask() -> None:
        try:
            got.append(once.get())
        except OSError as exc:
            failed.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(5)
    assert len(failed) == 1 and len(calls) == 2  # the failed build left nothing built; the next one was kept
    assert len(got) == 5 and all(value is got[0] for value in got) and once.built
