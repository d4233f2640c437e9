#!/usr/bin/env bash
# The Python SDK suite (Tests/python): the official SDKs (openai, anthropic, ollama, google-genai,
# tavily-python, mcp) and the pytest plugin against the release build (scripts/build-release.sh:
# .build/release/api-recorder, or $API_RECORDER_BIN) over real sockets.
#
#   scripts/python-tests.sh [pytest arguments...]     e.g. -x -q, -k replay, Tests/python/test_x.py
#
# Runs `pytest Tests/python -q -p no:cacheprovider ARGS...`; when ARGS name test files or folders
# themselves, Tests/python is left out so that only those run.
#
# Sets up the venv (scripts/python-env.sh) and, unless API_RECORDER_SKIP_MODEL_SERVER is set,
# the real model server's cache (scripts/model-server.sh setup; tests that need it skip with a
# message if it cannot be set up). Exits with pytest's status; "no tests collected" (5) is a
# failure. Does not build the Swift package. With API_RECORDER_WHEEL=dist/....whl, the wheel test
# (test_wheel.py) installs it in a fresh venv.
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(scripts/python-env.sh | tail -n 1)

export API_RECORDER_BIN=${API_RECORDER_BIN:-$PWD/.build/release/api-recorder}
if [[ ! -x $API_RECORDER_BIN ]]; then
    echo "python-tests: $API_RECORDER_BIN is missing; run scripts/build-release.sh first" >&2
    exit 1
fi

if [[ -z ${API_RECORDER_SKIP_MODEL_SERVER:-} ]]; then
    scripts/model-server.sh setup </dev/null \
        || echo "python-tests: model server setup failed; its tests will skip" >&2
fi

targets=(Tests/python)
for arg in "$@"; do
    if [[ $arg != -* && -e ${arg%%::*} ]]; then
        targets=()
        break
    fi
done

status=0
"$python" -m pytest "${targets[@]}" -q -p no:cacheprovider "$@" || status=$?
if ((status == 5)); then
    echo "python-tests: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
