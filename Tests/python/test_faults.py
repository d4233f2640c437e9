"""Faults on demand, the journal and the metrics, met by the official SDKs over real sockets:

- an `openai` client with `max_retries=2` under `status=429; retry-after=0; times=2` succeeds on
  its third try, and the journal of that test shows two `fault` entries and one `replayed`;
- an `anthropic` client under `status=529` raises its `OverloadedError`;
- `cut-after=3` on a stream raises the SDK's error after three events; `delay=300ms` is seen by
  the client;
- `/__recorder/metrics` parses with `prometheus_client` and its counters match the journal;
- the pytest plugin's `api_recorder_fault` mark.

The fake upstream only makes the recordings that are then replayed; every fault comes from the
proxy, in replay mode.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import REPO, FakeUpstream, Proxy, json_reply
from test_pytest_plugin import PLUGIN, inner  # noqa: F401 (the fixture)

sys.path.insert(0, str(REPO / "python"))
from api_recorder import ControlClient  # noqa: E402

pytest_plugins = ["pytester"]

BASE = "https://api.openai.com/v1"
TEST_ID = "tests/test_retries.py::test_it"
MESSAGES = [{"role": "user", "content": "Say hello."}]
STREAM_WORDS = ["one ", "two ", "three ", "four ", "five ", "six"]


def upstream_handler(method, path, headers, body):
    request = json.loads(body)
    if request.get("stream"):
        events = [
            f"data: {json.dumps({'id': 'c1', 'object': 'chat.completion.chunk', 'created': 1, 'model': 'm', 'choices': [{'index': 0, 'delta': {'content': word}, 'finish_reason': None}]})}\n\n".encode()
            for word in STREAM_WORDS]
        return 200, "text/event-stream", events + [b"data: [DONE]\n\n"]
    return json_reply({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}]})


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A tree with a chat completion and a stream of six words recorded for TEST_ID."""
    root = tmp_path_factory.mktemp("faults") / "root"
    with FakeUpstream(upstream_handler) as upstream:
        with Proxy(root, mode="record", upstreams={"openai": upstream.url}, recorded_bases={"openai": BASE}) as proxy:
            client = proxy.client("openai", TEST_ID)
            client.chat.completions.create(model="m", messages=MESSAGES)
            assert len(list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))) == 6
    return root


@pytest.fixture
def replay(recorded):
    with Proxy(recorded, mode="replay", upstreams={"openai": "http://127.0.0.1:9", "anthropic": "http://127.0.0.1:9"},
               recorded_bases={"openai": BASE}, extra_args=["--adapter", "anthropic=http"]) as proxy:
        yield proxy


def sdk(proxy: Proxy, *, retries: int = 0, fault: str | None = None) -> openai.OpenAI:
    headers = {"X-Test-ID": TEST_ID}
    if fault:
        headers["X-Recorder-Fault"] = fault
    return openai.OpenAI(api_key="sk-unused", base_url=proxy.base_url("openai"), max_retries=retries,
                         default_headers=headers)


def test_a_client_with_two_retries_succeeds_on_its_third_try(replay):
    control = ControlClient(replay.url)
    control.set_faults(TEST_ID, [{"spec": "status=429; retry-after=0; times=2"}])
    attempts: list[int] = []
    client = openai.OpenAI(
        api_key="sk-unused", base_url=replay.base_url("openai"), max_retries=2, default_headers={"X-Test-ID": TEST_ID},
        http_client=openai.DefaultHttpxClient(event_hooks={"response": [lambda r: attempts.append(r.status_code)]}))
    answer = client.chat.completions.create(model="m", messages=MESSAGES)
    assert answer.choices[0].message.content == "hello"
    assert attempts == [429, 429, 200]
    journal = control.journal(TEST_ID)
    assert [entry["outcome"] for entry in journal] == ["fault", "fault", "replayed"]
    assert [entry["status"] for entry in journal] == [429, 429, 200]
    assert journal[0]["fault"] == "status=429; retry-after=0; times=2"
    assert control.test_report(TEST_ID)["faults"] == 2
    # Spent: the next request is answered as recorded.
    assert sdk(replay).chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content == "hello"


def test_without_retries_the_client_sees_the_rate_limit_in_openais_shape(replay):
    with pytest.raises(openai.RateLimitError) as raised:
        sdk(replay, fault="status=429; retry-after=7").chat.completions.create(model="m", messages=MESSAGES)
    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.body["type"] == "rate_limit_error"


