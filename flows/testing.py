"""A journal in memory for flow-level tests: ``FakeJournal`` implements ``flows.ports.JournalPort`` and enforces
the same state rules as the SQLite journal (``flows.txn_state.check``), so a flow that would be refused in the
terminal is refused in a test too. It keeps every state written, in order, for assertions.

>>> j = FakeJournal()
>>> txn = j.begin(order_id="O1", iccid="8986", msisdn="1064", plan_id="P", plan_name="p", amount_minor=100,
...               fee_minor=0, channel="card", cashier_id="01")
>>> j.update(txn, "auth_intended", stan=j.next_stan())
>>> j.update(txn, "completed")
Traceback (most recent call last):
...
flows.testing.FakeJournalError: transaction 1: cannot go from auth_intended to completed
>>> [str(s) for s in j.states(txn)], j.get(txn).stan
(['created', 'auth_intended'], 1)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import fields, replace

from flows import txn_state
from flows.ports import JournalPort, TxnRecord
from flows.txn_state import TxnState
from pos_errors import PosError

__all__ = ["FakeJournal", "FakeJournalError"]

_COLUMNS = frozenset(f.name for f in fields(TxnRecord)) - {"txn_id", "state"}


class FakeJournalError(PosError):
    """What the SQLite journal's ``JournalError`` is to the terminal: an unknown row, column or state move."""


class FakeJournal:
    """``JournalPort`` in memory. ``states(txn_id)`` lists every state written to the row, repeats included."""

    def __init__(self, *, first_stan: int = 1, created_at: str = "2026-12-02T10:00:00.000") -> None:
        self._rows: dict[int, TxnRecord] = {}
        self._events: dict[int, list[tuple[TxnState, dict[str, object]]]] = {}
        self._stan = first_stan - 1
        self._invoice = 0
        self._created_at = created_at

    def next_stan(self, *, durable: bool = True) -> int:  # one memory: durable or not, the same here
        self._stan = self._stan % 999999 + 1
        return self._stan

    def next_order_id(self, terminal_id: str, now: dt.datetime) -> str:
        self._invoice += 1
        return f"{terminal_id}{now:%y%m%d%H%M%S}{self._invoice:06d}"

    def begin(self, *, order_id: str, iccid: str, msisdn: str, plan_id: str, plan_name: str,
              amount_minor: int, fee_minor: int, channel: str, cashier_id: str, plan_name_zh: str = "") -> int:
        if any(r.order_id == order_id for r in self._rows.values()):
            raise FakeJournalError(f"order {order_id} exists")
        txn_id = len(self._rows) + 1
        self._rows[txn_id] = TxnRecord(txn_id, TxnState.CREATED, order_id, iccid, msisdn, plan_id, plan_name,
                                       amount_minor, fee_minor, channel, cashier_id, self._created_at,
                                       plan_name_zh=plan_name_zh or None)
        self._events[txn_id] = [(TxnState.CREATED, {"order_id": order_id})]
        return txn_id

    def update(self, txn_id: int, state: str, **values: object) -> None:
        unknown = set(values) - _COLUMNS
        if unknown:
            raise FakeJournalError(f"journal has no column(s) {sorted(unknown)}")
        record = self.get(txn_id)
        try:
            new = txn_state.check(record.state, state)
        except txn_state.IllegalTransition as exc:
            raise FakeJournalError(f"transaction {txn_id}: {exc}") from exc
        self._rows[txn_id] = replace(record, state=new, **values)  # type: ignore[arg-type]
        self._events[txn_id].append((new, dict(values)))

    def get(self, txn_id: int) -> TxnRecord:
        try:
            return self._rows[txn_id]
        except KeyError:
            raise FakeJournalError(f"no transaction {txn_id}") from None

    def open_transactions(self) -> list[TxnRecord]:
        return [r for _, r in sorted(self._rows.items()) if r.state not in txn_state.FINAL]

    # --- for assertions ------------------------------------------------------------------------------------

    def states(self, txn_id: int) -> list[TxnState]:
        """Every state written to the row, in order, from ``created``."""
        return [state for state, _ in self._events[txn_id]]

    def events(self, txn_id: int) -> list[tuple[TxnState, dict[str, object]]]:
        """Every write to the row: (state, the columns it set)."""
        return list(self._events[txn_id])


def _conforms(journal: FakeJournal) -> JournalPort:  # mypy proves the protocol is implemented
    return journal
