#!/usr/bin/env bash
# The Python venv for the SDK test suite (Tests/python): creates it if needed, installs the
# requirements from PyPI when they changed, and prints the venv's python as its last line.
#
#   scripts/python-env.sh
#
# Environment:
#   API_RECORDER_VENV   the venv, default <repo>/.build/venv (shared with scripts/model-server.sh)
#   PYTHON              the interpreter that creates the venv, default python3
#
# Idempotent and non-interactive: a stamp file in the venv records the requirements last
# installed; while they are unchanged (and import), pip is not run. Progress goes to stderr.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${API_RECORDER_VENV:-$REPO/.build/venv}
PYTHON=${PYTHON:-python3}

# Latest from PyPI; nothing is pinned. Edit this list to change what the suite needs.
REQUIREMENTS=(openai anthropic tavily-python mcp ollama google-genai pytest pytest-timeout pytest-xdist prometheus-client)
# Modules that must import for the venv to count as ready (one per requirement).
MODULES=(openai anthropic tavily mcp ollama google.genai pytest pytest_timeout xdist prometheus_client)

log() { echo "python-env: $*" >&2; }

command -v "$PYTHON" >/dev/null || { log "error: $PYTHON not found"; exit 1; }

if [[ ! -x $VENV/bin/python ]]; then
    log "creating venv $VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV" </dev/null >&2
fi

STAMP=$VENV/.api-recorder-python-tests.stamp
wanted="$("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])') ${REQUIREMENTS[*]}"
imports=$(printf 'import %s; ' "${MODULES[@]}")

if [[ -f $STAMP && $(<"$STAMP") == "$wanted" ]] && "$VENV/bin/python" -c "$imports" 2>/dev/null; then
    log "requirements already installed (${REQUIREMENTS[*]})"
else
    log "installing ${REQUIREMENTS[*]} into $VENV"
    rm -f "$STAMP"
    PIP_NO_INPUT=1 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --upgrade "${REQUIREMENTS[@]}" </dev/null >&2
    "$VENV/bin/python" -c "$imports" || { log "error: the installed packages do not import"; exit 1; }
    echo "$wanted" >"$STAMP"
fi

echo "$VENV/bin/python"
