"""The set of wired ports the terminal app works with (the self-test over them is ``terminal.diagnostics``).

``terminal.wiring`` fills it with real drivers; tests may fill it with fakes.

>>> Services.__name__
'Services'
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flows.ports import CardReaderPort, CarrierPort, HostPort, PinPadPort, PrinterPort, ScannerPort, WalletPort
from flows.saf import PanSealer
from flows.topup import TopupService
from flows.wallet_payment import WalletTopupService
from pos_errors import PosError
from terminal.audit import AuditLog
from terminal.config import Settings
from terminal.journal import Journal
from terminal.journal_port import TerminalJournal
from terminal.settings_store import SettingsStore
from terminal.users import UserStore

__all__ = ["Services", "SystemClock"]


class SystemClock:
    """The real clock (flows never read time themselves)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


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
    topup: TopupService
    closers: list[Callable[[], None]] = field(default_factory=list)
    scanner: ScannerPort | None = None
    wallet: WalletPort | None = None
    wallet_topup: WalletTopupService | None = None
    audit: AuditLog | None = None  # opened on the journal when not wired
    saf_sealer: PanSealer | None = None  # seals/opens PANs of queued advices (flows.saf); None: no offline SAF
    settings_store: SettingsStore | None = None  # a supervisor's stored settings; opened on the journal when not wired

    def __post_init__(self) -> None:
        if isinstance(self.journal, Journal):  # the audit log and stored settings live in the same database
            self.audit = self.audit or AuditLog(self.journal)
            self.settings_store = self.settings_store or SettingsStore(self.journal)

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except PosError:
                pass
        self.journal.close()
