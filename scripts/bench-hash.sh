#!/usr/bin/env bash
# Hash throughput of api-recorder against the Python baseline, measured in the same run.
#
#   scripts/bench-hash.sh [DIR] [PASSES]
#
# Both sides read every recording under DIR into memory first, then time PASSES passes of
# parse + request identity + SHA-256. Three rounds alternate the two; the medians are compared.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-../shared/corpus-sample}"
passes="${2:-50}"
[ -d "$dir" ] || { echo "bench-hash: no folder $dir (pass a folder of recordings)" >&2; exit 2; }

bench="$(scripts/build-release.sh 2>/dev/null | tail -n 1)/APIRecorderBench"
python="${PYTHON:-python3}"

swift_times=()
python_times=()
for round in 1 2 3; do
    swift_line=$("$bench" hash "$dir" --repeat "$passes")
    python_line=$("$python" scripts/hash_baseline.py --repeat "$passes" "$dir")
    swift_times+=("$(sed -E 's/.* seconds=([0-9.]+).*/\1/' <<<"$swift_line")")
    python_times+=("$(sed -E 's/.* seconds=([0-9.]+).*/\1/' <<<"$python_line")")
    echo "round $round: $swift_line"
    echo "round $round: $python_line"
done

"$python" - "$dir" "${swift_times[@]}" "${python_times[@]}" <<'PY'
import os, statistics, sys
folder = sys.argv[1]
times = [float(t) for t in sys.argv[2:]]
swift, python = statistics.median(times[:3]), statistics.median(times[3:])
print(f"median seconds: swift {swift:.4f}, python {python:.4f}")
print(f"hash throughput: {python / swift:.1f}x the Python baseline on {folder}")
PY
