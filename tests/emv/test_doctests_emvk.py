"""Run the docstring examples of the EMV kernel modules and the simulated card PKI, so they cannot rot."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from emv import (
    authentication,
    capk,
    cli,
    completion,
    config,
    contactless,
    cvm,
    describe,
    entry_point,
    kernel,
    kernel_c2,
    kernel_c3,
    oda,
    risk,
    scripts,
    tags,
    transcript,
)
from sim.backends import issuer, pki
from sim.devices import card_oda, cards, contactless_cards
from sim.runner import transcripts

MODULES = [authentication, capk, completion, config, describe, kernel, oda, risk, scripts, transcript, card_oda, cards,
           issuer, pki, transcripts, tags, cvm, contactless, entry_point, kernel_c2, kernel_c3, contactless_cards]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_cli_module_imports() -> None:
    assert callable(cli.main)
