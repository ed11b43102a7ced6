"""``pos-sim``: the whole simulated terminal in one command.

    pos-sim                                     the terminal UI (Textual): log in, top up, insert cards, type PINs
    pos-sim --headless --scenario FILE...       run scenarios through the real ptys and sockets, exit 1 on failure
    pos-sim --list-scenarios                    the scenarios that come with pos-sim; --scenario takes their names
    pos-sim --headless --scenario F --junit X   also write JUnit XML for CI
    pos-sim --headless --trace-dir DIR --scenario F...   keep each run's journal, masked traces, log, receipts
    pos-sim --faults error_rate=1e-3,seed=7     every serial line damaged so (sim.devices.pty.LineFaults keys)
    pos-sim --serve [--workdir DIR]             devices and back ends only, for a real pos-terminal: prints JSON
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.devices.pty import LineFaults
    from sim.runner.world import SimWorld
    from sim.tui.app import PosSimApp

__all__ = ["main"]


def _version() -> str:
    try:
        return importlib.metadata.version("iotsim-pos")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pos-sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--headless", action="store_true", help="no UI; run --scenario files")
    parser.add_argument("--scenario", nargs="+", default=[], metavar="FILE", help="scenario TOML files")
    parser.add_argument("--junit", metavar="PATH", help="write JUnit XML results here")
    parser.add_argument("--baud", type=int, default=None, help="pace simulated serial devices at this rate")
    parser.add_argument("--log", metavar="PATH", help="write the terminal's log here")
    parser.add_argument("--faults", metavar="K=V,...", default="",
                        help="line faults on every serial link: seed, error_rate, drop_rate, dup_rate, "
                             "silence_rate, silence_s")
    parser.add_argument("--serve", action="store_true",
                        help="run every simulated device and back end for a real pos-terminal; print them as JSON")
    parser.add_argument("--workdir", metavar="DIR", help="--serve: keep the config, journal and flash here")
    parser.add_argument("--list-scenarios", action="store_true",
                        help="list the scenarios that come with pos-sim (--scenario takes these names)")
    parser.add_argument("--trace-dir", metavar="DIR", help="--headless: keep every scenario's journal, masked "
                        "device traces, transcripts, log and receipts in DIR/<scenario>/")
    args = parser.parse_args(argv)
    if args.list_scenarios:
        for name in sorted(packaged_scenarios()):
            print(name)
        return 0
    if args.serve:
        from sim.serve import serve

        return serve(args.workdir, args.baud)
    from sim.devices.pty import LineFaults

    try:
        faults = LineFaults.from_mapping(dict(item.split("=", 1) for item in args.faults.split(",") if item))
    except ValueError as exc:
        parser.error(f"--faults: {exc}")
    if args.log:
        logging.basicConfig(filename=args.log, level=logging.INFO,
                            format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
    if args.headless:
        if not args.scenario:
            parser.error("--headless needs --scenario FILE...")
        for sig in (signal.SIGHUP, signal.SIGTERM):  # stop as after a failed step: the world stopped, files removed
            signal.signal(sig, _leave)
        return _run_scenarios(args.scenario, args.junit, faults if faults.active else None,
                              Path(args.trace_dir) if args.trace_dir else None)
    from sim.runner.world import SimWorld

    try:
        from sim.tui.app import PosSimApp
    except ImportError as exc:
        print(f"pos-sim: the terminal UI needs the simulator extra (cannot import {exc.name}): "
              "pip install 'iotsim-pos[sim]'", file=sys.stderr)
        return 2

    world = SimWorld(baud=args.baud, faults=faults).start()
    return _run_tui(world, PosSimApp)


def _run_tui(world: SimWorld, make_app: type[PosSimApp]) -> int:
    """The UI until the user quits or its terminal goes away (SIGHUP, SIGTERM, the tty hung up: see
    ``sim.runner.hangup``); either way the world's devices and back ends are stopped and its files removed."""
    from sim.runner.hangup import TerminalWatch, exit_code

    def stuck(reason: str) -> None:  # the UI did not quit: stop the world from here and leave
        world.stop()
        os._exit(exit_code(reason))

    try:
        app = make_app(world)
        with TerminalWatch(sys.stdin.fileno(), on_gone=lambda _reason: app.exit(), on_stuck=stuck) as watch:
            app.run()
    finally:
        world.stop()
    return exit_code(watch.reason)


def _leave(signum: int, _frame: object) -> None:
    """--headless on SIGHUP / SIGTERM: unwind (the running scenario's ``finally`` stops its world), exit 128 + signal.
    A signal while a world is still being built leaves that world's pty directories (``pos-sim-tty-*``)."""
    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the world's stop short
    raise SystemExit(128 + signum)


def packaged_scenarios() -> dict[str, Path]:
    """The scenarios installed with the package, by name (``happy_path``, ``cards/expired``)."""
    root = Path(__file__).resolve().parent / "scenarios"
    return {path.relative_to(root).with_suffix("").as_posix(): path for path in sorted(root.rglob("*.toml"))}


def _scenario_path(name: str) -> Path:
    """A file path as given, or else the packaged scenario of that name (so a wheel user needs no checkout)."""
    path = Path(name)
    if path.exists() or path.suffix == ".toml":
        return path
    return packaged_scenarios().get(name, path)


def _run_scenarios(files: list[str], junit: str | None, faults: LineFaults | None,
                   trace_dir: Path | None = None) -> int:
    from sim.runner.scenario import Scenario, ScenarioResult, StepFailure, load_scenario, run_scenario, write_junit

    results = []
    for name in files:
        try:
            scenario = load_scenario(_scenario_path(name))
        except (OSError, ValueError, KeyError, TypeError, StepFailure) as exc:  # tomllib's errors are ValueErrors
            problem = f"cannot load scenario {name}: {exc.strerror if isinstance(exc, OSError) else exc}"
            print(f"scenario {name}\n  FAIL {problem}", flush=True)
            results.append(ScenarioResult(Scenario(Path(name).stem, name, {}, ()), False, 0.0, message=problem))
            continue
        print(f"scenario {scenario.name} ({name})", flush=True)
        result = run_scenario(scenario, faults=faults, trace_dir=trace_dir)
        results.append(result)
        verdict = "PASS" if result.passed else "FAIL"
        print(f"  {verdict} in {result.seconds:.2f}s" + (f"\n  {result.message}" if not result.passed else ""),
              flush=True)
    if junit:
        write_junit(results, junit)
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
