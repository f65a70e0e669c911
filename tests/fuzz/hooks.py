"""Schemathesis hooks for the API fuzz run (`.ci/fuzz.sh`), and its set-up and final check.

As hooks (`SCHEMATHESIS_HOOKS=hooks`, with this directory on `PYTHONPATH`): every request
gets the bearer token of the role its route needs (an admin for `/api/admin/*`, the owner of
an approved merchant for `/api/merchants*`, a shopper otherwise; `/api/auth/logout` a session
of its own), an `Idempotency-Key` when it has none, and a valid request signature over the
exact bytes that are sent (`X-Timestamp`, `X-Nonce`, `X-Signature`, as
`src/security/signing.rs` checks them), so fuzzed input reaches the handlers instead of
stopping at authentication. A merchant route's `{id}` is usually the seeded merchant's.
Successful points changes are written down for the final check; error answers are checked
for the `{code, message, trace_id}` body.

As a script:
- `python hooks.py seed`: signs in (admin password, sandbox login codes), registers and
  approves a merchant, gives the shopper and two bystanders points, and writes the state
  file (`FUZZ_STATE`) the hooks read.
- `python hooks.py check`: every seeded user's balance is what it was, plus the points
  changes the run was answered with (a bystander's: exactly what it was), and each user's
  ledger history sums to their balance.

Environment: `FUZZ_BASE_URL` (the server), `FUZZ_STATE` (the state file),
`FUZZ_ADMIN_PASSWORD` (seed only).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import threading
import time
import uuid
import zlib
from urllib.parse import urlsplit

import requests

BASE = os.environ.get("FUZZ_BASE_URL", "http://127.0.0.1:8080").rstrip("/")
STATE_PATH = os.environ.get("FUZZ_STATE", "/tmp/points-fuzz-state.json")

# Routes that take no token at all (a token would not hurt, but they are for anyone).
PUBLIC = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/api-docs",
    "/api/auth/wechat-login",
    "/api/auth/refresh",
    "/api/admin/login",
    "/api/wechat/",
)


# ---------------------------------------------------------------------------------------
# Signing (src/security/signing.rs)


def canonical(method: str, path_with_query: str, ts: str, nonce: str, body: bytes) -> str:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path_with_query}\n{ts}\n{nonce}\n{digest}\n"


def signature_headers(sign_key: str, method: str, path_with_query: str, body: bytes) -> dict:
    ts = str(int(time.time()))
    nonce = "fz" + uuid.uuid4().hex
    mac = hmac.new(
        sign_key.encode(), canonical(method, path_with_query, ts, nonce, body).encode(), hashlib.sha256
    )
    return {"X-Timestamp": ts, "X-Nonce": nonce, "X-Signature": mac.hexdigest()}


def body_bytes(body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        # http.client sends a str body as ISO-8859-1 when it can.
        try:
            return body.encode("iso-8859-1")
        except UnicodeEncodeError:
            return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    # The document has no multipart or streamed bodies.
    raise TypeError(f"cannot sign a {type(body).__name__} body")


def path_with_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


# ---------------------------------------------------------------------------------------
# Set-up (run once before Schemathesis)


def _post(path: str, body: dict, token: str | None = None, headers: dict | None = None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    return requests.post(BASE + path, json=body, headers=h, timeout=30)


def _login(name: str) -> dict:
    res = _post("/api/auth/wechat-login", {"code": f"test-{name}.{uuid.uuid4().hex[:8]}"})
    res.raise_for_status()
    body = res.json()
    return {
        "access_token": body["access_token"],
        "sign_key": body["sign_key"],
        "user_id": body["user"]["id"],
    }


def _signed_post(session: dict, path: str, body: dict):
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    headers.update(signature_headers(session["sign_key"], "POST", path, raw))
    headers["Authorization"] = f"Bearer {session['access_token']}"
    return requests.post(BASE + path, data=raw, headers=headers, timeout=30)


def _adjust(admin: str, user_id: str, points: int) -> None:
    res = _post(
        f"/api/admin/points/{user_id}/adjust",
        {"points": points, "reason": "fuzz seed"},
        token=admin,
    )
    if res.status_code != 200:
        sys.exit(f"seed: adjusting {user_id} answered {res.status_code} {res.text}")


def _balance(session: dict) -> int:
    res = requests.get(
        BASE + "/api/points/balance",
        headers={"Authorization": f"Bearer {session['access_token']}"},
        timeout=30,
    )
    if res.status_code != 200:
        sys.exit(f"balance of {session['user_id']} answered {res.status_code} {res.text}")
    return int(res.json()["available"])


def _ledger_sum(session: dict) -> int:
    total, cursor = 0, None
    while True:
        url = BASE + "/api/points/history?limit=100" + (f"&cursor={cursor}" if cursor else "")
        res = requests.get(url, headers={"Authorization": f"Bearer {session['access_token']}"}, timeout=30)
        if res.status_code != 200:
            sys.exit(f"history of {session['user_id']} answered {res.status_code} {res.text}")
        page = res.json()
        total += sum(int(item["change"]) for item in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return total


def seed() -> None:
    password = os.environ["FUZZ_ADMIN_PASSWORD"]
    res = _post("/api/admin/login", {"username": "admin", "password": password})
    if res.status_code != 200:
        sys.exit(f"seed: admin login answered {res.status_code} {res.text}")
    admin = res.json()["access_token"]

    shopper = _login("fuzz-shopper")
    owner = _login("fuzz-merchant")
    logout = _login("fuzz-logout")
    bystanders = [_login(f"fuzz-bystander-{i}") for i in range(2)]

    res = _signed_post(
        owner,
        "/api/merchants",
        {
            "merchant_name": "Fuzz shop",
            "contact_name": "Wang",
            "contact_phone": "13912345678",
            "business_license": "91110000MA01ABCD2X",
            "address": "1 Chang'an Avenue, Beijing",
        },
    )
    if res.status_code != 201:
        sys.exit(f"seed: merchant registration answered {res.status_code} {res.text}")
    merchant_id = res.json()["id"]
    res = _post(f"/api/admin/merchants/{merchant_id}/approve", {}, token=admin)
    if res.status_code != 200:
        sys.exit(f"seed: approval answered {res.status_code} {res.text}")

    _adjust(admin, shopper["user_id"], 1000)
    for b in bystanders:
        _adjust(admin, b["user_id"], 500)

    users = {"shopper": shopper, "owner": owner}
    users.update({f"bystander{i}": b for i, b in enumerate(bystanders)})
    balances = {name: _balance(s) for name, s in users.items()}
    state = {
        "admin": admin,
        "shopper": shopper,
        "owner": owner,
        "logout": logout,
        "merchant_id": merchant_id,
        "users": users,
        "balances": balances,
        "changes_path": STATE_PATH + ".changes",
    }
    with open(STATE_PATH, "w") as f:
        json.dump(state, f)
    open(state["changes_path"], "w").close()
    print(f"seed: merchant {merchant_id}, balances {balances}")


def check() -> None:
    with open(STATE_PATH) as f:
        state = json.load(f)
    changes: dict[str, int] = {}
    with open(state["changes_path"]) as f:
        for line in f:
            row = json.loads(line)
            changes[row["user_id"]] = changes.get(row["user_id"], 0) + row["change"]
    failed = False
    for name, session in state["users"].items():
        before = state["balances"][name]
        moved = changes.get(session["user_id"], 0)
        if name.startswith("bystander") and moved:
            print(f"FAIL {name}: the run was answered with changes to a user it never signed in as")
            failed = True
        after = _balance(session)
        ledger = _ledger_sum(session)
        ok = after == before + moved and ledger == after
        failed |= not ok
        print(
            f"{'ok  ' if ok else 'FAIL'} {name}: before {before}, answered changes {moved:+d}, "
            f"after {after}, ledger sum {ledger}"
        )
    print(f"{sum(1 for _ in open(state['changes_path']))} points changes answered during the run")
    sys.exit(1 if failed else 0)


# ---------------------------------------------------------------------------------------
# Hooks (only when Schemathesis imports this module)

try:
    import schemathesis
except ImportError:  # the seed/check script needs only requests
    schemathesis = None

_state: dict | None = None
_lock = threading.Lock()


def state() -> dict:
    global _state
    if _state is None:
        with open(STATE_PATH) as f:
            _state = json.load(f)
    return _state


def session_for(path: str) -> dict | None:
    """The session a route is called with: None for the public routes."""
    s = state()
    if path in PUBLIC or path.startswith(("/api-docs/", "/api/wechat/")):
        return None
    if path == "/api/auth/logout":
        return s["logout"]
    if path.startswith("/api/admin/"):
        return {"access_token": s["admin"], "sign_key": ""}
    if path.startswith("/api/merchants"):
        return s["owner"]
    return s["shopper"]


if schemathesis is not None:

    @schemathesis.hook
    def map_path_parameters(ctx, path_parameters):
        # A merchant route's {id}: the seeded merchant three times in four (by a hash of the
        # drawn value, so runs stay reproducible), a drawn one otherwise.
        op = ctx.operation
        if (
            op is not None
            and op.path.startswith("/api/merchants/{id}")
            and path_parameters
            and "id" in path_parameters
            and zlib.crc32(repr(path_parameters["id"]).encode()) % 4 != 0
        ):
            path_parameters["id"] = state()["merchant_id"]
        return path_parameters

    def protect_seeded(case) -> None:
        """Admin routes learn ids from earlier answers (the user and merchant lists): keep
        them from disabling the seeded users or merchant, which would end the run's reach,
        and from touching a bystander, whose balance must not move. Such a case names an
        unknown id instead (404)."""
        if not case.operation.path.startswith("/api/admin/") or not case.path_parameters:
            return
        s = state()
        protected = {u["user_id"] for u in s["users"].values()} | {s["logout"]["user_id"]}
        if not case.operation.path.startswith("/api/admin/points/"):
            protected.add(s["merchant_id"])
        else:
            protected -= {s["shopper"]["user_id"], s["owner"]["user_id"]}
        for name, value in list(case.path_parameters.items()):
            if isinstance(value, str) and value in protected:
                case.path_parameters[name] = "fz-protected-" + value

    @schemathesis.hook
    def before_call(ctx, case, kwargs):
        protect_seeded(case)
        session = session_for(case.operation.path)
        if session is None:
            return
        if case.headers is None:
            case.headers = {}
        for name in list(case.headers):
            if name.lower() in ("authorization", "x-timestamp", "x-nonce", "x-signature"):
                del case.headers[name]
        case.headers["Authorization"] = f"Bearer {session['access_token']}"
        if case.method.upper() != "GET" and not any(h.lower() == "idempotency-key" for h in case.headers):
            case.headers["Idempotency-Key"] = "fz-" + uuid.uuid4().hex
        if not session.get("sign_key"):
            return
        # Sign exactly what will be sent: prepare the request the way the transport does.
        sent = case.as_transport_kwargs(base_url=BASE)
        prepared = requests.Request(
            method=sent["method"],
            url=sent["url"],
            headers=sent.get("headers"),
            params=sent.get("params"),
            data=sent.get("data"),
            json=sent.get("json"),
            files=sent.get("files"),
        ).prepare()
        case.headers.update(
            signature_headers(
                session["sign_key"],
                case.method,
                path_with_query(prepared.url),
                body_bytes(prepared.body),
            )
        )

    @schemathesis.hook
    def after_call(ctx, case, response):
        # Points changes the run was answered with, for `check`.
        if response.status_code != 200:
            return
        path = case.operation.path
        if path not in ("/api/points/deduct", "/api/admin/points/{user_id}/adjust"):
            return
        try:
            body = json.loads(response.content)
        except ValueError:
            return
        if not isinstance(body, dict) or body.get("duplicate") or "change" not in body:
            return
        row = {"user_id": body.get("user_id"), "change": int(body["change"]), "path": path}
        with _lock, open(state()["changes_path"], "a") as f:
            f.write(json.dumps(row) + "\n")

    @schemathesis.check
    def error_body_is_json(ctx, response, case):
        """Every 4xx/5xx answer is JSON `{code, message, trace_id}` (strings)."""
        if response.status_code < 400:
            return None
        try:
            body = json.loads(response.content)
        except ValueError:
            raise AssertionError(
                f"{response.status_code} answer is not JSON: {response.content[:200]!r}"
            ) from None
        # WeChat's notification routes answer in WeChat's format: {code: FAIL, message}.
        fields = ("code", "message") if case.operation.path.startswith("/api/wechat/") else (
            "code",
            "message",
            "trace_id",
        )
        for field in fields:
            if not isinstance(body, dict) or not isinstance(body.get(field), str):
                raise AssertionError(
                    f"{response.status_code} answer lacks a string {field!r}: {response.content[:200]!r}"
                )
        return None


if __name__ == "__main__":
    {"seed": seed, "check": check}[sys.argv[1]]()
