""""Help me choose": the cheapest plan, or combination of plans and add-ons, that covers a customer's needs.

The customer says what they expect to use per month (data, SMS, voice) and how many months they want covered.
A data package adds its allowance (bonus data included) to the SIM and keeps it in service for its period; an
add-on (SMS or voice only) adds its allowance but is no plan of its own. So a basket covers the need when, summed
over its items, the data packages' periods reach ``months`` and each allowance is at least the monthly need
times the months. Balance-only recharges (no allowance) never help and are left out.

The search is exact: a depth-first walk over how many of each item to buy, cheapest-bound pruned; catalogues
are a dozen items, so it finishes in microseconds.

>>> from flows.ports import Plan
>>> plans = [Plan("A", "1 GB", "1GB", 1, 1000, 1024), Plan("B", "5 GB", "5GB", 1, 2500, 5120)]
>>> a = advise(plans, Need(data_mb=2048, months=1))
>>> [(p.plan_id, n) for p, n in a.items], a.total_minor
[('A', 2), ('B', 1)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flows.ports import Plan

__all__ = ["Need", "Advice", "advise", "MAX_MONTHS", "MAX_ITEMS"]

MAX_MONTHS = 36
MAX_ITEMS = 24  # no basket a cashier would sell has more packages than this


@dataclass(frozen=True)
class Need:
    """Expected use per month, and the months to cover (1 month when not said)."""

    data_mb: int = 0
    sms: int = 0
    voice_min: int = 0
    months: int = 1

    def totals(self) -> tuple[int, int, int, int]:
        return self.months, self.data_mb * self.months, self.sms * self.months, self.voice_min * self.months


@dataclass(frozen=True)
class Advice:
    """A basket: ``items`` are (plan, how many), in catalogue order; ``reason`` is a catalogue key + args."""

    items: tuple[tuple[Plan, int], ...]
    total_minor: int
    reason: str
    args: dict[str, object]

    @property
    def single(self) -> Plan | None:
        """The plan when the advice is to buy exactly one package."""
        return self.items[0][0] if len(self.items) == 1 and self.items[0][1] == 1 else None


def _gives(plan: Plan) -> tuple[int, int, int, int]:
    """(months of service, data MB, SMS, voice minutes) one package adds."""
    months = plan.period_months if plan.data_mb else 0  # add-ons ride on a data plan
    return months, plan.data_mb + plan.bonus_data_mb, plan.sms, plan.voice_min


def advise(plans: Sequence[Plan], need: Need) -> Advice | None:
    """The cheapest basket covering ``need``; ties go to fewer packages. None when nothing can cover it.

    Raises ValueError for a negative need or months outside 1..MAX_MONTHS.
    """
    if min(need.data_mb, need.sms, need.voice_min) < 0 or not 1 <= need.months <= MAX_MONTHS:
        raise ValueError(f"need must be non-negative with 1..{MAX_MONTHS} months: {need}")
    usable = [p for p in plans if p.payable_minor > 0 and any(_gives(p))]
    wanted = need.totals()
    best: list[tuple[int, int, tuple[int, ...]]] = []  # (cost, items, counts)

    def walk(index: int, counts: tuple[int, ...], have: tuple[int, ...], cost: int, items: int) -> None:
        if best and (cost, items) >= best[0][:2]:
            return
        if all(h >= w for h, w in zip(have, wanted, strict=True)):
            best[:] = [(cost, items, counts)]
            return
        if index == len(usable) or items >= MAX_ITEMS:
            return
        plan = usable[index]
        gives = _gives(plan)
        useful = [(w - h + g - 1) // g for h, w, g in zip(have, wanted, gives, strict=True) if g and w > h]
        limit = min(max(useful, default=0), MAX_ITEMS - items)
        for n in range(limit, -1, -1):  # more of the current item first finds a good bound early
            walk(index + 1, (*counts, n), tuple(h + n * g for h, g in zip(have, gives, strict=True)),
                 cost + n * plan.payable_minor, items + n)

    walk(0, (), (0, 0, 0, 0), 0, 0)
    if not best:
        return None
    cost, _items, counts = best[0]
    basket = tuple((p, n) for p, n in zip(usable, counts, strict=False) if n)
    return Advice(basket, cost, *_reason(basket, usable, need, cost))


def _reason(basket: tuple[tuple[Plan, int], ...], usable: list[Plan], need: Need,
            cost: int) -> tuple[str, dict[str, object]]:
    singles = [p.payable_minor for p in usable if _covers(p, need)]
    if len(basket) == 1 and basket[0][1] == 1:
        cheaper_than = sorted(singles)[1] if len(singles) > 1 else None
        if cheaper_than is None:
            return "advice.only_single", {"months": need.months}
        return "advice.single", {"months": need.months, "saving": cheaper_than - cost}
    if singles:
        return "advice.combo_beats", {"months": need.months, "saving": min(singles) - cost}
    return "advice.combo_needed", {"months": need.months}


def _covers(plan: Plan, need: Need) -> bool:
    return all(g >= w for g, w in zip(_gives(plan), need.totals(), strict=True))
