"""MCP routes (`--adapter NAME=mcp`): the official `mcp` SDK's client session over its streamable
HTTP transport, through the proxy, against a real MCP server from the same SDK (mcp_server.py, a
subprocess with two tools), recorded and then replayed with no upstream.

The contract under test:

- route `m` (`--upstream m=http://127.0.0.1:PORT --adapter m=mcp --recorded-base m=http://mcp.invalid`);
  the client URL is `http://127.0.0.1:PROXYPORT/m/mcp`, the test id goes in `X-Test-ID`;
- each JSON-RPC request is recorded by method and params, as a plain-HTTP recording (`request`:
  `test_id`, `url`, `method`, `payload`); neither the JSON-RPC `id` (absent from the stored
  payload) nor the `Mcp-Session-Id` header is part of the identity;
- notifications get 202 and are not recorded; on replay a response carries the client's own
  `id`, `initialize` gets a fresh `Mcp-Session-Id`, and the server-to-client GET stream gets 405;
- a request with no recording gets the proxy's 404 `recording_not_found` on replay.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import anyio
import pytest
from mcp.client.session import ClientSession

from conftest import Proxy, assert_verifies, free_port, load, recording_files, recordings_dir
from hash_baseline import canonical, http_identity

MODULE = "tests/integration/mcp/test_mcp.py"
SERVER_SCRIPT = Path(__file__).with_name("mcp_server.py")
RECORDED_BASE = "http://mcp.invalid"
RECORDED_URL = f"{RECORDED_BASE}/mcp"
SESSION_TIMEOUT = 60.0


# ---------------------------------------------------------------- the MCP server


class MCPServerProcess:
    """mcp_server.py on a free port, as a context manager; `url` is its base (no `/mcp`)."""

    def __init__(self, log_dir: Path, start_timeout: float = 60.0):
        self.port = free_port()
        self.log_path = Path(log_dir) / f"mcp-server-{self.port}.log"
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "MCPServerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(SERVER_SCRIPT), str(self.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the MCP server exited with {self.process.returncode}\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"the MCP server did not listen within {self.start_timeout}s\n{self.log()}")
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log(self) -> str:
        return "--- MCP server log ---\n" + self.log_path.read_text(errors="replace")[-4000:]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# ---------------------------------------------------------------- the MCP client, with a log of its HTTP traffic


@dataclass
class HTTPExchange:
    method: str
    body: bytes              # the request body (a JSON-RPC message, or empty)
    status: int
    content_type: str
    session_id: str | None   # the response's Mcp-Session-Id
    error_body: bytes = b""  # the response body, for statuses >= 400

    @property
    def message(self) -> dict[str, Any] | None:
        return json.loads(self.body) if self.body else None


@dataclass
class Traffic:
    exchanges: list[HTTPExchange] = field(default_factory=list)

    async def on_response(self, response) -> None:
        request = response.request
        error_body = await response.aread() if response.status_code >= 400 else b""
        self.exchanges.append(HTTPExchange(
            request.method, bytes(request.content or b""), response.status_code,
            response.headers.get("content-type", ""), response.headers.get("mcp-session-id"), error_body))

    def posts(self, rpc_method: str) -> list[HTTPExchange]:
        return [e for e in self.exchanges if e.method == "POST" and (e.message or {}).get("method") == rpc_method]


def transport(url: str, headers: dict[str, str], traffic: Traffic):
    """The installed SDK's streamable HTTP client for `url`, sending `headers` and logging each
    response in `traffic`. mcp 2.x: `streamable_http_client(url, http_client=...)`; earlier
    releases: `streamablehttp_client(url, headers=..., httpx_client_factory=...)`."""
    import mcp.client.streamable_http as streamable_http

    hooks = {"response": [traffic.on_response]}
    new = getattr(streamable_http, "streamable_http_client", None)
    if new is not None and "http_client" in inspect.signature(new).parameters:
        from mcp.shared._httpx_utils import create_mcp_http_client

        client = create_mcp_http_client(headers=headers)
        client.event_hooks = hooks
        return client, new(url, http_client=client)
    old = streamable_http.streamablehttp_client
    if "httpx_client_factory" in inspect.signature(old).parameters:
        from mcp.shared._httpx_utils import create_mcp_http_client

        def factory(headers=None, timeout=None, auth=None):
            client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
            client.event_hooks = hooks
            return client

        return None, old(url, headers=headers, httpx_client_factory=factory)
    return None, old(url, headers=headers)


Call = Callable[[ClientSession], Awaitable[Any]]


def run_session(url: str, test_id: str, calls: list[tuple[str, Call]], traffic: Traffic) -> dict[str, Any]:
    """A new `ClientSession` over the streamable HTTP client: `initialize`, then each call in
    order; returns every result's `model_dump()` by label (`initialize` included)."""

    async def main() -> dict[str, Any]:
        results: dict[str, Any] = {}
        http_client, connect = transport(url, {"X-Test-ID": test_id}, traffic)
        with anyio.fail_after(SESSION_TIMEOUT):
            if http_client is not None:
                await http_client.__aenter__()
            try:
                async with connect as streams:
                    read, write = streams[0], streams[1]
                    async with ClientSession(read, write) as session:
                        results["initialize"] = (await session.initialize()).model_dump()
                        for label, call in calls:
                            results[label] = (await call(session)).model_dump()
            finally:
                if http_client is not None:
                    await http_client.__aexit__(None, None, None)
        return results

    return anyio.run(main)


