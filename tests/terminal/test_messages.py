"""The message catalogue: every key in both languages, the same placeholders, every key the code uses exists,
and every screen renders in each language without the other's words."""

import ast
import re
import string
from pathlib import Path

import pytest

from drivers.escpos import MESSAGES as PRINTER_MESSAGES
from emv.actions import Finished, KernelReason, Outcome
from flows.card_payment import kernel_reason
from flows.messages import CATALOGUE, LANGS, Msg, next_lang, say, state_label, t
from flows.pricing import CHANNEL_LABELS
from flows.txn_state import TRANSITIONS
from terminal.machine import State
from terminal.roles import Role
from terminal.users import User
from terminal.views import Session
from terminal.views_office import render

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u4e00-\u9fff]")
# Keys whose Chinese text may legitimately equal the English one (names, identifiers, layout only).
SAME_IN_BOTH = {"lang.both", "lang.zh", "lang.en", "confirm.iccid", "users.row", "diag.fault", "history.channel_no"}


def _fields(text):
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_key_exists_in_both_languages_with_the_same_placeholders(key):
    english, chinese = CATALOGUE[key]
    assert english.strip() and chinese.strip(), key
    assert _fields(english) == _fields(chinese), key
    if key not in SAME_IN_BOTH:
        assert CJK.search(chinese), f"{key}: Chinese text has no Chinese: {chinese!r}"
        assert not CJK.search(english), f"{key}: English text has Chinese: {english!r}"


