"""A seeded raw-HTTP fuzz of `api-recorder serve` (issue 19, part 5a).

Sends about 2,000 requests as raw bytes over `socket` (no HTTP library on the client side) to two
proxies, 1,000 each, sharing one generator:

- a `replay` proxy over a root holding a few real recordings, made first by a `record` proxy in
  front of a `FakeUpstream` with the `openai` SDK (chat, a stream, embeddings, completions, the
  model list), and
- a `record-if-missing` proxy in front of a `FakeUpstream` (JSON answers, SSE for
  `"stream": true`).

Each request is a valid one (a replay hit or miss, a recording, a control endpoint) or a mutation
of one: malformed request lines, odd methods (CONNECT, TRACE, OPTIONS, lower case, very long),
absolute- and authority-form targets, `%`-escapes, bad and overlong queries, invalid UTF-8, NUL
and control bytes, contradictory `Content-Length`/`Transfer-Encoding`, malformed chunked bodies,
truncated bodies (then close), bodies over `--max-body`, huge and many headers, malformed or
deeply nested JSON and huge numbers, `X-Test-ID` values that try to leave the root, good and bad
`X-Recorder-Fault` values, garbage JSON to the control endpoints; with a share of foreign `Host`
headers, missing ones, and `Origin` headers. Every answer is read with a timeout and parsed here.

Checked after every request, with the seed, the case index and the request's bytes in the message:

1. the proxy is still running (and, at the end, exits 0 on SIGTERM: `Proxy` checks that);
2. an answer >= 400 with a body has a JSON object body with an `"error"` member;
3. no 5xx but 502/504 in record modes and the status a valid `X-Recorder-Fault` asked for; a bad
   fault spec is `400 invalid_fault`; documented answers where the request makes them certain
   (a replay hit is 200, a miss 404, an unsafe test id `400 invalid_test_id`, ...);
4. at the end: nothing was written under `tmp_path` outside the recordings root (the proxy runs
   with its working directory in `tmp_path`, the root at `tmp_path/jail/a/b/root`, so that `..`
   escapes of up to three levels land where this test looks), and every file under the root is
   valid JSON (strict: no `NaN`/`Infinity`);
5. a request sent before the fuzz replays the same bytes after it;
6. the request guard: a non-loopback `Host` (or absolute-form authority) is `403 forbidden_host`,
   a non-loopback `Origin` (`null` included) `403 forbidden_origin`, CONNECT and TRACE `405`,
   heads over 32 KiB `431`, bodies over `--max-body` `413 request_too_large`, and none of them
   reaches the upstream.

Reproduce a failure with its seed (printed in every failure message), and optionally one case:

    API_RECORDER_FUZZ_SEED=12345 scripts/python-tests.sh Tests/python/test_http_fuzz.py -x -q
    API_RECORDER_FUZZ_SEED=12345 API_RECORDER_FUZZ_CASE=417 \
        scripts/python-tests.sh Tests/python/test_http_fuzz.py -k replay -s

Environment: `API_RECORDER_FUZZ_SEED` (decimal or 0x hex; default `DEFAULT_SEED`),
`API_RECORDER_FUZZ_CASES` (requests per proxy, default 1,000), `API_RECORDER_FUZZ_CASE` (send only
that case of the sequence; all are still generated, so it is the same request).
"""
from __future__ import annotations

import http.client
import json
import os
import random
import re
import socket
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import FakeUpstream, Proxy, json_reply

DEFAULT_SEED = 0x195A
SEED = int(os.environ.get("API_RECORDER_FUZZ_SEED") or str(DEFAULT_SEED), 0)
CASES = int(os.environ.get("API_RECORDER_FUZZ_CASES") or "1000")
ONLY = None if not os.environ.get("API_RECORDER_FUZZ_CASE") else int(os.environ["API_RECORDER_FUZZ_CASE"])

MAX_BODY = 65536
HEAD_LIMIT = 32 * 1024
READ_TIMEOUT = 3.0  # per request; a hung request costs this much
MODE_BUDGET = 40.0 * max(1.0, CASES / 1000)  # seconds of fuzzing per proxy before the test gives up as too slow
MODEL = "fuzz-model"
BASE = "http://fake.invalid/v1"
AUTO_BASE = "http://auto.invalid"
PROXY_ARGS = ["--max-body", str(MAX_BODY), "--adapter", "up=openai", "--upstream-timeout", "5",
              "--shutdown-grace", "5"]
FUZZ_HEADER = b"X-Fuzz-Case"


# ---------------------------------------------------------------- the fake upstream


