"""What a real server cannot do on demand, with a fake upstream in this process: error statuses,
replay misses, a burst of identical requests, byte-stable agent loops, and secrets."""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from conftest import (
    FakeUpstream, Proxy, closed_url, json_reply, load, normalized, read_tree, recording_files, recordings_dir,
    assert_verifies, sent_hash, tool_call_id, wire,
)
from conftest import request_hash as request_hash_of

BASE = "http://fake.invalid/v1"
MESSAGES = [{"role": "user", "content": "hello"}]


def chat_completion(content: str | None = None, tool_calls: list | None = None, model: str = "fake-model") -> dict:
    """An upstream chat completion with fresh, random volatile fields (as a real server sends)."""
    message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()) + secrets.randbelow(1000),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


# ---------------------------------------------------------------- errors

ERRORS = [
    (400, openai.BadRequestError, "invalid_request_error"),
    (401, openai.AuthenticationError, "invalid_api_key"),
    (404, openai.NotFoundError, "model_not_found"),
    (429, openai.RateLimitError, "rate_limit_exceeded"),
    (500, openai.InternalServerError, "server_error"),
]


@pytest.mark.parametrize("status,error_class,code", ERRORS, ids=[str(e[0]) for e in ERRORS])
def test_upstream_error_is_recorded_and_replayed_as_the_same_sdk_error(tree, status, error_class, code):
    test_id = f"tests/errors/test_status.py::test_{status}"
    body = {"error": {"message": f"upstream says {status}", "type": code, "param": None, "code": code}}
    caught = {}
    with FakeUpstream(lambda *_: json_reply(body, status)) as upstream:
        with Proxy(tree, mode="record", upstreams={"up": upstream.url}, recorded_bases={"up": BASE}) as proxy:
            with pytest.raises(error_class) as recorded:
                proxy.client("up", test_id).chat.completions.create(model="fake-model", messages=MESSAGES)
            caught["record"] = recorded.value
            request_hash = sent_hash(proxy.sent[0], proxy.base_url("up"), BASE, test_id)
        assert upstream.calls == 1

    path = recordings_dir(tree, test_id) / f"{request_hash}.json"
    assert recording_files(tree) == [str(path.relative_to(tree))]
    response = load(path)["response"]
    assert response["is_exception"] is True and response["body"] is None
    assert response["exception_data"]["type"] == error_class.__name__
    assert response["exception_data"]["status_code"] == status
    assert response["exception_data"]["body"] == body["error"]
    assert_verifies(tree)

    with Proxy(tree, mode="replay", upstreams={"up": closed_url()}, recorded_bases={"up": BASE}) as proxy:
        with pytest.raises(error_class) as replayed:
            proxy.client("up", test_id).chat.completions.create(model="fake-model", messages=MESSAGES)
        assert proxy.report()["replayed"] == 1
    for error in (caught["record"], replayed.value):
        assert type(error) is error_class
        assert error.status_code == status
        assert error.body == body["error"]
        assert f"upstream says {status}" in error.message


def test_replay_miss_is_a_not_found_error_naming_the_hash(tree):
    test_id = "tests/misses/test_miss.py::test_nothing_recorded"
    with Proxy(tree, mode="replay", upstreams={"up": closed_url()}, recorded_bases={"up": BASE}) as proxy:
        with pytest.raises(openai.NotFoundError) as missed:
            proxy.client("up", test_id).chat.completions.create(model="fake-model", messages=MESSAGES)
        request_hash = sent_hash(proxy.sent[0], proxy.base_url("up"), BASE, test_id)
        report = proxy.report()
    error = missed.value
    assert error.status_code == 404
    assert error.body["type"] == "recording_not_found"
    assert request_hash in error.message
    assert "record" in error.message.lower()
    assert report["missed"] == 1 and report["replayed"] == 0
    assert recording_files(tree) == []


# ---------------------------------------------------------------- single flight


