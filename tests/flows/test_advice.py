"""flows.advice: the cheapest basket of plans and add-ons covering a customer's monthly need."""

import itertools

import pytest

from flows.advice import Need, advise
from flows.ports import Plan

GB = 1024
ONE = Plan("D1", "1 GB", "1GB", 1, 1000, 1 * GB)
FIVE_BONUS = Plan("D5B", "5 GB + 2 GB", "5GB+2GB", 1, 2500, 5 * GB, bonus_data_mb=2 * GB, promotion="bonus")
QUARTER = Plan("Q3", "3 GB/month quarterly", "季包", 3, 5400, 9 * GB)
TEN = Plan("D10", "10 GB", "10GB", 1, 3000, 10 * GB)
SMS = Plan("S100", "100 SMS", "短信", 1, 500, 0, sms=100)
VOICE = Plan("V50", "50 min", "语音", 1, 800, 0, voice_min=50)
CREDIT = Plan("C50", "credit", "话费", 0, 5000, 0)
CATALOGUE = [ONE, FIVE_BONUS, QUARTER, TEN, SMS, VOICE, CREDIT]


def _basket(advice):
    return [(p.plan_id, n) for p, n in advice.items]


def test_a_combination_beats_every_single_plan():
    # 2 GB a month for 3 months: the quarterly plan covers it alone for ￥54, but 5 GB+2 GB bonus and two 1 GB
    # months cover 9 GB over 3 months for ￥45.
    advice = advise(CATALOGUE, Need(data_mb=2 * GB, months=3))
    assert _basket(advice) == [("D1", 2), ("D5B", 1)]
    assert advice.total_minor == 4500 and advice.single is None
    assert (advice.reason, advice.args) == ("advice.combo_beats", {"months": 3, "saving": 900})


def test_a_single_plan_when_it_is_cheapest():
    advice = advise(CATALOGUE, Need(data_mb=8 * GB))
    assert _basket(advice) == [("D10", 1)] and advice.single is TEN
    # the next single plan covering 8 GB in one month is the quarterly one: ￥54 - ￥30
    assert (advice.reason, advice.args) == ("advice.single", {"months": 1, "saving": 2400})


def test_bonus_data_counts_and_add_ons_ride_on_a_data_plan():
    assert _basket(advise(CATALOGUE, Need(data_mb=7 * GB))) == [("D5B", 1)]  # 5 GB + 2 GB bonus
    sms_only = advise(CATALOGUE, Need(sms=150))
    assert _basket(sms_only) == [("D1", 1), ("S100", 2)]  # an SMS pack is no plan of its own
    assert sms_only.reason == "advice.combo_needed"


def test_nothing_covers_and_bad_needs():
    assert advise([ONE, SMS], Need(voice_min=10)) is None
    assert advise([], Need(data_mb=1)) is None
    for bad in (Need(months=0), Need(months=37), Need(data_mb=-1)):
        with pytest.raises(ValueError):
            advise(CATALOGUE, bad)


def test_ties_go_to_fewer_packages():
    two = Plan("D2", "2 GB", "2GB", 1, 2000, 2 * GB)
    assert _basket(advise([ONE, two], Need(data_mb=2 * GB))) == [("D2", 1)]


def _brute_force(plans, need):
    best = None
    for counts in itertools.product(range(5), repeat=len(plans)):
        months = sum(n * p.period_months for n, p in zip(counts, plans, strict=True) if p.data_mb)
        data = sum(n * (p.data_mb + p.bonus_data_mb) for n, p in zip(counts, plans, strict=True))
        sms = sum(n * p.sms for n, p in zip(counts, plans, strict=True))
        voice = sum(n * p.voice_min for n, p in zip(counts, plans, strict=True))
        if months >= need.months and data >= need.data_mb * need.months and sms >= need.sms * need.months \
                and voice >= need.voice_min * need.months:
            cost = sum(n * p.payable_minor for n, p in zip(counts, plans, strict=True))
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("need", [Need(data_mb=d * GB, sms=s, voice_min=v, months=m)
                                  for d, s, v, m in itertools.product((0, 1, 3), (0, 80), (0, 40), (1, 2))])
def test_matches_a_brute_force_search(need):
    plans = [ONE, FIVE_BONUS, SMS, VOICE]
    advice = advise(plans, need)
    assert (advice.total_minor if advice else None) == _brute_force(plans, need)
