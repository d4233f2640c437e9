#!/usr/bin/env bash
# Re-records the SwiftAgent example's API calls into Tests/SwiftAgentTests/recordings/:
# starts the project's local model server (llama.cpp + Gemma 3 270M, scripts/model-server.sh) on
# port 8080 and the Tavily stand-in (scripts/tavily-standin.py) on port 8766, runs
# `swift test` in record mode against them, then stops both (the model server even if it was
# already running). A run without arguments removes the old recordings first, so none is left
# stale (git has them); with arguments (say --filter ask) they are kept and overwritten.
#
#   Examples/SwiftAgent/record.sh [swift test arguments...]
#
# Environment:
#   TAVILY_API_KEY       default tvly-example-secret, a dummy the stand-in accepts; the script
#                        fails if the key appears in the recordings
#   TAVILY_STANDIN_PORT  default 8766. Fixed because recordings keep the URL they were made
#                        against, so re-recordings stay free of noise; the host and port are not
#                        part of the request hash, so replay works from any base URL.
#
# The replay run needs none of this, and no network:
#   cd Examples/SwiftAgent && swift test
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RECORDINGS=$HERE/Tests/SwiftAgentTests/recordings
MODEL_PORT=8080
STANDIN_PORT=${TAVILY_STANDIN_PORT:-8766}
export TAVILY_API_KEY=${TAVILY_API_KEY:-tvly-example-secret}

log() { echo "record: $*" >&2; }

STANDIN_PID=
cleanup() {
    if [[ -n $STANDIN_PID ]]; then kill "$STANDIN_PID" 2>/dev/null || true; fi
    bash "$REPO/scripts/model-server.sh" stop || true
}
trap cleanup EXIT

# Built first, so that a build error does not cost the old recordings.
log "building"
(cd "$HERE" && swift build --build-tests)

log "starting the model server on port $MODEL_PORT"
# Retried for a while: model-server.sh's free-port probe binds without SO_REUSEADDR, so it
# reports the port as taken for up to a minute after a server on it stopped (TIME_WAIT).
deadline=$((SECONDS + 90))
until MODEL_URL=$(bash "$REPO/scripts/model-server.sh" start "$MODEL_PORT"); do
    if ((SECONDS >= deadline)); then
        log "error: could not start the model server on port $MODEL_PORT"
        exit 1
    fi
    log "retrying in 5 s"
    sleep 5
done

log "starting the Tavily stand-in"
STANDIN_OUT=$(mktemp)
python3 "$REPO/scripts/tavily-standin.py" "$STANDIN_PORT" >"$STANDIN_OUT" &
STANDIN_PID=$!
for _ in $(seq 50); do
    if [[ -s $STANDIN_OUT ]] || ! kill -0 "$STANDIN_PID" 2>/dev/null; then break; fi
    sleep 0.1
done
TAVILY_URL=$(head -n 1 "$STANDIN_OUT")
rm -f "$STANDIN_OUT"
[[ $TAVILY_URL == http://* ]] || { log "the Tavily stand-in did not start (port $STANDIN_PORT taken?)"; exit 1; }
log "model server $MODEL_URL, Tavily stand-in $TAVILY_URL"

# Only a full run starts from nothing; a filtered one keeps the other tests' recordings.
if (($# == 0)); then rm -rf "$RECORDINGS"; fi
cd "$HERE"
API_RECORDER_MODE=record SWIFT_AGENT_BASE_URL="$MODEL_URL/v1" TAVILY_BASE_URL="$TAVILY_URL" \
    swift test "$@"

if grep -rqF -- "$TAVILY_API_KEY" "$RECORDINGS"; then
    log "error: the Tavily key appears in $RECORDINGS"
    exit 1
fi
log "recorded $(find "$RECORDINGS" -name '*.json' | wc -l) files into $RECORDINGS"
