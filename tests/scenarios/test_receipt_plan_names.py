"""Receipts name the plan in their own language (day 15 item 1): a Chinese sale, void and refund receipt, printed
through the real ESC/POS driver onto the simulated printer's pty and decoded there, carry the carrier's Chinese
plan name and never its English one; the journal keeps both names, so a reprint says the same."""

from pathlib import Path

import pytest

from sim.runner.scenario import load_scenario, run_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "receipts_plan_in_chinese.toml"
ENGLISH_NAMES = ("10 GB monthly data", "1 GB monthly data", "monthly")


@pytest.mark.scenario
def test_chinese_sale_void_and_refund_receipts_name_the_plan_in_chinese():
    seen: dict[str, object] = {}

    def inspect(world):
        seen["receipts"] = ["\n".join(r) for r in world.printer.receipts]
        rows = world.terminal.services.journal.all_transactions()
        seen["rows"] = [(r.state, r.plan_name, r.plan_name_zh) for r in rows]

    result = run_scenario(load_scenario(SCENARIO), inspect=inspect)
    assert result.passed, result.message + "\n" + "\n".join(result.log)
    receipts = seen["receipts"]
    kinds = [next((k for k in ("已撤销", "已退款", "客户联", "结算") if k in r), "?") for r in receipts]
    assert kinds == ["客户联", "已撤销", "客户联", "结算", "已退款", "已撤销"], receipts  # the last: a reprint
    for text in receipts:
        assert not [name for name in ENGLISH_NAMES if name in text], text
    assert "10GB 月包" in receipts[1] and "1GB 月包" in receipts[4] and "10GB 月包" in receipts[5]
    assert seen["rows"] == [("voided", "10 GB monthly data", "10GB 月包"),
                            ("refunded", "1 GB monthly data", "1GB 月包")]
