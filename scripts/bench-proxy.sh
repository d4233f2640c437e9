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
#   scripts/bench-proxy.sh            (ROUNDS=5 rounds of DURATION=3 seconds per server by default)
#
# This machine's speed drifts by tens of percent from one minute to the next (it is shared), so
# the servers are measured in interleaved rounds, one short wrk run each per round, and a ratio is
# the median of the rounds' ratios: each round's servers saw the same machine.
#
# BASELINE=/path/to/another/api-recorder also measures that binary's replay in the same run (for
# example a release build of the previous commit), so a change's effect is a ratio of one run.
# REPLAY_ONLY=1 stops after the replay figures (section 1).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-3}"
rounds="${ROUNDS:-5}"
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
# The same exchange with 512 different questions, each with its recording: wrk sends them in turn
# (distinct.lua), so no request repeats within 512 and the figure is the path of a first-time
# request (parse, hash, look-up), not that of a request sent again (the preparation cache).
python3 - "$recording" "$work" <<'PY'
import json, os, sys
sys.path.insert(0, "scripts")
from hash_baseline import canonical, recording_identity, sha256_hex
source, work = sys.argv[1], sys.argv[2]
rec = json.load(open(source))
folder = os.path.join(work, "root", os.path.relpath(os.path.dirname(source), "Examples"))
bodies = []
for number in range(512):
    variant = json.loads(json.dumps(rec))
    variant["request"]["body"]["messages"][-1]["content"] += f" (question {number})"
    name = sha256_hex(canonical(recording_identity(variant))) + ".json"
    with open(os.path.join(folder, name), "w") as out:
        json.dump(variant, out, indent=2)
        out.write("\n")
    bodies.append(json.dumps(variant["request"]["body"]))
with open(f"{work}/distinct.lua", "w") as out:
    out.write("bodies = {" + ",".join(json.dumps(body) for body in bodies) + "}\n")
    out.write(f"headers = {{[\"Content-Type\"] = \"application/json\", [\"X-Test-ID\"] = {json.dumps(rec['test_id'])}}}\n")
    out.write("counter = 0\n")
    out.write("request = function()\n  counter = counter + 1\n")
    out.write("  return wrk.format(\"POST\", nil, headers, bodies[(counter % #bodies) + 1])\nend\n")
PY

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
    local connections="${3:-64}" threads=2 script="${4:-post.lua}"
    [ "$connections" -lt 2 ] && threads=1
    wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$work/$script" \
        "http://127.0.0.1:$2/llama/chat/completions" >"$work/wrk-$1.txt"
    # A figure of errors (a miss is a fast 404) would flatter: every answer must be a replay.
    if grep -qE "Non-2xx|Socket errors" "$work/wrk-$1.txt"; then
        echo "bench-proxy: $1 answered errors:" >&2
        cat "$work/wrk-$1.txt" >&2
        exit 1
    fi
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk-$1.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$work/wrk-$1.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$work/wrk-$1.txt")
    echo "$1 $rps $p50 $p99"
}
# Prints each server's median over the rounds, and the medians of the per-round ratios.
summarize() {
    python3 - "$1" "$2" <<'PY'
import statistics, sys
def ms(text):
    return float(text[:-2]) if text.endswith("ms") else float(text[:-2]) / 1000 if text.endswith("us") else float(text[:-1]) * 1000
rounds = {}
for line in open(sys.argv[1]):
    number, name, rps, p50, p99 = line.split()
    rounds.setdefault(int(number), {})[name] = (float(rps), ms(p50), ms(p99))
names = list(rounds[min(rounds)])
for name in names:
    rps = statistics.median(r[name][0] for r in rounds.values())
    p50 = statistics.median(r[name][1] for r in rounds.values())
    p99 = statistics.median(r[name][2] for r in rounds.values())
    print(f"  {name:<13} {rps:10.0f} req/s   p50 {p50:.3f} ms   p99 {p99:.3f} ms")
def ratio(a, b):
    return statistics.median(r[a][0] / r[b][0] for r in rounds.values())
def spread(a, b):
    values = sorted(r[a][0] / r[b][0] for r in rounds.values())
    return f"(rounds {values[0]:.2f}..{values[-1]:.2f})"
if sys.argv[2] == "throughput":
    print(f"  api-recorder / ceiling:   {ratio('api-recorder', 'ceiling'):.2f} {spread('api-recorder', 'ceiling')} (target >= 0.8, aim 0.9)")
    print(f"  distinct / ceiling:       {ratio('distinct', 'ceiling-distinct'):.2f} {spread('distinct', 'ceiling-distinct')} (512 requests in turn, none sent again)")
    if "baseline" in names:
        print(f"  baseline / ceiling:       {ratio('baseline', 'ceiling'):.2f} (the BASELINE binary)")
        print(f"  api-recorder / baseline:  {ratio('api-recorder', 'baseline'):.2f} {spread('api-recorder', 'baseline')}")
else:
    gap = statistics.median(r['api-recorder'][1] - r['ceiling'][1] for r in rounds.values())
    print(f"  p50 api-recorder - ceiling: {gap:+.3f} ms (median of the rounds; target within 0.1 ms)")
PY
}
echo "replay of one small chat recording, wrk -t2 -c64, $rounds interleaved rounds of ${duration}s per server:"
: >"$work/results.txt"
for round in $(seq 1 "$rounds"); do
    {
        run_wrk ceiling "$ceiling_port"
        run_wrk api-recorder "$proxy_port"
        if [ -n "${BASELINE:-}" ]; then run_wrk baseline "$baseline_port"; fi
        run_wrk ceiling-distinct "$ceiling_port" 64 distinct.lua
        run_wrk distinct "$proxy_port" 64 distinct.lua
    } | sed "s/^/$round /" >>"$work/results.txt"
done
# mitmproxy is two orders of magnitude slower: one run, against the last round's api-recorder.
read -r _ mitm_rps _ < <(run_wrk mitmproxy "$mitm_port")
summarize "$work/results.txt" throughput
tail -n +1 "$work/results.txt" | awk -v mitm="$mitm_rps" '$2 == "api-recorder" {last = $3}
    END {printf "  mitmproxy     %10.0f req/s   api-recorder / mitmproxy: %.1fx\n", mitm, last / mitm}'
echo "one connection (wrk -t1 -c1), latency, $rounds interleaved rounds:"
: >"$work/single.txt"
for round in $(seq 1 "$rounds"); do
    {
        run_wrk ceiling "$ceiling_port" 1
        run_wrk api-recorder "$proxy_port" 1
    } | sed "s/^/$round /" >>"$work/single.txt"
done
summarize "$work/single.txt" latency
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
