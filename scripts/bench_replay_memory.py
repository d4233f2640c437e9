#!/usr/bin/env python3
"""Resident memory of `api-recorder serve` after replaying every inference recording of a tree.

usage: bench_replay_memory.py API_RECORDER_BINARY RECORDINGS_ROOT [FALLBACK_DIR]

Each recording's request is sent back to a replay proxy whose routes reproduce the recorded
URLs; afterwards VmRSS of the proxy process is read from /proc. Standard library only.
"""
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit


def recordings(root):
    for folder, _, names in os.walk(root):
        if os.path.basename(folder) == "recordings":
            for name in sorted(names):
                if name.endswith(".json"):
                    yield os.path.join(folder, name)


def split_url(url, endpoint):
    """Recorded base and the path below it, as a client of the proxy would call it."""
    tail = endpoint[3:] if endpoint.startswith("/v1/") else endpoint
    if tail and url.endswith(tail) and len(url) > len(tail):
        return url[: -len(tail)], tail
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path


def main(binary, root, fallback="tests/integration/common/recordings"):
    jobs = []
    bases = {}
    for path in recordings(root):
        with open(path) as f:
            rec = json.load(f)
        req = rec["request"]
        if "payload" in req or "tool_name" in req:
            continue  # plain HTTP and tool recordings need their own adapters
        base, rest = split_url(req["url"], req.get("endpoint") or "")
        name = bases.setdefault(base, f"r{len(bases)}")
        jobs.append((req["method"], name, rest, req.get("body") or {}, rec.get("test_id")))

    args = [binary, "serve", "--port", "0", "--mode", "replay", "--root", root, "--fallback-dir", fallback]
    for base, name in bases.items():
        args += ["--upstream", f"{name}=http://127.0.0.1:9", "--recorded-base", f"{name}={base}"]
    proxy = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proxy.stdout.readline()
        port = int(re.search(r":(\d+) mode=", line).group(1))
        ok = missed = 0
        for method, name, rest, body, test_id in jobs:
            data = None if method == "GET" else json.dumps(body).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/{name}{rest}", data=data, method=method)
            request.add_header("Content-Type", "application/json")
            if test_id:
                request.add_header("X-Test-ID", test_id)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                ok += 1
            except urllib.error.HTTPError as error:
                body = error.read()
                if b"recording_not_found" in body:
                    missed += 1
                else:
                    ok += 1  # a recorded error, replayed
        with open(f"/proc/{proxy.pid}/status") as f:
            rss_kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        print(f"replayed {ok} recordings ({missed} missed) through {len(bases)} routes")
        print(f"resident memory after replay: {rss_kb / 1024:.1f} MB (target < 100 MB)")
        return 0 if missed == 0 else 1
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
