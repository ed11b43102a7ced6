"""Issue 18: every simulator key the README documents is bound in the simulator, under that very key."""

from __future__ import annotations

import re
from pathlib import Path

from sim.tui.app import PosSimApp

README = Path(__file__).resolve().parents[2] / "README.md"
# README spelling → Textual key names
NAMES = {"Enter": "enter", "Esc": "escape", "Backspace": "backspace", "PgUp": "pageup", "PgDn": "pagedown",
         "Home": "home", "End": "end", "↑": "up", "↓": "down", "[": "left_square_bracket",
         "]": "right_square_bracket"}


def documented_keys(text: str) -> set[str]:
    """The backticked keys in the first column of every ``| key | does |`` table (``0``–``9`` and ``F1``–``F4``
    are ranges)."""
    keys: set[str] = set()
    in_table = False
    for line in text.splitlines():
        if line.strip() == "| key | does |":
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
        if in_table and not line.startswith("|---"):
            first = re.sub(r"`(\w+)`–`(\w+)`", r"`\1–\2`", line.split("|")[1])
            if first.strip() == "same keys while the PIN pad asks for a PIN":
                continue
            for token in re.findall(r"`([^`]+)`", first) + re.findall(r"\(or ([^)]+)\)", first):
                for part in token.split():
                    keys |= _expand(part)
    return keys


def _expand(token: str) -> set[str]:
    ranges = {"0–9": {str(d) for d in range(10)}, "F1–F4": {f"f{n}" for n in range(1, 5)}}
    return ranges.get(token, {NAMES.get(token, token)})


def bound_keys() -> set[str]:
    return {key.strip() for binding in PosSimApp.BINDINGS for key in binding.key.split(",")}


def test_every_documented_simulator_key_is_bound() -> None:
    documented = documented_keys(README.read_text(encoding="utf-8"))
    assert len(documented) >= 30  # digits, keypad, cards, devices, wallet phone: the tables were found
    assert sorted(documented - bound_keys()) == []


def test_a_key_the_simulator_lacks_is_caught() -> None:
    table = "| key | does |\n|---|---|\n| `z` | teleport the card |\n| `0`–`9` | digits |\n"
    assert documented_keys(table) - bound_keys() == {"z"}
