#!/usr/bin/env bash
# Builds dist/api_recorder-<version>-py3-none-<platform>.whl: the release `api-recorder` binary
# (Swift standard library linked statically: no Swift needed where it is installed) and the
# pytest plugin (python/api_recorder), registered through a pytest11 entry point.
#
#   scripts/build-wheel.sh          prints the wheel's path as its last line
#
# The version is the binary's own (`api-recorder --version`).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(scripts/build-release.sh | tail -n 1)
version=$("$bin/api-recorder" --version)
python3 scripts/build_wheel.py --binary "$bin/api-recorder" --version "$version" --out dist
