"""The terminal's sans-I/O core: events in, commands out (as h11's ``Connection`` and our ``LinkCore``).

The core holds the ``transitions`` machine (``terminal.machine``) and the ``Session``. It never starts a thread,
never reads a clock and never touches a device: the shell (``terminal.app``) feeds it events with the current
monotonic time and carries out the commands it returns, in order.

Events (facts): ``KeyPressed``, ``WorkDone``, ``Progress``, ``Tick``, ``Notice``, ``HealthDue``.
Commands: ``Render`` (show this screen), ``StartWork`` (run this on a worker, answer with ``WorkDone``),
``CancelWork`` (the running work's cancel token, and the PIN pad), ``Audit`` (write this audit row),
``ArmDeadline`` (feed me a ``Tick`` at this time, or never).

What the core does reach directly are the terminal's own local stores, through their ports and in a few
milliseconds: the journal's named queries, the user store, the stored settings, the firmware slot file. Everything
that waits on a device or the network (carrier, host, wallet, printer, PIN pad, scanner) is a ``StartWork``.

Keys go to the handler registered for the current state (``terminal.handlers.HANDLERS``); finished work goes to
the callback the handler named when it asked for the work. A result that comes back after the cashier moved on
(its generation is old) is dropped.

>>> Render.__name__, StartWork.__name__
('Render', 'StartWork')
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from flows.for_people import explain_key
from flows.messages import Msg, t
from flows.pricing import WALLET_CHANNELS, offered_channels
from pos_errors import PosError
from terminal.machine import IDLE_LOGOUT, MOVES, State, build_machine
from terminal.roles import Action, allowed, roles_for
from terminal.screens import Key, Screen
from terminal.views import Session
from terminal.views_office import render

if TYPE_CHECKING:
    from terminal.config import Settings
    from terminal.services import Services
    from terminal.work import WorkContext

__all__ = ["TerminalCore", "Handler", "HandlerTable", "Started", "KeyPressed", "WorkDone", "Progress", "Tick",
           "Notice", "HealthDue", "Event", "Render", "StartWork", "CancelWork", "Audit", "ArmDeadline", "Command",
           "DoneCallback"]

log = logging.getLogger("terminal.core")
_IDLE_LOGOUT = frozenset(IDLE_LOGOUT)  # asked on every key: a set, not the table's list

DoneCallback = Callable[["TerminalCore", Any, "BaseException | None"], None]
ProgressCallback = Callable[["TerminalCore", Any], None]


# --- events -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyPressed:
    key: Key


@dataclass(frozen=True)
class WorkDone:
    ticket: int
    result: Any
    error: BaseException | None = None


@dataclass(frozen=True)
class Progress:
    ticket: int
    item: Any  # a flows.card_payment.Step, a WalletProgress, or a message (Msg / str) for the cashier


@dataclass(frozen=True)
class Started:
    """The shell is running: boot."""


@dataclass(frozen=True)
class Tick:
    """The deadline the core armed may have passed (the shell sends it with ``now``)."""


@dataclass(frozen=True)
class Notice:
    """Lines from the background follow-up for the cashier (shown on login and home)."""

    lines: tuple[Any, ...]


@dataclass(frozen=True)
class HealthDue:
    """The background timer: time for a device check (if the terminal is idle)."""


Event = Started | KeyPressed | WorkDone | Progress | Tick | Notice | HealthDue


# --- commands -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Render:
    screen: Screen


@dataclass(frozen=True)
class StartWork:
    """Run ``run(context)`` on a worker; post ``WorkDone(ticket, …)`` (and ``Progress(ticket, …)``) back."""

    kind: str
    ticket: int
    run: Callable[[WorkContext], Any] = field(compare=False)


@dataclass(frozen=True)
class CancelWork:
    abort_pinpad: bool = False


@dataclass(frozen=True)
class Audit:
    user_id: str
    action: str
    detail: str = ""


@dataclass(frozen=True)
class ArmDeadline:
    at: float | None  # monotonic seconds, or None: no deadline


Command = Render | StartWork | CancelWork | Audit | ArmDeadline


class Handler(Protocol):
    """One screen (or group of screens): what its keys do."""

    def on_key(self, core: TerminalCore, key: Key) -> None: ...


@dataclass(frozen=True)
class HandlerTable:
    """The handler of every screen, keyed by ``State``, and the three rules that belong to no one screen."""

    screens: Mapping[State, Handler]
    on_start: Callable[[TerminalCore], None]  # the shell is running: boot
    on_timeout: Callable[[TerminalCore], None]  # the armed deadline passed
    on_health_due: Callable[[TerminalCore], None]  # the background device check is due
    on_journal_write: Callable[[TerminalCore], None] | None = None  # the journal's writes began or ceased to fail


@dataclass
class _Work:
    generation: int | None  # None: background work no later step abandons (the health check)
    on_done: DoneCallback
    on_progress: ProgressCallback | None


class TerminalCore:
    """Construct with the wired ``Services`` and the handler table; feed ``handle(event, now)``."""

    state: State  # set by the transitions machine, as are the two below
    trigger: Callable[[str], bool]
    may_trigger: Callable[[str], bool]

    def __init__(self, services: Services, handlers: HandlerTable, *,
                 wall_clock: Callable[[], dt.datetime] = dt.datetime.now) -> None:
        self.services = services
        self.session = Session()
        self.session.channels = offered_channels(_tap_offered(services), _wallet_channels(services))
        self.handlers = handlers
        self.wall_clock = wall_clock  # injected: the core never reads a clock of its own
        self._out: list[Command] = []
        self._works: dict[int, _Work] = {}
        self._tickets = 0
        self.generation = 0
        self._now = 0.0
        self._deadline: float | None = None
        self._journal_error: str | None = None  # the journal's write failure as last shown (``_watch_journal``)
        self._hold = False  # keys wait in the shell: a redraw of the same screen waits for the last one (``handle``)
        self._stale = False  # a redraw was held back
        self.session.fees = services.settings.fees  # the channel list shows every channel's fee and limits
        self.machine = build_machine(self)
        self.machine.after_state_change = [self.on_state_change]  # a callable: no name resolved on every fire
        self._events = self.machine.events  # fired directly: the model's ``trigger(name)`` adds a lookup and a partial
        self.may_trigger = self._may_trigger  # instead of the one transitions binds (the table has no conditions)
        self.screen: Screen = render(State.BOOT, self.session)

    @property
    def now(self) -> float:
        """The monotonic time of the event being handled (from the shell)."""
        return self._now

    @property
    def settings(self) -> Settings:
        return self.services.settings

    # --- the one door in ------------------------------------------------------------------------------------

    def handle(self, event: Event, now: float, *, keys_waiting: bool = False) -> list[Command]:
        """Feed one event at monotonic time ``now``; returns the commands to carry out, in order.

        ``keys_waiting``: the shell holds further events already (keys typed ahead, a console line): a key's
        redraw of the same screen waits until the last of them, as a keypad buffer is drained before the display
        is drawn. Every state reached is still drawn the moment it is entered (``on_state_change``)."""
        self._now = now
        self._hold = keys_waiting and isinstance(event, KeyPressed)
        try:
            self._dispatch(event)
            self._watch_journal()
        except PosError as exc:  # a fault in one step shows on the screen; the terminal carries on
            log.warning("step failed: %s", exc)  # the detail for the technician; the cashier reads its kind
            self.session.error = self.say(explain_key(exc))
            self._hold = False
            self.refresh()
        except Exception:  # a bug must not freeze the till: log it whole, tell the cashier, keep going
            log.exception("internal error in state %s", self.state)
            self.session.error = self.say("app.internal_error")
            self._hold = False
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the view itself is broken; the shell keeps the old screen
                log.exception("render failed")
        if self._stale and not self._hold:
            self._draw()
        self._hold = False  # a refresh between events (none today) draws at once
        out, self._out = self._out, []
        return out

    def _watch_journal(self) -> None:
        """A journal write that failed in this step (or works again) shows on the home screen at once, not at the
        next background check (issue 15 item 3)."""
        error = getattr(self.services.journal, "write_error", None)
        if error != self._journal_error:
            self._journal_error = error
            if self.handlers.on_journal_write is not None:
                self.handlers.on_journal_write(self)

    def get_timer(self) -> float | None:
        return self._deadline

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, KeyPressed):
            handler = self.handlers.screens.get(self.state)
            if handler is not None:
                handler.on_key(self, event.key)
            if self.state in _IDLE_LOGOUT:  # any key is activity: the idle logout counts from the last key
                self._arm(self.settings.timeouts.idle_s)
        elif isinstance(event, WorkDone | Progress):
            work = self._works.get(event.ticket)
            if work is None or (work.generation is not None and work.generation != self.generation):
                self._works.pop(event.ticket, None)
                return
            if isinstance(event, Progress):
                if work.on_progress is not None:
                    work.on_progress(self, event.item)
            else:
                del self._works[event.ticket]
                work.on_done(self, event.result, event.error)
        elif isinstance(event, Tick):
            if self._deadline is not None and self._now >= self._deadline:
                self._arm(None)
                self.handlers.on_timeout(self)
        elif isinstance(event, Notice):  # shown on the login and home screens, now or when next there
            self.session.notice = tuple(self.say("followup.line", line=line) for line in event.lines)
            self.refresh()
        elif isinstance(event, HealthDue):
            self.handlers.on_health_due(self)
        elif isinstance(event, Started):
            self.handlers.on_start(self)

    # --- what handlers use ----------------------------------------------------------------------------------

    def _may_trigger(self, trigger: str) -> bool:
        """Whether the table has a transition ``trigger`` from the current state."""
        return (trigger, self.state) in MOVES

    def fire(self, trigger: str) -> None:
        """Every transition goes through here: one typed door into the machine's table. Raises transitions'
        ``MachineError`` for a move the table lacks from this state, AttributeError for an unknown trigger."""
        event = self._events.get(trigger)
        if event is None:
            raise AttributeError(f"Do not know event named {trigger!r}.")
        event.trigger(self)

    def on_state_change(self) -> None:
        log.debug("state %s", self.state)  # every screen change: the journal and audit log keep what matters
        if self.state is not State.HOME:  # the "log out?" question never outlives the home screen
            self.session.logout_asked = False
        timeouts, state = self.settings.timeouts, self.state
        seconds = (timeouts.idle_s if state in _IDLE_LOGOUT else timeouts.lookup_s if state is State.SIM_LOOKUP
                   else timeouts.result_s if state in (State.RESULT, State.BALANCE) else None)
        self._arm(seconds)
        self._draw()  # every state reached is drawn, typed-ahead keys or not (the console prints each one)

    def _arm(self, seconds: float | None) -> None:
        self._deadline = self._now + seconds if seconds else None
        self._out.append(ArmDeadline(self._deadline))

    def refresh(self) -> None:
        """Render the view; sent to the display only when it differs from what the display already shows. A step
        the cashier or customer must see changes the view (the insert screen's spinner stops once the reader waits
        for the card: the crash harness swipes or taps then). While typed-ahead keys wait (``handle``), drawn once
        after the last of them."""
        if self._hold:
            self._stale = True
        else:
            self._draw()

    def _draw(self) -> None:
        self._stale = False
        screen = render(self.state, self.session)
        if screen != self.screen:
            self.screen = screen
            self._out.append(Render(screen))

    def start(self, kind: str, run: Callable[[WorkContext], Any], on_done: DoneCallback,
              on_progress: ProgressCallback | None = None, *, background: bool = False) -> None:
        """Ask the shell to run ``run``; a new (non-background) work abandons the previous one's answer."""
        if not background:
            self.generation += 1
        self._tickets += 1
        self._works[self._tickets] = _Work(None if background else self.generation, on_done, on_progress)
        self._out.append(StartWork(kind, self._tickets, run))

    def abandon_work(self) -> None:
        self.generation += 1

    def cancel_work(self, *, abort_pinpad: bool = False) -> None:
        self._out.append(CancelWork(abort_pinpad))

    def work_running(self, kind_done: DoneCallback) -> bool:
        """True while a background work with this callback has not answered (the health check)."""
        return any(w.generation is None and w.on_done == kind_done for w in self._works.values())

    def say(self, key: str, **args: Any) -> str:
        return t(key, self.session.lang, **args)

    def audit(self, action: str, detail: str = "", user_id: str | None = None) -> None:
        who = user_id or (self.session.user.user_id if self.session.user else "-")
        self._out.append(Audit(who, action, detail))

    def role(self) -> str:
        return self.session.user.role if self.session.user else ""

    def uid(self) -> str:
        return self.session.user.user_id if self.session.user else ""

    def go_home(self) -> None:
        self.session.error = None
        self.fire("home")

    def permit_now(self, action: Action) -> bool:
        """``permit`` at a money-moving commit (void, refund, settlement, firmware), with the role as the user store
        holds it now: a user whose role a supervisor changed since the screen opened may no longer commit."""
        user = self.session.user
        row = self.services.users.get(user.user_id) if user is not None else None
        if user is not None and (row is None or row.role != user.role):
            self.session.user = dataclasses.replace(user, role=row.role if row else "")
        return self.permit(action)

    def permit(self, action: Action) -> bool:
        """True when the logged-in user may; otherwise says who may, audits the refusal, returns False."""
        if allowed(self.role(), action):
            return True
        who = "_".join(r.value for r in roles_for(action))
        self.session.error = self.say("home.refused", role=Msg(f"role.{self.role()}"), allowed=Msg(f"role.{who}"))
        self.audit("refused", action.value)
        self.refresh()
        return False


def _tap_offered(services: Any) -> bool:
    """Whether the reader's contactless side pays: ``Services.tap_offered``, known without building the card
    top-up (issue 17 item 3); services without it (tests) name their top-up's ``tap``."""
    offered = getattr(services, "tap_offered", None)
    return bool(offered) if offered is not None else getattr(getattr(services, "topup", None), "tap", None) is not None


def _wallet_channels(services: Any) -> tuple[str, ...] | frozenset[str]:
    """The wallet channels ``[wallet] channels`` offers (all of them for services without settings: tests)."""
    wallet = getattr(getattr(services, "settings", None), "wallet", None)
    return getattr(wallet, "channels", WALLET_CHANNELS)
