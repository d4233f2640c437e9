"""Gemini routes: the official `google-genai` SDK (Vertex AI and the Gemini Developer API, over REST)
through the proxy.

Under the default `auto` adapter (and with `--adapter NAME=gemini`), requests whose path ends in
`/models/<model>:generateContent` or `:streamGenerateContent` are recorded as the reference
records `google-genai` at SDK level: an inference recording whose url is
`vertexai:///generate_content[_stream]` (a `publishers/...` model, the `projects/P/locations/L/`
prefix dropped) or `gemini:///generate_content[_stream]` (a Developer-API `models/X`), whose body
is `{"model", "contents", "config"}` with snake_case keys (user data such as function-call `args`,
function-response `response`, JSON schemas, `labels` and `properties` keys kept as sent), and whose
response is the snake_case GenerateContentResponse (streams: the list of chunks). Replay sends
camelCase JSON (SSE for `alt=sse`) again, so the SDK builds the same objects. Errors are recorded
in the reference's `exception_data` shape and replayed as the same `google.genai.errors` class.
API keys (`x-goog-api-key`, `key=`) are never stored and never change the hash.

Other paths on such a route, such as `/v1beta/interactions`, are plain-HTTP recordings: the
reference's interactions recordings replay through `client.interactions.create`.
"""
from __future__ import annotations

import json
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from google import genai
from google.genai import errors, types
from google.genai._interactions_errors import APIStatusError as InteractionsStatusError
from google.oauth2.credentials import Credentials

from conftest import (
    SHARED, FakeUpstream, Proxy, assert_verifies, free_port, load, read_tree, recording_files, recordings_dir,
    request_hash,
)

MODULE = "tests/integration/gemini/test_gemini.py"
CORPUS = SHARED / "corpus-sample" / "tests"
NO_SHARED = f"reference files not found at {SHARED} (the ../shared folder beside the clone)"
GEMINI_BASE = "https://generativelanguage.googleapis.com"
VERTEX_BASE = "https://aiplatform.googleapis.com"
# What a client's model name becomes in the recording (`request.model`, `body.model`).
MODELS = {"vertex": "gemini-2.0-flash", "developer": "gemini-2.5-flash"}
RECORDED_MODELS = {"vertex": "publishers/google/models/gemini-2.0-flash", "developer": "gemini-2.5-flash"}
SCHEMES = {"vertex": "vertexai", "developer": "gemini"}
ROUTES = {"vertex": "vertex", "developer": "gemini"}


def closed_root() -> str:
    """A base URL (no path) whose port refuses connections."""
    return f"http://127.0.0.1:{free_port()}"


def dump(obj) -> dict:
    """An SDK response as comparable data: what the server sent, minus the HTTP headers
    (`sdk_http_response`) and the SDK's own bookkeeping (`automatic_function_calling_history`)."""
    data = obj.model_dump(mode="json", exclude_none=True)
    data.pop("sdk_http_response", None)
    data.pop("automatic_function_calling_history", None)
    return data


def recorded_object(body: dict) -> dict:
    """A recorded response object minus the same keys (the reference's SDK-level recordings hold
    `sdk_http_response` and, for whole answers, `automatic_function_calling_history: []`)."""
    return {k: v for k, v in body.items() if k not in ("sdk_http_response", "automatic_function_calling_history")}


def client_for(proxy: Proxy, kind: str, test_id: str | None, *, api_key: str = "gemini-test-not-a-secret",
               route: str | None = None, api_version: str | None = None,
               headers: dict[str, str] | None = None) -> genai.Client:
    """A google-genai client on a proxy route: Vertex AI in express mode (an API key, no project)
    or the Gemini Developer API."""
    options: dict[str, Any] = {"base_url": proxy.base_url(route or ROUTES[kind]), "headers": dict(headers or {})}
    if test_id is not None:
        options["headers"]["X-Test-ID"] = test_id
    if api_version:
        options["api_version"] = api_version
    return genai.Client(vertexai=(kind == "vertex"), api_key=api_key, http_options=options)


def leaks(root: Path, *secrets: str) -> list[tuple[str, str]]:
    return [(name, s) for name, data in read_tree(root).items() for s in secrets if s.encode() in data]


