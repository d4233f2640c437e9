"""Plain-HTTP routes (docs/proxy.md, "Plain-HTTP routes"): the official `anthropic` SDK's Messages
API and the official `tavily-python` client through the proxy, recorded and then replayed with no
upstream.

- Anthropic Messages against the real model server (llama.cpp's llama-server serves
  `/v1/messages` too): a message, a streamed message and a streamed, forced tool use. The route
  has no `/v1` (`--upstream a=http://127.0.0.1:PORT`, the SDK calls `{base_url}/v1/messages`) and
  records `--recorded-base a=http://upstream.invalid`. What the SDK parsed, and the raw bytes it
  received, must be the same on replay; the files are plain-HTTP recordings (`request`:
  `test_id`, `url`, `method`, `payload`), streams stored as their raw SSE lines.
- Anthropic errors (400, 401, 429, 500) from a fake upstream: the same SDK error, status and
  message while recording and on replay.
- Tavily search (`--adapter tavily=http --upstream-key tavily=TAVILY_REAL`) against a fake
  upstream: the proxy swaps the client's key for the real one upstream, and no key reaches the
  recording or its identity. The client's base URL is its `api_base_url` constructor argument.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import anthropic
import httpx2
import pytest
import requests
import tavily

from conftest import (
    MODEL, FakeUpstream, Proxy, assert_verifies, free_port, json_reply, load, read_tree, recording_files,
    recordings_dir,
)
from hash_baseline import canonical, http_identity

MODULE = "tests/integration/messages/test_plain_http.py"
ANTHROPIC_BASE = "http://upstream.invalid"
MESSAGES_URL = f"{ANTHROPIC_BASE}/v1/messages"
TIMEOUT = 120.0
# (This SDK has no `temperature` argument any more; llama-server still reads it from the body.)
SHORT = {"max_tokens": 16, "extra_body": {"temperature": 0}}
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}


def closed_root() -> str:
    """A base URL (no /v1) whose port refuses connections."""
    return f"http://127.0.0.1:{free_port()}"


def root_of(upstream: FakeUpstream) -> str:
    return upstream.url.removesuffix("/v1")


def http_hash(test_id: str | None, url: str, method: str, payload: Any) -> str:
    """The plain-HTTP request hash, computed by scripts/hash_baseline.py."""
    return hashlib.sha256(canonical(http_identity(test_id, url, method, payload)).encode()).hexdigest()


def leaks(root: Path, *secrets: str) -> list[tuple[str, str]]:
    return [(name, s) for name, data in read_tree(root).items() for s in secrets if s.encode() in data]


# ---------------------------------------------------------------- the anthropic client, raw bytes included


@dataclass
class Exchange:
    method: str
    url: str
    body: bytes
    status: int
    received: bytearray = field(default_factory=bytearray)


class TeeTransport(httpx2.HTTPTransport):
    """An HTTP transport that keeps every request and the exact bytes of every response body (as
    they came off the socket, before any decoding) while the SDK reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[Exchange] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        response = super().handle_request(request)
        exchange = Exchange(request.method, str(request.url), bytes(request.content), response.status_code)
        self.exchanges.append(exchange)
        inner = response.stream

        class Tee(httpx2.SyncByteStream):
            def __iter__(self):
                for chunk in inner:
                    exchange.received.extend(chunk)
                    yield chunk

            def close(self) -> None:
                inner.close()

        response.stream = Tee()
        return response


def anthropic_client(proxy: Proxy, test_id: str, api_key: str, transport: TeeTransport) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=proxy.base_url("a"),
        api_key=api_key,
        default_headers={"X-Test-ID": test_id},
        max_retries=0,
        timeout=TIMEOUT,
        http_client=anthropic.DefaultHttpxClient(transport=transport, timeout=TIMEOUT),
    )


@dataclass
class Round:
    recorded: Any
    replayed: Any
    exchange: Exchange       # the record-phase request and the bytes the client received
    replayed_bytes: bytes
    hash: str
    path: Path
    recording: dict


