"""Power cut at every step of a wallet top-up, then boot recovery: money is never lost nor taken twice.

A step is any journal write or any request to the wallet or the carrier; the cut happens just before it (a cut
just after a step is the cut before the next one). After each cut a fresh journal on the same SQLite file runs
``recover_wallet`` through the real clients and loopback HTTP. Invariant, per order id: paid at the wallet (and
not refunded) ⇔ exactly one top-up applied at the carrier; no journal row left open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.carrier import CarrierClient
from drivers.wallet import WalletClient
from flows.ports import CancelToken, Plan
from flows.pricing import FeeSchedule, quote
from flows.topup import TopupOrder
from flows.wallet_payment import WalletProgress, WalletSettings, WalletStep, WalletTopupService
from flows.wallet_recovery import recover_wallet
from sim.backends.carrier import CarrierSim
from sim.backends.wallet import WalletSim
from terminal.journal import Journal
from terminal.services import SystemClock

PLAN = Plan("D1G-1M", "1 GB monthly data", "1GB 月包", 1, 1000, 1024)


class PowerCut(BaseException):
    """Not an Exception: nothing in the product may catch it, as nothing survives a real power cut."""


class Fuse:
    def __init__(self, at: int) -> None:
        self.at, self.count = at, 0

    def step(self) -> None:
        self.count += 1
        if self.count == self.at:
            raise PowerCut


class Cut:
    """Proxy that burns the fuse before every call of the named methods."""

    def __init__(self, target: Any, fuse: Fuse, methods: set[str]) -> None:
        self._target, self._fuse, self._methods = target, fuse, methods

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name not in self._methods:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._fuse.step()
            return value(*args, **kwargs)
        return call


@pytest.fixture(scope="module")
def platforms():  # type: ignore[no-untyped-def]
    wallet_sim, carrier_sim = WalletSim(user_paying_s=0.05), CarrierSim()
    yield wallet_sim, wallet_sim.start(), carrier_sim, carrier_sim.start()
    wallet_sim.stop()
    carrier_sim.stop()


def _run(tmp: Path, at: int, scenario: str, platforms: Any) -> bool:
    """One sale cut at step ``at``, then recovery and the invariant. True when the sale ran to the end uncut."""
    wallet_sim, wallet_url, carrier_sim, carrier_url = platforms
    db = tmp / f"cut{at}-{scenario}.db"
    terminal_id = f"{scenario[:4].upper()}{at:04d}"  # order ids of this run are its own on the shared platforms
    fuse = Fuse(at)
    journal = Journal(db)
    wallet = WalletClient(wallet_url, timeout_s=1.0, **wallet_sim.client_options())
    carrier = CarrierClient(carrier_url, timeout_s=1.0, **carrier_sim.client_options())
    settings = WalletSettings(terminal_id, "898440154110001", poll_interval_s=0.02, merchant_timeout_s=2.0)
    service = WalletTopupService(Cut(wallet, fuse, {"micropay", "create_qr_order", "query", "cancel", "refund"}),
                                 Cut(carrier, fuse, {"create_topup", "order_status"}),
                                 Cut(journal, fuse, {"begin", "update"}), SystemClock(), settings)
    iccid = "89860424000000000140" if scenario == "carrier_refuses" else "89860424000000000017"
    order = TopupOrder(iccid, "1064900000001", quote(PLAN, "wechat", FeeSchedule(), 100_000), "01")
    progress: Callable[[WalletProgress], None] = lambda p: (  # noqa: E731
        threading.Timer(0.05, wallet_sim.phone_scan, (p.detail, True)).start() if p.step is WalletStep.SHOW_QR
        else None)
    finished = True
    try:
        if scenario == "qr_paid":
            service.pay_by_qr(order, progress, CancelToken())
        else:
            outcome = {"paid": "paid", "user_paying": "user_paying_then_paid", "carrier_refuses": "paid"}[scenario]
            service.pay_with_code(order, wallet_sim.make_code("wechat", outcome), progress, CancelToken())
    except PowerCut:
        finished = False
    journal.close()
    time.sleep(0.08)  # what the platforms do while the terminal is dark (a phone pays, a user confirms)
    rebooted = Journal(db)
    _, still_open = recover_wallet(rebooted, wallet, carrier, SystemClock())
    open_rows = rebooted.open_transactions()
    assert still_open == 0 and not open_rows, (at, scenario, [r.state for r in open_rows])
    mine = {k: v for k, v in wallet_sim.orders.items() if k.startswith(terminal_id)}
    for order_id, wallet_order in mine.items():
        applied = carrier_sim.applied_count(order_id)
        kept = wallet_order.status == "paid"
        assert applied == (1 if kept else 0), (at, scenario, order_id, wallet_order.status, applied)
        assert wallet_order.status in ("paid", "refunded", "cancelled", "failed"), wallet_order.status
    for row in rebooted.all_transactions():
        assert row.state in ("completed", "reversed", "cancelled", "declined", "abandoned"), row.state
    rebooted.close()
    return finished


@pytest.mark.parametrize("scenario", ["paid", "user_paying", "carrier_refuses", "qr_paid"])
def test_every_cut_point_recovers(tmp_path: Path, scenario: str, platforms: Any) -> None:
    at = 1
    while not _run(tmp_path, at, scenario, platforms):
        at += 1
        assert at < 60, "the sale never finished"
    assert at > 6  # the sale has that many steps at least: the harness really cut inside it
