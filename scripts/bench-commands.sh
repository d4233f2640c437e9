#!/usr/bin/env bash
# Whole commands as users run them, each against its baseline in the same run:
#   1. `api-recorder hash TREE` against `scripts/hash_baseline.py --print TREE` (the standard
#      library Python that prints the same lines);
#   2. `api-recorder verify TREE` against `scripts/verify_baseline.py TREE` (the same checks);
#   3. the session report's unused-recordings list over a tree of 100,000 recordings, and the
#      proxy's resident memory after replaying 10,000 distinct recordings of it
#      (`APIRecorderBench unused-list`), against the bare walk `find TREE -path '*/recordings/*'`
#      and the idle server's memory.
#
#   scripts/bench-commands.sh            COPIES=40 (copies of ../shared/corpus-sample: 3,280 files)
#                                        RECORDINGS=100000 REPLAYS=10000 ROUNDS=5
set -euo pipefail
cd "$(dirname "$0")/.."
copies="${COPIES:-40}"
rounds="${ROUNDS:-5}"
sample="../shared/corpus-sample"
[ -d "$sample/tests" ] || { echo "bench-commands: $sample is missing (the reference files beside the clone)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "building (release)..." >&2
release=$(scripts/build-release.sh 2>/dev/null | tail -n 1)
binary="$release/api-recorder"
bench="$release/APIRecorderBench"

mkdir -p "$work/tree"
for i in $(seq 1 "$copies"); do cp -r "$sample/tests" "$work/tree/copy$i"; done
files=$(find "$work/tree" -path '*/recordings/*.json' | wc -l)
echo "tree: $files recordings ($copies copies of $sample)"

# Median wall time of each command over the rounds, the two commands alternating.
python3 - "$rounds" "$work/tree" "$binary" <<'PY'
import statistics, subprocess, sys, time
rounds, tree, binary = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def timed(command):
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {result.stderr.decode()[-500:]}")
    return elapsed
pairs = [
    ("hash", [binary, "hash", tree], [sys.executable, "scripts/hash_baseline.py", "--print", tree]),
    ("verify", [binary, "verify", tree], [sys.executable, "scripts/verify_baseline.py", tree]),
]
for name, ours, theirs in pairs:
    mine, base = [], []
    for _ in range(rounds):
        mine.append(timed(ours))
        base.append(timed(theirs))
    m, b = statistics.median(mine), statistics.median(base)
    print(f"api-recorder {name}: {m * 1000:.0f} ms; Python baseline {b * 1000:.0f} ms: {b / m:.1f}x the baseline "
          f"(whole commands, median of {rounds})")
PY

"$bench" unused-list --binary "$binary" --recordings "${RECORDINGS:-100000}" --replays "${REPLAYS:-10000}" \
    --folder "$work/big"
