#!/usr/bin/env python3
"""Generates request-signature.json: the request signing vectors shared by the server's tests
and the mini-program's. Computed with Python's hmac/hashlib, independently of the Rust code.

signature = hex HMAC-SHA256(sign_key, METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nhex_sha256(BODY)\n)
"""
import hashlib, hmac, json

cases = [
    ("PATCH", "/api/users/me", "1764230400", "n0nce-0123456789abcdef", '{"nickname":"Alice"}'),
    ("PUT", "/api/users/me/phone", "1764230401", "abcdefghijklmnop", '{"phone":"13812345678"}'),
    ("POST", "/api/merchants/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/payment-codes/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c/disable", "1764230402", "nonce_with_underscores_and-dashes", ""),
    ("POST", "/api/payments?source=qr&x=1", "1764230403", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", '{"payment_code_id":"c1","amount_fen":1500}'),
    ("POST", "/api/merchants", "1764230404", "unicode-body-000001", '{"merchant_name":"老王面馆","contact_name":"王","contact_phone":"13912345678","business_license":"91110000MA01ABCD2X","address":"北京市"}'),
]
key = hashlib.sha256(b"vector sign key").hexdigest()
out = []
for method, path, ts, nonce, body in cases:
    body_bytes = body.encode("utf-8")
    canonical = f"{method}\n{path}\n{ts}\n{nonce}\n{hashlib.sha256(body_bytes).hexdigest()}\n"
    sig = hmac.new(key.encode(), canonical.encode("utf-8"), hashlib.sha256).hexdigest()
    out.append({"method": method, "path_with_query": path, "timestamp": ts, "nonce": nonce,
                "body": body, "sign_key": key, "canonical": canonical, "expected": sig})
with open("request-signature.json", "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=2)
    f.write("\n")
