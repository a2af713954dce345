#!/usr/bin/env python3
"""The server's memory under N concurrent wrong sign-ins (issue 16, finding 6).

Starts `jamuna serve --dev` (JAMUNA_BIN, default $CARGO_TARGET_DIR/debug/jamuna)
on a free port in a temporary data directory, sends N wrong-password logins at
once (each to a different address, so the per-account throttle does not stop
them before the password is hashed, and with the per-client rate limit
lifted), and prints the server's resident memory high-water mark (VmHWM)
before and after. argon2id costs ~19 MiB per hash: unbounded, N hashes at
once cost N × 19 MiB; Jamuna runs one per core.

Usage: scripts/bench-logins.py [N]   (default 200)
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/jamuna-target"))
binary = os.environ.get("JAMUNA_BIN", os.path.join(target, "debug", "jamuna"))
data = tempfile.mkdtemp(prefix="jamuna-bench-logins-")
env = dict(os.environ, JAMUNA_DATA_DIR=data, JAMUNA_RATE_LIMIT_PER_MINUTE="100000000", JAMUNA_LOG="error")
server = subprocess.Popen([binary, "serve", "--dev", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, env=env, text=True)
base = None
for line in server.stdout:
    m = re.search(r"listening on (http://\S+)", line)
    if m:
        base = m.group(1)
        break
if not base:
    sys.exit("the server did not start")


def hwm_mib():
    with open(f"/proc/{server.pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024


def login(i):
    body = json.dumps({"tenant": "demo", "email": f"nobody{i}@demo.example", "password": "a wrong password"}).encode()
    req = urllib.request.Request(f"{base}/api/v1/auth/login", body, {"Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(req, timeout=600).status
    except urllib.error.HTTPError as e:
        return e.code


try:
    before = hwm_mib()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        statuses = list(pool.map(login, range(n)))
    after = hwm_mib()
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"{n} concurrent wrong logins: answers {counts}")
    print(f"server memory high-water: {before:.0f} MiB before, {after:.0f} MiB after (+{after - before:.0f} MiB)")
finally:
    server.terminate()
    server.wait()
