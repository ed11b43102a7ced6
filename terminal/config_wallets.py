"""The ``[wechatpay]`` and ``[alipay]`` sections of the terminal's configuration: each platform's merchant
credentials (files, mode 0600) and endpoint. ``terminal.config`` reads them like every other section.

Also which wallet channels are offered (``[wallet] channels``) and which of them are paid through the
``[wallet]`` platform: EMV QR always, WeChat Pay and Alipay unless their own merchant API is configured. Only
then are ``wallet.app_id`` and ``wallet.app_secret_file`` required (checked at boot, before anything opens).

>>> wallet_platform_channels(("wechat", "emvqr"), wechat_appid="wx8888888888888888", alipay_app_id="")
('emvqr',)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flows.pricing import CHANNEL_LABELS, WALLET_CHANNELS
from pos_errors import ConfigError

if TYPE_CHECKING:
    from terminal.config import Settings

__all__ = ["WeChatPaySection", "AlipaySection", "WALLET_CHANNEL_ORDER", "check_wallet_channels",
           "wallet_platform_channels", "check_wallet_platform"]

WALLET_CHANNEL_ORDER = tuple(c for c in CHANNEL_LABELS if c in WALLET_CHANNELS)  # wechat, alipay, emvqr


@dataclass(frozen=True)
class WeChatPaySection:
    """WeChat Pay merchant API v2 (docs/protocols/wallet-api.md); empty ``appid``: WeChat Pay goes to [wallet]."""

    url: str = "https://api.mch.weixin.qq.com"
    appid: str = ""  # the APPID bound to the merchant account (wx…)
    mch_id: str = ""  # 商户号
    api_key_file: str = ""  # the 32-character API key (商户平台 → API安全), mode 0600; read at boot
    client_cert_file: str = ""  # apiclient_cert.pem for /secapi/ (reverse, refund); "" = none
    client_key_file: str = ""  # apiclient_key.pem, mode 0600
    ca_file: str = ""  # "" = the system's trust store
    insecure_plaintext: bool = False
    timeout_s: float = 10.0
    spbill_create_ip: str = "127.0.0.1"  # the terminal's public IP as WeChat Pay sees it
    notify_url: str = "https://127.0.0.1/wechatpay/notify"  # required by unifiedorder; the POS polls instead
    keep_alive_s: float = 20.0  # the last HTTPS connection is kept this long for the next request; 0 = one each


@dataclass(frozen=True)
class AlipaySection:
    """Alipay open platform (RSA2); empty ``app_id``: Alipay goes to [wallet]."""

    url: str = "https://openapi.alipay.com/gateway.do"
    app_id: str = ""  # the 16-digit APPID of the merchant's app
    app_private_key_file: str = ""  # the app's RSA private key (PEM), mode 0600
    alipay_public_key_file: str = ""  # 支付宝公钥 (PEM or the base64 the open platform shows)
    ca_file: str = ""
    insecure_plaintext: bool = False
    timeout_s: float = 10.0
    keep_alive_s: float = 20.0  # the last HTTPS connection is kept this long for the next request; 0 = one each


def check_wallet_channels(channels: object) -> tuple[str, ...]:
    """``[wallet] channels`` as a tuple; ConfigError names an unknown or repeated channel."""
    if not isinstance(channels, list | tuple) or not all(isinstance(c, str) for c in channels):
        raise ConfigError(f"wallet.channels must be a list of channel names, e.g. {list(WALLET_CHANNEL_ORDER)}")
    for channel in channels:
        if channel not in WALLET_CHANNELS:
            raise ConfigError(f"wallet.channels: unknown channel {channel!r} "
                              f"(known: {', '.join(WALLET_CHANNEL_ORDER)})")
        if channels.count(channel) > 1:
            raise ConfigError(f"wallet.channels names {channel!r} twice")
    return tuple(channels)


def wallet_platform_channels(channels: Sequence[str], *, wechat_appid: str, alipay_app_id: str) -> tuple[str, ...]:
    """The offered wallet channels that are paid through the ``[wallet]`` platform."""
    direct = {"wechat": bool(wechat_appid), "alipay": bool(alipay_app_id)}
    return tuple(c for c in channels if not direct.get(c, False))


def check_wallet_platform(settings: Settings) -> tuple[str, ...]:
    """The channels that need the ``[wallet]`` platform; ConfigError when they do and its app id or app secret
    file is not set (the message names the keys, the channels, and the two ways out)."""
    w = settings.wallet
    needing = wallet_platform_channels(w.channels, wechat_appid=settings.wechatpay.appid,
                                       alipay_app_id=settings.alipay.app_id)
    missing = [f"wallet.{key}" for key in ("app_id", "app_secret_file") if needing and not getattr(w, key)]
    if missing:
        names = ", ".join(f"{CHANNEL_LABELS[c]} ({c})" for c in needing)
        raise ConfigError(f"{' and '.join(missing)} not set, but {names} is paid through the [wallet] platform: "
                          "set them (the app secret file: one line, mode 0600), configure [wechatpay] / [alipay] "
                          "for those, or take the channel out of wallet.channels")
    return needing
