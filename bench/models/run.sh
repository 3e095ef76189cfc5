#!/usr/bin/env bash
# Model load time against the cost of reading the file, for GGUF files of sizes a factor of
# 100 and more apart: a tiny and a large llama with random weights (bench/models/gen.py, ~8 MB
# and ~1 GB), the starter model (SmolLM2-135M Q4_1, 94 MB) and Gemma 3 270M (Q4_K_M, 242 MB)
# when it can be had. For each file, the median of SOV_BENCH_REPS (default 3) runs of:
#
#   read      cat FILE > /dev/null, the file in the page cache (primed first)
#   direct    dd iflag=direct: a read from the disk, past the page cache (nothing is dropped)
#   sha256    sha256sum FILE (cached), the digest `sov model import` records
#   verify    ModelStore::verify as the kernel runs it before a load (manifest signature, then
#             BLAKE3 of every 64 MiB chunk in parallel): `sov -v chat`'s "model verified" time
#   load      sov_engine::Engine::load (llama.cpp opens the file, reads its vocabulary, maps
#             the tensors, makes the generation and embedding contexts): "model loaded"
#   vocab     the part of load from llama.cpp's first line to "loading model tensors": the
#             GGUF metadata and the tokenizer (the vocabulary), which does not grow with the file
#
# Everything is cached under ${SOV_CACHE:-~/.cache/sovereign}/bench/models (the generated
# files, a home with the models imported); a second run only measures. Needs the `sov` binary
# (cargo build --release -p sov-cli; SOV_BIN overrides); numpy and PyPI's gguf are installed
# into a virtual environment in the cache.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../scripts/lib.sh
source "$HERE/../../scripts/lib.sh"
OUT="$SOV_CACHE/bench/models"
SOV="${SOV_BIN:-$CARGO_TARGET_DIR/release/sov}"
REPS="${SOV_BENCH_REPS:-3}"
mkdir -p "$OUT"
export SOV_HOME="$OUT/home"

[ -x "$SOV" ] || { say "no sov binary at $SOV: cargo build --release -p sov-cli"; exit 1; }
starter="${SOV_TEST_MODEL:-$SOV_CACHE/starter/SmolLM2-135M-Instruct.Q4_1.gguf}"
[ -f "$starter" ] || starter="$(ensure_starter_model)"

# A Python with numpy and PyPI's `gguf` (the llama.cpp project's GGUF writer), in a virtual
# environment in the cache (made once).
GGUF_VERSION="0.19.0"
gguf_python() {
    local venv="$SOV_CACHE/bench/venv-gguf-$GGUF_VERSION"
    if ! "$venv/bin/python" -c 'import gguf, numpy' 2>/dev/null; then
        say "installing gguf $GGUF_VERSION and numpy into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "gguf==$GGUF_VERSION" numpy >&2
    fi
    echo "$venv/bin/python"
}

# name:file pairs, smallest first.
models=()
for size in tiny large; do
    f="$OUT/$size.gguf"
    if [ ! -f "$f" ]; then
        say "generating $f (random weights)"
        "$(gguf_python)" "$HERE/gen.py" "$size" "$f" "$starter"
    fi
    models+=("bench-$size:$f")
done
models+=("bench-smollm2:$starter")
gemma="$SOV_CACHE/gemma/$GEMMA_FILE"
if [ -f "$gemma" ] || gemma="$(ensure_gemma_model 2>/dev/null)"; then
    models+=("bench-gemma:$gemma")
else
    say "Gemma 3 270M could not be fetched: measuring without it"
fi

if [ ! -f "$SOV_HOME/sov.toml" ]; then
    "$SOV" init </dev/null >/dev/null
fi
for m in "${models[@]}"; do
    name="${m%%:*}" file="${m#*:}"
    if ! "$SOV" model show "$name" >/dev/null 2>&1; then
        "$SOV" model import "$file" --name "$name" >/dev/null
    fi
done

now() { date +%s%N; }
# Milliseconds `"$@"` takes (its output thrown away).
ms() {
    local t0 t1
    t0=$(now)
    "$@" >/dev/null 2>&1
    t1=$(now)
    echo $(((t1 - t0) / 1000000))
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# Seconds since midnight of a tracing line's timestamp (2026-12-08T03:18:11.539612Z ...).
stamp() { awk '{split($1, a, /[T:Z]/); printf "%.3f\n", a[2]*3600 + a[3]*60 + a[4]}'; }

# One `sov chat` load of model $1: "verify load vocab" in ms.
load_once() {
    local log t_ver t_first t_tensors t_loaded
    log="$(SOV_LOG_COLOR=never NO_COLOR=1 "$SOV" -v chat --model "$1" --temperature 0 \
        --max-tokens 1 hi 2>&1 >/dev/null | sed 's/\x1b\[[0-9;]*m//g')"
    t_ver="$(grep -m1 'model verified' <<<"$log" | grep -o 'elapsed_ms=[0-9]*' | cut -d= -f2)"
    t_loaded="$(grep -m1 'model loaded' <<<"$log" | grep -o 'elapsed_ms=[0-9]*' | cut -d= -f2)"
    t_first="$(grep -m1 'llama-cpp-2' <<<"$log" | stamp)"
    t_tensors="$(grep -m1 'loading model tensors' <<<"$log" | stamp)"
    echo "$t_ver $t_loaded $(awk -v a="$t_first" -v b="$t_tensors" 'BEGIN {printf "%d", (b - a) * 1000}')"
}

printf '%-14s %9s %8s %8s %8s %8s %8s %8s %10s %14s\n' model MB read direct sha256 verify load vocab load/read "(ver+load)/(read+sha)"
for m in "${models[@]}"; do
    name="${m%%:*}" file="${m#*:}"
    mb=$(awk -v b="$(stat -c %s "$file")" 'BEGIN {printf "%.1f", b / 1e6}')
    cat "$file" >/dev/null # into the page cache
    read_ms=() direct_ms=() sha_ms=() ver_ms=() load_ms=() vocab_ms=()
    for _ in $(seq "$REPS"); do
        read_ms+=("$(ms cat "$file")")
        direct_ms+=("$(ms dd if="$file" of=/dev/null bs=4M iflag=direct)")
        sha_ms+=("$(ms sha256sum "$file")")
        read -r v l c <<<"$(load_once "$name")"
        ver_ms+=("$v") load_ms+=("$l") vocab_ms+=("$c")
    done
    r=$(printf '%s\n' "${read_ms[@]}" | median)
    d=$(printf '%s\n' "${direct_ms[@]}" | median)
    s=$(printf '%s\n' "${sha_ms[@]}" | median)
    v=$(printf '%s\n' "${ver_ms[@]}" | median)
    l=$(printf '%s\n' "${load_ms[@]}" | median)
    c=$(printf '%s\n' "${vocab_ms[@]}" | median)
    printf '%-14s %9s %8s %8s %8s %8s %8s %8s %10s %14s\n' "$name" "$mb" "$r" "$d" "$s" "$v" "$l" "$c" \
        "$(awk -v l="$l" -v r="$r" 'BEGIN {printf "%.1f", l / (r > 0 ? r : 1)}')" \
        "$(awk -v v="$v" -v l="$l" -v r="$r" -v s="$s" 'BEGIN {printf "%.2f", (v + l) / (r + s > 0 ? r + s : 1)}')"
done
echo "(times in ms, median of $REPS; $(nproc) cores; $(uptime | sed 's/.*load/load/'))"
