"""`api-recorder drift`: recorded requests sent again to a live upstream, and the shapes compared.

- against the real model server, the example project's recordings (made against it) have the same
  shape, and a field removed from, or added to, a recording is named by its path;
- against a fake upstream, a changed status, a changed value type and a changed stream are named;
- nothing is written, and the exit status says whether anything drifted.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from conftest import BINARY, REPO, FakeUpstream, Proxy, json_reply, load, read_tree

EXAMPLE = REPO / "Examples" / "python-app"


def drift(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), "drift", *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def test_the_examples_recordings_keep_their_shape_against_the_model_server(model_server, tmp_path):
    project = tmp_path / "python-app"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    routes = ["--provider", "openai", "--provider", "anthropic",
              "--upstream", f"openai={model_server}/v1", "--upstream", f"anthropic={model_server}"]
    before = read_tree(project)
    result = drift(*routes, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    recordings = [line for line in lines if line.endswith(".json: same shape")]
    assert len(recordings) >= 10 and len(recordings) == len(lines) - 1
    assert lines[-1].startswith(f"{len(recordings)} recordings: {len(recordings)} same, 0 drifted, 0 failed")
    assert "tool invocations skipped" in lines[-1]
    assert read_tree(project) == before, "drift writes nothing"

    # A field removed from one recording, and one added to another: each named by its path.
    whole = next(p for p in sorted((project / "tests" / "recordings").glob("*.json"))
                 if not load(p)["response"].get("is_streaming") and "choices" in json.dumps(load(p)["response"]))
    recording = load(whole)
    data = recording["response"]["body"]["__data__"]
    del data["usage"]["total_tokens"]
    data["choices"][0]["message"]["sentiment"] = "cheerful"
    whole.write_text(json.dumps(recording, indent=2))
    result = drift(*routes, str(whole), cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    line = result.stdout.splitlines()[0]
    assert ": drifted: " in line
    assert "added usage.total_tokens" in line and "removed choices[].message.sentiment" in line, line
    assert result.stdout.splitlines()[-1] == "1 recordings: 0 same, 1 drifted, 0 failed"


def test_a_changed_status_type_and_stream_are_named(tree):
    base = "https://api.example.com/v1"
    test_id = "tests/test_drift.py::test_it"
    version = {"live": False}

    def handler(method, path, headers, body):
        request = json.loads(body)
        if request.get("stream"):
            kinds = ["chat.completion.chunk", "usage.summary"] if version["live"] else ["chat.completion.chunk"]
            events = [f"data: {json.dumps({'object': kind, 'id': 'x', 'choices': []})}\n\n".encode() for kind in kinds]
            return 200, "text/event-stream", events + [b"data: [DONE]\n\n"]
        if request["messages"][0]["content"] == "status":
            return json_reply({"error": {"message": "gone", "type": "x"}}, 410 if version["live"] else 200)
        created = "yesterday" if version["live"] else 1
        return json_reply({"id": "c", "object": "chat.completion", "created": created, "model": "m", "choices": []})

    with FakeUpstream(handler) as upstream:
        with Proxy(tree, mode="record", upstreams={"up": upstream.url}, recorded_bases={"up": base}) as proxy:
            client = proxy.client("up", test_id)
            for prompt in ("status", "type"):
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}])
            list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "s"}], stream=True))
        version["live"] = True
        result = drift("--upstream", f"up={upstream.url}", "--recorded-base", f"up={base}", "--test-id", "tests/",
                       str(tree), cwd=tree)
    assert result.returncode == 1, result.stderr
    report = result.stdout
    assert "status 200 -> 410" in report
    assert "created changed from number to string" in report
    assert "events changed from chat.completion.chunk to chat.completion.chunk, usage.summary" in report
    assert report.splitlines()[-1] == "3 recordings: 0 same, 3 drifted, 0 failed"

    nothing = drift("--upstream", f"up={upstream.url}", "--recorded-base", f"up={base}", "--test-id", "other/",
                    str(tree), cwd=tree)
    assert nothing.returncode == 0 and nothing.stdout.strip() == "0 recordings: 0 same, 0 drifted, 0 failed"


def test_a_recording_with_no_route_fails_with_the_flags_to_give(tree):
    (tree / "recordings").mkdir()
    source = next((EXAMPLE / "recordings").glob("*.json"))
    shutil.copy(source, tree / "recordings" / source.name)
    result = drift("--upstream", "other=http://127.0.0.1:9", cwd=tree)
    assert result.returncode == 1
    assert "failed: no route for https://api." in result.stdout
    assert "--upstream NAME=URL" in result.stdout