def test_concurrent_identical_requests_share_one_upstream_call(tree):
    test_id = "tests/burst/test_burst.py::test_64"
    gate = threading.Event()

    def slow(*_):
        gate.wait(10)  # hold the first request until every client has sent its own
        return json_reply(chat_completion("together"))

    with FakeUpstream(slow) as upstream:
        with Proxy(tree, mode="record-if-missing", upstreams={"up": upstream.url}, recorded_bases={"up": BASE}) as proxy:
            client = proxy.client("up", test_id)
            barrier = threading.Barrier(64)

            def call(_):
                barrier.wait(30)
                return client.chat.completions.create(model="fake-model", messages=MESSAGES).model_dump()

            with ThreadPoolExecutor(64) as pool:
                futures = [pool.submit(call, i) for i in range(64)]
                time.sleep(1.0)
                gate.set()
                answers = [f.result(timeout=120) for f in futures]
            request_hash = sent_hash(proxy.sent[0], proxy.base_url("up"), BASE, test_id)
            later = client.chat.completions.create(model="fake-model", messages=MESSAGES).model_dump()
        assert upstream.calls == 1

    assert recording_files(tree) == [str((recordings_dir(tree, test_id) / f"{request_hash}.json").relative_to(tree))]
    assert_verifies(tree)
    assert len(answers) == 64
    # The leader's client got what the 63 others got from its recording: the stored, normalised
    # object. All 64 answers, and a later replay, are identical.
    assert all(a == later for a in answers), [a for a in answers if a != later][:1]
    assert later["id"] == f"rec-{request_hash[:12]}" and later["created"] == 0
    assert later["choices"][0]["message"]["content"] == "together"
    stored = load(recordings_dir(tree, test_id) / f"{request_hash}.json")["response"]["body"]["__data__"]
    assert normalized(stored, request_hash) == stored and stored["id"] == later["id"]


# ---------------------------------------------------------------- model lists


def test_models_list_is_recorded_as_post_and_replays_to_the_sdk(tree):
    """`client.models.list()` sends GET /models; the proxy forwards the GET, but hashes and records
    it as the reference does (POST, body `{}`), and replays it to the same SDK call unchanged."""
    test_id = "tests/models/test_list.py::test_list"
    models = [{"id": name, "object": "model", "created": 1700000000 + i, "owned_by": "fake"}
              for i, name in enumerate(["b-model", "a-model"])]
    with FakeUpstream(lambda *_: json_reply({"object": "list", "data": models})) as upstream:
        with Proxy(tree, mode="record", upstreams={"up": upstream.url}, recorded_bases={"up": BASE}) as proxy:
            recorded = [wire(m) for m in proxy.client("up", test_id).models.list().data]
            [sent] = proxy.sent
            request_hash = sent_hash(sent, proxy.base_url("up"), BASE, test_id)
        assert [(r[0], r[1]) for r in upstream.requests] == [("GET", "/v1/models")]
    assert sent[0] == "GET" and sent[2] == b""
    assert request_hash == request_hash_of("POST", f"{BASE}/models", {}, test_id)
    by_id = sorted(models, key=lambda m: m["id"])
    assert recorded == by_id, "model entries keep their ids and created, sorted by id as a replayed union is"
    digest = hashlib.sha256("|".join(sorted(m["id"] for m in models)).encode()).hexdigest()[:8]
    path = recordings_dir(tree, test_id) / f"models-{request_hash}-{digest}.json"
    assert recording_files(tree) == [str(path.relative_to(tree))]
    recording = load(path)
    assert (recording["request"]["method"], recording["request"]["url"], recording["request"]["body"]) == (
        "POST", f"{BASE}/models", {})
    assert [m["__data__"] for m in recording["response"]["body"]] == models
    assert_verifies(tree)

    with Proxy(tree, mode="replay", upstreams={"up": closed_url()}, recorded_bases={"up": BASE}) as proxy:
        replayed = [wire(m) for m in proxy.client("up", test_id).models.list().data]
        report = proxy.report()
    assert (report["replayed"], report["missed"]) == (1, 0), report
    # The same entries (the order: test_models_list_replays_in_the_order_the_client_got_while_recording).
    assert {m["id"]: m for m in replayed} == {m["id"]: m for m in recorded} and len(replayed) == len(recorded)


