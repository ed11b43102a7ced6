"""docs/protocols/acquirer.md's worked example, recomputed from its TMK, PIK and MAK: the doc cannot rot."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

from drivers.host import messages as m
from drivers.host.signon import SessionKeys, pack_with_mac, unwrap_keys, verify_mac, wrap_keys
from emv.crypto.mac import kcv_tdes, retail_mac

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocols" / "acquirer.md"
EXAMPLE_0200 = {"t": "0200", "3": "000000", "4": "000000003000", "11": "000002", "41": "SIM00001", "49": "156"}


def example() -> dict[str, bytes]:
    text = DOC.read_text(encoding="utf-8").split("## Worked example", 1)[1].split("```")[1]
    values = {}
    for line in text.strip().splitlines():
        label, hexdigits = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        values[label] = bytes.fromhex(hexdigits)
    return values


def test_worked_example_byte_for_byte() -> None:
    ex = example()
    keys = SessionKeys(pik=ex["PIK"], mak=ex["MAK"])
    assert kcv_tdes(keys.pik, 4) == ex["PIK KCV"]
    assert kcv_tdes(keys.mak, 4) == ex["MAK KCV"]
    assert bytes.fromhex(wrap_keys(ex["TMK"], keys)) == ex["field 62"]
    assert unwrap_keys(ex["field 62"].hex().upper(), ex["TMK"]) == keys
    packed = pack_with_mac(EXAMPLE_0200, keys.mak)
    assert packed == ex["0200"]
    assert packed[-8:] == ex["MAC"] == retail_mac(keys.mak, packed[:-8])
    assert verify_mac(packed, keys.mak)["4"] == "000000003000"
    assert m.unpack(packed)["64"] == ex["MAC"].hex().upper()


@pytest.mark.parametrize("name", ["drivers.host.signon", "drivers.host.tls", "drivers.host.tmk",
                                  "drivers.host.transport", "drivers.host.header", "drivers.host.dukpt_link",
                                  "sim.backends.acquirer_security", "sim.backends.http_tls"])
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
