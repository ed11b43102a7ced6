"""One function per state that turns the session into a ``Screen`` (view model). No I/O, no UI library.

Every text comes from the message catalogue (``flows.messages``) in the session's language.

>>> render_login(Session()).title
'Log in / 登录'
>>> render_login(Session(lang="zh")).title
'登录'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flows.for_people import pair
from flows.messages import CATALOGUE, Msg, say, t
from flows.money import format_money
from flows.ports import BatchTotals, Plan, SimInfo, TxnRecord
from flows.pricing import TAP_CHANNEL, FeeSchedule, Quote, channel_label, offered_channels
from flows.sim_number import group_digits, group_msisdn
from terminal.machine import State
from terminal.office_state import OfficeState
from terminal.roles import usable_menu
from terminal.screens import MenuItem, Screen
from terminal.users import User

if TYPE_CHECKING:  # annotations only: the payment, void and settlement flows load when their screens first run
    from flows.settlement import SettlementResult
    from flows.topup_order import TopupOutcome
    from flows.void import VoidResult

__all__ = ["Session", "render", "plan_label", "sim_lines", "RENDERERS"]

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
    lang: str = "both"  # the cashier's screen language (flows.messages.LANGS)
    receipt_lang: str = ""  # this sale's receipt language; empty = the screen language
    purpose: str = "topup"  # "topup" or "balance": what the SIM entry is for
    confirm_digits: str = ""  # the last four digits re-keyed on the confirm screen
    health: tuple[Any, ...] = ()  # faults of the last background check (terminal.diagnostics.Check)
    office: OfficeState = field(default_factory=OfficeState)
    qr_payload: str | None = None
    wallet_busy: bool = False  # a code was sent: the scan screen's F1 and CANCEL no longer start over
    limits_line: str = ""
    duplicate: tuple[str, ...] = ()
    duplicate_rows: str = ""  # damaged journal rows of this SIM the duplicate guard could not read ("txn 7")
    settle_totals: BatchTotals | None = None
    settle_channels: tuple[Any, ...] = ()  # flows.reconcile.ChannelTotals of the open batch, card and wallets
    settlement: SettlementResult | None = None
    void_list: list[TxnRecord] = field(default_factory=list)
    void_pick: TxnRecord | None = None
    void_refusal: str = ""  # the carrier's reason for keeping the top-up: F1 on the confirm screen is "anyway"
    void_batch: int = 0  # the open batch when the void list was made: a pick of an older batch is a refund
    void_page: int = 0  # which 9 of ``void_list`` the void/refund list shows (F1 older, F2 newer)
    void_result: VoidResult | None = None
    open_items: list[TxnRecord] = field(default_factory=list)
    open_pick: int | None = None  # the txn id picked on open items (1-9): what F2 refunds
    hint_code: Any = None  # the flows.card_payment.Step whose hint ("insert the chip" …) the error line shows
    topping_up: bool = False  # the wallet payment is applying the top-up: CANCEL is refused
    remove_card: bool = False  # the card transaction is over and the card was still in the slot
    fees: FeeSchedule | None = None  # the configured fees and limits (set by the core): the channel list shows them
    logout_asked: bool = False  # 9 on home asked "log out?": ENTER logs out, any other key stays
    journal_hold: bool = False  # out of service because the journal was found damaged (F4: technician recovery)
    channels: tuple[str, ...] = offered_channels(False)  # the channel menu; "tap" where the reader has contactless
    card_waiting: bool = False  # the reader waits for the card (Step.WAIT_CARD / TAP_CARD): the spinner stops

    def keep_for_retry(self) -> None:
        """Nothing was charged: forget the payment, keep SIM, plans, plan and amount (and the read-back digits)."""
        self.outcome, self.error, self.progress, self.receipt_lang = None, None, "", ""
        self.qr_payload, self.wallet_busy, self.limits_line = None, False, ""
        self.duplicate, self.hint_code, self.topping_up = (), None, False
        self.remove_card = False

    def reset_sale(self) -> None:
        self.entry, self.warning_shown, self.sim, self.sim_after, self.plans = "", False, None, None, []
        self.quote, self.outcome, self.error, self.progress = None, None, None, ""
        self.receipt_lang, self.purpose, self.confirm_digits = "", "topup", ""
        self.qr_payload, self.wallet_busy, self.limits_line = None, False, ""
        self.duplicate, self.hint_code, self.topping_up = (), None, False
        self.remove_card = False


def _t(s: Session, key: str, **args: Any) -> str:
    return t(key, s.lang, **args)


def _size(mb: int) -> str:
    return f"{mb // 1024} GB" if mb >= 1024 and mb % 1024 == 0 else f"{mb} MB"


def plan_name(plan: Plan, lang: str = "both") -> str:
    return {"en": plan.name, "zh": plan.name_zh}.get(lang, f"{plan.name} {plan.name_zh}")


def status_text(status: str, lang: str = "both") -> str:
    """A SIM status as the carrier names it, in the reader's language (an unknown one in capitals)."""
    key = f"simstatus.{status}"
    return t(key, lang) if key in CATALOGUE else status.upper()


