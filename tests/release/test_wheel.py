"""Issue 18: what a packager builds installs into a clean virtualenv and runs the packaged happy path.

``python -m build`` makes the sdist and, from it, the wheel, each in an isolated build environment (as a
packager's machine would); the wheel goes into a fresh virtualenv with only its declared dependencies — no
simulator extra, no checkout on the path — and must start, print its example configuration and pass the
scenario that comes inside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str | Path, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout, check=False)
    assert run.returncode == 0, f"{args}:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    return run


@pytest.mark.release
def test_the_built_wheel_installs_alone_and_runs_the_packaged_happy_path(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    wheel = next(dist.glob("*.whl"))
    sdist = next(dist.glob("*.tar.gz"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "terminal/example_config.toml" in names and "sim/scenarios/happy_path.toml" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert any(n.endswith("/LICENSE") for n in tarfile.open(sdist).getnames())

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    _run(bin_dir / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    installed = _run(bin_dir / "python", "-m", "pip", "list", "--format=freeze", cwd=tmp_path).stdout.lower()
    assert "textual" not in installed and "pillow" not in installed  # the device install has only the product
    version = _run(bin_dir / "pos-terminal", "--version", cwd=tmp_path).stdout
    assert version.split()[-1] == metadata.version("iotsim-pos")
    example = _run(bin_dir / "pos-terminal", "--example-config", cwd=tmp_path).stdout
    assert "[terminal]" in example and "journal" in example
    (tmp_path / "terminal.toml").write_text(example, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    checked = subprocess.run([str(bin_dir / "pos-terminal"), "--config", "terminal.toml", "--check-config"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False)
    # valid, but it names files of a real installation (/etc/pos/…): the start checks say what is missing
    assert checked.returncode == 2 and "[terminal]" in checked.stdout, checked.stderr
    assert "configuration error (device secret)" in checked.stderr, checked.stderr
    assert "happy_path" in _run(bin_dir / "pos-sim", "--list-scenarios", cwd=tmp_path).stdout.split()
    result = _run(bin_dir / "pos-sim", "--headless", "--scenario", "happy_path", cwd=tmp_path)
    assert "1 passed, 0 failed" in result.stdout


@pytest.mark.release
def test_pip_wheel_builds_from_the_checkout(tmp_path: Path) -> None:
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path, ROOT, cwd=tmp_path)
    assert len(list(tmp_path.glob("iotsim_pos-*.whl"))) == 1
