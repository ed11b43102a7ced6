"""HTTP/1.1 keep-alive between ``WalletClient`` and ``WalletSim`` over real loopback HTTPS (the keeper of
``drivers/http_keep.py``, as the carrier's): a QR payment's polls share one connection; a platform restart is met
with a new connection before anything is sent."""

from __future__ import annotations

import time

from drivers.wallet import WalletClient
from sim.backends.wallet import WalletSim


def test_wallet_payment_and_its_polls_share_one_connection() -> None:
    wallet = WalletSim()
    url = wallet.start()
    try:
        assert url.startswith("https://")
        c = WalletClient(url, timeout_s=2.0, terminal_id="T1", keep_alive_s=20.0, **wallet.client_options())
        paid = c.micropay("KW1", wallet.make_code("wechat", "paid"), 3018, "top-up")
        assert paid.status == "paid"
        for _ in range(3):
            assert c.query("KW1").status == "paid"
        assert wallet.connections_accepted == 1
        wallet.set_unreachable(True)
        wallet.set_unreachable(False)
        time.sleep(0.05)
        assert c.query("KW1").status == "paid"  # a new connection after the platform's restart
        assert wallet.connections_accepted == 1  # counted since it listened again
        assert c.connections.opened == 2
        c.close()
    finally:
        wallet.stop()


def test_without_keep_alive_a_connection_per_request() -> None:
    wallet = WalletSim()
    url = wallet.start()
    try:
        c = WalletClient(url, timeout_s=2.0, terminal_id="T1", keep_alive_s=0.0, **wallet.client_options())
        assert c.micropay("KW2", wallet.make_code("alipay", "paid"), 100, "x").status == "paid"
        assert c.query("KW2").status == "paid"
        assert wallet.connections_accepted == 2
    finally:
        wallet.stop()


def test_a_kept_connection_closed_under_a_payment_sends_it_once_more() -> None:
    """The platform's idle timer fires as the micropay arrives: the request is sent again on a new connection,
    re-signed (the platform refuses a replayed nonce), and the customer is charged once."""
    wallet = WalletSim()
    url = wallet.start()
    try:
        c = WalletClient(url, timeout_s=2.0, terminal_id="T1", keep_alive_s=20.0, **wallet.client_options())
        assert c.query("KW3").status == "not_found"  # the connection is now kept
        wallet.idle.arm_race()
        code = wallet.make_code("wechat", "paid")
        paid = c.micropay("KW3", code, 3018, "top-up")
        assert paid.status == "paid" and paid.amount_minor == 3018
        assert wallet.idle.race_closes == 1
        assert (wallet.connections_accepted, c.connections.opened) == (2, 2)
        assert c.micropay("KW3", code, 3018, "top-up").transaction_id == paid.transaction_id, "one order, once"
        c.close()
    finally:
        wallet.stop()
