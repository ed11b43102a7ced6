"""``pos-sim --serve`` lists the WeChat Pay and Alipay gateways with their test credentials; an unsigned request
to either is refused with the platform's own code, a request signed with the listed credentials is answered."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from drivers.merchant_keys import alipay_client, wechatpay_client


def _post(url: str, ca_file: str, body: bytes, ctype: str) -> bytes:
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=5,
                                       context=ssl.create_default_context(cafile=ca_file))
    try:
        conn.request("POST", (parts.path or "/") + ("pay/orderquery" if ctype == "text/xml" else ""), body=body,
                     headers={"Content-Type": ctype})
        return conn.getresponse().read()
    finally:
        conn.close()


@pytest.mark.scenario
def test_serve_lists_the_gateways_and_they_refuse_unsigned_requests(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "--serve", "--workdir", str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert proc.stdout is not None and proc.stdin is not None
        info = json.loads(proc.stdout.readline())
        wx, ali = info["endpoints"]["wechatpay"], info["endpoints"]["alipay"]
        assert wx["url"].startswith("https://") and ali["url"].endswith("/gateway.do")
        unsigned = (f"<xml><appid>{wx['appid']}</appid><mch_id>{wx['mch_id']}</mch_id>"
                    "<out_trade_no>X1</out_trade_no></xml>").encode()
        answer = _post(wx["url"].rstrip("/") + "/", wx["ca_file"], unsigned, "text/xml")
        assert b"<return_code><![CDATA[FAIL]]></return_code>" in answer and b"<sign>" not in answer
        form = f"app_id={ali['app_id']}&method=alipay.trade.query&biz_content=%7B%7D".encode()
        answer = json.loads(_post(ali["url"], ali["ca_file"], form, "application/x-www-form-urlencoded"))
        assert answer["alipay_trade_query_response"]["sub_code"] == "isv.missing-signature"
        assert "sign" not in answer
        # the same gateways answer a terminal configured from what --serve printed
        assert wechatpay_client(**{k: wx[k] for k in ("url", "appid", "mch_id", "api_key_file", "ca_file")}) \
            .query("SERVE1").status == "not_found"
        assert alipay_client(**{k: ali[k] for k in ("url", "app_id", "app_private_key_file",
                                                     "alipay_public_key_file", "ca_file")}) \
            .query("SERVE1").status == "not_found"
        # a merchant-presented order: the customer's phone pays the QR content the terminal would show
        qr = wechatpay_client(**{k: wx[k] for k in ("url", "appid", "mch_id", "api_key_file", "ca_file")}) \
            .create_qr_order("SERVE2", 1004, "x", 120).qr_code
        proc.stdin.write(f"phone {qr}\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "paid"
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