def chat_completion(content: str) -> dict:
    return {"id": "chatcmpl-fuzz", "object": "chat.completion", "created": 1700000000, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


def sse(events: list[dict], done: bool = True) -> list[bytes]:
    parts = [f"data: {json.dumps(e)}\n\n".encode() for e in events]
    return parts + ([b"data: [DONE]\n\n"] if done else [])


def upstream_answer(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, Any]:
    """What the fake provider answers, by path; always the same bytes for the same request."""
    try:
        payload = json.loads(body) if body else {}
    except (ValueError, RecursionError):
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    route = path.split("?", 1)[0]
    stream = payload.get("stream") is True
    if method in ("CONNECT", "TRACE"):  # as providers answer them (a 2xx CONNECT would open a tunnel)
        return json_reply({"error": {"message": f"{method} is not allowed", "type": "invalid_request_error"}}, 405)
    if route.endswith("/models"):
        return json_reply({"object": "list", "data": [
            {"id": MODEL, "object": "model", "created": 1700000000, "owned_by": "fuzz"}]})
    if route.endswith("/embeddings"):
        return json_reply({"object": "list", "model": MODEL, "usage": {"prompt_tokens": 1, "total_tokens": 1},
                           "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5, 1.0]}]})
    if route.endswith("/messages"):
        message = {"id": "msg_fuzz", "type": "message", "role": "assistant", "model": MODEL,
                   "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                   "usage": {"input_tokens": 1, "output_tokens": 1}}
        if stream:
            return 200, "text/event-stream", [
                f"event: message_start\ndata: {json.dumps({'type': 'message_start', 'message': message})}\n\n".encode(),
                b'event: message_stop\ndata: {"type": "message_stop"}\n\n']
        return json_reply(message)
    if route.endswith("/api/chat"):
        answer = {"model": MODEL, "created_at": "2024-01-01T00:00:00Z",
                  "message": {"role": "assistant", "content": "ok"}, "done": True}
        if payload.get("stream") is not False:
            return 200, "application/x-ndjson", [json.dumps(answer).encode() + b"\n"]
        return json_reply(answer)
    if "generateContent" in route:
        answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
                  "modelVersion": MODEL}
        if "streamGenerateContent" in route:
            return 200, "text/event-stream", sse([answer], done=False)
        return json_reply(answer)
    if route.endswith("/completions") and not route.endswith("/chat/completions"):
        if stream:
            return 200, "text/event-stream", sse([{"id": "cmpl-fuzz", "object": "text_completion", "created": 1,
                                                   "model": MODEL, "choices": [{"index": 0, "text": "ok",
                                                                                "finish_reason": "stop"}]}])
        return json_reply({"id": "cmpl-fuzz", "object": "text_completion", "created": 1700000000, "model": MODEL,
                           "choices": [{"index": 0, "text": "ok", "finish_reason": "stop", "logprobs": None}]})
    if route.endswith("/chat/completions"):
        if stream:
            chunk = {"id": "chatcmpl-fuzz", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": None}]}
            last = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            return 200, "text/event-stream", sse([chunk, last])
        return json_reply(chat_completion("ok"))
    return json_reply({"object": "fuzz", "method": method, "ok": True})


def answer_every_method(upstream: FakeUpstream) -> None:
    """FakeUpstream serves GET and POST; the fuzz forwards any method (HEAD without a body)."""
    handler = upstream.server.RequestHandlerClass

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def do_HEAD(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with upstream._lock:
            upstream.calls += 1
            upstream.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "0")
        self.end_headers()

    handler.__getattr__ = __getattr__
    handler.do_HEAD = do_HEAD


# ---------------------------------------------------------------- the recorder's rules, mirrored


def parse_fault(spec: str) -> dict | None:
    """The header form of a fault as docs/faults.md defines it: the fault, or None when it is not
    one (a `400 invalid_fault`). Only ASCII specs are understood here; others count as invalid."""
    if any(ord(c) > 126 or (ord(c) < 32 and c != "\t") for c in spec):
        return None
    fault: dict[str, Any] = {}

    def integer(value, low, high):
        if value is None or not re.fullmatch(r"[+-]?[0-9]+", value):
            raise ValueError
        number = int(value)
        if not low <= number <= high:
            raise ValueError
        return number

    def duration(value):
        if value is None:
            raise ValueError
        lowered = value.lower()
        number, scale = (lowered[:-2], 1) if lowered.endswith("ms") else (
            (lowered[:-1], 1000) if lowered.endswith("s") else (lowered, 1))
        if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", number):
            raise ValueError
        ms = float(number) * scale
        if not (ms >= 0 and ms <= 600_000):
            raise ValueError
        return ms

    try:
        for part in spec.split(";"):
            part = part.strip(" \t")
            if not part:
                continue
            key, equals, value = part.partition("=")
            key = key.strip(" \t").lower()
            value = value.strip(" \t") if equals else None
            if not key:
                return None
            if key == "status":
                fault["status"] = integer(value, 100, 599)
            elif key == "retry-after":
                fault["retry_after"] = integer(value, 0, 86_400)
            elif key == "delay":
                fault["delay"] = duration(value)
            elif key == "cut-after":
                fault["cut_after"] = integer(value, 0, 1_000_000)
            elif key == "event-delay":
                fault["event_delay"] = duration(value)
            elif key == "times":
                fault["times"] = integer(value, 1, 1_000_000)
            elif key == "malformed":
                if value not in (None, "true"):
                    return None
                fault["malformed"] = True
            else:
                return None
    except ValueError:
        return None
    if not any(k in fault for k in ("status", "delay", "cut_after", "event_delay", "malformed")):
        return None
    if "status" in fault and fault.get("malformed"):
        return None
    if "retry_after" in fault and "status" not in fault:
        return None
    return fault


def fault_error_type(status: int) -> str:
    return {429: "rate_limit_error", 500: "api_error", 503: "service_unavailable", 529: "overloaded_error"}.get(
        status, "injected_fault")


def unsafe_test_id(test_id: str | None, root: Path) -> bool:
    """Whether the proxy must refuse `test_id` (`400 invalid_test_id`, docs/proxy.md)."""
    if test_id is None or "::" not in test_id:
        return False
    file_part = test_id.split("::", 1)[0]
    if "\0" in file_part or file_part.startswith(("/", "\\")):
        return True
    components = [c for c in file_part.split("/") if c and c != "."]
    if ".." in components or any("\\" in c and ".." in c.split("\\") for c in components):
        return True
    folders = components[:-1]
    if any(len(f.encode()) > 255 for f in folders):
        return True
    folder = f"{root.resolve()}/{'/'.join(folders) + '/recordings' if folders else 'recordings'}"
    return len(folder.encode()) + 1 + 85 > 4095


def strict_json(data: bytes) -> Any:
    """JSON as RFC 8259 has it: UTF-8, no NaN or Infinity (integers of any length kept as text)."""
    def reject(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(data.decode("utf-8"), parse_constant=reject, parse_int=str)


# ---------------------------------------------------------------- requests


@dataclass
class Spec:
    """A request before it becomes bytes."""
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    version: bytes = b"HTTP/1.1"
    framing: str = "length"  # length | chunked | none
    kind: str = "route"  # route | control | other
    endpoint: str = ""  # chat, stream, embeddings, completions, models, misc, auto; or the control path
    test_id: str | None = None
    json_ok: bool = True  # the body is what the endpoint expects
    expect: tuple[int, str | None] | None = None  # the documented answer to the request as built

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    def set_header(self, name: bytes, value: bytes | None) -> None:
        self.headers = [(n, v) for n, v in self.headers if n.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))

    def render(self, rng: random.Random) -> bytes:
        headers = list(self.headers)
        body = self.body
        if self.framing == "length" and (body or self.method in (b"POST", b"PUT", b"PATCH")):
            headers.append((b"Content-Length", str(len(body)).encode()))
        elif self.framing == "chunked":
            headers.append((b"Transfer-Encoding", b"chunked"))
            body = chunked(body, rng)
        return head_bytes(self.method, self.target, self.version, headers) + body


def head_bytes(method: bytes, target: bytes, version: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    return (method + b" " + target + b" " + version + b"\r\n"
            + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n")


def chunked(body: bytes, rng: random.Random) -> bytes:
    out, position = b"", 0
    while position < len(body):
        size = min(len(body) - position, rng.randint(1, max(1, len(body) // 2 + 1)))
        out += b"%x\r\n" % size + body[position:position + size] + b"\r\n"
        position += size
    return out + b"0\r\n\r\n"


@dataclass
class Case:
    index: int
    category: str
    data: bytes
    spec: Spec
    methods: list[bytes]  # of each request in `data` (HEAD answers have no body)
    http_valid: bool = True  # well-formed HTTP/1.1 the proxy must answer
    close_after: bool = False  # half-close after sending: the proxy may not answer
    answers: int = 1  # how many answers a well-formed exchange gets (pipelined requests)
    host: str = "loopback"  # loopback | foreign | odd | missing
    origin: str = "none"  # none | loopback | foreign | odd
    fault: dict | None = None  # a valid X-Recorder-Fault, parsed
    fault_invalid: bool = False  # an X-Recorder-Fault that must be a 400 invalid_fault
    method_refused: bool = False  # CONNECT, TRACE
    body_over: bool = False  # a body over --max-body
    note: str = ""

    @property
    def head_size(self) -> int:
        end = self.data.find(b"\r\n\r\n")
        return len(self.data) if end < 0 else end + 4

    @property
    def guard_unsure(self) -> bool:
        """A foreign Host with an absolute-form loopback target (RFC 9112 makes the target's
        authority the request's), or an odd Host or Origin (`LOCALHOST`, `127.1`, `file://`, two
        origins in one header): a guard may let it in or refuse it, but must not forward a refusal."""
        return (self.note == "absolute-loopback" and self.host == "foreign") or "odd" in (self.host, self.origin)

    @property
    def refusals(self) -> list[tuple[int, str | None]]:
        """The answers the request guard may give (any one of them), none when it lets it in."""
        out: list[tuple[int, str | None]] = []
        if self.host in ("foreign", "missing"):  # no Host is not a loopback Host either
            out.append((403, "forbidden_host"))
        if self.origin == "foreign":
            out.append((403, "forbidden_origin"))
        if self.method_refused:
            out.append((405, None))
        if self.head_size > HEAD_LIMIT:
            out.append((431, None))
            if len(self.spec.target) > 8192:
                out.append((414, None))  # URI Too Long is as good a refusal of a long target
        if self.body_over:
            out.append((413, "request_too_large"))
        if out:  # a 400 (the HTTP layer's, or the request's own fault) refuses it as well
            out.append((400, None))
        if self.body_over:  # a path that names nothing is a 404 before its body is read
            out.append((404, None))
        return out

    @property
    def loopback_only(self) -> bool:
        return self.host == "loopback" and self.origin in ("none", "loopback")

    def show(self, limit: int = 360) -> str:
        data = self.data
        text = repr(data[:limit]) + (f" ... {repr(data[-80:])}" if len(data) > limit else "")
        return f"{text} ({len(data)} bytes{', then half-closed' if self.close_after else ''})"


PROMPTS = ["hello", "Say hi.", "What is 2+2?", "ünïcödé ✓", "a\nb\tc", "", "x" * 300, "emoji 🙂",
           "quote \" \\ /", "tool time", "one", "two", "three", "four", "five", "six"]
ESCAPING_TEST_IDS = [
    "../../x", "../../x.py::test_x", "../../../x.py::test_x", "{abs}/abs-escape/test_x.py::test_x",
    "a/../../b/c.py::test_x", "tests/../../../x.py::test_x", "..\\..\\x.py::test_x", "tests/..\\..\\x.py::test_x",
    "\\\\server\\share\\x.py::test_x", "%2e%2e/%2e%2e/x.py::test_x", "a" * 5000, "d" * 300 + "/x.py::test_x",
    "a/" * 2100 + "x.py::test_x", "x" * 5000 + "::test_x", "", "::", "tests/x.py::", "./././x.py::test_x",
    "tests//x.py::test_x", "tests/x.py::test_x::sub[1-2]", "C:\\x.py::test_x", "~/x.py::test_x", "..", "../",
    "tests/.../x.py::test_x", "tests/ ../x.py::test_x", "{abs}/abs-escape2/x.py::test_x", "./../x.py::test_x",
]
GOOD_FAULTS = ["status=429", "status=503; retry-after=1", "status=500", "status=529", " STATUS = 429 ", "status=404",
               "status=400", "malformed", "malformed=true", "cut-after=1", "cut-after=0", "delay=5ms", "delay=0",
               "event-delay=1ms; cut-after=2", "status=429; times=3", "status=418", "status=503;;", "status=+429",
               "delay=0.5; status=500", "status=401"]
ODD_GOOD_FAULTS = ["status=100", "status=101", "status=204", "status=304", "status=200", "status=599", "status=302"]
BAD_FAULTS = ["=", ";", "status=", "status=abc", "delay=1e309", "times=0", "=3", "status", "status=429; malformed",
              "retry-after=2", "times=2", "status=99", "status=600", "status=1e3", "status=0x1f4", "delay=-1ms",
              "delay=601s", "delay=nan", "delay=abc", "cut-after=-1", "malformed=false", "event-delay=1e309",
              "unknown=1", "status=429,503", "status=429 503", ";;;", "", "status=99999999999999999999999",
              "delay=1e309ms", "delay=infs", "status==429", "retry-after=1; delay=1ms", "times=1000001; status=429"]
CONTROL_KEYS = ["test_id", "faults", "spec", "status", "times", "provider", "tool_name", "kwargs", "call_id", "result",
                "error", "cancelled", "type_name", "delay_ms", "malformed", "__test_id", "", "\u0000", "é"]
CONTROL_SCALARS = [None, True, False, 0, -1, 1, 1.5, 1e308, "", "x", "../../x.py::t", "status=429", 2 ** 70, "=",
                   "tests/fuzz/test_ctl.py::test_c", [], {}]


class Generator:
    """Builds the fuzz cases of one proxy: `case(i)` draws from the seeded generator only."""

    def __init__(self, rng: random.Random, *, port: int, mode: str, root: Path, tmp_path: Path,
                 hits: list[dict]):
        self.rng = rng
        self.port = port
        self.mode = mode
        self.root = root
        self.tmp_path = tmp_path
        self.hits = hits
        p = str(port)
        self.loopback_hosts = [f"127.0.0.1:{p}", "127.0.0.1", f"localhost:{p}", "localhost", f"127.9.8.7:{p}",
                               f"[::1]:{p}", "[::1]", "127.255.255.254"]
        self.foreign_hosts = ["attacker.example", f"attacker.example:{p}", "127.0.0.1.attacker.example",
                              f"localhost.attacker.example:{p}", "0.0.0.0", f"0.0.0.0:{p}", "192.168.1.10",
                              "10.0.0.1:80", "[::2]", "[fe80::1]:8080", "example.com", "128.0.0.1", "localhost1",
                              f"126.255.255.255:{p}"]
        self.odd_hosts = [b"", b"LOCALHOST", b"localhost.", b"127.1", b"2130706433", b"[::ffff:127.0.0.1]",
                          b"127.0.0.1:99999", b"127.0.0.1:abc", b"[::1", b"127.0.0.1, attacker.example",
                          b"attacker.example@127.0.0.1", b"127.0.0.1/evil", b"\xff\xfe", b"127.0.0.1 extra"]
        self.foreign_origins = ["https://attacker.example", "null", f"http://attacker.example:{p}",
                                "http://127.0.0.1.attacker.example", "https://localhost.attacker.example",
                                "http://192.168.1.10:3000", "http://0.0.0.0:3000"]
        self.loopback_origins = ["http://localhost:3000", f"http://127.0.0.1:{p}", "http://localhost",
                                 "https://127.0.0.1", "http://[::1]:8080", "http://127.0.0.2:5173"]
        self.odd_origins = [b"", b"http://LOCALHOST:3000", b"localhost", b"\xff", b"file://",
                            b"http://localhost:3000 http://attacker.example"]
        self.valid_ids = ["tests/fuzz/test_a.py::test_one", "tests/fuzz/test_a.py::test_two",
                          "tests/other/test_b.py::TestX::test_y[1]", None]

    # -- helpers

    def unsafe(self, test_id: str | None) -> bool:
        """Whether the proxy refuses the id: live mode reads and writes no folder, so takes any."""
        return self.mode != "live" and unsafe_test_id(test_id, self.root)

    def pick(self, weighted: list[tuple[Any, int]]):
        return self.rng.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]

    def escaping_id(self) -> str:
        return self.rng.choice(ESCAPING_TEST_IDS).replace("{abs}", str(self.tmp_path))

    def json_bytes(self, obj: Any) -> bytes:
        if isinstance(obj, bytes):
            return obj
        return json.dumps(obj, ensure_ascii=self.rng.random() < 0.5).encode()

    def random_json(self, depth: int = 0) -> Any:
        r = self.rng.random()
        if depth > 3 or r < 0.35:
            return self.rng.choice(CONTROL_SCALARS)
        if r < 0.6:
            return [self.random_json(depth + 1) for _ in range(self.rng.randint(0, 3))]
        return {self.rng.choice(CONTROL_KEYS): self.random_json(depth + 1) for _ in range(self.rng.randint(0, 4))}

    # -- bases

    def base_headers(self, spec: Spec, index: int) -> None:
        headers = [(b"Host", f"127.0.0.1:{self.port}".encode()), (b"User-Agent", b"api-recorder-fuzz/1"),
                   (b"Accept", b"*/*"), (b"Authorization", b"Bearer sk-fuzz-not-a-secret")]
        if spec.body:
            headers.append((b"Content-Type", b"application/json"))
        if spec.test_id is not None:
            headers.append((b"X-Test-ID", spec.test_id.encode()))
        headers.append((FUZZ_HEADER, str(index).encode()))
        if self.rng.random() < 0.85:
            headers.append((b"Connection", b"close"))
        spec.headers = headers

    def route_base(self) -> Spec:
        rng = self.rng
        if self.mode == "replay" and rng.random() < 0.55:
            hit = rng.choice(self.hits)
            return Spec(hit["method"].encode(), hit["target"].encode(), [], hit["body"], endpoint=hit["endpoint"],
                        test_id=hit["test_id"], expect=(200, None))
        endpoint = self.pick([("chat", 30), ("stream", 14), ("embeddings", 8), ("completions", 8), ("models", 8),
                              ("misc", 8), ("auto", 10)])
        test_id = rng.choice(self.valid_ids)
        record = self.mode != "replay"
        prompt = rng.choice(PROMPTS) + ("" if record else " (never recorded)")
        miss = None if record else (404, "recording_not_found")
        v1 = rng.choice(["/v1", ""])
        if endpoint in ("chat", "stream"):
            body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
            if endpoint == "stream":
                body["stream"] = True
            if rng.random() < 0.2:
                body["temperature"] = rng.choice([0, 0.5, 1])
            return Spec(b"POST", f"/up{v1}/chat/completions".encode(), [], self.json_bytes(body), endpoint=endpoint,
                        test_id=test_id, expect=(200, None) if record else miss)
        if endpoint == "embeddings":
            body = {"model": MODEL, "input": prompt}
            return Spec(b"POST", f"/up{v1}/embeddings".encode(), [], self.json_bytes(body), endpoint=endpoint,
                        test_id=test_id, expect=(200, None) if record else miss)
        if endpoint == "completions":
            body = {"model": MODEL, "prompt": prompt, "max_tokens": 5}
            return Spec(b"POST", f"/up{v1}/completions".encode(), [], self.json_bytes(body), endpoint=endpoint,
                        test_id=test_id, expect=(200, None) if record else miss)
        if endpoint == "models":
            return Spec(b"GET", f"/up{v1}/models".encode(), [], endpoint=endpoint, test_id=test_id,
                        expect=(200, None) if record else None)
        if endpoint == "misc":
            if rng.random() < 0.5:
                return Spec(b"GET", f"/up/v1/files?page={rng.randint(1, 5)}".encode(), [], endpoint=endpoint,
                            test_id=test_id, expect=(200, None) if record else miss)
            body = {"model": MODEL, "input": prompt}
            return Spec(b"POST", b"/up/v1/responses", [], self.json_bytes(body), endpoint=endpoint, test_id=test_id,
                        expect=(200, None) if record else miss)
        which = rng.choice(["messages", "ollama", "gemini"])
        if which == "messages":
            body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": prompt}]}
            target = b"/auto/v1/messages"
        elif which == "ollama":
            body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": False}
            target = b"/auto/api/chat"
        else:
            body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
            target = b"/auto/v1beta/models/fuzz-model:generateContent"
        return Spec(b"POST", target, [], self.json_bytes(body), endpoint="auto", test_id=test_id)

    def control_base(self) -> Spec:
        rng = self.rng
        which = self.pick([("report", 10), ("journal", 6), ("metrics", 4), ("environment", 6), ("faults-get", 4),
                           ("faults-delete", 3), ("faults-post", 14), ("test", 14), ("invoke", 10), ("result", 6),
                           ("unknown", 4)])
        if which in ("report", "journal", "faults-get"):
            path = {"report": "/__recorder/report", "journal": "/__recorder/journal",
                    "faults-get": "/__recorder/faults"}[which]
            query = rng.choice(["", "?test_id=", "?test_id=tests/fuzz/test_a.py::test_one", "?test_id=..%2F..%2Fx",
                                "?test_id=%ff%fe", "?test_id=%00", "?a=1&test_id=x&test_id=y", "?test_id"])
            return Spec(b"GET", (path + query).encode(), [], kind="control", endpoint=path, expect=(200, None))
        if which == "metrics":
            return Spec(b"GET", b"/__recorder/metrics", [], kind="control", endpoint="/__recorder/metrics",
                        expect=(200, None))
        if which == "environment":
            return Spec(b"GET", b"/__recorder/environment", [], kind="control", endpoint="/__recorder/environment",
                        expect=(200, None))
        if which == "faults-delete":
            return Spec(b"DELETE", rng.choice([b"/__recorder/faults", b"/__recorder/faults?test_id=x"]), [],
                        kind="control", endpoint="/__recorder/faults", expect=(200, None))
        if which == "faults-post":
            options = [
                ({"test_id": "tests/fuzz/test_faults.py::test_f", "faults": [{"status": 503, "times": 1}]},
                 (200, None)),
                ({"test_id": None, "faults": [{"spec": "status=429; times=1"}]}, (200, None)),
                ({"faults": [{"status": "abc"}]}, (400, "invalid_fault")),
                (b'{"faults": [{"delay_ms": 1e309}]}', (400, "invalid_fault")),
                ({"faults": [{"spec": "="}]}, (400, "invalid_fault")),
                ({"faults": [{"spec": ";"}]}, (400, "invalid_fault")),
                ({"faults": [{"spec": "status=abc"}]}, (400, "invalid_fault")),
                ({"faults": [{}]}, (400, "invalid_fault")),
                ({"faults": [{"status": 429, "times": 0}]}, (400, "invalid_fault")),
                ({"faults": [{"delay_ms": -1}]}, (400, "invalid_fault")),
                ({"faults": [{"status": 429, "malformed": True}]}, (400, "invalid_fault")),
                ({"faults": [{"retry_after": 1}]}, (400, "invalid_fault")),
                ({"faults": [{"nope": 1}]}, (400, "invalid_fault")),
                ({"faults": [5]}, (400, "invalid_fault")),
                ({"faults": "status=429"}, (400, None)),
                ({"test_id": 5, "faults": []}, None),
                ([], (400, None)),
                (None, (400, None)),
                (self.random_json(), None),
                (self.random_json(), None),
            ]
            obj, expect = rng.choice(options)
            return Spec(b"POST", b"/__recorder/faults", [], self.json_bytes(obj), kind="control",
                        endpoint="/__recorder/faults", expect=expect)
        if which == "test":
            r = rng.random()
            if r < 0.3:
                test_id = rng.choice(self.valid_ids[:-1])
                obj: Any = {"test_id": test_id}
                expect = (200, None)
            elif r < 0.55:
                test_id = self.escaping_id()
                obj = {"test_id": test_id}
                expect = (400, "invalid_test_id") if self.unsafe(test_id) else (200, None)
            elif r < 0.65:
                obj, expect = {"test_id": None}, (200, None)
            else:
                obj, expect = self.random_json(), None
                if not isinstance(obj, dict):
                    expect = (400, None)
            return Spec(b"POST", b"/__recorder/test", [], self.json_bytes(obj), kind="control",
                        endpoint="/__recorder/test", expect=expect)
        if which == "invoke":
            r = rng.random()
            nonce = rng.getrandbits(48)
            if r < 0.5:
                obj = {"provider": "fuzz", "tool_name": "search", "kwargs": {"q": f"query {nonce}"}}
                expect = (404, None) if self.mode == "replay" else (200, None)
                if rng.random() < 0.4:
                    obj["test_id"] = tid = self.escaping_id() if rng.random() < 0.6 else rng.choice(self.valid_ids)
                    if unsafe_test_id(tid, self.root):
                        expect = (400, "invalid_test_id")
            elif r < 0.75:
                obj = rng.choice([{}, {"provider": ""}, {"provider": 1, "tool_name": "t"},
                                  {"provider": "p", "tool_name": "t", "kwargs": []},
                                  {"provider": "p", "tool_name": "", "kwargs": {}}, [], "x"])
                expect = (400, None)
            else:
                obj, expect = self.random_json(), None
            return Spec(b"POST", b"/__recorder/tools/invoke", [], self.json_bytes(obj), kind="control",
                        endpoint="/__recorder/tools/invoke", expect=expect)
        if which == "result":
            obj = rng.choice([{"call_id": "nope", "result": 1}, {"call_id": 5}, {}, {"call_id": "x", "cancelled": True},
                              {"call_id": "x", "error": {"type": "E", "message": "m"}}, self.random_json()])
            return Spec(b"POST", b"/__recorder/tools/result", [], self.json_bytes(obj), kind="control",
                        endpoint="/__recorder/tools/result")
        path = rng.choice([b"/__recorder/", b"/__recorder/nope", b"/__recorder/report/extra", b"/__recorder//report",
                           b"/__recorder/REPORT"])
        return Spec(rng.choice([b"GET", b"POST", b"PUT"]), path, [], kind="control", endpoint="unknown",
                    expect=(404, None))

    def other_base(self) -> Spec:
        target = self.rng.choice([b"/", b"/nope/v1/chat/completions", b"/favicon.ico", b"/UP/v1/models",
                                  b"/up", b"/up/", b"/auto", b"/__recorder", b"/__RECORDER/report"])
        method = self.rng.choice([b"GET", b"POST"])
        if target in (b"/up", b"/up/", b"/auto"):  # a route's root: a route request all the same
            return Spec(method, target, [], endpoint="auto" if target == b"/auto" else "root",
                        test_id=self.rng.choice(self.valid_ids))
        return Spec(method, target, [], kind="other", endpoint="other", expect=(404, "route_not_found"))

    # -- cases

    def case(self, index: int) -> Case:
        rng = self.rng
        spec = self.pick([(self.route_base, 68), (self.control_base, 24), (self.other_base, 8)])()
        self.base_headers(spec, index)
        case = Case(index, "valid", b"", spec, [spec.method])
        category = self.pick([
            ("valid", 26), ("method", 6), ("request_line", 5), ("target", 6), ("query", 4), ("utf8", 4),
            ("control_bytes", 4), ("framing", 6), ("chunked", 4), ("truncated", 3), ("over_limit", 3),
            ("huge_headers", 3), ("many_headers", 3), ("json_body", 8), ("test_id", 6), ("fault", 8),
            ("not_http", 2), ("pipelined", 2)])
        case.category = category
        raw = getattr(self, "mutate_" + category)(case)
        if category != "not_http":
            self.host_and_origin(case)
        case.data = raw() if callable(raw) else spec.render(rng)
        return case

    def host_and_origin(self, case: Case) -> None:
        rng, spec = self.rng, case.spec
        kind = self.pick([("usual", 60), ("loopback", 20), ("foreign", 10), ("missing", 4), ("odd", 6)])
        if kind == "usual":
            kind = "loopback"  # Host: 127.0.0.1:PORT, as base_headers set it
        elif kind == "loopback":
            spec.set_header(b"Host", rng.choice(self.loopback_hosts).encode())
        elif kind == "foreign":
            spec.set_header(b"Host", rng.choice(self.foreign_hosts).encode())
        elif kind == "missing":
            spec.set_header(b"Host", None)
        else:
            if rng.random() < 0.3:
                spec.headers.append((b"Host", rng.choice(self.foreign_hosts).encode()))  # a second Host
            else:
                spec.set_header(b"Host", rng.choice(self.odd_hosts))
        spec.headers.sort(key=lambda h: h[0].lower() != b"host")  # Host first, mostly
        if case.host != "foreign":  # an absolute-form target may already have decided
            case.host = kind
        origin = self.pick([("none", 84), ("foreign", 7), ("loopback", 6), ("odd", 3)])
        if origin == "foreign":
            spec.headers.append((b"Origin", rng.choice(self.foreign_origins).encode()))
        elif origin == "loopback":
            spec.headers.append((b"Origin", rng.choice(self.loopback_origins).encode()))
        elif origin == "odd":
            spec.headers.append((b"Origin", rng.choice(self.odd_origins)))
        case.origin = origin

    # -- mutations: each edits case.spec (and the case's expectations), or returns a function
    #    that gives the raw bytes

    def mutate_valid(self, case: Case):
        rng, spec = self.rng, case.spec
        if rng.random() < 0.1 and spec.body:
            spec.framing = "chunked"
        if rng.random() < 0.05 and spec.framing != "chunked":
            spec.version = b"HTTP/1.0"
        if rng.random() < 0.05:
            spec.headers.append((b"Expect", b"100-continue"))
        if spec.kind == "route" and rng.random() < 0.15:
            # a test id from another source than X-Test-ID
            spec.set_header(b"X-Test-ID", None)
            value = json.dumps({"__test_id": spec.test_id}) if spec.test_id else "{}"
            spec.headers.append((rng.choice([b"X-OGX-Provider-Data", b"X-LlamaStack-Provider-Data"]), value.encode()))
            if spec.test_id is None:
                spec.expect = None  # no id: the current test id (a control request may have set one) applies

    def mutate_method(self, case: Case):
        rng, spec = self.rng, case.spec
        method = rng.choice([b"CONNECT", b"TRACE", b"OPTIONS", b"post", b"get", b"LONG", b"FOO", b"PROPFIND",
                             b"PATCH", b"DELETE", b"HEAD", b"PUT", b"GET", b"M-SEARCH", b"PRI", b"CONNECT", b"TRACE",
                             b"POST\x00", b"G-ET"])
        if method == b"LONG":
            method = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(20, 5000))).encode()
        spec.method = method
        spec.expect = None
        case.methods = [method]
        case.method_refused = method in (b"CONNECT", b"TRACE")
        if method == b"CONNECT" and rng.random() < 0.6:
            spec.target = rng.choice([f"127.0.0.1:{self.port}".encode(), b"attacker.example:443", b"[::1]:443"])
            spec.body, spec.framing = b"", "none"
        if method not in (b"CONNECT", b"TRACE", b"OPTIONS", b"PROPFIND", b"PATCH", b"DELETE", b"HEAD", b"PUT", b"GET",
                          b"M-SEARCH"):
            case.http_valid = False  # llhttp knows a fixed list of methods
        if method == b"PRI":
            case.close_after = True

    def mutate_request_line(self, case: Case):
        rng, spec = self.rng, case.spec
        spec.expect = None
        variant = rng.randint(0, 15)
        case.http_valid = False
        if variant == 0:
            spec.version = b""
        elif variant == 1:
            spec.version = rng.choice([b"HTTP/9.9", b"HTTP/1.2", b"HTTP/2.0", b"HTTP/1", b"http/1.1", b"HTTP/1.1x",
                                       b"HTTP/01.1", b"HTTP/1.1 extra", b"HTTP/", b"HTTP/1.1\x00", b"HTTP/0.9"])
        elif variant == 2:
            spec.version = b"HTTP/1.0"
            case.http_valid = True
        elif variant == 3:
            return lambda: spec.render(rng).replace(b" ", b"  ", 2)
        elif variant == 4:
            return lambda: spec.render(rng).replace(b" ", b"\t", 2)
        elif variant == 5:
            return lambda: b"\r\n" + spec.render(rng)
        elif variant == 6:
            case.close_after = True
            return lambda: spec.method + b"\r\n\r\n"
        elif variant == 7:
            spec.target = b""
        elif variant == 8:
            return lambda: b" " + spec.render(rng)
        elif variant == 9:
            return lambda: spec.render(rng).replace(b"\r\n", b"\n")
        elif variant == 10:
            case.close_after = True
            return lambda: spec.render(rng).replace(b"\r\n", b"\r")
        elif variant == 11:
            return lambda: spec.render(rng).replace(b"\r\n", b"\n\r")
        elif variant == 12:
            spec.target = spec.target + b" " + b"x"
        elif variant == 13:
            case.close_after = True
            return lambda: b"GET / HTTP/1.1"  # no line end at all
        elif variant == 14:
            return lambda: b"\r\n\r\n\r\n" + spec.render(rng)
        else:
            spec.version = b"HTTP/1.1\r\nX-Injected: 1"
            case.http_valid = True  # the "version" only adds a header

    def mutate_target(self, case: Case):
        rng, spec = self.rng, case.spec
        path = spec.target
        variant = rng.randint(0, 9)
        spec.expect = None
        if variant == 0:
            spec.target = f"http://127.0.0.1:{self.port}".encode() + path
            case.note = "absolute-loopback"
        elif variant == 1:
            authority = rng.choice([b"attacker.example", b"attacker.example:80", b"127.0.0.1.attacker.example",
                                    b"0.0.0.0"])
            spec.target = b"http://" + authority + path
            case.host = "foreign"  # RFC 9112 3.2.2: the target's authority, not Host, is the request's
            case.note = "absolute-foreign"
        elif variant == 2:
            spec.target = rng.choice([b"https://LOCALHOST/", b"HTTP://127.0.0.1/", b"http://user:pw@127.0.0.1/",
                                      b"http:///", b"//127.0.0.1/", b"ftp://127.0.0.1/"]) + path.lstrip(b"/")
            case.http_valid = False
        elif variant == 3:
            spec.target = rng.choice([f"127.0.0.1:{self.port}".encode(), b"attacker.example:443", b"*", b"localhost"])
            case.http_valid = spec.target == b"*" and spec.method == b"OPTIONS"
        elif variant == 4:
            spec.target = rng.choice([
                b"/up/v1/chat%2Fcompletions", b"/up%2Fv1/models", b"/%75p/v1/models",
                b"/up/v1/%2e%2e/%2e%2e/__recorder/report",
                b"/up/../__recorder/report", b"/up/v1/models%00", b"/up/v1/%zz", b"/up/v1/%", b"/up/v1/%c3%28",
                b"/up/v1/%ff%fe", b"//up//v1//models", b"/up/v1/models/", b"/up/v1/./models", b"/up/v1/../v1/models",
                b"/__recorder/%2e%2e/x", b"/__recorder/report%3Ftest_id=x", b"/up/v1/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                b"/%2e%2e/%2e%2e/x", b"/up/v1/chat/completions%20", b"/up/v1/chat/completions;x=1",
                b"/__recorder/report%00", b"/up/%E2%80%AE/models", b"/up/" + b"%41" * 2000])
        elif variant == 5:
            spec.target = path + b"#fragment"
            case.http_valid = False
        elif variant == 6:
            spec.target = b"/" + b"/".join(b"a" * rng.randint(1, 40) for _ in range(rng.randint(50, 300)))
        elif variant == 7:
            spec.target = path.replace(b"/", b"\\")
            case.http_valid = False
        elif variant == 8:
            spec.target = path.upper()
        else:
            spec.target = b"/" + path  # //up/...
        return None

    def mutate_query(self, case: Case):
        rng, spec = self.rng, case.spec
        spec.expect = None
        variant = rng.randint(0, 6)
        if variant == 0:
            length = rng.choice([rng.randint(2000, 16000), rng.randint(36000, 60000)])
            spec.target += b"?q=" + b"a" * length
        elif variant == 1:
            spec.target += rng.choice([b"?a=%zz&&&==&b", b"?%00=%00", b"??", b"?a=1&a=2", b"?&", b"?=", b"?a=%",
                                       b"?key=sk-secret-in-query&api_key=x", b"?test_id=../../x.py::t",
                                       b"?test_id=%2F..%2F..%2Fx", b"?alt=sse", b"?a=%ff%fe%fd", b"?a=%C0%AF",
                                       b"?" + b"&".join(b"k%d=v" % i for i in range(2000))])
        elif variant == 2:
            spec.target += b"?q=\xff\xfe"
            case.http_valid = False
        elif variant == 3:
            spec.target += b"?q=a b"
            case.http_valid = False
        elif variant == 4:
            spec.target += b"?q=\"<script>\"" + b"'`{}|^"
            case.http_valid = False
        elif variant == 5:
            spec.target += b"?" + b"%41" * rng.randint(100, 5000)
        else:
            spec.target += b"?page=" + str(10 ** rng.randint(1, 400)).encode()

    def mutate_utf8(self, case: Case):
        rng, spec = self.rng, case.spec
        bad = rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80",
                          b"\xf4\x90\x80\x80"])
        variant = rng.randint(0, 4)
        if variant == 0:
            spec.target = spec.target + b"/" + bad
            spec.expect = None
            case.http_valid = False
        elif variant == 1:
            spec.set_header(b"X-Test-ID", b"tests/" + bad + b"/test_x.py::test_" + bad)
            spec.expect = None
        elif variant == 2:
            spec.set_header(b"X-Recorder-Fault", b"status=" + bad)
            case.fault_invalid = True
        elif variant == 3:
            spec.headers.append((rng.choice([b"Authorization", b"X-Custom", b"User-Agent", b"Cookie"]), b"v" + bad))
        else:
            if spec.method in (b"POST", b"PUT") and spec.body.endswith(b"}"):
                if b'"user"' in spec.body:
                    spec.body = spec.body.replace(b'"user"', b'"us' + bad + b'er"', 1)
                else:
                    spec.body = spec.body[:-1] + b', "x": "' + bad + b'"}'
                spec.expect = (400, None) if spec.kind == "route" and spec.endpoint in (
                    "chat", "stream", "embeddings", "completions") else None
                spec.json_ok = False
            else:
                spec.headers.append((b"X-Custom", bad))

    def mutate_control_bytes(self, case: Case):
        rng, spec = self.rng, case.spec
        spec.expect = None
        case.http_valid = False
        variant = rng.randint(0, 13)
        if variant == 0:
            spec.set_header(b"X-Test-ID", b"tests/a\x00b/test_x.py::test_x")
        elif variant == 1:
            spec.headers.append((b"X-Custom", b"a" + bytes([rng.choice([1, 2, 8, 11, 12, 14, 27, 31, 127])]) + b"b"))
        elif variant == 2:
            spec.headers.append((b"X-Custom", b"a\rb"))
        elif variant == 3:
            spec.target = spec.target + b"\x00"
        elif variant == 4:
            spec.method = spec.method[:1] + b"\x00" + spec.method[1:]
        elif variant == 5:
            spec.headers.append((b"X Test", b"1"))
        elif variant == 6:
            spec.headers.append((b"Host ", b"127.0.0.1"))
        elif variant == 7:
            spec.headers.append((b"", b"empty name"))
        elif variant == 8:
            return lambda: spec.render(rng).replace(b"\r\n\r\n", b"\r\nNoColonHere\r\n\r\n", 1)
        elif variant == 9:
            return lambda: spec.render(rng).replace(b"\r\n\r\n", b"\r\nX-Folded: 1\r\n  continued\r\n\r\n", 1)
        elif variant == 10:
            spec.headers.append((b"X-Custom", b"tab\tinside"))
            case.http_valid = True
        elif variant == 11:
            spec.set_header(b"X-Recorder-Fault", b"status=429\x00")
        elif variant == 12:
            spec.headers.append((b"X-\x7fName", b"1"))
        else:
            spec.headers.append((b"X-Custom", b"\x00" * rng.randint(1, 200)))

    def mutate_framing(self, case: Case):
        rng, spec = self.rng, case.spec
        spec.expect = None
        case.http_valid = False
        body = spec.body or b'{"model": "fuzz-model"}'
        if spec.method in (b"GET", b"DELETE", b"HEAD"):
            spec.method = b"POST"
            case.methods = [b"POST"]
        spec.body, spec.framing = body, "none"
        n = str(len(body)).encode()
        variant = rng.randint(0, 14)
        if variant == 0:
            spec.headers += [(b"Content-Length", n), (b"Content-Length", n)]
        elif variant == 1:
            spec.headers += [(b"Content-Length", n), (b"Content-Length", str(len(body) - 1).encode())]
            case.close_after = True
        elif variant == 2:
            spec.headers += [(b"Content-Length", n), (b"Transfer-Encoding", b"chunked")]
            spec.body = chunked(body, rng)
        elif variant == 3:
            spec.headers += [(b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")]
            spec.body = chunked(body, rng)
        elif variant == 4:
            spec.headers += [(b"Transfer-Encoding", rng.choice([b"gzip", b"xchunked", b"chunked, identity",
                                                                  b"identity", b"chunked;q=1", b" chunked", b"CHUNKED",
                                                                  b"chunked, gzip", b"gzip, chunked"]))]
            spec.body = chunked(body, rng)
            case.close_after = True
        elif variant == 5:
            spec.headers += [(b"Content-Length", rng.choice([b"-1", b"abc", b"1e3", b"+" + n, b"0x10", b"12,12",
                                                             b"" , b" ", n + b"a", b"\xff"]))]
            case.close_after = True
        elif variant == 6:
            spec.headers += [(b"Content-Length", b"99999999999999999999999")]
            case.close_after = True
        elif variant == 7:
            spec.headers += [(b"Content-Length", b"0")]  # the body then reads as a second request
            case.http_valid = True
        elif variant == 8:
            spec.headers += [(b"Content-Length", str(max(0, len(body) // 2)).encode())]
            case.http_valid = True
        elif variant == 9:
            spec.headers += [(b"Content-Length", str(len(body) + 50).encode())]
            case.close_after = True  # the proxy waits for the rest: close
            case.note = "truncated"
        elif variant == 10:
            spec.headers += [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"0")]
            spec.body = chunked(body, rng)
        elif variant == 11:
            spec.headers += [(b"Content-Length", b" " + n + b" ")]
            case.http_valid = True  # whitespace around a field value is not part of it
        elif variant == 12:
            spec.headers += [(b"Content-Length", n + b", " + n)]
        elif variant == 13:
            spec.headers += [(b"Transfer-Encoding", b"chunked")]
            spec.version = b"HTTP/1.0"
            spec.body = chunked(body, rng)
        else:
            spec.headers += [(b"Content-Length", n), (b"Transfer-Encoding", b"identity")]

    def mutate_chunked(self, case: Case):
        rng, spec = self.rng, case.spec
        body = spec.body or b'{"model": "fuzz-model"}'
        if spec.method in (b"GET", b"DELETE", b"HEAD"):
            spec.method = b"POST"
            case.methods = [b"POST"]
            spec.expect = None
        spec.framing = "none"
        spec.headers.append((b"Transfer-Encoding", b"chunked"))
        size = b"%x" % len(body)
        variant = rng.randint(0, 11)
        case.http_valid = False
        if variant == 0:
            spec.body = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
        elif variant == 1:
            spec.body = b"ffffffffffffffffffffff\r\n" + body + b"\r\n0\r\n\r\n"
            case.close_after = True
        elif variant == 2:
            spec.body = b"-5\r\n" + body + b"\r\n0\r\n\r\n"
        elif variant == 3:
            spec.body = size + b"\r\n" + body + b"0\r\n\r\n"  # no CRLF after the data
            case.close_after = True
        elif variant == 4:
            spec.body = size + b";ext=1;other=\"x\"\r\n" + body + b"\r\n0\r\n\r\n"
            case.http_valid = True
        elif variant == 5:
            spec.body = size + b";\x00\r\n" + body + b"\r\n0\r\n\r\n"
        elif variant == 6:
            spec.body = size + b"\r\n" + body + b"\r\n"  # no last chunk
            case.close_after = True
            case.note = "truncated"
        elif variant == 7:
            spec.body = size + b"\r\n" + body + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
            case.http_valid = True
        elif variant == 8:
            spec.body = b"%x\r\n" % (len(body) - 1) + body + b"\r\n0\r\n\r\n"
        elif variant == 9:
            spec.body = size + b"\n" + body + b"\n0\n\n"
            case.close_after = True
        elif variant == 10:
            spec.body = size + b" \r\n" + body + b"\r\n0\r\n\r\n"
        else:
            spec.body = b"0x" + size + b"\r\n" + body + b"\r\n0\r\n\r\n"
        if not case.http_valid:
            spec.expect = None

    def mutate_truncated(self, case: Case):
        rng, spec = self.rng, case.spec
        spec.expect = None
        case.close_after = True
        case.http_valid = False
        case.note = "truncated"
        if not spec.body:
            spec.method, spec.body = b"POST", b'{"model": "fuzz-model", "messages": []}'
            case.methods = [b"POST"]
        variant = rng.randint(0, 2)
        if variant == 2:
            spec.framing = "chunked"

        def render():
            full = spec.render(rng)
            if variant == 0:  # a body shorter than its Content-Length
                return full[:len(full) - rng.randint(1, len(spec.body))]
            if variant == 1:  # a head cut short
                return full[:rng.randint(1, max(1, full.find(b"\r\n\r\n")))]
            return full[:len(full) - rng.randint(3, 8)]  # a chunked body cut short
        return render

    def mutate_over_limit(self, case: Case):
        rng, spec = self.rng, case.spec
        spec.expect = None
        case.body_over = True
        if spec.method in (b"GET", b"DELETE", b"HEAD"):
            spec.method = b"POST"
            case.methods = [b"POST"]
        size = rng.randint(MAX_BODY + 1, MAX_BODY + 80_000)
        if spec.endpoint == "/__recorder/test" and rng.random() < 0.25:
            size = rng.randint(1_048_577, 1_200_000)  # over the 1 MiB the test endpoint reads
        filler = "x" * max(0, size - 60)
        spec.body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": filler}]}).encode()
        if rng.random() < 0.3:
            spec.framing = "chunked"

    def mutate_huge_headers(self, case: Case):
        rng, spec = self.rng, case.spec
        spec.expect = None
        size = rng.randint(40_000, 100_000)
        variant = rng.randint(0, 3)
        if variant == 0:
            spec.headers.append((b"X-Big", b"a" * size))
        elif variant == 1:
            spec.headers.append((b"Cookie", b"; ".join(b"c%d=%s" % (i, b"v" * 50) for i in range(size // 56))))
        elif variant == 2:
            spec.set_header(b"X-Test-ID", b"tests/" + b"x" * size + b".py::test_x")
        else:
            spec.headers += [(b"X-Big-%d" % i, b"b" * 1000) for i in range(size // 1000)]

    def mutate_many_headers(self, case: Case):
        rng, spec = self.rng, case.spec
        variant = rng.randint(0, 4)
        if variant == 0:
            spec.headers += [(b"X-H-%d" % i, b"v%d" % i) for i in range(rng.randint(100, 1000))]
        elif variant == 1:
            spec.headers += [(b"X-H-%d" % i, b"v") for i in range(rng.randint(3000, 5000))]  # over 32 KiB
            spec.expect = None
        elif variant == 2:
            spec.headers += [(b"X-Test-ID", rng.choice([b"tests/a.py::t", b"../../x.py::t", b""])) for _ in range(10)]
            spec.expect = None
        elif variant == 3:
            spec.headers += [(b"Upgrade", rng.choice([b"websocket", b"h2c", b"TLS/1.2"])),
                             (b"Connection", b"Upgrade"), (b"HTTP2-Settings", b"AAMAAABkAARAAAAAAAIAAAAA")]
        else:
            spec.headers += [(b"Accept-Encoding", b"gzip, br"), (b"TE", b"trailers"), (b"Keep-Alive", b"timeout=1"),
                             (b"Proxy-Authorization", b"Basic Zm9vOmJhcg=="), (b"Forwarded", b"for=attacker.example"),
                             (b"X-Forwarded-Host", b"attacker.example"), (b"X-Forwarded-For", b"1.2.3.4")]

    def mutate_json_body(self, case: Case):
        rng, spec = self.rng, case.spec
        if spec.method in (b"GET", b"DELETE", b"HEAD"):
            spec.method = b"POST"
            case.methods = [b"POST"]
            if spec.kind == "control":
                spec.kind, spec.endpoint = "control", "post-to-get-endpoint"
        json_endpoint = spec.endpoint in ("chat", "stream", "embeddings", "completions") or spec.endpoint in (
            "/__recorder/faults", "/__recorder/test", "/__recorder/tools/invoke", "/__recorder/tools/result")
        spec.json_ok = False
        variant = rng.randint(0, 5)
        if variant == 0:  # not JSON at all
            spec.body = rng.choice([b"{", b'{"model": "m", "messages": [}', b'{"a":1,}', b'{"a":1} trailing',
                                    b"{'a': 1}", b'{"a": "\x01"}', b'{"a": 01}', b"[1, 2", b'{"a" 1}', b"tru",
                                    b'{"a": .5}', b'{"a": "\\x41"}', b'{"a": "\\u12"}', b"}", b"//c\n{}"])
            spec.expect = (400, None) if json_endpoint else None
        elif variant == 1:  # JSON some parsers accept
            spec.body = rng.choice([b'\xef\xbb\xbf{"model": "m"}', b'{"a": NaN}', b'{"a": Infinity}',
                                    b'{"a": -Infinity}', b'{"a": "\\ud800"}', b"", b"   ", b'{"a": 1, "a": 2}',
                                    b"null", b"[]", b'"string"', b"42", b"\t\n{}\n"])
            spec.expect = None
        elif variant == 2:  # nested deeper than 512
            depth = rng.randint(513, 3000)
            opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
            spec.body = b'{"model": "m", "deep": ' + opener * depth + b"1" + closer * depth + b"}"
            spec.expect = (400, None) if json_endpoint else None
        elif variant == 3:  # nested, but within the limit
            depth = rng.randint(50, 500)
            spec.body = (b'{"model": "fuzz-model", "messages": [{"role": "user", "content": "deep"}], "metadata": '
                         + b"[" * depth + b"1" + b"]" * depth + b"}")
            spec.json_ok = True
            spec.expect = None
        elif variant == 4:  # huge and odd numbers
            number = rng.choice([b"1e400", b"-1e400", b"123456789012345678901234567890", b"18446744073709551616",
                                 b"-0", b"1e-400", b"1.0000000000000000000001", b"4.9e-324", b"1E+308", b"-0.0",
                                 b"9" * 400, b"0.1e99999999999", b"1" + b"0" * 5000])
            key = rng.choice([b"temperature", b"max_tokens", b"seed", b"n", b"top_p", b"x"])
            spec.body = (b'{"model": "fuzz-model", "messages": [{"role": "user", "content": "num"}], "' + key + b'": '
                         + number + b"}")
            spec.json_ok = True
            spec.expect = None
        else:  # the wrong types
            spec.body = self.json_bytes(rng.choice([{"model": 5, "messages": "x"}, {"messages": None}, {},
                                                    {"model": MODEL, "messages": [None, 1, "x"]},
                                                    {"model": MODEL, "stream": "yes", "messages": []},
                                                    {"model": [], "input": {"a": 1}}, self.random_json()]))
            spec.expect = None
        spec.set_header(b"Content-Type", rng.choice([b"application/json", b"text/plain",
                                                     b"application/x-www-form-urlencoded"]))

    def mutate_test_id(self, case: Case):
        rng, spec = self.rng, case.spec
        test_id = self.escaping_id()
        spec.test_id = test_id
        where = rng.random()
        if spec.kind == "route":
            if where < 0.7:
                spec.set_header(b"X-Test-ID", test_id.encode())
                unsafe = self.unsafe(test_id)
                if test_id == "":
                    spec.expect = None  # no id: the current test id applies
                elif unsafe:
                    spec.expect = (400, "invalid_test_id")
                elif self.mode == "replay":
                    spec.expect = None if spec.endpoint == "models" else spec.expect and (404, "recording_not_found")
                if spec.endpoint == "auto":
                    spec.expect = (400, None) if unsafe else None
            else:
                spec.set_header(b"X-Test-ID", None)
                spec.headers.append((rng.choice([b"X-OGX-Provider-Data", b"X-LlamaStack-Provider-Data"]),
                                     json.dumps({"__test_id": test_id}).encode()))
                spec.expect = (400, "invalid_test_id") if self.unsafe(test_id) else None
                if spec.endpoint == "auto" and spec.expect:
                    spec.expect = (400, None)
        else:
            spec.set_header(b"X-Test-ID", test_id.encode())
            spec.expect = None if spec.endpoint not in ("/__recorder/report", "/__recorder/metrics") else spec.expect

    def mutate_fault(self, case: Case):
        rng, spec = self.rng, case.spec
        r = rng.random()
        if r < 0.4:
            value = rng.choice(GOOD_FAULTS)
        elif r < 0.48:
            value = rng.choice(ODD_GOOD_FAULTS)
        elif r < 0.85:
            value = rng.choice(BAD_FAULTS)
        else:
            while True:
                value = "".join(rng.choice(string.ascii_letters + string.digits + "=;-._ ~!@#$%^&*()[]{}<>?,/\\|'\"`")
                                for _ in range(rng.randint(1, 40)))
                parsed = parse_fault(value)
                if parsed is None or (parsed.get("delay", 0) <= 50 and parsed.get("event_delay", 0) <= 20):
                    break
        spec.set_header(b"X-Recorder-Fault", value.encode())
        fault = parse_fault(value)
        if spec.kind != "route":
            return  # the control endpoints ignore the header
        if fault is None:
            case.fault_invalid = True
            spec.expect = (400, "invalid_fault")
        else:
            case.fault = fault
            if "status" in fault and fault["status"] < 400:
                # Not an error status: answered as valid HTTP (no body on 1xx/204/304), or refused.
                spec.expect = None
                case.note = "fault-status-below-400"
            elif "status" in fault:
                spec.expect = (fault["status"], fault_error_type(fault["status"]))
            elif fault.get("malformed"):
                spec.expect = (200, None)
        if spec.endpoint == "auto" and spec.expect:
            spec.expect = (spec.expect[0], None)  # the auto route's shapes differ

    def mutate_not_http(self, case: Case):
        rng = self.rng
        case.http_valid = False
        case.close_after = True
        case.spec.expect = None
        case.host = "odd"
        variant = rng.randint(0, 6)
        if variant == 0:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000)))
        elif variant == 1:
            data = bytes.fromhex("16030100a5010000a10303") + bytes(rng.getrandbits(8) for _ in range(160))
        elif variant == 2:
            data = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
        elif variant == 3:
            data = b"\r\n" * rng.randint(1, 50)
        elif variant == 4:
            data = b"\x00" * rng.randint(1, 500)
        elif variant == 5:
            data = b"SSH-2.0-OpenSSH_9.0\r\n"
        else:
            data = "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 500))).encode()
        return lambda: data

    def mutate_pipelined(self, case: Case):
        rng, spec = self.rng, case.spec
        if spec.kind == "control" and spec.method != b"GET" or spec.kind == "other":
            spec.kind, spec.method, spec.target, spec.body = "control", b"GET", b"/__recorder/report", b""
            spec.endpoint, spec.expect = "/__recorder/report", (200, None)
            self.base_headers(spec, case.index)
        count = rng.randint(2, 4)
        case.answers = count
        case.methods = [spec.method] * count
        spec.set_header(b"Connection", None)

        def render():
            first = spec.render(rng)
            spec.headers.append((b"Connection", b"close"))
            return first * (count - 1) + spec.render(rng)
        return render


# ---------------------------------------------------------------- the exchange


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    complete: bool = True
    problem: str | None = None

    def json(self) -> Any:
        return strict_json(self.body)

    def error_type(self) -> str | None:
        try:
            error = self.json().get("error")
        except (ValueError, AttributeError):
            return None
        return error.get("type") if isinstance(error, dict) else None


@dataclass
class Exchange:
    answers: list[Answer] = field(default_factory=list)
    raw: bytes = b""
    eof: bool = False
    timed_out: bool = False
    reset: bool = False
    send_error: str | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        if not self.answers:
            how = "timed out" if self.timed_out else ("reset" if self.reset else "closed")
            return f"no answer ({how}; {len(self.raw)} bytes: {self.raw[:200]!r}; send error {self.send_error})"
        a = self.answers[0]
        return f"{a.status} {a.body[:300]!r}" + (f" (+{len(self.answers) - 1} more)" if len(self.answers) > 1 else "")


STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?")


def read_chunked(buf: bytes, position: int) -> tuple[bytes, int] | None:
    """A chunked body at `position`: (body, end), None while incomplete; ValueError if malformed."""
    body, cursor = b"", position
    while True:
        line_end = buf.find(b"\r\n", cursor)
        if line_end < 0:
            return None
        size = int(buf[cursor:line_end].split(b";")[0].strip(), 16)
        if size == 0:
            trailer = line_end + 2
            while True:
                end = buf.find(b"\r\n", trailer)
                if end < 0:
                    return None
                if end == trailer:
                    return body, end + 2
                trailer = end + 2
        start = line_end + 2
        if len(buf) < start + size + 2:
            return None
        if buf[start + size:start + size + 2] != b"\r\n":
            raise ValueError("no CRLF after a chunk")
        body += buf[start:start + size]
        cursor = start + size + 2


def parse_answers(buf: bytes, methods: list[bytes], eof: bool) -> tuple[list[Answer], bool]:
    """The responses in `buf`, and whether the last one is complete (more bytes change nothing)."""
    answers: list[Answer] = []
    position = 0
    while position < len(buf):
        end = buf.find(b"\r\n\r\n", position)
        if end < 0:
            if eof:
                answers.append(Answer(0, {}, b"", False, f"incomplete head {buf[position:position + 200]!r}"))
            return answers, eof
        lines = buf[position:end].split(b"\r\n")
        match = STATUS_LINE.fullmatch(lines[0])
        if not match:
            answers.append(Answer(0, {}, b"", False, f"bad status line {lines[0][:200]!r}"))
            return answers, True
        status = int(match.group(1))
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        position = end + 4
        method = methods[len(answers)] if len(answers) < len(methods) else b"GET"
        has_body = headers.get(b"content-length", b"0") not in (b"", b"0") or b"transfer-encoding" in headers
        if 100 <= status < 200 and status != 101:
            if has_body:
                answers.append(Answer(status, headers, b"", True, f"a {status} answer with a body"))
                return answers, True
            continue  # an interim answer: the real one follows
        if status in (101, 204, 304) and has_body and method != b"HEAD":
            answers.append(Answer(status, headers, b"", True, f"a {status} answer with a body"))
            return answers, True
        if method == b"HEAD" or status in (101, 204, 304):
            answers.append(Answer(status, headers, b""))
            if status == 101:
                return answers, True
            continue
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            try:
                chunks = read_chunked(buf, position)
            except ValueError as error:
                answers.append(Answer(status, headers, buf[position:], False, f"malformed chunked answer: {error}"))
                return answers, True
            if chunks is None:
                if eof:
                    answers.append(Answer(status, headers, buf[position:], False))
                return answers, eof
            answers.append(Answer(status, headers, chunks[0]))
            position = chunks[1]
            continue
        if b"content-length" in headers:
            try:
                length = int(headers[b"content-length"])
            except ValueError:
                answers.append(Answer(status, headers, b"", False, "bad Content-Length in the answer"))
                return answers, True
            if len(buf) - position < length:
                if eof:
                    answers.append(Answer(status, headers, buf[position:], False))
                return answers, eof
            answers.append(Answer(status, headers, buf[position:position + length]))
            position += length
            continue
        if not eof:
            return answers, False  # a body that ends with the connection
        answers.append(Answer(status, headers, buf[position:]))
        return answers, True
    return answers, True


def exchange(port: int, data: bytes, *, methods: list[bytes], answers: int, close_after: bool,
             timeout: float = READ_TIMEOUT) -> Exchange:
    """Sends `data` on a fresh connection and reads what comes back: `answers` complete answers,
    the end of the connection, or `timeout` seconds of silence after the last byte sent."""
    started = time.monotonic()
    result = Exchange()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as error:
        result.send_error = f"connect: {type(error).__name__}: {error}"
        result.eof = True
        return result
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.sendall(data)
            if close_after:
                sock.shutdown(socket.SHUT_WR)
        except OSError as error:  # the proxy answered (and closed) before reading everything
            result.send_error = f"{type(error).__name__}: {error}"
        deadline = time.monotonic() + timeout
        buf = b""
        while True:
            parsed, done = parse_answers(buf, methods, result.eof)
            if result.eof or (len(parsed) >= answers and done):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                result.timed_out = True
                break
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(1 << 16)
            except socket.timeout:
                result.timed_out = True
                break
            except OSError:
                result.reset = True
                result.eof = True
                continue
            if not chunk:
                result.eof = True
            buf += chunk
        result.raw = buf
        result.answers = parse_answers(buf, methods, True)[0] if buf else []
    finally:
        sock.close()
    result.seconds = time.monotonic() - started
    return result


def simple_request(port: int, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
                   ) -> Answer | None:
    head = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    result = exchange(port, data, methods=[method.encode()], answers=1, close_after=False, timeout=10)
    return result.answers[0] if result.answers else None


# ---------------------------------------------------------------- checks


@dataclass
class Failure:
    guard: bool  # a rule of the request guard (rule 6)
    check: str
    case: Case | None
    detail: str

    def text(self, mode: str) -> str:
        where = f"case {self.case.index} ({self.case.category})" if self.case else "final check"
        out = f"[{'guard' if self.guard else 'other'}] {self.check}: seed={SEED} mode={mode} {where}: {self.detail}"
        if self.case:
            out += f"\n    request: {self.case.show()}"
        return out


def check_case(case: Case, result: Exchange, mode: str, upstream_delta: int | None) -> list[Failure]:
    failures: list[Failure] = []

    def fail(check: str, detail: str, guard: bool = False) -> None:
        failures.append(Failure(guard, check, case, detail + f"; answer: {result.describe()}"))

    spec = case.spec
    refusals = case.refusals
    route = spec.kind == "route"
    fault_status = case.fault.get("status") if case.fault and route else None
    first = result.answers[0] if result.answers else None

    # Every answer: well-formed HTTP, JSON errors (rule 2), no undocumented 5xx (rule 3).
    cut = bool(case.fault and "cut_after" in case.fault)  # a cut the request asked for
    for answer in result.answers:
        if answer.problem:
            fail("malformed answer", answer.problem)
            continue
        if not answer.complete and not cut:
            fail("truncated answer", f"{answer.status} with {len(answer.body)} body bytes")
        if answer.status >= 400 and answer.body and answer.complete:
            try:
                body = answer.json()
            except ValueError as error:
                fail("error body is not JSON", str(error))
            else:
                if not isinstance(body, dict) or "error" not in body:
                    fail("error body has no \"error\"", f"top level {type(body).__name__}")
        if answer.status >= 500:
            allowed = (mode != "replay" and answer.status in (502, 504)) or answer.status == fault_status
            if not allowed:
                fail("undocumented 5xx", f"status {answer.status}" + (
                    " for a malformed fault spec (must be 400 invalid_fault)" if case.fault_invalid else ""))

    # An odd Host or Origin that the guard refused (it may): nothing else is expected of it.
    refused_anyway = case.guard_unsure and first is not None and (first.status == 400 or (
        first.status == 403 and (b"forbidden_host" in first.body or b"forbidden_origin" in first.body)))
    # No answer at all: only for what is not HTTP, or was cut short by the client.
    if not result.answers and case.http_valid and not case.close_after and not refusals:
        fail("no answer", "a complete request got no answer")
    elif case.http_valid and not case.close_after and 0 < len(result.answers) < case.answers and not refused_anyway:
        fail("missing answers", f"{len(result.answers)} of {case.answers} pipelined answers")

    # The request guard (rule 6).
    if refused_anyway and upstream_delta:
        fail("guard: refused request reached the upstream", f"{upstream_delta} upstream call(s)", guard=True)
    if case.guard_unsure:
        pass
    elif refusals:
        statuses = {s for s, _ in refusals}
        if first is None:
            if case.http_valid and not case.close_after:
                fail("guard: no refusal", f"expected one of {refusals}", guard=True)
        elif first.status not in statuses:
            fail("guard: not refused", f"expected one of {refusals}, got {first.status}", guard=True)
        else:
            wanted = {t for s, t in refusals if s == first.status}
            named = first.error_type() in wanted or (  # other shapes (Gemini's) name the type in the message
                spec.endpoint == "auto" and any(t.encode() in first.body for t in wanted if t))
            if None not in wanted and not named and first.body:  # a HEAD's answer has no body
                fail("guard: wrong error type", f"expected {sorted(wanted)}, got {first.error_type()!r}", guard=True)
        if upstream_delta:
            fail("guard: refused request reached the upstream", f"{upstream_delta} upstream call(s)", guard=True)
    elif case.loopback_only and first is not None and first.status == 403 and first.error_type() in (
            "forbidden_host", "forbidden_origin"):
        fail("guard: loopback refused", f"Host/Origin are loopback, got {first.error_type()}", guard=True)

    # Live mode validates a test id only where it is used (nothing is read or written), and a
    # head of very many headers may be over the decoder's count before our size: both are refusals.
    if first is not None and ((mode == "live" and first.error_type() == "invalid_test_id") or (
            case.category == "many_headers" and first.status == 431)):
        refused_anyway = True
    # Documented answers, when nothing refuses the request.
    if case.note == "fault-status-below-400" and first is not None and first.complete and not refusals and not (
            refused_anyway or first.status == case.fault["status"] or (first.status == 400 and (
                first.error_type() == "invalid_fault" or b"invalid_fault" in first.body))):
        fail("undocumented answer", f"expected {case.fault['status']} or 400 invalid_fault, got {first.status}")
    if (not refusals and not refused_anyway and first is not None and first.complete and case.http_valid
            and not case.close_after):
        if case.fault_invalid and route and (first.status != 400 or (
                first.error_type() != "invalid_fault" and spec.endpoint != "auto")):
            fail("bad fault spec not a 400 invalid_fault", f"got {first.status} {first.error_type()!r}")
        elif spec.expect and not case.fault_invalid:
            status, kind = spec.expect
            if first.status != status or (kind is not None and first.error_type() != kind):
                fail("undocumented answer", f"expected {status} {kind or ''}".rstrip()
                     + f", got {first.status} {first.error_type() or ''}".rstrip())
    if case.note == "truncated" and upstream_delta:
        fail("truncated request forwarded", f"{upstream_delta} upstream call(s) for a request cut short")
    if mode == "replay" and upstream_delta:
        fail("replay forwarded", f"{upstream_delta} upstream call(s) in replay mode")
    return failures


def snapshot(folder: Path) -> dict[str, tuple[bool, int, int]]:
    out = {}
    for path in folder.rglob("*"):
        try:
            stat = path.lstat()
        except FileNotFoundError:
            continue
        out[str(path.relative_to(folder))] = (path.is_dir(), stat.st_size, stat.st_mtime_ns)
    return out


# ---------------------------------------------------------------- the test


def record_hits(root: Path, upstream: FakeUpstream) -> list[dict]:
    """Real recordings, made with the openai SDK through a record proxy; the raw requests that
    replay them."""
    calls = [
        ("tests/fuzz/test_a.py::test_one", "chat", lambda c: c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}])),
        ("tests/fuzz/test_a.py::test_one", "stream", lambda c: list(c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}], stream=True))),
        ("tests/fuzz/test_a.py::test_two", "chat", lambda c: c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "What is 2+2?"}], temperature=0)),
        ("tests/other/test_b.py::TestX::test_y[1]", "embeddings", lambda c: c.embeddings.create(
            model=MODEL, input="hello", encoding_format="float")),
        ("tests/other/test_b.py::TestX::test_y[1]", "completions", lambda c: c.completions.create(
            model=MODEL, prompt="hello", max_tokens=5)),
        ("tests/fuzz/test_a.py::test_two", "models", lambda c: list(c.models.list())),
    ]
    hits = []
    with Proxy(root, mode="record", upstreams={"up": upstream.url, "auto": upstream.url},
               recorded_bases={"up": BASE, "auto": AUTO_BASE}, extra_args=PROXY_ARGS) as proxy:
        for test_id, endpoint, call in calls:
            before = len(proxy.sent)
            call(proxy.client("up", test_id))
            method, url, body = proxy.sent[before]
            hits.append({"method": method, "target": url[len(proxy.url):], "body": body, "test_id": test_id,
                         "endpoint": endpoint})
    return hits


def known_answers(port: int, requests: list[dict]) -> list[bytes | None]:
    out = []
    for request in requests:
        answer = simple_request(port, request["method"], request["target"], request["body"],
                                {"X-Test-ID": request["test_id"]})
        out.append(None if answer is None else b"%d " % answer.status + answer.body)
    return out


# The suite fuzzes these two; `API_RECORDER_FUZZ_MODES=replay,record-if-missing,record,live` every mode.
MODES = os.environ.get("API_RECORDER_FUZZ_MODES", "replay,record-if-missing").split(",")


@pytest.mark.parametrize("mode", MODES)
def test_raw_http_fuzz(tmp_path, monkeypatch, mode):
    # The fake upstream takes what the proxy forwards: many and long headers included.
    monkeypatch.setattr(http.client, "_MAXHEADERS", 100_000)
    monkeypatch.setattr(http.client, "_MAXLINE", 1 << 20)
    root = tmp_path / "jail" / "a" / "b" / "root"
    logs = root.parent / "proxy-logs"
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # the proxy's working directory: inside tmp_path, outside the root
    rng = random.Random(f"{SEED}/{mode}")
    failures: list[Failure] = []
    stats: dict[str, int] = {}

    with FakeUpstream(upstream_answer) as upstream:
        answer_every_method(upstream)
        hits = record_hits(root, upstream) if mode == "replay" else []
        known = [h for h in hits if h["endpoint"] in ("chat", "stream")] or [
            {"method": "POST", "target": "/up/v1/chat/completions", "test_id": "tests/fuzz/test_known.py::test_k",
             "body": json.dumps({"model": MODEL, "messages": [{"role": "user", "content": f"known {s}"}],
                                 **({"stream": True} if s else {})}).encode()} for s in (False, True)]
        root.mkdir(parents=True, exist_ok=True)
        logs.mkdir(exist_ok=True)
        before = snapshot(tmp_path)
        with Proxy(root, mode=mode, upstreams={"up": upstream.url, "auto": upstream.url},
                   recorded_bases={"up": BASE, "auto": AUTO_BASE}, extra_args=PROXY_ARGS) as proxy:
            generator = Generator(rng, port=proxy.port, mode=mode, root=root, tmp_path=tmp_path, hits=hits)
            first_answers = known_answers(proxy.port, known)
            assert all(a is not None and a.startswith(b"200 ") for a in first_answers), (
                f"seed={SEED} mode={mode}: the known requests failed before fuzzing: {first_answers}\n{proxy.log()}")
            calls_before = upstream.calls
            started = time.monotonic()
            recent: list[Case] = []
            refused_cases: set[int] = set()
            for index in range(CASES):
                case = generator.case(index)
                if ONLY is not None and index != ONLY:
                    continue
                if case.refusals and not case.guard_unsure:
                    refused_cases.add(index)
                calls = len(upstream.requests)
                result = exchange(proxy.port, case.data, methods=case.methods, answers=case.answers,
                                  close_after=case.close_after)
                if not result.answers or result.timed_out:
                    time.sleep(0.02)  # a crash shows a moment after the connection ends
                # This case's own upstream calls (an earlier case's late call is not this one's;
                # the final check below catches those by the same header).
                delta = sum(1 for _, _, headers, _ in upstream.requests[calls:]
                            if headers.get(FUZZ_HEADER.decode().lower()) == str(index))
                recent = (recent + [case])[-3:]
                key = f"{case.category}:{result.answers[0].status if result.answers else 'none'}"
                if result.timed_out:
                    key += ":timed-out"
                stats[key] = stats.get(key, 0) + 1
                if proxy.process.poll() is not None:
                    shown = "\n".join(f"  case {c.index} ({c.category}): {c.show()}" for c in recent)
                    pytest.fail(f"seed={SEED} mode={mode}: the proxy exited with {proxy.process.returncode} after "
                                f"case {index} ({case.category}); answer: {result.describe()}\n"
                                f"last requests:\n{shown}\n{proxy.log()[-3000:]}")
                failures += check_case(case, result, mode, delta)
                if ONLY is not None:
                    print(f"case {index}: {case.show(2000)}\nanswer: {result.describe()}\n"
                          f"refusals {case.refusals} expect {case.spec.expect}")
                failures += follow_up(proxy.port, case, result, mode)
                if time.monotonic() - started > MODE_BUDGET:
                    pytest.fail(f"seed={SEED} mode={mode}: fuzzing took over {MODE_BUDGET}s by case {index}")
            elapsed = time.monotonic() - started

            # Rule 5: the known requests answer the same bytes after the fuzz.
            calls_known = upstream.calls
            again = known_answers(proxy.port, known)
            for request, old, new in zip(known, first_answers, again):
                if old != new:
                    failures.append(Failure(False, "replay changed", None,
                                            f"{request['target']} ({request['test_id']}) answered {old[:300]!r} "
                                            f"before the fuzz and {None if new is None else new[:300]!r} after"))
            if upstream.calls != calls_known and mode in ("replay", "record-if-missing"):
                failures.append(Failure(False, "replay changed", None, "the known requests were forwarded again"))
            if mode == "replay" and upstream.calls != calls_before:
                failures.append(Failure(False, "replay forwarded", None, f"{upstream.calls - calls_before} calls"))
            log = proxy.log()

        # Rule 6: no refused request reached the upstream; the fault header never goes there.
        for method, path, headers, _ in upstream.requests:
            index = headers.get(FUZZ_HEADER.decode().lower())
            if index is not None and index.isdigit() and int(index) in refused_cases:
                failures.append(Failure(True, "guard: refused request reached the upstream", None,
                                        f"case {index}: {method} {path[:200]}"))
            if "x-recorder-fault" in headers:
                failures.append(Failure(False, "fault header forwarded", None, f"case {index}: {method} {path[:200]}"))

    # Rule 4: nothing written outside the root; what is inside is JSON.
    after = snapshot(tmp_path)
    inside = (root.relative_to(tmp_path), logs.relative_to(tmp_path))
    for name, (is_dir, size, mtime) in sorted(after.items()):
        path = Path(name)
        if any(path == folder or folder in path.parents for folder in inside):
            continue
        if name not in before:
            failures.append(Failure(False, "written outside the root", None, f"new {'folder' if is_dir else 'file'} "
                                    f"{tmp_path / name}"))
        elif not is_dir and before[name] != (is_dir, size, mtime):
            failures.append(Failure(False, "written outside the root", None, f"changed {tmp_path / name}"))
    files = [p for p in root.rglob("*") if p.is_file()]
    for path in files:
        try:
            # Python's JSON, as the reference writes recordings: a request's NaN or Infinity is
            # kept as it was sent (json.dumps allows them); error bodies are checked strictly.
            json.loads(path.read_bytes().decode("utf-8"), parse_int=str)
        except ValueError as error:
            failures.append(Failure(False, "recording is not JSON", None, f"{path.relative_to(root)}: {error}"))

    shown = failures
    print(f"seed={SEED} mode={mode}: {CASES} cases in {elapsed:.1f}s, {len(files)} files under the root; "
          f"{len(shown)} failures ({sum(f.guard for f in shown)} guard)")
    print("answers by category:", json.dumps(dict(sorted(stats.items()))))
    if shown:
        counts: dict[str, int] = {}
        for f in shown:
            counts[f.check] = counts.get(f.check, 0) + 1
        details = "\n".join(f.text(mode) for f in shown[:40])
        pytest.fail(f"seed={SEED} mode={mode}: {len(shown)} fuzz failures {json.dumps(counts)}"
                    f"; reproduce with API_RECORDER_FUZZ_SEED={SEED}"
                    f" (one case: also API_RECORDER_FUZZ_CASE=N)"
                    f"\n{details}\n{log[-2500:]}")


def follow_up(port: int, case: Case, result: Exchange, mode: str) -> list[Failure]:
    """Undoes what a control request left behind that would change later answers: faults set for
    a test id are cleared, a tool call the proxy asked to run is cancelled."""
    answer = result.answers[0] if result.answers else None
    if answer is None or answer.status >= 300 or case.spec.kind != "control":
        return []
    target = case.spec.target
    followups = []
    if b"/__recorder/faults" in target and case.spec.method not in (b"GET", b"DELETE"):
        followups.append(("DELETE", "/__recorder/faults", b""))
    if b"/__recorder/tools/invoke" in target:
        try:
            body = answer.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("outcome") == "run" and isinstance(body.get("call_id"), str):
            finish = [{"result": {"ok": True}}, {"error": {"type": "ValueError", "message": "no"}},
                      {"cancelled": True}][case.index % 3]
            followups.append(("POST", "/__recorder/tools/result",
                              json.dumps({"call_id": body["call_id"], **finish}).encode()))
    failures = []
    for method, path, body in followups:
        reply = simple_request(port, method, path, body)
        if reply is None or reply.status >= 500 or (reply.status >= 400 and not (
                reply.status == 408 and b"tool_call_abandoned" in reply.body)):
            failures.append(Failure(False, "follow-up failed", case, f"{method} {path} {body[:200]!r} answered "
                                    f"{None if reply is None else (reply.status, reply.body[:300])}"))
    return failures
