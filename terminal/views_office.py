"""View models of the cashier and supervisor screens: plan advice, history and reprint, shift summary, users,
audit log, diagnostics, own password. ``render`` covers every state (these and ``terminal.views``).

>>> from terminal.views import Session
>>> render(State.DIAGNOSTICS, Session(lang="en")).title
'Diagnostics'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flows.messages import CATALOGUE, Msg, say, state_label, t
from flows.money import format_money
from flows.pricing import CHANNEL_LABELS, channel_label
from flows.receipt import plan_name_in
from flows.sim_number import group_digits, group_msisdn
from terminal.firmware_screen import FIRMWARE_RENDERERS
from terminal.machine import State
from terminal.office_state import ADVICE_FIELDS, AUDIT_PAGE, HISTORY_FIELDS, PASSWORD_FIELDS
from terminal.screens import MenuItem, Screen
from terminal.settings_store import EDITABLE
from terminal.views import RENDERERS, Session
from terminal.views_day import DAY_RENDERERS

__all__ = ["render", "OFFICE_RENDERERS", "channel_numbers"]


def _t(s: Session, key: str, **args: Any) -> str:
    return t(key, s.lang, **args)


def channel_numbers() -> tuple[Msg, ...]:
    """``1=Chip card`` … for the history search by channel (a tuple: rendered in the screen's language)."""
    return tuple(Msg("history.channel_no", {"n": i, "channel": Msg(f"channel.{c}")})
                 for i, c in enumerate(CHANNEL_LABELS, 1))


def _fields(s: Session, keys: tuple[str, ...], values: list[str], current: int, secret: bool = False,
            **args: Any) -> list[str]:
    out = []
    for i, (key, value) in enumerate(zip(keys, values, strict=True)):
        shown = "*" * len(value) if secret else value
        out.append(f"{'>' if i == current else ' '} {_t(s, key, **args)}: {shown}{'_' if i == current else ''}")
    return out


def render_advice(s: Session) -> Screen:
    o = s.office
    lines = _fields(s, ADVICE_FIELDS, o.advice_values, o.advice_field if o.advice is None else -1)
    hint = _t(s, "advice.hint_input")
    if o.advice is False:
        lines.append(_t(s, "advice.none"))
    elif o.advice is not None:
        items = " + ".join(f"{n}× {p.name}" if s.lang == "en" else f"{n}× {p.name_zh}" if s.lang == "zh"
                           else f"{n}× {p.name} {p.name_zh}" for p, n in o.advice.items)
        lines.append(_t(s, "advice.buy", items=items))
        lines.append(f"{_t(s, 'label.total')}: {format_money(o.advice.total_minor)}")
        args = {k: format_money(v) if k == "saving" else v for k, v in o.advice.args.items()}
        lines.append(_t(s, o.advice.reason, **args))
        hint = _t(s, "advice.hint_result") if o.advice.single else _t(s, "advice.hint_combo")
    return Screen(State.ADVICE.value, _t(s, "advice.title"), tuple(lines), error=s.error, hint=hint,
                  extra={"reason": o.advice.reason if o.advice else ""})


def render_history(s: Session) -> Screen:
    o = s.office
    lines = _fields(s, HISTORY_FIELDS, o.history_values, o.history_field, channels=channel_numbers())
    if s.user is not None and s.user.role != "supervisor":
        lines.append(_t(s, "history.own_only"))
    return Screen(State.HISTORY.value, _t(s, "history.title"), tuple(lines), error=s.error,
                  hint=_t(s, "history.hint_yuan"))


def _txn_line(s: Session, rec: Any) -> str:
    return (f"{rec.created_at[5:16].replace('T', ' ')} …{rec.iccid[-4:]} {format_money(rec.total_minor)} "
            f"{channel_label(rec.channel, s.lang)} {say(state_label(rec.state), s.lang)}")


def render_history_list(s: Session) -> Screen:
    found = s.office.history_results
    menu = tuple(MenuItem(str(i + 1), _txn_line(s, rec)) for i, rec in enumerate(found[:9]))
    lines = [] if found else [_t(s, "history.none")]
    if len(found) > 9:
        lines.append(_t(s, "history.more"))
    return Screen(State.HISTORY_LIST.value, _t(s, "history.list_title", count=len(found)), tuple(lines),
                  menu=menu, error=s.error, hint=_t(s, "nav.choose"))


def render_history_detail(s: Session) -> Screen:
    o = s.office
    if not o.history_results:
        return Screen(State.HISTORY_DETAIL.value, _t(s, "history.none"), hint=_t(s, "nav.back"))
    rec = o.history_results[o.history_pick]
    lines = (f"{rec.created_at[:19].replace('T', ' ')} · {_t(s, 'label.cashier')} {rec.cashier_id}",
             f"SIM    {group_digits(rec.iccid)}", f"MSISDN {group_msisdn(rec.msisdn)}",
             f"{_t(s, 'label.plan')}: {plan_name_in(rec, s.lang)}",  # a Chinese screen: never the English name
             f"{_t(s, 'label.total')}: {format_money(rec.total_minor)} ({channel_label(rec.channel, s.lang)})",
             f"{_t(s, 'label.status')}: {say(state_label(rec.state), s.lang)}",
             f"{_t(s, 'label.order')}: {rec.order_id}",
             *([f"{_t(s, 'label.card')}: {rec.masked_pan}"] if rec.masked_pan else []),
             *([o.info] if o.info else []))
    return Screen(State.HISTORY_DETAIL.value, _t(s, "history.detail_title", txn=rec.txn_id), lines, error=s.error,
                  hint=_t(s, "history.detail_hint", language=Msg(f"lang.{o.detail_lang or s.lang}")))


def render_shift(s: Session) -> Screen:
    o = s.office
    lines = [_t(s, "shift.line", cashier=row.cashier_id, count=row.sales, total=format_money(row.sales_minor),
                reversed=row.reversed) for row in o.shift] or [_t(s, "shift.none")]
    if o.info:
        lines.append(o.info)
    return Screen(State.SHIFT.value, _t(s, "shift.title", day=o.shift_day), tuple(lines), error=s.error,
                  hint=_t(s, "shift.hint"))


def render_users(s: Session) -> Screen:
    o = s.office
    if o.adding:
        lines = [f"{_t(s, 'label.user_id')}: {o.add_id}{'_' if o.adding == 'id' else ''}"]
        if o.adding in ("role", "password"):
            lines.append(_t(s, "users.add_role") + (f" → {_t(s, f'role.{o.add_role}')}" if o.add_role else ""))
        if o.adding == "password":
            lines.append(f"{_t(s, 'label.password')}: {'*' * len(o.user_entry)}_")
        return Screen(State.USERS.value, _t(s, "users.add_title"), tuple(lines), error=s.error,
                      hint=_t(s, "users.add_hint"))
    menu = tuple(MenuItem(str(i + 1), _t(s, "users.row", user=u.user_id, role=Msg(f"role.{u.role}"),
                                          locked=Msg("users.locked_mark") if u.locked_until else ""))
                 for i, u in enumerate(o.users[:9]))
    return Screen(State.USERS.value, _t(s, "users.title"), tuple([o.info] if o.info else []), menu=menu,
                  error=s.error, hint=_t(s, "users.hint"))


def render_user_edit(s: Session) -> Screen:
    o = s.office
    user = next((u for u in o.users if u.user_id == o.user_pick), None)
    role = Msg(f"role.{user.role}") if user else ""
    lines = [_t(s, "users.action_reset"), f"> {'*' * len(o.user_entry)}", _t(s, "users.action_unlock"),
             _t(s, "users.action_role")]
    if user and user.locked_until:
        lines.insert(0, _t(s, "users.locked_mark").strip())
    if o.info:
        lines.append(o.info)
    return Screen(State.USER_EDIT.value, _t(s, "users.edit_title", user=o.user_pick, role=role), tuple(lines),
                  error=s.error, hint=_t(s, "users.edit_hint"))


def _audit_word(token: str, lang: str) -> str:
    for key in (f"word.{token}", f"role.{token}", token):
        if key in CATALOGUE:
            text = CATALOGUE[key][0 if lang == "en" else 1] if lang in ("en", "zh") else t(key, "en")
            return text.split("{")[0].rstrip(" (（：:") or token  # a sentence with blanks: its opening words
    return token


def _audit_detail(detail: str, lang: str) -> str:
    for key, (english, _) in CATALOGUE.items():  # a whole phrase first (``auditdetail.*``), at its end
        if key.startswith("auditdetail.") and detail.endswith(english):
            head = detail[:-len(english)].split()
            return " ".join([*(_audit_word(w, lang) for w in head), t(key, lang)])
    return " ".join(_audit_word(w, lang) for w in detail.split())


def audit_line(e: Any, lang: str) -> str:
    """One audit row in the reader's language: time, user, the action and its detail's words translated."""
    if lang not in ("en", "zh"):
        return str(e.line())
    words = _audit_detail(e.detail, lang)
    return f"{e.at[5:16].replace('T', ' ')} {e.user_id} {_audit_word(e.action, lang)} {words}".rstrip()


def render_audit(s: Session) -> Screen:
    o = s.office
    first = o.audit_page * AUDIT_PAGE
    lines = tuple(audit_line(e, s.lang) for e in o.audit[first:first + AUDIT_PAGE]) or (_t(s, "audit.empty"),)
    pages = max(1, -(-len(o.audit) // AUDIT_PAGE))
    return Screen(State.AUDIT.value, _t(s, "audit.title", page=o.audit_page + 1, pages=pages), lines,
                  error=s.error, hint=_t(s, "audit.hint"))


def render_diagnostics(s: Session) -> Screen:
    checks = s.office.diagnostics
    if checks is None:
        return Screen(State.DIAGNOSTICS.value, _t(s, "diag.title"), (_t(s, "diag.running"),), busy=True)
    lines = [c.text(s.lang) for c in checks]
    bad = sum(not c.ok for c in checks)
    if not bad:
        lines.append(_t(s, "diag.all_ok", count=len(checks)))
    return Screen(State.DIAGNOSTICS.value, _t(s, "diag.title"), tuple(lines), error=s.error,
                  hint=_t(s, "diag.hint"), extra={"faults": str(bad)})


def render_settings(s: Session) -> Screen:
    o = s.office
    lines = []
    for i, (name, (label, low, high)) in enumerate(EDITABLE.items()):
        current = o.setting_values.get(name, "")
        typed = f" → {o.setting_entry}_" if i == o.setting_pick else ""
        lines.append(f"{'>' if i == o.setting_pick else ' '} {_t(s, label)}: {current} ({low}–{high}){typed}")
    if o.info:
        lines.append(o.info)
    return Screen(State.SETTINGS.value, _t(s, "settings.title"), tuple(lines), error=s.error,
                  hint=_t(s, "settings.hint"))


def render_password(s: Session) -> Screen:
    o = s.office
    lines = _fields(s, PASSWORD_FIELDS, o.password_values, o.password_field, secret=True)
    return Screen(State.PASSWORD.value, _t(s, "password.title"), tuple(lines), error=s.error,
                  hint=_t(s, "password.hint"))


OFFICE_RENDERERS: Mapping[State, Callable[[Session], Screen]] = {
    State.ADVICE: render_advice, State.HISTORY: render_history, State.HISTORY_LIST: render_history_list,
    State.HISTORY_DETAIL: render_history_detail, State.SHIFT: render_shift, State.USERS: render_users,
    State.USER_EDIT: render_user_edit, State.AUDIT: render_audit, State.DIAGNOSTICS: render_diagnostics,
    State.PASSWORD: render_password, State.SETTINGS: render_settings, **FIRMWARE_RENDERERS,
}


def render(state: State, session: Session) -> Screen:
    renderer = OFFICE_RENDERERS.get(state) or DAY_RENDERERS.get(state) or RENDERERS[state]
    return renderer(session)
