"""The pytest plugin (python/api_recorder), run as users run it: inner pytest sessions (pytester,
in subprocesses) whose tests use the official `openai` SDK with no test hooks at all.

- inactive unless a mode is set (option, ini, environment);
- clients built at import time reach the proxy; recordings go beside the test file under the
  node id, name the public base URL, and replay with no upstream and no key;
- a miss fails the test that made it, with the diagnosis, even when the code caught the error;
- the `api_recorder` fixture; the session report and `prune`; one proxy per xdist worker;
- under `api-recorder run`, the plugin uses that proxy; a killed pytest takes its proxy down.
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

from conftest import BINARY, REPO, FakeUpstream, json_reply, load

pytest_plugins = ["pytester"]

PLUGIN = ["-p", "api_recorder.pytest_plugin", "-p", "no:cacheprovider"]

APP_TEST = '''
from openai import OpenAI

client = OpenAI(max_retries=0)  # built when the module is imported, from the environment alone


def ask(prompt):
    return client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}])


def test_hello():
    assert ask("hello").choices[0].message.content == "echo: hello"


def test_swallowed():
    try:
        answer = ask("PROMPT").choices[0].message.content
    except Exception as error:  # the code under test hides the failure
        answer = f"sorry: {type(error).__name__}"
    assert answer
'''


def echo(method: str, path: str, headers: dict[str, str], body: bytes):
    prompt = json.loads(body)["messages"][-1]["content"] if body else ""
    return json_reply({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo: {prompt}"},
                     "finish_reason": "stop"}]})


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose inner sessions import the plugin from the source tree and run the built
    binary, with none of the variables the plugin sets or reads inherited."""
    for name in list(os.environ):
        if name.startswith("API_RECORDER_") or name.endswith("_BASE_URL") or name.endswith("_API_KEY") \
                or name in ("OLLAMA_HOST", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER") or name.endswith("_INFERENCE_MODE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "python"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("API_RECORDER_BIN", str(BINARY))
    return pytester


def write_app(pytester: pytest.Pytester, prompt: str = "swallowed") -> Path:
    tests = pytester.path / "tests"
    tests.mkdir(exist_ok=True)
    path = tests / "test_app.py"
    path.write_text(APP_TEST.replace("PROMPT", prompt))
    return path


def record(pytester: pytest.Pytester, upstream: FakeUpstream, *args: str) -> pytest.RunResult:
    """Records through the plugin, with a key (the placeholder is never forwarded)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")
        return pytester.runpytest_subprocess(
            *PLUGIN, "--api-recorder-mode", "record", f"--api-recorder-upstream=openai={upstream.url}", *args)


def recordings(pytester: pytest.Pytester) -> dict[str, dict]:
    return {str(p.relative_to(pytester.path)): load(p) for p in pytester.path.rglob("recordings/*.json")}


def test_without_a_mode_the_plugin_does_nothing(inner):
    inner.makepyfile(test_idle="""
        import os
        def test_nothing_is_set():
            assert "OPENAI_BASE_URL" not in os.environ and "API_RECORDER_URL" not in os.environ
    """)
    inner.runpytest_subprocess(*PLUGIN).assert_outcomes(passed=1)


def test_recording_without_a_key_forwards_nothing_and_records_nothing(inner):
    write_app(inner)
    with FakeUpstream(echo) as upstream:
        result = inner.runpytest_subprocess(
            *PLUGIN, "--api-recorder-mode", "record-if-missing", f"--api-recorder-upstream=openai={upstream.url}")
        assert upstream.calls == 0
    result.assert_outcomes(passed=1, failed=1)  # test_swallowed caught the 401
    result.stdout.fnmatch_lines(["*AuthenticationError*placeholder*OPENAI_API_KEY*"])
    assert recordings(inner) == {}


def test_record_then_replay_with_a_client_built_at_import(inner):
    write_app(inner)
    with FakeUpstream(echo) as upstream:
        record(inner, upstream).assert_outcomes(passed=2)
        assert upstream.calls == 2
    files = recordings(inner)
    assert len(files) == 2 and all(name.startswith("tests/recordings/") for name in files), files
    assert {f["test_id"] for f in files.values()} == {"tests/test_app.py::test_hello", "tests/test_app.py::test_swallowed"}
    assert {f["request"]["url"] for f in files.values()} == {"https://api.openai.com/v1/chat/completions"}
    # Replayed: the upstream is gone, no key is set.
    result = inner.runpytest_subprocess(*PLUGIN, "--api-recorder-mode", "replay")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*api-recorder: mode replay: 2 replayed, 0 missed*"])


def test_a_miss_fails_the_test_with_its_diagnosis_even_when_the_code_caught_the_error(inner):
    write_app(inner, prompt="swallowed")
    with FakeUpstream(echo) as upstream:
        record(inner, upstream).assert_outcomes(passed=2)
    write_app(inner, prompt="changed")
    result = inner.runpytest_subprocess(*PLUGIN, "--api-recorder-mode", "replay")
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert "test_swallowed" in text and "1 request of this test had no recording in replay mode" in text
    assert "POST https://api.openai.com/v1/chat/completions" in text
    assert 'messages[0].content: recorded "swallowed", requested "changed"' in text


def test_a_miss_in_a_failing_test_adds_its_diagnosis_to_the_failure(inner):
    inner.makepyfile(test_failing="""
        from openai import OpenAI
        def test_it():
            OpenAI(max_retries=0).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    """)
    result = inner.runpytest_subprocess(*PLUGIN, "--api-recorder-mode", "replay")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NotFoundError*", "*api-recorder: requests with no recording*",
                                 "*1 request of this test had no recording*"])


@pytest.mark.parametrize("how", ["ini", "environment"])
def test_the_ini_option_or_the_environment_turns_it_on(inner, monkeypatch, how):
    if how == "ini":
        inner.makeini("[pytest]\napi_recorder_mode = replay\n")
    else:
        monkeypatch.setenv("API_RECORDER_MODE", "replay")
    inner.makepyfile(test_on="""
        import os
        def test_pointed_at_the_proxy():
            assert os.environ["OPENAI_BASE_URL"] == os.environ["API_RECORDER_URL"] + "/openai"
            assert os.environ["OLLAMA_HOST"] == os.environ["API_RECORDER_URL"] + "/ollama"
            assert os.environ["OPENAI_API_KEY"] == "api-recorder-placeholder-key"
    """)
    inner.runpytest_subprocess(*PLUGIN).assert_outcomes(passed=1)


def test_a_bad_mode_is_a_usage_error(inner, monkeypatch):
    monkeypatch.setenv("API_RECORDER_MODE", "sometimes")
    inner.makepyfile(test_x="def test_x(): pass")
    result = inner.runpytest_subprocess(*PLUGIN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*api-recorder: mode 'sometimes' is not one of*"])


def test_the_fixture_gives_urls_mode_test_id_and_counts(inner):
    inner.makepyfile(test_fixture="""
        from openai import OpenAI
        def test_it(api_recorder):
            assert api_recorder.mode == "record"
            assert api_recorder.test_id == "test_fixture.py::test_it"
            assert api_recorder.base_url("openai") == api_recorder.url + "/openai"
            assert set(api_recorder.urls) == {"openai", "anthropic", "gemini", "ollama", "tavily"}
            assert api_recorder.counts()["recorded"] == 0
            OpenAI(max_retries=0).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
            assert api_recorder.counts() == {"replayed": 0, "missed": 0, "recorded": 1, "passed_through": 0, "errors": 0}
            assert api_recorder.misses() == []
    """)
    with FakeUpstream(echo) as upstream:
        record(inner, upstream).assert_outcomes(passed=1)


def test_the_fixture_without_the_plugin_on_says_how_to_turn_it_on(inner):
    inner.makepyfile(test_off="def test_it(api_recorder): pass")
    result = inner.runpytest_subprocess(*PLUGIN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs the api-recorder plugin on: pass --api-recorder-mode MODE*"])


def test_each_xdist_worker_has_its_own_proxy_and_the_report_adds_them_up(inner, tmp_path):
    pytest.importorskip("xdist")
    names = [f"test_{i}" for i in range(6)]
    inner.makepyfile(test_many="\n".join(
        "import os, time\n"
        "from openai import OpenAI\n"
        "client = OpenAI(max_retries=0)\n"
        "def record_worker():\n"
        "    with open(os.environ['WORKERS_FILE'], 'a') as f:\n"
        "        f.write(os.environ['PYTEST_XDIST_WORKER'] + ' ' + os.environ['API_RECORDER_URL'] + '\\n')\n"
        .splitlines() + [
            f"def {name}():\n    record_worker()\n    time.sleep(0.2)\n"
            f"    assert client.chat.completions.create(model='m', messages=[{{'role': 'user', 'content': '{name}'}}])"
            f".choices[0].message.content == 'echo: {name}'\n"
            for name in names]))
    workers = tmp_path / "workers.txt"
    os.environ["WORKERS_FILE"] = str(workers)
    try:
        with FakeUpstream(echo) as upstream:
            record(inner, upstream, "-n", "2").assert_outcomes(passed=6)
        workers.unlink()
        # An extra recording that no test uses: the merged report must name it unused.
        existing = sorted((inner.path / "recordings").glob("*.json"))
        (inner.path / "recordings" / ("0" * 64 + ".json")).write_text(existing[0].read_text())
        report = tmp_path / "report.json"
        inner.runpytest_subprocess(*PLUGIN, "--api-recorder-mode", "replay", "-n", "2",
                                   "--api-recorder-report", str(report)).assert_outcomes(passed=6)
    finally:
        del os.environ["WORKERS_FILE"]
    by_worker: dict[str, set[str]] = {}
    for line in workers.read_text().splitlines():
        worker, url = line.split()
        by_worker.setdefault(worker, set()).add(url)
    assert sorted(by_worker) == ["gw0", "gw1"], by_worker
    assert all(len(urls) == 1 for urls in by_worker.values()) and by_worker["gw0"] != by_worker["gw1"]
    merged = json.loads(report.read_text())
    assert merged["replayed"] == 6 and merged["missed"] == 0
    assert merged["unused"] == ["recordings/" + "0" * 64 + ".json"]
    pruned = subprocess.run([str(BINARY), "prune", str(report)], capture_output=True, text=True, timeout=60)
    assert pruned.returncode == 0, pruned.stderr
    assert "unused: recordings/" + "0" * 64 + ".json" in pruned.stdout


def test_under_api_recorder_run_the_plugin_uses_that_proxy(inner):
    write_app(inner)
    environment = {**os.environ}
    with FakeUpstream(echo) as upstream:
        recorded = subprocess.run(
            [str(BINARY), "run", "--mode", "record", "--upstream", f"openai={upstream.url}", "--",
             sys.executable, "-m", "pytest", *PLUGIN, "-q"],
            cwd=inner.path, env={**environment, "OPENAI_API_KEY": "sk-test-not-a-secret"}, capture_output=True,
            text=True, timeout=300)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    # One proxy, run's: it counted the session; the plugin named each test.
    assert "api-recorder: mode record: 0 replayed, 0 missed, 2 recorded" in recorded.stderr
    assert {f["test_id"] for f in recordings(inner).values()} == {
        "tests/test_app.py::test_hello", "tests/test_app.py::test_swallowed"}
    replayed = subprocess.run(
        [str(BINARY), "run", "--", sys.executable, "-m", "pytest", *PLUGIN, "-q"],
        cwd=inner.path, env=environment, capture_output=True, text=True, timeout=300)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "2 replayed, 0 missed" in replayed.stderr


def test_a_killed_pytest_takes_its_proxy_down(inner, tmp_path):
    marker = tmp_path / "proxy-url"
    inner.makepyfile(test_slow=f"""
        import os, time
        def test_waits():
            open({str(marker)!r}, "w").write(os.environ["API_RECORDER_URL"])
            time.sleep(120)
    """)
    process = subprocess.Popen([sys.executable, "-m", "pytest", *PLUGIN, "--api-recorder-mode", "replay"],
                               cwd=inner.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the inner test never started"
        children = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True,
                                                       text=True).stdout.split()]
        assert children, "no proxy process under pytest"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in children) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in children)
    finally:
        if process.poll() is None:
            process.kill()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0]
    except (OSError, IndexError):
        return "zombie"


def test_a_proxy_that_dies_fails_the_tests_after_it_with_the_reason(inner):
    inner.makepyfile(test_dies="""
        import os, signal, subprocess
        def test_kills_the_proxy():
            children = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True)
            for pid in children.stdout.split():
                os.kill(int(pid), signal.SIGKILL)
        def test_after():
            pass
    """)
    result = inner.runpytest_subprocess(*PLUGIN, "--api-recorder-mode", "replay")
    text = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, text
    assert "INTERNALERROR" not in text
    assert "the proxy did not answer, so this test's requests are unchecked" in text
    assert "could not set the test id on the proxy" in text
