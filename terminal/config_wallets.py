"""The ``[wechatpay]`` and ``[alipay]`` sections of the terminal's configuration: each platform's merchant
credentials (files, mode 0600) and endpoint. ``terminal.config`` reads them like every other section.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WeChatPaySection", "AlipaySection"]


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
