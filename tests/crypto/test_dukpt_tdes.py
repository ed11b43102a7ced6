"""TDES DUKPT against the published ANSI X9.24-1:2009 Annex A vectors.

Source: ANSI X9.24-1:2009 A.4 "DUKPT Test Data Examples" (BDK 0123456789ABCDEFFEDCBA9876543210, initial KSN
FFFF9876543210E00000, PIN 1234, PAN 4012345678909), as reproduced in openemv/dukpt test/dukpt_tdes_test.c
(A.4.2 initial sequence, A.4.3 rollover sequence). Key variants for the first five KSNs: the same Annex values
(repeated in X9.24-3-2017 Annex C) as reproduced in shenyan1206/dukpt test/test_dukpt.js.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emv.crypto.des import tdes_ecb_decrypt, tdes_ecb_encrypt
from emv.crypto.dukpt_tdes import (
    TdesDukptDevice,
    TdesUsage,
    host_transaction_key,
    initial_key,
    is_valid_ksn,
    ksn_counter,
    ksn_with_counter,
    non_reversible_key,
    transaction_key,
    working_key,
)
from pos_errors import CryptoError

BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
INITIAL_KSN = bytes.fromhex("FFFF9876543210E00000")
IPEK = bytes.fromhex("6AC292FAA1315B4D858AB3A3D7D5933A")
CLEAR_PIN_BLOCK = bytes.fromhex("041274EDCBA9876F")  # format 0, PIN 1234, PAN 4012345678909

# A.4.2: (KSN counter, transaction key, encrypted PIN block)
INITIAL_SEQUENCE = [
    (0x01, "042666B49184CFA368DE9628D0397BC9", "1B9C1845EB993A7A"),
    (0x02, "C46551CEF9FD24B0AA9AD834130D3BC7", "10A01C8D02C69107"),
    (0x03, "0DF3D9422ACA56E547676D07AD6BADFA", "18DC07B94797B466"),
    (0x04, "279C0F6AEED0BE652B2C733E1383AE91", "0BC79509D5645DF7"),
    (0x05, "5F8DC6D2C845C125508DDC048093B83F", "5BC0AF22AD87B327"),
    (0x06, "5E415CB0BAF9F03CD0C14B63FB62FF43", "A16DF70AE36158D8"),
    (0x07, "0C8F780B7C8B49D0AE84A9EB2A6CE660", "27711C16CB257F8E"),
    (0x08, "27F66D5244FF62E1AA6F6120EDEB4280", "50E55547A5027551"),
    (0x09, "27E31064FDC565698900E2057F658E7E", "536CF7F678ACFC8D"),
    (0x0A, "6CF2500A22507C7CC776CEADC1E33014", "EDABBA23221833FE"),
    (0x0B, "3E8260BA04B2D620C01482B3819A18B7", "2328981C57B4BDBA"),
    (0x0C, "B716E1E11CF53D80726CAEE75C3A624F", "038D03CC926CF286"),
    (0x0D, "E072EDF95340535FB6C581C58FBF2533", "6C8AA97088B62C68"),
    (0x0E, "A80046087F5B8F245AAD95E18429084F", "F17C9E1D72CD4950"),
    (0x0F, "93DD5B956C4878472E453AAEFD32A5AA", "B170F6E7F7F2F64A"),
    (0x10, "59598DCBD9BD94C094165CE453585F57", "D5D9638559EF53D6"),
    (0x11, "2B5F01F4F0CC05EA639D523231BF1BA2", "D544F8CDD292C863"),
    (0x12, "9CF640F279C2AEE615F725EEEAC2CBAF", "7A21BD10F36DC41D"),
    (0x13, "C3DF489FDF1153B4F03DE97C27DC4C2F", "78649BD17D0DFA60"),
    (0x14, "658488507721B3F14737FA93F923CBD2", "7E7E16EA0C31AD56"),
    (0x15, "E161D1956A61F6D2F37AFD7F9CC3699A", "72105C22EBC791E6"),
]

# A.4.3: the rollover sequence, starting mid-life at counter 0x0FF800
ROLLOVER_SEQUENCE = [
    (0x0FF800, "F9CDFEBF4F5B1D9EB3EC12454527E176", "33365F5CC6F23C35"),
    (0x0FF801, "5BEE92627E97825C911BF619DF72CA3B", "3A86BF003F835C9D"),
    (0x0FF802, "64CA2F8AB93F61B01620B00BF77C7301", "3DB977D05C36DF3F"),
    (0x0FF804, "35A168695B3BA83307E871C42021DD37", "BA83243305712099"),
    (0x0FF808, "12C380FCB72ED3C26FC6079AF63F4787", "B0DA04AC90A36D85"),
    (0x0FF810, "D8007C833A1E3C49C6889B97A68C54FF", "2CF02BD9C309EEDA"),
    (0x0FF820, "A9C9FF9B735FDD49591F296B0BF0FD70", "9D1E2F77AEEE81C6"),
    (0x0FF840, "0E3E221062CB5E03A384602783A004FA", "40870B0F8BA2011C"),
    (0x0FF880, "CA8225C587124DFBB87F279C0BE29727", "22E340D6ABB40981"),
    (0x0FF900, "906AAC1751D4971A144D52C76C6E1F97", "1A4C10AFBA03A430"),
    (0x0FFA00, "2B9E2CE7C2750337E10B54D2989EA6AF", "849763B43E5F9CFF"),
    (0x0FFC00, "F9430DF975082491C77BE4EF4FDB91EE", "DEFC6F09F8927B71"),
    (0x100000, "AA4D58DB653EC74A48C75F2F047DD2B5", "73EC88AD0AC5830E"),
]

# Annex A key variants for KSNs E00001..E00005: PIN, MAC (request), data (request, after the one-way step)
VARIANTS = [
    (0x01, "042666B49184CF5C68DE9628D0397B36", "042666B4918430A368DE9628D03984C9",
     "448D3F076D8304036A55A3D7E0055A78"),
    (0x02, "C46551CEF9FD244FAA9AD834130D3B38", "C46551CEF9FDDBB0AA9AD834130DC4C7",
     "F1BE73B36135C5C26CF937D50ABBE5AF"),
    (0x03, "0DF3D9422ACA561A47676D07AD6BAD05", "0DF3D9422ACAA9E547676D07AD6B52FA",
     "EEEEF522C67239E4A2A65FEBF4C511F4"),
    (0x04, "279C0F6AEED0BE9A2B2C733E1383AE6E", "279C0F6AEED041652B2C733E13835191",
     "BCF2610997C3AC3C5F13AE965A1B773B"),
    (0x05, "5F8DC6D2C845C1DA508DDC048093B8C0", "5F8DC6D2C8453E25508DDC048093473F",
     "F3054D8B7471284BDB4EE18AFC3B091B"),
]


def _ksn(counter: int) -> bytes:
    return ksn_with_counter(INITIAL_KSN, counter)


def test_initial_key() -> None:
    assert initial_key(BDK, INITIAL_KSN) == IPEK
    assert initial_key(BDK, _ksn(0x15)) == IPEK  # the counter is ignored


def test_ksn_counter_helpers() -> None:
    assert ksn_counter(bytes.fromhex("FFFF9876543210EFF801")) == 0x0FF801
    assert _ksn(0x100000) == bytes.fromhex("FFFF9876543210F00000")
    assert not is_valid_ksn(INITIAL_KSN)  # zero counter
    assert not is_valid_ksn(_ksn(0x0007FF))  # eleven one bits
    assert is_valid_ksn(_ksn(0x0003FF))


@pytest.mark.parametrize(("counter", "key", "block"), INITIAL_SEQUENCE + ROLLOVER_SEQUENCE)
def test_receiving_side_matches_annex_a(counter: int, key: str, block: str) -> None:
    ksn = _ksn(counter)
    assert transaction_key(IPEK, ksn).hex().upper() == key
    assert host_transaction_key(BDK, ksn).hex().upper() == key
    pin_key = working_key(bytes.fromhex(key), TdesUsage.PIN)
    assert tdes_ecb_encrypt(pin_key, CLEAR_PIN_BLOCK).hex().upper() == block
    assert tdes_ecb_decrypt(pin_key, bytes.fromhex(block)) == CLEAR_PIN_BLOCK


def test_originating_side_produces_the_initial_sequence() -> None:
    device = TdesDukptDevice(IPEK, INITIAL_KSN)
    assert device.ksn == _ksn(1)
    for counter, key, block in INITIAL_SEQUENCE:
        ksn, transaction = device.next_transaction_key()
        assert ksn == _ksn(counter)
        assert transaction.hex().upper() == key
        pin_key = working_key(transaction, TdesUsage.PIN)
        assert tdes_ecb_encrypt(pin_key, CLEAR_PIN_BLOCK).hex().upper() == block


def test_originating_side_produces_the_rollover_sequence() -> None:
    # resuming at 0x0FF800 rebuilds the registers a device would hold there; the KSN then skips as A.4.3 shows
    device = TdesDukptDevice(IPEK, _ksn(0x0FF800))
    for counter, key, _block in ROLLOVER_SEQUENCE:
        ksn, transaction = device.next_transaction_key()
        assert (ksn_counter(ksn), transaction.hex().upper()) == (counter, key)


def test_future_key_registers_after_load() -> None:
    # "Load Initial Key" fills register b with NRKGP(IPEK, KSN with only bit b set): registers 0, 1 and 3 hold
    # the keys that A.4.2 lists for counters 1, 2 and 8.
    device = TdesDukptDevice(IPEK, INITIAL_KSN)
    registers = device.registers
    assert registers[0] is not None and registers[0].hex().upper() == INITIAL_SEQUENCE[0][1]
    assert registers[1] is not None and registers[1].hex().upper() == INITIAL_SEQUENCE[1][1]
    assert registers[3] is not None and registers[3].hex().upper() == INITIAL_SEQUENCE[7][1]
    device.next_transaction_key()
    assert device.registers[0] is None  # used keys are erased


@pytest.mark.parametrize(("counter", "pin", "mac", "data"), VARIANTS)
def test_key_variants(counter: int, pin: str, mac: str, data: str) -> None:
    key = host_transaction_key(BDK, _ksn(counter))
    assert working_key(key, TdesUsage.PIN).hex().upper() == pin
    assert working_key(key, TdesUsage.MAC_REQUEST).hex().upper() == mac
    assert working_key(key, TdesUsage.DATA_REQUEST).hex().upper() == data


def test_response_variants_differ_from_request_variants() -> None:
    # MAC response mask 00000000FF000000 per half (value as in X9.24-3-2017 Annex C for KSN E00001)
    key = host_transaction_key(BDK, _ksn(1))
    assert working_key(key, TdesUsage.MAC_RESPONSE).hex().upper() == "042666B46E84CFA368DE96282F397BC9"
    assert working_key(key, TdesUsage.DATA_RESPONSE) not in (
        working_key(key, TdesUsage.DATA_REQUEST), working_key(key, TdesUsage.MAC_RESPONSE))


def test_nrkgp_is_the_first_step_from_the_ipek() -> None:
    register = INITIAL_KSN[2:-3] + bytes([INITIAL_KSN[-3] & 0xE0, 0x00, 0x01])
    assert non_reversible_key(IPEK, register).hex().upper() == INITIAL_SEQUENCE[0][1]


def test_originating_and_receiving_sides_agree_over_many_counters() -> None:
    device = TdesDukptDevice(IPEK, INITIAL_KSN)
    for _ in range(300):
        ksn, key = device.next_transaction_key()
        assert is_valid_ksn(ksn)
        assert transaction_key(IPEK, ksn) == key
    assert device.remaining == 1_048_575 - 300


def test_exhaustion() -> None:
    device = TdesDukptDevice(IPEK, _ksn(0x1FF800))  # the last counter with at most ten one bits
    assert device.remaining == 1
    ksn, key = device.next_transaction_key()
    assert ksn_counter(ksn) == 0x1FF800 and key == transaction_key(IPEK, ksn)
    assert device.remaining == 0 and device.ksn is None
    for _ in range(2):  # stays exhausted, never wraps round to counter 0
        with pytest.raises(CryptoError, match="exhausted"):
            device.next_transaction_key()
    assert "exhausted" in repr(device)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (initial_key, (BDK[:8], INITIAL_KSN)),
        (initial_key, (BDK, INITIAL_KSN[:9])),
        (transaction_key, (IPEK, INITIAL_KSN)),  # zero counter: no transaction
        (non_reversible_key, (IPEK, b"\x00" * 7)),
        (TdesDukptDevice, (IPEK, bytes.fromhex("FFFF9876543210E007FF"))),  # eleven ones: unreachable
        (TdesDukptDevice, (IPEK[:15], INITIAL_KSN)),
    ],
)
def test_bad_input_raises_crypto_error(call: Callable[..., object], args: tuple[bytes, ...]) -> None:
    with pytest.raises(CryptoError):
        call(*args)


def test_repr_shows_no_key() -> None:
    device = TdesDukptDevice(IPEK, INITIAL_KSN)
    text = repr(device)
    assert "FFFF9876543210E00001" in text
    for register in device.registers:
        assert register is not None and register.hex().upper() not in text.upper()
