#!/usr/bin/env bash
# Runs the domain eval end to end with the `sov` CLI, in a fresh temporary home:
#   sov init; import the chat model (and gemma and the embedding model when scripts/lib.sh can
#   fetch them); for each institution of eval/institutions.json, a corpus of its public documents
#   (clearance 0), its confidential ones (clearance 3) and a specialist; two callers (clearance 0
#   and 3) with tokens; `sov serve` on a free port; eval/run.py; then the server is stopped and
#   the home removed.
#
#   eval/run.sh [--sov PATH] [--label LABEL] [--no-specialists] [--keep-home] [-- RUN.PY ARGS...]
#
# --sov             the binary (default: $CARGO_TARGET_DIR/release/sov)
# --no-specialists  only the bare models (also chosen, with a note, when `sov corpus` is missing)
# --keep-home       leave the temporary home (and the server's log) for inspection
# Results: eval/results/<date>-<label>.json and a Markdown table on stdout.
source "$(dirname "$0")/../scripts/lib.sh"

EVAL_DIR="$SOV_REPO/eval"
PYTHON="${SOV_EVAL_PYTHON:-$SOV_CACHE/venv/bin/python}"
sov="$CARGO_TARGET_DIR/release/sov"
label=""
specialists=auto
keep_home=0
run_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --sov) sov="$2"; shift 2 ;;
        --label) label="$2"; shift 2 ;;
        --no-specialists) specialists=no; shift ;;
        --keep-home) keep_home=1; shift ;;
        --) shift; run_args=("$@"); break ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "eval/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$sov" ] || { echo "eval/run.sh: no sov binary at $sov: build it (cargo build --release --bin sov) or pass --sov" >&2; exit 2; }
"$PYTHON" -c 'import openai' 2>/dev/null || { echo "eval/run.sh: $PYTHON has no openai package: run scripts/test once, or set SOV_EVAL_PYTHON" >&2; exit 2; }
if [ "$specialists" = auto ]; then
    if "$sov" corpus --help >/dev/null 2>&1 && "$sov" specialist --help >/dev/null 2>&1; then
        specialists=yes
    else
        say "this sov has no \`corpus\`/\`specialist\` commands: running the bare models only"
        specialists=no
    fi
fi

say "checking the eval's data"
python3 "$EVAL_DIR/check_data.py" >&2

work="$(mktemp -d "${TMPDIR:-/tmp}/sov-eval.XXXXXX")"
export SOV_HOME="$work/home"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$keep_home" = 1 ]; then
        say "kept the home at $SOV_HOME (server log: $work/serve.log)"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
log="$work/setup.log"

say "sov init (home: $SOV_HOME)"
"$sov" init >"$log"

chat_model="$STARTER_NAME"
"$sov" model import "$(ensure_starter_model)" --name "$chat_model" >>"$log"
targets=(--target "bare=$chat_model")
if declare -F ensure_gemma_model >/dev/null; then
    gemma_name="${GEMMA_NAME:-gemma3-270m}"
    "$sov" model import "$(ensure_gemma_model)" --name "$gemma_name" >>"$log"
    targets+=(--target "gemma=$gemma_name")
else
    say "scripts/lib.sh has no ensure_gemma_model: no gemma target"
fi
if [ "$specialists" = yes ] && declare -F ensure_embedding_model >/dev/null; then
    "$sov" model import "$(ensure_embedding_model)" --name "${EMBEDDING_NAME:-all-minilm-l6-v2}" >>"$log"
fi

# key, corpus, specialist, public folder, restricted folder, clearance, description: one line each.
institutions="$(python3 - "$EVAL_DIR/institutions.json" <<'PY'
import json, sys
for key, i in json.load(open(sys.argv[1])).items():
    print("\t".join([key, i["corpus"], i["specialist"], i["public"], i["restricted"],
                     str(i["restricted_clearance"]), i["description"]]))
PY
)"
if [ "$specialists" = yes ]; then
    specialist_args=()
    while IFS=$'\t' read -r key corpus specialist public restricted clearance description; do
        say "corpus $corpus and specialist $specialist"
        "$sov" corpus add "$corpus" "$EVAL_DIR/$public/" --clearance 0 >>"$log"
        "$sov" corpus add "$corpus" "$EVAL_DIR/$restricted/" --clearance "$clearance" >>"$log"
        "$sov" specialist add "$specialist" --model "$chat_model" --corpus "$corpus" \
            --description "$description" >>"$log"
        specialist_args+=(--specialist "$key=$specialist")
    done <<<"$institutions"
    targets=(--target "specialist=@specialist" --target "auto=auto" "${targets[@]}" "${specialist_args[@]}")
fi

# The callers: the eval's own role (eval/policies/eval.cedar) and a clearance each. The normal
# caller needs `clearance=0` explicitly: the starter forbid `clearance-documents` refuses every
# document that has a clearance, even 0, to a principal without the attribute.
cp "$EVAL_DIR/policies/"*.cedar "$SOV_HOME/policies/"
"$sov" policy show >>"$log"
"$sov" principal add eval-reader --role eval --attr clearance=0 >>"$log"
"$sov" principal add eval-cleared --role eval --attr clearance=3 >>"$log"
# Handed to run.py in its environment, not its arguments, so they stay out of the process list.
SOV_EVAL_API_KEY="$("$sov" token issue eval-reader --expires 1d --scope infer,read-corpus 2>>"$log")"
SOV_EVAL_CLEARED_API_KEY="$("$sov" token issue eval-cleared --expires 1d --scope infer,read-corpus 2>>"$log")"
export SOV_EVAL_API_KEY SOV_EVAL_CLEARED_API_KEY
# The policies must already say what the eval expects, before anything is served.
while IFS=$'\t' read -r key corpus specialist public restricted clearance description; do
    for doc in "$EVAL_DIR/$restricted"/*; do
        resource="document:$(basename "$doc"),corpus=$corpus,clearance=$clearance"
        # `policy check` exits non-zero on DENY: its first word is what counts here.
        verdict="$("$sov" policy check eval-reader read-corpus "$resource" || true)"
        [[ "$verdict" == DENY* ]] \
            || { echo "eval/run.sh: eval-reader may read $resource; the leak check would be void" >&2; exit 1; }
        verdict="$("$sov" policy check eval-cleared read-corpus "$resource" || true)"
        [[ "$verdict" == ALLOW* ]] || { echo "eval/run.sh: eval-cleared may not read $resource" >&2; exit 1; }
    done
done <<<"$institutions"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
say "sov serve on 127.0.0.1:$port"
"$sov" serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server_pid=$!
ready=0
for _ in $(seq 600); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "eval/run.sh: sov serve exited before it was ready:" >&2
        cat "$work/serve.log" >&2
        server_pid=""
        exit 1
    fi
    if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
        ready=1
        break
    fi
    sleep 0.5
done
[ "$ready" = 1 ] || { echo "eval/run.sh: sov serve was not ready after 300 s:" >&2; cat "$work/serve.log" >&2; exit 1; }

[ -n "$label" ] || label="$([ "$specialists" = yes ] && echo specialists || echo bare-baseline)"
say "eval/run.py (${targets[*]})"
status=0
"$PYTHON" "$EVAL_DIR/run.py" --base-url "http://127.0.0.1:$port/v1" \
    "${targets[@]}" --label "$label" "${run_args[@]}" || status=$?
exit "$status"