# ---------------------------------------------------------------- the reference's Vertex recordings


def vertex_cases(tests_dir: Path) -> list[str]:
    found = []
    for path in sorted(tests_dir.rglob("*.json")):
        if path.parent.name == "recordings":
            request = json.loads(path.read_text())["request"]
            if str(request.get("url", "")).startswith("vertexai:///"):
                found.append(str(path.relative_to(tests_dir.parent)))
    return found


VERTEX_CASES = vertex_cases(CORPUS) if CORPUS.is_dir() else []


@pytest.fixture(scope="module")
def vertex_corpus(shared, tmp_path_factory):
    """The corpus copied into a temporary root, served by one replay proxy with a route `vertex`
    whose upstream refuses connections."""
    root = tmp_path_factory.mktemp("gemini-corpus") / "root"
    shutil.copytree(CORPUS, root / "tests")
    with Proxy(root, mode="replay", upstreams={"vertex": closed_root()}, recorded_bases={"vertex": VERTEX_BASE}) as proxy:
        yield root, proxy


def test_corpus_has_the_vertex_recordings(shared):
    assert len(VERTEX_CASES) == 6, VERTEX_CASES
    assert all(c.startswith("tests/integration/responses/recordings/") for c in VERTEX_CASES), VERTEX_CASES


@pytest.mark.parametrize(
    "relative", VERTEX_CASES or [pytest.param(None, marks=pytest.mark.skip(reason=NO_SHARED))],
    ids=[Path(c).stem[:16] for c in VERTEX_CASES] or ["no-shared"])
def test_reference_vertex_recording_replays_through_google_genai(vertex_corpus, relative):
    root, proxy = vertex_corpus
    recording = json.loads((root / relative).read_text())
    request, response = recording["request"], recording["response"]
    body = request["body"]
    assert request["endpoint"] in ("/generate_content", "/generate_content_stream")
    before = proxy.report()
    client = client_for(proxy, "vertex", recording["test_id"], api_key="x")
    try:
        arguments = dict(model=body["model"], contents=body["contents"], config=body["config"] or None)
        if request["endpoint"] == "/generate_content_stream":
            assert response["is_streaming"] is True
            got = [dump(chunk) for chunk in client.models.generate_content_stream(**arguments)]
            assert got == [recorded_object(chunk) for chunk in response["body"]]
            assert len(got) == len(response["body"]) >= 1
        else:
            assert not response.get("is_streaming")
            got = dump(client.models.generate_content(**arguments))
            assert got == recorded_object(response["body"])
    finally:
        client.close()
    after = proxy.report()
    assert after["replayed"] == before["replayed"] + 1, (before, after)
    assert after["missed"] == before["missed"] == 0, after
    assert after["passed_through"] == before["passed_through"], after
    # The file is named by the hash of what it records (scripts/hash_baseline.py).
    assert Path(relative).stem == request_hash("POST", request["url"], body, recording["test_id"])


# ---------------------------------------------------------------- the reference's interactions recordings

INTERACTIONS_DIR = CORPUS / "integration" / "interactions" / "recordings"
INTERACTION_CASES = sorted(p.name for p in INTERACTIONS_DIR.glob("*.json")) if INTERACTIONS_DIR.is_dir() else []


@pytest.fixture(scope="module", params=["auto", "gemini"])
def interactions_corpus(request, shared, tmp_path_factory):
    """The interactions recordings in a temporary root, served by a replay proxy whose route `gi`
    names the real Gemini base (its upstream refuses connections), under each adapter."""
    root = tmp_path_factory.mktemp(f"interactions-{request.param}") / "root"
    shutil.copytree(CORPUS, root / "tests")
    extra = [] if request.param == "auto" else ["--adapter", f"gi={request.param}"]
    with Proxy(root, mode="replay", upstreams={"gi": closed_root()}, recorded_bases={"gi": GEMINI_BASE},
               extra_args=extra) as proxy:
        yield root, proxy


def test_corpus_has_the_interactions_recordings(shared):
    assert len(INTERACTION_CASES) == 4, INTERACTION_CASES


