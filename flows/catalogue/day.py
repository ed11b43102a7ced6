"""A cashier's whole day (issue 14): logout confirmation, retry, card in slot, settlement per channel, void/refund
on every channel, failures in the cashier's words."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TEXTS"]

TEXTS: Mapping[str, tuple[str, str]] = {
    # --- home: menus by role, logout with a confirmation ---
    "home.hint_logout": ("9 log out", "9 退出"),
    "home.logout_ask": ("Log out? ENTER yes · CANCEL stay", "确认退出？确认键退出 · 取消键留下"),
    # --- retry without re-keying (item 4) ---
    "result.hint_retry": ("F2 another channel (SIM and plan kept) · ENTER home",
                          "F2 换支付方式（保留卡号和套餐） · 确认键回主页"),
    # --- card in slot (item 2) ---
    "slot.remove_and_insert": ("A card was already in the slot — remove the card and insert it again",
                               "卡槽内已有卡，请拔出后重新插卡"),
    "slot.remove_card": ("Remove the card from the reader", "请取走读卡器中的卡"),
    "slot.never_removed": ("The card left in the slot was not removed — nothing charged",
                           "卡槽内的卡未取出，未扣款"),
    # --- settlement per channel, wallets reconciled (item 1) ---
    "srpt.wallets_ok": ("WALLETS RECONCILED", "钱包对账一致"),
    "srpt.wallets_differ": ("WALLET ORDERS DIFFER", "钱包对账不符"),
    "settle.channels": ("By channel (card batch to the bank, wallets checked with each platform):",
                        "按支付方式（银行卡批次上送银行，钱包与各平台核对）："),
    "settle.channel_line": ("{channel}: {count} · {money}", "{channel}：{count} 笔 · {money}"),
    "settle.wallets_ok": ("Wallet orders reconciled: {count} checked, all agree",
                          "钱包订单已核对：{count} 笔，全部一致"),
    "settle.wallets_differ": ("{count} wallet order(s) differ — follow them up (open items / refund), then F1 "
                              "reconciles again", "{count} 笔钱包订单不符，请处理（待处理交易/退款）后按 F1 重新核对"),
    "settle.mismatch_line": ("{order} {channel} {money}: ours {ours}, platform {theirs}",
                             "{order} {channel} {money}：本机{ours}，平台{theirs}"),
    "settle.retry_hint": ("F1 try again · ENTER home", "F1 重试 · 确认键回主页"),
    "settle.reconcile_hint": ("F1 reconcile wallets again · ENTER home", "F1 重新核对钱包 · 确认键回主页"),
    "settle.reconciling": ("Asking the wallet platforms…", "正在与钱包平台核对…"),
    "wstatus.paid": ("paid", "已支付"),
    "wstatus.user_paying": ("customer paying", "顾客支付中"),
    "wstatus.waiting": ("not paid yet", "未支付"),
    "wstatus.failed": ("failed", "支付失败"),
    "wstatus.cancelled": ("cancelled", "已撤销"),
    "wstatus.refunded": ("refunded", "已退款"),
    "wstatus.expired": ("expired", "已过期"),
    "wstatus.not_found": ("unknown to the platform", "平台无此订单"),
    "wstatus.unreachable": ("not reachable", "无法连接"),
    # --- small truths (item 9) ---
    "history.field_yuan": ("Total in yuan (F2 = decimal point)", "合计金额（元，F2 为小数点）"),
    "history.hint_yuan": ("F1 next field · F2 decimal point · ENTER search · CANCEL home",
                          "F1 切换 · F2 小数点 · 搜索 · 返回"),
    "history.bad_amount": ("Amount: yuan with at most two decimals (30 or 30.50)",
                           "金额：元，最多两位小数（如 30 或 30.50）"),
    # --- fees and limits visible (item 7) ---
    "fee.rule": ("fee {rule}", "手续费 {rule}"),
    "fee.rule_min": ("fee {rule}, min {least}", "手续费 {rule}，最低 {least}"),
    "fee.free": ("no fee", "免手续费"),
    "channel.line": ("{channel} · {fee} · pay {total}", "{channel} · {fee} · 应付 {total}"),
    "channel.line_limits": ("{channel} · {fee} · pay {total} · {limits}",
                            "{channel} · {fee} · 应付 {total} · {limits}"),
    "result.paid": ("Paid {total} (plan {amount} + fee {fee})", "已付 {total}（套餐 {amount} + 手续费 {fee}）"),
}
