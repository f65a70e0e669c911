"""Builds WeChat Pay notifications with Python's `cryptography`, straight from WECHATPAY.md,
and runs the server's real verifier (`sandbox verify-notification`) on them: the genuine one
is accepted (public-key mode and certificate mode), and every tampered variant is refused."""

import argparse
import base64
import datetime
import json
import os
import secrets
import string
import subprocess
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

MCHID = "1900000109"
APPID = "wxinterop00000001"
KEY_ID = "PUB_KEY_ID_0119000001092026INTEROP000001"
ALNUM = string.ascii_letters + string.digits

results = []


def rand(n):
    return "".join(secrets.choice(ALNUM) for _ in range(n))


def sign(key, timestamp, nonce, body: bytes) -> str:
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def encrypt(apiv3_key: str, nonce: str, aad: str, plaintext: bytes) -> str:
    return base64.b64encode(AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext, aad.encode())).decode()


def notification(apiv3_key, resource: dict, nonce=None) -> bytes:
    nonce = nonce or rand(12)
    body = {
        "id": "EV-" + rand(16),
        "create_time": "2026-11-27T10:00:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": encrypt(apiv3_key, nonce, "transaction", json.dumps(resource).encode()),
            "associated_data": "transaction",
            "nonce": nonce,
        },
    }
    # Non-ASCII kept as UTF-8 bytes: the verifier must use the raw bytes.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def transaction(mchid=MCHID, appid=APPID):
    return {
        "appid": appid, "mchid": mchid, "out_trade_no": "interop-0001", "transaction_id": "4200000000202611270000000001",
        "trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功",
        "success_time": "2026-11-27T10:00:00+08:00", "payer": {"openid": "o" + rand(27)},
        "amount": {"total": 1234, "payer_total": 1234, "currency": "CNY", "payer_currency": "CNY"},
    }


class Harness:
    def __init__(self, verifier, work):
        self.verifier = verifier
        self.work = work
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = os.path.join(work, "np_public.pem")
        with open(self.public_pem, "wb") as f:
            f.write(self.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.apiv3 = rand(32)
        self.apiv3_file = os.path.join(work, "np_apiv3_key")
        with open(self.apiv3_file, "w") as f:
            f.write(self.apiv3)
        # Certificate mode: a platform certificate with its own key and serial.
        self.cert_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA interop")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.cert_key.public_key())
                .serial_number(0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=365)).sign(self.cert_key, hashes.SHA256()))
        self.cert_serial = format(cert.serial_number, "X")
        self.cert_pem = os.path.join(work, "np_cert.pem")
        with open(self.cert_pem, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))

    def headers(self, body, key=None, serial=KEY_ID, timestamp=None, nonce=None):
        timestamp = str(int(time.time())) if timestamp is None else str(timestamp)
        nonce = nonce or rand(32)
        return {
            "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": sign(key or self.key, timestamp, nonce, body),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }

    def run(self, headers, body, apiv3_file=None):
        h, b = os.path.join(self.work, "np_headers.json"), os.path.join(self.work, "np_body.json")
        with open(h, "w") as f:
            json.dump(headers, f)
        with open(b, "wb") as f:
            f.write(body)
        cmd = [self.verifier, "verify-notification", "--headers", h, "--body", b,
               "--apiv3-key-file", apiv3_file or self.apiv3_file,
               "--platform-public-key", self.public_pem, "--platform-public-key-id", KEY_ID,
               "--platform-cert", self.cert_pem, "--mchid", MCHID, "--appid", APPID]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return p.returncode, (p.stdout + p.stderr).strip()

    def expect(self, name, headers, body, accepted, reason="", apiv3_file=None):
        code, out = self.run(headers, body, apiv3_file)
        ok = (code == 0) if accepted else (code == 1 and reason in out)
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} notify: {name}" + ("" if ok else f" (exit {code}: {out})"))


def flip(data: bytes, index: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--verifier", required=True)
    p.add_argument("--work", required=True)
    a = p.parse_args()
    t = Harness(a.verifier, a.work)

    body = notification(t.apiv3, transaction())
    headers = t.headers(body)
    t.expect("genuine notification (public-key mode) is accepted", headers, body, True)
    t.expect("genuine notification (certificate mode, serial from the cert) is accepted",
             t.headers(body, key=t.cert_key, serial=t.cert_serial), body, True)

    # One byte of the body (inside the id, so it stays JSON).
    t.expect("one byte of body changed", headers, flip(body, body.index(b"EV-") + 4), False, "BadSignature")
    t.expect("one byte of the nonce header changed", {**headers, "Wechatpay-Nonce": flip(headers["Wechatpay-Nonce"].encode(), 0).decode()}, body, False, "BadSignature")
    t.expect("timestamp header moved by one second", {**headers, "Wechatpay-Timestamp": str(int(headers["Wechatpay-Timestamp"]) + 1)}, body, False, "BadSignature")
    sig = base64.b64decode(headers["Wechatpay-Signature"])
    t.expect("one byte of the signature changed", {**headers, "Wechatpay-Signature": base64.b64encode(flip(sig, 7)).decode()}, body, False, "BadSignature")
    t.expect("serial changed by one character", {**headers, "Wechatpay-Serial": KEY_ID[:-1] + "2"}, body, False, "UnknownSerial")
    t.expect("certificate-mode signature under the public key's id", t.headers(body, key=t.cert_key), body, False, "BadSignature")
    t.expect("genuinely signed 301 s ago (stale)", t.headers(body, timestamp=int(time.time()) - 301), body, False, "StaleTimestamp")
    t.expect("signature test probe", {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]}, body, False, "SignTestProbe")
    for missing in ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"]:
        t.expect(f"missing {missing}", {k: v for k, v in headers.items() if k != missing}, body, False, "MissingHeader")

    # The tag: one byte of the AES-GCM tag changed, the body then signed correctly.
    parsed = json.loads(body)
    raw = base64.b64decode(parsed["resource"]["ciphertext"])
    parsed["resource"]["ciphertext"] = base64.b64encode(flip(raw, len(raw) - 1)).decode()
    bad_tag = json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()
    t.expect("one byte of the GCM tag changed (validly signed)", t.headers(bad_tag), bad_tag, False, "Decrypt")
    parsed["resource"]["ciphertext"] = base64.b64encode(raw[:10]).decode()
    short = json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()
    t.expect("truncated ciphertext (validly signed)", t.headers(short), short, False, "Decrypt")
    wrong_key_file = os.path.join(a.work, "np_wrong_key")
    with open(wrong_key_file, "w") as f:
        f.write(rand(32))
    t.expect("wrong APIv3 key", headers, body, False, "Decrypt", apiv3_file=wrong_key_file)
    not_json = b"<xml><return_code>SUCCESS</return_code></xml>"
    t.expect("validly signed non-JSON body", t.headers(not_json), not_json, False, "NotJson")
    other_mch = notification(t.apiv3, transaction(mchid="1900000999"))
    t.expect("resource for another mchid", t.headers(other_mch), other_mch, False, "WrongMerchant")
    other_app = notification(t.apiv3, transaction(appid="wxsomeoneelse0001"))
    t.expect("resource for another appid", t.headers(other_app), other_app, False, "WrongApp")

    failed = results.count(False)
    print(f"notify: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
