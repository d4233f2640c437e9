#!/usr/bin/env bash
# Re-records Examples/python-app through record-if-missing against the real local model server
# (llama.cpp + Gemma 3 270M, scripts/model-server.sh), standing in for OpenAI and Anthropic:
# tests/recordings/ through the pytest plugin, recordings/ (for `python app.py`) through `run`.
#
#   scripts/record-python-app.sh
#
# The presets keep the recordings naming https://api.openai.com/v1 and https://api.anthropic.com,
# so they replay anywhere. Uses the release binary and the plugin from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="$(scripts/build-release.sh 2>/dev/null | tail -n 1)/api-recorder"
python=$(scripts/python-env.sh | tail -n 1)
already_running=false
scripts/model-server.sh url >/dev/null 2>&1 && already_running=true
upstream=$(scripts/model-server.sh start)
trap '$already_running || scripts/model-server.sh stop' EXIT

cd Examples/python-app
rm -rf tests/recordings recordings
export API_RECORDER_BIN=$binary PYTHONPATH=$PWD/../../python OPENAI_API_KEY=unused ANTHROPIC_API_KEY=unused
routes=(--upstream "openai=$upstream/v1" --upstream "anthropic=$upstream")
"$python" -m pytest -p api_recorder.pytest_plugin -p no:cacheprovider --api-recorder-mode record-if-missing \
    "--api-recorder-upstream=openai=$upstream/v1" "--api-recorder-upstream=anthropic=$upstream"
"$binary" run --mode record-if-missing "${routes[@]}" -- "$python" app.py ask story weather research summarize
"$binary" verify .
