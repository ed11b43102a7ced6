"""Issue 18: a missing or malformed scenario file is a failed test case with a clear message, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def test_missing_and_malformed_scenarios_are_failed_cases_in_junit(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("name = 'unterminated\n", encoding="utf-8")
    empty = tmp_path / "empty.toml"
    empty.write_text("name = 'no steps'\n", encoding="utf-8")
    junit = tmp_path / "results.xml"
    run = subprocess.run([sys.executable, "-m", "sim.cli", "--headless", "--scenario", str(tmp_path / "missing.toml"),
                          str(broken), str(empty), "--junit", str(junit)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1
    assert "Traceback" not in run.stdout + run.stderr
    assert "0 passed, 3 failed" in run.stdout
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "3" and suite.get("failures") == "3"
    messages = [case.find("failure").get("message") for case in suite.iter("testcase")]  # type: ignore[union-attr]
    assert messages[0] == f"cannot load scenario {tmp_path / 'missing.toml'}: No such file or directory"
    assert messages[1].startswith(f"cannot load scenario {broken}: ")
    assert messages[2] == f"cannot load scenario {empty}: {empty}: a scenario needs [[steps]]"
