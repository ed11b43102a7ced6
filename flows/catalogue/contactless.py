"""Contactless (tap) texts: the screen's prompts, Entry Point UI requests, limits and the receipt's kernel facts."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TEXTS"]

TEXTS: Mapping[str, tuple[str, str]] = {
    "channel.tap": ("Tap (contactless)", "闪付 (非接)"),
    "tap.title": ("Tap the card or phone on the reader", "请挥卡或将手机靠近读卡器"),
    "tap.one_card": ("More than one card — present one card only", "检测到多张卡，请只出示一张卡"),
    "tap.again": ("Card removed too early — present the card again", "卡片离开过早，请重新挥卡"),
    "tap.see_phone": ("See your phone, then tap again", "请查看手机后重新挥卡"),
    "tap.read_ok": ("Card read — you may remove it", "读卡成功，可移开卡片"),
    "tap.insert_card": ("Please insert your card", "请插卡"),
    "tap.no_card": ("No card tapped in time", "等待挥卡超时"),
    "tap.removed": ("The card was removed too often", "卡片多次过早离开"),
    "tap.card_error": ("The card could not be read contactless", "非接读卡失败"),
    "tap.limits": ("Tap limit {limit} · no PIN up to {cvm}", "闪付限额 {limit} · {cvm} 以下免密"),
    "entry.contactless": ("Contactless", "非接触"),
    "rcpt.kernel": ("Kernel", "内核"),
    "rcpt.tap_outcome": ("Outcome", "结果"),
    "rcpt.cvm": ("CVM", "验证方式"),
    "tap.outcome.approved": ("Approved", "批准"),
    "tap.outcome.declined": ("Declined", "拒绝"),
    "tap.outcome.online_request": ("Online request", "联机请求"),
    "tap.outcome.end_application": ("End application", "交易终止"),
    "tap.outcome.try_another_interface": ("Try another interface", "请换用其他界面"),
    "tap.outcome.try_again": ("Try again", "请重试"),
    "tap.outcome.select_next": ("Select next", "选择下一应用"),
    "tap.cvm.n/a": ("None", "无"),
    "tap.cvm.no_cvm": ("No CVM", "免密免签"),
    "tap.cvm.online_pin": ("Online PIN", "联机密码"),
    "tap.cvm.signature": ("Signature", "签名"),
    "tap.cvm.confirmation_code_verified": ("Verified on the phone (CDCVM)", "手机端已验证"),
    "rcpt.signature": ("Cardholder signature", "持卡人签名"),
    "tap.update": ("Present the card again for the bank's update", "请再次挥卡，完成发卡行更新"),
    "tap.limits_scheme": ("{scheme} cards: {limits}", "{scheme}卡：{limits}"),
    "tap.scheme.A000000333": ("UnionPay", "银联"),
    "tap.scheme.A000000003": ("Visa", "维萨"),
    "tap.scheme.A000000004": ("Mastercard", "万事达"),
    "tap.remove_first": ("A card is still on the reader — take it away, then tap", "读卡器上仍有卡片，请先移开再挥卡"),
    "tap.never_removed": ("The card on the reader was never taken away — nothing charged",
                          "读卡器上的卡片未移开，未扣款"),
}
