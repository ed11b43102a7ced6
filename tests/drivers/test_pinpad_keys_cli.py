"""`python -m terminal.load_pin_key`: technician login required, dual control when configured, replayed KSN
refused before anything is sent, every attempt audited with its check value — against the simulated pad on a pty."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emv.crypto.mac import kcv_tdes
from emv.crypto.pin import derive_initial_key, key_check_value
from sim.devices.pinpad import TEST_KBPK, PinPadSim
from terminal.audit import AuditLog
from terminal.journal import Journal
from terminal.load_pin_key import main as load_pin_key
from terminal.settings_store import SettingsStore
from terminal.users import UserStore, hash_password
from tests.drivers.test_pinpad_keys import AES_KSN, NEW_BDK, NEW_KSN, OLD_BDK, key_block

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
psec_tr31 = pytest.importorskip("psec.tr31")
PASSWORDS = {"80": "888888", "81": "818181", "90": "999999", "01": "111111"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[PinPadSim, Path]]:
    sim = PinPadSim(initial_key=derive_initial_key("aes", OLD_BDK, AES_KSN), initial_ksn=AES_KSN)
    sim.start()
    db = tmp_path / "journal.db"
    users = UserStore(Journal(db))
    for uid, role in (("80", "technician"), ("81", "technician"), ("90", "supervisor"), ("01", "cashier")):
        users.ensure(uid, f"user {uid}", role, hash_password(PASSWORDS[uid], n=2**10))
    users.journal.close()
    monkeypatch.setattr("getpass.getpass", lambda prompt="": PASSWORDS[prompt.split()[-1].rstrip(":")])
    time.sleep(0.05)
    yield sim, db
    sim.stop()


def _audit(db: Path) -> list[tuple[str, str, str]]:
    return [(e.user_id, e.action, e.detail) for e in reversed(AuditLog(Journal(db)).recent())]


def _args(sim: PinPadSim, db: Path, block: str, *extra: str) -> list[str]:
    return ["--port", sim.port.path, "--journal", str(db), "--key-block", block, *extra]


def test_no_login_no_load(world: tuple[PinPadSim, Path], capsys: pytest.CaptureFixture[str]) -> None:
    sim, _db = world
    before = sim.key_status()
    with pytest.raises(SystemExit):  # --journal and --user are required: no anonymous key loading
        load_pin_key(["--port", sim.port.path, "--key-block", key_block("aes", NEW_BDK, NEW_KSN)])
    assert "required" in capsys.readouterr().err and sim.key_status() == before


def test_technician_loads_and_the_audit_has_the_check_value(world: tuple[PinPadSim, Path],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    sim, db = world
    block = key_block("aes", NEW_BDK, NEW_KSN)
    assert load_pin_key([*_args(sim, db, block), "--user", "01"]) == 1  # a cashier may not
    assert "may not load keys (not a technician)" in capsys.readouterr().err
    assert load_pin_key([*_args(sim, db, block), "--user", "80"]) == 0
    kcv = key_check_value(derive_initial_key("aes", NEW_BDK, NEW_KSN), "aes").hex().upper()
    assert f"KCV {kcv}" in capsys.readouterr().out
    assert _audit(db) == [("01", "refused", "key_load: not a technician"),
                          ("80", "key_load", f"loaded aes, KSN {NEW_KSN.hex().upper()}, KCV {kcv}")]
    assert block[16:40] not in repr(_audit(db))  # no key material in the audit log


def test_replayed_ksn_is_refused_before_sending(world: tuple[PinPadSim, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    sim, db = world
    block = key_block("aes", NEW_BDK, NEW_KSN)
    assert load_pin_key([*_args(sim, db, block), "--user", "80"]) == 0
    loaded = sim.key_status()
    assert load_pin_key([*_args(sim, db, block), "--user", "80"]) == 1
    assert "replayed key load" in capsys.readouterr().err
    assert sim.key_status() == loaded and _audit(db)[-1][2].startswith(
        f"NOT loaded aes, KSN {NEW_KSN.hex().upper()}: the key block's KSN")


def test_dual_control_needs_a_second_person(world: tuple[PinPadSim, Path],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    sim, db = world
    SettingsStore(Journal(db)).set("security.key_load_dual", 1)
    block = key_block("aes", NEW_BDK, NEW_KSN)
    before = sim.key_status()
    assert load_pin_key([*_args(sim, db, block), "--user", "80"]) == 1
    assert load_pin_key([*_args(sim, db, block), "--user", "80", "--second-user", "80"]) == 1
    assert load_pin_key([*_args(sim, db, block), "--user", "80", "--second-user", "01"]) == 1  # a cashier
    assert capsys.readouterr().err.count("NOT loaded") == 3 and sim.key_status() == before
    assert load_pin_key([*_args(sim, db, block), "--user", "80", "--second-user", "90"]) == 0
    assert _audit(db)[-1][2].startswith(f"loaded aes, KSN {NEW_KSN.hex().upper()}, second person 90, KCV ")


def test_a_block_that_does_not_parse_is_refused_clearly(world: tuple[PinPadSim, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    sim, db = world
    with pytest.raises(SystemExit):
        load_pin_key([*_args(sim, db, "C0016B1AX00N0000"), "--user", "80"])
    assert "only B (TDES) and D (AES)" in capsys.readouterr().err


def test_technician_loads_the_terminal_master_key(world: tuple[PinPadSim, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    sim, db = world
    tmk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    block = str(psec_tr31.wrap(TEST_KBPK["D"], "D0000K0TB00N0000", tmk))
    before = sim.key_status()
    assert load_pin_key([*_args(sim, db, block), "--user", "80"]) == 0
    kcv = kcv_tdes(tmk, 3).hex().upper()
    assert f"loaded: terminal master key, KCV {kcv}" in capsys.readouterr().out
    assert sim.tmk == tmk and sim.key_status() == before  # the DUKPT key is untouched
    assert _audit(db)[-1] == ("80", "key_load", f"loaded terminal master key, KCV {kcv}")
    wrong = str(psec_tr31.wrap(bytes(32), "D0000K0TB00N0000", bytes(reversed(tmk))))  # not under the pad's KBPK
    assert load_pin_key([*_args(sim, db, wrong), "--user", "80"]) == 1
    assert "refused the key block" in capsys.readouterr().err and sim.tmk == tmk
