#!/usr/bin/env python3
"""Runs deploy/nginx/nginx.conf for real on loopback in front of three stub instances and checks
what the comments in it promise:

- one user (same JWT `sub`) reaches the same instance before and after a token refresh;
- users are spread over the instances, and so are requests without a token;
- a caller's acceptable X-Request-Id reaches the instance and comes back; an unacceptable one
  is replaced by nginx's own id, and the instance sees that same id;
- a POST is not retried on another instance when the first one fails mid-request.

Needs `nginx` on PATH. Only 127.0.0.1 is used; everything it starts it stops.
Usage: python3 deploy/nginx/affinity_test.py
"""

import base64
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = os.path.join(HERE, "nginx.conf")


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stub(http.server.BaseHTTPRequestHandler):
    """An instance: answers which one it is and the request id it received."""

    posts = Counter()

    def _answer(self):
        port = self.server.server_address[1]
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            Stub.posts[port] += 1
            if self.path == "/api/fail":
                # Drop the connection without answering: nginx must not replay the POST.
                self.close_connection = True
                self.connection.shutdown(2)
                return
        body = json.dumps({"port": port, "rid": self.headers.get("X-Request-Id")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Request-Id", self.headers.get("X-Request-Id") or "none")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args):
        pass


def b64(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(user_id, issued_at):
    # Claim order as the server's identity module issues them: `sub` first.
    header = b64({"alg": "HS256", "typ": "JWT"})
    payload = b64({"sub": user_id, "role": "user", "iat": issued_at, "exp": issued_at + 7200})
    return f"{header}.{payload}.c2lnbmF0dXJl"


def main():
    if not shutil.which("nginx"):
        print("nginx not found", file=sys.stderr)
        return 2
    stubs = []
    for _ in range(3):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        stubs.append(srv)
    ports = [s.server_address[1] for s in stubs]
    listen = free_port()

    conf = open(CONF, encoding="utf-8").read()
    servers = re.findall(r"^\s*server\s+app:8080([^;]*);", conf, flags=re.M)
    assert len(servers) == 1, "expected one `server app:8080` line in the upstream"
    conf = re.sub(
        r"^(\s*)server\s+app:8080([^;]*);",
        lambda m: "".join(f"{m.group(1)}server 127.0.0.1:{p}{m.group(2)};\n" for p in ports),
        conf,
        flags=re.M,
    )
    assert "listen 8080;" in conf
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    conf = conf.replace("worker_processes auto;", "worker_processes 1;")

    tmp = tempfile.mkdtemp(prefix="points-nginx-")
    os.makedirs(os.path.join(tmp, "logs"))
    path = os.path.join(tmp, "nginx.conf")
    with open(path, "w", encoding="utf-8") as f:
        f.write(conf)
    log = open(os.path.join(tmp, "nginx.out"), "w")
    proc = subprocess.Popen(
        ["nginx", "-p", tmp, "-c", path, "-g", f"daemon off; pid {tmp}/nginx.pid;"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    failures = []
    try:
        base = f"http://127.0.0.1:{listen}"
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(base + "/api/ping", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("nginx did not start: " + open(log.name).read())
                time.sleep(0.1)

        def get(headers, path="/api/points/balance"):
            req = urllib.request.Request(base + path, headers=headers)
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read()), r.headers.get("X-Request-Id")

        users = [str(uuid.uuid4()) for _ in range(90)]
        moved = 0
        spread = Counter()
        for u in users:
            before, _ = get({"Authorization": "Bearer " + token(u, 1_800_000_000)})
            again, _ = get({"Authorization": "Bearer " + token(u, 1_800_000_000)})
            after, _ = get({"Authorization": "Bearer " + token(u, 1_800_086_400)})
            moved += before["port"] != again["port"] or before["port"] != after["port"]
            spread[before["port"]] += 1
        if moved:
            failures.append(f"{moved} of {len(users)} users changed instance across a refresh")
        if len(spread) != 3 or min(spread.values()) < 10:
            failures.append(f"users not spread over the three instances: {dict(spread)}")

        anon = Counter(get({})[0]["port"] for _ in range(90))
        if len(anon) != 3 or min(anon.values()) < 10:
            failures.append(f"requests without a token not spread: {dict(anon)}")

        body, rid = get({"X-Request-Id": "trace-abc_123.4:5"})
        if body["rid"] != "trace-abc_123.4:5" or rid != "trace-abc_123.4:5":
            failures.append(f"acceptable X-Request-Id not passed through: {body['rid']} / {rid}")
        body, rid = get({"X-Request-Id": "has spaces {json}"})
        if not re.fullmatch(r"[0-9a-f]{32}", body["rid"] or "") or rid != body["rid"]:
            failures.append(f"unacceptable X-Request-Id not replaced: {body['rid']} / {rid}")

        Stub.posts.clear()
        req = urllib.request.Request(base + "/api/fail", data=b"{}", method="POST")
        try:
            urllib.request.urlopen(req, timeout=10).read()
            failures.append("a POST dropped by the instance answered 2xx")
        except urllib.error.HTTPError as e:
            if e.code != 502:
                failures.append(f"a dropped POST answered {e.code}, expected 502")
        if sum(Stub.posts.values()) != 1:
            failures.append(f"a failed POST reached {sum(Stub.posts.values())} instances")

        metrics = urllib.request.Request(base + "/metrics")
        try:
            urllib.request.urlopen(metrics, timeout=5)
            failures.append("/metrics is reachable through nginx")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                failures.append(f"/metrics answered {e.code}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        for s in stubs:
            s.shutdown()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    checks = 7
    for f in failures:
        print("FAIL:", f)
    print(f"nginx affinity: {checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
