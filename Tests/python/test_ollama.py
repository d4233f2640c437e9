"""Ollama routes (docs/proxy.md, "Ollama routes"): the official `ollama` Python client through the
proxy against a fake Ollama server, recorded and then replayed with no upstream.

The route is `--upstream o=<fake> --recorded-base o=http://localhost:11434` with the `auto`
adapter, which treats `/api/...` as Ollama. Chat (streamed and not), generate, embed, list and ps
are recorded, then replayed; the client's objects must be equal in both phases, with `created_at`
and the durations normalised, and the files must be the reference's Ollama recordings. An
upstream 404 on `/api/show` is an `ollama.ResponseError` in both phases.
"""
from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path

import ollama
import pytest

from conftest import FakeUpstream, Proxy, assert_verifies, free_port, load, recording_files, recordings_dir

MODULE = "tests/integration/ollama/test_ollama.py"
RECORDED = "http://localhost:11434"
EPOCH = "1970-01-01T00:00:00.000000Z"
DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
MESSAGES = [{"role": "user", "content": "hello"}]


def now() -> str:
    """A fresh, volatile timestamp, as a real Ollama sends."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{secrets.randbelow(10**9):09d}Z"


def durations() -> dict[str, int]:
    return {k: 1_000_000 + secrets.randbelow(10**9) for k in DURATIONS} | {"prompt_eval_count": 5, "eval_count": 3}


def ndjson(objects: list[dict]) -> tuple[int, str, list[bytes]]:
    """A stream sent one line per write."""
    return 200, "application/x-ndjson", [json.dumps(o).encode() + b"\n" for o in objects]


def single(obj: dict, status: int = 200) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(obj).encode()


def fake_ollama(method: str, path: str, headers: dict[str, str], body: bytes):
    request = json.loads(body) if body else {}
    model = request.get("model", "m1")
    stream = request.get("stream", True) is not False
    if path == "/api/chat":
        parts = ["Hel", "lo", ""]
        lines = [{"model": model, "created_at": now(), "message": {"role": "assistant", "content": p}, "done": False}
                 for p in parts]
        lines[-1] |= {"done": True, "done_reason": "stop"} | durations()
        if stream:
            return ndjson(lines)
        return single(lines[-1] | {"message": {"role": "assistant", "content": "Hello"}})
    if path == "/api/generate":
        parts = ["Once", " upon", ""]
        lines = [{"model": model, "created_at": now(), "response": p, "done": False} for p in parts]
        lines[-1] |= {"done": True, "done_reason": "stop", "context": [1, 2, 3]} | durations()
        if stream:
            return ndjson(lines)
        return single(lines[-1] | {"response": "Once upon"})
    if path == "/api/embed":
        return single({"model": model, "embeddings": [[0.1, -0.25, 0.5]], "total_duration": 12345,
                       "load_duration": 678, "prompt_eval_count": 2})
    if path == "/api/tags":
        return single({"models": [{
            "name": "m1", "model": "m1", "modified_at": "2025-01-02T03:04:05.123456789Z", "size": 1234,
            "digest": "abc123", "details": {"format": "gguf", "family": "llama", "parameter_size": "1B",
                                            "quantization_level": "Q4_0"}}]})
    if path == "/api/ps":
        return single({"models": [{
            "name": "m1", "model": "m1", "size": 1234, "digest": "abc123", "expires_at": "2030-01-01T00:00:00Z",
            "size_vram": 1000, "details": {"format": "gguf", "family": "llama"}}]})
    if path == "/api/show":
        return single({"error": f"model '{model}' not found"}, 404)
    return single({"error": f"unexpected {method} {path}"}, 500)


def calls(client: ollama.Client) -> dict[str, object]:
    """Every call of the test, as plain data (streams as their list of chunks)."""
    return {
        "chat_stream": [c.model_dump() for c in client.chat(model="m1", messages=MESSAGES, stream=True)],
        "chat": client.chat(model="m1", messages=MESSAGES, stream=False).model_dump(),
        "generate_stream": [c.model_dump() for c in client.generate(model="m1", prompt="Tell a story", stream=True)],
        "generate": client.generate(model="m1", prompt="Tell a story", stream=False).model_dump(),
        "embed": client.embed(model="m1", input="hello").model_dump(),
        "list": client.list().model_dump(),
        "ps": client.ps().model_dump(),
    }


def client_for(proxy: Proxy, test_id: str) -> ollama.Client:
    return ollama.Client(host=proxy.base_url("o"), headers={"X-Test-ID": test_id}, timeout=60)


def assert_normalised(results: dict[str, object]) -> None:
    for name in ("chat_stream", "generate_stream"):
        chunks = results[name]
        assert len(chunks) == 3, (name, chunks)
        assert [c["done"] for c in chunks] == [False, False, True], (name, chunks)
        for chunk in chunks:
            assert chunk["created_at"] == EPOCH, (name, chunk)
        for key in DURATIONS:
            assert chunks[-1][key] == 0, (name, key, chunks[-1])
    for name in ("chat", "generate"):
        assert results[name]["created_at"] == EPOCH, results[name]
        assert results[name]["done"] is True
        for key in DURATIONS:
            assert results[name][key] == 0, (name, key, results[name])
    assert "".join(c["message"]["content"] for c in results["chat_stream"]) == "Hello"
    assert results["chat"]["message"]["content"] == "Hello"
    assert "".join(c["response"] for c in results["generate_stream"]) == "Once upon"
    assert results["generate"]["response"] == "Once upon"
    assert results["embed"]["embeddings"] == [[0.1, -0.25, 0.5]]
    assert [m["model"] for m in results["list"]["models"]] == ["m1"]
    assert [m["model"] for m in results["ps"]["models"]] == ["m1"]


def test_ollama_client_records_and_replays(tree: Path):
    test_id = f"{MODULE}::test_ollama_client_records_and_replays"
    with FakeUpstream(fake_ollama) as upstream:
        fake = upstream.url.removesuffix("/v1")
        with Proxy(tree, mode="record", upstreams={"o": fake}, recorded_bases={"o": RECORDED}) as proxy:
            recorded = calls(client_for(proxy, test_id))
        paths = [r[1] for r in upstream.requests]
        assert paths == ["/api/chat", "/api/chat", "/api/generate", "/api/generate", "/api/embed", "/api/tags",
                         "/api/ps"], paths
        # Upstream got the real stream flag.
        assert [json.loads(r[3]).get("stream") for r in upstream.requests[:4]] == [True, False, True, False]
    assert_normalised(recorded)

    files = recording_files(tree)
    assert len(files) == 7, files
    folder = recordings_dir(tree, test_id)
    models = [f for f in files if Path(f).name.startswith("models-")]
    assert len(models) == 1, files
    assert re.fullmatch(r"models-[0-9a-f]{64}-[0-9a-f]+\.json", Path(models[0]).name), models

    by_path: dict[str, dict] = {}
    for name in files:
        data = load(tree / name)
        request = data["request"]
        assert request["method"] == "POST", (name, request)
        assert request["url"].startswith(f"{RECORDED}/api/"), (name, request)
        by_path.setdefault(request["url"].removeprefix(RECORDED), []).append((name, data))
        if not Path(name).name.startswith("models-"):
            assert (tree / name).parent == folder, (name, folder)
    assert sorted(by_path) == ["/api/chat", "/api/embed", "/api/generate", "/api/ps", "/api/tags"], sorted(by_path)
    types = {
        "/api/chat": "ollama._types.ChatResponse", "/api/generate": "ollama._types.GenerateResponse",
        "/api/embed": "ollama._types.EmbedResponse", "/api/tags": "ollama._types.ListResponse",
        "/api/ps": "ollama._types.ProcessResponse",
    }
    for path, entries in by_path.items():
        for name, data in entries:
            text = json.dumps(data["response"])
            assert f'"__type__": "{types[path]}"' in text, (name, data["response"])
            assert "created_at" not in text or EPOCH in text
    assert len(by_path["/api/chat"]) == 2 and len(by_path["/api/generate"]) == 2
    streamed = [d for _, d in by_path["/api/chat"] if d["response"].get("is_streaming")]
    assert len(streamed) == 1 and len(streamed[0]["response"]["body"]) == 3, by_path["/api/chat"]

    closed = f"http://127.0.0.1:{free_port()}"
    with Proxy(tree, mode="replay", upstreams={"o": closed}, recorded_bases={"o": RECORDED}) as proxy:
        replayed = calls(client_for(proxy, test_id))
    assert_normalised(replayed)
    for name in recorded:
        assert replayed[name] == recorded[name], name
    assert recording_files(tree) == files
    assert_verifies(tree)


def test_ollama_error_is_recorded_and_replayed(tree: Path):
    test_id = f"{MODULE}::test_ollama_error_is_recorded_and_replayed"
    message = "model 'x' not found"
    with FakeUpstream(fake_ollama) as upstream:
        fake = upstream.url.removesuffix("/v1")
        with Proxy(tree, mode="record", upstreams={"o": fake}, recorded_bases={"o": RECORDED}) as proxy:
            with pytest.raises(ollama.ResponseError) as recorded:
                client_for(proxy, test_id).show("x")
        assert upstream.calls == 1
    assert recorded.value.status_code == 404
    assert recorded.value.error == message
    files = recording_files(tree)
    assert len(files) == 1, files
    data = load(tree / files[0])
    assert data["request"]["method"] == "POST" and data["request"]["url"] == f"{RECORDED}/api/show"

    closed = f"http://127.0.0.1:{free_port()}"
    with Proxy(tree, mode="replay", upstreams={"o": closed}, recorded_bases={"o": RECORDED}) as proxy:
        with pytest.raises(ollama.ResponseError) as replayed:
            client_for(proxy, test_id).show("x")
    assert replayed.value.status_code == 404
    assert replayed.value.error == message
    assert str(replayed.value) == str(recorded.value)
    assert_verifies(tree)
