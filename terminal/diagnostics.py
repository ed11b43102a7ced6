"""The self-test: every device and back end the terminal depends on, one line each, OK or a fault the cashier
can act on ("Printer: paper out → load a new paper roll").

Run at boot, on demand from the Diagnostics screen, and in the background while the terminal is idle so the
home screen warns before a customer is kept waiting. Checks only ask (status, echo, key state); they never
print, charge or change anything.

>>> Check("dev.printer", True).text("en")
'Printer: OK'
>>> Check("dev.printer", False, Msg("fault.paper_out"), Msg("fix.paper")).text("en")
'Printer: paper out → load a new paper roll'
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from emv.crypto.dukpt import AES_COUNTER, TDES_COUNTER
from flows.messages import Msg, t
from pos_errors import LinkSecurityError, PosError, UnmacedKeyError
from terminal.services import Services
from terminal.storage_fault import storage_fault, storage_fix

__all__ = ["Check", "run_checks", "faults", "KSN_LOW", "DISK_LOW_MB", "DISK_STOP_MB", "free_mb", "write_fault"]

log = logging.getLogger("terminal.diagnostics")

KSN_LOW = 1000  # warn while this many PIN encryptions are left on the DUKPT key
DISK_LOW_MB = 50  # the self-test and the home screen warn below this
DISK_STOP_MB = 5  # no new sale below this (terminal.work.refuse_new_sale): a sale must be recordable to the end
_DEVICES = frozenset({"dev.reader", "dev.pinpad", "dev.printer", "dev.scanner"})


@dataclass(frozen=True)
class Check:
    """One line of the self-test: ``name`` is a catalogue key, ``problem``/``action`` are set when not ok."""

    name: str
    ok: bool
    problem: Msg | None = None
    action: Msg | None = None
    detail: Msg | None = None

    def text(self, lang: str = "both") -> str:
        if self.ok and self.detail:
            return t("diag.ok_detail", lang, name=Msg(self.name), detail=self.detail)
        if self.ok:
            return t("diag.ok", lang, name=Msg(self.name))
        return t("diag.fault", lang, name=Msg(self.name), problem=self.problem or Msg("fault.no_answer"),
                 action=self.action or Msg("fix.technician"))


def _fault(name: str, problem: str, action: str, **args: object) -> Check:
    return Check(name, False, Msg(problem, args), Msg(action))


def _reader(sv: Services) -> Check:
    status = getattr(sv.reader, "status", None)
    if status is not None:
        status()
    return Check("dev.reader", True)


def _pinpad(sv: Services) -> Check:
    key_status = getattr(sv.pinpad, "key_status", None)
    if key_status is None:
        return Check("dev.pinpad", True)
    keys = key_status()
    if keys.ksn is None:
        return _fault("dev.pinpad", "fault.no_key", "fix.technician")
    if keys.remaining < KSN_LOW:
        return _fault("dev.pinpad", "fault.ksn_low", "fix.technician", left=keys.remaining)
    return Check("dev.pinpad", True, detail=Msg("ok.pinpad_pct", {"scheme": keys.scheme.upper(),
                                                               "pct": key_space_left(keys.scheme, keys.remaining),
                                                               "left": keys.remaining}))


def key_space_left(scheme: str, remaining: int) -> str:
    """The share of the DUKPT key's PIN encryptions still to come, as a percentage (``99.9``); ``?`` for a scheme
    this terminal does not know.

    >>> key_space_left("aes", 2448023835), key_space_left("tdes", 524288), key_space_left("x", 1)
    ('100.0', '50.0', '?')
    """
    rule = {"aes": AES_COUNTER, "tdes": TDES_COUNTER}.get(scheme.lower())
    if rule is None:
        return "?"
    total = rule.remaining(1)  # every valid counter from the first
    return f"{min(100.0, 100.0 * remaining / total):.1f}"


def _printer(sv: Services) -> Check:
    status = sv.printer.status()
    if not status.online and not (status.paper_out or status.cover_open):
        return _fault("dev.printer", "fault.offline", "fix.cable")
    if status.cover_open:
        return _fault("dev.printer", "fault.cover_open", "fix.cover")
    if status.paper_out:
        return _fault("dev.printer", "fault.paper_out", "fix.paper")
    return Check("dev.printer", True)


def _host(sv: Services) -> Check:
    """Sign on first when the link uses master/session keys and has none (at boot, after a key error): a refused
    TLS handshake or sign-on is named (``link.*``), then the echo."""
    secured = getattr(sv.host, "secured", False)
    if secured and not getattr(sv.host, "signed_on", True):
        try:
            sv.host.sign_on()  # type: ignore[attr-defined]
        except LinkSecurityError as exc:
            return _fault("dev.host", f"link.{exc.fault}", "fix.link")
    if not sv.host.echo():
        if secured:  # why? a refused handshake (expired certificate…) is named, not "no answer"
            try:
                sv.host.sign_on()  # type: ignore[attr-defined]
            except LinkSecurityError as exc:
                return _fault("dev.host", f"link.{exc.fault}", "fix.link")
            except PosError:
                pass
        if isinstance(getattr(sv.host, "echo_failure", None), UnmacedKeyError):  # answered, but by an unverified A0
            return _fault("dev.host", "fault.key_error_unverified", "fix.key_error")
        return _fault("dev.host", "fault.no_answer", "fix.network")
    return Check("dev.host", True, detail=Msg("ok.signed_on") if secured else None)


def _carrier(sv: Services) -> Check:
    return Check("dev.carrier", True) if sv.carrier.health() else _fault("dev.carrier", "fault.no_answer",
                                                                         "fix.network")


def _scanner(sv: Services) -> Check:
    opener = getattr(sv.scanner, "open", None)
    if opener is not None:
        opener()  # idempotent; DeviceGone when the port is not there
    return Check("dev.scanner", True)


def _wallet(sv: Services) -> Check:
    assert sv.wallet is not None  # noqa: S101 - only listed when configured
    sv.wallet.query("DIAG0000")  # a read: any answer (even "not_found") proves the platform is there
    return Check("dev.wallet", True)


def free_mb(journal_path: str) -> int | None:
    """Free space (MB) where the journal lives; None for an in-memory journal or when it cannot be read."""
    try:
        return None if journal_path == ":memory:" else shutil.disk_usage(Path(journal_path).parent).free // 2**20
    except OSError:
        return None


def _journal(sv: Services) -> Check:
    """Failing writes, standing damage, then SQLite's own check and the whole seal chain (first problem named)."""
    journal: Any = sv.journal
    if getattr(journal, "write_error", None):
        return write_fault(journal.write_error)
    if not hasattr(journal, "verify"):
        return Check("dev.journal", True) if journal.check_integrity() else _fault("dev.journal", "fault.damaged",
                                                                                   "fix.technician")
    damage = journal.damage or journal.verify()
    return Check("dev.journal", True) if damage is None else _fault("dev.journal", "fault.chain", "fix.technician",
                                                                    row=damage.row or damage.kind)