def test_an_anthropic_client_under_529_raises_its_overloaded_error(replay):
    client = anthropic.Anthropic(api_key="sk-ant-unused", base_url=replay.base_url("anthropic"), max_retries=0,
                                 default_headers={"X-Recorder-Fault": "status=529", "X-Test-ID": TEST_ID})
    with pytest.raises(anthropic.OverloadedError) as raised:
        client.messages.create(model="claude-x", max_tokens=8, messages=MESSAGES)
    assert raised.value.status_code == 529
    assert raised.value.body["error"]["type"] == "overloaded_error"


def test_a_stream_cut_after_three_events_raises_the_sdks_error_after_three_chunks(replay):
    received: list[str] = []
    with pytest.raises((openai.APIConnectionError, httpx.TransportError)):
        for chunk in sdk(replay, fault="cut-after=3").chat.completions.create(
                model="m", messages=MESSAGES, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == STREAM_WORDS[:3]
    entry = ControlClient(replay.url).journal(TEST_ID)[-1]
    assert entry["outcome"] == "fault" and entry["fault"] == "cut-after=3"


def test_a_delay_before_the_first_byte_and_between_events_is_seen_by_the_client(replay):
    started = time.monotonic()
    sdk(replay).chat.completions.create(model="m", messages=MESSAGES)
    plain = time.monotonic() - started
    started = time.monotonic()
    sdk(replay, fault="delay=300ms").chat.completions.create(model="m", messages=MESSAGES)
    delayed = time.monotonic() - started
    assert delayed >= 0.3 > plain, (delayed, plain)

    stamps = []
    for _ in sdk(replay, fault="event-delay=100ms").chat.completions.create(model="m", messages=MESSAGES, stream=True):
        stamps.append(time.monotonic())
    gaps = [later - earlier for earlier, later in zip(stamps, stamps[1:])]
    assert len(stamps) == 6 and min(gaps) >= 0.09, gaps


def test_a_malformed_body_fails_the_sdks_parsing(replay):
    with pytest.raises(Exception) as raised:
        sdk(replay, fault="malformed").chat.completions.create(model="m", messages=MESSAGES)
    assert not isinstance(raised.value, openai.APIStatusError)


def test_metrics_parse_with_prometheus_client_and_match_the_journal(replay):
    client = sdk(replay)
    client.chat.completions.create(model="m", messages=MESSAGES)
    list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "not recorded"}])
    with pytest.raises(openai.InternalServerError):
        sdk(replay, fault="status=500").chat.completions.create(model="m", messages=MESSAGES)
    control = ControlClient(replay.url)
    journal = Counter((entry["route"], entry["outcome"]) for entry in control.journal(every_test=True))
    assert journal == {("openai", "replayed"): 2, ("openai", "missed"): 1, ("openai", "fault"): 1}
    families = {family.name: family for family in text_string_to_metric_families(control.metrics())}
    requests = Counter({
        (sample.labels["route"], sample.labels["outcome"]): int(sample.value)
        for sample in families["api_recorder_requests"].samples if sample.name == "api_recorder_requests_total"})
    assert requests == journal
    assert families["api_recorder_in_flight_exchanges"].samples[0].value == 0


def test_the_pytest_mark_injects_faults_into_that_test_only(inner, recorded):
    conftest_root = inner.path
    (conftest_root / "tests").mkdir()
    # The recordings of TEST_ID, under the test's own node id's folder.
    for source in recorded.rglob("*.json"):
        target = conftest_root / source.relative_to(recorded)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    (conftest_root / "tests" / "test_retries.py").write_text(f'''
import openai
import pytest

client = openai.OpenAI(max_retries=2)
MESSAGES = {MESSAGES!r}


def ask():
    return client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content


@pytest.mark.api_recorder_fault("status=503; times=1")
@pytest.mark.api_recorder_fault(status=429, retry_after=0, times=1)
def test_it(api_recorder):
    assert ask() == "hello"
    assert [(e["outcome"], e["status"]) for e in api_recorder.journal()] == [
        ("fault", 503), ("fault", 429), ("replayed", 200)]


@pytest.mark.api_recorder_fault(status=529)
def test_overloaded():
    with pytest.raises(openai.InternalServerError):
        ask()


@pytest.mark.api_recorder_fault(status="soon")
def test_a_bad_mark():
    pass
''')
    os.environ.pop("OPENAI_API_KEY", None)
    result = inner.runpytest_subprocess(*PLUGIN, "--api-recorder-mode", "replay")
    result.assert_outcomes(passed=2, errors=1)  # a refused mark is the test's set-up failing
    result.stdout.fnmatch_lines(["*test_a_bad_mark*", "*api_recorder_fault marks were refused*status*"])