def test_models_list_replays_in_the_order_the_client_got_while_recording(tree):
    """Record and replay send the same objects, model lists included: an upstream that lists its
    models out of id order (OpenAI's does) must not give the SDK a differently ordered page on replay."""
    test_id = "tests/models/test_list.py::test_order"
    models = [{"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in ["b-model", "a-model"]]
    with FakeUpstream(lambda *_: json_reply({"object": "list", "data": models})) as upstream:
        with Proxy(tree, mode="record", upstreams={"up": upstream.url}, recorded_bases={"up": BASE}) as proxy:
            recorded = [m.id for m in proxy.client("up", test_id).models.list().data]
    with Proxy(tree, mode="replay", upstreams={"up": closed_url()}, recorded_bases={"up": BASE}) as proxy:
        replayed = [m.id for m in proxy.client("up", test_id).models.list().data]
    assert recorded == replayed, f"record phase sent {recorded}, replay sends {replayed}"


# ---------------------------------------------------------------- agent loops

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


ISSUED_CALL_IDS: list[str] = []


def weather_upstream(method, path, headers, body):
    """Turn 1: a tool call with a random id. Turn 2 (a tool result present): an answer."""
    request = json.loads(body)
    results = [m for m in request["messages"] if m["role"] == "tool"]
    if results:
        return json_reply(chat_completion(f"It is {results[0]['content']}."))
    call = {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"location": "Paris"})}}
    ISSUED_CALL_IDS.append(call["id"])
    return json_reply(chat_completion(None, [call]))


