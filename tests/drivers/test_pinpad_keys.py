"""Initial key loading from TR-31 key blocks (technician, KCV-checked, KSN never going back) and key exhaustion,
through a real pty. The key injection facility is played by psec's TR-31 wrap (an independent implementation)."""

from __future__ import annotations

import pytest

from drivers.pinpad import PinPad
from drivers.pinpad_codec import KeyLoad, PinPadCmd, PinPadStatus, decode_key_load, encode_key_load
from emv.crypto.pin import decrypt_pin_block, derive_initial_key, key_check_value
from pos_errors import DeviceError, LocalProtocolError, RemoteProtocolError
from sim.devices.pinpad import TEST_KBPK, PinPadSim

psec_tr31 = pytest.importorskip("psec.tr31")
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

PAN = "6212345678901232"
OLD_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
AES_KSN = bytes.fromhex("123456789012345600000000")
NEW_BDK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
NEW_KSN = bytes.fromhex("ABCDEF012345678900000000")  # a key ID above the pad's current one
TDES_BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TDES_KSN = bytes.fromhex("FFFF9876543210E00000")


def key_block(scheme: str, bdk: bytes, ksn: bytes, *, usage: str = "B1", kbpk: bytes | None = None,
              kc: str = "") -> str:
    """What a key injection facility hands the technician: the initial key of ``ksn`` under ``bdk``, in TR-31."""
    key = derive_initial_key(scheme, bdk, ksn)  # type: ignore[arg-type]
    if scheme == "aes":
        header = f"D0000{usage}AX00N0{2 if kc else 1}00IK14{ksn[:8].hex().upper()}"
    else:
        header = f"B0000{usage}TX00N0{2 if kc else 1}00KS18{ksn.hex().upper()}"
    header += f"KC0A01{kc}" if kc else ""
    version = header[0]
    return str(psec_tr31.wrap(kbpk or TEST_KBPK[version], header, key))


@pytest.fixture
def pad():  # type: ignore[no-untyped-def]
    sim = PinPadSim(initial_key=derive_initial_key("aes", OLD_BDK, AES_KSN), initial_ksn=AES_KSN)
    driver = PinPad(sim.start())
    driver.open()
    yield sim, driver
    driver.close()
    sim.stop()


@pytest.mark.parametrize(("scheme", "bdk", "ksn", "block_format"), [
    ("aes",  NEW_BDK,  NEW_KSN,  4),
    ("tdes", TDES_BDK, TDES_KSN, 0),
])
def test_loaded_key_is_the_one_pins_are_enciphered_under(pad, scheme, bdk, ksn, block_format) -> None:  # type: ignore[no-untyped-def]
    sim, driver = pad
    status, kcv = driver.load_initial_key(KeyLoad(key_block(scheme, bdk, ksn)))
    assert kcv == key_check_value(derive_initial_key(scheme, bdk, ksn), scheme)
    assert (status.scheme, status.ksn, status.remaining > 1000) == (scheme, ksn[:-1] + b"\x01", True)
    sim.auto_pin = "4321"
    entry = driver.request_online_pin(PAN, 3000, 5.0)
    assert entry.block_format == block_format and entry.ksn is not None and entry.pin_block is not None
    assert decrypt_pin_block(scheme, bdk, entry.ksn, entry.pin_block, PAN) == "4321"  # type: ignore[arg-type]


def _refused(sim: PinPadSim, driver: PinPad, load: KeyLoad, match: str) -> None:
    before = driver.key_status()
    with pytest.raises(DeviceError, match=match):
        driver.load_initial_key(load)
    assert driver.key_status() == before
    sim.auto_pin = "1234"
    entry = driver.request_online_pin(PAN, 100, 5.0)
    assert decrypt_pin_block("aes", OLD_BDK, entry.ksn, entry.pin_block, PAN) == "1234"  # type: ignore[arg-type]