def sse_events(lines: list[str]) -> list[tuple[str, Any]]:
    """(event name, data) of the stored SSE lines; `data: [DONE]` kept as the string."""
    events, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data = line[len("data: "):]
            events.append((name, data if data == "[DONE]" else json.loads(data)))
            name = None
    return events


@pytest.mark.parametrize(
    "name", INTERACTION_CASES or [pytest.param(None, marks=pytest.mark.skip(reason=NO_SHARED))],
    ids=[n[:16] for n in INTERACTION_CASES] or ["no-shared"])
def test_reference_interaction_replays_through_google_genai(interactions_corpus, name):
    root, proxy = interactions_corpus
    recording = json.loads((root / "tests/integration/interactions/recordings" / name).read_text())
    request, response = recording["request"], recording["response"]
    payload = request["payload"]
    assert request["url"] == f"{GEMINI_BASE}/v1beta/interactions" and request["method"] == "POST"
    before = proxy.report()
    client = genai.Client(api_key="x", http_options={
        "base_url": proxy.base_url("gi"), "api_version": "v1beta", "headers": {"X-Test-ID": recording["test_id"]}})
    arguments = dict(payload)
    if any(isinstance(turn, dict) and "type" not in turn for turn in payload.get("input") or []):
        # An `input` of `{"role", "content"}` turns (an older API shape) fails the SDK's own
        # validation before anything is sent; `extra_body` sends it as it is.
        arguments["extra_body"] = {"input": arguments.pop("input")}
    try:
        if response.get("status", 200) >= 400:
            with pytest.raises(InteractionsStatusError) as raised:
                client.interactions.create(**arguments)
            assert raised.value.status_code == response["status"]
            assert raised.value.body == response["body"]
            assert type(raised.value).__name__ == "BadRequestError"
        elif response["is_streaming"]:
            assert payload["stream"] is True
            got = [event.model_dump(mode="json", exclude_none=True) for event in client.interactions.create(**arguments)]
            stored = sse_events(response["body"])
            assert stored[-1] == ("done", "[DONE]")
            assert got == [data for _, data in stored[:-1]]
            assert [e["event_type"] for e in got] == [event for event, _ in stored[:-1]]
            text = "".join(e["delta"]["text"] for e in got
                           if e["event_type"] == "content.delta" and e["delta"]["type"] == "text")
            recorded_text = "".join(d["delta"]["text"] for n, d in stored if n == "content.delta" and "text" in d["delta"])
            assert text == recorded_text and text
            assert got[-1]["event_type"] == "interaction.complete"
            assert got[-1]["interaction"]["status"] == "completed"
        else:
            raise AssertionError(f"unexpected recording {name}: {response}")
    finally:
        client.close()
    after = proxy.report()
    assert after["replayed"] == before["replayed"] + 1, (before, after)
    assert after["missed"] == 0, after


# ---------------------------------------------------------------- a fake Gemini upstream

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "cityName": {"type": "string", "description": "City name"},
        "unitSystem": {"type": "string", "enum": ["metric", "imperial"]},
    },
    "required": ["cityName"],
    "additionalProperties": False,
}
TIME_PARAMETERS = types.Schema(
    type="OBJECT", properties={"timeZone": types.Schema(type="STRING", description="IANA zone", max_length=64)},
    required=["timeZone"])
TOOLS_CONFIG = types.GenerateContentConfig(
    temperature=0.2, max_output_tokens=20, system_instruction="Answer in one short sentence.",
    tools=[types.Tool(function_declarations=[
        types.FunctionDeclaration(name="get_weather", description="Current weather in a city",
                                  parameters_json_schema=WEATHER_SCHEMA),
        types.FunctionDeclaration(name="get_time", description="Time in a zone", parameters=TIME_PARAMETERS),
    ])])
ANSWER_SCHEMA = {"type": "object", "properties": {"cityName": {"type": "string"}, "tempC": {"type": "number"}},
                 "required": ["cityName"]}
