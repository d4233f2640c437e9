#!/usr/bin/env bash
# Re-records the bundled example recordings under Examples/ through the proxy, against the real
# local model server (llama.cpp + Gemma 3 270M, scripts/model-server.sh).
#
#   scripts/record-examples.sh
#
# The route is recorded as http://127.0.0.1:8080/v1 (llama-server's usual address), whatever port
# the model server really has, so that `api-recorder serve --root Examples --upstream
# llama=http://127.0.0.1:8080/v1` replays them.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product api-recorder >/dev/null
binary="$(swift build --show-bin-path)/api-recorder"
# Leave a model server that was already running as it was.
already_running=false
scripts/model-server.sh url >/dev/null 2>&1 && already_running=true
upstream=$(scripts/model-server.sh start)
work=$(mktemp -d)
proxy_pid=""
cleanup() {
    [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
    $already_running || scripts/model-server.sh stop
    rm -rf "$work"
}
trap cleanup EXIT

rm -rf Examples/examples Examples/recordings Examples/Tests
"$binary" serve --port 0 --mode record --root Examples --upstream "llama=$upstream/v1" \
    --recorded-base llama=http://127.0.0.1:8080/v1 >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$work/proxy.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -E 's/.*:([0-9]+) mode=.*/\1/' "$work/proxy.out" | head -1)
base="http://127.0.0.1:$port/llama"

post() {  # post TEST_ID PATH JSON
    curl -sf --max-time 120 "$base$2" -H "Content-Type: application/json" -H "X-Test-ID: $1" -d "$3" >/dev/null
}
tools='[{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather for a city.",
  "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]'

post "examples/test_chat.py::test_answer" /chat/completions \
    '{"model": "gemma-3-270m", "messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 16, "temperature": 0, "stop": ["\n"]}'
post "examples/test_chat.py::test_stream" /chat/completions \
    '{"model": "gemma-3-270m", "messages": [{"role": "user", "content": "Say hello."}], "stream": true, "max_tokens": 16, "temperature": 0}'
post "examples/test_chat.py::test_tool_call" /chat/completions \
    "{\"model\": \"gemma-3-270m\", \"messages\": [{\"role\": \"user\", \"content\": \"What is the weather in Paris?\"}], \"stream\": true, \"max_tokens\": 128, \"temperature\": 0, \"tools\": $tools, \"tool_choice\": \"required\", \"parallel_tool_calls\": false}"
post "examples/test_embeddings.py::test_embed" /embeddings '{"model": "gemma-3-270m", "input": "The capital of France is Paris."}'
curl -sf "$base/models" -H "X-Test-ID: examples/test_chat.py::test_models" >/dev/null

kill "$proxy_pid"
wait "$proxy_pid" 2>/dev/null || true
proxy_pid=""
"$binary" verify Examples
