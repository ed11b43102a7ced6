"""The message catalogue: every cashier-facing text of the terminal, in English and Chinese.

``t(key, lang, **args)`` looks a text up and fills its ``{placeholders}``. ``lang`` is ``"en"``, ``"zh"`` or
``"both"`` (the default: ``"English / 中文"``, as the terminal has always shown). An argument may itself be a
``Msg`` (a key with its own args); it is translated into the same language, so a role name or a channel label
inside a sentence never mixes languages. It lives in ``flows`` because receipts and pure flows speak to the
cashier too, and ``flows`` may not import ``terminal``.

To add a text: add one key with both languages below; ``tests/terminal/test_messages.py`` fails if either
language is missing, if the placeholders differ, or if code uses a key that is not here.

>>> t("login.title", "zh"), t("login.title", "en"), t("login.title")
('登录', 'Log in', 'Log in / 登录')
>>> t("home.refused", "en", role=Msg("role.cashier"), allowed=Msg("role.supervisor"))
'Not allowed for cashier — supervisor only'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CATALOGUE", "LANGS", "Msg", "Text", "t", "say", "next_lang"]

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


def next_lang(lang: str) -> str:
    return LANGS[(LANGS.index(lang) + 1) % len(LANGS)] if lang in LANGS else LANGS[0]


def t(key: str, lang: str = "both", **args: Any) -> str:
    """The text of ``key`` in ``lang`` with ``args`` filled in. Raises KeyError for an unknown key."""
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
    return text.format(**{k: v.render(lang) if isinstance(v, Msg) else v for k, v in args.items()})


CATALOGUE: Mapping[str, tuple[str, str]] = {
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
    "login.wrong": ("Wrong user id or password", "工号或密码错误"),
    "login.wrong_left": ("Wrong user id or password ({left} tries left)", "工号或密码错误（还剩 {left} 次）"),
    "login.locked": ("Account locked until {until}", "账户已锁定至 {until}"),
    "login.locked_now": ("Too many wrong passwords: locked for {minutes} min",
                         "密码错误次数过多，锁定 {minutes} 分钟"),
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
    "home.refused": ("Not allowed for {role} — {allowed} only", "{role}无此权限，仅限{allowed}"),
    "home.health": ("Device check found {count} problem(s):", "设备检查发现 {count} 个问题："),
    # --- SIM entry, lookup, details, balance ---
    "sim.title": ("SIM number", "SIM 卡号"),
    "sim.help": ("ICCID (19–20 digits) or mobile number (11/13)", "ICCID 或号码"),
    "sim.balance_title": ("Balance & status: SIM number", "余额查询：SIM 卡号"),
    "sim.lookup_title": ("Looking up SIM", "查询 SIM 卡"),
    "sim.details_title": ("SIM details", "SIM 卡信息"),
    "sim.details_hint": ("ENTER choose plan · CANCEL back", "选择套餐 · 返回"),
    "sim.no_plans": ("No plans available for this SIM", "该卡暂无可购套餐"),
    "sim.timeout": ("The carrier did not answer in time", "运营商无应答"),
    "sim.unreachable": ("Carrier unreachable, try again ({error})", "无法连接运营商，请重试（{error}）"),
    "sim.lookup_failed": ("Lookup failed: {error}", "查询失败：{error}"),
    "sim.unknown": ("Unknown SIM number — check and re-enter", "未找到该 SIM 卡，请核对"),
    "sim.not_active": ("SIM is {status} — it cannot be topped up", "SIM 卡状态异常（{status}），无法充值"),
    "status.title": ("SIM status", "SIM 卡状态"),
    "status.updates_later": ("Balance updates when the top-up is applied", "充值完成后更新余额"),
    "status.asked_at": ("From the carrier at {time}", "运营商数据 {time}"),
    # --- plans, advice, channel, confirm ---
    "plans.title": ("Choose a plan", "选择套餐"),
    "plans.hint": ("1-9 choose · 0 help me choose · CANCEL back", "选择 · 0 帮我选 · 返回"),
    "advice.title": ("Help me choose", "帮我选套餐"),
    "advice.field_data": ("Data per month (GB)", "每月流量（GB）"),
    "advice.field_sms": ("SMS per month", "每月短信（条）"),
    "advice.field_voice": ("Voice per month (min)", "每月通话（分钟）"),
    "advice.field_months": ("Months to cover", "覆盖月数"),
    "advice.hint_input": ("digits · ENTER next field · CANCEL back", "输入 · 下一项 · 返回"),
    "advice.hint_result": ("ENTER buy this plan · CANCEL back", "购买此套餐 · 返回"),
    "advice.hint_combo": ("Buy each package in turn · CANCEL back", "请依次购买 · 返回"),
    "advice.buy": ("Buy: {items}", "购买：{items}"),
    "advice.none": ("No plan or combination covers this — lower the need", "没有可覆盖的套餐组合，请调整需求"),
    "advice.bad_months": ("Months must be 1–36", "月数须为 1–36"),
    "advice.single": ("One package covers {months} month(s), {saving} less than the next single plan",
                      "一个套餐即可覆盖 {months} 个月，比次优单一套餐省 {saving}"),
    "advice.only_single": ("The only package that covers {months} month(s) on its own",
                           "唯一能单独覆盖 {months} 个月的套餐"),
    "advice.combo_beats": ("This combination costs {saving} less than any single plan for {months} month(s)",
                           "此组合比任何单一套餐省 {saving}（{months} 个月）"),
    "advice.combo_needed": ("No single plan covers it; this is the cheapest combination",
                            "单一套餐无法覆盖，此为最省组合"),
    "channel.title": ("Payment method", "支付方式"),
    "channel.card": ("Chip card", "芯片卡"),
    "channel.wechat": ("WeChat Pay", "微信支付"),
    "channel.alipay": ("Alipay", "支付宝"),
    "channel.emvqr": ("EMV QR (UnionPay)", "银联二维码"),
    "channel.hint": ("1-{n} choose · CANCEL back", "1-{n} 选择 · 返回"),
    "wallet.scan_title": ("Scan the customer's payment code", "请扫描顾客付款码"),
    "wallet.scan_hint": ("F1 show QR to the customer · CANCEL cancel", "F1 展示收款码 · 取消"),
    "wallet.qr_title": ("Customer: scan this QR and pay", "请顾客扫码支付"),
    "wallet.waiting_title": ("Waiting for the wallet", "等待支付结果"),
    "wallet.sending": ("Sending", "正在提交"),
    "confirm.title": ("Confirm", "确认"),
    "confirm.rekey": ("Re-key the last 4 digits of the {what} to pay", "请再次输入{what}后 4 位以确认付款"),
    "confirm.iccid": ("ICCID", "ICCID"),
    "confirm.msisdn": ("mobile number", "号码"),
    "confirm.hint": ("last 4 digits + ENTER pay · CANCEL back", "后4位+确认付款 · 返回"),
    "confirm.mismatch": ("Last 4 digits do not match the SIM — check the number with the customer",
                         "后 4 位不符，请与客户核对卡号"),
    # --- payment and result ---
    "pay.insert_title": ("Insert or swipe card", "请插卡或刷卡"),
    "pay.reading_title": ("Reading card", "读卡中"),
    "pay.keep_card": ("Do not remove the card", "请勿拔卡"),
    "pay.pin_title": ("Enter PIN on the PIN pad", "请在密码键盘输入密码"),
    "pay.processing_title": ("Processing", "处理中"),
    "pay.contacting": ("Contacting the bank", "正在连接银行"),
    "pay.wrong_pin": ("Wrong PIN — try again", "密码错误，请重试"),
    "swipe.insert_chip": ("Chip card — please insert it", "芯片卡请插卡"),
    "swipe.fallback": ("Chip unreadable — remove the card and swipe it", "芯片无法读取，请拔卡后刷卡"),
    "swipe.bad": ("Could not read the stripe — swipe again", "磁条读取失败，请重刷"),
    "pay.topping_up": ("Paid. Topping up at the carrier", "已付款，正在充值"),
    "pay.reversing": ("Reversing the payment", "正在冲正"),
    "pay.crashed": ("Terminal error — the journal will recover it ({error})", "终端错误，将自动恢复（{error}）"),
    "pay.wait": ("Please wait — the bank is being asked", "请稍候，正在处理"),
    "result.title": ("Result", "结果"),
    "result.completed": ("Top-up done", "充值成功"),
    "result.pending": ("Paid — top-up pending", "已付款，充值处理中"),
    "result.reversed": ("Payment reversed", "已冲正"),
    "result.reversal_pending": ("Reversal pending", "冲正处理中"),
    "result.declined": ("Declined", "交易拒绝"),
    "result.cancelled": ("Cancelled", "已取消"),
    "result.other": ("Not completed", "交易未完成"),
    "result.hint_print": ("ENTER print receipt · F1 receipt language: {language}",
                          "打印凭条 · F1 凭条语言：{language}"),
    "receipt.title": ("Printing receipt", "打印凭条"),
    "receipt.take": ("Take the receipt", "请取凭条"),
    "receipt.hint_retry": ("ENTER reprint · CANCEL skip", "重新打印 · 跳过"),
    "receipt.printer_error": ("{error} — fix it and press ENTER to reprint", "{error}，请处理后按确认重打"),
    "none.title": ("Not available", "不可用"),
    "none.no_sim": ("No SIM selected", "未选择 SIM 卡"),
    # --- receipt ---
    "rcpt.cashier": ("Cashier {cashier}", "收银员 {cashier}"),
    "rcpt.iccid": ("SIM ICCID", "卡号"),
    "rcpt.auth_code": ("Auth code", "授权码"),
    "rcpt.rrn": ("RRN", "参考号"),
    "rcpt.trace": ("Trace", "凭证号"),
    "rcpt.entry": ("Entry", "读卡"),
    "rcpt.wallet_code": ("Code", "付款码"),
    "rcpt.wallet_txn": ("Wallet txn", "支付单号"),
    "rcpt.applied": ("TOP-UP APPLIED", "充值成功"),
    "rcpt.pending": ("TOP-UP PENDING", "充值处理中"),
    "rcpt.failed": ("TOP-UP FAILED", "充值失败"),
    "rcpt.reversed": ("PAYMENT REVERSED", "已冲正退款"),
    "rcpt.declined": ("DECLINED", "交易拒绝"),
    "rcpt.keep": ("Keep this receipt; the top-up will be\nfollowed up automatically.",
                  "请保留凭条，\n充值结果将自动跟进。"),
    "rcpt.customer_copy": ("CUSTOMER COPY", "客户联"),
    # --- flows: SIM number, price, card payment, top-up, recovery ---
    "simno.empty": ("Enter the SIM number", "请输入 SIM 卡号"),
    "simno.digits": ("Digits only", "只能输入数字"),
    "simno.msisdn_1": ("A mobile number starts with 1", "手机号应以 1 开头"),
    "simno.iccid_89": ("An ICCID starts with 89", "ICCID 应以 89 开头"),
    "simno.check_digit": ("ICCID check digit does not match — ENTER to use anyway", "ICCID 校验位不符，按确认继续"),
    "simno.length": ("{n} digits: ICCID has 19–20, mobile number 11 or 13",
                     "位数不对（{n} 位）：ICCID 为 19–20 位，号码为 11 或 13 位"),
    "price.none": ("This plan has no price; choose another", "套餐价格无效，请另选"),
    "price.over_limit": ("{total} is above the limit of {limit}", "{total} 超过单笔限额 {limit}"),
    "price.below_min": ("{total} is below the {channel} minimum of {limit}", "{total} 低于{channel}单笔最低 {limit}"),
    "price.over_channel": ("{total} is above the {channel} limit of {limit} per payment",
                           "{total} 超过{channel}单笔限额 {limit}"),
    "price.daily": ("Daily limit of {limit} per SIM on {channel} reached ({spent} paid today)",
                    "超过{channel}每卡每日限额 {limit}（今日已付 {spent}）"),
    "resp.00": ("Approved", "交易成功"),
    "resp.05": ("Declined by the bank", "银行拒绝"),
    "resp.14": ("Card not recognised", "无效卡号"),
    "resp.51": ("Insufficient funds", "余额不足"),
    "resp.54": ("Card expired", "卡已过期"),
    "resp.55": ("Wrong PIN", "密码错误"),
    "resp.75": ("PIN tries exceeded", "密码错误次数超限"),
    "resp.91": ("Bank unavailable, try later", "发卡行不可用"),
    "resp.other": ("Declined ({code})", "交易拒绝（{code}）"),
    "pay.no_card": ("No card inserted in time", "等待插卡超时"),
    "pay.cancelled": ("Cancelled — nothing charged", "已取消，未扣款"),
    "pay.no_attempt": ("No attempt", "未交易"),
    "pay.reader_error": ("Card reader: {error}", "读卡器故障：{error}"),
    "pay.no_answer": ("No answer from the bank — payment is being reversed", "银行无应答，正在冲正"),
    "pay.refused_after_approval": ("Card refused after bank approval — reversing", "卡片拒绝，正在冲正"),
    "pay.bank_unreachable": ("Bank unreachable — nothing charged", "无法连接银行，未扣款"),
    "pay.declined_by_card": ("Declined by the card", "卡片拒绝"),
    "pay.card_error": ("Card error: {reason}", "卡片交易终止：{reason}"),
    "pay.card_removed": ("Card removed too early", "卡片过早拔出"),
    "pay.then_reversing": ("{what} — reversing", "{what}，正在冲正"),
    "pay.then_nothing": ("{what} — nothing charged", "{what}，未扣款"),
    "topup.applied": ("Top-up applied", "充值成功"),
    "topup.refused": ("Carrier refused the top-up ({reason}) — payment reversed",
                      "运营商拒绝充值（{reason}），已冲正"),
    "topup.pending": ("Paid. Top-up PENDING, order {order} — will be followed up",
                      "已付款，充值处理中，订单 {order}"),
    "topup.reversal_queued": ("{what} (reversal queued)", "{what}（冲正待发送）"),
    "recovery.reversed": ("Reversed 1 payment of {money} for SIM {sim}", "已冲正 {money}（SIM {sim}）"),
    "recovery.reversal_pending": ("Reversal of {money} for SIM {sim} still pending",
                                  "冲正待完成（{money}，SIM {sim}）"),
    "recovery.confirmed": ("Top-up of {money} for SIM {sim} confirmed", "充值已确认（{money}，SIM {sim}）"),
    "recovery.failed_reversed": ("Top-up failed; reversed {money} for SIM {sim}",
                                 "充值失败，已冲正 {money}（SIM {sim}）"),
    "recovery.pending": ("Top-up {order} for SIM {sim} still pending", "充值处理中（订单 {order}，SIM {sim}）"),
    # --- history, reprint, shift ---
    "history.title": ("History: search", "交易查询"),
    "history.field_tail": ("SIM number ends with", "卡号尾号"),
    "history.field_amount": ("Total in fen (3000 = ￥30.00)", "合计金额（分）"),
    "history.field_date": ("Date YYYYMMDD", "日期 年月日"),
    "history.field_channel": ("Channel number ({channels})", "支付方式编号（{channels}）"),
    "history.hint": ("F1 next field · digits · ENTER search · CANCEL home", "F1 切换 · 输入 · 搜索 · 返回"),
    "history.list_title": ("History: {count} found", "查询结果：{count} 笔"),
    "history.none": ("Nothing found", "未找到交易"),
    "history.more": ("Showing the newest 9; narrow the search", "仅显示最近 9 笔，请缩小范围"),
    "history.detail_title": ("Transaction {txn}", "交易 {txn}"),
    "history.detail_hint": ("ENTER reprint · F1 language: {language} · CANCEL back",
                            "重打 · F1 语言：{language} · 返回"),
    "history.no_receipt": ("This transaction has no receipt", "此交易无凭条"),
    "history.reprinted": ("Duplicate printed", "已重打凭条"),
    "history.own_only": ("Your own transactions", "仅显示本人交易"),
    "receipt.duplicate": ("DUPLICATE", "重印"),
    "shift.title": ("Shift summary {day}", "班结汇总 {day}"),
    "shift.line": ("{cashier}: {count} sales {total}, {reversed} reversed",
                   "{cashier}：成功 {count} 笔 {total}，冲正 {reversed} 笔"),
    "shift.none": ("No transactions today", "今日无交易"),
    "shift.printed": ("Summary printed", "汇总已打印"),
    "shift.hint": ("ENTER print · CANCEL home", "打印 · 返回"),
    # --- users, password, audit ---
    "users.title": ("Users", "用户管理"),
    "users.row": ("{user} {role}{locked}", "{user} {role}{locked}"),
    "users.locked_mark": (" LOCKED", " 已锁定"),
    "users.hint": ("1-9 choose · F1 add user · CANCEL home", "选择 · F1 新增 · 返回"),
    "users.edit_title": ("User {user} ({role})", "用户 {user}（{role}）"),
    "users.action_reset": ("Reset password (type it, ENTER)", "重置密码（输入后确认）"),
    "users.action_unlock": ("F2 unlock", "F2 解锁"),
    "users.action_role": ("F3 next role", "F3 切换角色"),
    "users.edit_hint": ("digits new password · ENTER set · F2 unlock · F3 role · CANCEL back",
                        "新密码 · 确认 · F2 解锁 · F3 角色 · 返回"),
    "users.add_title": ("Add user", "新增用户"),
    "users.add_hint": ("id ENTER · role 1/2/3 · password ENTER", "工号 确认 · 角色 1/2/3 · 密码 确认"),
    "users.add_role": ("Role: 1 cashier · 2 supervisor · 3 technician", "角色：1 收银员 · 2 主管 · 3 技术员"),
    "users.added": ("User {user} added", "已新增用户 {user}"),
    "users.exists": ("User {user} exists already", "用户 {user} 已存在"),
    "users.bad_id": ("A user id is 1–6 digits", "工号为 1–6 位数字"),
    "users.bad_role": ("Unknown role", "未知角色"),
    "users.unknown": ("No user {user}", "无此用户 {user}"),
    "users.password_reset": ("Password of {user} reset; account unlocked", "已重置 {user} 的密码并解锁"),
    "users.unlocked": ("User {user} unlocked", "已解锁 {user}"),
    "users.role_set": ("User {user} is now {role}", "用户 {user} 角色改为 {role}"),
    "users.own_role": ("Nobody changes their own role", "不能修改自己的角色"),
    "password.title": ("Change my password", "修改密码"),
    "password.old": ("Current password", "当前密码"),
    "password.new": ("New password", "新密码"),
    "password.again": ("New password again", "再次输入新密码"),
    "password.hint": ("digits · ENTER next · CANCEL home", "输入 · 下一步 · 返回"),
    "password.old_wrong": ("Current password is wrong", "当前密码错误"),
    "password.same": ("The new password must differ from the old one", "新密码不能与旧密码相同"),
    "password.too_short": ("A password is at least {min} digits", "密码至少 {min} 位数字"),
    "password.mismatch": ("The two new passwords differ", "两次输入的新密码不一致"),
    "password.changed": ("Password changed", "密码已修改"),
    "audit.title": ("Audit log, newest first ({page}/{pages})", "审计日志，最新在前（{page}/{pages}）"),
    "audit.empty": ("No entries", "无记录"),
    "audit.hint": ("F1 older · F2 newer · CANCEL home", "F1 更早 · F2 更新 · 返回"),
    # --- settings ---
    "settings.title": ("Settings", "设置"),
    "settings.idle_s": ("Log out after idle (s)", "空闲自动退出（秒）"),
    "settings.lock_s": ("Lock after wrong passwords (s)", "密码错误锁定时长（秒）"),
    "settings.max_failed": ("Wrong passwords before lock", "锁定前允许错误次数"),
    "settings.hint": ("F1 next setting · digits new value · ENTER save · CANCEL home",
                      "F1 切换 · 输入新值 · 保存 · 返回"),
    "settings.range": ("{name} must be {low}–{high}", "{name} 须在 {low}–{high} 之间"),
    "settings.saved": ("Saved: {name} = {value}", "已保存：{name} = {value}"),
    # --- diagnostics ---
    "diag.title": ("Diagnostics", "设备自检"),
    "diag.running": ("Checking every device…", "正在检查各设备…"),
    "diag.hint": ("ENTER run again · CANCEL home", "重新检查 · 返回"),
    "diag.ok": ("{name}: OK", "{name}：正常"),
    "diag.ok_detail": ("{name}: OK ({detail})", "{name}：正常（{detail}）"),
    "diag.fault": ("{name}: {problem} → {action}", "{name}：{problem} → {action}"),
    "diag.all_ok": ("All {count} checks passed", "全部 {count} 项检查通过"),
    "dev.reader": ("Card reader", "读卡器"),
    "dev.pinpad": ("PIN pad", "密码键盘"),
    "dev.printer": ("Printer", "打印机"),
    "dev.scanner": ("QR scanner", "扫码器"),
    "dev.wallet": ("Wallet platform", "钱包平台"),
    "dev.host": ("Bank host", "银行主机"),
    "dev.carrier": ("Carrier platform", "运营商平台"),
    "dev.journal": ("Journal", "流水库"),
    "dev.disk": ("Free disk", "磁盘空间"),
    "dev.clock": ("Clock", "时钟"),
    "fault.no_answer": ("not answering", "无应答"),
    "fault.offline": ("offline", "离线"),
    "fault.paper_out": ("paper out", "缺纸"),
    "fault.paper_low": ("paper low", "纸将用完"),
    "fault.cover_open": ("cover open", "纸仓盖未关"),
    "fault.no_key": ("no PIN key loaded", "未灌装密钥"),
    "fault.ksn_low": ("only {left} PINs left on this key", "本密钥仅余 {left} 次"),
    "fault.damaged": ("integrity check failed", "完整性校验失败"),
    "fault.disk_low": ("only {mb} MB free", "仅剩 {mb} MB"),
    "fault.clock": ("clock reads {now}, before the last transaction", "时钟为 {now}，早于最后一笔交易"),
    "fix.cable": ("check the cable and power, then run diagnostics again", "检查线缆和电源后重新自检"),
    "fix.paper": ("load a new paper roll", "装入新纸卷"),
    "fix.cover": ("close the printer cover", "关好纸仓盖"),
    "fix.technician": ("call a technician", "请联系技术员"),
    "fix.network": ("check the network; card sales wait until it answers", "检查网络，恢复前无法刷卡"),
    "fix.disk": ("call a technician to free space", "请技术员清理空间"),
    "fix.clock": ("set the date and time", "校准日期时间"),
    "printer.paper_out": ("Printer out of paper - load paper", "打印机缺纸，请装纸"),
    "printer.cover_open": ("Printer cover open - close it", "打印机盖未关，请合上"),
    "printer.error": ("Printer error - switch it off and on", "打印机故障，请重启打印机"),
    "printer.offline": ("Printer offline", "打印机离线"),
    "printer.no_answer": ("Printer not responding - check power and cable", "打印机无响应，请检查电源和连线"),
    "printer.garbled": ("Printer answers garbage - check the baud rate", "打印机应答异常，请检查波特率"),
    "ok.pinpad": ("{scheme} key, {left} PINs left", "{scheme} 密钥，剩余 {left} 次"),
}
