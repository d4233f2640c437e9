"""Replay the reference recordings (../shared: real llama-stack/OGX files) through the proxy with
the official `openai` SDK, and check that what the SDK parses is exactly what was recorded.

The corpus is copied into a temporary root and served in replay mode with
`--fallback-dir tests/integration/common/recordings`. Every inference recording of
`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` or `/v1/models` gets a route whose
recorded base is its URL minus the path the SDK calls (`https://api.openai.com/v1/v1/chat/completions`
-> base `https://api.openai.com/v1/v1`, path `/chat/completions`), and an upstream that refuses
connections. The recorded body is sent as it is (`client.post` with the SDK's own response types:
the reference hashes the SDK call's keyword arguments, so a body may hold keys such as
`extra_body` that a typed `create()` would merge away), with the recording's test id. Model lists
recorded with body `{}` are replayed with `client.models.list()` (a GET, recorded by the reference
as POST).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import openai
import pytest
from openai import Stream
from openai.pagination import SyncPage
from openai.types import Completion, CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from conftest import SHARED, Proxy, closed_url, recordings_dir, request_hash, sent_hash, wire

FALLBACK = "tests/integration/common/recordings"
CORPUS = SHARED / "corpus-sample" / "tests"
SEED = SHARED / "fixtures" / "seed" / "tests"
SEED_FILE = "tests/integration/responses/recordings/aa152c7d111f58cc0fe23fc14264ffc74e4938b686527481b55a207e1d20cb90.json"
CLIENT_PATHS = {  # the recorded endpoint -> the path the SDK appends to its base URL
    "/v1/chat/completions": "/chat/completions",
    "/v1/completions": "/completions",
    "/v1/embeddings": "/embeddings",
    "/v1/models": "/models",
}
TYPES = {  # path -> (whole response type, stream chunk type)
    "/chat/completions": (ChatCompletion, ChatCompletionChunk),
    "/completions": (Completion, Completion),
    "/embeddings": (CreateEmbeddingResponse, None),
}


def replayable(tests_dir: Path) -> list[tuple[str, str, str]]:
    """(relative file, recorded base, client path) of every recording the SDK can replay."""
    found = []
    for path in sorted(tests_dir.rglob("*.json")):
        if path.parent.name != "recordings":
            continue
        request = json.loads(path.read_text())["request"]
        client_path = CLIENT_PATHS.get(request.get("endpoint"))
        url = request.get("url", "")
        if client_path and url.endswith(client_path) and url.startswith(("http://", "https://")):
            found.append((str(path.relative_to(tests_dir.parent)), url[: -len(client_path)], client_path))
    return found


CASES = replayable(CORPUS) if CORPUS.is_dir() else []
NO_SHARED = f"reference files not found at {SHARED} (the ../shared folder beside the clone)"


def serve(root: Path, bases: list[str]) -> tuple[Proxy, dict[str, str]]:
    routes = {base: f"r{i}" for i, base in enumerate(sorted(set(bases)))}
    proxy = Proxy(
        root, mode="replay", fallback_dir=FALLBACK, upstreams={name: closed_url() for name in routes.values()},
        recorded_bases={name: base for base, name in routes.items()})
    return proxy, routes


@pytest.fixture(scope="module")
def corpus(shared, tmp_path_factory):
    """The corpus copied into a temporary root, served by one replay proxy."""
    root = tmp_path_factory.mktemp("corpus") / "root"
    shutil.copytree(CORPUS, root / "tests")
    proxy, routes = serve(root, [base for _, base, _ in CASES])
    with proxy:
        yield root, proxy, routes


def send(client: openai.OpenAI, method: str, path: str, body: dict):
    """Sends a recorded request as it is and parses the answer with the SDK's types. A model list
    recorded with body `{}` is the reference's record of `client.models.list()` itself, so that is
    what is called (the SDK sends `GET /models`; the proxy hashes it as the reference's POST)."""
    if path == "/models":
        if method == "POST" and body == {}:
            return client.models.list()
        return client.get_api_list(path, model=Model, page=SyncPage[Model], body=body or None, method=method.lower())
    whole, chunk = TYPES[path]
    if body.get("stream"):
        return client.post(path, body=body, cast_to=whole, stream=True, stream_cls=Stream[chunk])
    return client.post(path, body=body, cast_to=whole)


def model_list_union(root: Path, test_id: str | None, hash_: str) -> dict[str, list]:
    """Model entries by id over every `models-<hash>-*.json` the store searches for this test."""
    folders = [recordings_dir(root, test_id, FALLBACK), root / FALLBACK]
    entries: dict[str, list] = {}
    for folder in dict.fromkeys(folders):
        for file in sorted(folder.glob(f"models-{hash_}-*.json")):
            for item in json.loads(file.read_text())["response"]["body"]:
                entries.setdefault(item["__data__"]["id"], []).append(item["__data__"])
    return entries


@pytest.mark.parametrize(
    "relative,base,path", CASES or [pytest.param(None, None, None, marks=pytest.mark.skip(reason=NO_SHARED))],
    ids=[f"{c[0].split('/')[2]}/{Path(c[0]).stem[:19]}" for c in CASES] or ["no-shared"])
def test_reference_recording_replays_through_the_sdk(corpus, relative, base, path):
    root, proxy, routes = corpus
    recording = json.loads((root / relative).read_text())
    request, response = recording["request"], recording["response"]
    test_id = recording["test_id"]
    client = proxy.client(routes[base], test_id)
    before = len(proxy.sent)

    if response.get("is_exception"):
        data = response["exception_data"]
        with pytest.raises(openai.APIStatusError) as raised:
            result = send(client, request["method"], path, request["body"])
            if isinstance(result, Stream):
                list(result)
        error = raised.value
        assert type(error).__name__ == data["type"]
        assert error.status_code == data["status_code"]
        assert error.body == data["body"]
    elif path == "/models":
        page = send(client, request["method"], path, request["body"])
        name_hash = Path(relative).stem.split("-")[1]
        union = model_list_union(root, test_id, name_hash)
        got = [wire(m) for m in page.data]
        assert [m["id"] for m in got] == sorted(union), "the union of every file of the hash, sorted by id"
        assert all(m in union[m["id"]] for m in got)
    elif response["is_streaming"]:
        chunks = [wire(c) for c in send(client, request["method"], path, request["body"])]
        assert chunks == [c["__data__"] for c in response["body"]]
    else:
        answer = send(client, request["method"], path, request["body"])
        assert type(answer).__module__ + "." + type(answer).__name__ == response["body"]["__type__"]
        assert wire(answer) == response["body"]["__data__"]

    # The request the SDK sent hashes (scripts/hash_baseline.py) to the file's own name.
    [sent] = proxy.sent[before:]
    hash_ = sent_hash(sent, proxy.base_url(routes[base]), base, test_id)
    assert hash_ == request_hash(request["method"], request["url"], request["body"], test_id)
    assert Path(relative).stem == hash_ or Path(relative).stem.startswith(f"models-{hash_}-")


def test_sdk_models_list_replays_reference_model_lists(shared, tmp_path):
    """`client.models.list()` replays the reference's model-list files: the reference records that
    very SDK call as `POST` with body `{}` (every model list in the corpus); the SDK sends
    `GET /models`. (Lists recorded with other keyword arguments, such as `extra_query`, are left
    out: the SDK sends those as a query string.)"""
    cases = [c for c in CASES if c[2] == "/models" and json.loads((CORPUS.parent / c[0]).read_text())["request"]["body"] == {}]
    assert len(cases) >= 3
    root = tmp_path / "root"
    shutil.copytree(CORPUS, root / "tests")
    proxy, routes = serve(root, [base for _, base, _ in cases])
    with proxy:
        for relative, base, _ in cases:
            recording = json.loads((root / relative).read_text())
            assert recording["request"]["method"] == "POST"
            before = len(proxy.sent)
            models = proxy.client(routes[base], recording["test_id"]).models.list().data
            [sent] = proxy.sent[before:]
            assert sent[0] == "GET" and sent[2] == b""
            name_hash = Path(relative).stem.split("-")[1]
            assert sent_hash(sent, proxy.base_url(routes[base]), base, recording["test_id"]) == name_hash
            expected = model_list_union(root, recording["test_id"], name_hash)
            assert [m.id for m in models] == sorted(expected)
            assert all(wire(m) in expected[m.id] for m in models)
        report = proxy.report()
    assert (report["replayed"], report["missed"], report["passed_through"]) == (len(cases), 0, 0), report


def test_seed_replays_two_streamed_weather_tool_calls(shared, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(SEED, root / "tests")
    recording = json.loads((root / SEED_FILE).read_text())
    request = recording["request"]
    base = request["url"][: -len("/chat/completions")]
    proxy, routes = serve(root, [base])
    with proxy:
        client = proxy.client(routes[base], recording["test_id"])
        chunks = list(client.chat.completions.create(**request["body"]))
        report = proxy.report()
    assert report["replayed"] == 1 and report["missed"] == 0
    assert [wire(c) for c in chunks] == [c["__data__"] for c in recording["response"]["body"]]

    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
    assert [c["name"] for c in calls.values()] == ["get_weather", "get_weather"]
    assert [json.loads(c["arguments"]) for c in calls.values()] == [
        {"location": "San Francisco, USA"}, {"location": "Los Angeles, USA"}]
    assert [c["arguments"] for c in calls.values()] == [
        '{"location": "San Francisco, USA"}', '{"location": "Los Angeles, USA"}']
    recorded_ids = [
        d["id"] for c in recording["response"]["body"] for ch in c["__data__"]["choices"]
        for d in (ch["delta"]["tool_calls"] or []) if d.get("id")]
    assert [c["id"] for c in calls.values()] == recorded_ids and len(set(recorded_ids)) == 2
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
