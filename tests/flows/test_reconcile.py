"""End of day per channel: the card batch holds card sales only; every wallet order is asked of its platform."""

import pytest

from flows.messages import say
from flows.ports import TxnRecord, WalletResult
from flows.reconcile import reconcile_wallets
from flows.settlement import batch_totals, report_lines, settle_day
from pos_errors import LinkTimeout


def _row(txn_id, state, channel, total=1000, fee=0, message=None):
    return TxnRecord(txn_id, state, f"O{txn_id}", "89860424000000000017", "1064900000001", "P", "p", total - fee,
                     fee, channel, "01", "2026-12-03T10:00:00.000", stan=txn_id, message=message)


class Wallet:
    def __init__(self, statuses, down=False):
        self.statuses, self.down, self.asked = statuses, down, []

    def query(self, order_id):
        self.asked.append(order_id)
        if self.down:
            raise LinkTimeout("wallet silent")
        return WalletResult(order_id, self.statuses.get(order_id, "not_found"))


class Host:
    def __init__(self):
        self.sent = []

    def settle(self, request):
        self.sent.append(request.totals)
        return "00"

    def upload(self, item):
        raise AssertionError("no upload for a balanced batch")


class Journal:
    def __init__(self):
        self.stan, self.closed = 100, None

    def next_stan(self):
        self.stan += 1
        return self.stan

    def close_batch(self, totals, *, uploaded, report):
        self.closed = totals
        return totals.batch + 1


ROWS = [_row(1, "completed", "card", 3000), _row(2, "completed", "wechat", 1006, fee=6),
        _row(3, "declined", "wechat"), _row(4, "reversed", "alipay", 2000),
        _row(5, "cancelled", "wechat", message="cancelled before sending")]


def test_the_card_batch_holds_card_sales_only():
    totals = batch_totals(ROWS, 1)
    assert (totals.sale_count, totals.sale_minor) == (1, 3000)


def test_one_wechat_and_one_card_sale_close_with_totals_per_channel():
    wallet = Wallet({"O2": "paid", "O3": "failed", "O4": "refunded"})
    host, journal = Host(), Journal()
    result = settle_day(host, wallet, journal, ROWS, batch=1)
    assert result.closed and host.sent[0].sale_minor == 3000 and journal.closed.sale_count == 1
    assert [(c.channel, c.count, c.amount_minor, c.fee_minor) for c in result.channels] == [
        ("card", 1, 3000, 0), ("wechat", 1, 1006, 6)]
    assert result.wallets.ok and result.wallets.checked == 3
    assert "O5" not in wallet.asked  # never reached the platform
    text = "\n".join(line.text for line in report_lines(result, merchant_name="S", terminal_id="T", merchant_id="M",
                                                          when="now", lang="en"))
    assert "WeChat Pay" in text and "￥10.06" in text and "WALLETS RECONCILED" in text


@pytest.mark.parametrize(("statuses", "down", "theirs"), [
    ({"O2": "refunded", "O3": "failed", "O4": "refunded"}, False, "refunded"),  # refunded behind our back
    ({"O2": "paid", "O3": "paid", "O4": "refunded"}, False, "paid"),  # we declined, the customer paid
    ({}, True, "unreachable"),
])
def test_every_differing_order_is_named(statuses, down, theirs):
    rec = reconcile_wallets(Wallet(statuses, down), ROWS)
    assert not rec.ok and theirs in {m.theirs for m in rec.mismatches}
    result = settle_day(Host(), Wallet(statuses, down), Journal(), ROWS, batch=1)
    assert result.closed, "a wallet difference never keeps the card batch open"
    text = "\n".join(line.text for line in report_lines(result, merchant_name="S", terminal_id="T", merchant_id="M",
                                                          when="now", lang="zh"))
    assert "钱包对账不符" in text and rec.mismatches[0].order_id in text
    assert say(result.message, "en").startswith("Batch 1 closed")


def test_no_wallet_port_names_every_wallet_order():
    rec = reconcile_wallets(None, ROWS)
    assert {m.order_id for m in rec.mismatches} == {"O2", "O3", "O4"}
