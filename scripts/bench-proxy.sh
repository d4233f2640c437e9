#!/usr/bin/env bash
# Proxy benchmarks, every figure measured in this run:
#   1. replay throughput and latency of one small chat recording with wrk at 64 connections,
#      against a bare Hummingbird server returning the same bytes (the ceiling) and against
#      mitmproxy's --server-replay in reverse-proxy mode;
#   2. a 500-chunk stream replayed unpaced: time to last byte;
#   3. record mode: time to first chunk added over calling the upstream directly, and 64
#      different slow streams recorded at once against one alone;
#   4. resident memory after replaying every recording of ../shared/corpus-sample.
#
#   scripts/bench-proxy.sh            (DURATION=10 seconds per wrk run by default)
#
# BASELINE=/path/to/another/api-recorder also measures that binary's replay in the same run (for
# example a release build of the previous commit), so a change's effect is a ratio of one run.
# REPLAY_ONLY=1 stops after the replay figures (section 1).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-10}"
work=$(mktemp -d)
pids=()
cleanup() {
    # Servers started inside $(start ...) run in a subshell: their pids are in $work/pids.
    [ -f "$work/pids" ] && while read -r pid; do pids+=("$pid"); done <"$work/pids"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
venv=".build/venv-bench"
[ -x "$venv/bin/mitmdump" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q mitmproxy; }

echo "building (release)..." >&2
release=$(scripts/build-release.sh 2>/dev/null | tail -n 1)
binary="$release/api-recorder"
bench="$release/APIRecorderBench"

# Starts a command in the background and waits for its "listening on http://...:PORT" line.
start() {
    local log="$work/$1.log"
    shift
    "$@" >"$log" 2>&1 &
    echo $! >>"$work/pids"
    for _ in $(seq 1 200); do
        if grep -qE "listening on http://[0-9.]+:[0-9]+" "$log" 2>/dev/null; then
            grep -oE "listening on http://[0-9.]+:[0-9]+" "$log" | head -1 | sed -E 's/.*:([0-9]+)$/\1/'
            return
        fi
        sleep 0.05
    done
    echo "bench-proxy: $* did not start:" >&2
    cat "$log" >&2
    exit 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until a TCP port accepts connections.
wait_port() {
    for _ in $(seq 1 200); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return
        sleep 0.05
    done
    echo "bench-proxy: nothing listens on $1" >&2
    exit 1
}

# --- 1. Replay throughput -------------------------------------------------------------------
recording="Examples/examples/recordings/b13f5200b993cfc292338410aeca85cf747f22485f0b697d21013816c5fb0f55.json"
cp -r Examples "$work/root"
python3 - "$recording" "$work" <<'PY'
import json, sys
rec = json.load(open(sys.argv[1]))
body = json.dumps(rec["request"]["body"])
open(f"{sys.argv[2]}/request.json", "w").write(body)
open(f"{sys.argv[2]}/post.lua", "w").write(
    'wrk.method = "POST"\n'
    f"wrk.body = {json.dumps(body)}\n"
    'wrk.headers["Content-Type"] = "application/json"\n'
    f'wrk.headers["X-Test-ID"] = {json.dumps(rec["test_id"])}\n')
open(f"{sys.argv[2]}/test_id", "w").write(rec["test_id"])
PY
test_id=$(cat "$work/test_id")

proxy_port=$(start proxy "$binary" serve --port 0 --mode replay --root "$work/root" \
    --upstream llama=http://127.0.0.1:8080/v1)
curl -sf -X POST -H "Content-Type: application/json" -H "X-Test-ID: $test_id" \
    --data @"$work/request.json" "http://127.0.0.1:$proxy_port/llama/chat/completions" >"$work/response.json"

ceiling_port=$(start ceiling "$bench" static-server --body "$work/response.json")
if [ -n "${BASELINE:-}" ]; then
    baseline_port=$(start baseline "$BASELINE" serve --port 0 --mode replay --root "$work/root" \
        --upstream llama=http://127.0.0.1:8080/v1)
fi

# mitmproxy: capture the exchange once through a reverse proxy in front of api-recorder, then
# serve it with --server-replay in reverse-proxy mode (no upstream reachable).
capture_port=$(free_port)
"$venv/bin/mitmdump" -q --mode "reverse:http://127.0.0.1:$proxy_port" -p "$capture_port" -w "$work/flows" &
capture_pid=$!
pids+=($capture_pid)
wait_port "$capture_port"
curl -sf -X POST -H "Content-Type: application/json" -H "X-Test-ID: $test_id" \
    --data @"$work/request.json" "http://127.0.0.1:$capture_port/llama/chat/completions" >/dev/null
kill "$capture_pid"
wait "$capture_pid" 2>/dev/null || true
mitm_port=$(free_port)
"$venv/bin/mitmdump" -q --mode "reverse:http://127.0.0.1:9" -p "$mitm_port" --server-replay "$work/flows" \
    --set server_replay_reuse=true --set server_replay_extra=kill \
    --set server_replay_ignore_host=true --set server_replay_ignore_port=true --set connection_strategy=lazy &
pids+=($!)
wait_port "$mitm_port"
curl -sf -X POST -H "Content-Type: application/json" -H "X-Test-ID: $test_id" \
    --data @"$work/request.json" "http://127.0.0.1:$mitm_port/llama/chat/completions" | cmp -s - "$work/response.json" \
    || { echo "bench-proxy: mitmproxy does not replay the same bytes" >&2; exit 1; }

run_wrk() {
    local connections="${3:-64}" threads=2
    [ "$connections" -lt 2 ] && threads=1
    wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$work/post.lua" \
        "http://127.0.0.1:$2/llama/chat/completions" >"$work/wrk-$1.txt"
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk-$1.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$work/wrk-$1.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$work/wrk-$1.txt")
    echo "$1 $rps $p50 $p99"
}
echo "replay of one small chat recording, wrk -t2 -c64 -d${duration}s:"
{
    run_wrk ceiling "$ceiling_port"
    run_wrk api-recorder "$proxy_port"
    if [ -n "${BASELINE:-}" ]; then run_wrk baseline "$baseline_port"; fi
    run_wrk mitmproxy "$mitm_port"
} | tee "$work/results.txt" | awk '{printf "  %-13s %10s req/s   p50 %-9s p99 %s\n", $1, $2, $3, $4}'
python3 - "$work/results.txt" <<'PY'
import sys
rps = {line.split()[0]: float(line.split()[1]) for line in open(sys.argv[1])}
print(f"  api-recorder / ceiling:   {rps['api-recorder'] / rps['ceiling']:.2f} (target >= 0.5, ideally >= 0.8)")
print(f"  api-recorder / mitmproxy: {rps['api-recorder'] / rps['mitmproxy']:.1f}x")
if "baseline" in rps:
    print(f"  baseline / ceiling:       {rps['baseline'] / rps['ceiling']:.2f} (the BASELINE binary)")
    print(f"  api-recorder / baseline:  {rps['api-recorder'] / rps['baseline']:.2f}")
PY
echo "one connection (wrk -t1 -c1), latency:"
{
    run_wrk ceiling "$ceiling_port" 1
    run_wrk api-recorder "$proxy_port" 1
} | tee "$work/single.txt" | awk '{printf "  %-13s %10s req/s   p50 %-9s p99 %s\n", $1, $2, $3, $4}'
python3 - "$work/single.txt" <<'PY'
import sys
def ms(text):
    return float(text[:-2]) if text.endswith("ms") else float(text[:-2]) / 1000 if text.endswith("us") else float(text[:-1]) * 1000
p50 = {line.split()[0]: ms(line.split()[2]) for line in open(sys.argv[1])}
print(f"  p50 api-recorder - ceiling: {p50['api-recorder'] - p50['ceiling']:+.3f} ms (target within 0.1 ms)")
PY
[ -n "${REPLAY_ONLY:-}" ] && exit 0

# --- 2 and 3. Streams -----------------------------------------------------------------------
"$bench" stream --chunks 500 --runs 200
"$bench" record-overhead --runs 300
"$bench" concurrent-streams --streams 64
"$bench" miss-diagnosis --recordings 1000

# --- 4. Memory ------------------------------------------------------------------------------
if [ -d ../shared/corpus-sample ]; then
    cp -r ../shared/corpus-sample "$work/corpus"
    python3 scripts/bench_replay_memory.py "$binary" "$work/corpus"
else
    echo "memory: ../shared/corpus-sample is absent; skipped"
fi
