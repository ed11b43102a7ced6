"""The terminal's log: one line per event, each naming the terminal, in files of capped size.

A terminal runs for months on a small eMMC; an ever-growing log fills it, and a full disk stops sales (the journal
cannot commit). ``RotatingFileHandler`` keeps ``backups`` old files of at most ``max_bytes`` each.

>>> import io
>>> stream = io.StringIO()
>>> handler = make_handler("", terminal_id="T0000001", stream=stream)
>>> logger = logging.getLogger("doctest.log_setup")
>>> logger.addHandler(handler); logger.setLevel(logging.INFO); logger.propagate = False
>>> logger.info("txn 7 order T1 stage paid")
>>> stream.getvalue().split(" ", 2)[2]
'T0000001 MainThread doctest.log_setup INFO txn 7 order T1 stage paid\\n'
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import stat
import time
from typing import TextIO

__all__ = ["configure", "make_handler", "FORMAT"]

FORMAT = "%(asctime)s %(terminal_id)s %(threadName)s %(name)s %(levelname)s %(message)s"


class _Line(logging.Formatter):
    """FORMAT with the terminal's id written into it (no filter call per record) and the date and time to the
    second formatted once per second (``time.strftime`` per record otherwise); the line is the stdlib's, to the
    character (``asctime`` as ``Formatter.formatTime`` spells it: ``2026-12-03 19:33:21,042``)."""

    def __init__(self, terminal_id: str) -> None:
        super().__init__(FORMAT.replace("%(terminal_id)s", terminal_id.replace("%", "%%")))
        self._second, self._stamp = -1, ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - stdlib's name
        if datefmt or not self.default_msec_format:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:  # the handler's lock serialises format(): one writer at a time
            self._stamp, self._second = time.strftime(self.default_time_format, self.converter(second)), second
        return self.default_msec_format % (self._stamp, record.msecs)


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """Every file of the rotation is created 0600: the log names transactions and cashiers. Each record is
    formatted once (the stdlib formats it a second time to measure it) and whether the file is a regular one
    (only those rotate: bpo-45401) is asked once per opened file, not with two ``stat`` calls per record."""

    _regular = True
    _size = 0  # bytes in the open file: its size at open plus every line written since (no seek and tell per record)

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        status = os.fstat(fd)
        self._regular, self._size = stat.S_ISREG(status.st_mode), status.st_size
        return open(fd, "a", encoding=self.encoding)  # noqa: SIM115 - the handler owns and closes it

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            if self.stream is None:
                self.stream = self._open()
            size = len(line.encode(self.encoding or "utf-8", "replace"))
            if self.maxBytes > 0 and self._regular and self._size + size >= self.maxBytes:
                self.doRollover()  # reopens: _size is the new file's
            self.stream.write(line)
            self.flush()
            self._size += size
        except RecursionError:
            raise
        except Exception:  # as logging does: a failing log never stops the till
            self.handleError(record)


def make_handler(path: str, *, terminal_id: str, max_bytes: int = 5_000_000, backups: int = 5,
                 stream: TextIO | None = None) -> logging.Handler:
    """A size-capped rotating file at ``path`` (created 0600), or ``stream`` / stderr when ``path`` is empty."""
    handler: logging.Handler
    if path:
        handler = _PrivateRotatingFile(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream)
    handler.setFormatter(_Line(terminal_id))
    return handler


def configure(path: str, *, terminal_id: str, max_bytes: int, backups: int) -> None:
    """The root logger at INFO through one handler; ``transitions`` only from WARNING (it logs every callback)."""
    root = logging.getLogger()
    root.handlers[:] = [make_handler(path, terminal_id=terminal_id, max_bytes=max_bytes, backups=backups)]
    root.setLevel(logging.INFO)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    _lean_records()


def _lean_records() -> None:
    """Leave out of every record what ``FORMAT`` never shows (the logging HOWTO, "Optimization"): the caller's
    file and line (a stack walk per record), the process id and the multiprocessing name. Thread names stay."""
    logging._srcfile = None  # type: ignore[attr-defined]  # documented switch: no sys._getframe() per record
    logging.logProcesses = False
    logging.logMultiprocessing = False
