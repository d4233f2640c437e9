#!/usr/bin/env bash
# Formats every Swift source with the project's .swift-format (4 spaces, 120 columns, as
# SwiftNIO, AsyncHTTPClient and swift-log), then lints them strictly: any remaining finding fails.
#
#   scripts/format.sh          format in place, then lint
#   scripts/format.sh --lint   lint only (what .ci/run does first): exits 1 on any finding
#
# Generated code (the committed swift-openapi-generator client) is left as the generator wrote it.
set -euo pipefail
cd "$(dirname "$0")/.."

files=()
while IFS= read -r -d '' file; do files+=("$file"); done < <(
    git ls-files -z --cached --others --exclude-standard -- '*.swift' \
        ':!:Tests/APIRecorderTestingTests/GeneratedChatClient/*')

if [[ ${1:-} != --lint ]]; then
    echo "format: formatting ${#files[@]} files" >&2
    swift format format --parallel --in-place "${files[@]}"
fi
echo "format: linting ${#files[@]} files (swift format lint --strict)" >&2
swift format lint --strict --parallel "${files[@]}"
