"""Credentials never reach a recording (docs/proxy.md, "Plain-HTTP routes"; "Determinism": request
headers are never stored): one random token is planted in every place a credential can travel
(`Authorization: Bearer`, `x-api-key`, `api-key`, `x-goog-api-key`, `anthropic-api-key`, `Cookie`,
the body keys `api_key` and `apiKey`, and a `key=` query parameter), through every kind of route
(OpenAI with the openai SDK, plain HTTP with raw requests, Ollama with raw httpx, Gemini with the
google-genai SDK for the Developer API and Vertex AI, and raw httpx for `key=`), in record mode.
No file under the recordings root, and not the proxy's log, may contain it.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import requests
from google import genai
from google.genai import types

from conftest import FakeUpstream, Proxy, json_reply, read_tree, recording_files

MODULE = "tests/integration/secrets/test_secrets_everywhere.py"
TEST_ID = f"{MODULE}::test_no_secret_reaches_a_recording"


def fake(method: str, path: str, headers: dict[str, str], body: bytes):
    request = json.loads(body) if body else {}
    if path.startswith("/v1/chat/completions"):
        return json_reply({
            "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    if path.startswith("/api/chat"):
        line = {"model": "m1", "created_at": "2025-01-01T00:00:00Z", "message": {"role": "assistant", "content": "hi"},
                "done": True, "total_duration": 5}
        if request.get("stream", True) is False:
            return json_reply(line)
        first = {**line, "done": False}
        del first["total_duration"]
        return 200, "application/x-ndjson", [json.dumps(first).encode() + b"\n", json.dumps(line).encode() + b"\n"]
    if ":generateContent" in path or ":streamGenerateContent" in path:
        answer = {"candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"}, "finishReason": "STOP"}],
                  "modelVersion": "fake-gemini", "responseId": "resp-1"}
        if ":streamGenerateContent" in path:
            first = {"candidates": [{"content": {"parts": [{"text": "h"}], "role": "model"}}]}
            answer["candidates"][0]["content"]["parts"][0]["text"] = "i"
            return 200, "text/event-stream", [b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in (first, answer)]
        return json_reply(answer)
    # (Never echo the request: the secret would then be in the upstream's own answer.)
    return json_reply({"ok": True, "path": path.split("?", 1)[0]})


def test_no_secret_reaches_a_recording(tree: Path):
    token = f"SeCrEt{uuid.uuid4().hex}"

    def planted(where: str) -> str:
        return f"{token}-{where}"

    def headers(route: str) -> dict[str, str]:
        return {
            "X-Test-ID": TEST_ID,
            "Authorization": f"Bearer {planted(route + '-bearer')}",
            "x-api-key": planted(route + "-x-api-key"),
            "api-key": planted(route + "-api-key"),
            "x-goog-api-key": planted(route + "-goog"),
            "anthropic-api-key": planted(route + "-anthropic"),
            "Cookie": f"session={planted(route + '-cookie')}",
        }

    def body_keys(route: str) -> dict[str, str]:
        return {"api_key": planted(route + "-body-api_key"), "apiKey": planted(route + "-body-apiKey")}

    with FakeUpstream(fake) as upstream:
        root_url = upstream.url.removesuffix("/v1")
        with Proxy(
            tree, mode="record",
            upstreams={"up": upstream.url, "h": root_url, "o": root_url, "g": root_url},
            recorded_bases={"up": "http://fake.invalid/v1", "h": "http://tool.invalid", "o": "http://localhost:11434",
                            "g": "https://generativelanguage.googleapis.com"},
            extra_args=["--adapter", "h=http"],
        ) as proxy:
            # OpenAI-style route, the official SDK: the key as Bearer, the rest as extra headers/body/query.
            openai_headers = headers("openai")
            client = proxy.client(
                "up", api_key=planted("openai-bearer"),
                headers={k: v for k, v in openai_headers.items() if k not in ("Authorization",)})
            completion = client.chat.completions.create(
                model="fake-model", messages=[{"role": "user", "content": "hello"}],
                extra_body=body_keys("openai"), extra_query={"key": planted("openai-query")})
            assert completion.choices[0].message.content == "hi"

            # Plain-HTTP route, raw requests (JSON body) and raw httpx.
            r = requests.post(
                f"{proxy.base_url('h')}/search", params={"key": planted("http-query")}, headers=headers("http"),
                json={"query": "weather", **body_keys("http")}, timeout=60)
            assert r.status_code == 200, r.text
            assert r.json() == {"ok": True, "path": "/search"}
            r = httpx.post(
                f"{proxy.base_url('h')}/extract", params={"key": planted("httpx-query")}, headers=headers("httpx"),
                json={"urls": ["https://example.com"], **body_keys("httpx")}, timeout=60)
            assert r.status_code == 200, r.text

            # Ollama route, raw HTTP: a single answer and an NDJSON stream.
            r = httpx.post(
                f"{proxy.base_url('o')}/api/chat", params={"key": planted("ollama-query")}, headers=headers("ollama"),
                json={"model": "m1", "messages": [{"role": "user", "content": "hello"}], "stream": False,
                      **body_keys("ollama")}, timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["message"]["content"] == "hi"
            r = requests.post(
                f"{proxy.base_url('o')}/api/chat", params={"key": planted("ollamas-query")},
                headers=headers("ollamas"),
                json={"model": "m1", "messages": [{"role": "user", "content": "hi again"}], **body_keys("ollamas")},
                timeout=60)
            assert r.status_code == 200, r.text
            assert len(r.text.strip().splitlines()) == 2, r.text

            # Gemini route, google-genai (it has no extra query parameters): the key as
            # x-goog-api-key, the rest as extra headers and, per request, extra body keys.
            def gemini_client(route: str, vertexai: bool) -> genai.Client:
                extra = {k: v for k, v in headers(route).items() if k != "x-goog-api-key"}
                return genai.Client(vertexai=vertexai, api_key=planted(route + "-goog"),
                                    http_options={"base_url": proxy.base_url("g"), "headers": extra})

            def with_body_keys(route: str) -> types.GenerateContentConfig:
                return types.GenerateContentConfig(http_options=types.HttpOptions(extra_body=body_keys(route)))

            client = gemini_client("gemini", vertexai=False)
            answer = client.models.generate_content(model="gemini-2.5-flash", contents="hello", config=with_body_keys("gemini"))
            assert answer.text == "hi"
            client.close()
            client = gemini_client("vertex", vertexai=True)
            chunks = client.models.generate_content_stream(
                model="gemini-2.0-flash", contents="hello again", config=with_body_keys("vertex"))
            assert "".join(c.text for c in chunks) == "hi"
            client.close()
            # Raw REST with the key as `key=` (and in the header).
            r = httpx.post(
                f"{proxy.base_url('g')}/v1beta/models/gemini-2.5-flash:generateContent",
                params={"key": planted("geminiraw-query")}, headers=headers("geminiraw"),
                json={"contents": [{"parts": [{"text": "raw hello"}], "role": "user"}], **body_keys("geminiraw")},
                timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["candidates"][0]["content"]["parts"] == [{"text": "hi"}]
            log = proxy.log()

        # The secrets really went out: every request reached the upstream with them.
        assert upstream.calls == 8, upstream.requests
        sdk_paths = ("/v1/models/gemini-2.5-flash:generateContent",
                     "/v1beta1/publishers/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
        for method, path, sent_headers, body in upstream.requests:
            assert token.encode() in body, (path, body)
            assert token in sent_headers.get("x-goog-api-key", ""), (path, sent_headers)
            if path in sdk_paths:
                continue  # google-genai cannot add a query parameter
            assert token in path, path  # the key= query parameter

    # Each request was recorded (so the scan below is not vacuous), and nowhere is the token.
    files = recording_files(tree)
    assert len(files) == 8, files
    urls = sorted(json.loads((tree / f).read_text())["request"]["url"] for f in files)
    assert urls == sorted([
        "http://fake.invalid/v1/chat/completions", "http://tool.invalid/search", "http://tool.invalid/extract",
        "http://localhost:11434/api/chat", "http://localhost:11434/api/chat",
        "gemini:///generate_content", "gemini:///generate_content", "vertexai:///generate_content_stream",
    ]), urls
    leaks = sorted(name for name, data in read_tree(tree).items() if token.encode() in data)
    assert leaks == [], f"the secret {token} is in {leaks}"
    assert "SeCrEt" not in "".join(read_tree(tree)[f].decode(errors="replace") for f in files)
    logs = [p for p in (tree.parent / "proxy-logs").glob("*.log")]
    assert logs, "no proxy log was captured"
    hits = [p.name for p in logs if token.encode() in p.read_bytes()]
    assert hits == [], f"the secret is in the proxy log {hits}:\n{log}"