def messages_round(tree: Path, upstream: str, test_id: str, call: Callable[[anthropic.Anthropic], Any]) -> Round:
    """`call(client)` through a record proxy (route `a` -> `upstream`), then through a replay proxy
    whose upstream is a closed port; checks the files, the bytes and the secret on the way."""
    api_key = f"dummy-{uuid.uuid4().hex}"
    recording_tee = TeeTransport()
    with Proxy(tree, mode="record", upstreams={"a": upstream}, recorded_bases={"a": ANTHROPIC_BASE}) as proxy:
        with anthropic_client(proxy, test_id, api_key, recording_tee) as client:
            recorded = call(client)
        report = proxy.report()
        record_log = proxy.log()
    assert (report["recorded"], report["replayed"], report["missed"]) == (1, 0, 0), report
    assert len(recording_tee.exchanges) == 1
    exchange = recording_tee.exchanges[0]
    assert exchange.method == "POST" and exchange.url == f"{proxy.base_url('a')}/v1/messages"
    payload = json.loads(exchange.body)
    request_hash = http_hash(test_id, MESSAGES_URL, "POST", payload)
    path = recordings_dir(tree, test_id) / f"{request_hash}.json"
    files = recording_files(tree)
    assert files == [str(path.relative_to(tree))]

    replay_tee = TeeTransport()
    with Proxy(tree, mode="replay", upstreams={"a": closed_root()}, recorded_bases={"a": ANTHROPIC_BASE}) as proxy:
        with anthropic_client(proxy, test_id, api_key, replay_tee) as client:
            replayed = call(client)
        report = proxy.report()
        replay_log = proxy.log()
    assert (report["replayed"], report["missed"], report["recorded"], report["passed_through"]) == (1, 0, 0, 0), report
    assert recording_files(tree) == files, "replay must not write"
    assert len(replay_tee.exchanges) == 1
    assert replay_tee.exchanges[0].body == exchange.body
    assert replay_tee.exchanges[0].status == exchange.status

    # The SDK parsed the same objects, from the same bytes.
    assert replayed == recorded
    assert exchange.received, "the client received a body"
    assert bytes(replay_tee.exchanges[0].received) == bytes(exchange.received)

    recording = load(path)
    assert recording["test_id"] == test_id
    assert list(recording["request"]) == ["test_id", "url", "method", "payload"], "a plain-HTTP recording"
    assert recording["request"] == {"test_id": test_id, "url": MESSAGES_URL, "method": "POST", "payload": payload}
    assert_verifies(tree)
    # The key went out as x-api-key; it is in no file, nor in the logs.
    assert leaks(tree, api_key) == []
    assert api_key not in record_log and api_key not in replay_log
    return Round(recorded, replayed, exchange, bytes(replay_tee.exchanges[0].received), request_hash, path, recording)


def sse_lines(data: bytes) -> list[str]:
    """The lines of an SSE body, split as the proxy stores them (a final unterminated line kept)."""
    lines = data.decode().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def assert_stored_stream(r: Round) -> list[dict]:
    """The stream is stored as the raw SSE lines, blank separators included; returns its events."""
    response = r.recording["response"]
    assert response["is_streaming"] is True
    lines = response["body"]
    assert all(isinstance(line, str) for line in lines)
    assert lines == sse_lines(r.exchange.received)
    assert "" in lines and lines[-1] == "", "events are separated (and ended) by blank lines"
    events = []
    for line in lines:
        assert line == "" or line.startswith(("event: ", "data: ")), line
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: "):]))
    # Every event has its `event:` line, naming its type.
    assert [line[len("event: "):] for line in lines if line.startswith("event: ")] == [e["type"] for e in events]
    return events


# ---------------------------------------------------------------- Anthropic Messages, real model server


def test_messages(tree, model_server):
    test_id = f"{MODULE}::test_messages"

    def call(client):
        return client.messages.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hello."}], **SHORT).model_dump()

    r = messages_round(tree, model_server, test_id, call)
    assert r.recorded["type"] == "message" and r.recorded["role"] == "assistant"
    assert r.recorded["model"] == MODEL
    assert r.recorded["content"] and r.recorded["content"][0]["type"] == "text"
    assert r.recorded["stop_reason"] in ("end_turn", "max_tokens", "stop_sequence")
    assert 1 <= r.recorded["usage"]["output_tokens"] <= 16
    response = r.recording["response"]
    assert response["is_streaming"] is False
    assert response["status"] == 200
    # The stored body is what the client received, as JSON.
    assert response["body"] == json.loads(r.exchange.received)
    assert anthropic.types.Message.model_validate(response["body"]).model_dump() == r.recorded


def test_messages_streamed(tree, model_server):
    test_id = f"{MODULE}::test_messages_streamed"

    def call(client):
        with client.messages.stream(
                model=MODEL, messages=[{"role": "user", "content": "Count to three."}], **SHORT) as stream:
            events = [event.model_dump() for event in stream]
            final = stream.get_final_message().model_dump()
        return events, final

    r = messages_round(tree, model_server, test_id, call)
    events, final = r.recorded
    assert r.replayed == r.recorded
    types = [e["type"] for e in events]
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert "content_block_delta" in types
    assert final["role"] == "assistant" and final["content"][0]["type"] == "text"
    stored = assert_stored_stream(r)
    assert stored[0]["type"] == "message_start" and stored[-1]["type"] == "message_stop"
    text = "".join(e["delta"].get("text", "") for e in stored if e["type"] == "content_block_delta")
    assert text == final["content"][0]["text"]
    assert r.recording["request"]["payload"]["stream"] is True