def plan_label(plan: Plan, lang: str = "both") -> str:
    """One menu line: name, period, allowances, price after promotion (and the list price), the promotion."""
    allowance = [_size(plan.data_mb)] if plan.data_mb else []
    allowance += [t("label.sms", lang, n=plan.sms)] if plan.sms else []
    allowance += [t("label.minutes", lang, n=plan.voice_min)] if plan.voice_min else []
    bonus = [t("label.bonus_data", lang, data=_size(plan.bonus_data_mb))] if plan.bonus_data_mb else []
    bonus += [t("label.bonus_credit", lang, amount=format_money(plan.bonus_credit_minor))] \
        if plan.bonus_credit_minor else []
    period = f" · {t('label.period', lang, months=plan.period_months)}" if plan.period_months else ""
    price = format_money(plan.payable_minor)
    if plan.promo_price_minor is not None:
        price = f"{price} ({t('label.was', lang, price=format_money(plan.price_minor))})"
    promo = f" ★ {say(pair(plan.promotion), lang)}" if plan.promotion else ""
    what = f" · {'/'.join(allowance + bonus)}" if allowance or bonus else ""
    name = plan_name(plan, lang)
    return f"{name}{period}{what} · {price}{promo}"


def render_boot(s: Session) -> Screen:
    return Screen(State.BOOT.value, _t(s, "boot.title"), (_t(s, "boot.body"), *s.notice), busy=True)


_RECOVERY_PROMPTS = {"tech_id": "journal.tech_id", "tech_pw": "journal.tech_pw", "tech_ok": "journal.confirm"}


def render_out_of_service(s: Session) -> Screen:
    """The boot check's findings; during a technician's journal recovery (F4) its prompt and what is typed."""
    prompt = _RECOVERY_PROMPTS.get(s.login_field)
    if prompt is None:
        return Screen(State.OUT_OF_SERVICE.value, _t(s, "oos.title"), s.notice, error=s.error,
                      hint=_t(s, "oos.hint_recovery" if s.journal_hold else "oos.hint"))
    entry = s.login_id if s.login_field == "tech_id" else "*" * len(s.login_pw) if s.login_field == "tech_pw" else None
    return Screen(State.OUT_OF_SERVICE.value, _t(s, "oos.title"), (*s.notice, _t(s, prompt)), entry=entry,
                  error=s.error, hint=_t(s, "oos.hint_recovery"))


def render_login(s: Session) -> Screen:
    typing_pw = s.login_field == "pw"
    lines = (f"{_t(s, 'label.user_id')}: {s.login_id}{'' if typing_pw else '_'}",
             f"{_t(s, 'label.password')}: {'*' * len(s.login_pw)}{'_' if typing_pw else ''}", *s.notice)
    return Screen(State.LOGIN.value, _t(s, "login.title"), lines, error=s.error, hint=_t(s, "login.hint"))


def render_home(s: Session) -> Screen:
    role = s.user.role if s.user else ""
    name = say(pair(s.user.name), s.lang) if s.user else ""
    # only what this role may use is listed (issue 14 item 6); a hidden item's key still says who may
    language = Msg(f"lang.{s.lang}")  # the language entry's {name}; the other labels have no placeholder
    menu = tuple(MenuItem(key, _t(s, label, name=language)) for key, _action, label in usable_menu(role))
    lines = [f"{_t(s, 'label.cashier')}: {name} ({_t(s, f'role.{role}') if role else ''})", *s.notice]
    if s.logout_asked:
        lines.append(_t(s, "home.logout_ask"))
    if s.health:
        lines.append(_t(s, "home.health", count=len(s.health)))
        lines.extend(f"  {check.text(s.lang)}" for check in s.health)
        lines.append(s.office.info or _t(s, "home.recheck"))
    return Screen(State.HOME.value, _t(s, "home.title"), tuple(lines),
                  menu=(*menu, MenuItem("9", _t(s, "home.logout"))), error=s.error, hint=_t(s, "home.hint_choose"),
                  extra={"health": str(len(s.health))})


