"""AES DUKPT against the published ANSI X9.24-3-2017 test vectors.

Source: ANSI X9.24-3-2017 Annex B.1 and the X9 "Supplement Test Vectors" (x9.org/standards/x9-24-part-3-test-
vectors): BDK FEDCBA9876543210F1F1F1F1F1F1F1F1 (and that twice for AES-256), initial key ID 1234567890123456.
The values below are as reproduced in public test suites, each checked by at least one of:
  openemv/dukpt          test/dukpt_aes128_test.c, test/dukpt_aes_test.c (IK, derivation keys, KSN sequences)
  teamforage/forage-android-sdk  .../pos/encryption/DukptFixtures.kt (registers after load / tx 1 / tx 2,
                         PIN keys for counters 1..8)
  5n00py/paysec          crates/paysec-dukpt/tests/test_working_key.rs (PIN / MAC / data keys, all usages,
                         2TDEA/3TDEA, AES-256)
  QRCS-CORP/CEX          Test/DUKPTTest.cpp (derivation data, keys at the last counters, AES-256)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emv.crypto.dukpt_aes import (
    AesDukptDevice,
    KeyType,
    KeyUsage,
    derivation_data,
    derivation_key,
    host_working_key,
    initial_key,
    is_valid_ksn,
    make_ksn,
    split_ksn,
    working_key,
)
from pos_errors import CryptoError

BDK128 = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
BDK256 = BDK128 * 2
IKID = bytes.fromhex("1234567890123456")
IK128 = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")
IK256 = bytes.fromhex("CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F")

# counter -> (intermediate derivation key, AES-128 PIN encryption key), AES-128 BDK
AES128_SEQUENCE = [
    (0x00000001, "4F21B565BAD9835E112B6465635EAE44", "AF8CB133A78F8DC2D1359F18527593FB"),
    (0x00000002, "2F34D68DE10F68D38091A73B9E7C437C", "D30BDC73EC9714B000BEC66BDB7B6D09"),
    (0x00000003, "031504E530365CF81264238540518318", "7D69F01F3B45449F62C7816ECE723268"),
    (0x00000004, "0EEFC7ADA628BA68878DA9165A8A1887", "91A0588318EC2673214271F70137896E"),
    (0x00000005, "C2A7AC328A5DA2D6002D62465BFC028B", "35A43BC9EFEB09C756204B57E3FB7D4D"),
    (0x00000006, "D30F7D9351DA58448A2F5E92B4EE3B7D", "02DCC6CD1201A3A2CA7099559C862123"),
    (0x00000007, "A8253CEED9AC042C54F75D35C8352278", "6ECF912F3B18CA11A7A27BB60705FD09"),
    (0x00000008, "718EE6CF0B27E53D5F7AF99C4D8146A2", "4D9DF3FBEE3448FC3E676D04320A90F5"),
    (0x0001FFFE, "E21E8C8D347F8561A2BE752DAA85A111", "DDF7E08A84B5478C498D007C743BF762"),
    (0x00020000, "F7AE9025468A25D37B7249CFFED224C8", "AB828BE7B58C7EC5D5ED0D5D320A0C9D"),
    (0xFFFE4000, "396C2C7CA1EA701C03B86B7D41F0C562", "6239A27F572DEDB17BCA1AC413EF9FE9"),
    (0xFFFE8000, "0387625F189B58AE03EF0E8CCA41105E", "F10C1404137A80718FCCE8BD90FF9F67"),
    (0xFFFF0000, "F6BA59389BD14A9855BE9727E7C52E3C", "27EFAC1D158632588F4AC69E45C247C4"),
]

# the intermediate derivation key registers right after "Load Initial Key": register b = key of counter 1 << b
REGISTERS_AFTER_LOAD = [
    "4F21B565BAD9835E112B6465635EAE44", "2F34D68DE10F68D38091A73B9E7C437C",  # bits 0, 1
    "0EEFC7ADA628BA68878DA9165A8A1887", "718EE6CF0B27E53D5F7AF99C4D8146A2",  # bits 2, 3
    "7459762EED7F51D08567ED6598DFBEA2", "1ED39390B4448C69819EB55F4C616564",  # bits 4, 5
    "C13BDA0A56D6998E544E0A10A3D979DA", "089F6B989CA13D49A6A0317F85460CE5",  # bits 6, 7
    "065355A6A3DD4C2260BDDDFA0C16704E", "CF16FEBC5CFD1A741A3280564A9681F2",  # bits 8, 9
    "4BF8EB1DAF9F4244332ED01663EB654E", "492248FEE0FE87E8B5DB7BB2AC7BC955",  # bits 10, 11
    "18690547EB19D28EFAF5EF6D22C271AA", "84F4CCA45C4F1D4E063F1CE5B95B6C7F",  # bits 12, 13
    "4EC5FC0C3CD62AFF174A37B6FDC2B0D9", "9EF99A4D5FD548A23D299074047F7F6B",  # bits 14, 15
    "F4C6237DB49E28BF96E6A18CD8CDDA00", "F7AE9025468A25D37B7249CFFED224C8",  # bits 16, 17
    "579594A986E87917382A181576FA7A9A", "5AAF46AAD7593E0D224E05E13629ED1E",  # bits 18, 19
    "5787EB837B6FFB3AF24759F8625CEC19", "988A3AB89B9332A15D0BE2C54C279923",  # bits 20, 21
    "E55171636976BDC5758A6FA4C25F0008", "DF16D5BAC52FFA7564D7DBD2DE7C6CCF",  # bits 22, 23
    "145E8C933FC0D61900592035CF18A5AF", "FBDF917E209B42F9DB8843D18BEE8033",  # bits 24, 25
    "61C70779F920BBD37815C21B5A1A7B75", "97D7BB3FC342B9E961308BB8B801775B",  # bits 26, 27
    "69B453118411404DB54AE2B751F02F43", "7CCE4E679F4FC3478E3CD4509D64A7F3",  # bits 28, 29
    "36AF4AA9FC1100B2AE7742101540340A", "9DC56486499A2E857FDEFC4740641EA8",  # bits 30, 31
]

# every working-key usage at counter 1 (AES-128 from the AES-128 BDK)
USAGES_COUNTER_1 = [
    (KeyUsage.KEY_ENCRYPTION, "36A724B7BEFA5A25F5E7B5782A4554A2"),
    (KeyUsage.PIN_ENCRYPTION, "AF8CB133A78F8DC2D1359F18527593FB"),
    (KeyUsage.MAC_GENERATION, "A2DC23DE6FDE0824A2BC321E08E4B8B7"),
    (KeyUsage.MAC_VERIFICATION, "DBB463945B286C07CD3AD82EE96FD9C9"),
    (KeyUsage.MAC_BOTH, "85675439D18D7F1158BD8E3EAA3D502B"),
    (KeyUsage.DATA_ENCRYPT, "A35C412EFD41FDB98B69797C02DCD08F"),
    (KeyUsage.DATA_DECRYPT, "16292C6EA8F64C5420A0584BFBC577BE"),
    (KeyUsage.DATA_BOTH, "A308E080DD15A1B741F1721BF67DE11C"),
    (KeyUsage.KEY_DERIVATION, "30E54D3C69B22501A7FC43969D81D5C0"),
]

# counter -> (MAC generation key, data encryption key), AES-128; 0x1FFFF is host-only (17 one bits)
MAC_AND_DATA = [
    (0x00000002, "484C3B06E8562704528CD5B46FB12FB6", "D639514AA33AC43AD9229E433D6D4E5B"),
    (0x00000003, "A5DF7D9D800CA769766F0C77CA4E6E6C", "EF17F6AB45B4820C93A3DCB21BC491AD"),
    (0x00000004, "E6E4679647D8A9057C1FC15537CB4C4E", "B3BD44C08BB6BA27C3BB4711D7D70387"),
    (0x00000005, "0588185FE1FF8C7E22FAD78C1C61F065", "CA02DF6F30B39E14BD0B4A30E460920F"),
    (0x0001FFFE, "6D7623AD652734B8FAE1B6E093EACE3D", "8E4E5D5E0F01C54F01F4ACA1C8F8EDCE"),
    (0x0001FFFF, "8B543DCF4A31EA3AB47DAD16B8ABD404", "D18ACA30B4D63DB61CE474D3F57733D3"),
    (0x00020000, "0B59D3D7D93028D97135FB895CACE24E", "13361208975755318FE7AE28C9616014"),
]

# counter -> (derivation key, AES-256 PIN key), AES-256 BDK
AES256_SEQUENCE = [
    (0x00000001, "54AC2B32B145EA4A554CB8BC44B17467063A799856B1CCC2A138D36E8DBF78B3",
     "8C1AB7BEE973829E30242E0BBBDD4946D540C98FC1B5BDCF94790001A23FD502"),
    (0x00000002, "5DD5A0253842BBBE1D7C0DA27021412C6F1FAB53FB928DEAE56DA06090A9DE97",
     "3583D6CD02FC38822CC71A8D7678E04F4A8556335E6CC66863D3DADC5AEE2C62"),
    (0xFFFF0000, "6D6DB7AAAE8B3EA90E57A39E4BBA71E173B21B446B30A78D64BFC6A8806C55EE",
     "88B82556AEF4A681E0687F443A4C4F305AF9203B114470DFC77C7F08BC43F9DA"),
]


def _ksn(counter: int) -> bytes:
    return make_ksn(IKID, counter)


def _hex(data: bytes | None) -> str | None:
    return None if data is None else data.hex().upper()


def test_initial_keys() -> None:
    assert initial_key(BDK128, IKID) == IK128
    assert initial_key(BDK256, IKID) == IK256
    assert initial_key(BDK128, _ksn(7)) == IK128  # a whole KSN works; its counter is ignored


@pytest.mark.parametrize(
    ("usage", "key_type", "counter", "expected"),
    [
        (KeyUsage.INITIAL_KEY, KeyType.AES128, None, "01018001000200801234567890123456"),
        (KeyUsage.PIN_ENCRYPTION, KeyType.AES128, 0x00000001, "01011000000200809012345600000001"),
        (KeyUsage.PIN_ENCRYPTION, KeyType.AES128, 0xFFFE4000, "010110000002008090123456FFFE4000"),
        (KeyUsage.PIN_ENCRYPTION, KeyType.AES256, 0x00000001, "01021000000401009012345600000001"),
    ],
)
def test_derivation_data(usage: KeyUsage, key_type: KeyType, counter: int | None, expected: str) -> None:
    data = IKID if counter is None else IKID[4:] + counter.to_bytes(4, "big")
    blocks = 2 if key_type.bits > 128 else 1
    assert derivation_data(usage, key_type, data, blocks).hex().upper() == expected


@pytest.mark.parametrize(("counter", "derivation", "pin"), AES128_SEQUENCE)
def test_receiving_side_aes128(counter: int, derivation: str, pin: str) -> None:
    ksn = _ksn(counter)
    assert derivation_key(IK128, ksn).hex().upper() == derivation
    key = working_key(bytes.fromhex(derivation), ksn, KeyUsage.PIN_ENCRYPTION, KeyType.AES128)
    assert key.hex().upper() == pin
    assert host_working_key(BDK128, ksn, KeyUsage.PIN_ENCRYPTION, KeyType.AES128).hex().upper() == pin


@pytest.mark.parametrize(("usage", "expected"), USAGES_COUNTER_1)
def test_every_usage_at_counter_1(usage: KeyUsage, expected: str) -> None:
    assert host_working_key(BDK128, _ksn(1), usage, KeyType.AES128).hex().upper() == expected


@pytest.mark.parametrize(("counter", "mac", "data"), MAC_AND_DATA)
def test_mac_and_data_keys(counter: int, mac: str, data: str) -> None:
    ksn = _ksn(counter)
    assert host_working_key(BDK128, ksn, KeyUsage.MAC_GENERATION, KeyType.AES128).hex().upper() == mac
    assert host_working_key(BDK128, ksn, KeyUsage.DATA_ENCRYPT, KeyType.AES128).hex().upper() == data


def test_host_derives_the_skipped_counter_0x1ffff() -> None:
    # the supplement lists 0x1FFFF although a device never uses it (17 one bits)
    assert derivation_key(IK128, _ksn(0x1FFFF)).hex().upper() == "1FE368988089CDD76DA18A3458E113BA"
    assert not is_valid_ksn(_ksn(0x1FFFF))


@pytest.mark.parametrize(
    ("key_type", "expected"),
    [
        (KeyType.TDES2, "630C706D9546E47D4449313F61C4D4AB"),
        (KeyType.TDES3, "EA8B3F37EB9B15831167EF2977FD8762D9B5913F35766F6A"),
    ],
)
def test_tdes_working_keys_from_an_aes_bdk(key_type: KeyType, expected: str) -> None:
    assert host_working_key(BDK128, _ksn(1), KeyUsage.PIN_ENCRYPTION, key_type).hex().upper() == expected


@pytest.mark.parametrize(("counter", "derivation", "pin"), AES256_SEQUENCE)
def test_receiving_side_aes256(counter: int, derivation: str, pin: str) -> None:
    ksn = _ksn(counter)
    assert derivation_key(IK256, ksn).hex().upper() == derivation
    assert host_working_key(BDK256, ksn, KeyUsage.PIN_ENCRYPTION, KeyType.AES256).hex().upper() == pin


def test_aes256_bdk_other_working_keys() -> None:
    ksn = _ksn(1)
    assert host_working_key(BDK256, ksn, KeyUsage.PIN_ENCRYPTION, KeyType.AES128).hex().upper() == (
        "09C9C432966811D6B2C3336BAC1B1202")
    assert host_working_key(BDK256, ksn, KeyUsage.MAC_GENERATION, KeyType.AES256).hex().upper() == (
        "61DABDF4B340CF461EE860B1D1AB55357142BD2D6977306859CF49AEFE8F1549")
    assert host_working_key(BDK256, ksn, KeyUsage.DATA_ENCRYPT, KeyType.AES256).hex().upper() == (
        "71EB36C9A6B7F801D1D1700C29741FC5A5C4E9B45D742DA7AF6992B8AA29AF58")


@pytest.mark.parametrize("key_type", [KeyType.AES192, KeyType.AES256])
def test_never_derives_a_stronger_key_than_the_derivation_key(key_type: KeyType) -> None:
    with pytest.raises(CryptoError, match="cannot derive"):
        host_working_key(BDK128, _ksn(1), KeyUsage.PIN_ENCRYPTION, key_type)


def test_originating_side_registers_follow_the_supplement() -> None:
    device = AesDukptDevice(IK128, _ksn(0))
    assert [_hex(r) for r in device.registers] == REGISTERS_AFTER_LOAD
    ksn, key = device.next_transaction_key()  # transaction 1 uses and erases register 0
    assert (ksn, _hex(key)) == (_ksn(1), AES128_SEQUENCE[0][1])
    assert [_hex(r) for r in device.registers] == [None, *REGISTERS_AFTER_LOAD[1:]]
    ksn, key = device.next_transaction_key()  # transaction 2 derives counter 3 into register 0, erases 1
    assert (ksn, _hex(key)) == (_ksn(2), AES128_SEQUENCE[1][1])
    assert [_hex(r) for r in device.registers] == [AES128_SEQUENCE[2][1], None, *REGISTERS_AFTER_LOAD[2:]]


def test_originating_side_produces_the_first_eight_keys() -> None:
    device = AesDukptDevice(IK128, _ksn(0))
    for counter, derivation, pin in AES128_SEQUENCE[:8]:
        ksn, key = device.next_transaction_key()
        assert ksn == _ksn(counter) and key.hex().upper() == derivation
        assert working_key(key, ksn, KeyUsage.PIN_ENCRYPTION, KeyType.AES128).hex().upper() == pin


def test_originating_side_skips_0x1ffff() -> None:
    device = AesDukptDevice(IK128, _ksn(0x1FFFE))
    counters = [split_ksn(device.next_transaction_key()[0])[1] for _ in range(3)]
    assert counters == [0x1FFFE, 0x20000, 0x20001]  # as openemv/dukpt's KSN sequence for the supplement


def test_originating_and_receiving_sides_agree_over_many_counters() -> None:
    device = AesDukptDevice(IK128, _ksn(0))
    for _ in range(300):
        ksn, key = device.next_transaction_key()
        assert is_valid_ksn(ksn) and derivation_key(IK128, ksn) == key


def test_exhaustion_after_the_last_four_counters() -> None:
    device = AesDukptDevice(IK128, _ksn(0xFFFE2000))
    assert device.remaining == 4
    expected = ["48E585B694EB0B18D5C35443E163C0BA", *[d for c, d, _ in AES128_SEQUENCE if c >= 0xFFFE4000]]
    assert [device.next_transaction_key()[1].hex().upper() for _ in range(4)] == expected
    assert device.remaining == 0 and device.ksn is None
    for _ in range(2):
        with pytest.raises(CryptoError, match="exhausted"):
            device.next_transaction_key()


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (initial_key, (BDK128[:15], IKID)),
        (initial_key, (BDK128, IKID[:7])),
        (derivation_key, (IK128, _ksn(0))),  # zero counter
        (derivation_key, (IK128, _ksn(1)[:11])),
        (make_ksn, (IKID, 1 << 32)),
        (AesDukptDevice, (IK128, _ksn(0x1FFFF))),  # unreachable counter
        (AesDukptDevice, (IK128[:8], _ksn(0))),
    ],
)
def test_bad_input_raises_crypto_error(call: Callable[..., object], args: tuple[object, ...]) -> None:
    with pytest.raises(CryptoError):
        call(*args)


def test_repr_shows_no_key() -> None:
    device = AesDukptDevice(IK128, _ksn(0))
    text = repr(device).upper()
    assert "123456789012345600000001" in text
    assert all(register is None or register.hex().upper() not in text for register in device.registers)
