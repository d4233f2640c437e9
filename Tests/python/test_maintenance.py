"""Recordings a team can maintain (docs/proxy.md, "Miss diagnostics" and "Pruning"), with the
official SDKs over real sockets:

- a replay miss names the nearest recording and what differs, by JSON path, inside the
  provider's own error object; a renamed test names the test id it was recorded under;
- `serve --report-file` and `api-recorder prune`: after a session that used all but one
  recording, prune lists exactly that one and `--delete` removes it;
- tool loops over the Responses API and Anthropic Messages, recorded twice against the real model
  server, write identical file sets (the ids the client sends back are deterministic), and both
  replay.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anthropic
import openai
import pytest

from conftest import (
    BINARY, MODEL, RECORDED_BASE, FakeUpstream, Proxy, closed_url, json_reply, recording_files, recordings_dir,
)

BASE = "http://fake.invalid/v1"
MODULE = "tests/maintenance/test_diagnostics.py"


def echo(method, path, headers, body):
    """A chat completion answering with the prompt."""
    prompt = json.loads(body)["messages"][-1]["content"]
    return json_reply({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": f"echo: {prompt}"}}],
    })


def record(tree: Path, test_id: str, prompts: list[str]) -> None:
    with FakeUpstream(echo) as upstream:
        with Proxy(tree, mode="record", upstreams={"up": upstream.url}, recorded_bases={"up": BASE}) as proxy:
            client = proxy.client("up", test_id)
            for prompt in prompts:
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}])


def nearest_of(error: openai.APIStatusError) -> dict:
    body = error.response.json()
    assert body["error"]["type"] == "recording_not_found", body
    return body["error"]["nearest"]


# ---------------------------------------------------------------- miss diagnostics


def test_a_changed_prompt_names_the_recording_and_the_path(tree):
    test_id = f"{MODULE}::test_prompt"
    record(tree, test_id, ["Say hello to the team."])
    [recorded] = recording_files(tree)
    with Proxy(tree, mode="replay", upstreams={"up": closed_url()}, recorded_bases={"up": BASE}) as proxy:
        with pytest.raises(openai.NotFoundError) as missed:
            proxy.client("up", test_id).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Say goodbye to the team."}])
        log = proxy.log()
    nearest = nearest_of(missed.value)
    assert nearest["file"] == recorded
    assert nearest["test_id"] == test_id
    assert nearest["differences"] == [
        {"path": "messages[0].content", "recorded": "Say hello to the team.", "requested": "Say goodbye to the team."}
    ]
    # The same words in the message and in the log.
    text = 'messages[0].content: recorded "Say hello to the team.", requested "Say goodbye to the team."'
    assert text in missed.value.response.json()["error"]["message"]
    assert text in log


def test_a_renamed_test_names_the_test_id_it_was_recorded_under(tree):
    record(tree, f"{MODULE}::test_old_name", ["hello"])
    with Proxy(tree, mode="replay", upstreams={"up": closed_url()}, recorded_bases={"up": BASE}) as proxy:
        with pytest.raises(openai.NotFoundError) as missed:
            proxy.client("up", f"{MODULE}::test_new_name").chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hello"}])
    nearest = nearest_of(missed.value)
    assert nearest["test_id"] == f"{MODULE}::test_old_name"
    assert nearest["differences"] == []
    assert any("test_old_name" in hint and "renamed" in hint for hint in nearest["hints"]), nearest


def test_a_miss_with_nothing_of_that_endpoint_says_null(tree):
    record(tree, f"{MODULE}::test_nothing", ["hello"])
    with Proxy(tree, mode="replay", upstreams={"up": closed_url()}, recorded_bases={"up": BASE}) as proxy:
        with pytest.raises(openai.NotFoundError) as missed:
            proxy.client("up", f"{MODULE}::test_nothing").embeddings.create(model="m", input="hello")
    assert nearest_of(missed.value) is None


# ---------------------------------------------------------------- prune


def prune(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), "prune", *args], capture_output=True, text=True, timeout=120)


def test_prune_after_a_session_deletes_exactly_the_unused_recording(tree, tmp_path):
    test_id = f"{MODULE}::test_prune"
    prompts = ["one", "two", "three"]
    record(tree, test_id, prompts)
    files = recording_files(tree)
    assert len(files) == 3
    report = tmp_path / "report.json"
    with Proxy(tree, mode="replay", upstreams={"up": closed_url()}, recorded_bases={"up": BASE},
               extra_args=["--report-file", str(report)]) as proxy:
        client = proxy.client("up", test_id)
        for prompt in prompts[:2]:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}])
    written = json.loads(report.read_text())
    assert written["root"] == str(tree.resolve()) and written["replayed"] == 2 and written["missed"] == 0
    assert len(written["used"]) == 2 and len(written["unused"]) == 1
    [unused] = written["unused"]

    listed = prune(str(report))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0] == f"unused: {unused}"
    assert recording_files(tree) == files, "listing deletes nothing"

    deleted = prune(str(report), "--delete")
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted: {unused}" in deleted.stdout
    assert recording_files(tree) == sorted(set(files) - {unused})


def test_prune_refuses_a_session_that_missed(tree, tmp_path):
    test_id = f"{MODULE}::test_prune_missed"
    record(tree, test_id, ["one"])
    report = tmp_path / "report.json"
    with Proxy(tree, mode="replay", upstreams={"up": closed_url()}, recorded_bases={"up": BASE},
               extra_args=["--report-file", str(report)]) as proxy:
        with pytest.raises(openai.NotFoundError):
            proxy.client("up", test_id).chat.completions.create(model="m", messages=[{"role": "user", "content": "two"}])
    refused = prune(str(report), "--delete")
    assert refused.returncode == 1 and "misses" in refused.stderr
    assert len(recording_files(tree)) == 1


# ---------------------------------------------------------------- stable re-records, real model server

WEATHER = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}


def responses_loop(proxy: Proxy, test_id: str) -> list:
    """A two-turn tool loop over the Responses API; the client sends the first answer's output back."""
    client = proxy.client("m", test_id)
    tools = [{"type": "function", "name": "get_weather", "description": "Weather in a city", "parameters": WEATHER}]
    asked = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.responses.create(model=MODEL, input=asked, tools=tools, tool_choice="required",
                                    max_output_tokens=24, temperature=0)
    output = [item.model_dump(exclude_none=True) for item in first.output]
    calls = [item for item in output if item["type"] == "function_call"]
    assert calls, output
    for item in calls:
        item["arguments"] = json.dumps({"location": "Paris"})  # the tiny model's arguments are not JSON
    answered = asked + output + [{"type": "function_call_output", "call_id": calls[0]["call_id"], "output": "sunny"}]
    second = client.responses.create(model=MODEL, input=answered, tools=tools, max_output_tokens=8, temperature=0)
    return [first.model_dump(), second.model_dump()]


