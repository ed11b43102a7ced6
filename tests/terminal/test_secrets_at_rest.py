"""Secrets at rest (issue 19 item 7): the journal (with its -wal and -shm), logs and key files are created 0600 in
a 0700 directory whatever the umask; the PAN sealing key comes from the device secret the configuration points
to, never from a file beside the journal."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from firmware_image.keys import generate, save_private
from pos_errors import ConfigError
from terminal.config import Settings
from terminal.device_secret import read_device_secret, sealing_key
from terminal.journal import Journal
from terminal.secret_file import create_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # the usual umask: files 0644 and directories 0755 unless the code asks otherwise
    yield
    os.umask(old)


def test_journal_wal_and_shm_are_private_in_a_private_directory(tmp_path, open_umask):
    path = tmp_path / "var" / "pos" / "journal.db"
    journal = Journal(path)
    journal.next_stan()  # a write: the -wal and -shm files exist now
    files = {p.name: _mode(p) for p in path.parent.iterdir()}
    journal.close()
    assert {"journal.db", "journal.db-wal", "journal.db-shm"} <= set(files)
    assert set(files.values()) == {0o600} and _mode(path.parent) == 0o700
    assert not any(name.endswith(".safkey") for name in files)  # no key beside the journal


def test_an_existing_world_readable_journal_and_directory_are_tightened(tmp_path, open_umask):
    folder = tmp_path / "old"
    folder.mkdir(mode=0o755)
    (folder / "journal.db").touch(mode=0o644)
    Journal(folder / "journal.db").close()
    assert (_mode(folder), _mode(folder / "journal.db")) == (0o700, 0o600)


def test_log_and_key_files_are_private(tmp_path, open_umask):
    log = create_private(tmp_path / "logs" / "pos.log")
    key = tmp_path / "fw-dev-key.pem"
    save_private(generate("ed25519"), key)
    assert (_mode(log), _mode(log.parent), _mode(key)) == (0o600, 0o700, 0o600)


def test_the_sealing_key_comes_from_the_device_secret(tmp_path):
    secret_file = tmp_path / "secret" / "device.key"
    secret_file.parent.mkdir()
    secret_file.write_bytes(bytes(range(32)))
    secret_file.chmod(0o600)
    secret = read_device_secret(str(secret_file), "", journal=str(tmp_path / "var" / "journal.db"))
    assert secret == bytes(range(32))
    key = sealing_key(secret, "T0000001")
    assert len(key) == 32 and key != sealing_key(secret, "T0000002") and key not in secret_file.read_bytes()
    env = {"POS_TEST_SECRET": bytes(range(32)).hex()}
    assert read_device_secret("", "POS_TEST_SECRET", environ=env) == secret


@pytest.mark.parametrize(("setup", "named"), [
    ("readable", "has mode 0644: it must be 0600"),
    ("beside", "beside the journal"),
    ("below", "beside the journal"),  # one folder down from the journal's: beside it all the same
    ("above", "beside the journal"),  # the journal in a folder below the secret's
    ("short", "at least 16 bytes"),
    ("unset-env", "not set in the environment"),
    ("bad-env", "hex digits"),
    ("none", "device_secret_file is not set"),
])
def test_a_bad_device_secret_is_refused_naming_the_setting(tmp_path, setup, named):
    journal = tmp_path / "var" / "journal.db"
    where = {"beside": journal.parent, "below": journal.parent / "keys", "above": tmp_path}.get(setup,
                                                                                           tmp_path / "keys")
    where.mkdir(parents=True, exist_ok=True)
    secret = where / "device.key"
    secret.write_bytes(b"x" * (8 if setup == "short" else 32))
    secret.chmod(0o644 if setup == "readable" else 0o600)
    file, env = {"unset-env": ("", "POS_NOT_SET"), "bad-env": ("", "POS_BAD"),
                 "none": ("", "")}.get(setup, (str(secret), ""))
    with pytest.raises(ConfigError, match=named):
        read_device_secret(file, env, journal=str(journal), environ={"POS_BAD": "zz"})


def test_production_reads_the_device_secret_from_a_file_only():
    with pytest.raises(ConfigError, match="security.device_secret_env"):
        Settings.from_dict({"security": {"device_secret_env": "POS_SECRET"}})
    Settings.from_dict({"terminal": {"profile": "test"}, "security": {"device_secret_env": "POS_SECRET"}})


def test_the_device_secret_is_read_as_a_private_file_every_byte_kept(tmp_path):
    """Security review item 4: no symlink followed (the link could point anywhere), every byte of a binary
    secret kept (no stripping of whitespace bytes), a sibling folder of the journal's accepted."""
    journal = str(tmp_path / "var" / "journal.db")
    keys = tmp_path / "keys"
    keys.mkdir()
    secret = keys / "device.key"
    secret.write_bytes(b"\n\t" + bytes(range(32, 64)) + b" \n")
    secret.chmod(0o400)
    assert read_device_secret(str(secret), "", journal=journal) == b"\n\t" + bytes(range(32, 64)) + b" \n"
    link = tmp_path / "elsewhere" / "device.key"
    link.parent.mkdir()
    link.symlink_to(secret)
    with pytest.raises(ConfigError, match="security.device_secret_file .*cannot open"):
        read_device_secret(str(link), "", journal=journal)
    with pytest.raises(ConfigError, match="beside the journal"):  # a path through .. names the same folder
        read_device_secret(str(tmp_path / "var" / ".." / "var" / "k" / "device.key"), "", journal=journal)


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="giving a file away needs root")
def test_a_device_secret_owned_by_another_user_is_refused(tmp_path):
    secret = tmp_path / "keys" / "device.key"
    secret.parent.mkdir()
    secret.write_bytes(bytes(32))
    secret.chmod(0o600)
    os.chown(secret, 4242, -1)
    with pytest.raises(ConfigError, match="security.device_secret_file .* is not owned by the terminal's user"):
        read_device_secret(str(secret), "", journal=str(tmp_path / "var" / "journal.db"))
