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
    "retry.kept": ("SIM {sim} · {plan}: choose how to pay", "SIM {sim} · {plan}：请选择支付方式"),
}
