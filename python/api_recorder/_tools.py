"""Tool calls recorded and replayed beside inference calls, in the reference's tool format.

A tool is any function an agent calls: a web search, a database query, a calculator. Wrapped
with `recorded_tool` (or called through `invoke_tool`), it goes through the proxy at
`$API_RECORDER_URL` (set by the pytest plugin and by `api-recorder run`), under the current test
id:

- in replay mode the function is never called: the recorded result is returned, or the recorded
  error raised again; a call with no recording raises `RecordingNotFoundError` with the proxy's
  diagnosis (and fails the test under the plugin);
- in record modes the function runs, and its result, or the error it raised, is recorded;
- with no proxy (no `$API_RECORDER_URL`) the function is simply called.

Results are stored as JSON. A pydantic model or a dataclass is stored as its JSON and given back
as a dict, in every mode, unless `returns` names the type to rebuild (what a replay can give is
what a recording run gives too). The wire protocol is in the project's docs/tools.md.
"""
from __future__ import annotations

import asyncio
import builtins
import dataclasses
import functools
import inspect
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any, Callable, Mapping, TypeVar

from ._proxy import ProxyError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["RecordedToolError", "RecordingNotFoundError", "invoke_tool", "recorded_tool"]


class RecordedToolError(Exception):
    """A recorded tool error whose exception type cannot be rebuilt here.

    `type_name` is the recorded type (`mypackage.errors.QuotaExceeded`, or a Swift type name), and
    `message` its message."""

    def __init__(self, type_name: str, message: str):
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


class RecordingNotFoundError(ProxyError):
    """Replay mode, and no recording of this tool call: `diagnosis` says which recording was
    nearest and what differs (`kwargs.query: recorded ..., requested ...`)."""

    def __init__(self, message: str, nearest: Any = None):
        super().__init__(message)
        self.message = message
        self.nearest = nearest