STRUCTURED_CONFIG = types.GenerateContentConfig(
    response_mime_type="application/json", response_json_schema=ANSWER_SCHEMA, top_k=3, seed=7,
    stop_sequences=["END"], labels={"costCenter": "qa-team"},
    safety_settings=[types.SafetySetting(category="HARM_CATEGORY_HATE_SPEECH", threshold="BLOCK_ONLY_HIGH")],
    tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE")))
CALL_ARGS = {"cityName": "Paris", "unitSystem": "metric"}
TOOL_RESULT = {"tempC": 21, "skyCondition": "sunny"}
TURNS = [
    types.Content(role="user", parts=[types.Part(text="What is the weather in Paris?")]),
    types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(name="get_weather", args=CALL_ARGS))]),
    types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
        name="get_weather", response=TOOL_RESULT))]),
]
# prompt -> (HTTP status, Google error body, SDK error class)
ERRORS = {
    "Use up the quota.": (429, {"error": {
        "code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}},
        errors.ClientError),
    "Send a bad request.": (400, {"error": {
        "code": 400, "message": "* GenerateContentRequest.contents: contents is not specified",
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                     "fieldViolations": [{"field": "contents", "description": "contents is not specified"}]}]}},
        errors.ClientError),
    "Fail on the server.": (503, {"error": {
        "code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}},
        errors.ServerError),
}
STREAM_TEXTS = ["One", ", two", ", three."]


class FakeGemini:
    """A fake Gemini REST server (Developer API and Vertex AI paths). The stream waits, before its
    last event, until `gate` is set (the test sets it once the client has the first chunk), or
    10 s: `gate_timed_out` then tells that the proxy held the first events back."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate_timed_out = False
        self.upstream = FakeUpstream(self.handle)

    def __enter__(self) -> "FakeGemini":
        self.upstream.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.upstream.__exit__(*exc)

    @property
    def root(self) -> str:
        return self.upstream.url.removesuffix("/v1")

    @staticmethod
    def response(path: str, parts: list[dict], response_id: str, finish: str | None = "STOP",
                 usage: bool = True) -> dict:
        vertex = "/publishers/" in path
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
            candidate["avgLogprobs"] = -0.04123456789
        answer: dict[str, Any] = {"candidates": [candidate]}
        if usage:
            answer["usageMetadata"] = {
                "promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}]}
            if vertex:
                answer["usageMetadata"]["trafficType"] = "ON_DEMAND"
        answer["modelVersion"] = "gemini-2.0-flash-001" if vertex else "gemini-2.5-flash"
        if vertex:
            answer["createTime"] = "2026-05-01T10:00:00.123456Z"
        answer["responseId"] = response_id
        return answer

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes):
        route = path.split("?", 1)[0]
        if method != "POST" or not route.endswith((":generateContent", ":streamGenerateContent")):
            return self.error(404, "NOT_FOUND", f"unexpected {method} {path}")
        request = json.loads(body)
        parts = [part for content in request["contents"] for part in content["parts"]]
        prompt = parts[0].get("text", "")
        if prompt in ERRORS:
            status, error, _ = ERRORS[prompt]
            return status, "application/json; charset=UTF-8", json.dumps(error).encode()
        if route.endswith(":streamGenerateContent"):
            assert path.endswith("?alt=sse"), path
            return 200, "text/event-stream", self.stream(route)
        if any("functionResponse" in part for part in parts):
            answer = self.response(route, [{"text": "It is sunny and 21 °C in Paris."}], "resp-tool-result")
        elif prompt == "What is the weather in Paris?":
            answer = self.response(route, [{"functionCall": {"name": "get_weather", "args": CALL_ARGS}}], "resp-tool-call")
        elif prompt == "Paris as JSON.":
            answer = self.response(route, [{"text": '{"cityName": "Paris", "tempC": 21}'}], "resp-structured")
        else:
            answer = self.response(route, [{"text": f"Hi there! ({prompt})"}], "resp-text")
        return 200, "application/json; charset=UTF-8", json.dumps(answer).encode()

    def stream(self, route: str):
        for index, text in enumerate(STREAM_TEXTS):
            last = index == len(STREAM_TEXTS) - 1
            if last and not self.gate.wait(10):
                self.gate_timed_out = True
            event = self.response(route, [{"text": text}], "resp-stream", finish="STOP" if last else None, usage=last)
            yield b"data: " + json.dumps(event).encode() + b"\r\n\r\n"

    @staticmethod
    def error(code: int, status: str, message: str):
        return code, "application/json", json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()


def error_summary(error: errors.APIError) -> dict:
    return {"class": type(error).__name__, "code": error.code, "status": error.status, "message": error.message,
            "details": error.details, "str": str(error)}


def calls(client: genai.Client, kind: str, after_first_chunk: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Every call of the record/replay test, as plain data (streams as their list of chunks)."""
    model = MODELS[kind]
    results: dict[str, Any] = {"text": dump(client.models.generate_content(model=model, contents="Say hi."))}
    chunks = []
    for chunk in client.models.generate_content_stream(model=model, contents="Count to three."):
        chunks.append(dump(chunk))
        if len(chunks) == 1:
            after_first_chunk()
    results["stream"] = chunks
    results["tool_call"] = dump(client.models.generate_content(
        model=model, contents="What is the weather in Paris?", config=TOOLS_CONFIG))
    results["tool_result"] = dump(client.models.generate_content(model=model, contents=TURNS, config=TOOLS_CONFIG))
    results["structured"] = dump(client.models.generate_content(
        model=model, contents="Paris as JSON.", config=STRUCTURED_CONFIG))
    for prompt, (_, _, error_class) in ERRORS.items():
        with pytest.raises(error_class) as raised:
            client.models.generate_content(model=model, contents=prompt)
        results[prompt] = error_summary(raised.value)
    return results


def user(text: str) -> dict:
    return {"parts": [{"text": text}], "role": "user"}


SYSTEM = {"parts": [{"text": "Answer in one short sentence."}], "role": "user"}
TOOLS_RECORDED = [{"function_declarations": [
    {"description": "Current weather in a city", "name": "get_weather", "parameters_json_schema": WEATHER_SCHEMA},
    # (google-genai sends a `Schema`'s own fields in snake_case already, `max_length` included.)
    {"description": "Time in a zone", "name": "get_time", "parameters": {
        "properties": {"timeZone": {"description": "IANA zone", "max_length": 64, "type": "STRING"}},
        "required": ["timeZone"], "type": "OBJECT"}},
]}]
TOOLS_CONFIG_RECORDED = {"system_instruction": SYSTEM, "tools": TOOLS_RECORDED, "temperature": 0.2, "max_output_tokens": 20}


def expected_bodies(kind: str) -> dict[str, dict]:
    """The recorded request body of each call: snake_case keys, user data as sent."""
    model = RECORDED_MODELS[kind]

    def body(contents: list[dict], config: dict | None = None) -> dict:
        return {"model": model, "contents": contents, "config": config or {}}

    bodies = {
        "text": body([user("Say hi.")]),
        "stream": body([user("Count to three.")]),
        "tool_call": body([user("What is the weather in Paris?")], TOOLS_CONFIG_RECORDED),
        "tool_result": body([
            user("What is the weather in Paris?"),
            {"parts": [{"function_call": {"args": CALL_ARGS, "name": "get_weather"}}], "role": "model"},
            {"parts": [{"function_response": {"name": "get_weather", "response": TOOL_RESULT}}], "role": "user"},
        ], TOOLS_CONFIG_RECORDED),
        "structured": body([user("Paris as JSON.")], {
            "safety_settings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}],
            "tool_config": {"function_calling_config": {"mode": "NONE"}},
            "labels": {"costCenter": "qa-team"},
            "top_k": 3.0, "stop_sequences": ["END"], "seed": 7,
            "response_mime_type": "application/json", "response_json_schema": ANSWER_SCHEMA,
        }),
    }
    for prompt in ERRORS:
        bodies[prompt] = body([user(prompt)])
    return bodies


# What google-genai sends upstream (camelCase; its own quirks kept), checked so that a change in the
# SDK shows up here and not as a wrong recording.
def expected_wire(kind: str) -> dict[str, dict]:
    tools = [{"functionDeclarations": [
        {"description": "Current weather in a city", "name": "get_weather", "parameters_json_schema": WEATHER_SCHEMA},
        {"description": "Time in a zone", "name": "get_time", "parameters": {
            "properties": {"timeZone": {"description": "IANA zone", "max_length": 64, "type": "STRING"}},
            "required": ["timeZone"], "type": "OBJECT"}},
    ]}]
    config = {"systemInstruction": SYSTEM, "tools": tools, "generationConfig": {"temperature": 0.2, "maxOutputTokens": 20}}
    wire = {
        "text": {"contents": [user("Say hi.")]},
        "stream": {"contents": [user("Count to three.")]},
        "tool_call": {"contents": [user("What is the weather in Paris?")], **config},
        "tool_result": {"contents": [
            user("What is the weather in Paris?"),
            {"parts": [{"functionCall": {"args": CALL_ARGS, "name": "get_weather"}}], "role": "model"},
            {"parts": [{"functionResponse": {"name": "get_weather", "response": TOOL_RESULT}}], "role": "user"},
        ], **config},
        "structured": {
            "contents": [user("Paris as JSON.")],
            "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}],
            "toolConfig": {"functionCallingConfig": {"mode": "NONE"}},
            "labels": {"costCenter": "qa-team"},
            "generationConfig": {"topK": 3.0, "stopSequences": ["END"], "seed": 7, "responseMimeType": "application/json",
                                 "responseJsonSchema": ANSWER_SCHEMA},
        },
    }
    for prompt in ERRORS:
        wire[prompt] = {"contents": [user(prompt)]}
    return wire


def expected_paths(kind: str) -> dict[str, str]:
    prefix = "/v1beta1/publishers/google/models/gemini-2.0-flash" if kind == "vertex" else "/v1/models/gemini-2.5-flash"
    return {name: f"{prefix}:streamGenerateContent?alt=sse" if name == "stream" else f"{prefix}:generateContent"
            for name in expected_wire(kind)}


def gemini_proxy(tree: Path, mode: str, upstream: str, adapter: str = "auto") -> Proxy:
    extra = [] if adapter == "auto" else [arg for route in ROUTES.values() for arg in ("--adapter", f"{route}={adapter}")]
    return Proxy(tree, mode=mode, upstreams={route: upstream for route in ROUTES.values()},
                 recorded_bases={"gemini": GEMINI_BASE, "vertex": VERTEX_BASE}, extra_args=extra)


RECORD_CASES = [("vertex", "auto"), ("developer", "auto"), ("vertex", "gemini"), ("developer", "gemini")]


@pytest.mark.parametrize("kind,adapter", RECORD_CASES, ids=[f"{k}-{a}" for k, a in RECORD_CASES])
def test_google_genai_records_and_replays(tree, kind, adapter):
    test_id = f"{MODULE}::test_google_genai_records_and_replays[{kind}-{adapter}]"
    api_key = f"AIza-{uuid.uuid4().hex}"
    with FakeGemini() as fake:
        with gemini_proxy(tree, "record", fake.root, adapter) as proxy:
            client = client_for(proxy, kind, test_id, api_key=api_key)
            try:
                recorded = calls(client, kind, fake.gate.set)
            finally:
                client.close()
            report = proxy.report()
            record_log = proxy.log()
        assert not fake.gate_timed_out, "the proxy held the stream's first event back until the upstream went on"
        requests = fake.upstream.requests
    names = list(expected_wire(kind))
    assert report["recorded"] == len(names) and report["passed_through"] == 0, report

    # The upstream got what google-genai sends, key included.
    assert [(m, p) for m, p, _, _ in requests] == [("POST", expected_paths(kind)[n]) for n in names]
    assert [json.loads(b) for _, _, _, b in requests] == [expected_wire(kind)[n] for n in names]
    assert all(h.get("x-goog-api-key") == api_key for _, _, h, _ in requests)

    # What the SDK parsed while recording.
    assert recorded["text"]["candidates"][0]["content"]["parts"] == [{"text": "Hi there! (Say hi.)"}]
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in recorded["stream"]] == STREAM_TEXTS
    assert recorded["stream"][-1]["candidates"][0]["finish_reason"] == "STOP"
    assert recorded["tool_call"]["candidates"][0]["content"]["parts"] == [
        {"function_call": {"name": "get_weather", "args": CALL_ARGS}}]
    for prompt, (status, error, error_class) in ERRORS.items():
        assert {k: v for k, v in recorded[prompt].items() if k != "str"} == {
            "class": error_class.__name__, "code": status, "status": error["error"]["status"],
            "message": error["error"]["message"], "details": error}

    # The recordings: one per call, named by the hash of the SDK-level request.
    files = recording_files(tree)
    assert len(files) == len(names), files
    folder = recordings_dir(tree, test_id)
    bodies = expected_bodies(kind)
    scheme = SCHEMES[kind]
    by_name: dict[str, dict] = {}
    for name in names:
        endpoint = "/generate_content_stream" if name == "stream" else "/generate_content"
        url = f"{scheme}://{endpoint}"
        hash_ = request_hash("POST", url, bodies[name], test_id)
        path = folder / f"{hash_}.json"
        assert path.exists(), (name, hash_, files)
        recording = load(path)
        by_name[name] = recording
        assert recording["test_id"] == test_id
        request = recording["request"]
        assert request["url"] == url and request["endpoint"] == endpoint and request["method"] == "POST", request
        assert request["model"] == RECORDED_MODELS[kind]
        assert request["body"] == bodies[name], name
        assert request.get("headers", {}) == {}

    # (`parsed` is the SDK's own reading of the JSON text, made client-side, as on replay.)
    assert recorded["structured"]["parsed"] == {"cityName": "Paris", "tempC": 21}
    for name in ("text", "tool_call", "tool_result", "structured"):
        response = by_name[name]["response"]
        assert not response.get("is_streaming") and not response.get("is_exception"), response
        assert recorded_object(response["body"]) == {k: v for k, v in recorded[name].items() if k != "parsed"}, name
        assert "__type__" not in json.dumps(response["body"])
    # User data keeps its spelling in the stored answer.
    assert by_name["tool_call"]["response"]["body"]["candidates"][0]["content"]["parts"] == [
        {"function_call": {"name": "get_weather", "args": CALL_ARGS}}]

    stream = by_name["stream"]["response"]
    assert stream["is_streaming"] is True
    assert [recorded_object(c) for c in stream["body"]] == recorded["stream"]
    offsets = stream["chunk_offsets_ms"]
    assert len(offsets) == len(STREAM_TEXTS) and all(isinstance(o, (int, float)) for o in offsets)
    assert offsets == sorted(offsets)

    for prompt, (status, error, error_class) in ERRORS.items():
        response = by_name[prompt]["response"]
        assert response["is_exception"] is True, response
        data = response["exception_data"]
        assert data["category"] == "provider_sdk"
        assert data["provider"] == scheme
        assert data["type"] == error_class.__name__
        assert data["status_code"] == status
        assert data["body"] == error
        # The message is the SDK error's own text, as the reference records it.
        assert data["message"] == recorded[prompt]["str"], data
        assert response.get("exception_message", data["message"]) == data["message"]
    assert_verifies(tree)

    # Replay with the upstream gone: the same objects, the same errors, nothing written.
    before = read_tree(tree)
    with gemini_proxy(tree, "replay", closed_root(), adapter) as proxy:
        client = client_for(proxy, kind, test_id, api_key=f"AIza-other-{uuid.uuid4().hex}")
        try:
            replayed = calls(client, kind)
        finally:
            client.close()
        report = proxy.report()
        replay_log = proxy.log()
    assert (report["replayed"], report["missed"], report["recorded"]) == (len(names), 0, 0), report
    for name in names:
        assert replayed[name] == recorded[name], name
    assert read_tree(tree) == before, "replay must not write"
    assert leaks(tree, api_key) == []
    assert api_key not in record_log and api_key not in replay_log


def test_keys_api_version_and_project_path_are_not_in_the_identity(tree):
    """The same call is the same recording whatever key (header or `key=`), API version or
    Vertex project/location path carries it; a camelCase `parametersJsonSchema` (raw REST) is
    the SDK's `parameters_json_schema`."""
    test_id = f"{MODULE}::test_keys_api_version_and_project_path_are_not_in_the_identity"
    keys = [f"AIza-{i}-{uuid.uuid4().hex}" for i in range(8)]
    with FakeGemini() as fake:
        with gemini_proxy(tree, "record", fake.root) as proxy:
            vertex = client_for(proxy, "vertex", test_id, api_key=keys[0])
            developer = client_for(proxy, "developer", test_id, api_key=keys[1])
            try:
                vertex_text = dump(vertex.models.generate_content(model=MODELS["vertex"], contents="Say hi."))
                developer_tool = dump(developer.models.generate_content(
                    model=MODELS["developer"], contents="What is the weather in Paris?", config=TOOLS_CONFIG))
            finally:
                vertex.close()
                developer.close()
        wire_tool = json.loads(fake.upstream.requests[1][3])
    files = recording_files(tree)
    assert len(files) == 2, files

    with gemini_proxy(tree, "replay", closed_root()) as proxy:
        # Vertex with a project and location (OAuth, no API key): the path's prefix is dropped.
        projected = genai.Client(
            vertexai=True, project="my-project", location="us-central1", credentials=Credentials(token=keys[2]),
            http_options={"base_url": proxy.base_url("vertex"), "headers": {"X-Test-ID": test_id}})
        # The Developer API through v1beta instead of v1, and another key.
        beta = client_for(proxy, "developer", test_id, api_key=keys[3], api_version="v1beta")
        try:
            assert dump(projected.models.generate_content(model=MODELS["vertex"], contents="Say hi.")) == vertex_text
            assert dump(beta.models.generate_content(
                model=MODELS["developer"], contents="What is the weather in Paris?", config=TOOLS_CONFIG)) == developer_tool
        finally:
            projected.close()
            beta.close()
        # Raw REST: the key as `key=` and no header; the camelCase spelling of the JSON-schema key.
        r = httpx.post(
            f"{proxy.base_url('vertex')}/v1beta1/publishers/google/models/gemini-2.0-flash:generateContent",
            params={"key": keys[4]}, headers={"X-Test-ID": test_id}, json={"contents": [user("Say hi.")]}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["candidates"][0]["content"]["parts"] == [{"text": "Hi there! (Say hi.)"}]
        assert r.json()["candidates"][0]["finishReason"] == "STOP", "replay answers in camelCase"
        camel = json.loads(json.dumps(wire_tool).replace('"parameters_json_schema"', '"parametersJsonSchema"'))
        assert camel != wire_tool
        r = httpx.post(
            f"{proxy.base_url('gemini')}/v1beta/models/gemini-2.5-flash:generateContent",
            params={"key": keys[5]}, headers={"X-Test-ID": test_id, "x-goog-api-key": keys[6]}, json=camel, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["candidates"][0]["content"]["parts"] == [{"functionCall": {"name": "get_weather", "args": CALL_ARGS}}]
        # A streamed request for the same body is another call (another endpoint): a miss.
        r = httpx.post(
            f"{proxy.base_url('vertex')}/v1beta1/publishers/google/models/gemini-2.0-flash:streamGenerateContent",
            params={"alt": "sse", "key": keys[7]}, headers={"X-Test-ID": test_id},
            json={"contents": [user("Say hi.")]}, timeout=60)
        assert r.status_code == 404, r.text
        report = proxy.report()
    assert (report["replayed"], report["missed"]) == (4, 1), report
    assert recording_files(tree) == files
    assert leaks(tree, *keys) == []
    assert_verifies(tree)


@pytest.mark.parametrize("kind", ["vertex", "developer"])
def test_replay_miss_is_a_google_not_found_error_naming_the_hash(tree, kind):
    test_id = f"{MODULE}::test_replay_miss[{kind}]"
    with gemini_proxy(tree, "replay", closed_root()) as proxy:
        client = client_for(proxy, kind, test_id)
        try:
            with pytest.raises(errors.ClientError) as missed:
                client.models.generate_content(model=MODELS[kind], contents="Nothing was recorded.")
        finally:
            client.close()
        report = proxy.report()
    error = missed.value
    assert error.code == 404
    assert error.status == "NOT_FOUND"
    assert error.details["error"]["code"] == 404
    hash_ = request_hash("POST", f"{SCHEMES[kind]}:///generate_content",
                         {"model": RECORDED_MODELS[kind], "contents": [user("Nothing was recorded.")], "config": {}},
                         test_id)
    assert hash_ in error.message
    assert "record" in error.message.lower()
    assert (report["missed"], report["replayed"]) == (1, 0), report
    assert recording_files(tree) == []