def render_sim_entry(s: Session) -> Screen:
    title = _t(s, "sim.balance_title") if s.purpose == "balance" else _t(s, "sim.title")
    return Screen(State.SIM_ENTRY.value, title, (_t(s, "sim.help"),), entry=group_digits(s.entry),
                  error=s.error, hint=_t(s, "nav.edit"))


def render_sim_lookup(s: Session) -> Screen:
    return Screen(State.SIM_LOOKUP.value, _t(s, "sim.lookup_title"), (group_digits(s.entry),),
                  busy=True, hint=_t(s, "nav.back"))


def sim_lines(sim: SimInfo, lang: str = "both") -> tuple[str, ...]:
    """The carrier's view of one SIM: plan, data used and left, SMS/voice left, expiry, balance."""
    lines = [f"ICCID  {group_digits(sim.iccid)}", f"MSISDN {group_msisdn(sim.msisdn)}",
             f"{t('label.status', lang)}: {status_text(sim.status, lang)}", f"{t('label.plan', lang)}: {sim.plan_name}",
             f"{t('label.balance', lang)}: {format_money(sim.balance_minor)}",
             f"{t('label.data_left', lang)}: {sim.data_left_mb} MB"]
    if sim.data_used_mb:
        lines.append(f"{t('label.data_used', lang)}: {sim.data_used_mb} MB")
    if sim.sms_left or sim.voice_left_min:
        lines.append(f"{t('label.sms_left', lang)}: {sim.sms_left} · {t('label.voice_left', lang)}: "
                     f"{t('label.minutes', lang, n=sim.voice_left_min)}")
    lines.append(f"{t('label.expires', lang)}: {sim.expiry}")
    return tuple(lines)


def render_sim_details(s: Session) -> Screen:
    if s.sim is None:
        return _no_sim(s, State.SIM_DETAILS)
    error = s.error or (None if s.plans else _t(s, "sim.no_plans"))
    return Screen(State.SIM_DETAILS.value, _t(s, "sim.details_title"), sim_lines(s.sim, s.lang), error=error,
                  hint=_t(s, "sim.details_hint"))


def render_plan_select(s: Session) -> Screen:
    menu = tuple(MenuItem(str(i + 1), plan_label(p, s.lang)) for i, p in enumerate(s.plans[:9]))
    return Screen(State.PLAN_SELECT.value, _t(s, "plans.title"), (),
                  menu=(*menu, MenuItem("0", _t(s, "advice.title"))), error=s.error, hint=_t(s, "plans.hint"))


def limits_parts(fees: FeeSchedule, channel: str) -> tuple[Msg, ...]:
    lim = fees.limits_for(channel)
    return tuple(Msg(key, {"money": format_money(v)}) for key, v in (
        ("wallet.limit_min", lim.min_minor), ("wallet.limit_max", lim.max_minor),
        ("wallet.limit_daily", lim.daily_minor)) if v)


def channel_line(s: Session, channel: str) -> str:
    """One channel on the list: its name, fee rule, what this plan costs on it, and its limits."""
    if s.fees is None or s.quote is None:
        return channel_label(channel, s.lang)
    amount = s.quote.plan.payable_minor
    rule = s.fees.describe(channel)
    parts = limits_parts(s.fees, channel)
    args = {"fee": rule or Msg("fee.free"), "total": format_money(amount + s.fees.fee(channel, amount))}
    details = _t(s, "channel.line_limits", limits=parts, **args) if parts else _t(s, "channel.line", **args)
    return f"{channel_label(channel, s.lang)} · {details}"  # the name first, as on every other screen


def render_channel_select(s: Session) -> Screen:
    menu = tuple(MenuItem(str(i + 1), channel_line(s, c)) for i, c in enumerate(s.channels))
    kept = () if s.sim is None or s.quote is None else (
        f"SIM …{s.sim.iccid[-4:]} · {plan_label(s.quote.plan, s.lang)}",)
    return Screen(State.CHANNEL_SELECT.value, _t(s, "channel.title"), kept, menu=menu, error=s.error,
                  hint=_t(s, "channel.hint", n=len(menu)))


