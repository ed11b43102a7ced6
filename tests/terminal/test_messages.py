"""The message catalogue: every key in both languages, the same placeholders, every key the code uses exists,
and every screen renders in each language without the other's words."""

import re
import string
from pathlib import Path

import pytest

from drivers.escpos import MESSAGES as PRINTER_MESSAGES
from flows.messages import CATALOGUE, LANGS, Msg, next_lang, t
from flows.pricing import CHANNEL_LABELS
from terminal.machine import State
from terminal.roles import Role
from terminal.users import User
from terminal.views import Session
from terminal.views_office import render

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u4e00-\u9fff]")
# Keys whose Chinese text may legitimately equal the English one (names, identifiers, layout only).
SAME_IN_BOTH = {"lang.both", "lang.zh", "lang.en", "confirm.iccid", "users.row", "diag.fault"}


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


def test_every_key_the_code_uses_is_in_the_catalogue():
    used = _keys_used_in_code()
    assert len(used) > 100, "the scan found too few keys to prove anything"
    assert sorted(used - set(CATALOGUE)) == []
    # keys built at run time
    dynamic = {f"role.{r.value}" for r in Role} | {f"lang.{lang}" for lang in LANGS} | {
        f"channel.{c}" for c in CHANNEL_LABELS} | {f"printer.{k}" for k in PRINTER_MESSAGES} | {
        f"result.{s}" for s in ("completed", "pending", "reversed", "reversal_pending", "declined", "cancelled")}
    assert sorted(dynamic - set(CATALOGUE)) == []


def test_languages_and_nested_messages():
    assert t("home.title", "en") == "Home" and t("home.title", "zh") == "主页" and t("home.title") == "Home / 主页"
    nested = t("home.refused", "zh", role=Msg("role.technician"), allowed=Msg("role.supervisor"))
    assert nested == "技术员无此权限，仅限主管"
    assert [next_lang(x) for x in LANGS] == ["zh", "en", "both"]
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
