"""The message catalogue: every cashier-facing text of the terminal, in English and Chinese.

``t(key, lang, **args)`` looks a text up and fills its ``{placeholders}``. ``lang`` is ``"en"``, ``"zh"`` or
``"both"`` (the default: ``"English / 中文"``, as the terminal has always shown). An argument may itself be a
``Msg`` (a key with its own args); it is translated into the same language, so a role name or a channel label
inside a sentence never mixes languages. A tuple argument is a list: each item rendered so, joined by
``", "``. It lives in ``flows`` because receipts and pure flows speak to the
cashier too, and ``flows`` may not import ``terminal``.

To add a text: add one key with both languages below; ``tests/terminal/test_messages.py`` fails if either
language is missing, if the placeholders differ, or if code uses a key that is not here.

>>> t("login.title", "zh"), t("login.title", "en"), t("login.title")
('登录', 'Log in', 'Log in / 登录')
>>> t("home.refused", "en", role=Msg("role.cashier"), allowed=Msg("role.supervisor"))
'Not allowed for cashier — supervisor only'
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flows.catalogue import contactless, day, integrity, office, payment, screens

__all__ = ["CATALOGUE", "LANGS", "Msg", "Text", "t", "say", "next_lang", "state_label"]

LANGS = ("both", "zh", "en")  # the order the language key cycles through


@dataclass(frozen=True)
class Msg:
    """A text not yet rendered: translated when it is shown, in the language of the screen or receipt."""

    key: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def render(self, lang: str = "both") -> str:
        return t(self.key, lang, **self.args)


Text = str | Msg  # what flows hand to screens: a Msg, or (from code not converted yet) a finished string


def say(text: Text, lang: str = "both") -> str:
    """A ``Msg`` rendered in ``lang``; a plain string as it is."""
    return text.render(lang) if isinstance(text, Msg) else text


def state_label(state: str) -> Text:
    """A journal state (``completed``, ``topup_pending`` …) as the cashier reads it; an unknown one as it is."""
    key = f"txnstate.{state}"
    return Msg(key) if key in CATALOGUE else state


def next_lang(lang: str) -> str:
    return LANGS[(LANGS.index(lang) + 1) % len(LANGS)] if lang in LANGS else LANGS[0]


def t(key: str, lang: str = "both", **args: Any) -> str:
    """The text of ``key`` in ``lang`` with ``args`` filled in. Raises KeyError for an unknown key."""
    if not args:  # labels and hints: every screen refresh asks for dozens of them
        return _plain(key, lang)
    memo = _memo_args(args)
    if memo is None:  # an argument that is no plain value (an exception, an object): rendered every time
        return _render(key, lang, args)
    found = _FILLED.get((key, lang, memo))
    if found is None:
        if len(_FILLED) >= _FILLED_MAX:  # a day of amounts and order ids must not grow it without end
            _FILLED.clear()
        found = _FILLED[(key, lang, memo)] = _render(key, lang, args)
    return found


@functools.cache
def _plain(key: str, lang: str) -> str:
    return _render(key, lang, {})


# Filled texts by (key, language, arguments) where every argument is a plain value: a screen redrawn asks for the
# same ones again (the menu's labels, the channel lines). A text depends on nothing else: the catalogue is fixed.
_FILLED: dict[tuple[str, str, tuple[Any, ...]], str] = {}
_FILLED_MAX = 2048


def _memo_args(args: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """``args`` as a hashable key that two arguments rendering differently never share, or None."""
    items = []
    for name, value in args.items():
        memo = _memo_value(value)
        if memo is None:
            return None
        items.append((name, memo))
    return tuple(items)


def _memo_value(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int:  # exactly these: a bool or a float prints otherwise than an int equal to it
        return (kind, value)
    if kind is Msg:
        inner = _memo_args(value.args)
        return None if inner is None else (Msg, value.key, inner)
    if kind is tuple:
        parts = tuple(_memo_value(item) for item in value)
        return None if None in parts else (tuple, parts)
    return None


def _render(key: str, lang: str, args: Mapping[str, Any]) -> str:
    english, chinese = CATALOGUE[key]
    if lang == "en":
        return _fill(english, "en", args)
    if lang == "zh":
        return _fill(chinese, "zh", args)
    en, zh = _fill(english, "en", args), _fill(chinese, "zh", args)
    return en if en == zh else f"{en} / {zh}"


def _fill(text: str, lang: str, args: Mapping[str, Any]) -> str:
    if not args:
        return text
    return text.format(**{k: _arg(v, lang) for k, v in args.items()})


def _arg(value: Any, lang: str) -> Any:
    if isinstance(value, Msg):
        return value.render(lang)
    if isinstance(value, BaseException):  # never an exception's text on a screen: its kind, in people's words
        from flows.for_people import explain_key  # imports this module

        return _plain(explain_key(value), lang)
    if isinstance(value, tuple):
        return ", ".join(str(_arg(item, lang)) for item in value)
    return value


_COMMON: Mapping[str, tuple[str, str]] = {
    # --- common labels and hints ---
    "nav.edit": ("ENTER confirm · CANCEL back · CLEAR delete", "确认 · 返回 · 删除"),
    "nav.back": ("CANCEL back", "返回"),
    "nav.home": ("ENTER home", "返回主页"),
    "nav.cancel": ("CANCEL cancel", "取消"),
    "nav.choose": ("1-9 choose · CANCEL back", "选择 · 返回"),
    "label.status": ("Status", "状态"),
    "label.plan": ("Plan", "套餐"),
    "label.balance": ("Balance", "余额"),
    "label.data_left": ("Data left", "剩余流量"),
    "label.data_used": ("Data used", "已用流量"),
    "label.sms_left": ("SMS left", "剩余短信"),
    "label.voice_left": ("Voice left", "剩余语音"),
    "label.expires": ("Expires", "到期"),
    "label.amount": ("Amount", "金额"),
    "label.fee": ("Fee", "手续费"),
    "label.total": ("TOTAL", "合计"),
    "label.pay_by": ("Pay by", "支付"),
    "label.card": ("Card", "卡号"),
    "label.order": ("Order", "订单号"),
    "label.cashier": ("Cashier", "收银员"),
    "label.user_id": ("User id", "工号"),
    "label.password": ("Password", "密码"),
    "label.new_balance": ("New balance", "新余额"),
    "label.period": ("{months} mo", "{months}个月"),
    "label.was": ("was {price}", "原价{price}"),
    "label.bonus_data": ("+{data} bonus", "赠{data}"),
    "label.bonus_credit": ("+{amount} credit", "赠话费{amount}"),
    "role.cashier": ("cashier", "收银员"),
    "role.supervisor": ("supervisor", "主管"),
    "role.technician": ("technician", "技术员"),
    "role.cashier_supervisor": ("cashier or supervisor", "收银员或主管"),
    "role.cashier_supervisor_technician": ("any user", "任何用户"),
    "lang.both": ("中文 + English", "中文 + English"),
    "lang.zh": ("中文", "中文"),
    "lang.en": ("English", "English"),
    # --- boot, login, home ---
    "boot.title": ("Starting", "启动中"),
    "boot.body": ("Self-test and recovery…", "自检与恢复…"),
    "boot.failed": ("Self-test failed: {error}", "自检失败：{error}"),
    "boot.journal_damaged": ("Journal database is damaged — call a technician", "流水库损坏，请联系技术员"),
    "boot.recovery": ("Recovery: {line}", "恢复：{line}"),
    "oos.title": ("Out of service", "暂停服务"),
    "oos.hint": ("ENTER retry self-test", "重新自检"),
    "login.title": ("Log in", "登录"),
    "login.hint": ("ENTER next · CLEAR delete · CANCEL clear", "下一步 · 删除 · 清除"),
    # the one answer to every failed login (unknown id, wrong password, locked account): ids cannot be enumerated
    "login.wrong": ("Wrong user id or password, or the account is locked (a supervisor can unlock it)",
                    "工号或密码错误，或账户已锁定（主管可解锁）"),
    "login.idle_logout": ("Logged out after inactivity", "长时间未操作，已退出"),
    "home.title": ("Home", "主页"),
    "home.hint": ("CANCEL log out", "退出"),
    "home.topup": ("Top up a SIM", "物联网卡充值"),
    "home.balance": ("Balance & status", "余额查询"),
    "home.history": ("History & reprint", "交易查询/重打"),
    "home.shift": ("Shift summary", "班结汇总"),
    "home.users": ("Users", "用户管理"),
    "home.audit": ("Audit log", "审计日志"),
    "home.diagnostics": ("Diagnostics", "设备自检"),
    "home.password": ("Change my password", "修改密码"),
    "home.language": ("Language: {name}", "语言：{name}"),
    "home.logout": ("Log out", "退出"),
    "home.settings": ("Settings", "设置"),
    "home.void": ("Void or refund a payment", "撤销或退款"),
}


def _join(*parts: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    joined: dict[str, tuple[str, str]] = {}
    for part in parts:
        twice = joined.keys() & part.keys()
        if twice:
            raise ValueError(f"catalogue keys defined twice: {sorted(twice)}")
        joined.update(part)
    return joined


# Every text, by key. Add a text to the area module it belongs to (flows/catalogue/) or, for common labels and
# the boot / login / home screens, here.
CATALOGUE: Mapping[str, tuple[str, str]] = _join(_COMMON, screens.TEXTS, payment.TEXTS, office.TEXTS,
                                                 integrity.TEXTS, contactless.TEXTS, day.TEXTS)
