"""The bench report as a record: the issue's targets next to the figures, and a comparison with a saved run.

``make bench`` writes ``build/bench.json``; ``make bench-compare BASE=old.json`` prints, for every figure both
runs have, the old value, the new one and their ratio, so that a regression shows at a glance. The keys of
``TARGETS`` are stable (history stays comparable); a figure a run lacks is reported as missing, not invented.

>>> flatten({"a": 1, "b": {"c": 2.5, "d": "text", "e": True}})
{'a': 1, 'b.c': 2.5}
>>> summarise({"boot_to_login_s": 0.45})["boot_to_login_s"]
{'value': 0.45, 'target': 0.3, 'ratio': 1.5, 'met': False}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["TARGETS", "flatten", "summarise", "compare", "main"]

# key → target; every target is an upper bound (smaller is better)
TARGETS: dict[str, float] = {
    "boot_to_login_s": 0.300,
    "terminal_cpu_per_topup_s": 0.010,
    "card_link.efficiency_115200.efficiency": 1.15,
    "card_link.efficiency_9600.efficiency": 1.15,
    "money.commits_ratio_to_minimum": 1.5,
    "saf.commits_ratio_to_minimum": 1.5,
    "firmware.delta_one_line_change_ratio": 0.05,
    "emv.tap_ms_per_txn_worst": 50.0,  # a tap's terminal-side CPU budget (issue 20), Entry Point + kernel
}


def flatten(report: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every number of a nested report under its dotted key (booleans and text left out)."""
    flat: dict[str, float] = {}
    for key, value in report.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
    return flat


def summarise(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    flat = flatten(report)
    summary: dict[str, dict[str, Any]] = {}
    for key, target in TARGETS.items():
        value = flat.get(key)
        summary[key] = ({"value": None, "target": target, "ratio": None, "met": None} if value is None else
                        {"value": value, "target": target, "ratio": round(value / target, 2),
                         "met": value <= target})
    return summary


def compare(base: dict[str, Any], new: dict[str, Any]) -> list[str]:
    old_flat, new_flat = flatten(base), flatten(new)
    lines = [f"{'figure':58} {'base':>12} {'now':>12} {'now/base':>9}"]
    for key in sorted(old_flat.keys() | new_flat.keys()):
        old, now = old_flat.get(key), new_flat.get(key)
        if old is None or now is None:
            lines.append(f"{key:58} {_show(old):>12} {_show(now):>12} {'missing':>9}")
            continue
        ratio = "—" if old == 0 else f"{now / old:.2f}"
        mark = "  *" if key in TARGETS else ""
        lines.append(f"{key:58} {_show(old):>12} {_show(now):>12} {ratio:>9}{mark}")
    lines.append("* a figure with a target (smaller is better); see summary in the report")
    return lines


def _show(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m sim.bench.record BASE.json NEW.json", file=sys.stderr)
        return 2
    try:
        base, new = (json.loads(Path(name).read_text(encoding="utf-8")) for name in args)
    except (OSError, ValueError) as exc:
        print(f"bench-compare: {exc}", file=sys.stderr)
        return 2
    print("\n".join(compare(base, new)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
