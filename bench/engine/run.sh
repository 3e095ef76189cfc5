#!/usr/bin/env bash
# Engine benchmark: Sovereign vs llama.cpp's own tools, on the same model and thread count.
#
#   bash bench/engine/run.sh
#
# Against two builds of llama.cpp's tools (see bench/lib.sh): "same", llama-bench built on the
# llama.cpp our engine links, with our flags (a ratio is Sovereign's own overhead or gain), and
# "release", llama-bench and llama-server of the newest llama.cpp release a package registry
# carries, with llama.cpp's defaults (what a user would run instead). There is no same-source
# llama-server (bench/lib.sh says why); the run records that and goes on.
# 1. pp512 / tg128 tokens/s of our engine (sov-bench-engine) vs `llama-bench`.
# 2. Aggregate completion tokens/s over HTTP at 1 and 8 concurrent clients of `sov serve` vs
#    `llama-server`, and vs `sov serve` with the seal's kernel layers left off (the seal's cost).
# 3. Specialist-shaped requests (bench/engine/specialist.py): an 800-token fixed instruction
#    prefix, a 400-token passage block that varies, 64-token answers, streamed: time to first
#    token p50/p99 and throughput, at 1 and 8 clients, vs `llama-server` with cache_prompt.
# A reference tool that crashes or misbehaves (such as llama.cpp's AMX kernels on some Xeons) is
# reported as such in the results and the run goes on. Prints a table with ratios and writes the
# raw numbers as JSON to $SOV_CACHE/bench/results/.
#
# Environment (all optional):
#   SOV_BENCH_MODEL      GGUF file (default: the starter model, fetched by scripts/lib.sh)
#   SOV_BENCH_THREADS    CPU threads for every engine (default: nproc)
#   SOV_BENCH_REPS       repetitions of pp/tg (default: 5)
#   SOV_BENCH_REQUESTS   requests per client in the HTTP tests (default: 4)
#   SOV_BENCH_CLIENTS    concurrency levels (default: "1 8")
#   SOV_BENCH_PARALLEL   server slots for sov serve and llama-server (default: 8)
#   SOV_BENCH_SKIP       space-separated parts to skip: pp http specialist same release
#                        sov-serve-unsealed
#   SOV_BENCH_NODE_LLAMA_CPP  node-llama-cpp version whose llama.cpp release is the reference
#   SOV_CACHE            cache root (default: ~/.cache/sovereign)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../../scripts/lib.sh
source "$REPO/scripts/lib.sh"  # SOV_CACHE, CARGO_TARGET_DIR, say, ensure_build_deps, ensure_starter_model
# shellcheck source=../lib.sh
source "$REPO/bench/lib.sh"    # ensure_same_tools, ensure_release_tools, set_engine

THREADS="${SOV_BENCH_THREADS:-$(nproc)}"
REPS="${SOV_BENCH_REPS:-5}"
REQUESTS="${SOV_BENCH_REQUESTS:-4}"
CLIENTS="${SOV_BENCH_CLIENTS:-1 8}"
PARALLEL="${SOV_BENCH_PARALLEL:-8}"
SKIP=" ${SOV_BENCH_SKIP:-} "
CTX_PER_SLOT=4096
MAX_TOKENS=128
PORT="${SOV_BENCH_PORT:-18480}"

LOGS="$BENCH/logs"
RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)"
RAW="$BENCH/results/engine-$RUN_ID"
mkdir -p "$BENCH" "$LOGS" "$RAW"

skipped() { [[ "$SKIP" == *" $1 "* ]]; }

# failed NAME WHAT: records that a reference tool failed, for the report.
failed() {
    say "$1: $2 (recorded; the run goes on)"
    python3 -c 'import json,sys; print(json.dumps({"tool": sys.argv[1], "failure": sys.argv[2]}))' "$1" "$2" \
        >"$RAW/failed-$1.json"
}

# why RC: a process's exit status in words.
why() {
    if [ "$1" -gt 128 ]; then echo "killed by SIG$(kill -l $(($1 - 128)) 2>/dev/null || echo "$(($1 - 128))")"; else echo "exit status $1"; fi
}

# ---------------------------------------------------------------------------------------------
# Servers: exactly one runs at a time (llama.cpp's thread pools collapse when engines share cores).

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

