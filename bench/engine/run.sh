#!/usr/bin/env bash
# Engine benchmark: Sovereign vs llama.cpp's own tools, on the same model and thread count.
#
#   bash bench/engine/run.sh
#
# 1. pp512 / tg128 tokens/s of our engine (sov-bench-engine) vs llama.cpp's `llama-bench`.
# 2. Aggregate completion tokens/s over HTTP at 1 and 8 concurrent clients of `sov serve`
#    vs llama.cpp's `llama-server` and the OpenAI server of `llama-cpp-python`, and vs
#    `sov serve` itself with the seal's kernel layers left off (what the seal costs).
# Prints a table with ratios and writes the raw numbers as JSON to $SOV_CACHE/bench/results/.
#
# The comparison tools are built once into the cache (idempotent): llama-bench and llama-server
# from the llama.cpp that the llama-cpp-python source package carries, and llama-cpp-python
# itself (with its server extra) in a virtual environment. Only package registries are used.
#
# Environment (all optional):
#   SOV_BENCH_MODEL      GGUF file (default: the starter model, fetched by scripts/lib.sh)
#   SOV_BENCH_THREADS    CPU threads for every engine (default: nproc)
#   SOV_BENCH_REPS       repetitions of pp/tg (default: 5)
#   SOV_BENCH_REQUESTS   requests per client in the HTTP tests (default: 4)
#   SOV_BENCH_CLIENTS    concurrency levels (default: "1 8")
#   SOV_BENCH_PARALLEL   server slots for sov serve and llama-server (default: 8)
#   SOV_BENCH_SKIP       space-separated parts to skip: pp llama-server llama-cpp-python sov-serve
#   SOV_BENCH_LLAMA_CPP_PYTHON  llama-cpp-python version (default: 0.3.36)
#   SOV_CACHE            cache root (default: ~/.cache/sovereign)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../../scripts/lib.sh
source "$REPO/scripts/lib.sh"  # SOV_CACHE, CARGO_TARGET_DIR, say, ensure_build_deps, ensure_starter_model
# shellcheck source=../lib.sh
source "$REPO/bench/lib.sh"    # LCP_VERSION, LCP_SRC, ensure_llama_cpp_source, set_engine

THREADS="${SOV_BENCH_THREADS:-$(nproc)}"
REPS="${SOV_BENCH_REPS:-5}"
REQUESTS="${SOV_BENCH_REQUESTS:-4}"
CLIENTS="${SOV_BENCH_CLIENTS:-1 8}"
PARALLEL="${SOV_BENCH_PARALLEL:-8}"
SKIP=" ${SOV_BENCH_SKIP:-} "
CTX_PER_SLOT=4096
MAX_TOKENS=128
PORT_BASE="${SOV_BENCH_PORT:-18480}"

TOOLS_BUILD="$BENCH/llama.cpp-build-$LCP_VERSION"
VENV="$BENCH/venv-$LCP_VERSION"
LOGS="$BENCH/logs"
RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)"
RAW="$BENCH/results/engine-$RUN_ID"
mkdir -p "$BENCH" "$LOGS" "$RAW"