def run_weather_loop(root, upstream_url, test_id):
    """A two-turn tool loop through a record proxy; returns (turn-1 message, final answer, hashes)."""
    with Proxy(root, mode="record", upstreams={"up": upstream_url}, recorded_bases={"up": BASE}) as proxy:
        client = proxy.client("up", test_id)
        messages = [{"role": "user", "content": "Weather in Paris?"}]
        first = client.chat.completions.create(
            model="fake-model", messages=messages, tools=[WEATHER_TOOL], tool_choice="required",
            parallel_tool_calls=False)
        message = first.choices[0].message
        call = message.tool_calls[0]
        messages.append(message.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
        second = client.chat.completions.create(model="fake-model", messages=messages, tools=[WEATHER_TOOL])
        hashes = [sent_hash(s, proxy.base_url("up"), BASE, test_id) for s in proxy.sent]
    return message, second, hashes


def test_two_turn_tool_loop_records_byte_identical_files(tmp_path):
    test_id = "tests/agents/test_loop.py::test_weather"
    roots = [tmp_path / "first", tmp_path / "second"]
    runs = []
    ISSUED_CALL_IDS.clear()
    with FakeUpstream(weather_upstream) as upstream:
        for root in roots:
            runs.append(run_weather_loop(root, upstream.url, test_id))
        assert upstream.calls == 4
        sent_ids = [json.loads(r[3])["messages"][1]["tool_calls"][0]["id"] for r in upstream.requests[1::2]]

    (message_a, answer_a, hashes_a), (message_b, answer_b, hashes_b) = runs
    # The upstream gave random tool-call ids; the client saw the deterministic one both times,
    # so turn 2 (which carries it) hashes the same; the upstream got back the ids it issued.
    assert message_a.tool_calls[0].id == message_b.tool_calls[0].id == tool_call_id(hashes_a[0])
    assert sent_ids == ISSUED_CALL_IDS and len(set(sent_ids)) == 2
    assert hashes_a == hashes_b and len(set(hashes_a)) == 2
    assert answer_a.choices[0].message.content == answer_b.choices[0].message.content == "It is sunny."
    files_a, files_b = read_tree(roots[0]), read_tree(roots[1])
    folder = str(recordings_dir(roots[0], test_id).relative_to(roots[0]))
    assert sorted(files_a) == sorted(f"{folder}/{h}.json" for h in hashes_a)
    assert files_a == files_b
    turn1 = json.loads(files_a[f"{folder}/{hashes_a[0]}.json"])
    assert turn1["response"]["body"]["__data__"]["choices"][0]["message"]["tool_calls"][0]["id"] == tool_call_id(hashes_a[0])
    for root in roots:
        assert_verifies(root)


# ---------------------------------------------------------------- secrets


def test_secrets_never_reach_the_recordings(tree):
    secret = f"sk-secret-{uuid.uuid4().hex}"
    test_id = "tests/secrets/test_keys.py::test_no_leak"

    def upstream_handler(method, path, headers, body):
        if json.loads(body).get("stream"):
            chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "fake-model",
                     "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}
            return 200, "text/event-stream", [f"data: {json.dumps(chunk)}\n\n".encode(), b"data: [DONE]\n\n"]
        return json_reply(chat_completion("ok"))

    with FakeUpstream(upstream_handler) as upstream:
        with Proxy(tree, mode="record", upstreams={"up": upstream.url}, recorded_bases={"up": BASE}) as proxy:
            client = proxy.client(
                "up", test_id, api_key=secret,
                headers={"x-api-key": secret, "api-key": secret, "Cookie": f"session={secret}"})
            answer = client.chat.completions.create(model="fake-model", messages=MESSAGES)
            chunks = list(client.chat.completions.create(model="fake-model", messages=MESSAGES, stream=True))
            hashes = [sent_hash(s, proxy.base_url("up"), BASE, test_id) for s in proxy.sent]
            log = proxy.log()
        # The secret did go upstream (the proxy forwards the client's credentials)...
        assert upstream.requests[0][2]["authorization"] == f"Bearer {secret}"
        assert upstream.requests[0][2]["x-api-key"] == secret

    assert answer.choices[0].message.content == "ok" and chunks[0].choices[0].delta.content == "ok"
    # While recording, the client already gets the stored ids and created (whole and each chunk).
    assert (answer.id, answer.created) == (f"rec-{hashes[0][:12]}", 0)
    assert [(c.id, c.created) for c in chunks] == [(f"rec-{hashes[1][:12]}", 0)]
    files = recording_files(tree)
    assert len(files) == 2
    # ...but is in no file under the root, nor in the proxy's log.
    leaks = [name for name, data in read_tree(tree).items() if secret.encode() in data]
    assert leaks == []
    assert secret not in log
    assert_verifies(tree)


# ---------------------------------------------------------------- durability


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_recording_exists_when_the_response_is_complete(tree, stream):
    """Once a client has read a recorded response to its end, its file is on disk and counted: a
    test (or a script) may look at it, copy it or stop the proxy right away."""
    test_id = "tests/durable/test_durable.py::test_file_before_answer"

    def handler(method, path, headers, body):
        if json.loads(body).get("stream"):
            chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "fake-model",
                     "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}
            return 200, "text/event-stream", [f"data: {json.dumps(chunk)}\n\n".encode(), b"data: [DONE]\n\n"]
        return json_reply(chat_completion("ok"))

    late = []
    with FakeUpstream(handler) as upstream:
        with Proxy(tree, mode="record", upstreams={"up": upstream.url}, recorded_bases={"up": BASE}) as proxy:
            client = proxy.client("up", test_id)
            for i in range(40):
                messages = [{"role": "user", "content": f"request {i}"}]
                if stream:
                    assert [c.choices[0].delta.content for c in client.chat.completions.create(
                        model="fake-model", messages=messages, stream=True)] == ["ok"]
                else:
                    assert client.chat.completions.create(model="fake-model", messages=messages).choices[0].message.content == "ok"
                request_hash = sent_hash(proxy.sent[-1], proxy.base_url("up"), BASE, test_id)
                exists = (recordings_dir(tree, test_id) / f"{request_hash}.json").exists()
                counted = proxy.report()["recorded"]
                if not exists or counted != i + 1:
                    late.append((i, exists, counted))
    assert len(recording_files(tree)) == 40
    assert late == [], f"{len(late)} of 40 responses were complete before their recording: (i, file exists, recorded count) {late[:5]}"
