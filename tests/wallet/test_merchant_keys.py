"""Merchant credentials of WeChat Pay and Alipay: secret files must be 0600 and ours, keys of the right kind, or the
terminal does not start (a ConfigError naming the TOML key)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from drivers.merchant_keys import alipay_client, read_secret, wechatpay_client
from pos_errors import ConfigError
from terminal.config import Settings


def _file(path: Path, data: bytes, mode: int) -> str:
    path.write_bytes(data)
    os.chmod(path, mode)
    return str(path)


def test_a_world_readable_api_key_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = _file(tmp_path / "k", b"a" * 32, 0o644)
    with pytest.raises(ConfigError, match=r"wechatpay.api_key_file .* mode 0644.*0600"):
        wechatpay_client(url="https://127.0.0.1:1", appid="wx1", mch_id="1", api_key_file=path)


@pytest.mark.parametrize(("content", "error"), [(b"short", "32 characters"), (b"", "empty")])
def test_an_api_key_of_the_wrong_length_is_refused(tmp_path: Path, content: bytes, error: str) -> None:
    path = _file(tmp_path / "k", content, 0o600)
    with pytest.raises(ConfigError, match=error):
        wechatpay_client(url="https://127.0.0.1:1", appid="wx1", mch_id="1", api_key_file=path)


def test_a_symlinked_secret_is_refused(tmp_path: Path) -> None:
    target = _file(tmp_path / "real", b"a" * 32, 0o600)
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(ConfigError, match="cannot open"):
        read_secret(str(tmp_path / "link"), "wechatpay.api_key_file")


def test_plain_http_is_refused_outside_a_test_bench(tmp_path: Path) -> None:
    path = _file(tmp_path / "k", b"a" * 32, 0o600)
    with pytest.raises(ConfigError, match="plain http"):
        wechatpay_client(url="http://api.example", appid="wx1", mch_id="1", api_key_file=path)


def _pem(key) -> bytes:  # type: ignore[no-untyped-def]
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_alipay_keys_must_be_rsa_2048_and_the_private_one_0600(tmp_path: Path) -> None:
    app = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = app.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64
    public_file = _file(tmp_path / "pub", base64.b64encode(public), 0o644)  # the bare base64 the console shows
    good = _file(tmp_path / "app.pem", _pem(app), 0o600)
    client = alipay_client(url="https://127.0.0.1:1/gateway.do", app_id="2021000000000001",
                           app_private_key_file=good, alipay_public_key_file=public_file)
    assert client.app_id == "2021000000000001"
    loose = _file(tmp_path / "loose.pem", _pem(app), 0o640)
    with pytest.raises(ConfigError, match="alipay.app_private_key_file"):
        alipay_client(url="https://127.0.0.1:1/gateway.do", app_id="2021000000000001",
                      app_private_key_file=loose, alipay_public_key_file=public_file)
    ecdsa = _file(tmp_path / "ec.pem", _pem(ec.generate_private_key(ec.SECP256R1())), 0o600)
    with pytest.raises(ConfigError, match="RSA"):
        alipay_client(url="https://127.0.0.1:1/gateway.do", app_id="2021000000000001",
                      app_private_key_file=ecdsa, alipay_public_key_file=public_file)
    with pytest.raises(ConfigError, match="16-digit"):
        alipay_client(url="https://127.0.0.1:1/gateway.do", app_id="２０２１", app_private_key_file=good,
                      alipay_public_key_file=public_file)


def test_the_config_sections_read_and_default_to_the_wallet_platform() -> None:
    settings = Settings.from_dict({"wechatpay": {"appid": "wx1", "mch_id": "1900000109"},
                                   "alipay": {"app_id": "2021000000000001"}})
    assert settings.wechatpay.url == "https://api.mch.weixin.qq.com" and settings.wechatpay.mch_id == "1900000109"
    assert settings.alipay.url.endswith("/gateway.do") and Settings().wechatpay.appid == ""
    with pytest.raises(ConfigError, match="wechatpay"):
        Settings.from_dict({"wechatpay": {"api_key": "inline secrets are not a key"}})


def test_the_alipay_app_key_is_checked_at_boot_and_loaded_once_on_first_use(tmp_path: Path) -> None:
    """Issue 17: the RSA consistency check (~30 ms) is not on the boot path; the first request signs with the
    fully loaded key, which the strict gateway verifies over loopback HTTPS, and later requests reuse it."""
    from sim.backends.alipay import AlipaySim
    from sim.backends.wallet import WalletSim

    sim = AlipaySim(WalletSim())
    url = sim.start()
    try:
        private, public = sim.write_keys(str(tmp_path))
        options = sim.client_options()
        client = alipay_client(url=url, app_id=sim.app_id, app_private_key_file=private,
                               alipay_public_key_file=public, ca_file=options["ca_file"],
                               insecure_plaintext=options["insecure_plaintext"], timeout_s=3.0)
        key = client._key  # the AppKey the client signs with
        assert not key.loaded and key.loads == 0 and "BEGIN" not in repr(key)
        assert client.query("NOPE1").status == "not_found"  # signed, sent, answer verified
        assert key.loaded and key.loads == 1
        assert client.query("NOPE2").status == "not_found"
        assert key.loads == 1
        assert not sim.refused
    finally:
        sim.stop()


def test_a_small_alipay_app_key_is_refused_at_boot_before_any_full_load(tmp_path: Path) -> None:
    small = _file(tmp_path / "small.pem", _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)), 0o600)
    public_file = _file(tmp_path / "pub.pem", rsa.generate_private_key(public_exponent=65537, key_size=2048)
                        .public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    with pytest.raises(ConfigError, match="alipay.app_private_key_file: RSA2 needs an RSA key of at least 2048"):
        alipay_client(url="https://127.0.0.1:1/gateway.do", app_id="2021000000000001",
                      app_private_key_file=small, alipay_public_key_file=public_file)


def test_an_inconsistent_alipay_key_passes_the_boot_check_and_is_refused_on_first_use_sending_nothing(
        tmp_path: Path) -> None:
    """A key whose CRT values do not match its primes parses (the boot check) but fails the consistency check on
    first use: a ConfigError naming the TOML key, before anything is signed or sent (the wallet flow then records
    the sale as failed, nothing taken)."""
    from drivers.alipay_sign import AppKey
    from sim.backends.alipay import AlipaySim
    from sim.backends.wallet import WalletSim

    good = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
    broken = rsa.RSAPrivateNumbers(good.p, good.q, good.d, good.dmp1 ^ 2, good.dmq1, good.iqmp, good.public_numbers)
    pem = _pem(broken.private_key(unsafe_skip_rsa_key_validation=True))
    class Counting(AlipaySim):
        requests = 0

        def handle(self, method: str, path: str, body: bytes, terminal_id: str) -> tuple[int, bytes, str]:
            Counting.requests += 1
            return super().handle(method, path, body, terminal_id)

    sim = Counting(WalletSim())
    url = sim.start()
    try:
        private = _file(tmp_path / "app.pem", pem, 0o600)
        _, public = sim.write_keys(str(tmp_path))
        options = sim.client_options()
        client = alipay_client(url=url, app_id=sim.app_id, app_private_key_file=private,
                               alipay_public_key_file=public, ca_file=options["ca_file"],
                               insecure_plaintext=options["insecure_plaintext"], timeout_s=3.0)
        assert isinstance(client._key, AppKey) and not client._key.loaded
        with pytest.raises(ConfigError, match="alipay.app_private_key_file"):
            client.query("NOPE3")
        assert Counting.requests == 0 and not client._key.loaded  # nothing reached the gateway
        good_key = alipay_client(url=url, app_id=sim.app_id, app_private_key_file=_file(
            tmp_path / "good.pem", _pem(sim.app_key), 0o600), alipay_public_key_file=public,
            ca_file=options["ca_file"], insecure_plaintext=options["insecure_plaintext"], timeout_s=3.0)
        assert good_key.query("NOPE4").status == "not_found" and Counting.requests == 1  # the counter counts
    finally:
        sim.stop()


def test_the_wechat_client_key_is_read_once_and_ssl_loads_the_bytes_checked(tmp_path: Path, monkeypatch) -> None:
    """The merchant API key (apiclient_key.pem) is opened once, through the 0600 / owner / no-symlink checks; ssl
    gets those bytes. The file removed right after that read: the /secapi/ calls still present the certificate."""
    from drivers import merchant_keys
    from sim.backends.wallet import WalletSim
    from sim.backends.wechatpay import WeChatPaySim

    engine = WalletSim()
    sim = WeChatPaySim(engine)
    url = sim.start()
    try:
        assert sim.client_cert is not None
        cert_file, key_file = sim.client_cert
        read: list[str] = []
        real = merchant_keys.read_private

        def once(path: str, key: str, limit: int, **kw: bool) -> bytes:
            data = real(path, key, limit, **kw)
            read.append(key)
            if key == "wechatpay.client_key_file":
                os.unlink(path)  # from here on the path names nothing: only the bytes read can serve
            return data

        monkeypatch.setattr(merchant_keys, "read_private", once)
        client = wechatpay_client(url=url, appid=sim.appid, mch_id=sim.mch_id,
                                  api_key_file=sim.write_key(str(tmp_path / "api-key")), client_cert_file=cert_file,
                                  client_key_file=key_file, ca_file=sim.ca_file)
        assert read == ["wechatpay.api_key_file", "wechatpay.client_key_file"]
        assert client.micropay("T1KEY1", engine.make_code("wechat"), 1004, "x").status == "paid"
        assert client.cancel("T1KEY1").status == "refunded"  # /secapi/pay/reverse: the certificate was presented
        assert "no_client_cert" not in sim.refused
    finally:
        sim.stop()


def test_an_encrypted_wechat_client_key_is_refused_at_boot_never_a_passphrase_prompt(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"secret"))
    api = _file(tmp_path / "api", b"a" * 32, 0o600)
    key_file = _file(tmp_path / "apiclient_key.pem", encrypted, 0o600)
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "1900000109")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_file = _file(tmp_path / "apiclient_cert.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    with pytest.raises(ConfigError, match="client certificate not usable"):
        wechatpay_client(url="https://127.0.0.1:1", appid="wx1", mch_id="1", api_key_file=api,
                         client_cert_file=cert_file, client_key_file=key_file)
