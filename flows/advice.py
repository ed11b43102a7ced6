""""Help me choose": the cheapest plan, or combination of plans and add-ons, that covers a customer's needs.

The customer says what they expect to use per month (data, SMS, voice) and how many months they want covered.
A data package adds its allowance (bonus data included) to the SIM and keeps it in service for its period; an
add-on (SMS or voice only) adds its allowance but is no plan of its own. So a basket covers the need when, summed
over its items, the data packages' periods reach ``months`` and each allowance is at least the monthly need
times the months. Balance-only recharges (no allowance) never help and are left out.

The search is dynamic programming over the missing quantities (in units of their greatest common divisor), so
even three years of heavy use is a table of some ten thousand cells.

>>> from flows.ports import Plan
>>> plans = [Plan("A", "1 GB", "1GB", 1, 1000, 1024), Plan("B", "5 GB", "5GB", 1, 2500, 5120)]
>>> a = advise(plans, Need(data_mb=2048, months=1))
>>> [(p.plan_id, n) for p, n in a.items], a.total_minor  # two 1 GB packages are cheaper than one of 5 GB
([('A', 2)], 2000)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import gcd

from flows.ports import Plan

__all__ = ["Need", "Advice", "advise", "MAX_MONTHS"]

MAX_MONTHS = 36


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


def _cheapest(items: list[tuple[Plan, int, int]], need_a: int, need_b: int) -> tuple[int, dict[Plan, int]] | None:
    """Minimum-cost cover of two quantities by any number of items (plan, gives_a, gives_b): dynamic
    programming over (a, b) in units of the items' greatest common divisor, ties to fewer packages. Returns
    (cost, plan -> count), or None when the items cannot cover the need."""
    # Sums of the items are multiples of these units, so covering ceil(need / unit) units is the same thing.
    unit_a = gcd(*(a for _, a, _ in items)) or need_a
    unit_b = gcd(*(b for _, _, b in items)) or need_b
    top_a, top_b = -(-need_a // unit_a) if need_a else 0, -(-need_b // unit_b) if need_b else 0
    steps = [(plan, a // unit_a if unit_a else 0, b // unit_b if unit_b else 0) for plan, a, b in items]
    # cell: (cost, packages, item index, previous a, previous b); None = cannot be covered
    table: list[list[tuple[int, int, int, int, int] | None]] = [[None] * (top_b + 1) for _ in range(top_a + 1)]
    table[0][0] = (0, 0, -1, 0, 0)
    for i in range(top_a + 1):
        for j in range(top_b + 1):
            if not i and not j:
                continue
            best = None
            for index, (plan, a, b) in enumerate(steps):
                if not ((a and i) or (b and j)):
                    continue  # gives nothing this cell still lacks
                pi, pj = max(0, i - a), max(0, j - b)
                prev = table[pi][pj]
                if prev is not None:
                    found = (prev[0] + plan.payable_minor, prev[1] + 1, index, pi, pj)
                    best = found if best is None or found[:2] < best[:2] else best
            table[i][j] = best
    if table[top_a][top_b] is None:
        return None
    counts: dict[Plan, int] = {}
    i, j = top_a, top_b
    while i or j:
        cell = table[i][j]
        assert cell is not None  # noqa: S101 - every step back lands on a covered cell by construction
        plan = steps[cell[2]][0]
        counts[plan] = counts.get(plan, 0) + 1
        i, j = cell[3], cell[4]
    return table[top_a][top_b][0], counts  # type: ignore[index]


def advise(plans: Sequence[Plan], need: Need) -> Advice | None:
    """The cheapest basket covering ``need``; ties go to fewer packages. None when nothing can cover it.

    Two exact searches: data packages for months and data, then add-ons for what SMS and minutes are still
    missing. Exact when SMS and minutes come only from add-ons (as in the simulator's catalogue); a data
    package that bundles SMS or minutes counts towards them, but the search does not seek such bundles out.
    Raises ValueError for a negative need or months outside 1..MAX_MONTHS.
    """
    if min(need.data_mb, need.sms, need.voice_min) < 0 or not 1 <= need.months <= MAX_MONTHS:
        raise ValueError(f"need must be non-negative with 1..{MAX_MONTHS} months: {need}")
    usable = [p for p in plans if p.payable_minor > 0 and any(_gives(p))]
    months, data, sms, voice = need.totals()
    base = _cheapest([(p, _gives(p)[0], _gives(p)[1]) for p in usable if p.data_mb], months, data)
    if base is None:
        return None
    got_sms = sum(n * p.sms for p, n in base[1].items())
    got_voice = sum(n * p.voice_min for p, n in base[1].items())
    extra = _cheapest([(p, p.sms, p.voice_min) for p in usable if not p.data_mb], max(0, sms - got_sms),
                      max(0, voice - got_voice))
    if extra is None:
        return None
    counts = {**base[1], **extra[1]}
    basket = tuple((p, counts[p]) for p in usable if p in counts)
    cost = base[0] + extra[0]
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
