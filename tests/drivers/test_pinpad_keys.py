"""Initial key loading (technician, KCV-checked) and key exhaustion, through a real pty."""

from __future__ import annotations

import time

import pytest

from drivers.pinpad import PinPad
from drivers.pinpad_codec import KeyLoad, decode_key_load, encode_key_load
from emv.crypto.des import aes_ecb_encrypt, tdes_ecb_encrypt
from emv.crypto.pin import decrypt_pin_block, derive_initial_key, key_check_value
from pos_errors import DeviceError, LocalProtocolError, RemoteProtocolError
from sim.devices.pinpad import TEST_KLK, PinPadSim
from terminal.load_pin_key import main as load_pin_key

PAN = "6212345678901232"
OLD_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
AES_KSN = bytes.fromhex("123456789012345600000000")


def _load_for(scheme: str, bdk: bytes, ksn: bytes, *, wrong_kcv: bool = False) -> KeyLoad:
    key = derive_initial_key(scheme, bdk, ksn)  # type: ignore[arg-type]
    encipher = aes_ecb_encrypt if scheme == "aes" else tdes_ecb_encrypt
    kcv = key_check_value(key, scheme)  # type: ignore[arg-type]
    return KeyLoad(scheme, encipher(TEST_KLK[scheme], key), ksn, bytes([kcv[0] ^ 1]) + kcv[1:] if wrong_kcv else kcv)


@pytest.fixture
def pad():  # type: ignore[no-untyped-def]
    sim = PinPadSim(initial_key=derive_initial_key("aes", OLD_BDK, AES_KSN), initial_ksn=AES_KSN)
    driver = PinPad(sim.start())
    driver.open()
    yield sim, driver
    driver.close()
    sim.stop()


@pytest.mark.parametrize(("scheme", "bdk", "ksn", "block_format"), [
    ("aes",  bytes.fromhex("00112233445566778899AABBCCDDEEFF"), bytes.fromhex("ABCDEF012345678900000000"), 4),
    ("tdes", bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), bytes.fromhex("FFFF9876543210E00000"), 0),
])
def test_loaded_key_is_the_one_pins_are_enciphered_under(pad, scheme, bdk, ksn, block_format) -> None:  # type: ignore[no-untyped-def]
    sim, driver = pad
    status = driver.load_initial_key(_load_for(scheme, bdk, ksn))
    assert (status.scheme, status.ksn, status.remaining > 1000) == (scheme, ksn[:-1] + b"\x01", True)
    sim.auto_pin = "4321"
    entry = driver.request_online_pin(PAN, 3000, 5.0)
    assert entry.block_format == block_format and entry.ksn is not None and entry.pin_block is not None
    assert decrypt_pin_block(scheme, bdk, entry.ksn, entry.pin_block, PAN) == "4321"  # type: ignore[arg-type]


def test_wrong_kcv_changes_nothing(pad) -> None:  # type: ignore[no-untyped-def]
    sim, driver = pad
    before = driver.key_status()
    with pytest.raises(DeviceError, match="NOT loaded"):
        driver.load_initial_key(_load_for("aes", bytes(16), AES_KSN, wrong_kcv=True))
    assert driver.key_status() == before
    sim.auto_pin = "1234"
    entry = driver.request_online_pin(PAN, 100, 5.0)
    assert decrypt_pin_block("aes", OLD_BDK, entry.ksn, entry.pin_block, PAN) == "1234"  # type: ignore[arg-type]


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


def test_technician_cli_loads_and_reports(pad, capsys) -> None:  # type: ignore[no-untyped-def]
    sim, driver = pad
    driver.close()  # the CLI opens the port itself (exclusively)
    time.sleep(0.1)
    load = _load_for("aes", bytes.fromhex("00112233445566778899AABBCCDDEEFF"), AES_KSN)
    code = load_pin_key(["--port", sim.port.path, "--key", load.enciphered_key.hex(), "--ksn", AES_KSN.hex(),
                         "--kcv", load.kcv.hex()])
    assert code == 0 and "loaded: scheme aes" in capsys.readouterr().out
    wrong = load_pin_key(["--port", sim.port.path, "--key", load.enciphered_key.hex(), "--ksn", AES_KSN.hex(),
                          "--kcv", "000000"])
    assert wrong == 1 and "NOT loaded" in capsys.readouterr().err


def test_key_load_codec() -> None:
    load = KeyLoad("tdes", bytes(16), bytes(10), b"\x01\x02\x03")
    assert decode_key_load(encode_key_load(load)) == load
    with pytest.raises(LocalProtocolError):
        encode_key_load(KeyLoad("rsa", b"", b"", b"\x00\x00\x00"))
    with pytest.raises(RemoteProtocolError):
        decode_key_load(b"\x07\x00\x00\x00\x00\x00")


def test_key_load_with_the_journal_needs_a_technician_and_is_audited(pad, capsys, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from terminal.audit import AuditLog
    from terminal.journal import Journal
    from terminal.users import UserStore, hash_password

    sim, driver = pad
    driver.close()
    time.sleep(0.1)
    db = tmp_path / "journal.db"
    users = UserStore(Journal(db))
    users.ensure("80", "Zhao", "technician", hash_password("8888", n=2**10))
    users.ensure("01", "Li", "cashier", hash_password("1111", n=2**10))
    users.journal.close()
    load = _load_for("aes", bytes.fromhex("00112233445566778899AABBCCDDEEFF"), AES_KSN)
    base = ["--port", sim.port.path, "--key", load.enciphered_key.hex(), "--ksn", AES_KSN.hex(),
            "--kcv", load.kcv.hex(), "--journal", str(db)]
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "1111")
    assert load_pin_key([*base, "--user", "01"]) == 1  # a cashier may not
    assert "may not load keys (not a technician)" in capsys.readouterr().err
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "8888")
    assert load_pin_key([*base, "--user", "80"]) == 0
    entries = [(e.user_id, e.action, e.detail) for e in AuditLog(Journal(db)).recent()]
    assert entries == [("80", "key_load", f"loaded aes, KSN {AES_KSN.hex().upper()}"),
                       ("01", "refused", "key_load: not a technician")]
    assert load.enciphered_key.hex().upper() not in repr(entries)  # no key material in the audit log
