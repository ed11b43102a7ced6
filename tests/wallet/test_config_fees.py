"""Fees, limits, wallet and scanner keys in the TOML configuration: accepted shapes and named errors."""

from __future__ import annotations

import pytest

from flows.pricing import ChannelLimits
from pos_errors import ConfigError
from terminal.config import Settings


def test_table_and_list_forms() -> None:
    s = Settings.from_dict({"fees": {"card": [5, 0], "wechat": {"fixed_fen": 10, "rate_bps": 38, "max_minor": 2500,
                                                               "daily_minor": 3000}},
                            "wallet": {"poll_interval_s": 2, "qr_expiry_s": 60},
                            "devices": {"scanner": "socket://127.0.0.1:4001", "scanner_mode": "continuous"}})
    assert s.fees.fee("card", 1000) == 5 and s.fees.fee("wechat", 2000) == 10 + 8
    assert s.fees.limits_for("wechat") == ChannelLimits(None, 2500, 3000)
    assert s.fees.limits_for("alipay") == ChannelLimits()
    assert (s.wallet.poll_interval_s, s.wallet.qr_expiry_s, s.devices.scanner_mode) == (2.0, 60, "continuous")


@pytest.mark.parametrize("data, message", [
    ({"fees": {"wechat": {"rate": 38}}}, "fees.wechat.rate"),
    ({"fees": {"wechat": {"max_minor": -1}}}, "fees.wechat.max_minor"),
    ({"fees": {"wechat": {"max_minor": 25.5}}}, "fees.wechat.max_minor"),
    ({"fees": {"wechat": {"daily_minor": True}}}, "fees.wechat.daily_minor"),
    ({"fees": {"wechat": "0.38%"}}, "fees.wechat must be"),
    ({"wallet": {"qr_expiry_s": "2 min"}}, "wallet.qr_expiry_s must be int"),
    ({"wallet": {"speed": 1}}, "unknown key wallet.speed"),
    ({"devices": {"scanner_mode": "sometimes"}}, "devices.scanner_mode"),
])
def test_named_errors(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_dict(data)
