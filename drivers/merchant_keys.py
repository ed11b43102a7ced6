"""Merchant credentials of the wallet platforms, read once at boot from files a technician installs.

Secret files (the WeChat Pay API key, the Alipay app private key, the WeChat Pay client key) must be regular
files of mode 0600 (or 0400) owned by the terminal's user; anything else is a ConfigError naming the TOML key, and
the terminal does not start. Public files (the Alipay public key) only need to be readable.

>>> read_secret("", "wechatpay.api_key_file")
Traceback (most recent call last):
...
pos_errors.ConfigError: wechatpay.api_key_file is not set: name the file holding the secret
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.alipay import AlipayClient
from drivers.alipay_sign import AppKey, load_public_key
from drivers.secret_file import read_private
from drivers.wechatpay import WeChatPayClient
from pos_errors import ConfigError

__all__ = ["read_secret", "read_public", "wechatpay_client", "alipay_client"]

MAX_FILE = 16 * 1024


def read_secret(path: str, key: str) -> bytes:
    """The content of a 0600 secret file (stripped). Raises ConfigError naming ``key``."""
    data = read_private(path, key, MAX_FILE)
    if not data or len(data) > MAX_FILE:
        raise ConfigError(f"{key} {path} is empty or too large")
    return data


def read_public(path: str, key: str) -> bytes:
    if not path:
        raise ConfigError(f"{key} is not set")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"{key} {path}: cannot open: {exc.strerror}") from exc
    if len(data) > MAX_FILE:
        raise ConfigError(f"{key} {path} is too large")
    return data


def wechatpay_client(*, url: str, appid: str, mch_id: str, api_key_file: str, client_cert_file: str = "",
                     client_key_file: str = "", ca_file: str = "", insecure_plaintext: bool = False,
                     timeout_s: float = 10.0, spbill_create_ip: str = "127.0.0.1", notify_url: str = "",
                     terminal_id: str = "", crash_point: Callable[[str], None] | None = None,
                     keep_alive_s: float = 20.0) -> WeChatPayClient:
    """A WeChat Pay client from the ``[wechatpay]`` keys (the API key read from its 0600 file)."""
    key = read_secret(api_key_file, "wechatpay.api_key_file")
    cert, pem = None, None
    if client_cert_file or client_key_file:  # read once, checked (0600, ours, no symlink); ssl loads these bytes
        pem = read_secret(client_key_file, "wechatpay.client_key_file")
        cert = (client_cert_file, client_key_file)
    return WeChatPayClient(url, appid=appid, mch_id=mch_id, api_key=key, ca_file=ca_file,
                           insecure_plaintext=insecure_plaintext, timeout_s=timeout_s, client_cert=cert,
                           client_key_pem=pem,
                           terminal_id=terminal_id, spbill_create_ip=spbill_create_ip,
                           notify_url=notify_url or "https://127.0.0.1/wechatpay/notify", crash_point=crash_point,
                           keep_alive_s=keep_alive_s)


def alipay_client(*, url: str, app_id: str, app_private_key_file: str, alipay_public_key_file: str,
                  ca_file: str = "", insecure_plaintext: bool = False, timeout_s: float = 10.0,
                  terminal_id: str = "", crash_point: Callable[[str], None] | None = None,
                  keep_alive_s: float = 20.0) -> AlipayClient:
    """An Alipay client from the ``[alipay]`` keys (the app private key read from its 0600 file and checked now,
    loaded with its consistency check on first use: ``drivers.alipay_sign.AppKey``)."""
    private = AppKey(read_secret(app_private_key_file, "alipay.app_private_key_file"), "alipay.app_private_key_file")
    public = load_public_key(read_public(alipay_public_key_file, "alipay.alipay_public_key_file"),
                             "alipay.alipay_public_key_file")
    return AlipayClient(url, app_id=app_id, app_private_key=private, alipay_public_key=public, ca_file=ca_file,
                        insecure_plaintext=insecure_plaintext, timeout_s=timeout_s, terminal_id=terminal_id,
                        crash_point=crash_point, keep_alive_s=keep_alive_s)
