#!/usr/bin/env bash
# Ingestion benchmark: chunks embedded per second by `sov corpus add` (parse, chunk, embed with
# all-MiniLM-L6-v2 through our engine, index, sign) against llama.cpp's own `llama-embedding` on
# the same GGUF file, the same chunk texts and the same thread count, in the same run.
#
#   bash bench/embedding/run.sh
#
# Two llama-embedding builds, each from llama.cpp's own embedding.cpp (the llama-cpp-python
# source package's copy, since the crate we link ships no tool sources):
#   - "llama-embedding (same llama.cpp)": linked against the very llama.cpp tree llama-cpp-sys-2
#     vendors, built with the flags our engine's build uses (native CPU, no OpenMP): the ratio is
#     Sovereign's own overhead or gain;
#   - "llama-embedding (llama-cpp-python X)": the llama.cpp release that package vendors, with
#     llama.cpp's default flags: what a user would run instead.
# A build that fails, or a tool that crashes, is reported and the rest goes on.
#
# The corpus is generated (bench/embedding/corpus.py: Markdown sections of about 150 words, one
# chunk each). The texts given to llama-embedding are read back from the corpus's own database,
# exactly what sov embedded. Each tool runs SOV_BENCH_REPS times, interleaved; the wall time of
# the whole command is measured (model load included, for both), and the median is reported.
#
# Environment (all optional):
#   SOV_BENCH_THREADS   threads for both (default: nproc)
#   SOV_BENCH_REPS      repetitions (default: 3)
#   SOV_BENCH_DOCS      documents (default: 10), SOV_BENCH_SECTIONS sections each (default: 20)
#   SOV_BENCH_SKIP      parts to skip: same-llama lcp-llama
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../../scripts/lib.sh
source "$REPO/scripts/lib.sh"
# shellcheck source=../lib.sh
source "$REPO/bench/lib.sh"

THREADS="${SOV_BENCH_THREADS:-$(nproc)}"
REPS="${SOV_BENCH_REPS:-3}"
DOCS="${SOV_BENCH_DOCS:-10}"
SECTIONS="${SOV_BENCH_SECTIONS:-20}"
SKIP=" ${SOV_BENCH_SKIP:-} "
LOGS="$BENCH/logs"
RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)"
RAW="$BENCH/results/embedding-$RUN_ID"
mkdir -p "$LOGS" "$RAW"
skipped() { [[ "$SKIP" == *" $1 "* ]]; }

# build_llama_embedding NAME LLAMA_SRC EMBEDDING_CPP CMAKE_ARGS...: prints the binary, or
# nothing (with the reason on stderr) when the build fails.
build_llama_embedding() {
    local name="$1" src="$2" cpp="$3"
    shift 3
    local build="$BENCH/llama-embedding-$name"
    if [ ! -x "$build/llama-embedding" ]; then
        say "building llama-embedding ($name; once, several minutes)"
        if ! { cmake -S "$HERE/llama-embedding" -B "$build" -DCMAKE_BUILD_TYPE=Release \
                   -DLLAMA_SRC="$src" -DEMBEDDING_CPP="$cpp" -DBUILD_SHARED_LIBS=OFF "$@" \
               && cmake --build "$build" --config Release -j "$(nproc)" --target llama-embedding; } \
               >"$LOGS/llama-embedding-$name.log" 2>&1; then
            echo "bench/embedding: building llama-embedding ($name) failed; see $LOGS/llama-embedding-$name.log:" >&2
            tail -n 15 "$LOGS/llama-embedding-$name.log" >&2
            return 0
        fi
    fi
    echo "$build/llama-embedding"
}

ensure_build_deps
ZIP="$(ensure_embedding_model)"
ensure_llama_cpp_source
EMBEDDING_CPP="$LCP_SRC/vendor/llama.cpp/examples/embedding/embedding.cpp"
declare -A TOOLS=()
if ! skipped same-llama; then
    bin="$(build_llama_embedding "same-$(basename "$(dirname "$(vendored_llama_cpp)")")" \
        "$(vendored_llama_cpp)" "$EMBEDDING_CPP" -DGGML_NATIVE=ON -DGGML_OPENMP=OFF)"
    [ -n "$bin" ] && TOOLS["llama-embedding (same llama.cpp)"]="$bin"
