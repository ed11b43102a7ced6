"""Issue 17: the bench report names each target with its ratio, and bench-compare shows ratios against a saved run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sim.bench.record import TARGETS, compare, summarise

STABLE = ("boot_to_login_s", "terminal_cpu_per_topup_s", "card_link.efficiency_115200.efficiency",
          "card_link.efficiency_9600.efficiency", "money.commits_ratio_to_minimum", "saf.commits_ratio_to_minimum",
          "firmware.delta_one_line_change_ratio", "emv.tap_ms_per_txn_worst")


def test_the_targets_keep_their_stable_keys() -> None:
    assert tuple(TARGETS) == STABLE


def test_summary_puts_each_figure_next_to_its_target_and_says_when_one_is_missing() -> None:
    report = {"boot_to_login_s": 0.24, "card_link": {"efficiency_115200": {"efficiency": 1.38}}}
    summary = summarise(report)
    assert summary["boot_to_login_s"] == {"value": 0.24, "target": 0.3, "ratio": 0.8, "met": True}
    assert summary["card_link.efficiency_115200.efficiency"] == {"value": 1.38, "target": 1.15, "ratio": 1.2,
                                                                 "met": False}
    assert summary["saf.commits_ratio_to_minimum"]["value"] is None


def test_compare_prints_ratios_and_missing_figures(tmp_path: Path) -> None:
    base = {"boot_to_login_s": 0.40, "money": {"commits_ratio_to_minimum": 2.25}, "gone": 3}
    new = {"boot_to_login_s": 0.30, "money": {"commits_ratio_to_minimum": 1.5}, "added": 1}
    lines = {line.split()[0]: line.split()[1:] for line in compare(base, new)[1:-1]}
    assert lines["boot_to_login_s"] == ["0.4", "0.3", "0.75", "*"]
    assert lines["money.commits_ratio_to_minimum"] == ["2.25", "1.5", "0.67", "*"]
    assert lines["gone"] == ["3", "—", "missing"] and lines["added"] == ["—", "1", "missing"]
    (tmp_path / "a.json").write_text(json.dumps(base))
    (tmp_path / "b.json").write_text(json.dumps(new))
    run = subprocess.run([sys.executable, "-m", "sim.bench.record", str(tmp_path / "a.json"),
                          str(tmp_path / "b.json")], capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0 and "0.75" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "sim.bench.record", str(tmp_path / "none.json"),
                          str(tmp_path / "b.json")], capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode == 2 and "No such file" in bad.stderr and "Traceback" not in bad.stderr
