"""api-recorder for Python: the `api-recorder` binary (installed beside the interpreter by the
wheel), a helper to run it, and a pytest plugin (`api_recorder.pytest_plugin`, registered as
`api_recorder`) that records and replays every test's API calls with no change to the tests.

See the project's README, "Python and pytest".
"""
from __future__ import annotations

from ._proxy import MODES, ControlClient, ProxyError, Server, find_binary

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("api-recorder")
except PackageNotFoundError:  # run from a source checkout
    __version__ = "0+source"
except ImportError:  # pragma: no cover
    __version__ = "0+unknown"

__all__ = ["MODES", "ControlClient", "ProxyError", "Server", "find_binary", "__version__"]
