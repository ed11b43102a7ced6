"""Recovery against a real journal and fake host/carrier ports that record what they were asked."""

import pytest

from flows.messages import say
from flows.ports import TopupResult
from flows.recovery import recover
from flows.txn_state import path_to
from pos_errors import LinkError, LinkTimeout
from terminal.journal import Journal


class Host:
    def __init__(self, fail: int = 0):
        self.fail, self.reversals = fail, []

    def reverse(self, request):
        if self.fail:
            self.fail -= 1
            raise LinkTimeout("silent")
        self.reversals.append((request.stan, request.original.stan, request.repeat, request.original.pan))
        return "00"


class Carrier:
    def __init__(self, status="applied", reachable=True):
        self.status, self.reachable, self.created = status, reachable, []

    def order_status(self, order_id):
        if not self.reachable:
            raise LinkError("down")
        return TopupResult(order_id, self.status, 900 if self.status == "applied" else None)

    def create_topup(self, order_id, iccid, plan_id, amount_minor, *, funding_ref=""):
        self.created.append(order_id)
        return TopupResult(order_id, "applied", 900)


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "j.db")


def _txn(j, state, **fields):
    txn = j.begin(order_id=f"O{state}", iccid="89860112345678901237", msisdn="1064912345678", plan_id="P",
                  plan_name="p", amount_minor=5000, fee_minor=0, channel="card", cashier_id="01")
    for step in path_to(state)[:-1]:  # a legal path: the journal refuses jumps its state machine forbids
        j.update(txn, step)
    j.update(txn, state, **fields)
    return txn


@pytest.mark.parametrize("state", ["auth_intended", "approved", "auth_unknown", "card_removed_after_approval",
                                   "reversal_pending", "topup_failed"])
def test_payment_states_are_reversed_without_a_pan(journal, state):
    txn = _txn(journal, state, stan=41, auth_time="2026-11-25T10:00:00", reversal="armed")
    host = Host()
    report = recover(journal, host, Carrier(), terminal_id="T1", merchant_id="M1")
    assert journal.get(txn).state == "reversed"
    (rev_stan, orig_stan, repeat, pan), = host.reversals
    assert orig_stan == 41 and rev_stan != 41 and repeat is False and pan == ""
    assert [say(line) for line in report.lines] == [
        "Reversed 1 payment of ￥50.00 for SIM …1237 / 已冲正 ￥50.00（SIM …1237）"]


def test_unacknowledged_reversal_stays_pending_and_repeats_as_0401_with_the_same_stan(journal):
    txn = _txn(journal, "auth_unknown", stan=41, reversal="pending")
    first = recover(journal, Host(fail=5), Carrier(), terminal_id="T1", merchant_id="M1", attempts=2)
    assert first.still_open == 1 and journal.get(txn).state == "reversal_pending"
    stan = journal.get(txn).reversal_stan
    host = Host()
    recover(journal, host, Carrier(), terminal_id="T1", merchant_id="M1")
    assert host.reversals == [(stan, 41, True, "")] and journal.get(txn).state == "reversed"


def test_paid_but_not_topped_up_is_confirmed_or_resent(journal):
    applied = _txn(journal, "topup_intended", stan=1)
    recover(journal, Host(), Carrier("applied"), terminal_id="T1", merchant_id="M1")
    assert journal.get(applied).state == "completed" and journal.get(applied).balance_after_minor == 900
    lost = _txn(journal, "paid", stan=2)
    carrier = Carrier("not_found")
    recover(journal, Host(), carrier, terminal_id="T1", merchant_id="M1")
    assert carrier.created == ["Opaid"] and journal.get(lost).state == "completed"


def test_failed_topup_is_reversed_and_silent_carrier_stays_pending(journal):
    failed = _txn(journal, "topup_pending", stan=3)
    host = Host()
    recover(journal, host, Carrier("failed"), terminal_id="T1", merchant_id="M1")
    assert journal.get(failed).state == "reversed" and len(host.reversals) == 1
    pending = _txn(journal, "topup_intended", stan=4)
    report = recover(journal, Host(), Carrier(reachable=False), terminal_id="T1", merchant_id="M1")
    assert journal.get(pending).state == "topup_pending" and report.still_open == 1


def test_created_rows_are_abandoned_and_nothing_is_sent(journal):
    txn = _txn(journal, "created")
    host = Host()
    assert recover(journal, host, Carrier(), terminal_id="T1", merchant_id="M1").lines == ()
    assert journal.get(txn).state == "abandoned" and host.reversals == []
