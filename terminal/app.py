"""The thin shell around ``TerminalCore``: the app thread, the event queue, workers, timers and display listeners.

Keys, progress reports and finished work all arrive as events on one queue; only the app thread feeds the core
and carries out the commands it returns. Work runs in a worker thread each and posts its result back; the
background follow-up finishes pending transactions every ``follow_up_s`` and the health timer asks for a device
check every ``health_s``.

>>> TerminalApp.__name__
'TerminalApp'
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from flows.messages import Msg
from flows.ports import CancelToken
from pos_errors import PosError
from terminal.core import (
    ArmDeadline,
    Audit,
    CancelWork,
    Command,
    Event,
    HealthDue,
    KeyPressed,
    Notice,
    Progress,
    Render,
    Started,
    StartWork,
    TerminalCore,
    Tick,
    WorkDone,
)
from terminal.handlers import HANDLERS, settings
from terminal.machine import State
from terminal.screens import Key, Screen
from terminal.services import Services
from terminal.views import Session
from terminal.work import WorkContext, given_back_rows, journal_writable, recover_all

__all__ = ["TerminalApp", "Workers"]

log = logging.getLogger("terminal.app")
_STOP = object()


@dataclass(frozen=True)
class _Typed:
    """Keys typed at once (``press_keys``): one item on the queue, never empty."""

    keys: tuple[Key, ...]


class TerminalApp:
    """Construct with wired ``Services``; ``start()`` boots in the background; ``press()`` from any thread."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.core = TerminalCore(services, HANDLERS)
        settings.apply_stored(self.core)  # a supervisor's changes win over the configuration file
        self._events: queue.SimpleQueue[object] = queue.SimpleQueue()  # C: no Python Condition per put and get
        self._listeners: list[Callable[[Screen], None]] = []
        self._cancel = CancelToken()
        self._deadline: float | None = None
        self._money = threading.Lock()  # one money movement at a time (terminal.work)
        self._device_check = threading.Lock()  # a background device check and a payment never overlap
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="terminal-app", daemon=True)
        self._follow_up = threading.Thread(target=self._follow_up_loop, name="terminal-follow-up", daemon=True)
        self._workers = Workers()

    # --- outside API ----------------------------------------------------------------------------------------

    @property
    def screen(self) -> Screen:
        return self.core.screen

    @property
    def state(self) -> State:
        return self.core.state

    @property
    def session(self) -> Session:
        return self.core.session

    def start(self) -> None:
        self._thread.start()
        self._follow_up.start()
        interval = self.services.settings.timeouts.health_s
        if interval > 0:
            threading.Thread(target=self._health_timer, args=(interval,), name="terminal-health",
                             daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        self._cancel.cancel()
        self._events.put(_STOP)
        self._thread.join(timeout=5)
        self._workers.wait_idle(5.0)  # a self-test or payment still running must not outlive the services

    def press(self, key: Key | str) -> None:
        self._events.put(KeyPressed(Key(key)))

    def press_keys(self, keys: Sequence[Key | str]) -> None:
        """Several keys typed at once (a console line): each is handled in order, their screen drawn after the last
        (every state they reach is still drawn). Raises ValueError, pressing none, if one is not a key."""
        typed = _Typed(tuple(key if type(key) is Key else Key(key) for key in keys))
        if typed.keys:
            self._events.put(typed)

    def add_listener(self, callback: Callable[[Screen], None]) -> None:
        self._listeners.append(callback)
        callback(self.screen)

    # --- the loop -------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        """One event at a time; when keys were typed ahead (a console line, a keypad buffer) each is handled, and
        the screen they change is drawn once, after the last (``TerminalCore.handle``: ``keys_waiting``)."""
        event: object = Started()
        events, handle = self._events, self.core.handle
        while event is not _STOP:
            if isinstance(event, _Typed):
                last = len(event.keys) - 1
                for i, key in enumerate(event.keys):
                    self._run(handle(KeyPressed(key), time.monotonic(), keys_waiting=i < last or not events.empty()))
            else:
                self._run(handle(cast(Event, event), time.monotonic(), keys_waiting=not events.empty()))
            timeout = None if self._deadline is None else max(0.0, self._deadline - time.monotonic())
            try:
                event = events.get(timeout=timeout)
            except queue.Empty:
                event = Tick()

    def _feed(self, event: Event) -> None:
        self._events.put(event)

    def _run(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, Render):
                for callback in list(self._listeners):
                    try:
                        callback(command.screen)
                    except Exception:  # a broken display must not stop the till
                        log.exception("display listener failed")
            elif isinstance(command, ArmDeadline):
                self._deadline = command.at
            elif isinstance(command, StartWork):
                self._start_work(command)
            elif isinstance(command, CancelWork):
                self._cancel.cancel()
                if command.abort_pinpad:
                    self.services.pinpad.abort()
            elif isinstance(command, Audit) and self.services.audit is not None:
                try:
                    self.services.audit.record(command.user_id, command.action, command.detail)
                except PosError as exc:  # the journal cannot be written (disk full): the till carries on
                    log.error("audit row not written (%s %s): %s", command.action, command.detail, exc)

    def _start_work(self, command: StartWork) -> None:
        if command.kind != "health":  # every new work gets its own cancel token; the health check never cancels
            self._cancel = CancelToken()
        ticket = command.ticket
        ctx = WorkContext(self.services, lambda item: self._feed(Progress(ticket, item)), self._cancel,
                          self._money, self._device_check)

        def run() -> None:
            try:
                self._feed(WorkDone(ticket, command.run(ctx)))
            except BaseException as exc:  # noqa: BLE001 - reported to the app thread, which decides
                self._feed(WorkDone(ticket, None, exc))

        self._workers.run(f"terminal-{command.kind}", run)

    # --- background timers ------------------------------------------------------------------------------------

    def _health_timer(self, interval_s: float) -> None:
        while not self._stopping.wait(interval_s):
            self._feed(HealthDue())

    def _follow_up_loop(self) -> None:
        """Every ``follow_up_s`` finish pending top-ups and reversals while no payment runs."""
        while not self._stopping.wait(self.services.settings.carrier.follow_up_s):
            try:
                self._follow_up_once()
            except Exception:  # a failed round must not end the follow-ups; the next round tries again
                log.exception("follow-up failed")

    def _follow_up_once(self) -> None:
        journal = self.services.journal
        if self.core.state in (State.BOOT, State.OUT_OF_SERVICE):
            return
        if getattr(journal, "write_error", None):  # disk full or faulty: nothing can be recorded until it works
            if not journal_writable(self.services):
                return
            self._feed(Notice((Msg("journal.resumed"),)))
        given_back = bool(given_back_rows(self.services))  # given back "anyway": the top-up may be on the SIM
        if not (journal.open_transactions() or journal.saf_items() or given_back):
            return
        if not self._money.acquire(blocking=False):  # a payment (or settlement, void) is running
            return
        try:
            report = recover_all(self.services, given_back=given_back)
        finally:
            self._money.release()
        if report.lines:
            self._feed(Notice(report.lines))


class Workers:
    """Worker threads that wait for their next work once one is done: a work is handed to an idle worker, and only
    when none is idle does a new thread start (a thread per work cost a thread start and end every time). Works
    never wait for each other: each runs at once. At most ``keep`` idle workers stay; each sleeps in a blocking
    ``get`` (no polling) and carries the name of the work it runs (``terminal-payment``), as the log shows it."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._idle: list[queue.SimpleQueue[tuple[str, Callable[[], None]]]] = []
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._busy = 0  # works running now
        self.started = 0  # threads started so far (tests)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no work runs (at most ``timeout_s``); True if none does."""
        with self._done:
            return self._done.wait_for(lambda: self._busy == 0, timeout_s)

    def run(self, name: str, job: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
            if inbox is None:
                self.started += 1
            self._busy += 1
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name=name, daemon=True).start()
        inbox.put((name, job))

    def _serve(self, inbox: queue.SimpleQueue[tuple[str, Callable[[], None]]]) -> None:
        me = threading.current_thread()
        while True:
            me.name, job = inbox.get()
            try:
                job()
            except BaseException:  # noqa: BLE001 - a work reports its own failure; never let it end the worker
                log.exception("work %s failed", me.name)
            with self._lock:
                self._busy -= 1
                self._done.notify_all()
                if len(self._idle) >= self.keep:
                    return
                self._idle.append(inbox)
