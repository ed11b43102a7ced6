"""Disk full at every durability point of a real top-up (issue 15 items 3 and 6), through a real ``pos-terminal``.

Runs where the journal lives on a small tmpfs of its own: ``python -m sim.crash.diskfull DIR`` expects DIR to be
one (``tests/terminal/test_storage_faults.py`` mounts it inside ``unshare -r -m``). For each durability point N
of the scenario (``drivers.crashpoint``: every journal commit and every request sent), on a fresh world: the
terminal process fills the tmpfs at point N (``POS_FILL_AT``) and carries on as a terminal with a full card
would; the cashier finishes the sale as far as the terminal lets them; then the filler is removed (space comes
back) and the harness waits until the journal has nothing open. Each point must show:

* no blank screen: every result screen says something besides its title;
* nothing lost: the host's, carrier's and wallet platform's ledgers agree with the journal
  (``sim.crash.harness.check_invariants``: every charged sale topped up once or given back);
* when a write failed, the console said so ("The journal could not be written …", "Only 0 MB of storage left").

Prints one line per point and ``disk full points survived S / T (writes refused at W)``; exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from flows.messages import t
from sim.crash.drive import SCENARIOS, CrashScenario, TerminalProcess, crash_world
from sim.crash.harness import _rows, _settle, check_invariants, points_of, wallet_ledger

__all__ = ["PointResult", "run_point", "main"]

SAID_SO = (t("journal.write_failed", "en"), "MB of storage left")  # a write failed / too little space for a sale


@dataclass(frozen=True)
class PointResult:
    point: int
    kind: str
    refused: bool  # a journal write failed and the terminal said so
    problems: tuple[str, ...]


def _cashier(term: TerminalProcess, sc: CrashScenario) -> bool:
    """The cashier's keys of one card top-up, stopping where the terminal ends the sale (or refuses it); False
    when the terminal came up out of service (storage full from the start)."""
    script = [("01 ENTER 1111 ENTER", "home"), ("1", "sim_entry"), (f"{sc.iccid} ENTER", "sim_details"),
              ("ENTER", "plan_select"), (sc.plan_key, "channel_select"), (sc.channel_key, "confirm"),
              (f"{sc.iccid[-4:]} ENTER", "result")]
    try:
        if term.wait_first(("login", "out_of_service"), 30) != "login":
            return False
    except TimeoutError:
        return True
    for keys, state in script:
        try:
            if not term.keys(keys) or term.wait_first((state, "result"), 30) != state:
                break
        except TimeoutError:
            return True
    term.keys("ENTER")
    return True


def _shows(term: TerminalProcess, state: str) -> bool:
    try:
        return term.wait(state, 30)
    except TimeoutError:
        return False


def _blank_results(lines: list[str]) -> list[str]:
    """Result screens that show nothing but their title (the console prints ``── result`` … a rule of ``─``)."""
    blank, body = [], None
    for line in lines:
        if line.startswith("── result"):
            body = []
        elif body is not None and line.startswith("────"):
            if len([b for b in body if b.strip()]) < 2:
                blank.append(" | ".join(body))
            body = None
        elif body is not None:
            body.append(line)
    return blank


def run_point(workdir: Path, sc: CrashScenario, point: int, kind: str) -> PointResult:
    workdir.mkdir(parents=True)
    world, config = crash_world(workdir, sc.floor_limit_minor)
    filler, journal = workdir / "filler", workdir / "journal.db"
    problems: list[str] = []
    try:
        world.insert_card(sc.card)
        world.pinpad.auto_pin = "1234"
        term = TerminalProcess(config, {"POS_FILL_AT": str(point), "POS_FILL_FILE": str(filler)})
        try:
            started = _cashier(term, sc)
            filler.unlink(missing_ok=True)  # space comes back
            if not started and not (term.keys("ENTER") and _shows(term, "login")):
                problems.append("still out of service after space came back")
            still = _settle(journal, 60)
            problems += [f"txn {txn} still {state} after space came back" for txn, state in still]
            problems += [f"blank result screen: {b!r}" for b in _blank_results(term.lines)]
            refused = any(said in line for line in term.lines for said in SAID_SO)
        finally:
            term.stop()
        problems += check_invariants(_rows(journal), world.acquirer, world.carrier, "SIM00001",
                                     wallet_ledger(world.wallet))
    finally:
        filler.unlink(missing_ok=True)
        world.stop()
    return PointResult(point, kind, refused, tuple(problems))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.crash.diskfull", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir", help="a directory on a small tmpfs of its own")
    parser.add_argument("--scenario", default="card_approve", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--first", type=int, default=1, help="the first point to try (1: boot)")
    args = parser.parse_args(argv)
    sc = next(s for s in SCENARIOS if s.name == args.scenario)
    kinds = points_of(sc)
    results = []
    for number in range(args.first, len(kinds) + 1, args.every):
        result = run_point(Path(args.workdir) / f"p{number}", sc, number, kinds[number - 1])
        results.append(result)
        print(f"  {sc.name} point {number:2d} {result.kind:12s} "
              + ("writes refused, said so; " if result.refused else "")
              + ("survived" if not result.problems else "LOST: " + "; ".join(result.problems)), flush=True)
    survived = sum(not r.problems for r in results)
    print(f"disk full points survived {survived} / {len(results)} (writes refused at "
          f"{sum(r.refused for r in results)})", flush=True)
    return 0 if survived == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
