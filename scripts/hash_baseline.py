#!/usr/bin/env python3
"""Reference implementation of the recording hash, in plain Python (standard library only).

It applies the same identity rules as api-recorder (docs/recording-format.md) and is the
baseline that `scripts/bench-hash.sh` measures the Swift implementation against. It is also a
second, independent reading of the rules: `--check` compares each file's name with its hash.

usage: hash_baseline.py [--check] [--repeat N] DIR...
       hash_baseline.py --print DIR...     (what `api-recorder hash DIR...` prints, as a whole
                                            command: `<hash>  <path>` per file)
"""
import hashlib
import json
import os
import re
import sys
import time
from urllib.parse import urlparse

MODEL_LIST_PATHS = ("/api/tags", "/v1/models", "/v1/openai/v1/models")
LONG_DECIMAL = re.compile(r"(-?\d+\.\d{4,})")
SCORE = re.compile(r"score:\s*[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?")
ATTRIBUTES = re.compile(r",?\s*attributes:\s*\{[^}]*\}")
UUID = r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}"
DOCUMENT_ID = re.compile(r"document_id:\s*" + UUID)
CITATION = re.compile(r"<\|" + UUID + r"\|>")


def normalize_string(value):
    value = SCORE.sub("score: __NORMALIZED__", value)
    value = ATTRIBUTES.sub("", value)
    value = DOCUMENT_ID.sub("document_id: __NORMALIZED__", value)
    value = CITATION.sub("<|__NORMALIZED__|>", value)
    return LONG_DECIMAL.sub(lambda m: f"{float(m.group(0)):.5f}", value)


def normalize(value, exclude_stream_options=False, is_root=True):
    if isinstance(value, dict):
        out = {k: normalize(v, is_root=False) for k, v in value.items()}
        if exclude_stream_options:
            out.pop("stream_options", None)
        if is_root:
            for extra_key in ("extra_body", "extra_query"):
                extra = out.get(extra_key)
                if isinstance(extra, dict):
                    extra.pop("project_id", None)
        return out
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, str):
        return normalize_string(value)
    return value


def canonical(obj):
    return json.dumps(obj, sort_keys=True)


def inference_identity(method, url, body, test_id):
    parsed = urlparse(url)
    ident = {
        "method": method.upper(),
        "endpoint": parsed.path,
        "body": normalize(body, exclude_stream_options="bedrock" in parsed.netloc),
    }
    if parsed.path not in MODEL_LIST_PATHS:
        ident["test_id"] = test_id
    return ident


def tool_identity(provider, tool_name, kwargs):
    return {"provider": provider, "tool_name": tool_name, "kwargs": kwargs}


def http_identity(test_id, url, method, payload):
    return {"test_id": test_id, "url": url, "method": method.upper(), "payload": normalize(payload)}


def recording_identity(rec):
    req = rec["request"]
    if "tool_name" in req:
        return tool_identity(req.get("provider"), req["tool_name"], req.get("kwargs"))
    if "payload" in req:
        return http_identity(req.get("test_id", rec.get("test_id")), req["url"], req["method"], req["payload"])
    return inference_identity(req["method"], req["url"], req.get("body"), rec.get("test_id"))


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def model_digest(rec):
    body = rec["response"]["body"]
    tags = rec["request"].get("endpoint") == "/api/tags"
    if isinstance(body, dict) and "__data__" in body:
        body = body["__data__"]
    items = body["models"] if isinstance(body, dict) and "models" in body else body
    ids = []
    for item in items:
        data = item.get("__data__", item)
        ids.append(data["model"] if tags else data["id"])
    return sha256_hex("|".join(sorted(set(ids))))[:8]


def recording_files(roots):
    for root in roots:
        for folder, _, names in os.walk(root):
            if os.path.basename(folder) != "recordings":
                continue
            for name in sorted(names):
                if name.endswith(".json"):
                    yield os.path.join(folder, name)


def print_hashes(roots):
    """`api-recorder hash` as a plain Python command: read, parse, hash and print each file."""
    out = []
    for path in recording_files(roots or ["."]):
        with open(path, "rb") as f:
            rec = json.loads(f.read())
        out.append(f"{sha256_hex(canonical(recording_identity(rec)))}  {path}\n")
    sys.stdout.write("".join(out))
    return 0


def main(argv):
    if "--print" in argv:
        return print_hashes([a for a in argv if not a.startswith("--")])
    check = "--check" in argv
    repeat = 1
    if "--repeat" in argv:
        repeat = int(argv[argv.index("--repeat") + 1])
    roots = [a for i, a in enumerate(argv) if not a.startswith("--") and (i == 0 or argv[i - 1] != "--repeat")]
    files = list(recording_files(roots or ["."]))
    contents = [open(p, "rb").read() for p in files]
    problems = 0
    start = time.perf_counter()
    for _ in range(repeat):
        for path, data in zip(files, contents):
            rec = json.loads(data)
            digest = sha256_hex(canonical(recording_identity(rec)))
            if check:
                name = os.path.basename(path)
                expected = f"{digest}.json"
                if name.startswith("models-"):
                    expected = f"models-{digest}-{model_digest(rec)}.json"
                if name != expected:
                    problems += 1
                    print(f"{path}: content hashes to {expected}")
    elapsed = time.perf_counter() - start
    total = sum(len(c) for c in contents) * repeat
    print(f"python-baseline files={len(files) * repeat} bytes={total} seconds={elapsed:.6f}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