def test_tool_use_streamed(tree, model_server):
    test_id = f"{MODULE}::test_tool_use_streamed"

    def call(client):
        stream = client.messages.create(
            model=MODEL, messages=[{"role": "user", "content": "What is the weather in Paris?"}],
            tools=[WEATHER_TOOL], tool_choice={"type": "any"}, stream=True, **SHORT)
        with stream:
            return [event.model_dump() for event in stream]

    r = messages_round(tree, model_server, test_id, call)
    assert r.replayed == r.recorded
    events = r.recorded
    # llama-server constrains the answer to a tool call: one tool_use block for get_weather (the
    # 16 tokens usually end it before the arguments are complete).
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert len(starts) >= 1, events
    block = starts[0]["content_block"]
    assert block["type"] == "tool_use" and block["name"] == "get_weather", starts
    assert block["id"]
    assert any(e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta" for e in events)
    stored = assert_stored_stream(r)
    # The tool_use id is stored as the client saw it: made deterministic (so a tool loop re-records
    # to the same files), in the recording and in what the client received.
    assert [e for e in stored if e["type"] == "content_block_start"][0]["content_block"]["id"] == block["id"]
    assert r.recording["request"]["payload"]["tools"] == [WEATHER_TOOL]
    assert r.recording["request"]["payload"]["tool_choice"] == {"type": "any"}


# ---------------------------------------------------------------- Anthropic errors, fake upstream

ANTHROPIC_ERRORS = [
    (400, anthropic.BadRequestError, "invalid_request_error"),
    (401, anthropic.AuthenticationError, "authentication_error"),
    (429, anthropic.RateLimitError, "rate_limit_error"),
    (500, anthropic.InternalServerError, "api_error"),
]


@pytest.mark.parametrize("status,error_class,error_type", ANTHROPIC_ERRORS, ids=[str(e[0]) for e in ANTHROPIC_ERRORS])
def test_messages_error_is_recorded_and_replayed_as_the_same_sdk_error(tree, status, error_class, error_type):
    test_id = f"{MODULE}::test_messages_error[{status}]"
    api_key = f"dummy-{uuid.uuid4().hex}"
    body = {"type": "error", "error": {"type": error_type, "message": f"upstream says {status}"}}
    request = dict(model="claude-test", max_tokens=16, messages=[{"role": "user", "content": "hello"}])
    caught = []
    received = []

    def attempt(proxy: Proxy) -> None:
        tee = TeeTransport()
        with anthropic_client(proxy, test_id, api_key, tee) as client:
            with pytest.raises(error_class) as error:
                client.messages.create(**request)
        caught.append(error.value)
        received.append(bytes(tee.exchanges[0].received))

    with FakeUpstream(lambda *_: json_reply(body, status)) as upstream:
        with Proxy(tree, mode="record", upstreams={"a": root_of(upstream)}, recorded_bases={"a": ANTHROPIC_BASE}) as proxy:
            attempt(proxy)
        assert upstream.calls == 1
        assert upstream.requests[0][:2] == ("POST", "/v1/messages")

    files = recording_files(tree)
    assert len(files) == 1, files
    path = tree / files[0]
    assert path == recordings_dir(tree, test_id) / f"{http_hash(test_id, MESSAGES_URL, 'POST', request)}.json"
    recording = load(path)
    assert list(recording["request"]) == ["test_id", "url", "method", "payload"]
    assert recording["request"]["payload"] == request
    assert_verifies(tree)

    with Proxy(tree, mode="replay", upstreams={"a": closed_root()}, recorded_bases={"a": ANTHROPIC_BASE}) as proxy:
        attempt(proxy)
        report = proxy.report()
    assert (report["replayed"], report["missed"]) == (1, 0), report
    assert recording_files(tree) == files

    recorded, replayed = caught
    for error in (recorded, replayed):
        assert type(error) is error_class
        assert error.status_code == status
        assert error.body == body
    assert replayed.message == recorded.message
    assert f"upstream says {status}" in replayed.message
    assert json.loads(received[1]) == json.loads(received[0]) == body
    assert leaks(tree, api_key) == []


# ---------------------------------------------------------------- Tavily, fake upstream

TAVILY_BASE = "https://api.tavily.com"
TAVILY_RESULT = {
    "query": "Paris weather",
    "follow_up_questions": None,
    "answer": None,
    "images": [],
    "results": [
        {"url": "https://weather.example/paris", "title": "Météo à Paris", "content": "Sunny, 21 °C.",
         "score": 0.8123456789012345, "raw_content": None},
        {"url": "https://news.example/paris", "title": "Paris forecast", "content": "Rain later.",
         "score": 0.51, "raw_content": None},
    ],
    "response_time": 1.07,
    "request_id": "123e4567-e89b-12d3-a456-426614174000",
}


def tavily_upstream() -> FakeUpstream:
    def handler(method, path, headers, body):
        if (method, path) != ("POST", "/search"):
            return json_reply({"detail": {"error": f"unexpected {method} {path}"}}, 404)
        return json_reply(TAVILY_RESULT)
    return FakeUpstream(handler)


def tavily_proxy(tree: Path, mode: str, upstream: str) -> Proxy:
    return Proxy(
        tree, mode=mode, upstreams={"tavily": upstream}, recorded_bases={"tavily": TAVILY_BASE},
        extra_args=["--adapter", "tavily=http", "--upstream-key", "tavily=TAVILY_REAL"],
        env={"TAVILY_REAL": "real-key"})


def tavily_search(proxy: Proxy, test_id: str, api_key: str, *, key_in_body: bool) -> dict:
    session = requests.Session()
    session.headers["X-Test-ID"] = test_id
    # `api_base_url` is the client's base URL: it posts to f"{api_base_url}/search".
    client = tavily.TavilyClient(api_key=api_key, api_base_url=proxy.base_url("tavily"), session=session)
    try:
        # Older clients sent the key in the body as well; extra keyword arguments go into the body.
        extra = {"api_key": api_key} if key_in_body else {}
        return client.search("Paris weather", **extra)
    finally:
        session.close()


def received_key(request: tuple[str, str, dict[str, str], bytes]) -> tuple[str | None, str | None]:
    _, _, headers, body = request
    return headers.get("authorization"), json.loads(body).get("api_key", "<absent>")


@pytest.mark.parametrize("key_in_body", [False, True], ids=["bearer", "bearer-and-body"])
def test_tavily_search_is_recorded_with_no_key_and_replayed(tree, key_in_body):
    test_id = f"{MODULE}::test_tavily_search"
    secret = f"tvly-secret-{uuid.uuid4().hex}"

    with tavily_upstream() as upstream:
        with tavily_proxy(tree, "record", root_of(upstream)) as proxy:
            recorded = tavily_search(proxy, test_id, secret, key_in_body=key_in_body)
            record_log = proxy.log()
        assert upstream.calls == 1
        # The upstream got the real key, never the client's.
        authorization, body_key = received_key(upstream.requests[0])
        assert authorization == "Bearer real-key"
        assert body_key == ("real-key" if key_in_body else "<absent>")
        assert secret.encode() not in repr(upstream.requests[0]).encode()
    assert recorded == TAVILY_RESULT

    files = recording_files(tree)
    payload = {"query": "Paris weather"}
    path = recordings_dir(tree, test_id) / f"{http_hash(test_id, f'{TAVILY_BASE}/search', 'POST', payload)}.json"
    assert files == [str(path.relative_to(tree))]
    recording = load(path)
    assert recording["request"] == {
        "test_id": test_id, "url": f"{TAVILY_BASE}/search", "method": "POST", "payload": payload}
    assert "api_key" not in recording["request"]["payload"]
    assert recording["response"]["status"] == 200 and recording["response"]["is_streaming"] is False
    assert recording["response"]["body"] == TAVILY_RESULT
    assert_verifies(tree)

    # Replay with the upstream gone: the same result.
    with tavily_proxy(tree, "replay", root_of(upstream)) as proxy:
        replayed = tavily_search(proxy, test_id, secret, key_in_body=key_in_body)
        report = proxy.report()
        replay_log = proxy.log()
    assert (report["replayed"], report["missed"], report["recorded"]) == (1, 0, 0), report
    assert replayed == recorded
    assert recording_files(tree) == files

    # Recording again with another client key: the same identity, so the same file, unchanged.
    before = read_tree(tree)
    other_secret = f"tvly-other-{uuid.uuid4().hex}"
    with tavily_upstream() as upstream:
        with tavily_proxy(tree, "record", root_of(upstream)) as proxy:
            again = tavily_search(proxy, test_id, other_secret, key_in_body=key_in_body)
            second_log = proxy.log()
        assert upstream.calls == 1
        assert received_key(upstream.requests[0])[0] == "Bearer real-key"
    assert again == recorded
    assert recording_files(tree) == files, "a different client key must not make a new recording"
    assert read_tree(tree) == before

    assert leaks(tree, secret, other_secret, "real-key") == []
    for log in (record_log, replay_log, second_log):
        assert secret not in log and other_secret not in log and "real-key" not in log
    assert_verifies(tree)
