"""Settlement against a real journal and a fake host that records the 0500/0320 it was sent."""

import pytest

from flows.messages import say
from flows.settlement import batch_totals, report_lines, settle_batch
from flows.txn_state import path_to
from pos_errors import LinkError
from terminal.journal import Journal, JournalError


class Host:
    def __init__(self, first="00", down=False):
        self.first, self.down, self.sent = first, down, []

    def settle(self, request):
        if self.down:
            raise LinkError("refused")
        self.sent.append(("0500", request.totals, request.after_upload))
        return "00" if request.after_upload or len(self.sent) > 1 else self.first

    def upload(self, item):
        self.sent.append(("0320", item.original_stan, item.amount_minor, item.batch))
        return "00"


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "j.db")
    for i, (state, amount) in enumerate([("completed", 3000), ("reversed", 1097), ("completed", 1000),
                                         ("declined", 500), ("topup_pending", 2000)]):
        txn = j.begin(order_id=f"O{i}", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                      plan_name="p", amount_minor=amount, fee_minor=0, channel="card", cashier_id="90")
        for step in path_to(state, through="auth_intended"):
            j.update(txn, step, **({"stan": 10 + i, "auth_code": "123456", "rrn": "000000000001"}
                                   if step == "approved" else {}))
    return j


def test_balanced_close_counts_only_completed_sales_and_opens_the_next_batch(journal):
    host = Host("00")
    result = settle_batch(host, journal, journal.batch_records(1), batch=1)
    assert result.closed and not result.uploaded and result.new_batch == 2 and journal.current_batch() == 2
    assert result.totals == batch_totals(journal.batch_records(1), 1)
    assert (result.totals.sale_count, result.totals.sale_minor) == (2, 4000)
    assert [s[0] for s in host.sent] == ["0500"]
    later = journal.begin(order_id="O9", iccid="8986", msisdn="1064", plan_id="P", plan_name="p",
                          amount_minor=1, fee_minor=0, channel="card", cashier_id="01")
    assert journal.batch_records(2)[0].txn_id == later


def test_mismatch_uploads_every_completed_sale_then_closes_again(journal):
    host = Host("95")
    result = settle_batch(host, journal, journal.batch_records(1), batch=1)
    assert result.closed and result.uploaded and result.new_batch == 2
    assert host.sent[1:] == [("0320", 10, 3000, 1), ("0320", 12, 1000, 1), ("0500", result.totals, True)]
    text = "\n".join(line.text for line in report_lines(result, merchant_name="Shop", terminal_id="T1",
                                                          merchant_id="M1", when="2026-12-01 18:00"))
    assert "CLOSED AFTER BATCH UPLOAD" in text and "BATCH 000001" in text and "NEXT BATCH 000002" in text
    assert "SALES / 消费      2        ￥40.00" in text


def test_host_down_or_refusing_leaves_the_batch_open(journal):
    down = settle_batch(Host(down=True), journal, journal.batch_records(1), batch=1)
    assert down.status == "failed" and "stays open" in say(down.message) and journal.current_batch() == 1
    refused = settle_batch(Host("96"), journal, journal.batch_records(1), batch=1)
    assert (refused.status, refused.response_code, refused.new_batch) == ("failed", "96", None)
    assert journal.current_batch() == 1


def test_closing_a_batch_that_is_not_open_is_refused(journal):
    totals = batch_totals(journal.batch_records(1), 7)
    with pytest.raises(JournalError, match="not the open batch"):
        journal.close_batch(totals, uploaded=False, report="")


def test_the_report_prints_in_the_cashiers_language(journal):
    result = settle_batch(Host("95"), journal, journal.batch_records(1), batch=1)
    zh = "\n".join(line.text for line in report_lines(result, merchant_name="Shop", terminal_id="T1",
                                                        merchant_id="M1", when="2026-12-01 18:00", lang="zh"))
    assert "结算单" in zh and "批上送后结算" in zh and "消费" in zh
    assert "SETTLEMENT" not in zh and "SALES" not in zh and "CLOSED" not in zh
    assert "批次" in say(result.message, "zh") and "Batch 1 closed after batch upload" in say(result.message, "en")


def test_a_sale_whose_void_was_refused_and_whose_topup_is_being_put_back_is_counted_and_named(journal):
    """Issue 14: the bank refused the void, so it still holds the sale (the money stays taken); the top-up is
    being put back (``topup_reapply``). The terminal's totals must be the host's: the sale counts, goes into the
    batch upload, and the report names it, so the supervisor sees what the carrier still owes."""
    from flows.settlement import settle_day

    txn = journal.batch_records(1)[0].txn_id  # O0: completed ￥30.00, STAN 10
    journal.update(txn, "void_pending", topup_status="reversed")
    journal.update(txn, "topup_reapply", message="void refused (12)")
    host = Host("95")
    result = settle_day(host, None, journal, journal.batch_records(1), batch=1)
    assert (result.totals.sale_count, result.totals.sale_minor) == (2, 4000)  # as before the void: still a sale
    assert ("0320", 10, 3000, 1) in host.sent
    assert [r.order_id for r in result.reapplying] == ["O0"]
    en = [line.text for line in report_lines(result, merchant_name="Shop", terminal_id="T1", merchant_id="M1",
                                             when="2026-12-01 18:00", lang="en")]
    assert "TOP-UP BEING PUT BACK: 1" in en and "SIM …0017 ￥30.00 order O0" in en
    zh = [line.text for line in report_lines(result, merchant_name="Shop", terminal_id="T1", merchant_id="M1",
                                             when="2026-12-01 18:00", lang="zh")]
    assert "充值恢复中：1 笔" in zh and "SIM …0017 ￥30.00 订单 O0" in zh


def test_the_report_names_each_advice_the_bank_never_took(journal):
    from dataclasses import replace

    from flows.saf import SafRow

    result = settle_batch(Host("95"), journal, journal.batch_records(1), batch=1)
    failed = SafRow(3, 9, "offline", 41, 1500, "621700******0078", b"sealed", "3012", "01", b"", "t", "Y1",
                    batch=1, status="failed", attempts=10)
    result = replace(result, advices_failed=(failed,))
    for lang, heading in (("en", "ADVICES NOT TAKEN: 1"), ("zh", "离线通知未被受理：1 笔")):
        text = [line.text for line in report_lines(result, merchant_name="Shop", terminal_id="T1", merchant_id="M1",
                                                   when="2026-12-01 18:00", lang=lang)]
        assert heading in text and "000041 ￥15.00 621700******0078" in text
    assert not any("NOT TAKEN" in line.text for line in report_lines(
        replace(result, advices_failed=()), merchant_name="Shop", terminal_id="T1", merchant_id="M1",
        when="2026-12-01 18:00", lang="en"))
