"""The leak scan the project runs on itself (issue 19 item 8).

``pos-sim --headless --trace-dir DIR`` runs scenarios as a technician would (a real process, umask 022) and keeps
every journal, masked serial trace (``spy://`` on every device), card transcript, log and receipt in DIR. The scan
then looks through every byte of every file (and a text dump of every SQLite database) for:

* every test PAN (chip and magstripe cards) as ASCII, as BCD bytes and as hex text, and any Luhn-valid number on
  a test BIN (the EMV QR codes' random PANs);
* track 2 (PAN, separator ``=`` or ``D``, expiry) in ASCII and hex, also after a masked PAN (the expiry and the
  rest of track 2 are blanked too), and every test card's cardholder name (ASCII and hex);
* clear PIN blocks of every test PIN: the ISO 9564 format 4 PIN field and the format 0 block, as bytes and hex;

and checks that no file or directory is readable by others. A representative subset runs in ``make test``;
``make soak`` runs every scenario.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sim.devices.cards import CATALOGUE
from sim.devices.stripes import STRIPE_CARDS

ROOT = Path(__file__).resolve().parents[2]
SUBSET = ["happy_path", "wrong_pin_then_right", "magstripe_fallback", "saf_offline_advice",
          "wallet_customer_presented", "cards/offline_enciphered_pin"]
TEST_BINS = ("621234", "621700", "622900", "476173", "541333", "354000")
_BIN = "|".join(TEST_BINS)
ASCII_PAN = re.compile(rf"(?<![0-9])(?:{_BIN})[0-9]{{7,13}}(?![0-9])".encode())
TRACK2 = re.compile(rf"((?:{_BIN})[0-9]{{6,13}})[=Dd]([0-9]{{4}})".encode())


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _masked(pan: bytes) -> bool:
    """First 6 / last 4 kept, the rest zeros (how transcripts keep BCD valid) or ``*``: allowed."""
    return set(pan[6:-4]) <= set(b"0*")


def _bcd(pan: str) -> bytes:
    return bytes.fromhex(pan + "F" * (len(pan) % 2))


def _pin_blocks(pin: str, pan: str) -> list[bytes]:
    """Clear PIN blocks of ``pin``: the format 4 PIN field (its first 8 bytes are fixed) and the format 0 block."""
    field4 = bytes.fromhex(f"4{len(pin):X}{pin}".ljust(16, "A"))
    field0 = bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))
    pan_field = bytes.fromhex("0000" + pan[-13:-1])
    return [field4, bytes(a ^ b for a, b in zip(field0, pan_field, strict=True))]


def _secrets() -> dict[str, list[bytes]]:
    profiles = [*CATALOGUE.values(), *(card.profile for card in STRIPE_CARDS.values())]
    pins = {p.pin for p in profiles} | {"9999", "1111"}  # the wrong PIN and the offline-PIN scenario's
    found: dict[str, list[bytes]] = {}
    for profile in profiles:
        if _masked(profile.pan.encode()):  # e.g. 621700…0014 is 6217000000000014: its own mask, nothing to find
            continue
        bcd = _bcd(profile.pan)
        found[f"PAN …{profile.pan[-4:]} ({profile.key})"] = [profile.pan.encode(), bcd, bcd.hex().encode(),
                                                             bcd.hex().upper().encode()]
        if profile.cardholder_name:  # the product never uses it: it appears nowhere (transcripts blank 5F20)
            name = profile.cardholder_name.encode()
            found[f"cardholder name of {profile.key}"] = [name, name.hex().encode(), name.hex().upper().encode()]
        for pin in pins:
            for block in _pin_blocks(pin, profile.pan):
                found.setdefault(f"clear PIN block of a {len(pin)}-digit test PIN", []).extend(
                    [block, block.hex().encode(), block.hex().upper().encode()])
    return found


def _artefacts(trace_dir: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(trace_dir.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        out[str(path.relative_to(trace_dir))] = data
        if data.startswith(b"SQLite format 3"):
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            out[f"{path.relative_to(trace_dir)} (dump)"] = "\n".join(conn.iterdump()).encode()
            conn.close()
    return out


def _run(trace_dir: Path, names: list[str]) -> None:
    files = [str(ROOT / "scenarios" / f"{name}.toml") for name in names]
    done = subprocess.run([sys.executable, "-m", "sim.cli", "--headless", "--trace-dir", str(trace_dir),
                           "--scenario", *files], capture_output=True, text=True, timeout=900, check=False,
                          preexec_fn=lambda: os.umask(0o022))  # noqa: PLW1509 - the umask of a usual shell
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _scan(trace_dir: Path) -> None:
    artefacts = _artefacts(trace_dir)
    traces = [name for name in artefacts if "trace-" in name]
    assert traces and any("terminal.log" in n and b" INFO " in artefacts[n] for n in artefacts), \
        "the run kept no traces or log: the scan would prove nothing"
    assert any(b"621234******1232" in data for data in artefacts.values())  # masked PANs are there, full ones not
    leaks = []
    for what, forms in _secrets().items():
        for name, data in artefacts.items():
            if any(form in data for form in forms):
                leaks.append(f"{what} in {name}")
    for name, data in artefacts.items():
        for match in ASCII_PAN.finditer(data):
            if _luhn(match.group().decode()) and not _masked(match.group()):
                leaks.append(f"a Luhn-valid number on a test BIN ({match.group()[:6].decode()}…) in {name}")
        if any(not _masked(m.group(1)) for m in TRACK2.finditer(data)):
            leaks.append(f"track 2 data in {name}")
        if any(m.group(2) != b"0000" for m in TRACK2.finditer(data)):  # a masked PAN, the real expiry after it
            leaks.append(f"track 2 remainder (expiry) after a PAN in {name}")
    assert not leaks, "\n".join(sorted(set(leaks)))
    exposed = [f"{oct(stat.S_IMODE(p.stat().st_mode))} {p.relative_to(trace_dir)}"
               for p in [trace_dir, *trace_dir.rglob("*")] if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert not exposed, "readable by others:\n" + "\n".join(exposed)


def test_the_scan_finds_what_it_looks_for(tmp_path):
    """The scan is not blind: a planted PAN, track 2, PIN block or open file mode is reported."""
    card = CATALOGUE["unionpay-debit"]
    base = tmp_path / "clean"
    base.mkdir(mode=0o700)
    (base / "terminal.log").write_bytes(b"x INFO trace-ok 621234******1232\n")
    (base / "trace-reader.txt").write_bytes(b"")
    os.chmod(base / "terminal.log", 0o600)
    os.chmod(base / "trace-reader.txt", 0o600)
    _scan(base)
    plants = {"ascii": card.pan.encode(), "bcd": _bcd(card.pan), "track2": b"6217001111111116=3012",
              "track2 remainder": b"6212340000001232D3012201", "name": card.cardholder_name.encode().hex().encode(),
              "pinblock": _pin_blocks("1234", card.pan)[1].hex().encode()}
    for planted in plants.values():
        (base / "planted.bin").write_bytes(planted)
        os.chmod(base / "planted.bin", 0o600)
        with pytest.raises(AssertionError):
            _scan(base)
        (base / "planted.bin").unlink()
    (base / "open.txt").write_bytes(b"")
    os.chmod(base / "open.txt", 0o644)
    with pytest.raises(AssertionError, match="readable by others"):
        _scan(base)


@pytest.mark.slow
@pytest.mark.scenario
def test_a_traced_run_leaves_no_pan_track_or_pin_and_nothing_readable_by_others(tmp_path):
    _run(tmp_path / "trace", SUBSET)
    _scan(tmp_path / "trace")


@pytest.mark.soak
def test_every_scenario_traced_leaves_nothing(tmp_path):
    names = sorted(p.relative_to(ROOT / "scenarios").with_suffix("").as_posix()
                   for p in (ROOT / "scenarios").rglob("*.toml"))
    _run(tmp_path / "trace", names)
    _scan(tmp_path / "trace")