def write_fault(error: str) -> Check:
    """The journal's line while its writes fail (the self-test, and the home screen at once): the failure in the
    cashier's language by its SQLite code (``terminal.storage_fault``), never SQLite's English text."""
    return Check("dev.journal", False, Msg("fault.write_failed", {"error": storage_fault(error)}), storage_fix(error))


def _audit(sv: Services) -> Check:
    """The audit log's rows against their seals: the first broken or missing row (issue 19)."""
    damage = cast(Any, sv.journal).verify(("audit",))
    return Check("dev.audit", True) if damage is None else _fault("dev.audit", "fault.chain", "fix.technician",
                                                                  row=damage.row or damage.kind)


def _disk(sv: Services) -> Check:
    free = free_mb(sv.journal.path)
    if free is None:
        return Check("dev.disk", True)
    return Check("dev.disk", True, detail=Msg("ok.disk", {"mb": free})) if free >= DISK_LOW_MB else \
        _fault("dev.disk", "fault.disk_low", "fix.disk", mb=free)


def _clock(sv: Services, now: dt.datetime) -> Check:
    newest = sv.journal.last_transaction()
    last = dt.datetime.fromisoformat(newest.created_at) if newest else dt.datetime(2025, 1, 1)
    if now + dt.timedelta(minutes=5) < last:
        return _fault("dev.clock", "fault.clock", "fix.clock", now=now.isoformat(sep=" ", timespec="minutes"))
    return Check("dev.clock", True)


def run_checks(sv: Services, now: dt.datetime | None = None) -> list[Check]:
    """Every check, in a fixed order; a check that raises one of our errors is a fault, never a crash."""
    now = now or dt.datetime.now()
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("dev.reader", lambda: _reader(sv)), ("dev.pinpad", lambda: _pinpad(sv)),
        ("dev.printer", lambda: _printer(sv)), ("dev.host", lambda: _host(sv)),
        ("dev.carrier", lambda: _carrier(sv)), ("dev.journal", lambda: _journal(sv)),
        ("dev.disk", lambda: _disk(sv)), ("dev.clock", lambda: _clock(sv, now)),
    ]
    if getattr(sv, "scanner", None) is not None:
        checks.insert(3, ("dev.scanner", lambda: _scanner(sv)))
    if getattr(sv, "wallet", None) is not None:
        checks.insert(-3, ("dev.wallet", lambda: _wallet(sv)))
    if hasattr(sv.journal, "verify"):
        checks.append(("dev.audit", lambda: _audit(sv)))
    results = []
    for name, check in checks:
        try:
            results.append(check())
        except PosError:
            results.append(_fault(name, "fault.no_answer", "fix.cable" if name in _DEVICES else "fix.network"))
        except Exception:  # a damaged journal may raise anything: a fault line, never a Python error text
            log.exception("self-test %s failed", name)
            results.append(_fault(name, "fault.damaged", "fix.technician"))
    return results


def faults(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]
