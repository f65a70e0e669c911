#!/usr/bin/env python3
"""The Compose stack's app and sandbox, run as processes with the environment
deploy/docker-compose.yml gives them, and one payment through them.

There is no Docker engine on the CI machine, so this starts the same binaries the image holds
(`points-app`, `sandbox`), each with exactly the environment and command `docker-compose
config` resolves for its service, and changes only what a container network provides and a
host does not:

| in the Compose file                       | here                                      |
| ----------------------------------------- | ----------------------------------------- |
| service names `sandbox`, `mysql`, `redis` | 127.0.0.1 (the machine's MariaDB, Redis)  |
| `nginx:8080` (notification entry)         | the app's own address (one replica)       |
| listen `0.0.0.0`, ports 8080 / 8081       | 127.0.0.1, free ports                     |
| volume `sandbox-keys` (`/app/data` in the sandbox, `/sandbox-keys` in the app) | one temporary folder |
| the app's `/app/data`                     | another temporary folder                  |
| database `points`                         | `points_compose_check` (same user and password, created here, dropped after) |

Then it signs in as the admin with the file's password and as two WeChat users (through the
sandbox's login), registers and approves a merchant, makes a payment code, pays an order at
the sandbox and waits for the notification to mark it paid and award its points. Needs
docker-compose (for `config`), PyYAML and requests, the built binaries (POINTS_APP_BIN,
SANDBOX_BIN), and MariaDB reachable as root on 127.0.0.1:3306 (to create the user).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DB_NAME = "points_compose_check"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mariadb(sql: str) -> None:
    subprocess.run(
        ["mariadb", "-uroot", "--protocol=tcp", "-h127.0.0.1", "-e", sql], check=True
    )


def resolved_services() -> dict:
    out = subprocess.run(
        ["docker-compose", "-f", os.path.join(ROOT, "deploy/docker-compose.yml"), "config"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return yaml.safe_load(out)["services"]


def substitute(value: str, table: list[tuple[str, str]]) -> str:
    for old, new in table:
        value = value.replace(old, new)
    return value


def wait_for(predicate, what: str, proc: subprocess.Popen, log: str, seconds: float = 90):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what}: the process exited ({proc.returncode}):\n{open(log).read()[-3000:]}")
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.3)
    sys.exit(f"{what}: not ready after {seconds} s:\n{open(log).read()[-3000:]}")


def main() -> None:
    app_bin = os.path.abspath(os.environ["POINTS_APP_BIN"])
    sandbox_bin = os.path.abspath(os.environ["SANDBOX_BIN"])
    services = resolved_services()
    sandbox, app = services["sandbox"], services["app"]

    work = tempfile.mkdtemp(prefix="points-compose-")
    keys, app_data, bin_dir = (os.path.join(work, d) for d in ("keys", "app-data", "bin"))
    for d in (keys, app_data, bin_dir):
        os.makedirs(d)
    # The image has both binaries on PATH; so does this folder.
    os.symlink(sandbox_bin, os.path.join(bin_dir, "sandbox"))
    os.symlink(app_bin, os.path.join(bin_dir, "points-app"))
    sandbox_port, app_port = free_port(), free_port()
    table = [
        ("--host 0.0.0.0", "--host 127.0.0.1"),
        ("--port 8081", f"--port {sandbox_port}"),
        ("http://sandbox:8081", f"http://127.0.0.1:{sandbox_port}"),
        ("http://nginx:8080", f"http://127.0.0.1:{app_port}"),
        ("@mysql:3306/points", f"@127.0.0.1:3306/{DB_NAME}"),
        ("redis://redis:6379", "redis://127.0.0.1:6379"),
        ("/sandbox-keys/", keys + "/"),
        ("/app/data", None),  # placeholder, per service below
    ]

    def env_of(service: dict, data_dir: str) -> dict:
        rows = [(o, n if n is not None else data_dir) for o, n in table]
        env = {k: substitute(str(v), rows) for k, v in (service.get("environment") or {}).items()}
        env["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")
        if env.get("APP_HOST") == "0.0.0.0":
            env["APP_HOST"] = "127.0.0.1"
        if env.get("APP_PORT") == "8080":
            env["APP_PORT"] = str(app_port)
        return env

    # The database user the file names, on the machine's MariaDB.
    url = app["environment"]["DATABASE_URL"]
    user, password = url.split("//", 1)[1].split("@", 1)[0].split(":", 1)
    mariadb(
        f"DROP DATABASE IF EXISTS {DB_NAME}; CREATE DATABASE {DB_NAME};"
        f" CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';"
        f" CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{password}';"
        f" GRANT ALL ON {DB_NAME}.* TO '{user}'@'127.0.0.1';"
        f" GRANT ALL ON {DB_NAME}.* TO '{user}'@'localhost';"
    )

    procs: list[subprocess.Popen] = []
    try:
        # The sandbox: its entrypoint and command as the file gives them.
        sandbox_log = os.path.join(work, "sandbox.log")
        rows = [(o, n if n is not None else keys) for o, n in table]
        # `config` prints `$` escaped as `$$` (so its output reads back the same); Compose
        # hands the container a single `$`.
        argv = [
            substitute(a, rows).replace("$$", "$")
            for a in sandbox["entrypoint"] + sandbox["command"]
        ]
        procs.append(
            subprocess.Popen(
                argv,
                env=env_of(sandbox, keys),
                stdout=open(sandbox_log, "w"),
                stderr=subprocess.STDOUT,
                cwd=work,
            )
        )
        wait_for(
            lambda: "sandbox listening on" in open(sandbox_log).read(),
            "sandbox",
            procs[0],
            sandbox_log,
        )

        # One app replica: the image's command (`points-app`, serving) with the file's env.
        app_log = os.path.join(work, "app.log")
        procs.append(
            subprocess.Popen(
                ["points-app"],
                env=env_of(app, app_data),
                stdout=open(app_log, "w"),
                stderr=subprocess.STDOUT,
                cwd=work,
            )
        )
        base = f"http://127.0.0.1:{app_port}"
        import requests

        wait_for(
            lambda: requests.get(base + "/readyz", timeout=2).status_code == 200,
            "app",
            procs[1],
            app_log,
        )

        os.environ["FUZZ_BASE_URL"] = base
        os.environ["FUZZ_STATE"] = os.path.join(work, "state.json")
        os.environ["FUZZ_ADMIN_PASSWORD"] = app["environment"]["APP_ADMIN_PASSWORD"]
        sys.path.insert(0, os.path.join(ROOT, "tests", "fuzz"))
        import hooks  # the signing and sign-in helpers of the fuzz run

        hooks.seed()
        state = json.load(open(os.environ["FUZZ_STATE"]))
        shopper, owner, merchant = state["shopper"], state["owner"], state["merchant_id"]
        before = hooks._balance(shopper)

        res = hooks._signed_post(owner, f"/api/merchants/{merchant}/payment-codes", {"label": "till 1"})
        if res.status_code != 201:
            sys.exit(f"payment code: {res.status_code} {res.text}")
        code = res.json()["id"]
        raw = json.dumps({"payment_code_id": code, "amount_fen": 2_500}).encode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {shopper['access_token']}",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        headers.update(hooks.signature_headers(shopper["sign_key"], "POST", "/api/payments", raw))
        res = requests.post(base + "/api/payments", data=raw, headers=headers, timeout=30)
        if res.status_code != 200 or res.json().get("status") != "paying":
            sys.exit(f"payment: {res.status_code} {res.text}")
        order_no = res.json()["order_no"]

        # The shopper pays at the sandbox, which notifies the app (signed, encrypted).
        res = requests.post(
            f"http://127.0.0.1:{sandbox_port}/sandbox/orders/{order_no}/pay", timeout=30
        )
        if not res.ok:
            sys.exit(f"sandbox pay: {res.status_code} {res.text}")
        order = {}
        for _ in range(100):
            order = requests.get(
                f"{base}/api/payments/{order_no}?wait_ms=1000",
                headers={"Authorization": f"Bearer {shopper['access_token']}"},
                timeout=30,
            ).json()
            if order.get("status") == "paid" and order.get("points_awarded"):
                break
            time.sleep(0.2)
        if order.get("status") != "paid" or order.get("points_awarded") != 25:
            sys.exit(f"the order never got paid and awarded: {order}\n{open(app_log).read()[-3000:]}")
        after = hooks._balance(shopper)
        if after - before != 25:
            sys.exit(f"balance went from {before} to {after}, expected +25")
        print(f"compose stack (as processes): order {order_no} paid, 25 points awarded")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()
        mariadb(f"DROP DATABASE IF EXISTS {DB_NAME}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