def anthropic_loop(proxy: Proxy, test_id: str) -> list:
    """A two-turn tool loop over Anthropic Messages; the client sends the tool_use block back."""
    client = anthropic.Anthropic(base_url=proxy.base_url("a"), api_key="dummy", max_retries=0, timeout=300,
                                 default_headers={"X-Test-ID": test_id})
    tools = [{"name": "get_weather", "description": "Weather in a city", "input_schema": WEATHER}]
    asked = [{"role": "user", "content": "What is the weather in Paris?"}]
    with client:
        first = client.messages.create(model=MODEL, max_tokens=24, messages=asked, tools=tools,
                                       tool_choice={"type": "any"})
        blocks = [block.model_dump(exclude_none=True) for block in first.content]
        uses = [block for block in blocks if block["type"] == "tool_use"]
        assert uses, blocks
        for block in uses:
            block["input"] = {"location": "Paris"}
        answered = asked + [
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0]["id"], "content": "sunny"}]},
        ]
        second = client.messages.create(model=MODEL, max_tokens=8, messages=answered, tools=tools)
        return [first.model_dump(), second.model_dump()]


@pytest.mark.parametrize("api", ["responses", "anthropic"])
def test_a_tool_loop_recorded_twice_writes_the_same_files_and_replays(tmp_path, model_server, api):
    loop = responses_loop if api == "responses" else anthropic_loop
    upstreams = {"m": f"{model_server}/v1", "a": model_server}
    bases = {"m": RECORDED_BASE, "a": "http://upstream.invalid"}
    test_id = f"{MODULE}::test_{api}_loop"
    roots = [tmp_path / "first", tmp_path / "second"]
    recorded = []
    for root in roots:
        with Proxy(root, mode="record", upstreams=upstreams, recorded_bases=bases) as proxy:
            recorded.append(loop(proxy, test_id))
    names = [recording_files(root) for root in roots]
    assert len(names[0]) == 2, names
    assert names[0] == names[1], "the second turn hashes the same in both recordings"
    folder = recordings_dir(roots[0], test_id)
    assert all((roots[0] / name).parent == folder for name in names[0])

    for root, live in zip(roots, recorded):
        with Proxy(root, mode="replay", upstreams={"m": closed_url(), "a": closed_url()}, recorded_bases=bases) as proxy:
            assert loop(proxy, test_id) == live
            report = proxy.report()
        assert (report["replayed"], report["missed"], report["recorded"]) == (2, 0, 0), report
