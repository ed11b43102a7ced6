"""The set of wired ports the terminal app works with (the self-test over them is ``terminal.diagnostics``).

``terminal.wiring`` fills it with real drivers; tests may fill it with fakes. The payment services (the card
top-up with its EMV kernels, the wallet top-up) are built by ``OnFirstUse`` the first time a sale, a void or
recovery of an open row asks for them, not at boot (issue 17 item 3: the boot path holds what login needs).

>>> once = OnFirstUse(lambda: object())
>>> once.built, once.get() is once.get(), once.built
(False, True, True)
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from flows.ports import CardReaderPort, CarrierPort, HostPort, PinPadPort, PrinterPort, ScannerPort, WalletPort
from pos_errors import PosError
from terminal.audit import AuditLog
from terminal.config import Settings
from terminal.journal import Journal
from terminal.journal_port import TerminalJournal
from terminal.settings_store import SettingsStore
from terminal.users import UserStore

if TYPE_CHECKING:  # annotations only: the payment flows are imported when first used (OnFirstUse)
    from flows.saf import PanSealer
    from flows.topup import TopupService
    from flows.wallet_payment import WalletTopupService

__all__ = ["Services", "SystemClock", "OnFirstUse"]

T = TypeVar("T")


class SystemClock:
    """The real clock (flows never read time themselves)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class OnFirstUse(Generic[T]):
    """A value built by ``build()`` the first time ``get()`` is called, on whichever thread, exactly once. A build
    that raises leaves nothing built: the next ``get()`` tries again."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._built = False
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._built

    def get(self) -> T:
        with self._lock:
            if not self._built:
                self._value = self._build()
                self._built = True
            return self._value  # type: ignore[return-value]  # T itself may include None


@dataclass
class Services:
    settings: Settings
    journal: TerminalJournal
    users: UserStore
    carrier: CarrierPort
    host: HostPort
    reader: CardReaderPort
    pinpad: PinPadPort
    printer: PrinterPort
    card_topup: OnFirstUse[TopupService]  # the card top-up (EMV kernels, card flows): built for the first card sale
    closers: list[Callable[[], None]] = field(default_factory=list)
    scanner: ScannerPort | None = None
    wallet: WalletPort | None = None
    wallet_payments: OnFirstUse[WalletTopupService] | None = None  # None: no wallet platform set up
    audit: AuditLog | None = None  # opened on the journal when not wired
    saf_sealer: PanSealer | None = None  # seals/opens PANs of queued advices (flows.saf); None: no offline SAF
    settings_store: SettingsStore | None = None  # a supervisor's stored settings; opened on the journal when not wired
    tap_offered: bool = False  # the reader's contactless side pays (the channel menu offers "tap") — known unbuilt

    def __post_init__(self) -> None:
        if isinstance(self.journal, Journal):  # the audit log and stored settings live in the same database
            self.audit = self.audit or AuditLog(self.journal)
            self.settings_store = self.settings_store or SettingsStore(self.journal)

    @property
    def topup(self) -> TopupService:
        """The card top-up, built on first use."""
        return self.card_topup.get()

    @property
    def wallet_topup(self) -> WalletTopupService | None:
        """The wallet top-up, built on first use; None when no wallet platform is set up."""
        return self.wallet_payments.get() if self.wallet_payments is not None else None

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except PosError:
                pass
        self.journal.close()
