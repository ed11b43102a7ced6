"""A power cut while the customer confirms on the phone: the next boot asks the wallet platform and completes
the top-up of a paid order, cancels an unpaid one — through the real wallet client, loopback HTTP and SQLite."""

from __future__ import annotations

import os
from pathlib import Path

from sim.backends.wallet import WalletOrder
from sim.runner.world import SIM_DEVICE_SECRET_ENV, SimWorld
from terminal.device_secret import chain_key
from terminal.journal import Journal


def _open_row(journal: Journal, order_id: str, state: str) -> int:
    txn = journal.begin(order_id=order_id, iccid="89860424000000000017", msisdn="1064900000001",
                        plan_id="D1G-1M", plan_name="1 GB monthly data", amount_minor=1000, fee_minor=0,
                        channel="alipay", cashier_id="01")
    journal.update(txn, "wallet_intended", masked_pan="281234********0091")
    journal.update(txn, state)
    return txn


def _terminal_journal(path: Path) -> Journal:
    """The journal as the simulated terminal keeps it: sealed under the key derived from its device secret."""
    secret = bytes.fromhex(os.environ.setdefault(SIM_DEVICE_SECRET_ENV, os.urandom(32).hex()))
    return Journal(path, chain_key=chain_key(secret, "SIM00001"))


def test_boot_completes_a_paid_order_and_cancels_a_waiting_one(tmp_path):
    journal = _terminal_journal(tmp_path / "journal.db")
    paid = _open_row(journal, "CUT-PAID", "wallet_waiting")
    waiting = _open_row(journal, "CUT-WAIT", "wallet_waiting")
    journal.close()
    world = SimWorld(workdir=tmp_path)
    # what the platform did while the terminal was dark: one customer confirmed, the other never did
    world.wallet.orders["CUT-PAID"] = WalletOrder("CUT-PAID", 1000, "paid", wallet="alipay", transaction_id="W1")
    world.wallet.orders["CUT-WAIT"] = WalletOrder("CUT-WAIT", 1000, "user_paying", wallet="alipay")
    try:
        world.start()
        screen = world.wait_for("login", timeout_s=20)
        j = world.services.journal
        # the journal keeps the platform's own transaction id: Alipay's trade_no for the platform's order W1
        assert (j.get(paid).state, j.get(paid).rrn) == ("completed", "20261")
        assert j.get(waiting).state == "cancelled"
        assert [e.order_id for e in world.carrier.ledger] == ["CUT-PAID"]
        assert world.wallet.orders["CUT-WAIT"].status == "cancelled"
        text = screen.text()
        assert "Wallet top-up of ￥10.00 for SIM …0017 completed" in text
        assert "Cancelled wallet order of ￥10.00" in text
    finally:
        world.stop()
