#!/usr/bin/env bash
# The whole test suite, from a fresh clone: build, then every test target.
#
#   scripts/test.sh [swift test arguments...]
#
# Tests that compare with the reference files skip themselves, with a message, when ../shared is
# absent; tests that compare with Python skip when python3 is absent.
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
swift test --skip-build "$@"
