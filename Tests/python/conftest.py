"""Shared helpers for the Python SDK suite: the proxy as a subprocess, a fake upstream, the real
model server, and readers for the recordings a test leaves behind.

The suite drives the built binary (`.build/release/api-recorder`, or $API_RECORDER_BIN) with the
official `openai` SDK over real sockets. Nothing here builds anything.
"""
from __future__ import annotations

import copy
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable

import openai
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
# The release build (scripts/build-release.sh), the one the wheel ships; absolute, as tests run it
# from other folders.
BINARY = Path(os.environ.get("API_RECORDER_BIN", REPO / ".build" / "release" / "api-recorder")).absolute()
MODEL_SERVER = REPO / "scripts" / "model-server.sh"
MODEL = "gemma-3-270m"
# Recordings name this base instead of the model server's real (per-run) port.
RECORDED_BASE = "http://upstream.invalid/v1"
LISTENING = re.compile(r"^api-recorder listening on http://127\.0\.0\.1:(\d+) mode=(\S+) root=(.+?) routes=(.*)$")

sys.path.insert(0, str(REPO / "scripts"))
import hash_baseline  # noqa: E402  (the standard-library reading of the hash rules)


# ---------------------------------------------------------------- ports


def free_port() -> int:
    """A port nothing listens on right now (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_url() -> str:
    """A base URL whose port refuses connections: an upstream that cannot answer."""
    return f"http://127.0.0.1:{free_port()}/v1"


# ---------------------------------------------------------------- the proxy


class Proxy:
    """`api-recorder serve` on a free port, as a context manager.

    >>> with Proxy(root, mode="record", upstreams={"up": url}, recorded_bases={"up": RECORDED_BASE}) as p:
    ...     p.client("up", test_id="tests/x/test_a.py::test_b").chat.completions.create(...)

    `sent` lists every request the clients made through it (method, url, body bytes), so a test
    can compute the hash the proxy should have used. Logs (`--log-level info`) go to a file that
    is printed when the proxy fails to start and is available as `log()`.
    """

    def __init__(
        self,
        root: Path,
        *,
        mode: str,
        upstreams: dict[str, str],
        recorded_bases: dict[str, str] | None = None,
        fallback_dir: str | None = None,
        extra_args: Iterable[str] = (),
        env: dict[str, str] | None = None,
        start_timeout: float = 30.0,
    ):
        if not BINARY.exists():
            pytest.fail(f"{BINARY} is missing: build it with scripts/build-release.sh first")
        self.root = Path(root)
        self.mode = mode
        self.upstreams = dict(upstreams)
        self.recorded_bases = dict(recorded_bases or {})
        self.args = [str(BINARY), "serve", "--port", "0", "--mode", mode, "--root", str(self.root), "--log-level", "info"]
        if fallback_dir is not None:
            self.args += ["--fallback-dir", fallback_dir]
        for name, url in self.upstreams.items():
            self.args += ["--upstream", f"{name}={url}"]
        for name, url in self.recorded_bases.items():
            self.args += ["--recorded-base", f"{name}={url}"]
        self.args += list(extra_args)
        self.env = {**os.environ, **(env or {})}
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.banner: str | None = None
        self.sent: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()
        self._clients: list[openai.OpenAI] = []
        self._log_path: Path | None = None

    def __enter__(self) -> "Proxy":
        self.root.mkdir(parents=True, exist_ok=True)
        log_dir = self.root.parent / "proxy-logs"
        log_dir.mkdir(exist_ok=True)
        self._log_path = log_dir / f"{self.mode}-{time.monotonic_ns()}.log"
        log_file = open(self._log_path, "wb")
        self.process = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file, env=self.env, text=True)
        log_file.close()
        line = self._read_banner()
        match = LISTENING.match(line)
        if not match:
            self.stop()
            raise AssertionError(f"unexpected first stdout line: {line!r}\n{self.log()}")
        self.banner = line
        self.port = int(match.group(1))
        assert match.group(2) == self.mode, line
        assert match.group(3) == str(self.root.resolve()), line
        return self

    def _read_banner(self) -> str:
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.start_timeout)
        if not result or not result[0]:
            code = self.process.poll()
            self.stop()
            raise AssertionError(
                f"api-recorder serve printed no listening line within {self.start_timeout}s "
                f"(exit code {code}); args {self.args}\n{self.log()}")
        return result[0].rstrip("\n")

    def __exit__(self, exc_type, *exc) -> None:
        code = self.stop()
        if exc_type is None and code != 0:
            raise AssertionError(f"api-recorder serve exited with {code} after SIGTERM, not 0\n{self.log()}")

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL on timeout. Returns the exit code."""
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout:
            self.process.stdout.close()
        return self.process.returncode

    def log(self) -> str:
        if self._log_path and self._log_path.exists():
            return "--- proxy log ---\n" + self._log_path.read_text(errors="replace")[-6000:]
        return ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def client(
        self,
        name: str,
        test_id: str | None = None,
        *,
        api_key: str = "sk-test-not-a-secret",
        headers: dict[str, str] | None = None,
        timeout: float = 300.0,
    ) -> openai.OpenAI:
        """An `openai` client for route `name`: no retries, long timeout, X-Test-ID when given."""
        default_headers = dict(headers or {})
        if test_id is not None:
            default_headers["X-Test-ID"] = test_id

        def capture(request) -> None:
            request.read()
            with self._lock:
                self.sent.append((request.method, str(request.url), bytes(request.content)))

        client = openai.OpenAI(
            api_key=api_key,
            base_url=self.base_url(name),
            default_headers=default_headers,
            max_retries=0,
            timeout=timeout,
            http_client=openai.DefaultHttpxClient(event_hooks={"request": [capture]}, timeout=timeout),
        )
        self._clients.append(client)
        return client

    def report(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/__recorder/report", timeout=30) as response:
            return json.load(response)

    def set_test(self, test_id: str | None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/__recorder/test", data=json.dumps({"test_id": test_id}).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


# ---------------------------------------------------------------- recordings


def recording_files(root: Path) -> list[str]:
    """Every file under `root` (proxy logs aside), relative, sorted."""
    root = Path(root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def read_tree(root: Path) -> dict[str, bytes]:
    return {name: (Path(root) / name).read_bytes() for name in recording_files(root)}


def load(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def recordings_dir(root: Path, test_id: str | None, fallback: str = "recordings") -> Path:
    """Where the store keeps the recordings of `test_id` (docs/recording-format.md)."""
    if test_id is None or "::" not in test_id:
        return Path(root) / fallback
    return Path(root) / Path(test_id.split("::", 1)[0]).parent / "recordings"


def verify(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BINARY), "verify", *map(str, paths)], capture_output=True, text=True, timeout=120)


def assert_verifies(root: Path) -> str:
    result = verify(root)
    assert result.returncode == 0, f"api-recorder verify {root} failed:\n{result.stdout}{result.stderr}"
    assert re.search(r"(\d+) recordings: \1 ok", result.stdout), result.stdout
    return result.stdout


def request_hash(method: str, url: str, body: Any, test_id: str | None) -> str:
    """The request hash, computed by scripts/hash_baseline.py (independently of the proxy)."""
    identity = hash_baseline.inference_identity(method, url, body, test_id)
    return hashlib.sha256(hash_baseline.canonical(identity).encode()).hexdigest()


def sent_hash(sent: tuple[str, str, bytes], proxy_base: str, recorded_base: str, test_id: str | None) -> str:
    """The hash of a request a client sent through the proxy, as its recording must be named."""
    method, url, content = sent
    assert url.startswith(proxy_base), (url, proxy_base)
    body = json.loads(content) if content else {}
    return request_hash(recorded_method(method, url[len(proxy_base):]), recorded_base + url[len(proxy_base):], body, test_id)


def recorded_method(method: str, path: str) -> str:
    """The method a request is recorded (and hashed) as. The reference records every SDK call as
    POST, `client.models.list()` included, so the proxy records `GET .../models` as POST too."""
    if method.upper() == "GET" and path.split("?", 1)[0] in ("/models", "/v1/models"):
        return "POST"
    return method.upper()


def tool_call_id(request_hash_: str, choice: int = 0, call: int = 0) -> str:
    """The deterministic chat-completion tool-call id the proxy must give (OpenAIAdapter)."""
    return "call_" + hashlib.sha256(f"{request_hash_}:{choice}:{call}".encode()).hexdigest()[:24]


def normalized(obj: Any, request_hash_: str) -> Any:
    """A response object (or a list of chunks) as the proxy records and replays it: the documented
    response normalisation on each object's top-level keys (docs/recording-format.md). The proxy
    sends this form to the client while recording too, so `normalized(x) == x` for what a client
    received from it (chat completions, completions, embeddings)."""
    if isinstance(obj, list):
        return [normalized(o, request_hash_) for o in obj]
    out = copy.deepcopy(obj)
    if isinstance(out, dict) and out.get("object") != "model":
        if "id" in out:
            out["id"] = f"rec-{request_hash_[:12]}"
        if "created" in out:
            out["created"] = 0
    if isinstance(out, dict) and "created_at" in out:
        out["created_at"] = "1970-01-01T00:00:00.000000Z"
    return out


def wire(model) -> Any:
    """What the server sent for an SDK object: only the fields present on the wire, as JSON."""
    return model.model_dump(mode="json", exclude_unset=True)


# ---------------------------------------------------------------- a fake upstream


class FakeUpstream:
    """A tiny threaded HTTP server on port 0 with a pluggable handler.

    `handler(method, path, headers, body) -> (status, content_type, payload)` where payload is
    bytes, or a list of bytes sent as separate writes (an SSE stream). `calls` counts requests and
    `requests` keeps (method, path, headers, body) of each.
    """

    def __init__(self, handler: Callable[[str, str, dict[str, str], bytes], tuple[int, str, Any]]):
        self.handler = handler
        self.calls = 0
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with outer._lock:
                    outer.calls += 1
                    outer.requests.append((self.command, self.path, headers, body))
                status, content_type, payload = outer.handler(self.command, self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if isinstance(payload, (bytes, bytearray)):
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                else:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for part in payload:
                        self.wfile.write(part)
                        self.wfile.flush()
                    self.close_connection = True

            do_GET = do_POST = _serve

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeUpstream":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"


def json_reply(obj: Any, status: int = 200) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(obj).encode()


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A fresh, empty recordings root for one test (inside pytest's temporary folder)."""
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture(scope="session")
def shared() -> Path:
    """The reference files beside the clone (`../shared`); skips when absent."""
    if not (SHARED / "corpus-sample" / "tests").is_dir():
        pytest.skip(f"reference files not found at {SHARED} (the ../shared folder beside the clone)")
    return SHARED


@pytest.fixture(scope="session")
def model_server() -> Iterable[str]:
    """The base URL of the real model server (scripts/model-server.sh), one for the session.

    Reuses a server that is already running (and leaves it running); otherwise starts one and
    stops it at the end. Skips, with the script's output, when it cannot start.
    """
    if os.environ.get("API_RECORDER_SKIP_MODEL_SERVER"):
        pytest.skip("API_RECORDER_SKIP_MODEL_SERVER is set: no real model server")
    if not MODEL_SERVER.exists():
        pytest.skip(f"{MODEL_SERVER} is missing: no real model server")
    running = subprocess.run([str(MODEL_SERVER), "url"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if running.returncode == 0 and running.stdout.strip():
        yield running.stdout.strip()
        return
    started = subprocess.run(
        [str(MODEL_SERVER), "start"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800)
    url = started.stdout.strip().splitlines()[-1] if started.stdout.strip() else ""
    if started.returncode != 0 or not url.startswith("http://"):
        pytest.skip(
            f"`scripts/model-server.sh start` failed (exit {started.returncode}); "
            f"no real model server:\n{started.stderr[-2000:]}")
    try:
        yield url
    finally:
        subprocess.run([str(MODEL_SERVER), "stop"], capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
