#!/usr/bin/env bash
# The one release build everything that needs release shares: the Python suite, the wheel and
# the benchmarks. The Swift standard library (and Foundation) is linked statically, so the
# binary runs where no Swift toolchain is installed (it needs glibc, libstdc++, libgcc_s and zlib).
#
#   scripts/build-release.sh        prints the release bin folder as its last line
#
# Every caller uses these same flags: a different set would rebuild the whole release tree.
set -euo pipefail
cd "$(dirname "$0")/.."
flags=(-c release --static-swift-stdlib)
# The products only: the test-support targets are not built for release.
swift build "${flags[@]}" --product api-recorder >&2
swift build "${flags[@]}" --product APIRecorderBench >&2
swift build "${flags[@]}" --show-bin-path
