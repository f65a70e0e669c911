"""The wechatpayv3 SDK (an independent implementation of WeChat Pay v3) as the merchant
against our sandbox: prepay, query, close, refund and refund query must succeed, and the SDK
must verify every answer's signature with the sandbox's platform public key."""

import argparse
import json
import sys
import uuid

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3 import WeChatPay, WeChatPayType

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} sdk: {name}" + (f" ({detail})" if detail and not ok else ""))


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def sdk(base_url, info, keys_dir, public_key=None):
    pay = WeChatPay(
        wechatpay_type=WeChatPayType.MINIPROG,
        mchid=info["mchid"],
        private_key=read(f"{keys_dir}/merchant_private_key.pem"),
        cert_serial_no=info["merchant_serial_no"],
        appid=info["appid"],
        apiv3_key=read(f"{keys_dir}/apiv3_key"),
        notify_url="http://127.0.0.1:9/notify",
        public_key=public_key or read(f"{keys_dir}/platform_public_key.pem"),
        public_key_id=info["platform_public_key_id"],
        timeout=(5, 10),
    )
    # The SDK has WeChat's address built in; point it at the sandbox (loopback only).
    pay._core._gate_way = base_url
    return pay


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--keys-dir", required=True)
    a = p.parse_args()
    assert a.base_url.startswith("http://127.0.0.1:"), "loopback only"
    info = requests.get(f"{a.base_url}/sandbox/keys", timeout=5).json()
    pay = sdk(a.base_url, info, a.keys_dir)
    openid = "o" + uuid.uuid4().hex[:27]

    no = "sdk" + uuid.uuid4().hex[:20]
    code, body = pay.pay(description="interop coffee", out_trade_no=no, amount={"total": 1234, "currency": "CNY"}, payer={"openid": openid})
    prepay_id = json.loads(body).get("prepay_id", "") if code == 200 else ""
    check("prepay answers 200 with a prepay_id", code == 200 and prepay_id.startswith("wx"), f"{code} {body}")
    code, body = pay.pay(description="interop coffee", out_trade_no=no, amount={"total": 1234, "currency": "CNY"}, payer={"openid": openid})
    check("prepay again gives the same prepay_id", code == 200 and json.loads(body)["prepay_id"] == prepay_id, f"{code} {body}")
    code, body = pay.pay(description="interop coffee", out_trade_no=no, amount={"total": 999, "currency": "CNY"}, payer={"openid": openid})
    check("prepay with changed amount is refused", code == 400 and "OUT_TRADE_NO_USED" in str(body), f"{code} {body}")

    code, body = pay.query(out_trade_no=no)
    check("query by out_trade_no: NOTPAY", code == 200 and json.loads(body)["trade_state"] == "NOTPAY", f"{code} {body}")

    code, body = pay.close(out_trade_no=no)
    check("close answers 204 (signed empty body verified)", code == 204, f"{code} {body}")
    code, body = pay.query(out_trade_no=no)
    check("query after close: CLOSED", code == 200 and json.loads(body)["trade_state"] == "CLOSED", f"{code} {body}")

    paid_no = "sdk" + uuid.uuid4().hex[:20]
    code, _ = pay.pay(description="interop tea", out_trade_no=paid_no, amount={"total": 500, "currency": "CNY"}, payer={"openid": openid})
    r = requests.post(f"{a.base_url}/sandbox/orders/{paid_no}/pay", timeout=5)
    check("control call pays the order", code == 200 and r.status_code == 200, r.text)
    transaction_id = r.json()["transaction"]["transaction_id"]
    code, body = pay.query(transaction_id=transaction_id)
    check("query by transaction_id: SUCCESS", code == 200 and json.loads(body)["trade_state"] == "SUCCESS", f"{code} {body}")
    code, body = pay.close(out_trade_no=paid_no)
    check("close of a paid order: ORDERPAID", code == 400 and "ORDERPAID" in str(body), f"{code} {body}")

    refund_no = "rf" + uuid.uuid4().hex[:20]
    code, body = pay.refund(out_refund_no=refund_no, amount={"refund": 200, "total": 500, "currency": "CNY"}, out_trade_no=paid_no, reason="interop")
    check("refund answers 200 PROCESSING", code == 200 and json.loads(body)["status"] == "PROCESSING", f"{code} {body}")
    code, body = pay.refund(out_refund_no="rf" + uuid.uuid4().hex[:20], amount={"refund": 301, "total": 500, "currency": "CNY"}, transaction_id=transaction_id)
    check("refund above what is left: NOT_ENOUGH", code == 403 and "NOT_ENOUGH" in str(body), f"{code} {body}")
    requests.post(f"{a.base_url}/sandbox/refunds/{refund_no}/succeed", timeout=5)
    code, body = pay.query_refund(out_refund_no=refund_no)
    check("refund query: SUCCESS", code == 200 and json.loads(body)["status"] == "SUCCESS", f"{code} {body}")

    # The SDK really checks: with another platform key every answer is refused.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    other_pem = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    wrong = sdk(a.base_url, info, a.keys_dir, public_key=other_pem)
    try:
        wrong.query(out_trade_no=no)
        check("SDK refuses answers signed by another key", False, "no exception")
    except Exception as e:  # the SDK raises a bare Exception
        check("SDK refuses answers signed by another key", "verify the signature" in str(e), str(e))

    # A merchant key the sandbox does not know: SIGN_ERROR, as WeChat answers.
    forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged_pem = forged_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    forged = sdk(a.base_url, info, a.keys_dir)
    from wechatpayv3.utils import load_private_key
    forged._core._private_key = load_private_key(forged_pem)
    code, body = forged.query(out_trade_no=no)
    check("sandbox refuses a forged merchant signature with 401 SIGN_ERROR", code == 401 and "SIGN_ERROR" in str(body), f"{code} {body}")

    failed = results.count(False)
    print(f"sdk: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
