"""Kernel 2's terminal action analysis (Book C-2 §7.6 with Book 3 §10.7): the TVR it builds and the cryptogram
it asks for, from the reader's TACs and the card's IACs."""

from __future__ import annotations

import datetime as dt

import pytest

from emv import relay_resistance
from emv.apdu import CryptogramType
from emv.contactless import Candidate, Combination, DirectoryEntry, Indicators, ReaderLimits
from emv.entry_point import KernelContext
from emv.kernel_c2 import TAC_DENIAL, TAC_ONLINE, action_analysis
from emv.selection import Fci
from pos_errors import RemoteProtocolError

MC = bytes.fromhex("A0000000041010")
TODAY = dt.date(2026, 12, 3)
CARD = {0x5F24: bytes.fromhex("281031"), 0x5F25: bytes.fromhex("230101")}


def _ctx(**indicators: bool) -> KernelContext:
    combo = Combination(MC[:5], 2, ReaderLimits())
    candidate = Candidate(DirectoryEntry(MC), combo, Indicators(**indicators), 0)
    return KernelContext(Fci(MC), candidate, 1700, {}, today=TODAY)


def _analyse(card: dict[int, bytes] | None = None, *, tvr: str = "0000000000", cda_key: bool = True,
             **indicators: bool) -> tuple[str, CryptogramType]:
    value, kind = action_analysis(_ctx(**indicators), bytes.fromhex(tvr), {**CARD, **(card or {})},
                                  cda_key=cda_key)
    return value.hex().upper(), kind


def test_nothing_set_is_approved_offline() -> None:
    assert _analyse() == ("0000000000", CryptogramType.TC)


def test_over_the_floor_limit_goes_online_with_the_tvr_bit() -> None:
    assert _analyse(floor_limit_exceeded=True) == ("0000008000", CryptogramType.ARQC)


def test_without_a_cda_key_oda_is_not_performed_and_it_goes_online() -> None:
    assert _analyse(cda_key=False) == ("8000000000", CryptogramType.ARQC)
    # a failed key recovery already says "CDA failed": not also "not performed"
    assert _analyse(tvr="0400000000", cda_key=False) == ("0400000000", CryptogramType.ARQC)


@pytest.mark.parametrize(("card", "tvr"), [
    ({0x5F24: bytes.fromhex("261130")}, "0040000000"),  # expired
    ({0x5F25: bytes.fromhex("270101")}, "0020000000"),  # not yet effective
])
def test_expired_or_not_yet_effective_is_declined_by_tac_denial(card: dict[int, bytes], tvr: str) -> None:
    assert _analyse(card, floor_limit_exceeded=True) == (tvr[:6] + "80" + tvr[8:], CryptogramType.AAC)


def test_relay_resistance_time_limits_decline_and_threshold_goes_online() -> None:
    late = f"00000000{relay_resistance.TVR_PERFORMED | relay_resistance.TVR_TIME_LIMITS:02X}"
    near = f"00000000{relay_resistance.TVR_PERFORMED | relay_resistance.TVR_THRESHOLD:02X}"
    assert _analyse(tvr=late)[1] is CryptogramType.AAC and TAC_DENIAL[4] & relay_resistance.TVR_TIME_LIMITS
    assert _analyse(tvr=near)[1] is CryptogramType.ARQC and TAC_ONLINE[4] & relay_resistance.TVR_THRESHOLD


def test_the_cards_iacs_count_as_much_as_the_readers_tacs() -> None:
    # IAC-Denial: the issuer declines whatever goes online over the floor limit
    assert _analyse({0x9F0E: bytes.fromhex("0000008000")}, floor_limit_exceeded=True)[1] is CryptogramType.AAC
    # IAC-Online: the issuer wants every tap with relay resistance performed online (no TAC asks for that)
    performed = f"00000000{relay_resistance.TVR_PERFORMED:02X}"
    assert _analyse({0x9F0F: bytes(5)}, tvr=performed)[1] is CryptogramType.TC
    assert _analyse(tvr=performed)[1] is CryptogramType.ARQC  # an absent IAC-Online counts as all ones
    assert _analyse({0x9F0F: bytes([0, 0, 0, 0, relay_resistance.TVR_PERFORMED])}, tvr=performed)[1] \
        is CryptogramType.ARQC
    # IAC-Default only matters to an offline-only reader: this one is online capable
    assert _analyse({0x9F0D: b"\xff" * 5})[1] is CryptogramType.TC


def test_status_check_and_zero_amount_ask_for_an_arqc() -> None:
    assert _analyse(status_check_requested=True)[1] is CryptogramType.ARQC
    assert _analyse(zero_amount=True)[1] is CryptogramType.ARQC


def test_a_malformed_iac_is_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        _analyse({0x9F0E: bytes(4)})