# wait_ready URL LOG: 0 when the server answers, 1 when it exited or did not answer in 300 s.
wait_ready() {
    local url="$1" log="$2"
    for _ in $(seq 1 600); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            local rc=0
            wait "$SERVER_PID" 2>/dev/null || rc=$?
            SERVER_PID=""
            echo "the server exited ($(why "$rc")) before it was ready; its log ($log):" >&2
            tail -n 15 "$log" >&2
            READY_FAILURE="exited before it was ready ($(why "$rc"))"
            return 1
        fi
        if python3 -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    READY_FAILURE="did not become ready in 300 s"
    return 1
}

# loads NAME EXTRA_ARGS...: the throughput and the specialist loads against the running server.
# A load that fails (the server crashed under it, errors) is recorded and the run goes on.
loads() {
    local name="$1" c
    shift
    if ! skipped http; then
        for c in $CLIENTS; do
            say "$name: $c client(s) x $REQUESTS request(s), max_tokens $MAX_TOKENS"
            if ! python3 "$HERE/load.py" --url "http://127.0.0.1:$PORT" --model bench --clients "$c" \
                --requests "$REQUESTS" --max-tokens "$MAX_TOKENS" --ignore-eos --label "$name" "$@" \
                >"$RAW/http-$name-c$c.json"; then
                failed "$name" "the throughput load at $c client(s) failed: $(head -c 300 "$RAW/http-$name-c$c.json")"
                rm -f "$RAW/http-$name-c$c.json"
                return
            fi
            cat "$RAW/http-$name-c$c.json" >&2
        done
    fi
    if ! skipped specialist; then
        local extra=()
        [[ "$name" == llama-server* ]] && extra=(--cache-prompt)
        for c in $CLIENTS; do
            say "$name: specialist-shaped, $c client(s) x $REQUESTS request(s)"
            if ! python3 "$HERE/specialist.py" --url "http://127.0.0.1:$PORT" --model bench --clients "$c" \
                --requests "$REQUESTS" --label "$name" "${extra[@]}" "$@" >"$RAW/specialist-$name-c$c.json"; then
                failed "$name" "the specialist load at $c client(s) failed: $(head -c 300 "$RAW/specialist-$name-c$c.json")"
                rm -f "$RAW/specialist-$name-c$c.json"
                return
            fi
            cat "$RAW/specialist-$name-c$c.json" >&2
        done
    fi
}

# serve NAME HEALTH_URL LOAD_ARGS -- COMMAND...: starts a server, runs the loads, stops it.
serve() {
    local name="$1" health="$2" load_args=()
    shift 2
    while [ "$1" != "--" ]; do load_args+=("$1"); shift; done
    shift
    say "starting $name"
    "$@" >"$LOGS/$name.log" 2>&1 &
    SERVER_PID=$!
    if ! wait_ready "$health" "$LOGS/$name.log"; then
        failed "$name" "$READY_FAILURE"
        stop_server
        return
    fi
    loads "$name" "${load_args[@]}"
    if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
        local rc=0
        wait "$SERVER_PID" 2>/dev/null || rc=$?
        failed "$name" "the server died during the loads ($(why "$rc"))"
        SERVER_PID=""
    fi
    stop_server
}

# ---------------------------------------------------------------------------------------------

ensure_build_deps
MODEL="${SOV_BENCH_MODEL:-$(ensure_starter_model)}"
[ -f "$MODEL" ] || { echo "no model file at $MODEL" >&2; exit 1; }
declare -A TOOLS=()  # build name -> bin folder
if ! skipped same; then
    bin="$(ensure_same_tools)"
    if [ -n "$bin" ]; then TOOLS[same]="$bin"; else failed same-build "building the tools failed (see $LOGS)"; fi
fi
if ! skipped release; then
    bin="$(ensure_release_tools)"
    if [ -n "$bin" ]; then TOOLS[release]="$bin"; else failed release-build "building the tools failed (see $LOGS)"; fi
fi
say "building sov and sov-bench-engine (release)"
(cd "$REPO" && cargo build --release --quiet -p sov-cli -p sov-bench-engine)
SOV="$CARGO_TARGET_DIR/release/sov"
SOV_BENCH="$CARGO_TARGET_DIR/release/sov-bench-engine"

