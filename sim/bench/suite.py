"""``make bench``: how fast the terminal boots and how little CPU a top-up costs, printed as JSON.

The terminal runs as its own process (``pos-terminal`` with a generated config) against zero-delay simulated
devices and back ends in this process, so "terminal CPU" is exactly that process's user+system time from
``/proc/PID/stat``. Measured, never asserted: the targets (boot ≤ 300 ms, ≤ 10 ms CPU per top-up) are reported
as ratios next to the measurements.

The terminal runs from compiled bytecode, as an installed terminal does (``pip install`` compiles every module):
the child may write its bytecode cache (``PYTHONDONTWRITEBYTECODE`` is dropped for it) into a cache directory of
this run (``PYTHONPYCACHEPREFIX``), and the first boot, which compiles, is reported apart as
``boot_uncached_s`` and left out of the median.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

from sim.bench import emv as bench_emv
from sim.bench.record import summarise
from sim.runner.world import SimWorld
from sim.serve import to_toml

BOOT_TARGET_S = 0.300
CPU_TARGET_S = 0.010
TICK = os.sysconf("SC_CLK_TCK")


def _toml(data: dict[str, Any]) -> str:
    text = to_toml(data)  # the same writer as pos-sim --serve (inline tables for [emv] capks)
    tomllib.loads(text)  # what we write must read back
    return text


class _Terminal:
    """A pos-terminal child process, driven through its console keypad and read through its console display."""

    def __init__(self, config: Path, pycache: Path | None = None) -> None:
        env = dict(os.environ)
        if pycache is not None:  # run from compiled bytecode as an installed terminal does (see the docstring)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(pycache)
        self.proc = subprocess.Popen([sys.executable, "-m", "terminal.cli", "--config", str(config)],  # noqa: S603
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1, env=env)
        self.states: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # noqa: S101
        for line in self.proc.stdout:
            if line.startswith("── "):
                self.states.put(line.split()[1])

    def wait(self, state: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"terminal never showed {state}")
            try:
                if self.states.get(timeout=remaining) == state:
                    return
            except queue.Empty:
                continue

    def keys(self, text: str) -> None:
        assert self.proc.stdin is not None  # noqa: S101
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def threads(self) -> dict[str, tuple[int, int, int]]:
        """Per thread (``/proc/PID/task``): (CPU ns from ``schedstat``, voluntary, involuntary context switches)."""
        out: dict[str, tuple[int, int, int]] = {}
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                cpu = int((task / "schedstat").read_text().split()[0])
                status = dict(line.split(":", 1) for line in (task / "status").read_text().splitlines() if ":" in line)
            except (FileNotFoundError, ProcessLookupError):  # a thread that ended meanwhile
                continue
            out[task.name] = (cpu, int(status["voluntary_ctxt_switches"]), int(status["nonvoluntary_ctxt_switches"]))
        return out

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _per_thread(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]],
                transactions: int) -> dict[str, float]:
    """The terminal's threads by CPU per top-up, busiest first (in a chip top-up: the payment worker, the app
    thread, the card reader's link, the PIN pad's link, the console), and their context switches per top-up."""
    delta = {tid: tuple(a - b for a, b in zip(now, before.get(tid, (0, 0, 0)), strict=True))
             for tid, now in after.items()}
    ranked = sorted((d for d in delta.values() if d[0] > 0), key=lambda d: -d[0])
    block = {f"cpu_{rank}_s": round(d[0] / 1e9 / transactions, 5) for rank, d in enumerate(ranked[:5], 1)}
    block["voluntary_switches"] = round(sum(d[1] for d in delta.values()) / transactions, 1)
    block["involuntary_switches"] = round(sum(d[2] for d in delta.values()) / transactions, 1)
    return block


def _topup(term: _Terminal) -> None:
    term.keys("1")
    term.wait("sim_entry")
    term.keys("89860424000000000017 ENTER")
    term.wait("sim_details")
    term.keys("ENTER")
    term.wait("plan_select")
    term.keys("3")
    term.wait("channel_select")
    term.keys("1")
    term.wait("confirm")
    term.keys("0017 ENTER")  # the last four digits re-keyed
    term.wait("result")
    term.keys("ENTER")
    term.wait("balance")
    term.keys("ENTER")
    term.wait("home")


def main(transactions: int = 30, boots: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pos-bench-") as tmp:
        world = SimWorld(workdir=tmp, overrides={"terminal": {"duplicate_window_s": 0.0}})  # same sale 30 times
        config = Path(tmp) / "terminal.toml"
        config.write_text(_toml(world.config()), encoding="utf-8")
        pycache = Path(tmp) / "pycache"
        boot_times: list[float] = []
        boot_cpu: list[float] = []
        try:
            for _ in range(boots + 1):  # the first one compiles the bytecode cache
                started = time.perf_counter()
                term = _Terminal(config, pycache)
                term.wait("login")
                boot_times.append(time.perf_counter() - started)
                boot_cpu.append(term.cpu_s())  # less at the mercy of a busy machine than the wall time
                term.stop()
            term = _Terminal(config, pycache)
            term.wait("login")
            term.keys("01 ENTER 1111 ENTER")
            term.wait("home")
            world.insert_card("unionpay-debit")
            world.pinpad.auto_pin = "1234"
            world.reader.reinsert_on_beep = True
            _topup(term)  # warm-up: first-use imports and connections
            cpu_before, wall_before = term.cpu_s(), time.perf_counter()
            handshakes, carrier_conns = world.acquirer.handshakes, world.carrier.connections_accepted
            threads_before = term.threads()
            for _ in range(transactions):
                _topup(term)
            cpu = (term.cpu_s() - cpu_before) / transactions
            threads = _per_thread(threads_before, term.threads(), transactions)
            wall = time.perf_counter() - wall_before
            handshakes = world.acquirer.handshakes - handshakes
            carrier_conns = world.carrier.connections_accepted - carrier_conns
            term.stop()
        finally:
            world.stop()
    uncached, boot_times, boot_cpu = boot_times[0], boot_times[1:], boot_cpu[1:]
    boot = sorted(boot_times)[len(boot_times) // 2]
    return {
        "boot_to_login_s": round(boot, 4),
        "boot_uncached_s": round(uncached, 4),
        "boot_cpu_s": round(sorted(boot_cpu)[len(boot_cpu) // 2], 4),  # the terminal's CPU until login, median
        "boot_target_s": BOOT_TARGET_S,
        "boot_ratio_to_target": round(boot / BOOT_TARGET_S, 2),
        "terminal_cpu_per_topup_s": round(cpu, 4),
        "cpu_target_s": CPU_TARGET_S,
        "cpu_ratio_to_target": round(cpu / CPU_TARGET_S, 2),
        "topups_per_second_headless": round(transactions / wall, 2),
        "acquirer_handshakes_per_topup": round(handshakes / transactions, 2),  # kept connection: 0
        "carrier_connections_per_topup": round(carrier_conns / transactions, 2),
        "transactions": transactions,
        "terminal_threads_per_topup": threads,  # where the CPU goes, thread by thread (schedstat: ns, not ticks)
        "note": "boot = process start to login screen, median of runs from compiled bytecode (the first, compiling "
                "boot apart as boot_uncached_s); CPU from /proc (clock ticks)",
        "emv": bench_emv.measure(),
    }


def run_all(out: str | None = None) -> None:
    """Every benchmark, printed as one JSON report (python -m sim.bench [--out FILE]), with a ``summary`` of the
    targeted figures (``sim.bench.record``); ``out`` keeps a copy for ``make bench-compare``."""
    from sim.bench import acquirer as bench_acquirer
    from sim.bench import cashier as bench_cashier
    from sim.bench import firmware as bench_firmware
    from sim.bench import link as bench_link
    from sim.bench import money as bench_money
    from sim.bench import saf as bench_saf
    from sim.bench import smp as bench_smp
    from sim.bench import wallet as bench_wallet

    report = {**main(), "money": bench_money.measure(), "card_link": bench_link.measure(),
              "firmware": bench_firmware.measure(), "wallet": bench_wallet.measure(),
              "cashier": bench_cashier.measure(), "saf": bench_saf.measure(),
              "acquirer_link": bench_acquirer.measure(), "smp_vs_posfw": bench_smp.measure()}
    report["summary"] = summarise(report)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n", encoding="utf-8")


def cpu_runs(runs: int = 5, transactions: int = 20, out: str | None = None) -> dict[str, Any]:
    """``make bench-cpu``: the chip top-up part of ``main`` run ``runs`` times, each with its own world and
    ``pos-terminal`` (one boot compiling, one from bytecode): every run's CPU per top-up and boot CPU with their
    median, least and greatest. One run moves by ±20 % on the shared 2-core machine; judge a change by medians of
    several (better still interleaved with the code before), never by one figure. Measured, never asserted."""
    figures: dict[str, list[float]] = {"terminal_cpu_per_topup_s": [], "boot_cpu_s": []}
    threads: list[dict[str, float]] = []
    load_before = os.getloadavg()[0]
    for _ in range(runs):
        report = main(transactions=transactions, boots=1)
        for key, values in figures.items():
            values.append(report[key])
        threads.append(report["terminal_threads_per_topup"])

    def spread(values: list[float]) -> dict[str, Any]:
        ordered = sorted(values)
        middle = len(ordered) // 2
        median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        return {"median": round(median, 4), "min": ordered[0], "max": ordered[-1], "runs": values}

    result: dict[str, Any] = {key: spread(values) for key, values in figures.items()}
    result["cpu_target_s"] = CPU_TARGET_S
    result["cpu_median_ratio_to_target"] = round(result["terminal_cpu_per_topup_s"]["median"] / CPU_TARGET_S, 2)
    result["terminal_threads_per_topup_median"] = {
        key: spread([t[key] for t in threads if key in t])["median"] for key in threads[0]} if threads else {}
    result["transactions_per_run"] = transactions
    result["load_average_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n", encoding="utf-8")
    return result
