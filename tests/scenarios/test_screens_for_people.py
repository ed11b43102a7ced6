"""Screens for people (issue 14 item 5): the scenarios again, in Chinese, recording every screen the terminal
draws. A Chinese screen may show no English word outside ``flows.catalogue.day.ENGLISH_ALLOWED`` (brand names,
units, key names), and no screen at all may show a host:port, an exception's name or a Python repr.

The English expectations of the scenarios (``expect_text`` …) are left out here (an ``expect_error`` still waits for
an error line, whatever its text); the waits on screen states, the customer's actions and the ledger checks run as
written, so the same screens are reached.
"""

import re
from pathlib import Path

import pytest

from flows.catalogue.day import ENGLISH_ALLOWED
from sim.runner.scenario import Scenario, load_scenario, run_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
# one scenario per area in `make test`; every scenario under `make soak`
# void/refund (issue 14): void_bank_refuses reaches every screen `void` does and more (refused by the bank, top-up
# put back, a reprint); refund_any_closed_batch the wallet and card refunds; void_carrier_refuses the carrier's
# reasons and the "anyway" choice
SUBSET = ["happy_path", "host_decline", "host_unreachable", "wallet_customer_presented", "settlement_per_channel",
          "void_bank_refuses", "carrier_pending", "card_in_slot", "unknown_sim", "printer_problems", "refund",
          "open_items", "refund_any_closed_batch", "void_carrier_refuses"]
ENGLISH_STEPS = {"expect_text", "expect_no_text", "expect_error", "expect_receipt"}
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z]")
TECHNICAL = [
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}:\d+|\blocalhost:\d+|\[::1?\]:\d+"), "a host:port"),
    (re.compile(r"\b[A-Z]\w*(?:Error|Exception|Timeout|Gone|Fault)\b"), "an exception name"),
    (re.compile(r"<\w+(?:\.\w+)* object at 0x|\b(?:Msg|TxnRecord|WalletResult|SimInfo)\(|Traceback"),
     "a Python repr"),
]


def english_words(text: str) -> set[str]:
    """Latin words that are not allowed on a Chinese screen (ids like SIM00001… count as their letters)."""
    return {w for w in WORD.findall(text) if w not in ENGLISH_ALLOWED and not w.isupper() or
            (w.isupper() and len(w) > 1 and w not in ENGLISH_ALLOWED and not _id_prefix(w))} - {""}


def _id_prefix(word: str) -> bool:
    return word in {"SIM", "O", "T"}


def technical(text: str) -> list[str]:
    return [what for pattern, what in TECHNICAL if pattern.search(text)]


def _in_chinese(path: Path) -> tuple[Scenario, list[tuple[str, str]]]:
    sc = load_scenario(path)
    # an English error expectation still waits for the error line (in Chinese): the next key may depend on it
    steps = tuple({**step, "expect_error": ""} if "expect_error" in step else step
                  for step in sc.steps if "expect_error" in step or not (ENGLISH_STEPS & set(step)))
    seen: list[tuple[str, str]] = []

    def record(world):
        session = world.terminal.core.session
        session.lang = "zh"
        started = {"zh": False}

        def listen(screen):  # from the first screen drawn in Chinese, while the cashier keeps Chinese (key 0)
            started["zh"] = started["zh"] or not WORD.search(screen.title)
            if started["zh"] and session.lang == "zh":
                seen.append((screen.state, screen.text()))
        world.terminal.add_listener(listen)
    result = run_scenario(Scenario(sc.name, sc.path, sc.world, steps, sc.faults), on_start=record)
    assert result.passed, result.message + "\n" + "\n".join(result.log)
    return sc, seen


def test_the_checks_catch_what_they_should():
    assert english_words("充值成功 Top-up done") == {"Top-up", "done"}
    assert english_words("SIM …0017 · 1GB 月包 · 微信支付 WeChat · F2 换支付方式") == set()
    assert technical("无法连接运营商（carrier 127.0.0.1:39157: no answer within 3.0 s）") == ["a host:port"]
    assert technical("终端错误（LinkTimeout）") == ["an exception name"]
    assert technical("Msg(key='x', args={})") == ["a Python repr"]
    assert technical("订单号 SIM00001261203081236000003 ￥10.00") == []


def _check(path: Path) -> None:
    _, seen = _in_chinese(path)
    problems = []
    for state, text in seen:
        if state == "boot":  # drawn before the language was switched
            continue
        words = english_words(text)
        if words:
            problems.append(f"[{state}] English {sorted(words)}:\n{text}")
        problems += [f"[{state}] shows {what}:\n{text}" for what in technical(text)]
    assert not problems, f"{len(problems)} screen(s) not for people:\n\n" + "\n\n".join(dict.fromkeys(problems))


@pytest.mark.scenario
@pytest.mark.parametrize("name", SUBSET)
def test_chinese_screens_of_the_scenarios_speak_chinese(name):
    _check(SCENARIOS / f"{name}.toml")


# these two wait on English texts (their expect_* steps) to pace the customer: without them they race
PACED_BY_TEXT = {"magstripe_fallback", "saf_host_down"}


@pytest.mark.soak
@pytest.mark.parametrize("path", [p for p in sorted(SCENARIOS.glob("*.toml")) if p.stem not in PACED_BY_TEXT],
                         ids=lambda p: p.stem)
def test_every_scenario_in_chinese(path):
    _check(path)