# What each build is, for the report.
{
    echo "{"
    echo "\"same\": \"$(basename "$(dirname "$(vendored_llama_cpp)")") (the llama.cpp our engine links), tools from $(llama_release_name), our flags\","
    echo "\"release\": \"llama.cpp $(llama_release_name) $(git -C "$(ensure_llama_release_source)" rev-parse --short HEAD) (node-llama-cpp $NLC_VERSION), llama.cpp's defaults\""
    echo "}"
} >"$RAW/builds.json"

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
say "model $MODEL, $THREADS threads, $REPS repetitions; raw results in $RAW"

# 1. pp512 / tg128 -------------------------------------------------------------------------------
if ! skipped pp; then
    for build in same release; do
        [ -n "${TOOLS[$build]:-}" ] || continue
        say "llama-bench ($build): pp512 + tg128"
        rc=0
        "${TOOLS[$build]}/llama-bench" -m "$MODEL" -t "$THREADS" -p 512 -n 128 -r "$REPS" -o json \
            >"$RAW/llama-bench-$build.json" 2>"$LOGS/llama-bench-$build.log" || rc=$?
        if [ "$rc" -ne 0 ] || ! python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))' "$RAW/llama-bench-$build.json" 2>/dev/null; then
            failed "llama-bench-$build" "$(why "$rc"): $(tail -n 2 "$LOGS/llama-bench-$build.log" | tr '\n' ' ' | head -c 300)"
            rm -f "$RAW/llama-bench-$build.json"
        fi
    done
    say "sov-bench-engine: pp512 + tg128"
    "$SOV_BENCH" --model "$MODEL" --threads "$THREADS" --reps "$REPS" --pp 512 --tg 128 \
        >"$RAW/sov-bench-engine.json" 2>"$LOGS/sov-bench-engine.log"
fi

# 2 and 3. HTTP ------------------------------------------------------------------------------------
if ! skipped http || ! skipped specialist; then
    for build in same release; do
        [ -n "${TOOLS[$build]:-}" ] || continue
        if [ ! -x "${TOOLS[$build]}/llama-server" ]; then
            [ "$build" = same ] && failed llama-server-same "not built: llama-server's sources at the llama.cpp commit our engine links are not available, and the release's do not compile against its common library (bench/lib.sh)"
            continue
        fi
        serve "llama-server-$build" "http://127.0.0.1:$PORT/health" -- \
            "${TOOLS[$build]}/llama-server" -m "$MODEL" -t "$THREADS" -tb "$THREADS" -np "$PARALLEL" \
            -c $((PARALLEL * CTX_PER_SLOT)) --host 127.0.0.1 --port "$PORT" -a bench
    done

    home="$BENCH/sov-home"
    rm -rf "$home"
    "$SOV" --home "$home" init >"$LOGS/sov-init.log" 2>&1
    "$SOV" --home "$home" model import "$MODEL" --name bench >>"$LOGS/sov-init.log" 2>&1
    set_engine "$home/sov.toml" threads="$THREADS" parallel="$PARALLEL" context_length="$CTX_PER_SLOT"
    # The owner's token, printed once by `sov init`, for the load generators.
    SOV_BENCH_TOKEN="$(grep -oE 'sov_[A-Za-z0-9_-]{43}' "$LOGS/sov-init.log" | head -n 1)"
    export SOV_BENCH_TOKEN
    serve sov-serve "http://127.0.0.1:$PORT/healthz" --token-env SOV_BENCH_TOKEN -- \
        "$SOV" --home "$home" serve --listen "127.0.0.1:$PORT"
    # The same server with the seal's kernel layers left off: what Landlock and seccomp cost
    # (throughput only).
    if ! skipped sov-serve-unsealed && ! skipped http; then
        SKIP_SAVED="$SKIP"
        SKIP="$SKIP specialist "
        serve sov-serve-unsealed "http://127.0.0.1:$PORT/healthz" --token-env SOV_BENCH_TOKEN -- \
            "$SOV" --home "$home" serve --listen "127.0.0.1:$PORT" \
            --seal-unavailable landlock --seal-unavailable seccomp
        SKIP="$SKIP_SAVED"
    fi
fi

# 4. Report ----------------------------------------------------------------------------------------
python3 "$HERE/report.py" --raw "$RAW" --model "$MODEL" --threads "$THREADS" --reps "$REPS" \
    --requests "$REQUESTS" --parallel "$PARALLEL" --loadavg-start "$LOADAVG_START" \
    --out "$BENCH/results/engine-$RUN_ID.json"