skipped() { [[ "$SKIP" == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------------
# Tools (cached)

ensure_llama_tools() {
    if [ -x "$TOOLS_BUILD/bin/llama-bench" ] && [ -x "$TOOLS_BUILD/bin/llama-server" ]; then
        return
    fi
    ensure_llama_cpp_source
    say "building llama-bench and llama-server (Release, once; several minutes)"
    cmake -S "$LCP_SRC/vendor/llama.cpp" -B "$TOOLS_BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DBUILD_SHARED_LIBS=OFF >"$LOGS/llama-tools-configure.log" 2>&1
    cmake --build "$TOOLS_BUILD" --config Release -j "$(nproc)" --target llama-bench llama-server \
        >"$LOGS/llama-tools-build.log" 2>&1 || { tail -n 30 "$LOGS/llama-tools-build.log" >&2; exit 1; }
}

ensure_llama_cpp_python() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp.server.app" 2>/dev/null; then
        return
    fi
    ensure_llama_cpp_source
    say "installing llama-cpp-python[server] $LCP_VERSION into $VENV (builds llama.cpp; ~10 minutes, once)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >&2
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$VENV/bin/pip" install --disable-pip-version-check \
        --find-links "$BENCH/sdist" --no-binary llama-cpp-python \
        "llama-cpp-python[server]==$LCP_VERSION" >"$LOGS/llama-cpp-python-install.log" 2>&1 \
        || { tail -n 30 "$LOGS/llama-cpp-python-install.log" >&2; exit 1; }
}

# ---------------------------------------------------------------------------------------------
# Servers: exactly one runs at a time (OpenMP thread pools collapse when engines share cores).

SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
trap stop_server EXIT

wait_ready() { # URL LOG
    local url="$1" log="$2"
    for _ in $(seq 1 600); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "the server exited before it was ready; its log ($log):" >&2
            tail -n 30 "$log" >&2
            exit 1
        fi
        if python3 -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url" 2>/dev/null; then
            return
        fi
        sleep 0.5
    done
    echo "the server did not become ready in 300 s ($log)" >&2
    exit 1
}

load_test() { # NAME PORT EXTRA_ARGS...
    local name="$1" port="$2"
    shift 2
    local c
    for c in $CLIENTS; do
        say "$name: $c client(s) x $REQUESTS request(s), max_tokens $MAX_TOKENS"
        python3 "$HERE/load.py" --url "http://127.0.0.1:$port" --model bench --clients "$c" \
            --requests "$REQUESTS" --max-tokens "$MAX_TOKENS" --label "$name" "$@" \
            >"$RAW/http-$name-c$c.json"
        cat "$RAW/http-$name-c$c.json" >&2
    done
}

# ---------------------------------------------------------------------------------------------

ensure_build_deps
MODEL="${SOV_BENCH_MODEL:-$(ensure_starter_model)}"
[ -f "$MODEL" ] || { echo "no model file at $MODEL" >&2; exit 1; }
if ! skipped pp || ! skipped llama-server; then ensure_llama_tools; fi
skipped llama-cpp-python || ensure_llama_cpp_python
say "building sov and sov-bench-engine (release)"
(cd "$REPO" && cargo build --release --quiet -p sov-cli -p sov-bench-engine)
SOV="$CARGO_TARGET_DIR/release/sov"
SOV_BENCH="$CARGO_TARGET_DIR/release/sov-bench-engine"

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
say "model $MODEL, $THREADS threads, $REPS repetitions; raw results in $RAW"

# 1. pp512 / tg128 -------------------------------------------------------------------------------
if ! skipped pp; then
    say "llama-bench: pp512 + tg128"
    "$TOOLS_BUILD/bin/llama-bench" -m "$MODEL" -t "$THREADS" -p 512 -n 128 -r "$REPS" -o json \
        >"$RAW/llama-bench.json" 2>"$LOGS/llama-bench.log"
    say "sov-bench-engine: pp512 + tg128"
    "$SOV_BENCH" --model "$MODEL" --threads "$THREADS" --reps "$REPS" --pp 512 --tg 128 \
        >"$RAW/sov-bench-engine.json" 2>"$LOGS/sov-bench-engine.log"
fi

# 2. HTTP ------------------------------------------------------------------------------------------
if ! skipped llama-server; then
    port=$((PORT_BASE + 1))
    say "starting llama-server ($PARALLEL slots)"
    "$TOOLS_BUILD/bin/llama-server" -m "$MODEL" -t "$THREADS" -tb "$THREADS" -np "$PARALLEL" \
        -c $((PARALLEL * CTX_PER_SLOT)) --host 127.0.0.1 --port "$port" -a bench \
        >"$LOGS/llama-server.log" 2>&1 &
    SERVER_PID=$!
    wait_ready "http://127.0.0.1:$port/health" "$LOGS/llama-server.log"
    load_test llama-server "$port" --ignore-eos
    stop_server
fi

if ! skipped llama-cpp-python; then
    port=$((PORT_BASE + 2))
    say "starting llama-cpp-python's server (it serves one request at a time)"
    "$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias bench \
        --n_threads "$THREADS" --n_threads_batch "$THREADS" --n_ctx "$CTX_PER_SLOT" \
        --host 127.0.0.1 --port "$port" >"$LOGS/llama-cpp-python.log" 2>&1 &
    SERVER_PID=$!
    wait_ready "http://127.0.0.1:$port/v1/models" "$LOGS/llama-cpp-python.log"
    # It has no ignore_eos; min_tokens bans the end token until max_tokens is reached.
    load_test llama-cpp-python "$port" --min-tokens "$MAX_TOKENS"
    stop_server
fi

if ! skipped sov-serve; then
    port=$((PORT_BASE + 3))
    home="$BENCH/sov-home"
    rm -rf "$home"
    "$SOV" --home "$home" init >"$LOGS/sov-init.log" 2>&1
    "$SOV" --home "$home" model import "$MODEL" --name bench >>"$LOGS/sov-init.log" 2>&1
    set_engine "$home/sov.toml" threads="$THREADS" parallel="$PARALLEL" context_length="$CTX_PER_SLOT"
    # The owner's token, printed once by `sov init`, for the load generator.
    SOV_BENCH_TOKEN="$(grep -oE 'sov_[A-Za-z0-9_-]{43}' "$LOGS/sov-init.log" | head -n 1)"
    export SOV_BENCH_TOKEN
    # The same server sealed (as shipped) and with the seal's kernel layers left off, to
    # measure what Landlock and seccomp cost.
    for variant in sov-serve sov-serve-unsealed; do
        extra=()
        [ "$variant" = sov-serve-unsealed ] && extra=(--seal-unavailable landlock --seal-unavailable seccomp)
        say "starting $variant ($PARALLEL slots)"
        "$SOV" --home "$home" serve --listen "127.0.0.1:$port" "${extra[@]}" >"$LOGS/$variant.log" 2>&1 &
        SERVER_PID=$!
        wait_ready "http://127.0.0.1:$port/healthz" "$LOGS/$variant.log"
        load_test "$variant" "$port" --ignore-eos --token-env SOV_BENCH_TOKEN
        stop_server
    done
fi

# 3. Report ----------------------------------------------------------------------------------------
python3 "$HERE/report.py" --raw "$RAW" --model "$MODEL" --threads "$THREADS" --reps "$REPS" \
    --requests "$REQUESTS" --parallel "$PARALLEL" --llama-cpp-python "$LCP_VERSION" --loadavg-start "$LOADAVG_START" \
    --out "$BENCH/results/engine-$RUN_ID.json"
