"""The wheel, as a user installs it: a fresh venv, no Swift toolchain on PATH, `pip install
dist/api_recorder-*.whl openai anthropic`, then the example project (Examples/python-app) with
its committed recordings.

- `pytest` passes offline in replay mode, and with `-n 2` (pytest-xdist);
- a prompt changed in a test fails that test with the miss diagnostics;
- `api-recorder run --provider openai -- python app.py` replays the app's `OpenAI()` client;
- recorded afresh through `record-if-missing` against the real model server, then replayed.

The wheel comes from $API_RECORDER_WHEEL (scripts/test.sh builds it), else the newest
dist/api_recorder-*.whl; without one the module skips, saying so.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import REPO, load

EXAMPLE = REPO / "Examples" / "python-app"


def find_wheel() -> Path | None:
    explicit = os.environ.get("API_RECORDER_WHEEL")
    if explicit:
        return Path(explicit).absolute()
    built = sorted((REPO / "dist").glob("api_recorder-*.whl"), key=lambda p: p.stat().st_mtime)
    return built[-1] if built else None


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory) -> Path:
    wheel = find_wheel()
    if wheel is None or not wheel.exists():
        pytest.skip("no wheel: build it with scripts/build-wheel.sh (or set API_RECORDER_WHEEL)")
    folder = tmp_path_factory.mktemp("user") / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    installed = subprocess.run(
        [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         str(wheel), "openai", "anthropic", "pytest", "pytest-xdist"],
        capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return folder


def user_environment(venv_folder: Path, **extra: str) -> dict[str, str]:
    """A user's shell: the venv first on PATH, no Swift, no api-recorder variables, and an HTTP
    proxy that refuses everything, so that any request that is not to 127.0.0.1 fails."""
    path = os.pathsep.join([str(venv_folder / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    assert shutil.which("swift", path=path) is None, f"a Swift toolchain is on {path}"
    environment = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
                   "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                   "ALL_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}
    environment.update(extra)
    return environment


def in_project(venv_folder: Path, project: Path, *command: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), cwd=project, env=user_environment(venv_folder, **extra),
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the example project, with its recordings."""
    copy = tmp_path / "python-app"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return copy


def test_the_wheel_installs_a_binary_that_needs_no_swift(user_venv):
    binary = user_venv / "bin" / "api-recorder"
    assert os.access(binary, os.X_OK)
    libraries = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    assert "swift" not in libraries.lower(), libraries
    version = in_project(user_venv, user_venv, str(user_venv / "bin" / "python"), "-m", "api_recorder", "--version")
    assert version.returncode == 0 and version.stdout.strip(), version.stderr


def test_the_example_passes_offline_in_replay_mode(user_venv, project):
    result = in_project(user_venv, project, "pytest", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plugins: " in result.stdout and "api-recorder" in result.stdout
    assert "api-recorder: mode replay: 9 replayed, 0 missed, 0 recorded, 0 passed through" in result.stdout


def test_the_example_passes_with_two_xdist_workers(user_venv, project):
    result = in_project(user_venv, project, "pytest", "-p", "no:cacheprovider", "-n", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


def test_a_changed_prompt_fails_that_test_with_the_diagnosis(user_venv, project):
    tests = project / "tests" / "test_app.py"
    tests.write_text(tests.read_text().replace("What is the capital of France?", "What is the capital of Peru?"))
    result = in_project(user_venv, project, "pytest", "-p", "no:cacheprovider")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 5 passed" in result.stdout
    assert "FAILED tests/test_app.py::test_a_swallowed_error_still_fails_on_a_miss" in result.stdout
    assert ('messages[0].content: recorded "What is the capital of France?", '
            'requested "What is the capital of Peru?"') in result.stdout


def test_run_replays_the_apps_openai_client(user_venv, project):
    result = in_project(user_venv, project, "api-recorder", "run", "--provider", "openai", "--", "python", "app.py",
                        OPENAI_API_KEY="sk-anything")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":", 1)[0] for line in result.stdout.splitlines() if line[:1].isalpha()][:4] == [
        "ask", "story", "weather", "research"]
    assert "mode replay: 7 replayed, 0 missed" in result.stderr


def test_recorded_afresh_through_record_if_missing_then_replayed(user_venv, project, model_server):
    for recordings in project.rglob("recordings"):
        shutil.rmtree(recordings)
    recorded = in_project(
        user_venv, project, "pytest", "-p", "no:cacheprovider", "--api-recorder-mode", "record-if-missing",
        f"--api-recorder-upstream=openai={model_server}/v1", f"--api-recorder-upstream=anthropic={model_server}",
        OPENAI_API_KEY="unused", ANTHROPIC_API_KEY="unused")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    files = [load(f)["request"] for f in sorted((project / "tests" / "recordings").glob("*.json"))]
    assert len(files) == 9
    assert {f["url"] for f in files if "url" in f} == {
        "https://api.openai.com/v1/chat/completions", "https://api.anthropic.com/v1/messages"}
    assert [(f["provider"], f["tool_name"]) for f in files if "tool_name" in f] == [("tavily", "web_search")]
    # Replayed with the web search unable to run: it is never called.
    replayed = in_project(user_venv, project, "pytest", "-p", "no:cacheprovider", TAVILY_API_KEY="tvly-invalid")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "9 replayed, 0 missed" in replayed.stdout
