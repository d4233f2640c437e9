#!/usr/bin/env bash
# Coverage-guided fuzzing of the JSON parser, the recording reader, the fault specs and the
# test-id rules with libFuzzer and AddressSanitizer (docs/fuzzing.md).
#
#   scripts/fuzz.sh SECONDS [--merge] [--keep-going] [TARGET...]
#                                         TARGET: json recording fault testid (default: all)
#
# 1. builds APIRecorderFuzz for libFuzzer and AddressSanitizer (release, -DFUZZING) in
#    .build-fuzz; later runs rebuild only what changed;
# 2. runs each target for SECONDS (-max_total_time) on a working copy of its corpus,
#    .build-fuzz/work/TARGET, which starts from Fuzz/corpus/TARGET and keeps what earlier runs
#    found; the committed corpus is never written unless --merge is given, which then minimises
#    the working copy into Fuzz/corpus/TARGET (-merge=1: only inputs that add coverage);
# 3. writes crash artifacts under .build-fuzz/artifacts/TARGET/ and logs under .build-fuzz/logs/.
#    A target stops at its first crash, unless --keep-going (libFuzzer's -fork=1
#    -ignore_crashes=1: it fuzzes on for the whole time and saves every crash it meets).
# Exits 1 when a target crashed (or broke an invariant, which aborts), after printing, for each
# crash input, the commands that reproduce it.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: scripts/fuzz.sh SECONDS [--merge] [--keep-going] [json|recording|fault|testid ...]" >&2
    exit 2
}
all_targets=(json recording fault testid)
seconds=""
merge=0
keep_going=()
targets=()
for argument in "$@"; do
    case "$argument" in
    --merge) merge=1 ;;
    --keep-going) keep_going=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1) ;;
    -h | --help) usage ;;
    json | recording | fault | testid) targets+=("$argument") ;;
    *)
        if [[ -z $seconds && $argument =~ ^[0-9]+$ ]]; then seconds=$argument; else usage; fi
        ;;
    esac
done
[[ -n $seconds ]] || usage
((${#targets[@]})) || targets=("${all_targets[@]}")

scratch=.build-fuzz
# SwiftPM's --sanitize=fuzzer keeps libFuzzer's main (it then leaves the executable's entry point
# alone) and instruments the C code; swiftc honours only its last -sanitize=, and SwiftPM passes
# its --sanitize values in no fixed order, so the Swift code gets both sanitizers from the
# -Xswiftc flag, which comes last.
flags=(--scratch-path "$scratch" -c release --sanitize=fuzzer --sanitize=address
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING)
echo "== building APIRecorderFuzz for libFuzzer (${flags[*]})" >&2
swift build "${flags[@]}" --product APIRecorderFuzz >&2
fuzzer="$(swift build "${flags[@]}" --show-bin-path)/APIRecorderFuzz"

# The Swift runtime's backtracer would otherwise catch the crash first and stall under ASan;
# libFuzzer's own handler reports it and saves the input.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:symbolize=1}"

crashes=()
for target in "${targets[@]}"; do
    work="$scratch/work/$target"
    artifacts="$scratch/artifacts/$target"
    log="$scratch/logs/$target.log"
    mkdir -p "$work" "$artifacts" "$(dirname "$log")"
    cp -n Fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
    before=$(ls "$artifacts")
    echo "== $target: ${seconds}s on $work (log: $log)" >&2
    status=0
    API_RECORDER_FUZZ_TARGET=$target "$fuzzer" "$work" \
        -dict="Fuzz/dict/$target.dict" \
        -max_total_time="$seconds" \
        -rss_limit_mb=2048 \
        -timeout=10 \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts/" \
        "${keep_going[@]}" \
        >"$log" 2>&1 || status=$?
    grep -E "^stat::number_of_executed_units|^Done |^INFO: fuzzed for" "$log" | sed "s/^/  /" >&2 || true
    found=$(comm -13 <(echo "$before") <(ls "$artifacts") | grep -E "^(crash|leak|timeout|oom)-" || true)
    if [[ -n $found ]] || ((status != 0)); then
        grep -E "Fatal error|invariant broken|ERROR: (libFuzzer|AddressSanitizer)" "$log" | sort -u | head -n 5 |
            sed "s/^/  /" >&2 || true
        if [[ -n $found ]]; then
            for name in $found; do crashes+=("$target $artifacts/$name"); done
        else
            crashes+=("$target (exit $status, no input saved: see $log)")
        fi
        continue
    fi
    if ((merge)); then
        echo "== $target: merging new inputs into Fuzz/corpus/$target" >&2
        count=$(find Fuzz/corpus/"$target" -type f | wc -l)
        API_RECORDER_FUZZ_TARGET=$target "$fuzzer" -merge=1 Fuzz/corpus/"$target" "$work" \
            >"$scratch/logs/$target.merge.log" 2>&1
        echo "  $(($(find Fuzz/corpus/"$target" -type f | wc -l) - count)) inputs added" >&2
    fi
done

if ((${#crashes[@]})); then
    echo "== crashes" >&2
    for crash in "${crashes[@]}"; do
        read -r target artifact <<<"$crash"
        echo "$crash" >&2
        [[ -f $artifact ]] || continue
        echo "  reproduce: SWIFT_BACKTRACE=enable=no API_RECORDER_FUZZ_TARGET=$target $fuzzer $artifact" >&2
        echo "  without sanitizers: swift run --scratch-path $scratch APIRecorderFuzz $target $artifact" >&2
    done
    exit 1
fi
echo "== no crashes in: ${targets[*]}" >&2