def test_wrong_kcv_changes_nothing(pad) -> None:  # type: ignore[no-untyped-def]
    _refused(*pad, KeyLoad(key_block("aes", NEW_BDK, NEW_KSN), kcv=b"\x00\x00\x00"), "check value does not match")


def test_wrong_kc_block_changes_nothing(pad) -> None:  # type: ignore[no-untyped-def]
    _refused(*pad, KeyLoad(key_block("aes", NEW_BDK, NEW_KSN, kc="000000")), "check value does not match")


def test_key_block_under_another_kbpk_changes_nothing(pad) -> None:  # type: ignore[no-untyped-def]
    _refused(*pad, KeyLoad(key_block("aes", NEW_BDK, NEW_KSN, kbpk=bytes(32))), "refused the key block")


def test_key_block_for_another_usage_changes_nothing(pad) -> None:  # type: ignore[no-untyped-def]
    _refused(*pad, KeyLoad(key_block("aes", NEW_BDK, NEW_KSN, usage="P0")), "refused the key block")


def test_the_old_ecb_key_load_is_refused(pad) -> None:  # type: ignore[no-untyped-def]
    sim, driver = pad
    ecb = bytes([2, 16]) + bytes(16) + bytes([12]) + NEW_KSN + b"\x01\x02\x03"  # scheme, key, KSN, KCV
    assert driver._link.request(PinPadCmd.LOAD_KEY, ecb, 2.0).data[0] == PinPadStatus.BAD_REQUEST
    _refused(sim, driver, KeyLoad(key_block("aes", NEW_BDK, NEW_KSN, kc="")[:-2] + "00"), "refused the key block")


def test_replayed_key_load_is_refused_by_the_pad(pad) -> None:  # type: ignore[no-untyped-def]
    sim, driver = pad
    block = key_block("aes", NEW_BDK, NEW_KSN)
    driver.load_initial_key(KeyLoad(block))
    sim.auto_pin = "1234"
    used = driver.request_online_pin(PAN, 100, 5.0).ksn
    before = driver.key_status()
    for replay in (block, key_block("aes", OLD_BDK, AES_KSN)):  # the same load again; an older, lower key
        with pytest.raises(DeviceError, match="replayed key load"):
            driver.load_initial_key(KeyLoad(replay))
        assert driver.key_status() == before
    assert driver.request_online_pin(PAN, 100, 5.0).ksn != used  # the counter did not restart
    higher = bytes.fromhex("ABCDEF012345678A00000000")
    assert driver.load_initial_key(KeyLoad(key_block("aes", NEW_BDK, higher)))[0].ksn == higher[:-1] + b"\x01"


def test_exhausted_key_refuses_pin_entry_cleanly() -> None:
    last = bytes.fromhex("1234567890123456FFFE8000")  # AES DUKPT counter: two transactions left
    sim = PinPadSim(initial_key=derive_initial_key("aes", OLD_BDK, AES_KSN), initial_ksn=last)
    driver = PinPad(sim.start())
    try:
        sim.auto_pin = "1234"
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append(driver.request_online_pin(PAN, 100, 5.0).status)
            except DeviceError as exc:
                outcomes.append(str(exc))
        assert outcomes[:2] == ["entered", "entered"] and "no usable key" in outcomes[2], outcomes
        assert driver.key_status().remaining == 0
    finally:
        driver.close()
        sim.stop()


def test_key_load_codec() -> None:
    load = KeyLoad("D0016B1AX00N0000", b"\x01\x02\x03")
    assert decode_key_load(encode_key_load(load)) == load
    with pytest.raises(LocalProtocolError):
        encode_key_load(KeyLoad("D0016B1AX00N0000", b"\x01"))
    with pytest.raises(LocalProtocolError):
        encode_key_load(KeyLoad("D0016B1AX00N000\u00e9"))
    with pytest.raises(RemoteProtocolError):
        decode_key_load(b"\x07\x00\x00\x00\x00\x00")
