"""Record against the real model server (llama.cpp + Gemma 3 270M, scripts/model-server.sh) with
the official `openai` SDK, then replay with no upstream and compare what the SDK parsed.

Each test records one call into a fresh root (`--recorded-base m=http://upstream.invalid/v1`, so
hashes do not depend on the server's port), stops the record proxy, starts a replay proxy whose
upstream is a closed port, repeats the call and checks:

- the replayed SDK objects are identical (`model_dump()` equality, streams chunk by chunk) to the
  ones the client got while recording: the record proxy already sends the stored, normalised
  objects (top-level `id` -> `rec-<hash[:12]>`, `created` -> 0, tool-call ids `call_<24 hex>`; the
  Responses API and model entries keep their ids), so stopping the model server changes nothing;
- the recording is named by the hash of what the SDK sent (computed by scripts/hash_baseline.py;
  `GET .../models` is recorded and hashed as POST, as the reference does), stores exactly what the
  client received, and passes `api-recorder verify`;
- the replay proxy answered from the recording alone (its report: 1 replayed, nothing else).
"""
from __future__ import annotations

import array
import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import (
    MODEL, RECORDED_BASE, Proxy, assert_verifies, closed_url, load, normalized, recording_files, recordings_dir,
    request_hash, sent_hash, tool_call_id, wire,
)

MODULE = "tests/integration/sdk/test_real_upstream.py"
SHORT = {"max_tokens": 16, "stop": ["\n"], "temperature": 0}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


@dataclass
class Round:
    recorded: Any          # what the client got from the record proxy (model_dump()s)
    replayed: Any          # what the client got from the replay proxy
    wire: Any              # the recorded objects as they came over the wire (exclude_unset, JSON)
    hash: str
    path: Path             # the recording file
    raw: Any = None        # what `raw` returned in the replay phase


def record_then_replay(
    tree: Path, model_server: str, test_id: str | None, call: Callable[[Any], tuple[Any, Any]],
    *, raw: Callable[[Any], Any] | None = None,
) -> Round:
    """Runs `call(client) -> (model_dumps, wire_form)` through a record proxy, then a replay proxy
    (upstream: a closed port); `raw(client)` runs once more in the replay phase."""
    with Proxy(tree, mode="record", upstreams={"m": f"{model_server}/v1"}, recorded_bases={"m": RECORDED_BASE}) as proxy:
        recorded, recorded_wire = call(proxy.client("m", test_id))
        assert len(proxy.sent) == 1
        request_hash = sent_hash(proxy.sent[0], proxy.base_url("m"), RECORDED_BASE, test_id)
    # (Counted after the record proxy stopped; whether the file exists as soon as the call returns
    # is test_fake_upstream.py::test_recording_exists_when_the_response_is_complete.)
    files = recording_files(tree)
    assert len(files) == 1, files

    with Proxy(tree, mode="replay", upstreams={"m": closed_url()}, recorded_bases={"m": RECORDED_BASE}) as proxy:
        replayed, _ = call(proxy.client("m", test_id))
        raw_result = raw(proxy.client("m", test_id)) if raw else None
        assert {sent_hash(s, proxy.base_url("m"), RECORDED_BASE, test_id) for s in proxy.sent} == {request_hash}
        report = proxy.report()
    expected_hits = 2 if raw else 1
    assert (report["replayed"], report["missed"], report["recorded"], report["passed_through"]) == (expected_hits, 0, 0, 0), report
    assert recording_files(tree) == files, "replay must not write"
    assert_verifies(tree)
    # What the SDK got while recording is what it gets on replay, object for object.
    assert replayed == recorded
    return Round(recorded, replayed, recorded_wire, request_hash, tree / files[0], raw_result)


def expected_path(tree: Path, test_id: str, request_hash: str) -> Path:
    return recordings_dir(tree, test_id) / f"{request_hash}.json"


def stored_chunks(recording: dict) -> list:
    response = recording["response"]
    assert response["is_streaming"] is True
    return [c["__data__"] if isinstance(c, dict) and "__type__" in c else c for c in response["body"]]


def stream_of(stream) -> tuple[list, list]:
    chunks = list(stream)
    return [c.model_dump() for c in chunks], [wire(c) for c in chunks]


# ---------------------------------------------------------------- chat


