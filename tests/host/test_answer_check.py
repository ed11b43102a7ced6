"""An answer must answer what was asked (drivers.host.answer_check): a partial approval (10) or an approval of
another amount, processing code, currency or merchant is no approval. Through the real mutual-TLS link, with
every answer MACed by the simulated acquirer (so only the comparison with the request can catch it), and a real
SQLite journal: the payment is reversed, journal first, and the host's ledger shows the money back."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.host import HostClient
from drivers.host.answer_check import ECHOED, check_answer
from drivers.host.tls import client_context
from drivers.host.tmk import load_tmk
from flows.authorize import authorize_journaled
from flows.ports import AdviceRequest, AuthRequest, AuthResponse, RefundRequest
from flows.refund import refund_payment
from flows.reversal import reverse_payment
from flows.testing import FakeJournal
from flows.txn_state import TxnState
from pos_errors import AnswerMismatch, RemoteProtocolError
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from terminal.journal import Journal
from tests.host.conftest import GOOD, SECURE_TID, TODAY, icc_data, started

TID, MID = SECURE_TID, "M00000000000001"
_minute = itertools.count(1)

SENT = {"t": "0200", "3": "000000", "4": "000000003000", "11": "000007", "41": "T0000001", "42": "M00000000000001",
        "49": "156"}


@pytest.mark.parametrize(("answer", "tag"), [
    ({"4": "000000000100"}, "4"),                        # approves 1.00 of 30.00
    ({"3": "200000"}, "3"),                              # a refund, not a purchase
    ({"49": "840"}, "49"),                               # dollars
    ({"42": "M99999999999999"}, "42"),                   # another merchant
    ({"41": "T9999999"}, "41"),                          # another terminal
    ({"39": "10"}, "39"),                                # partial approval, even with field 4 as sent
    ({"39": "10", "4": "000000001500"}, "39"),           # partial approval with the approved part
    ({"4": None}, "4"),                                  # an approval without the amount
    ({"49": None}, "49"),                                # ... without the currency
    ({"42": None}, "42"),                                # ... without the merchant
])
def test_a_mismatch_is_named_by_its_field(answer: dict[str, str | None], tag: str) -> None:
    fields = {**SENT, "t": "0210", "39": "00"}
    fields.update({k: v for k, v in answer.items() if v is not None})
    for key in (k for k, v in answer.items() if v is None):
        del fields[key]
    with pytest.raises(AnswerMismatch) as caught:
        check_answer(SENT, fields)
    assert caught.value.tag == tag
    assert "3000" not in str(caught.value) and "156" not in str(caught.value)  # names the field, never a value


@pytest.mark.parametrize("answer", [
    {**SENT, "t": "0210", "39": "00"},                                       # the whole echo
    {**SENT, "t": "0210", "39": "11", "41": "T0000001", "42": "M00000000000001   "},  # padding aside
    {"t": "0210", "11": "000007", "41": "T0000001", "39": "05"},              # a decline need not echo
    {"t": "0210", "11": "000007", "41": "T0000001", "39": "30", "4": "000000003000"},
])
def test_an_answer_that_answers_the_request_passes(answer: dict[str, str]) -> None:
    check_answer(SENT, answer)


def test_a_decline_that_carries_another_amount_is_a_mismatch_too() -> None:
    with pytest.raises(AnswerMismatch):
        check_answer(SENT, {"t": "0210", "11": "000007", "41": "T0000001", "39": "05", "4": "000000000001"})


def test_a_10_from_any_host_port_is_no_approval_and_is_reversed() -> None:
    """A host port that hands a 10 on (not our client, which refuses it): never approved, reversal pending."""
    assert not AuthResponse("10").approved

    class Host:
        def authorize(self, request: AuthRequest) -> AuthResponse:
            return AuthResponse("10", "123456", "000000000001")

    journal = FakeJournal()
    txn = journal.begin(order_id="O1", iccid="89860424000000000017", msisdn="", plan_id="P", plan_name="p",
                        amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")

    ports = _Ports(Host(), journal)  # type: ignore[arg-type]
    _sent, answer, unknown = authorize_journaled(ports, txn, _request(journal.next_stan()))
    assert answer is None and unknown is not None and unknown.message.key == "pay.partial_approval"
    record = journal.get(txn)
    assert (record.state, record.reversal, record.response_code) == (TxnState.AUTH_UNKNOWN, "pending", "10")


# --- through the real link --------------------------------------------------------------------------------


@pytest.fixture
def acquirer(security: AcquirerSecurity) -> Iterator[AcquirerSim]:
    yield from started(security)


def _client(sim: AcquirerSim, sec: AcquirerSecurity, journal: Journal, timeout_s: float = 2.0) -> HostClient:
    host, port = sim.address
    return HostClient(host, port, timeout_s=timeout_s, connect_timeout_s=1.0, terminal_id=TID, merchant_id=MID,
                      server_name="localhost", tls=client_context(sec.ca.ca_file, sec.client_cert, sec.client_key),
                      tmk=load_tmk(sec.tmk_file, sec.tmk_kbpk_file), next_stan=journal.next_stan)


def _request(stan: int, amount: int = 3000) -> AuthRequest:
    local = dt.datetime.combine(TODAY, dt.time(11, 0)) + dt.timedelta(minutes=next(_minute))
    return AuthRequest(stan=stan, amount_minor=amount, local_time=local, pan=GOOD.pan, expiry_yymm=GOOD.expiry[:4],
                       pan_sequence=GOOD.psn, icc_data=icc_data(GOOD, amount, atc=stan + 200),
                       terminal_id=TID, merchant_id=MID)


class _Ports:
    def __init__(self, host: HostClient, journal: Journal | FakeJournal) -> None:
        self.host, self.journal = host, journal


def _begin(journal: Journal) -> int:
    return journal.begin(order_id="O1", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                         plan_name="p", amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")


@pytest.mark.parametrize(("how", "message"), [
    ("magic", "pay.partial_approval"),          # x.10: the host approves half and says so in field 4
    ("forced", "pay.partial_approval"),         # acquirer_response = "10"
    ("0210:4", "pay.answer_mismatch"),
    ("0210:3", "pay.answer_mismatch"),
    ("0210:49", "pay.answer_mismatch"),
    ("0210:42", "pay.answer_mismatch"),
])
def test_an_answer_to_another_payment_is_reversed_through_the_real_link(
        tmp_path, acquirer: AcquirerSim, security: AcquirerSecurity, how: str, message: str) -> None:
    journal = Journal(tmp_path / "journal.db")
    client = _client(acquirer, security, journal)
    amount = 3010 if how == "magic" else 3000
    if how == "forced":
        acquirer.force_response("10")
    elif how != "magic":
        acquirer.answer_change = (how[:4], how[5:])
    txn = _begin(journal)
    sent, answer, unknown = authorize_journaled(_Ports(client, journal), txn, _request(journal.next_stan(), amount))
    assert answer is None and unknown is not None and unknown.message.key == message
    record = journal.get(txn)
    assert (record.state, record.reversal) == (TxnState.AUTH_UNKNOWN, "pending")
    [entry] = acquirer.ledger  # the host did decide, and took money
    assert entry.response_code in ("00", "10") and acquirer.approved_total_minor() == (
        1505 if how == "magic" else 1500 if how == "forced" else 3000)
    acquirer.force_response(None)
    acquirer.answer_change = None
    assert reverse_payment(client, journal, record, terminal_id=TID, merchant_id=MID)
    assert journal.get(txn).state == TxnState.REVERSED
    assert acquirer.ledger[0].reversed and acquirer.approved_total_minor() == 0
    assert [r.original_stan for r in acquirer.reversals] == [sent.stan]
    journal.close()


def test_an_approval_for_another_terminal_is_never_taken_and_the_payment_is_reversed(
        tmp_path, acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    """Field 41 ties an answer to its request: one for another terminal is no answer at all (time-out)."""
    journal = Journal(tmp_path / "journal.db")
    client = _client(acquirer, security, journal, timeout_s=1.0)  # the 0210 for another terminal never matches
    client.sign_on()
    acquirer.answer_change = ("0210", "41")
    txn = _begin(journal)
    _sent, answer, unknown = authorize_journaled(_Ports(client, journal), txn, _request(journal.next_stan()))
    assert answer is None and unknown is not None and unknown.message.key == "pay.no_answer"
    assert journal.get(txn).state == TxnState.AUTH_UNKNOWN and acquirer.approved_total_minor() == 3000
    journal.close()


def test_a_reversal_answered_for_another_amount_is_not_acknowledged_and_is_repeated(
        tmp_path, acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    journal = Journal(tmp_path / "journal.db")
    client = _client(acquirer, security, journal)
    txn = _begin(journal)
    authorize_journaled(_Ports(client, journal), txn, _request(journal.next_stan()))
    journal.update(txn, TxnState.CARD_DECLINED_AFTER_APPROVAL, reversal="pending")  # the card refused: reverse
    acquirer.answer_change = ("0410", "4")
    assert not reverse_payment(client, journal, journal.get(txn), terminal_id=TID, merchant_id=MID, attempts=2)
    record = journal.get(txn)
    assert (record.state, record.reversal) == (TxnState.REVERSAL_PENDING, "pending")
    assert "amount (field 4)" in (record.message or "")
    acquirer.answer_change = None
    assert reverse_payment(client, journal, record, terminal_id=TID, merchant_id=MID)  # 0401, same STAN
    assert journal.get(txn).state == TxnState.REVERSED and acquirer.approved_total_minor() == 0
    assert [r.mti for r in acquirer.reversals] == ["0400", "0401", "0401"]
    assert len({r.stan for r in acquirer.reversals}) == 1
    journal.close()


@pytest.mark.parametrize("change", [("0230", "4"), ("0230", "49"), ("0210", "4")])
def test_an_advice_or_refund_answered_for_another_amount_is_not_taken(
        tmp_path, acquirer: AcquirerSim, security: AcquirerSecurity, change: tuple[str, str]) -> None:
    journal = Journal(tmp_path / "journal.db")
    client = _client(acquirer, security, journal)
    sale = _request(journal.next_stan())
    if change[0] == "0230":
        acquirer.answer_change = change
        with pytest.raises(RemoteProtocolError):
            client.advise(AdviceRequest(sale, "Y1"))
        acquirer.answer_change = None
        assert client.advise(AdviceRequest(sale, "Y1", repeat=True)) == "00"
        return
    approved = client.authorize(sale)
    refund = RefundRequest(journal.next_stan(), sale, approved.rrn, approved.auth_code)
    acquirer.answer_change = change
    with pytest.raises(AnswerMismatch):
        client.refund(refund)
    acquirer.answer_change = None
    assert client.refund(refund).approved  # the same refund STAN: paid once
    assert [(r.stan, r.amount_minor) for r in acquirer.refunds] == [(refund.stan, 3000)]
    journal.close()


def test_a_refund_answered_for_another_amount_stays_pending_and_is_repeated_under_its_stan(
        tmp_path, acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    """flows.refund through the real link: a 0210 to the refund that gives back another amount is no answer."""
    journal = Journal(tmp_path / "journal.db")
    client = _client(acquirer, security, journal)
    txn = _begin(journal)
    authorize_journaled(_Ports(client, journal), txn, _request(journal.next_stan()))
    journal.update(txn, TxnState.CARD_DECLINED_AFTER_APPROVAL, reversal="pending")
    acquirer.refuse_reversals = True
    assert not reverse_payment(client, journal, journal.get(txn), terminal_id=TID, merchant_id=MID)
    acquirer.refuse_reversals = False
    acquirer.answer_change = ("0210", "4")
    pending = refund_payment(client, journal, journal.get(txn), terminal_id=TID, merchant_id=MID,
                             supervisor_id="90", attempts=2)
    record = journal.get(txn)
    assert pending.status == "pending" and record.state == TxnState.REFUND_PENDING
    assert "amount (field 4)" in (record.message or "")
    acquirer.answer_change = None
    done = refund_payment(client, journal, record, terminal_id=TID, merchant_id=MID, supervisor_id="90")
    assert done.status == "refunded" and journal.get(txn).refund_stan == record.refund_stan
    assert [(r.stan, r.amount_minor) for r in acquirer.refunds] == [(record.refund_stan, 3000)]  # paid once
    journal.close()


@given(key=st.sampled_from(sorted(ECHOED)), code=st.sampled_from(["00", "11", "05", "30", "51", "A0", "94"]),
       other=st.text(alphabet="0123456789ABCDEFMT", min_size=1, max_size=15))
def test_any_other_value_of_an_echoed_field_is_a_mismatch_whatever_the_code(key: str, code: str,
                                                                            other: str) -> None:
    if other.rstrip() == SENT[key].rstrip():
        other = other + "9" if len(other) < 15 else "X"
    answer = {**SENT, "t": "0210", "39": code, key: other}
    with pytest.raises(AnswerMismatch) as caught:
        check_answer(SENT, answer)
    assert caught.value.tag == key
    check_answer(SENT, {**SENT, "t": "0210", "39": code})  # the same answer with the field as sent passes
