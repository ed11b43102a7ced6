"""``[wallet] channels`` and the ``[wallet]`` platform's credentials: required only when an offered channel is
paid through that platform (EMV QR always; WeChat Pay / Alipay when their own merchant API is not configured).

Through the real parts: TOML files read by ``load_settings``, ``pos-terminal`` as its own process, and a whole
simulated terminal (ptys, loopback HTTPS platforms) that boots without any wallet app secret and sells with
WeChat Pay on its own merchant API while EMV QR is not offered.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pos_errors import ConfigError
from terminal.config import Settings, load_settings
from terminal.config_wallets import check_wallet_platform

ROOT = Path(__file__).resolve().parents[2]
DIRECT = {"wechatpay": {"appid": "wx8888888888888888"}, "alipay": {"app_id": "2021000000000001"}}


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "terminal.toml"
    path.write_text(f'[terminal]\nid = "T0000042"\njournal = "{tmp_path / "j.db"}"\n{text}', encoding="utf-8")
    return path


@pytest.mark.parametrize(("channels", "message"), [
    ('["wechat", "bitcoin"]', "wallet.channels: unknown channel 'bitcoin' (known: wechat, alipay, emvqr)"),
    ('["emvqr", "emvqr"]', "wallet.channels names 'emvqr' twice"),
    ('"emvqr"', "wallet.channels must be a list of channel names"),
])
def test_bad_channel_lists_are_refused_naming_the_key(tmp_path, channels, message):
    with pytest.raises(ConfigError) as refused:
        load_settings(_toml(tmp_path, f"[wallet]\nchannels = {channels}\n"))
    assert message in str(refused.value)


def test_emv_qr_offered_without_the_wallet_secret_is_refused_with_the_way_out(tmp_path):
    settings = load_settings(_toml(tmp_path, '[wallet]\napp_id = "POS-1"\n'))
    assert settings.wallet.channels == ("wechat", "alipay", "emvqr")
    with pytest.raises(ConfigError) as refused:
        check_wallet_platform(settings)
    text = str(refused.value)
    assert text.startswith("wallet.app_secret_file not set, but ")
    assert "WeChat Pay" in text and "(wechat)" in text and "(emvqr)" in text
    assert "take the channel out of wallet.channels" in text and "[wechatpay] / [alipay]" in text


def test_only_the_channels_that_go_through_the_wallet_platform_need_it():
    direct = Settings.from_dict({"wallet": {"channels": ["wechat", "alipay"]}, **DIRECT})
    assert check_wallet_platform(direct) == ()  # both on their own merchant APIs: no [wallet] secret needed
    assert check_wallet_platform(Settings.from_dict({"wallet": {"channels": []}})) == ()
    wechat_via_platform = Settings.from_dict({"wallet": {"channels": ["wechat", "alipay"]},
                                              "alipay": DIRECT["alipay"]})
    with pytest.raises(ConfigError, match=r"wallet.app_id and wallet.app_secret_file not set, but .*\(wechat\) is"):
        check_wallet_platform(wechat_via_platform)
    with pytest.raises(ConfigError, match=r"\(emvqr\)"):
        check_wallet_platform(Settings.from_dict({"wallet": {"channels": ["emvqr"]}, **DIRECT}))


def _start(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "terminal.cli", "--config", str(config)], input="",
                          capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)


def test_pos_terminal_refuses_to_start_before_opening_anything_and_says_why(tmp_path):
    run = _start(_toml(tmp_path, ""))
    assert run.returncode == 1
    assert "cannot start: wallet.app_id and wallet.app_secret_file not set, but" in run.stderr
    assert not (tmp_path / "j.db").exists()  # refused before the journal was opened
    without_wallets = _start(_toml(tmp_path, "[wallet]\nchannels = []\n"))  # goes on to the next check
    assert without_wallets.returncode == 1 and "wallet" not in without_wallets.stderr, without_wallets.stderr


def _check_config(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "terminal.cli", "--config", str(config), "--check-config"],
                          capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)


def test_check_config_runs_the_wallet_channels_check_that_start_runs(tmp_path):
    config = _toml(tmp_path, "")  # EMV QR offered (the default channels), no [wallet] app id or secret
    checked, started = _check_config(config), _start(config)
    assert checked.returncode == 2 and "[wallet]" in checked.stdout  # the settings, then what start would refuse
    lines = checked.stderr.splitlines()
    assert lines[0].startswith("pos-terminal: configuration error (wallet channels): wallet.app_id and "
                               "wallet.app_secret_file not set, but ")
    assert lines[0].split("(wallet channels): ")[1] in started.stderr  # the very refusal start gives
    assert lines[-1] == "start checks: 5 of 8 refused: the terminal would not start", checked.stderr
    assert not (tmp_path / "j.db").exists()  # nothing opened
    without_wallets = _check_config(_toml(tmp_path, "[wallet]\nchannels = []\n"))
    assert without_wallets.returncode == 2 and "(wallet channels)" not in without_wallets.stderr
    assert "configuration error (device secret): security.device_secret_file is not set" in without_wallets.stderr


@pytest.mark.scenario
def test_a_terminal_without_a_wallet_secret_sells_with_wechat_pay_direct_and_offers_no_emv_qr(tmp_path):
    from sim.runner.scenario import Scenario, run_scenario

    world = {"wallet": {"channels": ["wechat", "alipay"], "app_id": "", "app_secret_file": ""}}
    steps = ({"wait": "login"}, {"keys": "01 ENTER 1111 ENTER"}, {"wait": "home"}, {"keys": "1"},
             {"wait": "sim_entry"}, {"keys": "89860424000000000017 ENTER"}, {"wait": "sim_details"},
             {"keys": "ENTER"}, {"wait": "plan_select"}, {"keys": "1"}, {"wait": "channel_select"},
             {"expect_text": ["WeChat Pay", "Alipay"]}, {"expect_no_text": ["EMV QR", "银联二维码"]},
             {"keys": "2"}, {"wait": "confirm"}, {"expect_text": "Pay by / 支付: WeChat Pay"},
             {"keys": "0017 ENTER"}, {"wait": "scan_code"}, {"scan_code": {"wallet": "wechat", "outcome": "paid"}},
             {"wait": "result", "timeout": 20}, {"expect_text": "Top-up done"},
             {"expect_platform_calls": {"wechatpay": ["/pay/micropay"]}},
             {"expect_journal": {"state": "completed", "channel": "wechat"}})
    result = run_scenario(Scenario("no [wallet] secret", str(tmp_path / "x.toml"), world, steps))
    assert result.passed, result.message + "\n" + "\n".join(result.log)
