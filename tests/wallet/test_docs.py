"""The wallet and scanner docs and docstrings show what the code does."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from drivers.scanner_codec import TRIGGER, UNTRIGGER
from sim.backends.wallet import OUTCOMES

DOCS = Path(__file__).parents[2] / "docs" / "protocols"
MODULES = ["emv.qr", "drivers.scanner", "drivers.wallet", "sim.devices.scanner", "sim.backends.wallet", "flows.pricing",
           "flows.wallet_payment", "flows.wallet_recovery", "terminal.handlers.wallet", "drivers.wechatpay_codec",
           "drivers.wechatpay", "drivers.alipay", "drivers.alipay_sign", "drivers.platform_http",
           "drivers.merchant_keys", "sim.backends.wechatpay", "sim.backends.alipay"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_scanner_doc_shows_the_bytes_the_code_uses() -> None:
    text = (DOCS / "scanner.md").read_text(encoding="utf-8")
    assert TRIGGER.hex(" ").upper() in text and UNTRIGGER.hex(" ").upper() in text
    assert (b"134567890123456789\r\n").hex(" ").upper() in text


def test_wallet_doc_lists_every_simulated_outcome() -> None:
    text = (DOCS / "wallet-api.md").read_text(encoding="utf-8")
    for name, ending in OUTCOMES.items():
        assert f"`{name}`" in text
        assert ending == "00" or f"| `{ending}` | `{name}` |" in text
