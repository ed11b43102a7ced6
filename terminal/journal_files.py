"""The files beside the journal database: the high-water record, the out-of-service notice, the damaged copies.

No SQL here (``terminal.journal`` holds all of it). Paths, for a journal ``var/journal.db``:

==============================  ===============================================================================
``journal.db.hw0`` / ``.hw1``   the high-water record (``HighWater``), written in turn after every commit in
                                place (a torn slot leaves the other), not fsync'd: it only has to outlive a
                                killed process (the page cache does); after a power cut it may lag one commit
                                behind the fsync'd journal, which the check allows (the journal may be *ahead*
                                of it, never behind)
``journal.db.hold``             the out-of-service notice (``Damage`` as JSON) until a technician accepts it
``journal.db.damaged-STAMP*``   the damaged database, WAL and the WAL as found at boot, kept for the technician
``journal.db-wal.boot``         a copy of the WAL an unclean stop left, taken before SQLite replays it (SQLite
                                drops a WAL from its first bad frame on, and would delete the evidence)
==============================  ===============================================================================

>>> import tempfile, pathlib
>>> files = JournalFiles(str(pathlib.Path(tempfile.mkdtemp()) / "j.db"))
>>> files.database_state(), files.hold()
('absent', None)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from terminal.journal_chain import Chain, Damage, HighWater, against, newest
from terminal.secret_file import load_or_make_secret, private_dir

__all__ = ["JournalFiles", "Opening", "RECORD_SIZE"]

RECORD_SIZE = 320  # a high-water slot's fixed size: every record fits, padded with spaces

log = logging.getLogger("terminal.journal")


@dataclass(frozen=True)
class Opening:
    """What was beside the journal before it was opened: the high-water record, and the database file's state."""

    record: HighWater | None
    recorded: bool  # a record file exists (readable or not)
    state: str  # absent | empty | present

    @property
    def lost(self) -> Damage | None:
        """The database is gone or empty while a record says it held something."""
        where = self.record.position if self.record else "unreadable"
        return Damage("missing" if self.state == "absent" else "empty", f"journal {self.state}, record at {where}") \
            if self.state != "present" and self.recorded else None

    @property
    def seq(self) -> int:
        return self.record.seq if self.record else 0

    @property
    def counters(self) -> tuple[int, int, int]:
        return (self.record.stan, self.record.invoice, self.record.batch) if self.record else (0, 0, 1)

    @property
    def generation(self) -> int:
        return self.record.generation if self.record else 0

    def against(self, chain: Chain, mac_there: bytes | None, chained: bool) -> Damage | None:
        return against((chain.generation, chain.seq), mac_there, self.record, recorded=self.recorded,
                       chained=chained)


def _copy_private(src: str | Path, dst: str | Path) -> None:
    """Copy readable by the terminal's user only (0600), as the journal itself."""
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o600)