def keyed_kind(s: Session) -> str:
    """What the cashier keyed: the last four digits to re-key are of that number."""
    return "msisdn" if s.sim is not None and s.entry == s.sim.msisdn else "iccid"


def render_confirm(s: Session) -> Screen:
    if s.sim is None or s.quote is None:
        return _no_sim(s, State.CONFIRM)
    q = s.quote
    lines = (f"SIM    {group_digits(s.sim.iccid)}", f"MSISDN {group_msisdn(s.sim.msisdn)}",
             f"{_t(s, 'label.plan')}: {plan_name(q.plan, s.lang)}",
             f"{_t(s, 'label.amount')}: {format_money(q.amount_minor)}",
             f"{_t(s, 'label.fee')}: {format_money(q.fee_minor)}",
             f"{_t(s, 'label.total')}: {format_money(q.total_minor)}",
             f"{_t(s, 'label.pay_by')}: {channel_label(q.channel, s.lang)}",
             *((s.limits_line,) if s.limits_line else ()),
             _t(s, "confirm.rekey", what=Msg(f"confirm.{keyed_kind(s)}")))
    return Screen(State.CONFIRM.value, _t(s, "confirm.title"), lines, entry=s.confirm_digits, error=s.error,
                  hint=_t(s, "confirm.hint"))


def _total(s: Session) -> str:
    return format_money(s.quote.total_minor) if s.quote else ""


def render_insert_card(s: Session) -> Screen:
    from flows.card_payment import Step  # here, not at module level: the boot path imports no card flow

    tap = s.quote is not None and s.quote.channel == TAP_CHANNEL and s.hint_code != Step.TAP_INSERT
    limits = (s.limits_line,) if s.quote is not None and s.quote.channel == TAP_CHANNEL and s.limits_line else ()
    return Screen(State.INSERT_CARD.value, _t(s, "tap.title" if tap else "pay.insert_title"),
                  (f"{_t(s, 'label.total')}: {_total(s)}", *limits),
                  error=s.error, hint=_t(s, "nav.cancel"), busy=not s.card_waiting)


def render_card_reading(s: Session) -> Screen:
    return Screen(State.CARD_READING.value, _t(s, "pay.reading_title"), (_t(s, "pay.keep_card"),), busy=True,
                  error=s.error, hint=_t(s, "nav.cancel"))


def render_pin_entry(s: Session) -> Screen:
    return Screen(State.PIN_ENTRY.value, _t(s, "pay.pin_title"), (f"{_t(s, 'label.total')}: {_total(s)}",),
                  error=s.error, hint=_t(s, "nav.cancel"))


def render_processing(s: Session) -> Screen:
    card = _t(s, "slot.remove_card") if s.remove_card else _t(s, "pay.keep_card")
    return Screen(State.PROCESSING.value, _t(s, "pay.processing_title"),
                  (s.progress or _t(s, "pay.contacting"), card), busy=True, error=s.error)


PRINTABLE = ("completed", "pending", "reversed", "reversal_pending")
RETRIABLE = ("declined", "cancelled", "failed")  # nothing charged: another channel may be tried at once


def retriable(s: Session) -> bool:
    return s.outcome is not None and s.outcome.status in RETRIABLE and s.sim is not None and s.quote is not None


def render_result(s: Session) -> Screen:
    o = s.outcome
    if o is None:  # never blank: the outcome is missing, say so and what to do
        return Screen(State.RESULT.value, _t(s, "result.title"), (_t(s, "result.no_outcome", error="-"),),
                      error=s.error, hint=_t(s, "nav.home"))
    known = ("completed", "pending", "reversed", "reversal_pending", "declined", "cancelled")
    title = _t(s, f"result.{o.status}" if o.status in known else "result.other")
    # one success line: the title says "Top-up done"; the body says what was paid and the fee in it
    lines = [say(o.message, s.lang)] if o.status != "completed" or s.quote is None else [
        _t(s, "result.paid", total=format_money(s.quote.total_minor), amount=format_money(s.quote.amount_minor),
           fee=format_money(s.quote.fee_minor))]
    if s.remove_card:
        lines.insert(0, _t(s, "slot.remove_card"))
    if o.payment and o.payment.masked_pan:
        lines.append(f"{_t(s, 'label.card')}: {o.payment.masked_pan}")
    if o.status in PRINTABLE:
        lines.append(f"{_t(s, 'label.order')}: {o.order_id}")
    hint = _t(s, "result.hint_print", language=Msg(f"lang.{s.receipt_lang or s.lang}")) if o.status in PRINTABLE \
        else _t(s, "result.hint_retry") if retriable(s) else _t(s, "nav.home")
    return Screen(State.RESULT.value, title, tuple(lines), error=s.error, hint=hint, extra={"status": o.status})


