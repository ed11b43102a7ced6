"""Wallet and scanner measurements for ``make bench``: reported with ratios to targets, never asserted.

* scanner link efficiency: wall time for a long EMV consumer-presented code (880 characters) to go from the
  simulated scanner through a pty paced at 9600 baud into ``Scanner.scan``, over its wire time (target ≤ 1.15);
* scanner core: codes per second through ``ScannerCore`` fed byte at a time (pure CPU);
* wallet top-up: wall time of a customer-presented top-up (paid at once) through the real wallet and carrier
  clients, loopback HTTP and a real SQLite journal (target ≤ 0.5 s), and the CPU it costs;
* connections per wallet sale after the first (the platform's and the carrier's, counted by the simulated
  servers; clients with the terminal's default ``keep_alive_s``, 20 s): target 0.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from drivers.alipay import AlipayClient
from drivers.carrier import CarrierClient
from drivers.scanner import Scanner
from drivers.scanner_codec import ScannerCore
from drivers.wallet import WalletClient
from drivers.wechatpay import WeChatPayClient
from flows.ports import CancelToken, Plan, WalletPort
from flows.pricing import FeeSchedule, quote
from flows.topup import TopupOrder
from flows.wallet_payment import WalletSettings, WalletTopupService
from sim.backends.alipay import AlipaySim
from sim.backends.carrier import CarrierSim
from sim.backends.wallet import WalletSim
from sim.backends.wechatpay import WeChatPaySim
from sim.devices.scanner import ScannerSim
from terminal.journal import Journal
from terminal.services import SystemClock

__all__ = ["measure"]

LINK_TARGET = 1.15
TOPUP_TARGET_S = 0.5
KEEP_ALIVE_S = 20.0  # the terminal's default for [wallet], [wechatpay], [alipay] and [carrier]
BAUD = 9600


def _scanner_link(code: str) -> float:
    sim = ScannerSim(mode="triggered", baud=BAUD)
    scanner = Scanner(sim.start(), baud=BAUD, mode="triggered")
    scanner.open()
    try:
        ratios = []
        for _ in range(3):
            threading.Timer(0.05, sim.show, (code,)).start()
            started = time.perf_counter()
            if scanner.scan(10.0, CancelToken()) != code:
                raise RuntimeError("the scanner read something else")
            wall = time.perf_counter() - started - 0.05  # from the moment the code is shown
            ratios.append(wall / ((len(code) + 2) * 10 / BAUD))
        return sorted(ratios)[1]
    finally:
        scanner.close()
        sim.stop()


def _core_rate(code: str, count: int = 200) -> float:
    wire = code.encode() + b"\r\n"
    core = ScannerCore("continuous")
    started = time.perf_counter()
    for _ in range(count):
        core.start_scan(0.0, 60)
        for i in range(len(wire)):
            core.receive_data(wire[i:i + 1], 0.0)
        core.next_event()
    return count / (time.perf_counter() - started)


def _wallet_topups(count: int, platform: str = "") -> tuple[float, float, float, float]:
    """Median wall and CPU per top-up, new platform and carrier connections per top-up after a first one;
    ``platform`` "wechatpay" / "alipay": through that gateway (HTTPS, signed)."""
    wallet_sim, carrier_sim = WalletSim(), CarrierSim()
    gateway: WeChatPaySim | AlipaySim | None = None
    with tempfile.TemporaryDirectory(prefix="pos-bench-wallet-") as tmp:
        journal = Journal(Path(tmp) / "j.db")
        try:
            wallet: WalletPort = WalletClient(wallet_sim.start(), keep_alive_s=KEEP_ALIVE_S,
                                              **wallet_sim.client_options())
            server: WalletSim | WeChatPaySim | AlipaySim = wallet_sim
            if platform == "wechatpay":
                server = gateway = WeChatPaySim(wallet_sim, workdir=tmp)
                wallet = WeChatPayClient(gateway.start(), keep_alive_s=KEEP_ALIVE_S, **gateway.client_options())
            elif platform == "alipay":
                server = gateway = AlipaySim(wallet_sim, workdir=tmp)
                wallet = AlipayClient(gateway.start(), keep_alive_s=KEEP_ALIVE_S, **gateway.client_options())
            channel = "alipay" if platform == "alipay" else "wechat"
            carrier = CarrierClient(carrier_sim.start(), keep_alive_s=KEEP_ALIVE_S, **carrier_sim.client_options())
            service = WalletTopupService(wallet, carrier, journal, SystemClock(),
                                         WalletSettings("BENCH001", "898440154110001"))
            plan = Plan("D1G-1M", "1 GB monthly data", "1GB 月包", 1, 1000, 1024)
            order = TopupOrder("89860424000000000017", "1064900000001", quote(plan, channel, FeeSchedule(),
                                                                              100_000), "01")
            walls, cpu_before = [], time.process_time()
            conns_before: tuple[int, int] = (0, 0)
            for n in range(count + 1):  # the first sale opens the connections: not timed, not counted
                if n == 1:
                    walls, cpu_before = [], time.process_time()
                    conns_before = (server.connections_accepted, carrier_sim.connections_accepted)
                started = time.perf_counter()
                outcome = service.pay_with_code(order, wallet_sim.make_code(channel), lambda _p: None,
                                                CancelToken())
                if outcome.status != "completed":
                    raise RuntimeError(outcome.message)
                walls.append(time.perf_counter() - started)
            cpu = (time.process_time() - cpu_before) / count  # includes the simulated platforms in-process
            platform_conns = (server.connections_accepted - conns_before[0]) / count
            carrier_conns = (carrier_sim.connections_accepted - conns_before[1]) / count
        finally:
            journal.close()
            wallet_sim.stop()
            carrier_sim.stop()
            if gateway is not None:
                gateway.stop()
    return sorted(walls)[len(walls) // 2], cpu, platform_conns, carrier_conns


def measure(topups: int = 20) -> dict[str, Any]:
    code = WalletSim().make_code("emvqr") * 8  # ~880 characters: a long consumer-presented code
    code = code[:880]
    link = _scanner_link(code)
    wall, cpu, conns, carrier_conns = _wallet_topups(topups)
    platforms = {name: _wallet_topups(topups, name) for name in ("wechatpay", "alipay")}
    return {
        "scanner_link_efficiency_9600": round(link, 3),
        "scanner_link_target": LINK_TARGET,
        "scanner_link_ratio_to_target": round(link / LINK_TARGET, 2),
        "scanner_core_codes_per_s_880_chars_byte_at_a_time": round(_core_rate(code)),
        "wallet_topup_wall_s_median": round(wall, 4),
        "wallet_topup_target_s": TOPUP_TARGET_S,
        "wallet_topup_ratio_to_target": round(wall / TOPUP_TARGET_S, 2),
        "wallet_topup_cpu_s_incl_simulators": round(cpu, 4),
        **{f"{name}_topup_wall_s_median": round(w, 4) for name, (w, _c, _p, _k) in platforms.items()},
        **{f"{name}_topup_cpu_s_incl_simulators": round(c, 4) for name, (_w, c, _p, _k) in platforms.items()},
        "wallet_connections_per_sale": round(conns, 2),
        **{f"{name}_connections_per_sale": round(p, 2) for name, (_w, _c, p, _k) in platforms.items()},
        "wallet_carrier_connections_per_sale": round(max([carrier_conns] + [k for *_x, k in platforms.values()]), 2),
        "connections_per_sale_target": 0,
        "note": "link = wall time of a paced 880-char code / its wire time at 9600 8N1 (the simulated scanner "
                "writes 16-byte chunks and sleeps their wire time after each, so ≈ (n-16)/n is the floor); top-up = "
                "WeChat code paid at once through real clients, loopback HTTP and SQLite (journal fsyncs included); "
                "connections = new connections the simulated servers accepted per sale after the first (keep-alive "
                f"{KEEP_ALIVE_S:g} s, the terminal's default)",
    }
