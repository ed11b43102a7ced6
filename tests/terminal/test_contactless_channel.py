"""The "Tap / 闪付" channel: offered only where the reader has contactless, its limits from ``[contactless]``
(bad values refused at boot, naming the key), and the wiring of those limits into the Entry Point's combinations."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from emv.capk import TEST_CAPKS
from flows.pricing import offered_channels
from pos_errors import ConfigError
from terminal.config import Settings
from terminal.core import TerminalCore
from terminal.handlers import HANDLERS
from terminal.views import render_channel_select
from terminal.wiring import tap_settings


def _core(tap: object) -> TerminalCore:
    services = SimpleNamespace(settings=Settings(), topup=SimpleNamespace(tap=tap))
    return TerminalCore(services, HANDLERS)  # type: ignore[arg-type]


def test_tap_is_offered_only_where_the_reader_has_contactless() -> None:
    without, with_tap = _core(None), _core(object())
    assert "tap" not in without.session.channels and with_tap.session.channels[-1] == "tap"
    assert with_tap.session.channels[:4] == without.session.channels  # the other digits do not move
    menu = render_channel_select(with_tap.session).menu
    assert [m.key for m in menu] == ["1", "2", "3", "4", "5"] and "闪付" in menu[-1].label
    assert offered_channels(False) == ("card", "wechat", "alipay", "emvqr")


@pytest.mark.parametrize(("table", "key"), [
    ({"limit_minor": -2}, "contactless.limit_minor"),
    ({"cvm_required_limit_minor": -100}, "contactless.cvm_required_limit_minor"),
    ({"presentations": 0}, "contactless.presentations"),
    ({"tap_timeout_s": 0}, "contactless.tap_timeout_s"),
    ({"limit_minor": "lots"}, "contactless.limit_minor"),
    ({"antenna": True}, "contactless.antenna"),
])
def test_bad_contactless_settings_are_refused_naming_the_key(table: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        Settings.from_dict({"contactless": table})


def test_limits_reach_every_combination_and_minus_one_means_absent() -> None:
    settings = Settings.from_dict({"contactless": {"limit_minor": 20000, "floor_limit_minor": -1,
                                                   "cvm_required_limit_minor": 5000}})
    tap = tap_settings(settings, TEST_CAPKS)
    assert [(c.aid.hex().upper(), c.kernel_id) for c in tap.combinations] == [
        ("A000000333", 7), ("A000000003", 3), ("A000000004", 2)]
    assert {(c.limits.contactless_limit, c.limits.floor_limit, c.limits.cvm_required_limit)
            for c in tap.combinations} == {(20000, None, 5000)}
    assert tap.currency == b"\x01\x56" and tap.capks is TEST_CAPKS


def test_per_aid_limits_override_only_their_combination() -> None:
    settings = Settings.from_dict({"contactless": {"cvm_required_limit_minor": 30000, "per_aid": {
        "a000000003": {"cvm_required_limit_minor": 5000, "status_check": True}}}})
    by_rid = {c.aid.hex().upper(): c.limits for c in tap_settings(settings, TEST_CAPKS).combinations}
    assert (by_rid["A000000003"].cvm_required_limit, by_rid["A000000003"].status_check) == (5000, True)
    assert (by_rid["A000000333"].cvm_required_limit, by_rid["A000000333"].status_check) == (30000, False)


@pytest.mark.parametrize("per_aid", [
    {"A0000003": {"limit_minor": 1}},  # not a RID
    {"A000000003": {"limit": 1}},  # unknown key
    {"A000000003": {"limit_minor": -5}},
    {"A000000003": {"status_check": 1}},
    {"A000000003": 5},
])
def test_bad_per_aid_limits_are_refused(per_aid: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"contactless\.per_aid\.A0"):
        Settings.from_dict({"contactless": {"per_aid": per_aid}})


def _core_with(settings: Settings, lang: str) -> TerminalCore:
    services = SimpleNamespace(settings=settings, topup=SimpleNamespace(tap=object()))
    core = TerminalCore(services, HANDLERS)  # type: ignore[arg-type]
    core.session.lang = lang
    return core


def test_confirm_line_shows_the_per_scheme_limits_that_apply() -> None:
    from terminal.handlers.card import tap_limits_line

    plain = Settings.from_dict({"contactless": {"limit_minor": 100000, "cvm_required_limit_minor": 30000}})
    assert tap_limits_line(_core_with(plain, "en")) == "Tap limit ￥1000.00 · no PIN up to ￥300.00"
    settings = Settings.from_dict({"contactless": {"limit_minor": 100000, "cvm_required_limit_minor": 30000,
                                                   "per_aid": {"a000000003": {"cvm_required_limit_minor": 5000},
                                                               "A000000004": {"status_check": True}}}})
    # Visa's own CVM limit is shown; Mastercard's table changes nothing the customer sees, so it is not repeated
    assert tap_limits_line(_core_with(settings, "en")) == (
        "Tap limit ￥1000.00 · no PIN up to ￥300.00 · Visa cards: Tap limit ￥1000.00 · no PIN up to ￥50.00")
    assert "维萨卡：闪付限额 ￥1000.00 · ￥50.00 以下免密" in tap_limits_line(_core_with(settings, "zh"))
    # what is shown is what the Entry Point applies
    by_rid = {c.aid.hex().upper(): c.limits for c in tap_settings(settings, TEST_CAPKS).combinations}
    assert (by_rid["A000000003"].cvm_required_limit, by_rid["A000000333"].cvm_required_limit) == (5000, 30000)
