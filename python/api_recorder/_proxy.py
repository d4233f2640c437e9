"""An `api-recorder serve` process, and its control endpoints (`/__recorder/...`).

The binary does all the recording work; this module only starts it, stops it, and asks it
things. The variables that point SDKs at it come from the proxy itself
(`GET /__recorder/environment`), so the provider presets are defined once, in the binary.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Mapping

MODES = ("replay", "record-if-missing", "record", "live")
BINARY_VARIABLE = "API_RECORDER_BIN"
_LISTENING = re.compile(r"^api-recorder listening on (http://\S+) mode=(\S+) ")


class ProxyError(RuntimeError):
    """The proxy could not be found, started or asked."""


def find_binary() -> str:
    """The `api-recorder` binary: `$API_RECORDER_BIN`, else the one this environment's wheel
    installed (beside the Python interpreter), else the first on `PATH`."""
    explicit = os.environ.get(BINARY_VARIABLE)
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise ProxyError(f"{BINARY_VARIABLE}={explicit} is not an executable file")
        return explicit
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = os.path.join(folder, "api-recorder")
        if folder and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("api-recorder")
    if found:
        return found
    raise ProxyError(
        "the api-recorder binary was not found: install the api_recorder wheel "
        f"(pip install api_recorder-*.whl), or set {BINARY_VARIABLE} to its path")


class ControlClient:
    """The control endpoints of the proxy at `url`."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            # The proxy is local: never through an HTTP proxy from the environment.
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise ProxyError(f"{method} {self.url}{path}: {error.code} {detail}") from None
        except (OSError, ValueError) as error:
            raise ProxyError(f"{method} {self.url}{path}: {error}") from None

    def set_test(self, test_id: str | None) -> None:
        """Sets the id that requests naming none are recorded under, and starts its counts afresh."""
        self._call("POST", "/__recorder/test", {"test_id": test_id})

    def report(self) -> dict[str, Any]:
        """The session report (counts, misses, written, used and unused recordings)."""
        return self._call("GET", "/__recorder/report")

    def test_report(self, test_id: str | None) -> dict[str, Any]:
        """The report of one test id since it was set: its counts and misses."""
        query = urllib.parse.urlencode({"test_id": test_id or ""}, quote_via=urllib.parse.quote)
        return self._call("GET", "/__recorder/report?" + query)

    def set_faults(self, test_id: str | None, faults: list[dict[str, Any]]) -> dict[str, Any]:
        """Sets the faults of `test_id` (JSON form: `{"status": 429, "times": 2}`, or `{"spec":
        "status=429; times=2"}`), applied to its requests in order."""
        return self._call("POST", "/__recorder/faults", {"test_id": test_id, "faults": faults})

    def clear_faults(self, test_id: str | None = None, *, every_test: bool = False) -> None:
        """Clears the faults of `test_id` (requests with none when `None`), or of every test."""
        query = "" if every_test else "?" + urllib.parse.urlencode({"test_id": test_id or ""})
        self._call("DELETE", "/__recorder/faults" + query)

    def journal(self, test_id: str | None = None, *, every_test: bool = False) -> list[dict[str, Any]]:
        """The journal's entries (`time`, `test_id`, `method`, `path`, `hash`, `outcome`, `status`,
        `duration_ms`, `fault`), oldest first: of `test_id`, or of every test."""
        query = "" if every_test else "?" + urllib.parse.urlencode({"test_id": test_id or ""})
        return self._call("GET", "/__recorder/journal" + query)["entries"]

    def metrics(self) -> str:
        """The metrics, in Prometheus' text format."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.url + "/__recorder/metrics", timeout=self.timeout) as response:
                return response.read().decode()
        except (OSError, ValueError) as error:
            raise ProxyError(f"GET {self.url}/__recorder/metrics: {error}") from None

    def environment(self) -> dict[str, Any]:
        """`{"variables", "placeholders", "routes"}`: what points unmodified clients at the proxy."""
        return self._call("GET", "/__recorder/environment")


class Server:
    """`api-recorder serve` on a free port of 127.0.0.1, until `stop()`.

    Its standard input is a pipe this object holds (`--until-stdin-closes`), so the proxy stops
    when this process ends, even when it is killed. Its log goes to a temporary file, shown when
    it fails to start.
    """

    def __init__(
        self,
        *,
        mode: str,
        root: str | os.PathLike[str],
        providers: Iterable[str] = ("all",),
        upstreams: Mapping[str, str] | Iterable[str] = (),
        report_file: str | os.PathLike[str] | None = None,
        merge_report: bool = False,
        extra_args: Iterable[str] = (),
        binary: str | None = None,
    ):
        self.binary = binary or find_binary()
        self.mode = mode
        self.root = str(root)
        args = [self.binary, "serve", "--port", "0", "--host", "127.0.0.1", "--mode", mode, "--root", self.root,
                "--until-stdin-closes"]
        for name in providers:
            args += ["--provider", name]
        pairs = [f"{name}={url}" for name, url in upstreams.items()] if isinstance(upstreams, Mapping) else upstreams
        for pair in pairs:
            args += ["--upstream", pair]
        if report_file is not None:
            args += ["--report-file", str(report_file)] + (["--merge-report"] if merge_report else [])
        self.args = args + list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None
        self.log_path: str | None = None

    def start(self, timeout: float = 60.0) -> str:
        """Starts the proxy and returns its URL once it listens."""
        descriptor, self.log_path = tempfile.mkstemp(prefix="api-recorder-", suffix=".log")
        with os.fdopen(descriptor, "wb") as log:
            self.process = subprocess.Popen(
                self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, close_fds=True)
        line = self._first_line(timeout)
        match = _LISTENING.match(line)
        if not match:
            code = self.stop()
            raise ProxyError(
                f"api-recorder serve did not start (exit status {code}; {' '.join(self.args)}):\n"
                f"{line}{self.log_tail()}")
        self.url = match.group(1)
        return self.url

    def _first_line(self, timeout: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        lines: list[bytes] = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return lines[0].decode(errors="replace") if lines else ""

    def log_tail(self, size: int = 4000) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        return Path(self.log_path).read_text(errors="replace")[-size:]

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stops the proxy gracefully (SIGTERM: in-flight recordings finish) and returns its exit status."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdin, process.stdout):
            if stream:
                stream.close()
        return process.returncode

    def remove_log(self) -> None:
        if self.log_path and os.path.exists(self.log_path):
            os.unlink(self.log_path)
