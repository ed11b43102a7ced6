"""Issue 18: the terminal's log rotates at a configured size, names the terminal on every line, is 0600."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pos_errors import ConfigError
from terminal.config import Settings
from terminal.log_setup import make_handler


def test_the_log_rotates_at_its_cap_and_keeps_the_configured_backups(tmp_path: Path) -> None:
    path = tmp_path / "terminal.log"
    _log_lines(path, "rotate", 1000)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["terminal.log", "terminal.log.1", "terminal.log.2"]
    assert all((tmp_path / name).stat().st_size <= 10_000 for name in files)
    last = path.read_text(encoding="utf-8").splitlines()[-1]
    assert " T0000042 MainThread test.log_setup.rotate INFO event 0999 " in last
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_log_cap_out_of_range_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="terminal.log_max_bytes must be 10000..1000000000, not 10"):
        Settings.from_dict({"terminal": {"log_max_bytes": 10}})


def test_pos_terminal_logs_to_the_configured_file(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    log = tmp_path / "t.log"
    config.write_text(f'[terminal]\nid = "T0000077"\njournal = "{tmp_path / "j.db"}"\nlog_file = "{log}"\n'
                      '[devices]\nreader = "/nonexistent/reader"\n', encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "terminal.cli", "--config", str(config)], input="", text=True,
                         capture_output=True, timeout=60, check=False)
    assert run.returncode in (0, 1)  # no devices here: it may refuse to start, but it logs first
    text = log.read_text(encoding="utf-8")
    assert " T0000077 " in text.splitlines()[0]


def test_each_journal_event_is_one_log_line_with_the_transaction_and_its_stage(tmp_path: Path) -> None:
    from terminal.journal import Journal

    path = tmp_path / "t.log"
    handler = make_handler(str(path), terminal_id="T0000042")
    journal_log = logging.getLogger("terminal.journal")
    journal_log.addHandler(handler)
    journal_log.setLevel(logging.INFO)
    try:
        journal = Journal(tmp_path / "j.db")
        txn = journal.begin(order_id="O7", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                            plan_name="Plan", amount_minor=3000, fee_minor=18, channel="card", cashier_id="01")
        journal.update(txn, "auth_intended", stan=12)
        journal.close()
    finally:
        journal_log.removeHandler(handler)
        handler.close()
    lines = [line.split(" INFO ", 1) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(head.split()[2], tail) for head, tail in lines if "txn" in tail] == [
        ("T0000042", f"txn {txn} order O7 stage created card 3018 fen"),
        ("T0000042", f"txn {txn} order O7 stage auth_intended stan=12")]


def test_configured_records_skip_the_caller_lookup_but_keep_every_field_of_the_line(tmp_path: Path) -> None:
    """Issue 17 item 3: ``configure`` drops what FORMAT never shows (caller file/line, process) from each record."""
    from terminal import log_setup

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging._srcfile, logging.logProcesses,  # type: ignore[attr-defined]
             logging.logMultiprocessing)
    path = tmp_path / "t.log"
    records: list[logging.LogRecord] = []
    try:
        log_setup.configure(str(path), terminal_id="T0000042", max_bytes=100_000, backups=1)
        root.handlers[0].addFilter(lambda record: records.append(record) or True)
        logging.getLogger("terminal.test").info("txn %d stage %s", 7, "paid")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = saved[0], saved[1]
        logging._srcfile, logging.logProcesses, logging.logMultiprocessing = saved[2:]  # type: ignore[attr-defined]
    assert records[0].lineno == 0 and records[0].process is None  # no stack walk, no getpid per record
    assert " T0000042 MainThread terminal.test INFO txn 7 stage paid" in path.read_text(encoding="utf-8")


def test_a_log_that_is_not_a_regular_file_is_written_but_never_rotated(tmp_path: Path) -> None:
    """``log_file`` pointing at a device (here through a link to /dev/null) takes every line and never rotates
    (bpo-45401), also now that the handler asks the file's kind once per open instead of twice per record."""
    link = tmp_path / "terminal.log"
    link.symlink_to("/dev/null")
    _log_lines(link, "device", 500)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["terminal.log"]
    assert link.is_symlink() and str(link.readlink()) == "/dev/null"


def _log_lines(path: Path, name: str, count: int) -> None:
    """``count`` 50-byte INFO lines through the terminal's handler (10 kB cap, 2 backups) on its own logger."""
    logger = logging.getLogger(f"test.log_setup.{name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = make_handler(str(path), terminal_id="T0000042", max_bytes=10_000, backups=2)
    logger.addHandler(handler)
    try:
        for n in range(count):
            logger.info("event %04d %s", n, "x" * 40)
    finally:
        logger.removeHandler(handler)
        handler.close()


@pytest.mark.parametrize("terminal_id", ["T0000042", "T%d%%s"])
def test_a_line_is_the_stdlib_formatters_line_across_seconds(terminal_id: str) -> None:
    """Issue 17 item 3: the terminal id is written into the format and the date formatted once per second; every
    line must still be what ``logging.Formatter(FORMAT)`` with the id on the record writes, to the character."""
    from terminal.log_setup import FORMAT

    ours = make_handler("", terminal_id=terminal_id).formatter
    stdlib = logging.Formatter(FORMAT)
    assert ours is not None
    for created in (1796319201.0, 1796319201.042, 1796319201.9999, 1796319202.5, 1796319201.25, 1796405599.001):
        record = logging.LogRecord("terminal.journal", logging.INFO, "", 0, "txn %d stage %s", (7, "paid"), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        record.terminal_id = terminal_id
        assert ours.format(record) == stdlib.format(record)


def test_the_cap_counts_bytes_not_characters(tmp_path: Path) -> None:
    """The handler counts what it wrote instead of asking the file (seek and tell per record): Chinese text takes
    three bytes a character in UTF-8, and the files still stay under the cap."""
    path = tmp_path / "terminal.log"
    path.write_bytes(b"x" * 9_000 + b"\n")  # a log from before: its size counts from the first record on
    logger = logging.getLogger("test.log_setup.bytes")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = make_handler(str(path), terminal_id="T0000042", max_bytes=10_000, backups=2)
    logger.addHandler(handler)
    try:
        for n in range(100):  # ~170 bytes a line, ~100 characters
            logger.info("事件 %04d %s", n, "充值" * 20)
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == ["terminal.log", "terminal.log.1", "terminal.log.2"]
    assert all(p.stat().st_size <= 10_000 for p in files)
    assert files[2].read_bytes().startswith(b"x" * 9_000)  # rotated before it passed the cap
    assert path.read_text(encoding="utf-8").splitlines()[-1].endswith("事件 0099 " + "充值" * 20)
