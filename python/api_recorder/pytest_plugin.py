"""The pytest plugin: every test's API calls recorded and replayed, with no change to the tests.

Inactive unless a mode is asked for (`--api-recorder-mode`, the `api_recorder_mode` ini option,
or `$API_RECORDER_MODE`). Then, in each pytest process (each pytest-xdist worker has its own):

- an `api-recorder serve` proxy starts before conftest files and test modules are imported, and
  the variables the official SDKs read for their base URL (`OPENAI_BASE_URL`,
  `ANTHROPIC_BASE_URL`, `OLLAMA_HOST`, `GOOGLE_GEMINI_BASE_URL`, ...) point at it, so clients
  built at import time use it; with `$API_RECORDER_URL` set (under `api-recorder run`), that
  proxy is used instead;
- before each test the proxy's current test id is set to the test's node id, so its recordings
  go to `recordings/` beside the test file, and it is cleared after the test;
- a request with no recording in replay mode fails the test that made it, with the proxy's
  diagnosis (the nearest recording and what differs), even when the code under test caught the
  HTTP error;
- `@pytest.mark.api_recorder_fault(...)` injects faults into the test's requests, in order:
  `api_recorder_fault("status=429; retry-after=0; times=2")` or the JSON form's keys
  (`api_recorder_fault(status=529)`, `cut_after=3`, `delay_ms=300`, `event_delay_ms=50`,
  `malformed=True`, `times=N`).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from ._proxy import MODES, ControlClient, ProxyError, Server

_SESSION = pytest.StashKey["RecorderSession"]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "api_recorder_fault(spec=None, **keys): inject a fault into the test's API calls through api-recorder "
        "(spec: \"status=429; retry-after=0; times=2\"; keys: status, retry_after, times, delay_ms, cut_after, "
        "event_delay_ms, malformed); several apply in the order written")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("api-recorder", "record and replay API calls (api-recorder)")
    group.addoption(
        "--api-recorder-mode", dest="api_recorder_mode", choices=MODES, default=None,
        help="turn recording on in this mode (default: the api_recorder_mode ini option, else $API_RECORDER_MODE; "
             "none of them: the plugin does nothing)")
    group.addoption(
        "--api-recorder-root", dest="api_recorder_root", default=None, metavar="DIR",
        help="the recordings root (default: the api_recorder_root ini option, else pytest's rootdir)")
    group.addoption(
        "--api-recorder-provider", dest="api_recorder_providers", action="append", default=None, metavar="NAME",
        help="a provider preset to route: openai, anthropic, gemini, ollama, tavily (repeatable; default: all)")
    group.addoption(
        "--api-recorder-upstream", dest="api_recorder_upstreams", action="append", default=None, metavar="NAME=URL",
        help="forward route NAME to URL (a local model server, say); a preset's recordings still name its "
             "public base URL (repeatable)")
    group.addoption(
        "--api-recorder-report", dest="api_recorder_report", default=None, metavar="PATH",
        help="write the session report here, for `api-recorder prune` (xdist workers add to one file)")
    parser.addini("api_recorder_mode", "the recording mode when --api-recorder-mode is not given", default="")
    parser.addini("api_recorder_root", "the recordings root, relative to the rootdir", default="")
    parser.addini("api_recorder_providers", "provider presets to route (default: all)", type="linelist", default=[])
    parser.addini("api_recorder_upstreams", "NAME=URL routes", type="linelist", default=[])


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Starts the proxy before any conftest or test module is imported."""
    options = early_config.known_args_namespace
    if getattr(options, "help", False) or getattr(options, "version", False):
        return
    mode = options.api_recorder_mode or early_config.getini("api_recorder_mode") or os.environ.get("API_RECORDER_MODE")
    if not mode:
        return
    if mode not in MODES:
        raise pytest.UsageError(f"api-recorder: mode {mode!r} is not one of {', '.join(MODES)}")
    report = _report_path(early_config)
    if _is_xdist_controller(options):
        # Each worker starts its own proxy; they add their reports to one file, started afresh here.
        if report:
            _remove(report)
        return
    if report and not os.environ.get("PYTEST_XDIST_WORKER"):
        _remove(report)
    try:
        session = RecorderSession.start(early_config, mode, report)
    except ProxyError as error:
        raise pytest.UsageError(f"api-recorder: {error}") from None
    early_config.stash[_SESSION] = session
    early_config.add_cleanup(session.close)


