"""Run the module docstring examples of the PIN crypto modules, so they cannot rot."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from emv.crypto import dukpt, dukpt_aes, dukpt_mac, dukpt_tdes, mac, pin, pinblock, tr31


@pytest.mark.parametrize("module", [dukpt, dukpt_tdes, dukpt_aes, pinblock, pin, tr31, mac,
                                              dukpt_mac], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
