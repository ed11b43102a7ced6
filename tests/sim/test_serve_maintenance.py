"""``pos-sim --serve`` runs the terminal's maintenance port: a technician's ``smpmgr`` and ``pos-fw`` reach it on the
printed pty, an upgrade signed with ``make image``'s development key is test-booted by the simulated device."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from firmware_image.image import Version, make_image
from firmware_image.keys import generate, save_private

pytestmark = pytest.mark.scenario


def _tool(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120,  # noqa: S603
                          check=False, env=dict(os.environ, COLUMNS="200"))


@pytest.mark.slow
def test_serve_prints_the_maintenance_pty_and_smpmgr_upgrades_through_it(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    (tmp_path / "w").mkdir()
    key = generate("ed25519")
    save_private(key, tmp_path / "build" / "dev-signing-key.pem")  # as 'make image' leaves it
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as app:
        app.writestr("__main__.py", "print('demo app')\n")
    image = tmp_path / "app.img"
    image.write_bytes(make_image(buffer.getvalue(), version=Version(2, 1), key=key, security_counter=3,
                                 device_class="iotsim-pos-1"))
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "--serve", "--workdir", str(tmp_path / "w")],  # noqa: S603
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        maintenance = json.loads(proc.stdout.readline())["maintenance"]
        port = maintenance["port"]
        assert os.path.exists(port) and Path(maintenance["flash"]).is_file()
        assert str((tmp_path / "build" / "dev-signing-key.pem").resolve()) in maintenance["trusted_keys"]
        factory = _tool(tmp_path, "-m", "smpmgr", "--port", port, "image", "state-read")
        assert factory.returncode == 0 and "version='1.0.0'" in factory.stdout, factory.stdout + factory.stderr
        assert "slot=1" not in factory.stdout
        upgraded = _tool(tmp_path, "-m", "smpmgr", "--port", port, "upgrade", str(image))
        assert "Upgrade complete." in upgraded.stdout, upgraded.stdout + upgraded.stderr
        for _ in range(100):  # the device resets, test-boots the image, and serves again
            slots = _tool(tmp_path, "-m", "firmware_image.cli", "slots", "--json", "--port", port)
            if slots.returncode == 0 and '"trial"' in slots.stdout:
                break
            time.sleep(0.1)
        rows = json.loads(slots.stdout)
        assert [(r["slot"], r["state"], r["version"], r["running"]) for r in rows] == [
            (0, "confirmed", "1.0.0+0", False), (1, "trial", "2.1.0+0", True)]
        listed = _tool(tmp_path, "-m", "smpmgr", "--port", port, "image", "state-read")
        assert "slot=0" in listed.stdout and "slot=1" in listed.stdout and "version='2.1.0'" in listed.stdout
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