def pytest_report_header(config: pytest.Config) -> str | None:
    session = config.stash.get(_SESSION, None)
    if session is None:
        return None
    return f"api-recorder: mode {session.mode}, proxy {session.url}, root {session.root}"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    session = item.config.stash.get(_SESSION, None)
    if session is not None:
        session.begin(_test_id(item, session.root), _faults(item))
    try:
        yield
    finally:
        if session is not None:
            session.end()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    session = item.config.stash.get(_SESSION, None)
    if session is None or session.test_id is None:
        return
    try:
        misses = session.new_misses()
    except ProxyError as error:
        misses = []
        broken = session.broken or f"api-recorder: the proxy did not answer, so this test's requests are unchecked: {error}"
    else:
        broken = session.broken
    if not misses and not broken:
        return
    report = outcome.get_result()
    text = broken or _describe(misses, session)
    session.broken = None
    if report.passed:
        report.outcome = "failed"
        report.longrepr = text
    elif report.failed:
        report.sections.append(("api-recorder: requests with no recording", text))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is None:
        return
    try:
        summary = session.control.report().get("summary", "")
    except ProxyError as error:
        summary = f"no session report: {error}"
    terminalreporter.write_sep("-", "api-recorder")
    terminalreporter.write_line(f"api-recorder: {summary}")


@pytest.fixture
def api_recorder(request: pytest.FixtureRequest) -> "RecorderHandle":
    """The proxy of this test: its base URLs (`url`, `urls`, `base_url(name)`), `mode`,
    `test_id`, and `counts()` / `misses()` of this test so far."""
    session = request.config.stash.get(_SESSION, None)
    if session is None:
        pytest.fail(
            "the api_recorder fixture needs the api-recorder plugin on: pass --api-recorder-mode MODE, set the "
            "api_recorder_mode ini option, or set API_RECORDER_MODE", pytrace=False)
    return RecorderHandle(session)


class RecorderSession:
    """The proxy of one pytest process, the variables exported for it, and the current test."""

    def __init__(self, *, mode: str, root: Path, url: str, server: Server | None):
        self.mode = mode
        self.root = root
        self.url = url
        self.server = server
        self.control = ControlClient(url)
        self.routes: dict[str, str] = {}
        self.test_id: str | None = None
        # Why the proxy could not be told of the current test, to fail it with.
        self.broken: str | None = None
        self._reported = 0
        # Whether the current test has faults to clear when it ends.
        self._faulted = False
        self._saved_environment: dict[str, str | None] = {}

    @classmethod
    def start(cls, config: pytest.Config, mode: str, report: str | None) -> "RecorderSession":
        external = os.environ.get("API_RECORDER_URL")
        if external:
            session = cls(mode=mode, root=_root(config), url=external, server=None)
            if os.environ.get("PYTEST_XDIST_WORKER"):
                warnings.warn(
                    "api-recorder: pytest-xdist workers share the proxy at API_RECORDER_URL, so the test ids of "
                    "tests running at once can cross; unset API_RECORDER_URL to give each worker its own proxy",
                    stacklevel=1)
        else:
            options = config.known_args_namespace
            server = Server(
                mode=mode,
                root=_root(config),
                providers=options.api_recorder_providers or config.getini("api_recorder_providers") or ("all",),
                upstreams=options.api_recorder_upstreams or config.getini("api_recorder_upstreams"),
                report_file=report,
                merge_report=True,
            )
            url = server.start()
            session = cls(mode=mode, root=Path(server.root), url=url, server=server)
        try:
            session._export()
        except ProxyError:
            session.close()
            raise
        return session

    def _export(self) -> None:
        """Points the SDKs at the proxy: its variables, and placeholder keys where none are set."""
        environment = self.control.environment()
        if environment.get("variables", {}).get("API_RECORDER_MODE") not in (None, self.mode):
            warnings.warn(
                f"api-recorder: the proxy at {self.url} runs in mode {environment['variables']['API_RECORDER_MODE']}, "
                f"not {self.mode}", stacklevel=1)
        self.routes = dict(environment.get("routes", {}))
        for name, value in environment.get("variables", {}).items():
            self._set(name, value)
        for name, value in environment.get("placeholders", {}).items():
            if not os.environ.get(name):
                self._set(name, value)

    def _set(self, name: str, value: str) -> None:
        if name not in self._saved_environment:
            self._saved_environment[name] = os.environ.get(name)
        os.environ[name] = value

    def begin(self, test_id: str, faults: list[dict[str, Any]] = ()) -> None:
        self.test_id = test_id
        self._reported = 0
        self.broken = None
        self._faulted = bool(faults)
        try:
            self.control.set_test(test_id)
        except ProxyError as error:
            log = self.server.log_tail() if self.server else ""
            self.broken = f"api-recorder: could not set the test id on the proxy: {error}\n{log}"
            return
        if faults:
            try:
                self.control.set_faults(test_id, list(faults))
            except ProxyError as error:
                self.broken = f"api-recorder: the api_recorder_fault marks were refused: {error}"

    def end(self) -> None:
        test_id, self.test_id = self.test_id, None
        try:
            if self._faulted:
                self._faulted = False
                self.control.clear_faults(test_id)
            self.control.set_test(None)
        except ProxyError:
            pass  # the next test's begin says so

    def new_misses(self) -> list[dict[str, Any]]:
        """The misses of the current test not yet reported."""
        misses = self.test_report().get("misses", [])
        fresh, self._reported = misses[self._reported:], len(misses)
        return fresh

    def test_report(self) -> dict[str, Any]:
        return self.control.test_report(self.test_id)

    def close(self) -> None:
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment.clear()
        if self.server is not None:
            code = self.server.stop()
            if code not in (0, None):
                warnings.warn(f"api-recorder serve exited with status {code}:\n{self.server.log_tail()}", stacklevel=1)
            self.server.remove_log()
            self.server = None


