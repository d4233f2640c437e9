"""api-recorder for Python: the `api-recorder` binary (installed beside the interpreter by the
wheel), a helper to run it, and a pytest plugin (`api_recorder.pytest_plugin`, registered as
`api_recorder`) that records and replays every test's API calls with no change to the tests,
and `recorded_tool` / `invoke_tool`, which record and replay tool calls (a web search, a database
query, any function) beside them.

See the project's README, "Python and pytest".
"""
from __future__ import annotations

from ._proxy import MODES, ControlClient, ProxyError, Server, find_binary
from ._tools import RecordedToolError, RecordingNotFoundError, invoke_tool, recorded_tool

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("api-recorder")
except PackageNotFoundError:  # run from a source checkout
    __version__ = "0+source"
except ImportError:  # pragma: no cover
    __version__ = "0+unknown"

__all__ = [
    "MODES", "ControlClient", "ProxyError", "RecordedToolError", "RecordingNotFoundError", "Server", "find_binary",
    "invoke_tool", "recorded_tool", "__version__",
]