class JournalFiles:
    def __init__(self, path: str) -> None:
        self.path = path
        self.memory = path == ":memory:"
        self._slot = 0
        self._slots = (path + ".hw0", path + ".hw1")  # written at every COMMIT: no Path built each time

    def _p(self, suffix: str) -> Path:
        return Path(self.path + suffix)

    def make_private(self, read_only: bool = False) -> None:
        """The database and its -wal and -shm files 0600 in a 0700 directory (issue 19: secrets at rest)."""
        if not self.memory and not read_only:
            private_dir(Path(self.path).parent)
            for path in (self._p(""), self._p("-wal"), self._p("-shm")):
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_uid == os.getuid():
                        os.chmod(path, 0o600)

    def database_state(self) -> str:
        """``absent``, ``empty`` (0 bytes: SQLite would start a new database in it) or ``present``."""
        if self.memory:
            return "absent"
        try:
            return "present" if Path(self.path).stat().st_size > 0 else "empty"
        except FileNotFoundError:
            return "absent"

    def key_path(self) -> Path | None:
        """The chain key's file (0600, made once). The chain detects damage and roll-back; keying it by the
        device secret instead (so a copy of the journal's folder cannot re-seal rows) is left open."""
        return None if self.memory else self._p(".chainkey")

    def own_chain_key(self, read_only: bool) -> bytes:
        """The chain key of a journal whose terminal names no device secret (test benches, tools): its own 0600
        file, made once; a read-only opener makes none (and, without one, can check nothing)."""
        path = self.key_path()
        if not read_only:
            return load_or_make_secret(path)
        return path.read_bytes() if path is not None and path.exists() else os.urandom(32)

    def opening(self, key: bytes) -> Opening:
        """Read the record and the database's state, and keep a copy of a WAL left by an unclean stop."""
        record, recorded = self.high_water(key)
        opening = Opening(record, recorded, self.database_state())
        self.save_wal_evidence()
        return opening

    def save_wal_evidence(self) -> None:
        """Copy a WAL an unclean stop left (only then does one exist at open) before SQLite replays it."""
        wal = self._p("-wal")
        if not self.memory and wal.exists() and wal.stat().st_size > 0:
            try:
                _copy_private(wal, self._p("-wal.boot"))
            except OSError as exc:
                log.warning("could not keep a copy of the WAL: %s", exc)

    def high_water(self, key: bytes) -> tuple[HighWater | None, bool]:
        """(the newest readable record, whether any record file exists at all)."""
        if self.memory:
            return None, False
        slots: dict[int, HighWater | None] = {}
        for slot in (0, 1):
            try:
                slots[slot] = HighWater.decode(self._p(f".hw{slot}").read_bytes(), key)
            except FileNotFoundError:
                continue
            except OSError:
                slots[slot] = None
        record = newest(slots.values())
        self._slot = next((1 - n for n, r in slots.items() if r is not None and r == record), 0)
        return record, bool(slots)

    def write_high_water(self, record: HighWater, key: bytes) -> None:
        """Overwrite the older slot in place (one write of a fixed size: no rename, no fsync). A write torn by a
        power cut spoils only that slot; the other still holds the record before it. A failure is logged: the
        journal itself is durable, and a record that lags behind it is allowed."""
        if self.memory:
            return
        try:
            fd = os.open(self._slots[self._slot], os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.pwrite(fd, record.encode(key).ljust(RECORD_SIZE, b" "), 0)
            finally:
                os.close(fd)
            self._slot = 1 - self._slot
        except OSError as exc:
            log.warning("high-water record not written: %s", exc)

    def hold(self) -> Damage | None:
        """The out-of-service notice, if one is standing."""
        if self.memory:
            return None
        try:
            return Damage.from_json(self._p(".hold").read_text(encoding="utf-8", errors="replace"))
        except FileNotFoundError:
            return None
        except OSError as exc:
            return Damage("unreadable", f"out-of-service notice unreadable: {exc}")

    def put_hold(self, damage: Damage) -> None:
        if not self.memory:
            self._write_durably(self._p(".hold"), damage.to_json().encode("utf-8"))

    def clear_hold(self) -> None:
        self._p(".hold").unlink(missing_ok=True)

    def keep_damaged(self, *, move: bool, stamp: str = "") -> str:
        """Keep the damaged database, its WAL and the WAL copied at boot as ``….damaged-STAMP*``; moved away when
        the journal starts anew, copied when it goes on. Returns the kept database's path ("" when none)."""
        kept = self.path + f".damaged-{stamp or dt.datetime.now().strftime('%Y%m%dT%H%M%S')}"
        for suffix, src in (("", self.path), ("-wal", self.path + "-wal"), ("-wal.boot", self.path + "-wal.boot")):
            if not Path(src).exists():
                continue
            (os.replace if move or suffix == "-wal.boot" else _copy_private)(src, kept + suffix)
        if move:
            self._p("-shm").unlink(missing_ok=True)
        return kept if Path(kept).exists() else ""

    @staticmethod
    def _write_durably(path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