def _keys_used_in_code():
    literal = re.compile(r"""(?:\bt|_t\(s,|_say|Msg)\(\s*["']([a-z_]+\.[a-z_0-9.]+)["']""")
    literal2 = re.compile(r"""_t\(s,\s*["']([a-z_]+\.[a-z_0-9]+)["']""")
    used = set()
    for folder in ("terminal", "flows"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            used |= set(literal.findall(text)) | set(literal2.findall(text))
    return used


def _key_like_literals():
    """Every whole string literal in terminal/ and flows/ shaped like a catalogue key (``prefix.name``) with a
    prefix the catalogue uses: keys handed around as plain strings (tables, defaults), not only ``t(...)`` calls."""
    prefixes = {key.split(".")[0] for key in CATALOGUE}
    shape = re.compile(r"^[a-z_]+\.[a-z_0-9.]+$")
    found = set()
    for folder in ("terminal", "flows"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            in_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                           for part in node.values}
            found |= {(path.relative_to(ROOT).as_posix(), node.value) for node in ast.walk(tree)
                      if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstrings
                      and shape.match(node.value) and node.value.split(".")[0] in prefixes}
    return found


def test_every_key_shaped_literal_is_in_the_catalogue():
    found = _key_like_literals()
    assert len(found) > 100, "the scan found too few keys to prove anything"
    assert sorted(f"{path}: {key}" for path, key in found if key not in CATALOGUE) == []


def test_every_key_the_code_uses_is_in_the_catalogue():
    used = _keys_used_in_code()
    assert len(used) > 100, "the scan found too few keys to prove anything"
    assert sorted(used - set(CATALOGUE)) == []
    # keys built at run time
    dynamic = {f"role.{r.value}" for r in Role} | {f"lang.{lang}" for lang in LANGS} | {
        f"channel.{c}" for c in CHANNEL_LABELS} | {f"printer.{k}" for k in PRINTER_MESSAGES} | {
        f"result.{s}" for s in ("completed", "pending", "reversed", "reversal_pending", "declined", "cancelled")} | {
        f"txnstate.{s}" for s in TRANSITIONS} | {f"pin.{s}" for s in ("entered", "cancelled", "timeout", "bypassed")
                                                  } | {f"wallet.reason.{r}" for r in (
        "insufficient_balance", "code_expired", "user_cancelled", "order_expired")}
    assert sorted(dynamic - set(CATALOGUE)) == []


def test_languages_and_nested_messages():
    assert t("home.title", "en") == "Home" and t("home.title", "zh") == "主页" and t("home.title") == "Home / 主页"
    nested = t("home.refused", "zh", role=Msg("role.technician"), allowed=Msg("role.supervisor"))
    assert nested == "技术员无此权限，仅限主管"
    assert [next_lang(x) for x in LANGS] == ["zh", "en", "both"]
    listed = (Msg("channel.card"), Msg("channel.wechat"))  # a tuple argument: a list, each item in the language
    assert t("wallet.limits", parts=listed) == "Limits: Chip card, WeChat Pay / 限额：芯片卡, 微信支付"
    with pytest.raises(KeyError):
        t("no.such.key")


@pytest.mark.parametrize("state", list(State))
def test_every_screen_speaks_one_language_at_a_time(state):
    def screen(lang):
        return render(state, Session(lang=lang, user=User("01", "Li", "cashier"))).text()
    english, chinese = screen("en"), screen("zh")
    assert not CJK.search(english.replace("中文", "")), english
    assert CJK.search(chinese), chinese
    assert english != chinese


# --- no cashier text outside the catalogue -------------------------------------------------------------------------

PRODUCT = ("terminal", "flows", "drivers", "emv", "firmware_image")
# Documented exceptions: (file, the literal's text). Anything else with Chinese in product code fails the test.
CJK_ALLOWED = {
    # configuration data, not a UI text: the merchant's own name as printed on receipts (config/*.toml sets it)
    ("terminal/config.py", "IoT SIM Top-up Shop / 物联网卡充值点"),
}


def cjk_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal with Chinese in ``source`` that is not a docstring (docstrings and
    their doctests are documentation: they may quote a catalogue text)."""
    tree = ast.parse(source)
    docstrings = {id(body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and (body := node.body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            and CJK.search(node.value)]


def test_the_scan_finds_chinese_in_literals_and_f_strings_but_not_in_docstrings():
    source = '"""Doc: 登录."""\nA = "Log in / 登录"\ndef f(x):\n    """又一个."""\n    return f"{x} 元"\n'
    assert cjk_literals(source) == [(2, "Log in / 登录"), (5, " 元")]


def test_no_chinese_literal_in_product_code_outside_the_catalogue():
    found = []
    for folder in PRODUCT:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name == "flows/messages.py" or name.startswith("flows/catalogue/"):
                continue
            found += [f"{name}:{line}: {text!r}" for line, text in cjk_literals(path.read_text(encoding="utf-8"))
                      if (name, text) not in CJK_ALLOWED]
    assert found == [], "cashier texts belong in flows/messages.py or flows/catalogue/: " + "\n".join(found)


@pytest.mark.parametrize("state", sorted(TRANSITIONS))
def test_every_journal_state_has_a_label_in_both_languages(state):
    label = state_label(state)
    assert isinstance(label, Msg) and CJK.search(say(label, "zh")) and not CJK.search(say(label, "en"))
    assert state_label("a_state_nobody_made") == "a_state_nobody_made"  # shown as it is, never a KeyError


@pytest.mark.parametrize(("outcome", "code", "key"), [
    (Outcome.TERMINATED, KernelReason.NO_APPLICATION, "kernel.no_app"),
    (Outcome.TERMINATED, KernelReason.CARD_BLOCKED, "kernel.blocked"),
    (Outcome.TERMINATED, KernelReason.PIN_NOT_ENTERED, "kernel.pin"),
    (Outcome.TERMINATED, KernelReason.SELECTION_CANCELLED, "kernel.cancelled"),
    (Outcome.TERMINATED, KernelReason.CARD_DATA_MISSING, "kernel.card_data"),
    (Outcome.TERMINATED, KernelReason.CARD_DATA_MALFORMED, "kernel.card_data"),
    (Outcome.TERMINATED, KernelReason.CARD_DATA_DUPLICATED, "kernel.card_data"),
    (Outcome.TERMINATED, KernelReason.CARD_ERROR, "kernel.card_failed"),
    (Outcome.NOT_ACCEPTED, KernelReason.NOT_ACCEPTED, "kernel.not_accepted"),
])
def test_kernel_reasons_reach_the_cashier_as_catalogue_texts_chosen_by_code(outcome, code, key):
    # the English reason is only for transcripts: a misleading one must not change the message
    msg = kernel_reason(Finished(outcome, "no application; PIN entry cancelled; card blocked", code))
    assert msg.key == key and "PIN entry" not in say(msg, "en")


@pytest.mark.parametrize(("key", "args"), [
    ("channel.hint", {"n": 3}),
    ("channel.hint", {"n": True}),  # a bool equals 1 but prints True: never the filled text of n=1
    ("channel.hint", {"n": 1.0}),  # a float equals 1 but prints 1.0: not remembered at all
    ("channel.hint", {"n": "3"}),
    ("home.refused", {"role": Msg("role.cashier"), "allowed": Msg("role.supervisor")}),
    ("home.language", {"name": Msg("lang.zh")}),
    ("channel.line_limits", {"fee": Msg("fee.free"), "total": "¥30.00",
                             "limits": (Msg("wallet.limit_min", {"money": "¥1.00"}),
                                        Msg("wallet.limit_max", {"money": "¥500.00"}))}),
    ("followup.line", {"line": ValueError("no answer")}),  # an exception: its kind in words, never remembered
])
def test_a_filled_text_asked_for_again_is_the_same_as_filled_afresh(key, args):
    from flows import messages

    for lang in LANGS:
        first, again = t(key, lang, **args), t(key, lang, **args)
        assert first == again == messages._render(key, lang, args), (key, lang)
    assert [t("channel.hint", "en", n=n) for n in (1, True, 1.0, 1)] == [
        "1-1 choose · CANCEL back", "1-True choose · CANCEL back", "1-1.0 choose · CANCEL back",
        "1-1 choose · CANCEL back"]


def test_plain_values_are_remembered_and_objects_are_not():
    from flows import messages

    assert messages._memo_args({"n": 3}) == (("n", (int, 3)),) and messages._memo_args({"n": True}) is None
    assert messages._memo_args({"n": 1.0}) is None
    assert messages._memo_args({"x": ValueError("x")}) is None
    assert messages._memo_args({"x": Msg("a", {"e": ValueError("x")})}) is None
    assert messages._memo_args({"x": (Msg("a"), object())}) is None
    assert messages._memo_args({"x": Msg("a")}) != messages._memo_args({"x": "a"})
    assert messages._memo_args({"x": ("a",)}) != messages._memo_args({"x": Msg("a")})
