"""`api-recorder run -- COMMAND`: the proxy for the length of one command, found by the official
SDKs through the variables they read themselves (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, OLLAMA_HOST,
GOOGLE_GEMINI_BASE_URL; Tavily's client through API_RECORDER_TAVILY_URL), with clients constructed
with no arguments but the key.

- every preset's SDK, unmodified, recorded against a fake upstream under `--upstream`, whose
  recordings name the provider's public base URL, then replayed with no upstream and no keys;
- against the real model server: `run --provider openai` records and replays a script whose
  `OpenAI()` client is built at import time;
- the exit status, the summary on stderr, the report file, and signals passed on to the command.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BINARY, MODEL, FakeUpstream, json_reply, load

SDK_SCRIPT = r'''
import json, os
from anthropic import Anthropic
from google import genai
from openai import OpenAI
import ollama
from tavily import TavilyClient

# Built at import time, with nothing but what the environment holds.
openai_client = OpenAI(max_retries=0)
anthropic_client = Anthropic(max_retries=0)
ollama_client = ollama.Client()
gemini_client = genai.Client()
tavily_client = TavilyClient(api_base_url=os.environ["API_RECORDER_TAVILY_URL"])

hi = [{"role": "user", "content": "hi"}]
print(json.dumps({
    "openai": openai_client.chat.completions.create(model="m", messages=hi).choices[0].message.content,
    "anthropic": anthropic_client.messages.create(model="m", max_tokens=8, messages=hi).content[0].text,
    "ollama": ollama_client.chat(model="m", messages=hi).message.content,
    "gemini": gemini_client.models.generate_content(model="gemini-2.0-flash", contents="hi").text,
    "tavily": tavily_client.search("weather")["results"][0]["title"],
}))
'''

EXPECTED = {"openai": "openai says hi", "anthropic": "anthropic says hi", "ollama": "ollama says hi",
            "gemini": "gemini says hi", "tavily": "tavily says hi"}


def fake_providers(method: str, path: str, headers: dict[str, str], body: bytes):
    """One upstream that answers as each provider would."""
    if path == "/v1/chat/completions":
        return json_reply({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "openai says hi"},
                         "finish_reason": "stop"}]})
    if path == "/v1/messages":
        return json_reply({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "text", "text": "anthropic says hi"}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 3}})
    if path == "/api/chat":
        return json_reply({
            "model": "m", "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "ollama says hi"}, "done": True, "done_reason": "stop"})
    if "/models/gemini-2.0-flash:generateContent" in path:  # v1beta, or v1 under a custom base URL
        return json_reply({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "gemini says hi"}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 3, "totalTokenCount": 4},
            "modelVersion": "gemini-2.0-flash", "responseId": "r1"})
    if path == "/search":
        return json_reply({"query": "weather", "answer": None, "images": [], "response_time": 0.1,
                           "results": [{"title": "tavily says hi", "url": "https://example.com", "content": "c",
                                        "score": 0.9, "raw_content": None}]})
    return json_reply({"error": {"message": f"unexpected {method} {path}"}}, status=404)


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the variables `run` sets or reads, plus `extra`."""
    dropped = {"API_RECORDER_MODE", "OGX_TEST_INFERENCE_MODE", "LLAMA_STACK_TEST_INFERENCE_MODE", "API_RECORDER_URL",
               "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN",
               "OLLAMA_HOST", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "TAVILY_API_KEY"}
    environment = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("API_RECORDER_")}
    environment.update(extra)
    return environment


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), "run", *args], cwd=cwd, env=env or clean_environment(), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def recorded_urls(root: Path) -> set[str]:
    return {load(path)["request"]["url"] for path in root.rglob("*.json")}


