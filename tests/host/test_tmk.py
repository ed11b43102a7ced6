"""The TMK loaded as a TR-31 key block (drivers.host.tmk.load_tmk): blocks made by psec's TR-31 wrap (an
independent implementation) unwrap to the TMK; a wrong usage, algorithm or mode, a bad MAC, a wrong KBPK, a KBPK
beside the block, loose file modes and a clear key outside a test profile are each refused with a clear message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drivers.host.tmk import load_tmk
from emv.crypto.tr31 import unwrap, wrap
from pos_errors import ConfigError

psec_tr31 = pytest.importorskip("psec.tr31")

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
KBPK = {"D": bytes.fromhex("88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6"),
        "B": bytes.fromhex("89E88CF7931444F334BD7547FC3F380C")}


def _put(path: Path, text: str, mode: int = 0o600) -> str:
    path.parent.mkdir(exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.chmod(path, mode)
    return str(path)


def _files(tmp_path: Path, block: str, kbpk: bytes) -> tuple[str, str]:
    return _put(tmp_path / "blocks" / "tmk.tr31", block), _put(tmp_path / "keys" / "kbpk.hex", kbpk.hex().upper())


@pytest.mark.parametrize(("version", "mode"), [("D", "B"), ("D", "D"), ("B", "B"), ("B", "D")])
def test_psec_wrapped_tmk_loads(tmp_path: Path, version: str, mode: str) -> None:
    block = psec_tr31.wrap(KBPK[version], f"{version}0000K0T{mode}00N0000", TMK)
    assert load_tmk(*_files(tmp_path, block, KBPK[version])) == TMK


@pytest.mark.parametrize("version", ["B", "D"])
def test_our_wrap_is_read_by_psec(version: str) -> None:  # the simulator's blocks are real TR-31
    block = wrap(KBPK[version], f"{version}0000K0TB00N0000", TMK)
    header, key = psec_tr31.unwrap(KBPK[version], block)
    assert key == TMK and header.key_usage == "K0" and unwrap(KBPK[version], block).key == TMK


@pytest.mark.parametrize(("header", "why"), [
    ("D0000P0TB00N0000", "usage P0 \\(PIN encryption\\): a terminal master key is usage K0"),
    ("D0000B1TX00N0000", "usage B1 \\(initial DUKPT key\\)"),
    ("D0000K0AB00N0000", "algorithm A key"),
    ("D0000K0TE00N0000", "mode of use E"),
])
def test_wrong_kind_of_key_is_refused(tmp_path: Path, header: str, why: str) -> None:
    block = psec_tr31.wrap(KBPK["D"], header, TMK)
    with pytest.raises(ConfigError, match=why):
        load_tmk(*_files(tmp_path, block, KBPK["D"]))


def test_wrong_kbpk_and_altered_block_are_refused(tmp_path: Path) -> None:
    block = psec_tr31.wrap(KBPK["D"], "D0000K0TB00N0000", TMK)
    with pytest.raises(ConfigError, match="does not unwrap under host.tmk_kbpk_file: .*MAC does not verify"):
        load_tmk(*_files(tmp_path, block, bytes(32)))
    flipped = block[:30] + ("0" if block[30] != "0" else "1") + block[31:]
    with pytest.raises(ConfigError, match="MAC does not verify"):
        load_tmk(*_files(tmp_path, flipped, KBPK["D"]))
    relabelled = block[:5] + "P0" + block[7:]  # a header claim changed: the MAC binds it
    with pytest.raises(ConfigError, match="MAC does not verify"):
        load_tmk(*_files(tmp_path, relabelled, KBPK["D"]))


def test_single_length_tmk_is_refused(tmp_path: Path) -> None:
    block = psec_tr31.wrap(KBPK["D"], "D0000K0TB00N0000", TMK[:8] * 2)
    with pytest.raises(ConfigError, match="two different halves"):
        load_tmk(*_files(tmp_path, block, KBPK["D"]))


@pytest.mark.parametrize(("block_at", "kbpk_at"), [
    ("tmk.tr31", "kbpk.hex"),  # the same folder
    ("tmk.tr31", "kbpk/kbpk.hex"),  # the KBPK one folder below the block's (security review item 4)
    ("blocks/tmk.tr31", "kbpk.hex"),  # the block below the KBPK's folder
    ("blocks/tmk.tr31", "keys/../blocks/kbpk.hex"),  # a path through ..
])
def test_kbpk_beside_or_below_the_block_is_refused(tmp_path: Path, block_at: str, kbpk_at: str) -> None:
    block = _put(tmp_path / block_at, psec_tr31.wrap(KBPK["D"], "D0000K0TB00N0000", TMK))
    (tmp_path / "keys").mkdir(exist_ok=True)
    kbpk = _put(tmp_path / kbpk_at, KBPK["D"].hex())
    with pytest.raises(ConfigError, match="share a folder"):
        load_tmk(block, kbpk)


def test_loose_modes_and_missing_kbpk_are_named(tmp_path: Path) -> None:
    block, kbpk = _files(tmp_path, psec_tr31.wrap(KBPK["D"], "D0000K0TB00N0000", TMK), KBPK["D"])
    with pytest.raises(ConfigError, match="host.tmk_kbpk_file is not set"):
        load_tmk(block)
    os.chmod(kbpk, 0o644)
    with pytest.raises(ConfigError, match="host.tmk_kbpk_file .* has mode 0644"):
        load_tmk(block, kbpk)
    os.chmod(kbpk, 0o600)
    _put(tmp_path / "keys" / "kbpk.hex", "00112233")
    with pytest.raises(ConfigError, match="32, 48 or 64 hex digits"):
        load_tmk(block, kbpk)


def test_clear_tmk_only_when_allowed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clear = _put(tmp_path / "tmk.hex", TMK.hex())
    with pytest.raises(ConfigError, match="holds a clear key"):
        load_tmk(clear)
    assert load_tmk(clear, allow_clear=True) == TMK
    assert "CLEAR terminal master key" in caplog.text and TMK.hex() not in caplog.text.lower()