def list_tools(session: ClientSession):
    return session.list_tools()


def add(a: int, b: int) -> Call:
    return lambda session: session.call_tool("add", {"a": a, "b": b})


def weather(city: str) -> Call:
    return lambda session: session.call_tool("weather", {"city": city})


def mcp_proxy(tree: Path, mode: str, upstream: str) -> Proxy:
    return Proxy(tree, mode=mode, upstreams={"m": upstream}, recorded_bases={"m": RECORDED_BASE},
                 extra_args=["--adapter", "m=mcp"])


def leaf_errors(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups: anyio task groups wrap what the SDK raises."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaf_errors(inner)]
    return [error]


def closed_upstream() -> str:
    return f"http://127.0.0.1:{free_port()}"


def http_hash(test_id: str, url: str, method: str, payload: Any) -> str:
    """The plain-HTTP request hash, computed by scripts/hash_baseline.py."""
    return hashlib.sha256(canonical(http_identity(test_id, url, method, payload)).encode()).hexdigest()


# ---------------------------------------------------------------- tests


def test_tools_recorded_then_replayed(tree: Path, tmp_path: Path) -> None:
    test_id = f"{MODULE}::test_tools_recorded_then_replayed"
    calls = [("tools/list", list_tools), ("add", add(2, 3)), ("weather", weather("Paris"))]

    recording = Traffic()
    with MCPServerProcess(tmp_path) as server:
        with mcp_proxy(tree, "record", server.url) as proxy:
            recorded = run_session(f"{proxy.base_url('m')}/mcp", test_id, calls, recording)
            record_report = proxy.report()
        server.stop()

    # What the real server said, as the client parsed it.
    assert recorded["initialize"]["server_info"]["name"] == "api-recorder-test"
    assert sorted(tool["name"] for tool in recorded["tools/list"]["tools"]) == ["add", "weather"]
    assert recorded["add"]["content"][0]["text"] == "5" and not recorded["add"]["is_error"]
    assert recorded["weather"]["content"][0]["text"] == "The weather in Paris is sunny, 21 degrees."
    assert record_report["recorded"] == 4 and record_report["missed"] == 0, record_report
    record_session = recording.posts("initialize")[0].session_id
    assert record_session, "the upstream's initialize answer carried no Mcp-Session-Id through the proxy"
    assert [e.status for e in recording.posts("notifications/initialized")] == [202], recording.exchanges

    # The recordings: one plain-HTTP file per JSON-RPC request, named by its identity's hash.
    folder = recordings_dir(tree, test_id)
    files = recording_files(tree)
    assert len(files) == 4, files
    methods = []
    for name in files:
        path = tree / name
        assert path.parent == folder and path.suffix == ".json", name
        request = load(path)["request"]
        assert set(request) >= {"test_id", "url", "method", "payload"}, request
        assert (request["test_id"], request["url"], request["method"]) == (test_id, RECORDED_URL, "POST"), request
        payload = request["payload"]
        assert "id" not in payload, f"{name}: the JSON-RPC id is stored (and so hashed): {payload}"
        assert path.stem == http_hash(test_id, RECORDED_URL, "POST", payload), name
        methods.append((payload["method"], (payload.get("params") or {}).get("name")))
    assert sorted(methods, key=str) == sorted(
        [("initialize", None), ("tools/list", None), ("tools/call", "add"), ("tools/call", "weather")], key=str), methods
    assert not any(m.startswith("notifications/") for m, _ in methods), methods
    assert_verifies(tree)
    before = {name: (tree / name).read_bytes() for name in files}

    # Replay with a new session and no upstream. The tool calls go in the other order, so their
    # JSON-RPC ids differ from the recorded ones: the client only gets its answers if each
    # response carries the client's own id.
    replaying = Traffic()
    with mcp_proxy(tree, "replay", closed_upstream()) as proxy:
        replayed = run_session(
            f"{proxy.base_url('m')}/mcp", test_id,
            [("tools/list", list_tools), ("weather", weather("Paris")), ("add", add(2, 3))], replaying)
        report = proxy.report()

    assert replayed == recorded
    assert report["missed"] == 0, report
    assert (report["replayed"], report["recorded"]) == (4, 0), report
    replay_session = replaying.posts("initialize")[0].session_id
    assert replay_session and replay_session != record_session, (record_session, replay_session)
    assert [e.status for e in replaying.posts("notifications/initialized")] == [202], replaying.exchanges
    gets = [e.status for e in replaying.exchanges if e.method == "GET"]
    assert all(status == 405 for status in gets), replaying.exchanges
    assert recording_files(tree) == files
    assert {name: (tree / name).read_bytes() for name in files} == before


def test_unrecorded_arguments_raise_on_replay(tree: Path, tmp_path: Path) -> None:
    test_id = f"{MODULE}::test_unrecorded_arguments_raise_on_replay"
    with MCPServerProcess(tmp_path) as server:
        with mcp_proxy(tree, "record", server.url) as proxy:
            # (The SDK lists the tools before validating a tool's first result; listing them
            # first keeps the same requests on both sides.)
            recorded = run_session(
                f"{proxy.base_url('m')}/mcp", test_id, [("tools/list", list_tools), ("add", add(2, 3))], Traffic())
        server.stop()
    assert recorded["add"]["content"][0]["text"] == "5"
    files = recording_files(tree)
    assert len(files) == 3, files  # initialize, tools/list, tools/call add(2, 3)

    replaying = Traffic()
    with mcp_proxy(tree, "replay", closed_upstream()) as proxy:
        with pytest.raises(Exception) as raised:
            run_session(
                f"{proxy.base_url('m')}/mcp", test_id, [("tools/list", list_tools), ("add", add(40, 2))], replaying)
        report = proxy.report()

    # The proxy's answer on the wire: its 404 recording_not_found, naming the request's hash
    # (the plain-HTTP identity of the message without its JSON-RPC id).
    missed = replaying.posts("tools/call")
    assert len(missed) == 1, replaying.exchanges
    assert missed[0].status == 404, missed[0]
    assert b"recording_not_found" in missed[0].error_body, missed[0].error_body
    payload = {key: value for key, value in missed[0].message.items() if key != "id"}
    expected_hash = http_hash(test_id, RECORDED_URL, "POST", payload)
    assert expected_hash.encode() in missed[0].error_body, (expected_hash, missed[0].error_body)
    # What the SDK made of it: an error. When the body is a JSON-RPC error the SDK raises it as
    # such (an MCPError), so its message must carry the proxy's; otherwise raising is enough.
    message = " | ".join(f"{type(e).__name__}: {e}" for e in leaf_errors(raised.value))
    try:
        body = json.loads(missed[0].error_body)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("jsonrpc") == "2.0" and isinstance(body.get("error"), dict):
        assert "recording_not_found" in message and expected_hash in message, (message, body)
    else:
        print(f"the SDK raised {message!r}; the proxy's 404 body is not a JSON-RPC error: {missed[0].error_body!r}")
    assert report["missed"] == 1 and report["replayed"] == 2, report
    assert recording_files(tree) == files
