"""Keys typed ahead (a console line, a keypad buffer): each is handled in order and the screen they change is drawn
once, after the last; every state they reach is still drawn, and the screen settles to exactly what one key at a
time gives. Through the core by hand, then through the real ``pos-terminal`` process on the simulated world.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from terminal.cli import _keys_of
from terminal.core import KeyPressed, Render
from terminal.machine import State
from terminal.screens import Key
from tests.terminal.test_core import ICCID, Driver

ROOT = Path(__file__).resolve().parents[2]


def _typed(d: Driver, keys: list[Key]) -> list[Any]:
    """What the shell does with keys already waiting: all but the last are fed with ``keys_waiting``."""
    out: list[Any] = []
    for i, key in enumerate(keys):
        out += d.core.handle(KeyPressed(key), d.now, keys_waiting=i < len(keys) - 1)
    return out


def _drawn(out: list[Any]) -> list[str]:
    return [c.screen.state for c in out if isinstance(c, Render)]


def test_a_line_of_digits_draws_its_screen_once_and_it_shows_every_digit() -> None:
    typed, stepped = Driver(), Driver()
    for d in (typed, stepped):
        d.logged_in()
        d.keys("1")
    digits = [Key(c) for c in ICCID[:12]]
    out = _typed(typed, digits)
    assert _drawn(out) == ["sim_entry"]
    for key in digits:
        stepped.feed(KeyPressed(key))
    assert typed.core.screen == stepped.core.screen and "8986 0424 0000" in typed.core.screen.text()


def test_every_state_a_line_reaches_is_drawn_on_the_way() -> None:
    d = Driver()
    d.logged_in()
    out = _typed(d, [Key.D1, *(Key(c) for c in ICCID), Key.ENTER])
    assert _drawn(out) == ["sim_entry", "sim_lookup"]  # home → entry (drawn at once), 20 digits, ENTER → lookup
    assert d.core.state is State.SIM_LOOKUP and ICCID[-4:] in d.core.screen.text()


def test_a_held_redraw_is_drawn_by_the_next_event_whatever_it_is() -> None:
    d = Driver()
    d.logged_in()
    d.keys("1")
    assert _drawn(d.core.handle(KeyPressed(Key.D8), d.now, keys_waiting=True)) == []
    assert _drawn(d.core.handle(KeyPressed(Key.CLEAR), d.now, keys_waiting=True)) == []
    assert _drawn(d.core.handle(KeyPressed(Key.D9), d.now, keys_waiting=False)) == ["sim_entry"]
    assert d.core.screen.entry == "9"
    assert _drawn(d.core.handle(KeyPressed(Key.D7), d.now, keys_waiting=True)) == []
    d.core.refresh()  # between events nothing is held: drawn at once
    assert d.core.screen.entry == "97"


def test_a_bad_number_typed_ahead_still_shows_its_message() -> None:
    d = Driver()
    d.logged_in()
    d.keys("1")
    out = _typed(d, [Key.D1, Key.D2, Key.D3, Key.ENTER])
    assert _drawn(out) == ["sim_entry"] and d.core.state is State.SIM_ENTRY
    assert d.core.screen.error and d.core.screen.entry == "123"


def test_the_console_line_is_all_keys_or_none() -> None:
    assert _keys_of("01 enter 1111 ENTER\n") == ([Key.D0, Key.D1, Key.ENTER, *[Key.D1] * 4, Key.ENTER], "")
    assert _keys_of("\n") == ([Key.ENTER], "")
    assert _keys_of("12 ENTR 3") == ([], "ENTR")
    assert _keys_of("١٢") == ([], "١")  # a digit to str.isdigit, not a key of the keypad


def _states(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def test_the_pos_terminal_console_draws_a_typed_number_once(tmp_path: Path) -> None:
    """The real process on the simulated world's ptys and loopback carrier: the ICCID typed as one line shows the
    SIM entry screen once (when the menu key opened it), then the lookup and the SIM's details; a line with a
    word that is no key is refused whole, and the screen stays as it was."""
    from sim.bench.suite import _toml
    from sim.runner.world import SimWorld

    world = SimWorld(workdir=tmp_path)
    config = tmp_path / "terminal.toml"
    config.write_text(_toml(world.config()), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "terminal.cli", "--config", str(config)],  # noqa: S603
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, cwd=ROOT, bufsize=1)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_states, args=(proc, lines), daemon=True).start()
    seen: list[str] = []

    def until(wanted: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if line.startswith(wanted):
                return
        raise AssertionError(f"never saw {wanted!r}:\n{''.join(seen)}")

    def send(text: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(text + "\n")
        proc.stdin.flush()

    try:
        until("── login")
        send("01 ENTER 1111 ENTER")
        until("── home")
        send("1")
        until("── sim_entry")
        start = len(seen)
        send(f"{ICCID[:4]} ENTR {ICCID[4:]} ENTER")  # one word is no key: nothing of the line is typed
        until("unknown key 'ENTR'")
        send(f"{ICCID} ENTER")
        until("── sim_details")
        until("MSISDN")  # the details' second line: the ICCID line is read
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        world.stop()
    drawn = [line.split()[1] for line in seen[start:] if line.startswith("── ")]
    assert drawn == ["sim_lookup", "sim_details"], "".join(seen)
    assert f"ICCID  {ICCID[:4]} {ICCID[4:8]}" in "".join(seen[start:])


def test_press_keys_queues_nothing_when_one_is_no_key() -> None:
    from terminal.app import TerminalApp
    from tests.terminal.test_core import _services

    app = TerminalApp(_services())  # not started: the queue is only looked at
    with pytest.raises(ValueError, match="'X' is not a valid Key"):
        app.press_keys(["1", "X"])
    app.press_keys([])  # nothing typed: nothing queued (an empty item would leave a held redraw undrawn)
    assert app._events.empty()
    app.press_keys(["1", Key.ENTER])
    assert not app._events.empty()
