"""One function per state that turns the session into a ``Screen`` (view model). No I/O, no UI library.

>>> render_login(Session()).title
'Log in / 登录'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from flows.money import format_money
from flows.ports import BatchTotals, Plan, SimInfo, TxnRecord
from flows.pricing import CHANNEL_LABELS, Quote
from flows.settlement import SettlementResult
from flows.sim_number import group_digits
from flows.topup import TopupOutcome
from flows.void import VoidResult
from terminal.machine import State
from terminal.screens import MenuItem, Screen, t
from terminal.users import User

__all__ = ["Session", "render", "plan_label"]

NAV = "ENTER confirm / 确认 · CANCEL back / 返回 · CLEAR delete / 删除"


@dataclass
class Session:
    """Everything the screens show; owned by the terminal app thread."""

    user: User | None = None
    login_id: str = ""
    login_pw: str = ""
    login_field: str = "id"
    entry: str = ""
    warning_shown: bool = False
    sim: SimInfo | None = None
    sim_after: SimInfo | None = None
    plans: list[Plan] = field(default_factory=list)
    quote: Quote | None = None
    outcome: TopupOutcome | None = None
    error: str | None = None
    notice: tuple[str, ...] = ()
    progress: str = ""
    qr_payload: str | None = None
    wallet_busy: bool = False  # a code was sent: the scan screen's F1 and CANCEL no longer start over
    limits_line: str = ""
    duplicate: tuple[str, ...] = ()
    settle_totals: BatchTotals | None = None
    settlement: SettlementResult | None = None
    void_list: list[TxnRecord] = field(default_factory=list)
    void_pick: TxnRecord | None = None
    void_result: VoidResult | None = None
    open_items: list[TxnRecord] = field(default_factory=list)

    def reset_sale(self) -> None:
        self.entry, self.warning_shown, self.sim, self.sim_after, self.plans = "", False, None, None, []
        self.quote, self.outcome, self.error, self.progress = None, None, None, ""
        self.qr_payload, self.wallet_busy, self.limits_line = None, False, ""
        self.duplicate = ()


def plan_label(plan: Plan) -> str:
    allowance = [f"{plan.data_mb // 1024} GB" if plan.data_mb >= 1024 else f"{plan.data_mb} MB"] \
        if plan.data_mb else []
    allowance += [f"{plan.sms} SMS"] if plan.sms else []
    allowance += [f"{plan.voice_min} min"] if plan.voice_min else []
    period = f" · {plan.period_months} mo" if plan.period_months else ""
    price = format_money(plan.payable_minor)
    if plan.promo_price_minor is not None:
        price = f"{price} (was {format_money(plan.price_minor)})"
    promo = f" ★ {plan.promotion}" if plan.promotion else ""
    what = f" · {'/'.join(allowance)}" if allowance else ""
    return f"{plan.name} {plan.name_zh}{period}{what} · {price}{promo}"


def render_boot(s: Session) -> Screen:
    return Screen(State.BOOT.value, t("Starting", "启动中"), ("Self-test and recovery… / 自检与恢复…", *s.notice),
                  busy=True)


def render_out_of_service(s: Session) -> Screen:
    return Screen(State.OUT_OF_SERVICE.value, t("Out of service", "暂停服务"), s.notice, error=s.error,
                  hint="ENTER retry self-test / 重新自检")


def render_login(s: Session) -> Screen:
    typing_pw = s.login_field == "pw"
    lines = (f"{t('User id', '工号')}: {s.login_id}{'' if typing_pw else '_'}",
             f"{t('Password', '密码')}: {'*' * len(s.login_pw)}{'_' if typing_pw else ''}", *s.notice)
    return Screen(State.LOGIN.value, t("Log in", "登录"), lines, error=s.error,
                  hint="ENTER next / 下一步 · CLEAR delete / 删除 · CANCEL clear / 清除")


def render_home(s: Session) -> Screen:
    name = s.user.name if s.user else ""
    supervisor = (MenuItem("6", t("Open items (supervisor)", "待处理交易（主管）")),
                  MenuItem("7", t("Void a payment (supervisor)", "撤销交易（主管）")),
                  MenuItem("8", t("Settlement (supervisor)", "结算（主管）"))) \
        if s.user and s.user.role == "supervisor" else ()
    return Screen(State.HOME.value, t("Home", "主页"), (f"{t('Cashier', '收银员')}: {name}", *s.notice),
                  menu=(MenuItem("1", t("Top up a SIM", "物联网卡充值")), *supervisor,
                        MenuItem("9", t("Log out", "退出"))),
                  error=s.error, hint="CANCEL log out / 退出")


def render_sim_entry(s: Session) -> Screen:
    return Screen(State.SIM_ENTRY.value, t("SIM number", "SIM 卡号"),
                  ("ICCID (19–20 digits) or mobile number (11/13) / ICCID 或号码",), entry=group_digits(s.entry),
                  error=s.error, hint=NAV)


def render_sim_lookup(s: Session) -> Screen:
    return Screen(State.SIM_LOOKUP.value, t("Looking up SIM", "查询 SIM 卡"), (group_digits(s.entry),),
                  busy=True, hint="CANCEL back / 返回")


def _sim_lines(sim: SimInfo) -> tuple[str, ...]:
    return (f"ICCID  {group_digits(sim.iccid)}", f"MSISDN {group_digits(sim.msisdn)}",
            f"{t('Status', '状态')}: {sim.status.upper()}", f"{t('Plan', '套餐')}: {sim.plan_name}",
            f"{t('Balance', '余额')}: {format_money(sim.balance_minor)}",
            f"{t('Data left', '剩余流量')}: {sim.data_left_mb} MB", f"{t('Expires', '到期')}: {sim.expiry}")


def render_sim_details(s: Session) -> Screen:
    if s.sim is None:
        return _no_sim(State.SIM_DETAILS)
    error = s.error or (None if s.plans else "No plans available for this SIM / 该卡暂无可购套餐")
    return Screen(State.SIM_DETAILS.value, t("SIM details", "SIM 卡信息"), _sim_lines(s.sim), error=error,
                  hint="ENTER choose plan / 选择套餐 · CANCEL back / 返回")


def render_plan_select(s: Session) -> Screen:
    menu = tuple(MenuItem(str(i + 1), plan_label(p)) for i, p in enumerate(s.plans[:9]))
    return Screen(State.PLAN_SELECT.value, t("Choose a plan", "选择套餐"), (), menu=menu, error=s.error,
                  hint="1-9 choose / 选择 · CANCEL back / 返回")


def render_channel_select(s: Session) -> Screen:
    menu = tuple(MenuItem(str(i + 1), label) for i, label in enumerate(CHANNEL_LABELS.values()))
    return Screen(State.CHANNEL_SELECT.value, t("Payment method", "支付方式"), (), menu=menu, error=s.error,
                  hint=f"1-{len(menu)} choose / 选择 · CANCEL back / 返回")


def render_confirm(s: Session) -> Screen:
    if s.sim is None or s.quote is None:
        return _no_sim(State.CONFIRM)
    q = s.quote
    lines = (f"SIM    {group_digits(s.sim.iccid)}", f"MSISDN {group_digits(s.sim.msisdn)}",
             f"{t('Plan', '套餐')}: {q.plan.name} {q.plan.name_zh}",
             f"{t('Amount', '金额')}: {format_money(q.amount_minor)}",
             f"{t('Fee', '手续费')}: {format_money(q.fee_minor)}",
             f"{t('TOTAL', '合计')}: {format_money(q.total_minor)}",
             f"{t('Pay by', '支付')}: {CHANNEL_LABELS.get(q.channel, q.channel)}",
             *((s.limits_line,) if s.limits_line else ()))
    return Screen(State.CONFIRM.value, t("Confirm", "确认"), lines, error=s.error,
                  hint="ENTER pay / 付款 · CANCEL back / 返回")


def _total(s: Session) -> str:
    return format_money(s.quote.total_minor) if s.quote else ""


def render_insert_card(s: Session) -> Screen:
    return Screen(State.INSERT_CARD.value, t("Insert or swipe card", "请插卡或刷卡"),
                  (f"{t('TOTAL', '合计')}: {_total(s)}",), error=s.error, hint="CANCEL cancel / 取消")


def render_card_reading(s: Session) -> Screen:
    return Screen(State.CARD_READING.value, t("Reading card", "读卡中"),
                  ("Do not remove the card / 请勿拔卡",), busy=True, error=s.error, hint="CANCEL cancel / 取消")


def render_pin_entry(s: Session) -> Screen:
    return Screen(State.PIN_ENTRY.value, t("Enter PIN on the PIN pad", "请在密码键盘输入密码"),
                  (f"{t('TOTAL', '合计')}: {_total(s)}",), error=s.error, hint="CANCEL cancel / 取消")


def render_processing(s: Session) -> Screen:
    return Screen(State.PROCESSING.value, t("Processing", "处理中"),
                  (s.progress or "Contacting the bank / 正在连接银行", "Do not remove the card / 请勿拔卡"),
                  busy=True, error=s.error)


def render_result(s: Session) -> Screen:
    o = s.outcome
    if o is None:
        return Screen(State.RESULT.value, t("Result", "结果"), ())
    title = {"completed": t("Top-up done", "充值成功"), "pending": t("Paid — top-up pending", "已付款，充值处理中"),
             "reversed": t("Payment reversed", "已冲正"), "reversal_pending": t("Reversal pending", "冲正处理中"),
             "declined": t("Declined", "交易拒绝"), "cancelled": t("Cancelled", "已取消")}.get(
        o.status, t("Not completed", "交易未完成"))
    lines = [o.message]
    if o.payment and o.payment.masked_pan:
        lines.append(f"{t('Card', '卡号')}: {o.payment.masked_pan}")
    if o.status in ("completed", "pending", "reversed", "reversal_pending"):
        lines.append(f"{t('Order', '订单号')}: {o.order_id}")
    printable = o.status in ("completed", "pending", "reversed", "reversal_pending")
    hint = "ENTER print receipt / 打印凭条" if printable else "ENTER home / 返回主页"
    return Screen(State.RESULT.value, title, tuple(lines), error=s.error, hint=hint,
                  extra={"status": o.status})


def render_receipt(s: Session) -> Screen:
    return Screen(State.RECEIPT.value, t("Printing receipt", "打印凭条"), ("Take the receipt / 请取凭条",),
                  busy=s.error is None, error=s.error,
                  hint="ENTER reprint / 重新打印 · CANCEL skip / 跳过" if s.error else "")


def render_balance(s: Session) -> Screen:
    o = s.outcome
    lines: list[str] = []
    if s.sim_after is not None:
        lines.extend(_sim_lines(s.sim_after))
    elif s.sim:
        lines.append(f"ICCID {group_digits(s.sim.iccid)}")
    if s.sim_after is None and o is not None and o.balance_minor is not None:
        lines.append(f"{t('New balance', '新余额')}: {format_money(o.balance_minor)}")
    elif s.sim_after is None:
        lines.append("Balance updates when the top-up is applied / 充值完成后更新余额")
    return Screen(State.BALANCE.value, t("New balance", "新余额"), tuple(lines), hint="ENTER home / 返回主页")


def render_scan_code(s: Session) -> Screen:
    channel = CHANNEL_LABELS.get(s.quote.channel, "") if s.quote else ""
    return Screen(State.SCAN_CODE.value, t("Scan the customer's payment code", "请扫描顾客付款码"),
                  (f"{t('TOTAL', '合计')}: {_total(s)}", channel, s.progress), error=s.error,
                  hint="F1 show QR to the customer / 展示收款码 · CANCEL cancel / 取消")


def render_show_qr(s: Session) -> Screen:
    return Screen(State.SHOW_QR.value, t("Customer: scan this QR and pay", "请顾客扫码支付"),
                  (f"{t('TOTAL', '合计')}: {_total(s)}", s.progress), qr=s.qr_payload, error=s.error,
                  hint="CANCEL cancel / 取消")


def render_wallet_waiting(s: Session) -> Screen:
    return Screen(State.WALLET_WAITING.value, t("Waiting for the wallet", "等待支付结果"),
                  (f"{t('TOTAL', '合计')}: {_total(s)}", s.progress or "Sending / 正在提交"), busy=True,
                  error=s.error, hint="" if s.wallet_busy else "CANCEL cancel / 取消")


def render_duplicate_warning(s: Session) -> Screen:
    return Screen(State.DUPLICATE_WARNING.value, t("Possible duplicate", "疑似重复交易"),
                  (*s.duplicate, f"{t('TOTAL', '合计')}: {_total(s)}"), error=s.error,
                  hint="F1 pay again / 再次付款 · CANCEL back / 返回")


def _totals_lines(totals: BatchTotals | None) -> tuple[str, ...]:
    if totals is None:
        return ()
    return (f"{t('Batch', '批次')}: {totals.batch:06d}",
            f"{t('Sales', '消费')}: {totals.sale_count} · {format_money(totals.sale_minor)}",
            f"{t('Voids', '撤销')}: {totals.void_count} · {format_money(totals.void_minor)}")


def render_settlement(s: Session) -> Screen:
    return Screen(State.SETTLEMENT.value, t("Settlement", "结算"), _totals_lines(s.settle_totals), error=s.error,
                  hint="ENTER close the batch / 结算 · CANCEL back / 返回")


def render_settling(s: Session) -> Screen:
    return Screen(State.SETTLING.value, t("Settling", "结算中"), ("Closing the batch with the bank / 正在与银行对账",),
                  busy=True, error=s.error)


def render_settled(s: Session) -> Screen:
    r = s.settlement
    lines = (r.message, *_totals_lines(r.totals)) if r else ()
    return Screen(State.SETTLED.value, t("Settlement", "结算"), lines, error=s.error, hint="ENTER home / 返回主页",
                  extra={"status": r.status if r else ""})


def _void_label(r: TxnRecord) -> str:
    return f"{r.created_at[11:16]} SIM …{r.iccid[-4:]} {format_money(r.total_minor)} {r.masked_pan or ''}".rstrip()


def render_void_select(s: Session) -> Screen:
    menu = tuple(MenuItem(str(i + 1), _void_label(r)) for i, r in enumerate(s.void_list))
    lines = () if menu else ("No completed payment in this batch / 本批次无可撤销交易",)
    return Screen(State.VOID_SELECT.value, t("Void which payment?", "撤销哪笔交易？"), lines, menu=menu,
                  error=s.error, hint="1-9 choose / 选择 · CANCEL home / 返回")


def render_void_confirm(s: Session) -> Screen:
    r = s.void_pick
    lines = () if r is None else (
        _void_label(r), f"{t('Order', '订单号')}: {r.order_id}", f"STAN {r.stan or 0:06d} · AUTH {r.auth_code or '-'}",
        "The money goes back to the card; the top-up stays on the SIM / 退款至卡，充值不退回")
    return Screen(State.VOID_CONFIRM.value, t("Confirm void", "确认撤销"), lines, error=s.error,
                  hint="F1 void / 撤销 · CANCEL back / 返回")


def render_voiding(s: Session) -> Screen:
    return Screen(State.VOIDING.value, t("Voiding", "撤销中"), ("Asking the bank / 正在连接银行",), busy=True)


def render_void_done(s: Session) -> Screen:
    r = s.void_result
    return Screen(State.VOID_DONE.value, t("Void", "撤销"), (r.message,) if r else (), error=s.error,
                  hint="ENTER home / 返回主页", extra={"status": r.status if r else ""})


def render_open_items(s: Session) -> Screen:
    lines = tuple(f"{r.created_at[11:16]} {r.state} SIM …{r.iccid[-4:]} {format_money(r.total_minor)} "
                  f"{r.order_id}" for r in s.open_items[:9]) or ("Nothing open / 无待处理交易",)
    more = (f"… {len(s.open_items) - 9} more / 更多",) if len(s.open_items) > 9 else ()
    return Screen(State.OPEN_ITEMS.value, t("Open items", "待处理交易"), (*lines, *more, *s.notice),
                  error=s.error, hint="ENTER follow up now / 立即处理 · CANCEL home / 返回")


def _no_sim(state: State) -> Screen:
    return Screen(state.value, t("Not available", "不可用"), error="No SIM selected / 未选择 SIM 卡",
                  hint="CANCEL back / 返回")


RENDERERS: Mapping[State, Callable[[Session], Screen]] = {
    State.BOOT: render_boot, State.OUT_OF_SERVICE: render_out_of_service, State.LOGIN: render_login,
    State.HOME: render_home, State.SIM_ENTRY: render_sim_entry, State.SIM_LOOKUP: render_sim_lookup,
    State.SIM_DETAILS: render_sim_details, State.PLAN_SELECT: render_plan_select,
    State.CHANNEL_SELECT: render_channel_select, State.CONFIRM: render_confirm,
    State.INSERT_CARD: render_insert_card, State.CARD_READING: render_card_reading,
    State.PIN_ENTRY: render_pin_entry, State.PROCESSING: render_processing, State.RESULT: render_result,
    State.RECEIPT: render_receipt, State.BALANCE: render_balance, State.SCAN_CODE: render_scan_code,
    State.SHOW_QR: render_show_qr, State.WALLET_WAITING: render_wallet_waiting,
    State.DUPLICATE_WARNING: render_duplicate_warning, State.SETTLEMENT: render_settlement,
    State.SETTLING: render_settling, State.SETTLED: render_settled, State.VOID_SELECT: render_void_select,
    State.VOID_CONFIRM: render_void_confirm, State.VOIDING: render_voiding, State.VOID_DONE: render_void_done,
    State.OPEN_ITEMS: render_open_items,
}


def render(state: State, session: Session) -> Screen:
    return RENDERERS[state](session)
