"""``pos-sim`` (the terminal UI) when its terminal goes away: it ends, stopping its devices and back ends.

End to end: the real ``pos-sim`` on a real pty (its stdin, stdout and stderr), once as the session's controlling
terminal (closing the pty's master sends SIGHUP, as when a tmux pane is killed), once as a tty that is nobody's
controlling terminal (no signal: only the hung-up tty tells; Textual's input thread used to spin on its end of
file at full speed, forever), and once quit with ``q``. The world's files live in a ``TMPDIR`` of the test:
``SimWorld.stop()`` removing them is the proof that the devices and back ends were stopped, not killed.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sim.runner.hangup import TerminalWatch, exit_code

ANSI = re.compile(rb"\x1b\[[0-9;?<>=$]*[a-zA-Z~]")


class _Calls:
    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.event = threading.Event()

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)
        self.event.set()


def test_a_hung_up_tty_is_noticed_without_reading_it() -> None:
    master, slave = pty.openpty()
    gone = _Calls()
    try:
        with TerminalWatch(slave, on_gone=gone) as watch:
            os.write(master, b"1")  # a key waiting on the tty is not a hang-up, and is left for the UI to read
            assert not gone.event.wait(0.3)
            os.close(master)
            assert gone.event.wait(5)
        assert gone.reasons == ["hang-up"] and watch.reason == "hang-up"
    finally:
        os.close(slave)


@pytest.mark.parametrize(("sig", "reason"), [(signal.SIGHUP, "SIGHUP"), (signal.SIGTERM, "SIGTERM")])
def test_sighup_and_sigterm_are_noticed_and_the_handlers_put_back(sig: signal.Signals, reason: str) -> None:
    master, slave = pty.openpty()
    before = signal.getsignal(sig)
    gone = _Calls()
    try:
        with TerminalWatch(slave, on_gone=gone) as watch:
            assert signal.getsignal(sig) != before
            os.kill(os.getpid(), sig)
            assert gone.event.wait(5)
        assert gone.reasons == [reason] and watch.reason == reason
        assert signal.getsignal(sig) == before
    finally:
        os.close(master)
        os.close(slave)


def test_a_ui_that_does_not_quit_is_left_behind_after_the_grace_time() -> None:
    master, slave = pty.openpty()
    stuck = _Calls()
    try:
        with TerminalWatch(slave, on_gone=lambda _reason: None, on_stuck=stuck, grace_s=0.2):
            os.close(master)
            assert stuck.event.wait(5)
        assert stuck.reasons == ["hang-up"]
        quit_in_time = _Calls()
        with TerminalWatch(slave, on_gone=lambda _reason: None, on_stuck=quit_in_time, grace_s=0.5):
            time.sleep(0.1)  # the slave is hung up already: on_gone at once, then the caller leaves in time
        time.sleep(0.6)
        assert quit_in_time.reasons == []
    finally:
        os.close(slave)


def test_exit_codes_follow_the_shell_convention() -> None:
    assert [exit_code(r) for r in (None, "hang-up", "SIGHUP", "SIGTERM")] == [0, 129, 129, 143]


class _PosSim:
    """``pos-sim`` with a pty as its terminal; what it draws is read (and so never blocks it) on a thread."""

    def __init__(self, tmp: Path, controlling: bool) -> None:
        self.master, slave = pty.openpty()
        env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40", TMPDIR=str(tmp))
        command = [sys.executable, "-m", "sim.cli"]
        # setsid -c: a new session whose controlling terminal is this pty (as a shell in a tmux pane has);
        # otherwise a new session without one, so that closing the pty sends no signal at all
        self.proc = subprocess.Popen(["setsid", "-c", *command] if controlling else command,  # noqa: S603
                                     stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=not controlling)
        os.close(slave)
        self.screen = bytearray()
        self.closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self.closed:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if ready:
                    data = os.read(self.master, 65536)
                    if not data:
                        return
                    self.screen.extend(data)
            except (OSError, ValueError):  # closed under us: the test hung up
                return

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in ANSI.sub(b"", bytes(self.screen)):
            assert self.proc.poll() is None, f"pos-sim ended early: {self.proc.returncode}"
            assert time.monotonic() < deadline, f"pos-sim never showed {text!r}"
            time.sleep(0.1)

    def hang_up(self) -> None:
        self.closed = True
        self._reader.join(timeout=5)
        os.close(self.master)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.closed:
            self.hang_up()


@pytest.mark.scenario
@pytest.mark.parametrize("how", ["controlling terminal: SIGHUP", "no controlling terminal: the tty only"])
def test_pos_sim_ends_cleanly_when_its_terminal_goes_away(tmp_path: Path, how: str) -> None:
    sim = _PosSim(tmp_path, controlling=how.startswith("controlling"))
    try:
        sim.wait_for("User id")  # the login screen is drawn: the world and the UI are up
        assert list(tmp_path.glob("pos-sim-*")), "the world's work directory"
        sim.hang_up()
        assert sim.proc.wait(timeout=30) == 129  # ended by itself, as after SIGHUP; not killed by it
        assert list(tmp_path.glob("pos-sim-*")) == []  # SimWorld.stop() ran to its end
    finally:
        sim.kill()


@pytest.mark.scenario
def test_pos_sim_quit_by_the_user_still_ends_with_0(tmp_path: Path) -> None:
    sim = _PosSim(tmp_path, controlling=True)
    try:
        sim.wait_for("User id")
        os.write(sim.master, b"q")
        assert sim.proc.wait(timeout=30) == 0
        assert list(tmp_path.glob("pos-sim-*")) == []
    finally:
        sim.kill()


@pytest.mark.scenario
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGHUP, 129), (signal.SIGTERM, 143)])
def test_pos_sim_headless_stops_its_world_on_sighup_and_sigterm(tmp_path: Path, sig: signal.Signals,
                                                                code: int) -> None:
    """A CI job cancelled, or the shell of a headless run closed: the running scenario's world is stopped and its
    files removed (SIGTERM and SIGHUP used to kill it where it stood, leaving ``pos-sim-*`` behind)."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "--headless", "--scenario",  # noqa: S603
                             *["happy_path"] * 20], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("pos-sim-*/journal.db")):  # a scenario's world is started (not being built)
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == code
        assert list(tmp_path.glob("pos-sim-*")) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
