import pytest

from flows.messages import say
from flows.money import format_money
from flows.ports import Plan, mask_pan
from flows.pricing import FeeSchedule, quote
from flows.receipt import ReceiptFacts, build_receipt, receipt_from_json, receipt_to_json
from flows.sim_number import check_sim_number, luhn_ok


@pytest.mark.parametrize("raw, kind, error, warning", [
    ("89860112345678901237", "iccid", None, None),
    ("8986011234567890123", "iccid", None, "check digit"),     # 19 digits, Luhn fails
    ("89860112345678901238", "iccid", None, "check digit"),
    ("1064912345678", "msisdn", None, None),
    ("13812345678", "msisdn", None, None),
    ("", "", "Enter the SIM", None),
    ("8986a", "", "Digits only", None),
    ("12345", "", "5 digits", None),
    ("99860112345678901237", "", "starts with 89", None),
    ("2064912345678", "", "starts with 1", None),
])
def test_sim_numbers(raw, kind, error, warning):
    c = check_sim_number(raw)
    assert c.kind == kind
    assert (c.error is None) if error is None else (error in say(c.error))
    assert (c.warning is None) if warning is None else (warning in say(c.warning))


def test_luhn_known_values():
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


@pytest.mark.parametrize("minor, text", [(0, "￥0.00"), (5, "￥0.05"), (123456, "￥1234.56"), (-100, "-￥1.00")])
def test_money(minor, text):
    assert format_money(minor) == text


def test_quote_fee_rounding_and_limit():
    plan = Plan("P", "p", "p", 1, 3333, 100, promo_price_minor=2999)
    q = quote(plan, "card", FeeSchedule({"card": (10, 25)}), 10_000)
    assert (q.amount_minor, q.fee_minor, q.total_minor, q.error) == (2999, 10 + 7, 3016, None)
    over = quote(plan, "card", FeeSchedule(), 2000)
    assert over.error is not None and "￥20.00" in say(over.error)


def test_pan_mask():
    assert mask_pan("6212345678901234567") == "621234*********4567"


def test_receipt_round_trip_and_masking():
    lines = build_receipt(ReceiptFacts(
        merchant_name="Shop", terminal_id="T1", merchant_id="M1", when="2026-11-25 10:00", cashier_id="01",
        iccid="89860112345678901237", msisdn="1064912345678", plan_name="10 GB", amount_minor=3000,
        fee_minor=18, status="applied", order_id="O1", masked_pan="621234*********4567",
        emv={"aid": "A000000333010101", "ac": "1A2B3C4D5E6F7081"}, auth_code="123456", stan=12,
        balance_after_minor=4250))
    text = "\n".join(line.text for line in lines)
    for wanted in ("TOTAL ￥30.18", "621234*********4567", "A000000333010101", "000012", "￥42.50",
                   "TOP-UP APPLIED", "8986 0112 3456 7890 1237", "TC"):
        assert wanted in text
    assert receipt_from_json(receipt_to_json(lines)) == lines


def test_receipt_pairs_fill_the_roll_width_in_printed_columns():
    import unicodedata

    from flows.receipt import WIDTH, _pair

    for left, right in (("Amount / 金额", "￥30.00"), ("TID", "T1"), ("Fee / 手续费", "￥0.18")):
        text = _pair(left, right).text
        assert sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text) == WIDTH
