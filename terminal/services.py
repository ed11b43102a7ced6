"""The set of wired ports the terminal app works with, plus the boot self-test over them.

``terminal.wiring`` fills it with real drivers; tests may fill it with fakes.

>>> Services.__name__
'Services'
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from emv.errors import PosError
from flows.ports import CardReaderPort, CarrierPort, HostPort, PinPadPort, PrinterPort, ScannerPort, WalletPort
from flows.topup import TopupService
from flows.wallet_payment import WalletTopupService
from terminal.config import Settings
from terminal.journal import Journal
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
    journal: Journal
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

    def self_test(self) -> Iterable[str]:
        """One line per fault a cashier should know about (nothing when all is well)."""
        checks: list[tuple[str, Callable[[], object]]] = [
            ("Printer / 打印机", self._printer_ready),
            ("Host / 银行主机", self._host_echo),
        ]
        for name, check in checks:
            try:
                problem = check()
            except PosError as exc:
                problem = str(exc)
            if problem:
                yield f"{name}: {problem}"

    def _printer_ready(self) -> str | None:
        status = self.printer.status()
        if not status.online:
            return "offline / 离线"
        if status.paper_out:
            return "paper out / 缺纸"
        if status.cover_open:
            return "cover open / 纸仓盖未关"
        return None

    def _host_echo(self) -> str | None:
        return None if self.host.echo() else "not answering / 无应答"

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except PosError:
                pass
        self.journal.close()
