"""What mutual TLS and message MACs cost per top-up, as a ratio to the plaintext link (measured, never asserted).

Two measures, each run once over plain TCP without MACs (``SimWorld(secure_host=False)``: the link before issue
12) and once over mutual TLS with sign-on and MACs (the default world):

* ``topup``: a whole chip-card top-up driven through a ``pos-terminal`` child process (as ``sim/bench/suite``):
  the terminal process's CPU (``/proc``) and the wall time per top-up;
* ``exchange``: one 0200 → 0210 through ``HostClient`` against the simulated acquirer in this process: CPU of
  this process (both ends) and wall time per exchange — the link's own cost without the rest of a top-up.

``exchange`` is measured twice over TLS: with a new connection and full handshake per exchange
(``keep_alive_s = 0``, the link before issue 17: the ratio is mostly the handshake's) and over one kept connection
(``tls_kept_*``, the terminal's default ``[host] keep_alive_s``). The ``topup`` figures use the terminal's default.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from drivers.host import HostClient
from drivers.host.tls import client_context
from drivers.host.tmk import load_tmk
from flows.ports import AuthRequest
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from sim.bench.suite import _Terminal, _toml, _topup
from sim.devices.cards import CATALOGUE
from sim.runner.world import DEMO_BDK, SimWorld

__all__ = ["measure"]


def _topups(secure: bool, transactions: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="pos-bench-acq-") as tmp:
        world = SimWorld(workdir=tmp, overrides={"terminal": {"duplicate_window_s": 0.0}}, secure_host=secure)
        config = Path(tmp) / "terminal.toml"
        config.write_text(_toml(world.config()), encoding="utf-8")
        term = _Terminal(config)
        try:
            term.wait("login")
            term.keys("01 ENTER 1111 ENTER")
            term.wait("home")
            world.insert_card("unionpay-debit")
            world.pinpad.auto_pin = "1234"
            world.reader.reinsert_on_beep = True  # the card-in-slot rule: take the card out, put it back
            _topup(term)  # warm-up (and, when secure, the sign-on is already behind us)
            cpu0, wall0 = term.cpu_s(), time.perf_counter()
            for _ in range(transactions):
                _topup(term)
            return (term.cpu_s() - cpu0) / transactions, (time.perf_counter() - wall0) / transactions
        finally:
            term.stop()
            world.stop()


def _exchanges(secure: bool, count: int, keep_alive_s: float = 0.0) -> tuple[float, float]:
    card = CATALOGUE["unionpay-debit"]
    with tempfile.TemporaryDirectory(prefix="pos-bench-acq-") as tmp:
        security = AcquirerSecurity.create(tmp, "T0000001") if secure else None
        sim = AcquirerSim(bdk=DEMO_BDK, cards=CATALOGUE, security=security)
        host, port = sim.start()
        extra: dict[str, Any] = {}
        if security is not None:
            extra = {"tls": client_context(security.ca.ca_file, security.client_cert, security.client_key),
                     "server_name": "localhost", "tmk": load_tmk(security.tmk_file, security.tmk_kbpk_file)}
        client = HostClient(host, port, terminal_id="T0000001", merchant_id="M00000000000001",
                            keep_alive_s=keep_alive_s, **extra)
        now = dt.datetime.now()
        requests = [AuthRequest(stan=i + 1, amount_minor=1000, local_time=now, pan=card.pan,
                                expiry_yymm=card.expiry[:4], pos_entry_mode="901") for i in range(count + 1)]
        try:
            client.authorize(requests[0])  # warm-up (sign-on)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for request in requests[1:]:
                client.authorize(request)
            return (time.process_time() - cpu0) / count, (time.perf_counter() - wall0) / count
        finally:
            client.close()
            sim.stop()


def measure(transactions: int = 20, exchanges: int = 100) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, run, n in (("topup", _topups, transactions), ("exchange", _exchanges, exchanges)):
        plain_cpu, plain_wall = run(False, n)
        tls_cpu, tls_wall = run(True, n)
        out[name] = {"plain_cpu_s": round(plain_cpu, 5), "tls_mac_cpu_s": round(tls_cpu, 5),
                     "cpu_ratio": round(tls_cpu / plain_cpu, 2) if plain_cpu else None,
                     "plain_wall_s": round(plain_wall, 5), "tls_mac_wall_s": round(tls_wall, 5),
                     "wall_ratio": round(tls_wall / plain_wall, 2) if plain_wall else None, "runs": n}
    kept_cpu, kept_wall = _exchanges(True, exchanges, keep_alive_s=60.0)
    exchange = out["exchange"]
    plain_cpu, plain_wall = exchange["plain_cpu_s"], exchange["plain_wall_s"]
    exchange.update({"tls_kept_cpu_s": round(kept_cpu, 5), "tls_kept_wall_s": round(kept_wall, 5),
                     "kept_cpu_ratio": round(kept_cpu / plain_cpu, 2) if plain_cpu else None,
                     "kept_wall_ratio": round(kept_wall / plain_wall, 2) if plain_wall else None})
    out["note"] = ("topup: terminal process CPU and wall per chip top-up; exchange: one 0200/0210 via HostClient, "
                   "both ends in one process, TLS with a new connection each or (tls_kept_*) one kept connection; "
                   "ratio = TLS+MAC / plaintext")
    return out


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
