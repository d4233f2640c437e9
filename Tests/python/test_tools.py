"""Tool calls from Python (`api_recorder.recorded_tool`, `invoke_tool`) through the proxy's tool
endpoint, in the reference's tool format:

- a local function recorded under the pytest plugin replays with the function broken, so it is
  never called, and its file is byte for byte what the Swift `Recorder.invokeTool` (behind
  `recordedTool`, here through `api-recorder tool`) writes for the same call;
- sync and async functions; pydantic models and dataclasses stored as JSON and given back as
  dicts unless `returns` names the type, in every mode;
- a raised error replays as the same exception type where its module is already imported, as
  `RecordedToolError` otherwise (a recording never makes Python import a module);
- a changed argument is a miss whose diagnosis names the `kwargs` path, and fails the test;
- every tool recording of the reference's corpus replays through `invoke_tool`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BINARY, REPO, Proxy, load
from test_pytest_plugin import PLUGIN, inner  # noqa: F401 (the fixture)

sys.path.insert(0, str(REPO / "python"))  # the package from the source tree, as the inner sessions use it
import api_recorder  # noqa: E402
from api_recorder import RecordedToolError, RecordingNotFoundError, invoke_tool, recorded_tool  # noqa: E402

pytest_plugins = ["pytester"]

TOOLS = '''
import dataclasses
import os

import pydantic

from api_recorder import recorded_tool


class QuotaExceeded(Exception):
    pass


class Hit(pydantic.BaseModel):
    title: str
    score: float


@dataclasses.dataclass
class Row:
    id: int
    name: str


def broken():
    if os.environ.get("TOOLS_BROKEN"):
        raise AssertionError("the real tool was called in replay mode")


@recorded_tool("db", "query")
def query(sql: str, limit: int = 10):
    broken()
    return {"rows": [[1, "Ada"], [2, "Grace"]], "sql": sql, "limit": limit, "ratio": 0.1}


@recorded_tool("tavily", "web_search")
async def web_search(query: str, top_k: int = 3):
    broken()
    return [Hit(title=f"About {query}", score=0.98765)]


@recorded_tool("tavily", "best_hit", returns=Hit)
async def best_hit(query: str):
    broken()
    return Hit(title=f"Best for {query}", score=0.5)


@recorded_tool("db", "row")
def row(id: int):
    broken()
    return Row(id=id, name="Ada")


@recorded_tool("db", "row", returns=Row)
def typed_row(id: int):
    broken()
    return Row(id=id, name="Grace")


@recorded_tool("billing", "charge")
def charge(amount: int):
    broken()
    raise QuotaExceeded(f"no quota left for {amount}")


@recorded_tool("math", "divide")
def divide(a: int, b: int):
    broken()
    return a / b


@recorded_tool("local", "fails_oddly")
def fails_oddly():
    broken()
    class Unimportable(Exception):
        pass
    raise Unimportable("defined inside the function")
'''

TESTS = '''
import asyncio

import pytest

import tools
from api_recorder import RecordedToolError


def test_query():
    assert tools.query("select 1") == {"rows": [[1, "Ada"], [2, "Grace"]], "sql": "select 1", "limit": 10, "ratio": 0.1}


def test_async_search_gives_dicts():
    assert asyncio.run(tools.web_search("Paris")) == [{"title": "About Paris", "score": 0.98765}]


def test_async_search_rebuilds_a_named_type():
    hit = asyncio.run(tools.best_hit("Paris"))
    assert isinstance(hit, tools.Hit) and hit.title == "Best for Paris"


def test_dataclasses():
    assert tools.row(1) == {"id": 1, "name": "Ada"}
    assert tools.typed_row(2) == tools.Row(id=2, name="Grace")


def test_errors_replay_as_their_own_type():
    with pytest.raises(tools.QuotaExceeded, match="no quota left for 5"):
        tools.charge(5)
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        tools.divide(1, 0)
    with pytest.raises((RecordedToolError, Exception)) as raised:
        tools.fails_oddly()
    assert "defined inside the function" in str(raised.value)
'''


def write_project(pytester: pytest.Pytester) -> None:
    tests = pytester.path / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "tools.py").write_text(TOOLS)
    (tests / "test_tools.py").write_text(TESTS)


def tool_files(root: Path) -> dict[str, dict]:
    return {str(p.relative_to(root)): load(p) for p in root.rglob("recordings/*.json")}


def test_local_functions_record_under_pytest_and_replay_without_being_called(inner, monkeypatch):
    write_project(inner)
    inner.runpytest_subprocess(*PLUGIN, "--api-recorder-mode", "record").assert_outcomes(passed=5)
    files = tool_files(inner.path)
    assert len(files) == 8, sorted(files)
    assert all(name.startswith("tests/recordings/") for name in files)
    search = next(f for f in files.values() if f["request"]["kwargs"] == {"query": "Paris"}
                  and f["request"]["tool_name"] == "web_search")
    assert search["test_id"] == "tests/test_tools.py::test_async_search_gives_dicts"
    assert search["response"]["body"] == [{"title": "About Paris", "score": 0.98765}]
    charge = next(f for f in files.values() if f["request"]["tool_name"] == "charge")
    assert charge["response"]["is_exception"] is True
    assert charge["response"]["exception_data"]["type"] == "tools.QuotaExceeded"

    # Replayed with every function broken: none is called, all five tests pass.
    monkeypatch.setenv("TOOLS_BROKEN", "1")
    result = inner.runpytest_subprocess(*PLUGIN, "--api-recorder-mode", "replay")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*api-recorder: mode replay: 8 replayed, 0 missed*"])
    assert tool_files(inner.path) == files


def test_the_file_is_the_one_swifts_invoke_tool_writes(inner, tmp_path):
    """The same provider, name, kwargs and result, recorded by the plugin and by the Swift
    recorder (`api-recorder tool` calls `Recorder.invokeTool`, as `recordedTool` does)."""
    write_project(inner)
    inner.runpytest_subprocess(*PLUGIN, "--api-recorder-mode", "record", "-k", "test_query").assert_outcomes(passed=1)
    [(name, recorded)] = tool_files(inner.path).items()
    swift_root = tmp_path / "swift"
    result = json.dumps(recorded["response"]["body"])
    subprocess.run(
        [str(BINARY), "tool", "db", "query", "--kwargs", json.dumps({"sql": "select 1"}), "--mode", "record",
         "--root", str(swift_root), "--test-id", recorded["test_id"], "--",
         sys.executable, "-c", f"print({result!r})"],
        check=True, capture_output=True, text=True)
    assert (swift_root / name).read_bytes() == (inner.path / name).read_bytes()


def test_a_changed_argument_fails_the_test_with_the_kwargs_path(inner):
    write_project(inner)
    inner.runpytest_subprocess(*PLUGIN, "--api-recorder-mode", "record", "-k", "test_query").assert_outcomes(passed=1)
    (inner.path / "tests" / "test_tools.py").write_text(TESTS.replace('tools.query("select 1")', 'tools.query("select 2")'))
    inner.makepyfile(**{"tests/test_swallowed": '''
        import tools
        from api_recorder import RecordingNotFoundError

        def test_swallowed():
            try:
                tools.query("select 3")
            except RecordingNotFoundError as error:  # the code under test hides the miss
                assert "kwargs.sql" in error.message and error.nearest["differences"]
    '''})
    result = inner.runpytest_subprocess(*PLUGIN, "--api-recorder-mode", "replay", "-k", "query or swallowed")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*RecordingNotFoundError*", "*TOOL db.query*",
        '*kwargs.sql: recorded "select 1", requested "select 2"*'])
    result.stdout.fnmatch_lines(['*kwargs.sql: recorded "select 1", requested "select 3"*'])


def test_invoke_tool_without_a_proxy_calls_the_function(monkeypatch):
    monkeypatch.delenv("API_RECORDER_URL", raising=False)
    assert invoke_tool("db", "query", {"sql": "x"}, lambda sql: sql.upper()) == "X"
    assert invoke_tool("db", "now", {}, lambda: 42) == 42


def test_invoke_tool_sync_and_async_under_a_proxy(tree, monkeypatch):
    import asyncio

    calls: list[str] = []

    def run_query(sql: str):
        calls.append(sql)
        return {"rows": [sql]}

    async def run_async(sql: str):
        calls.append("async " + sql)
        return {"rows": ["async " + sql]}

    test_id = "tests/test_db.py::test_it"
    with Proxy(tree, mode="record-if-missing", upstreams={}) as proxy:
        monkeypatch.setenv("API_RECORDER_URL", proxy.url)
        assert invoke_tool("db", "query", {"sql": "a"}, run_query, test_id=test_id) == {"rows": ["a"]}
        assert invoke_tool("db", "query", {"sql": "a"}, run_query, test_id=test_id) == {"rows": ["a"]}
        assert asyncio.run(invoke_tool("db", "aquery", {"sql": "b"}, run_async, test_id=test_id)) == {"rows": ["async b"]}
        assert asyncio.run(invoke_tool("db", "aquery", {"sql": "b"}, run_async, test_id=test_id)) == {"rows": ["async b"]}
        assert calls == ["a", "async b"], "each ran once, then replayed"
        report = proxy.report()
        assert report["recorded"] == 2 and report["replayed"] == 2
    assert len(list((tree / "tests" / "recordings").glob("*.json"))) == 2


def test_a_tool_interrupted_records_nothing(tree, monkeypatch):
    def interrupted():
        raise KeyboardInterrupt

    with Proxy(tree, mode="record", upstreams={}) as proxy:
        monkeypatch.setenv("API_RECORDER_URL", proxy.url)
        with pytest.raises(KeyboardInterrupt):
            invoke_tool("local", "stop", {}, interrupted)
        assert proxy.report()["recorded"] == 0
    assert not list(tree.rglob("*.json"))


def test_the_references_tool_recordings_replay_through_invoke_tool(shared, tree, monkeypatch):
    sources = [p for p in (shared / "corpus-sample").rglob("*.json") if '"tool_name"' in p.read_text()]
    assert sources, "the corpus sample has tool recordings"
    for source in sources:
        target = tree / source.relative_to(shared / "corpus-sample")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)

    def never(**_):
        raise AssertionError("replay must not call the tool")

    with Proxy(tree, mode="replay", upstreams={}) as proxy:
        monkeypatch.setenv("API_RECORDER_URL", proxy.url)
        for source in sources:
            recording = load(source)
            request = recording["request"]
            result = invoke_tool(
                request["provider"], request["tool_name"], request["kwargs"], never, test_id=recording["test_id"])
            assert result == recording["response"]["body"]["__data__"], source.name
        report = proxy.report()
        assert report["replayed"] == len(sources) and report["missed"] == 0


def test_errors_without_an_importable_type_are_recorded_tool_errors(tree, monkeypatch):
    class Local(Exception):
        pass

    def fails():
        raise Local("gone")

    with Proxy(tree, mode="record-if-missing", upstreams={}) as proxy:
        monkeypatch.setenv("API_RECORDER_URL", proxy.url)
        with pytest.raises(Local):
            invoke_tool("local", "fails", {}, fails)
        with pytest.raises(RecordedToolError) as replayed:
            invoke_tool("local", "fails", {}, fails)
    assert replayed.value.type_name.endswith("Local") and replayed.value.message == "gone"
    with Proxy(tree, mode="replay", upstreams={}) as proxy:
        monkeypatch.setenv("API_RECORDER_URL", proxy.url)
        with pytest.raises(RecordingNotFoundError, match="Differences: kwargs.x"):
            invoke_tool("local", "fails", {"x": 1}, fails)


def test_a_recording_never_makes_python_import_a_module(tree, monkeypatch, tmp_path):
    """Recordings arrive in pull requests: a recorded error's type names a module, and replaying it
    must not import that module (an import runs its code). Only modules already in `sys.modules`
    are looked in; anything else is a `RecordedToolError`."""
    marker = tmp_path / "imported"
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "planted_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nclass Boom(Exception):\n    pass\n")
    monkeypatch.syspath_prepend(str(modules))

    class Recorded(Exception):
        pass

    def fails():
        raise Recorded("the original")

    with Proxy(tree, mode="record-if-missing", upstreams={}) as proxy:
        monkeypatch.setenv("API_RECORDER_URL", proxy.url)
        with pytest.raises(Recorded):
            invoke_tool("local", "planted", {}, fails)
    [path] = list(tree.rglob("recordings/*.json"))
    recorded_type = f"{Recorded.__module__}.{Recorded.__qualname__}"
    text = path.read_text()
    assert recorded_type in text

    def replay_error(expected: type[BaseException]) -> pytest.ExceptionInfo:
        """Replays the (edited) recording and returns the error it raised, of type `expected`."""
        with Proxy(tree, mode="replay", upstreams={}) as proxy:
            monkeypatch.setenv("API_RECORDER_URL", proxy.url)
            with pytest.raises(expected) as raised:
                invoke_tool("local", "planted", {}, fails)
        return raised
    # As a pull request could change it: the type now names a module nothing has imported, and
    # then one that is imported but through a lazy module attribute.
    for planted in ["planted_module.Boom", "planted_module.sub.Boom", "os.path.planted_module"]:
        path.write_text(text.replace(recorded_type, planted))
        replayed = replay_error(RecordedToolError)
        assert replayed.value.type_name == planted and replayed.value.message == "the original"
        assert not marker.exists(), f"replaying {planted} imported the module"
        assert "planted_module" not in sys.modules
    # A type whose module is imported is rebuilt as itself.
    path.write_text(text.replace(recorded_type, "subprocess.SubprocessError"))
    assert "the original" in str(replay_error(subprocess.SubprocessError).value)
    # Lazily importing attributes are never triggered: a module whose `__getattr__` imports.
    lazy = type(sys)("lazy_importer")
    lazy.__getattr__ = lambda name: __import__("planted_module")  # PEP 562
    monkeypatch.setitem(sys.modules, "lazy_importer", lazy)
    path.write_text(text.replace(recorded_type, "lazy_importer.Boom"))
    replay_error(RecordedToolError)
    assert not marker.exists() and "planted_module" not in sys.modules


def test_the_package_exports_the_tool_api():
    assert {"recorded_tool", "invoke_tool", "RecordedToolError", "RecordingNotFoundError"} <= set(api_recorder.__all__)
    assert recorded_tool("p")(lambda: 1).__name__ == "<lambda>"