fi
if ! skipped lcp-llama; then
    bin="$(build_llama_embedding "lcp-$LCP_VERSION" "$LCP_SRC/vendor/llama.cpp" "$EMBEDDING_CPP")"
    [ -n "$bin" ] && TOOLS["llama-embedding (llama-cpp-python $LCP_VERSION)"]="$bin"
fi
say "building sov (release)"
(cd "$REPO" && cargo build --release --quiet -p sov-cli --bin sov)
SOV="$CARGO_TARGET_DIR/release/sov"

work="$(mktemp -d "${TMPDIR:-/tmp}/sov-bench-embedding.XXXXXX")"
trap 'rm -rf "$work"' EXIT
home="$work/home"
"$SOV" --home "$home" init >"$LOGS/embedding-sov-init.log" 2>&1
"$SOV" --home "$home" model import "$ZIP" --name all-minilm-l6-v2 >>"$LOGS/embedding-sov-init.log" 2>&1
set_engine "$home/sov.toml" threads="$THREADS"
GGUF="$(find "$home/models/blobs/sha256" -type f | head -n 1)"
[ -f "$GGUF" ] || { echo "bench/embedding: the imported model's GGUF is not in $home/models/blobs" >&2; exit 1; }
python3 "$HERE/corpus.py" generate "$work/docs" --docs "$DOCS" --sections "$SECTIONS"

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
say "$DOCS documents x $SECTIONS sections, $THREADS threads, $REPS repetitions; raw results in $RAW"
now() { date +%s.%N; }
record() { # TOOL CHUNKS START END
    python3 -c 'import json,sys; t,c,a,b=sys.argv[1:]; print(json.dumps({"tool":t,"chunks":int(c),"seconds":float(b)-float(a)}))' \
        "$1" "$2" "$3" "$4" >>"$RAW/runs.jsonl"
}
chunks=""
for rep in $(seq 1 "$REPS"); do
    "$SOV" --home "$home" corpus rm bench >/dev/null 2>&1 || true
    say "rep $rep: sov corpus add"
    start="$(now)"
    "$SOV" --home "$home" corpus add bench "$work/docs/" >"$LOGS/embedding-sov-add.log" 2>&1 \
        || { cat "$LOGS/embedding-sov-add.log" >&2; exit 1; }
    end="$(now)"
    if [ -z "$chunks" ]; then
        chunks="$(python3 "$HERE/corpus.py" texts "$home/corpora/bench/corpus.db" "$work/texts.txt")"
    fi
    record "sov corpus add" "$chunks" "$start" "$end"
    for tool in "${!TOOLS[@]}"; do
        say "rep $rep: $tool"
        start="$(now)"
        if "${TOOLS[$tool]}" -m "$GGUF" -t "$THREADS" -f "$work/texts.txt" --embd-separator "<#sov-bench#>" \
            --pooling mean --embd-normalize 2 --embd-output-format array >"$work/out.txt" 2>"$LOGS/embedding-tool.log"; then
            end="$(now)"
            got="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/out.txt" 2>/dev/null || echo 0)"
            if [ "$got" != "$chunks" ]; then
                echo "bench/embedding: $tool returned $got vectors for $chunks texts; left out" >&2
                tail -n 5 "$LOGS/embedding-tool.log" >&2
                unset "TOOLS[$tool]"
                continue
            fi
            record "$tool" "$chunks" "$start" "$end"
        else
            echo "bench/embedding: $tool failed (exit $?); left out. Its log:" >&2
            tail -n 10 "$LOGS/embedding-tool.log" >&2
            unset "TOOLS[$tool]"
        fi
    done
done
python3 - "$RAW/meta.json" "$LOADAVG_START" "$(cut -d' ' -f1-3 /proc/loadavg)" "$THREADS" "$chunks" "$DOCS" "$LCP_VERSION" "$(vendored_llama_cpp)" <<'PY'
import json, sys
out, la0, la1, threads, chunks, docs, lcp, vendored = sys.argv[1:]
json.dump({"loadavg_start": la0, "loadavg_end": la1, "threads": int(threads), "chunks": int(chunks),
           "docs": int(docs), "llama_cpp_python": lcp, "vendored_llama_cpp": vendored,
           "model": "all-MiniLM-L6-v2 (F32 GGUF converted by sov model import)"}, open(out, "w"))
PY
python3 "$HERE/corpus.py" report "$RAW" "$BENCH/results/embedding-$RUN_ID.json"