def recorded_tool(
    provider: str,
    tool_name: str | None = None,
    *,
    returns: Any = None,
    type_name: str | None = None,
    ignore: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """Records and replays every call of the decorated function (sync or async).

    The call's `kwargs`, which identify it, are the arguments the caller passed, by parameter name
    (defaults left out, as the reference records them; `self` and `cls`, and the names in
    `ignore`, left out too).

    - `tool_name`: defaults to the function's name;
    - `returns`: the type to rebuild the result as (a pydantic model, a dataclass, or any callable
      taking the JSON value), in every mode;
    - `type_name`: store the result typed, as the reference stores its tool results
      (`{"__type__": type_name, "__data__": ...}`, e.g. `ogx_api.tools.ToolInvocationResult`).
    """

    def decorate(function: F) -> F:
        name = tool_name or function.__name__
        signature = inspect.signature(function)
        parameters = list(signature.parameters.values())
        skipped = set(ignore)
        if parameters and parameters[0].name in ("self", "cls"):
            skipped.add(parameters[0].name)

        def kwargs_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            bound = signature.bind(*args, **kwargs)
            named: dict[str, Any] = {}
            for parameter_name, value in bound.arguments.items():
                if parameter_name in skipped:
                    continue
                kind = signature.parameters[parameter_name].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    named.update(value)
                elif kind is inspect.Parameter.VAR_POSITIONAL:
                    named[parameter_name] = list(value)
                else:
                    named[parameter_name] = value
            return named

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await _invoke_async(
                    provider, name, kwargs_of(args, kwargs), lambda: function(*args, **kwargs), returns, type_name)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return _invoke(provider, name, kwargs_of(args, kwargs), lambda: function(*args, **kwargs), returns, type_name)

        return wrapper  # type: ignore[return-value]

    return decorate


def invoke_tool(
    provider: str,
    tool_name: str,
    kwargs: Mapping[str, Any],
    function: Callable[..., Any],
    *,
    returns: Any = None,
    type_name: str | None = None,
    test_id: str | None = None,
) -> Any:
    """Records or replays one call: `function(**kwargs)` (or `function()` when it takes no
    arguments) runs only when recording. For an async `function` this returns an awaitable.

    `returns` and `type_name` are as for `recorded_tool`; `test_id` overrides the current test's
    (the pytest plugin's node id)."""
    arguments = dict(kwargs)
    takes_none = _takes_no_arguments(function)

    def call() -> Any:
        return function() if takes_none else function(**arguments)

    if inspect.iscoroutinefunction(function):
        return _invoke_async(provider, tool_name, arguments, call, returns, type_name, test_id)
    return _invoke(provider, tool_name, arguments, call, returns, type_name, test_id)


# MARK: The two steps


def _invoke(provider: str, name: str, kwargs: dict[str, Any], call: Callable[[], Any], returns: Any,
            type_name: str | None, test_id: str | None = None) -> Any:
    url = os.environ.get("API_RECORDER_URL")
    if not url:
        return call()
    answer = _post(url, "/__recorder/tools/invoke", _invocation(provider, name, kwargs, type_name, test_id))
    if answer.get("outcome") != "run":
        return _result(answer, returns)
    try:
        value = call()
    except Exception as error:  # recorded, then raised again as it is
        _post(url, "/__recorder/tools/result", {"call_id": answer["call_id"], "error": _error_json(error)})
        raise
    except BaseException:  # KeyboardInterrupt, SystemExit: the call never finished
        _cancel(url, answer["call_id"])
        raise
    return _result(_post(url, "/__recorder/tools/result", _report(answer["call_id"], value)), returns)


async def _invoke_async(provider: str, name: str, kwargs: dict[str, Any], call: Callable[[], Any], returns: Any,
                        type_name: str | None, test_id: str | None = None) -> Any:
    url = os.environ.get("API_RECORDER_URL")
    if not url:
        return await call()
    answer = await asyncio.to_thread(
        _post, url, "/__recorder/tools/invoke", _invocation(provider, name, kwargs, type_name, test_id))
    if answer.get("outcome") != "run":
        return _result(answer, returns)
    try:
        value = await call()
    except Exception as error:
        await asyncio.to_thread(
            _post, url, "/__recorder/tools/result", {"call_id": answer["call_id"], "error": _error_json(error)})
        raise
    except BaseException:  # cancelled: the call never finished
        await asyncio.to_thread(_cancel, url, answer["call_id"])
        raise
    report = _report(answer["call_id"], value)
    return _result(await asyncio.to_thread(_post, url, "/__recorder/tools/result", report), returns)


def _invocation(provider: str, name: str, kwargs: dict[str, Any], type_name: str | None,
                test_id: str | None) -> dict[str, Any]:
    try:
        arguments = _to_json(kwargs)
    except TypeError as error:
        raise TypeError(f"api-recorder: the arguments of {provider}.{name} are not JSON: {error}") from None
    body: dict[str, Any] = {"provider": provider, "tool_name": name, "kwargs": arguments}
    if type_name:
        body["type_name"] = type_name
    if test_id is not None:
        body["test_id"] = test_id
    return body


def _report(call_id: str, value: Any) -> dict[str, Any]:
    return {"call_id": call_id, "result": _to_json(value)}


def _cancel(url: str, call_id: str) -> None:
    try:
        _post(url, "/__recorder/tools/result", {"call_id": call_id, "cancelled": True})
    except ProxyError:
        pass  # abandoned already: the proxy's error says so


def _post(url: str, path: str, body: Any) -> dict[str, Any]:
    request = urllib.request.Request(
        url.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    # The proxy is local: never through an HTTP proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=600) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            detail = json.loads(text).get("error", {})
        except (ValueError, AttributeError):
            detail = {}
        message = detail.get("message") or text
        if error.code == 404 and detail.get("type") == "recording_not_found":
            raise RecordingNotFoundError(message, detail.get("nearest")) from None
        raise ProxyError(f"api-recorder tool call ({path}): {error.code} {message}") from None
    except (OSError, ValueError) as error:
        raise ProxyError(f"api-recorder tool call ({path}) to {url}: {error}") from None


# MARK: Values


def _result(answer: dict[str, Any], returns: Any) -> Any:
    if "error" in answer:
        error = answer["error"]
        raise _rebuilt_error(error.get("type", "Exception"), error.get("message", ""), answer.get("path"))
    value = answer.get("result")
    return value if returns is None else _rebuilt(value, returns)


def _rebuilt(value: Any, returns: Any) -> Any:
    if hasattr(returns, "model_validate"):
        return returns.model_validate(value)
    if dataclasses.is_dataclass(returns) and isinstance(value, dict):
        return returns(**value)
    return returns(value)


def _to_json(value: Any) -> Any:
    """`value` as JSON data: pydantic models and dataclasses as their JSON."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _error_json(error: BaseException) -> dict[str, Any]:
    cls = type(error)
    builtin = cls.__module__ == "builtins"
    return {
        "type": cls.__qualname__ if builtin else f"{cls.__module__}.{cls.__qualname__}",
        "message": str(error),
        "category": "builtin" if builtin else "unknown",
    }


def _rebuilt_error(type_name: str, message: str, path: str | None) -> BaseException:
    """The recorded error as its own type where its module is already imported, else `RecordedToolError`."""
    cls = _import_exception(type_name)
    error: BaseException
    try:
        error = cls(message) if cls is not None else RecordedToolError(type_name, message)
    except Exception:
        error = RecordedToolError(type_name, message)
    if path and hasattr(error, "add_note"):
        error.add_note(f"(replayed by api-recorder from {path})")
    return error


def _import_exception(type_name: str) -> type[BaseException] | None:
    """The exception class `type_name` names, looked up only among modules already imported.

    Recordings arrive in pull requests: a type name in one must never make Python import a module
    (an import runs code), so this reads `sys.modules` and never calls the import machinery, and
    reads attributes statically (no module `__getattr__`, which may import lazily).
    """
    module_name = type_name.rpartition(".")[0]
    candidates: list[Any] = []
    if not module_name:
        candidates.append(inspect.getattr_static(builtins, type_name, None))
    else:
        # The longest module prefix already imported, then attributes (nested classes).
        parts = type_name.split(".")
        for split in range(len(parts) - 1, 0, -1):
            target: Any = sys.modules.get(".".join(parts[:split]))
            if target is None:
                continue
            for attribute in parts[split:]:
                target = inspect.getattr_static(target, attribute, None)
            candidates.append(target)
            break
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, Exception):
            return candidate
    return None


def _takes_no_arguments(function: Callable[..., Any]) -> bool:
    try:
        return not inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