def render_receipt(s: Session) -> Screen:
    return Screen(State.RECEIPT.value, _t(s, "receipt.title"), (_t(s, "receipt.take"),),
                  busy=s.error is None, error=s.error, hint=_t(s, "receipt.hint_retry") if s.error else "")


def render_balance(s: Session) -> Screen:
    """After a top-up: the SIM as the carrier now sees it. From the home menu: the balance query (no payment)."""
    o = s.outcome
    lines: list[str] = []
    if s.sim_after is not None:
        lines.extend(sim_lines(s.sim_after, s.lang))
    elif s.sim:
        lines.append(f"ICCID {group_digits(s.sim.iccid)}")
    if s.sim_after is None and o is not None and o.balance_minor is not None:
        lines.append(f"{_t(s, 'label.new_balance')}: {format_money(o.balance_minor)}")
    elif s.sim_after is None:
        lines.append(_t(s, "status.updates_later"))
    title = _t(s, "label.new_balance") if o is not None else _t(s, "status.title")
    return Screen(State.BALANCE.value, title, tuple(lines), error=s.error, hint=_t(s, "nav.home"))


def render_scan_code(s: Session) -> Screen:
    channel = channel_label(s.quote.channel, s.lang) if s.quote else ""
    return Screen(State.SCAN_CODE.value, _t(s, "wallet.scan_title"),
                  (f"{_t(s, 'label.total')}: {_total(s)}", channel, s.progress), error=s.error,
                  hint=_t(s, "wallet.scan_hint"))


def render_show_qr(s: Session) -> Screen:
    return Screen(State.SHOW_QR.value, _t(s, "wallet.qr_title"),
                  (f"{_t(s, 'label.total')}: {_total(s)}", s.progress), qr=s.qr_payload, error=s.error,
                  hint=_t(s, "nav.cancel"))


def render_wallet_waiting(s: Session) -> Screen:
    return Screen(State.WALLET_WAITING.value, _t(s, "wallet.waiting_title"),
                  (f"{_t(s, 'label.total')}: {_total(s)}", s.progress or _t(s, "wallet.sending")), busy=True,
                  error=s.error, hint="" if s.wallet_busy else _t(s, "nav.cancel"))


def render_duplicate_warning(s: Session) -> Screen:
    return Screen(State.DUPLICATE_WARNING.value, _t(s, "dup.title"),
                  (*s.duplicate, f"{_t(s, 'label.total')}: {_total(s)}"), error=s.error, hint=_t(s, "dup.hint"))


def _no_sim(s: Session, state: State) -> Screen:
    return Screen(state.value, _t(s, "none.title"), error=_t(s, "none.no_sim"), hint=_t(s, "nav.back"))


RENDERERS: dict[State, Callable[[Session], Screen]] = {
    State.BOOT: render_boot, State.OUT_OF_SERVICE: render_out_of_service, State.LOGIN: render_login,
    State.HOME: render_home, State.SIM_ENTRY: render_sim_entry, State.SIM_LOOKUP: render_sim_lookup,
    State.SIM_DETAILS: render_sim_details, State.PLAN_SELECT: render_plan_select,
    State.CHANNEL_SELECT: render_channel_select, State.CONFIRM: render_confirm,
    State.INSERT_CARD: render_insert_card, State.CARD_READING: render_card_reading,
    State.PIN_ENTRY: render_pin_entry, State.PROCESSING: render_processing, State.RESULT: render_result,
    State.RECEIPT: render_receipt, State.BALANCE: render_balance, State.SCAN_CODE: render_scan_code,
    State.SHOW_QR: render_show_qr, State.WALLET_WAITING: render_wallet_waiting,
    State.DUPLICATE_WARNING: render_duplicate_warning,
}


def render(state: State, session: Session) -> Screen:
    return RENDERERS[state](session)