class RecorderHandle:
    """What the `api_recorder` fixture gives a test."""

    def __init__(self, session: RecorderSession):
        self._session = session

    @property
    def url(self) -> str:
        """The proxy's base URL (`API_RECORDER_URL`)."""
        return self._session.url

    @property
    def urls(self) -> dict[str, str]:
        """Each route's base URL, by route name (`openai`, `anthropic`, ...)."""
        return dict(self._session.routes)

    def base_url(self, name: str) -> str:
        """The base URL of route `name`, for clients that read no variable (Tavily's `api_base_url`)."""
        try:
            return self._session.routes[name]
        except KeyError:
            raise KeyError(f"no route {name!r}; routes: {', '.join(sorted(self._session.routes)) or 'none'}") from None

    @property
    def mode(self) -> str:
        return self._session.mode

    @property
    def test_id(self) -> str | None:
        """The id this test's recordings are stored under."""
        return self._session.test_id

    def counts(self) -> dict[str, int]:
        """This test's counts so far: `replayed`, `missed`, `recorded`, `passed_through`, `errors`."""
        report = self._session.test_report()
        return {key: report.get(key, 0) for key in ("replayed", "missed", "recorded", "passed_through", "errors")}

    def misses(self) -> list[dict[str, Any]]:
        """This test's requests with no recording, each with its `diagnosis`."""
        return list(self._session.test_report().get("misses", []))

    def journal(self) -> list[dict[str, Any]]:
        """This test's exchanges so far, oldest first: `outcome` (`replayed`, `missed`,
        `recorded`, `passed_through`, `fault`, `error`), `status`, `duration_ms`, `fault`, ..."""
        return self._session.control.journal(self._session.test_id)

    def inject(self, spec: str | None = None, **keys: Any) -> None:
        """Sets faults for the rest of this test, as the `api_recorder_fault` mark does."""
        self._session.control.set_faults(self._session.test_id, [_fault_json(spec, keys)])
        self._session._faulted = True


def _faults(item: pytest.Item) -> list[dict[str, Any]]:
    """The test's `api_recorder_fault` marks in the order written (class and module marks after)."""
    marks = list(item.iter_markers("api_recorder_fault"))
    own = [mark for mark in getattr(item, "own_markers", []) if mark.name == "api_recorder_fault"]
    # Decorators apply bottom first, so a function's own marks are listed in reverse.
    ordered = list(reversed(own)) + [mark for mark in marks if mark not in own]
    return [_fault_json(mark.args[0] if mark.args else None, dict(mark.kwargs)) for mark in ordered]


def _fault_json(spec: str | None, keys: dict[str, Any]) -> dict[str, Any]:
    if spec is not None and keys:
        raise pytest.UsageError("api_recorder_fault: give a spec string or keys, not both")
    return {"spec": spec} if spec is not None else keys


def _describe(misses: list[dict[str, Any]], session: RecorderSession) -> str:
    count = len(misses)
    lines = [
        f"api-recorder: {count} request{'s' if count != 1 else ''} of this test had no recording in {session.mode} mode "
        "(failed even if the code under test caught the error):"]
    for miss in misses:
        lines.append(f"  {miss.get('method')} {miss.get('url')} (hash {miss.get('hash')})")
        lines.append(f"    {miss.get('diagnosis') or 'No recording of that endpoint in the folders searched.'}")
    lines.append(
        "  To record: run this test with --api-recorder-mode record-if-missing (and the real keys, or "
        "--api-recorder-upstream NAME=URL).")
    return "\n".join(lines)


def _test_id(item: pytest.Item, root: Path) -> str:
    """The item's node id, with its file part relative to the recordings root."""
    nodeid = item.nodeid
    _, separator, rest = nodeid.partition("::")
    path = getattr(item, "path", None)
    if path is None:
        return nodeid
    try:
        relative = Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        return nodeid
    return relative.as_posix() + separator + rest


def _root(config: pytest.Config) -> Path:
    chosen = config.known_args_namespace.api_recorder_root or config.getini("api_recorder_root")
    if not chosen:
        return config.rootpath
    base = config.invocation_params.dir if config.known_args_namespace.api_recorder_root else config.rootpath
    return (Path(base) / chosen).resolve()


def _report_path(config: pytest.Config) -> str | None:
    chosen = config.known_args_namespace.api_recorder_report
    return str((Path(config.invocation_params.dir) / chosen).resolve()) if chosen else None


def _is_xdist_controller(options: Any) -> bool:
    """Whether this process hands tests to pytest-xdist workers (which have their own proxies)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    numprocesses = getattr(options, "numprocesses", None)
    return bool(numprocesses) or bool(getattr(options, "tx", None))


def _remove(path: str) -> None:
    for name in (path, path + ".lock"):
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