def test_every_presets_sdk_records_through_its_own_variable_and_replays_without_keys(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(SDK_SCRIPT)
    keys = {"OPENAI_API_KEY": "sk-openai-not-a-secret", "ANTHROPIC_API_KEY": "sk-ant-not-a-secret",
            "GEMINI_API_KEY": "gemini-not-a-secret", "TAVILY_API_KEY": "tvly-not-a-secret"}
    with FakeUpstream(fake_providers) as upstream:
        base = upstream.url.removesuffix("/v1")
        routes = [f"--upstream=openai={base}/v1"] + [f"--upstream={name}={base}"
                                                     for name in ("anthropic", "ollama", "gemini", "tavily")]
        recorded = run(["--mode", "record", *routes, "--", sys.executable, str(script)], tmp_path,
                       env=clean_environment(**keys))
        assert recorded.returncode == 0, recorded.stderr
        assert json.loads(recorded.stdout) == EXPECTED
        assert upstream.calls == 5
    # Each preset's recordings name its public base URL, not where they were forwarded.
    assert recorded_urls(tmp_path / "recordings") == {
        "https://api.openai.com/v1/chat/completions", "https://api.anthropic.com/v1/messages",
        "http://127.0.0.1:11434/api/chat", "gemini:///generate_content", "https://api.tavily.com/search"}
    assert "mode record: 0 replayed, 0 missed, 5 recorded" in recorded.stderr
    for path in (tmp_path / "recordings").rglob("*.json"):
        assert not any(key in path.read_text() for key in keys.values()), path

    # Replayed: no upstream, no keys (placeholders let the SDKs construct).
    replayed = run(["--", sys.executable, str(script)], tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == EXPECTED
    assert "mode replay: 5 replayed, 0 missed" in replayed.stderr


def test_a_replay_miss_exits_with_one_and_names_it(tmp_path):
    script = tmp_path / "ask.py"
    script.write_text(
        "from openai import OpenAI\n"
        "try:\n"
        "    OpenAI(max_retries=0).chat.completions.create(model='m', messages=[{'role': 'user', 'content': 'hi'}])\n"
        "except Exception as error:\n"
        "    print('caught', type(error).__name__)\n")
    result = run(["--provider", "openai", "--", sys.executable, str(script)], tmp_path)
    assert result.returncode == 1
    assert "caught NotFoundError" in result.stdout
    assert "api-recorder: missed POST https://api.openai.com/v1/chat/completions" in result.stderr
    allowed = run(["--provider", "openai", "--allow-misses", "--", sys.executable, str(script)], tmp_path)
    assert allowed.returncode == 0, allowed.stderr


def test_the_report_file_is_written_and_the_proxy_is_gone_after_the_command(tmp_path):
    report = tmp_path / "report.json"
    result = run(["--report-file", str(report), "--", sys.executable, "-c",
                  "import os; print(os.environ['API_RECORDER_URL'])"], tmp_path)
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert json.loads(report.read_text())["mode"] == "replay"
    import urllib.request
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/__recorder/report", timeout=5)


@pytest.mark.parametrize("number, status", [(signal.SIGTERM, 7), (signal.SIGINT, 8)])
def test_signals_are_passed_on_to_the_command(tmp_path, number, status):
    code = (
        "import signal, sys, time\n"
        f"signal.signal({int(number)}, lambda *a: (print('got it', flush=True), sys.exit({status})))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n")
    process = subprocess.Popen([str(BINARY), "run", "--", sys.executable, "-c", code], cwd=tmp_path,
                               env=clean_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    try:
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(number)
        assert process.wait(30) == status
        assert process.stdout.read().strip() == "got it"
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_run_records_and_replays_an_openai_client_built_at_import_against_the_real_model_server(
        tmp_path, model_server):
    script = tmp_path / "app.py"
    script.write_text(
        "from openai import OpenAI\n"
        "client = OpenAI(max_retries=0, timeout=120)  # the key and base URL come from the environment\n"
        f"answer = client.chat.completions.create(model={MODEL!r}, max_tokens=8, temperature=0,\n"
        "    messages=[{'role': 'user', 'content': 'Say hello.'}])\n"
        "print(answer.choices[0].message.content)\n")
    recorded = run(["--mode", "record-if-missing", "--provider", "openai", "--upstream", f"openai={model_server}/v1",
                    "--", sys.executable, str(script)], tmp_path, env=clean_environment(OPENAI_API_KEY="unused"))
    assert recorded.returncode == 0, recorded.stderr
    assert recorded_urls(tmp_path / "recordings") == {"https://api.openai.com/v1/chat/completions"}
    replayed = run(["--provider", "openai", "--", sys.executable, str(script)], tmp_path,
                   env=clean_environment(OPENAI_API_KEY="sk-anything"))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert "1 replayed, 0 missed" in replayed.stderr