def test_chat(tree, model_server):
    test_id = f"{MODULE}::test_chat"

    def call(client):
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hello."}], **SHORT)
        return answer.model_dump(), wire(answer)

    r = record_then_replay(tree, model_server, test_id, call)
    assert r.path == expected_path(tree, test_id, r.hash)
    assert r.recorded == r.replayed
    # The live answer already carries the stored id and created, not the upstream's own.
    assert r.recorded["id"] == f"rec-{r.hash[:12]}" and r.recorded["created"] == 0
    assert normalized(r.wire, r.hash) == r.wire
    choice = r.replayed["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    assert r.replayed["model"] == MODEL and r.replayed["usage"]["completion_tokens"] >= 1
    recording = load(r.path)
    assert recording["test_id"] == test_id
    assert recording["request"]["url"] == f"{RECORDED_BASE}/chat/completions"
    assert recording["response"]["body"]["__type__"] == "openai.types.chat.chat_completion.ChatCompletion"
    assert recording["response"]["body"]["__data__"] == r.wire


def test_chat_streamed(tree, model_server):
    test_id = f"{MODULE}::test_chat_streamed"
    request = dict(model=MODEL, messages=[{"role": "user", "content": "Count to three."}], stream=True,
                   stream_options={"include_usage": True}, **SHORT)

    def raw(client):
        with client.chat.completions.with_streaming_response.create(**request) as response:
            return [line for line in response.iter_lines() if line]

    r = record_then_replay(tree, model_server, test_id, lambda c: stream_of(c.chat.completions.create(**request)), raw=raw)
    assert len(r.recorded) >= 3
    assert r.recorded == r.replayed
    # Every chunk the live client got was already normalised.
    assert all(c["id"] == f"rec-{r.hash[:12]}" and c["created"] == 0 for c in r.recorded)
    assert r.recorded[-1]["usage"]["completion_tokens"] >= 1, "include_usage: the last chunk has the usage"
    assert any(c["choices"] and c["choices"][0]["finish_reason"] for c in r.replayed)
    # The recording holds the chunks the client received, in order.
    recording = load(r.path)
    assert stored_chunks(recording) == r.wire
    assert len(recording["response"]["chunk_offsets_ms"]) == len(r.recorded)
    text = "".join(c["choices"][0]["delta"]["content"] or "" for c in r.replayed if c["choices"])
    assert text == "".join(c["choices"][0]["delta"].get("content") or "" for c in stored_chunks(recording) if c["choices"])
    # On the wire: one data line per chunk, then data: [DONE].
    assert [line for line in r.raw if line.startswith("data: ")] == r.raw
    assert len(r.raw) == len(r.recorded) + 1 and r.raw[-1] == "data: [DONE]"
    assert [json.loads(line[len("data: "):]) for line in r.raw[:-1]] == r.wire


def test_tool_call_streamed(tree, model_server):
    test_id = f"{MODULE}::test_tool_call_streamed"
    request = dict(
        model=MODEL, messages=[{"role": "user", "content": "What is the weather in Paris?"}], tools=[WEATHER_TOOL],
        tool_choice="required", parallel_tool_calls=False, stream=True, max_tokens=16, temperature=0)

    r = record_then_replay(tree, model_server, test_id, lambda c: stream_of(c.chat.completions.create(**request)))
    assert r.recorded == r.replayed
    assert all(c["id"] == f"rec-{r.hash[:12]}" and c["created"] == 0 for c in r.recorded)
    assert stored_chunks(load(r.path)) == r.wire

    def assemble(chunks) -> dict:
        calls: dict[int, dict] = {}
        for chunk in chunks:
            for choice in chunk["choices"]:
                for delta in (choice["delta"] or {}).get("tool_calls") or []:
                    call = calls.setdefault(delta["index"], {"id": None, "name": "", "arguments": ""})
                    call["id"] = delta.get("id") or call["id"]
                    function = delta.get("function") or {}
                    call["name"] += function.get("name") or ""
                    call["arguments"] += function.get("arguments") or ""
        return calls

    recorded_calls, replayed_calls = assemble(r.recorded), assemble(r.replayed)
    assert list(recorded_calls) == [0], recorded_calls
    call = recorded_calls[0]
    assert call["name"] == "get_weather"
    assert call["arguments"].startswith("{")
    # The upstream's random id became the deterministic one, for the live client and the replay.
    assert call["id"] == tool_call_id(r.hash, 0, 0)
    assert replayed_calls == recorded_calls
    assert assemble(stored_chunks(load(r.path))) == recorded_calls
    assert any(c["choices"] and c["choices"][0]["finish_reason"] in ("tool_calls", "length") for c in r.replayed)


# ---------------------------------------------------------------- completions, embeddings, models


def test_completion(tree, model_server):
    test_id = f"{MODULE}::test_completion"

    def call(client):
        answer = client.completions.create(model=MODEL, prompt="The capital of France is", **SHORT)
        return answer.model_dump(), wire(answer)

    r = record_then_replay(tree, model_server, test_id, call)
    assert r.recorded == r.replayed
    assert r.recorded["id"] == f"rec-{r.hash[:12]}" and r.recorded["created"] == 0
    assert r.replayed["object"] == "text_completion" and isinstance(r.replayed["choices"][0]["text"], str)
    assert r.replayed["usage"]["completion_tokens"] >= 1
    body = load(r.path)["response"]["body"]
    assert body["__type__"] == "openai.types.completion.Completion"
    assert body["__data__"] == r.wire


def test_completion_streamed(tree, model_server):
    test_id = f"{MODULE}::test_completion_streamed"
    request = dict(model=MODEL, prompt="One, two, three,", stream=True, **SHORT)
    r = record_then_replay(tree, model_server, test_id, lambda c: stream_of(c.completions.create(**request)))
    assert len(r.recorded) >= 2
    assert r.recorded == r.replayed
    assert all(c["id"] == f"rec-{r.hash[:12]}" and c["created"] == 0 for c in r.recorded)
    recording = load(r.path)
    assert {c["__type__"] for c in recording["response"]["body"]} == {"openai.types.completion.Completion"}
    assert stored_chunks(recording) == r.wire
    assert any(c["choices"][0]["text"] for c in r.replayed if c["choices"])


def test_embeddings(tree, model_server):
    test_id = f"{MODULE}::test_embeddings"

    def call(client):
        answer = client.embeddings.create(model=MODEL, input=["hello world", "goodbye moon"])
        return answer.model_dump(), wire(answer)

    r = record_then_replay(tree, model_server, test_id, call)
    assert r.recorded == r.replayed
    assert normalized(r.wire, r.hash) == r.wire
    vectors = [d["embedding"] for d in r.replayed["data"]]
    assert len(vectors) == 2 and len(vectors[0]) == len(vectors[1]) > 100
    assert vectors[0] != vectors[1] and all(isinstance(x, float) for x in vectors[0])
    body = load(r.path)["response"]["body"]
    assert body["__type__"] == "openai.types.create_embedding_response.CreateEmbeddingResponse"
    # The SDK asks for base64 and decodes it; the recording keeps the base64 the client received.
    stored = body["__data__"]
    decoded = [array.array("f", base64.b64decode(d["embedding"])).tolist() for d in stored["data"]]
    assert decoded == vectors
    assert {**stored, "data": [{**d, "embedding": v} for d, v in zip(stored["data"], decoded)]} == r.wire


def test_models_list(tree, model_server):
    test_id = f"{MODULE}::test_models_list"

    def call(client):
        models = client.models.list().data
        return [m.model_dump() for m in models], [wire(m) for m in models]

    r = record_then_replay(tree, model_server, test_id, call)
    assert r.replayed == r.recorded  # model entries keep their id and created
    ids = sorted(m["id"] for m in r.recorded)
    assert MODEL in ids
    # The SDK sent GET /models; the proxy hashes and records it as the reference does: POST, body {}.
    assert r.hash == request_hash("POST", f"{RECORDED_BASE}/models", {}, test_id)
    digest = hashlib.sha256("|".join(ids).encode()).hexdigest()[:8]
    assert r.path == recordings_dir(tree, test_id) / f"models-{r.hash}-{digest}.json"
    recording = load(r.path)
    assert recording["request"]["method"] == "POST"
    assert recording["request"]["url"] == f"{RECORDED_BASE}/models"
    assert recording["request"]["body"] == {}
    body = recording["response"]["body"]
    assert [m["__type__"] for m in body] == ["openai.types.model.Model"] * len(ids)
    assert [m["__data__"] for m in body] == r.wire


# ---------------------------------------------------------------- the Responses API


def test_responses_streamed(tree, model_server):
    test_id = f"{MODULE}::test_responses_streamed"
    request = dict(model=MODEL, input="The sky is", max_output_tokens=16, stream=True)

    def raw(client):
        with client.responses.with_streaming_response.create(**request) as response:
            return [line for line in response.iter_lines() if line]

    r = record_then_replay(tree, model_server, test_id, lambda c: stream_of(c.responses.create(**request)), raw=raw)
    assert r.replayed == r.recorded  # the Responses API keeps its ids and timestamps
    assert not r.recorded[0]["response"]["id"].startswith("rec-"), "the upstream's response id is kept"
    types = [e["type"] for e in r.recorded]
    assert types[0] == "response.created" and types[-1] == "response.completed", types
    deltas = "".join(e["delta"] for e in r.recorded if e["type"] == "response.output_text.delta")
    done = [e["text"] for e in r.recorded if e["type"] == "response.output_text.done"]
    assert done == [deltas] and deltas
    assert stored_chunks(load(r.path)) == r.wire
    # On the wire: `event: <type>` before each data line, named after the event's type, no [DONE].
    assert len(r.raw) == 2 * len(r.recorded)
    for event_line, data_line in zip(r.raw[::2], r.raw[1::2]):
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        assert event_line[len("event: "):] == json.loads(data_line[len("data: "):])["type"]
    assert [line[len("event: "):] for line in r.raw[::2]] == types
