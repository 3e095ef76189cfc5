# shellcheck shell=bash
# Shared by the bench scripts: the llama.cpp reference tools, built once into the cache from
# sources that come from package registries only.
#
#   LCP_VERSION, LCP_SRC      the llama-cpp-python source package (it vendors a llama.cpp release)
#   ensure_llama_cpp_source   downloads and unpacks it (once)
#   vendored_llama_cpp        prints the llama.cpp tree that llama-cpp-sys-2 (our engine) vendors
#   set_engine SOV_TOML K=V.. sets keys of a home's [engine] section (commented defaults included)
# Needs scripts/lib.sh sourced first (SOV_CACHE, SOV_REPO, say).

BENCH="${BENCH:-$SOV_CACHE/bench}"
LCP_VERSION="${SOV_BENCH_LLAMA_CPP_PYTHON:-0.3.36}"
LCP_SRC="$BENCH/llama_cpp_python-$LCP_VERSION"

ensure_llama_cpp_source() {
    [ -f "$LCP_SRC/vendor/llama.cpp/CMakeLists.txt" ] && return
    say "downloading the llama-cpp-python $LCP_VERSION source package (it vendors llama.cpp)"
    mkdir -p "$BENCH/sdist"
    python3 -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
        -d "$BENCH/sdist" "llama-cpp-python==$LCP_VERSION" >&2
    tar -xzf "$BENCH/sdist/llama_cpp_python-$LCP_VERSION.tar.gz" -C "$BENCH"
}

# The llama.cpp source tree our engine links, from the llama-cpp-sys-2 crate Cargo resolved.
vendored_llama_cpp() {
    (cd "$SOV_REPO" && cargo metadata --format-version 1 --locked 2>/dev/null) | python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
for p in meta["packages"]:
    if p["name"] == "llama-cpp-sys-2":
        print(os.path.join(os.path.dirname(p["manifest_path"]), "llama.cpp"))
        break
else:
    sys.exit("cargo metadata lists no llama-cpp-sys-2")
'
}

# set_engine SOV_TOML KEY=VALUE...: sets each key in the [engine] section of a home's sov.toml,
# replacing its line (or the commented default `sov init` wrote), else appending it.
set_engine() {
    python3 - "$@" <<'PY'
import re, sys
path, pairs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
text = open(path).read()
head, sep, rest = text.partition("[engine]")
assert sep, "sov.toml has no [engine] section"
body, nxt, tail = rest.partition("\n[")
for key, value in pairs:
    body, n = re.subn(rf"(?m)^#?\s*{key}\s*=.*$", f"{key} = {value}", body, count=1)
    if n == 0:
        body += f"\n{key} = {value}\n"
open(path, "w").write(head + sep + body + nxt + tail)
PY
}

# ---------------------------------------------------------------------------------------------
# llama.cpp's own tools (llama-bench, llama-server), two builds, both from package registries:
#
#   release  the current llama.cpp release, as a user would run it instead of Sovereign: the
#            release node-llama-cpp ships in its npm package (llama/gitRelease.bundle, a git
#            bundle of ggml-org/llama.cpp at its release tag), built with llama.cpp's defaults.
#   same     the llama.cpp our engine links: the tree llama-cpp-sys-2 vendors (library, ggml,
#            common), built with our engine's flags, so a ratio is Sovereign's own overhead or
#            gain. The crate ships no tool sources (tools/ holds READMEs only) and upstream at
#            that commit cannot be brought here (fetch refuses the 1.5 GB repository; no
#            package carries it), so llama-bench's own source comes from the release tree (it
#            compiles unchanged against the vendored library). llama-server's does not: the
#            vendored common library changed its batch API (common_batch) after the release, so
#            there is no same-source llama-server, and the HTTP comparisons are against the
#            release's (docs/benchmarks.md).
NLC_VERSION="${SOV_BENCH_NODE_LLAMA_CPP:-3.22.1}"

# Prints the release tree (cloned from node-llama-cpp's bundle once).
ensure_llama_release_source() {
    local pkg="$BENCH/node-llama-cpp-$NLC_VERSION" src
    if [ ! -f "$pkg/package/llama/gitRelease.bundle" ]; then
        ensure_node
        say "downloading node-llama-cpp $NLC_VERSION from npm (it carries llama.cpp's release as a git bundle)"
        mkdir -p "$pkg"
        (cd "$pkg" && npm pack --silent --cache "$SOV_CACHE/npm/cache" "node-llama-cpp@$NLC_VERSION" >/dev/null \
            && tar -xzf "node-llama-cpp-$NLC_VERSION.tgz" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json \
            && rm -f "node-llama-cpp-$NLC_VERSION.tgz") >&2
    fi
    src="$pkg/llama.cpp"
    if [ ! -f "$src/CMakeLists.txt" ]; then
        rm -rf "$src"
        git clone --quiet "$pkg/package/llama/gitRelease.bundle" "$src" 2>/dev/null
    fi
    printf '%s\n' "$src"
}

# The release's tag (e.g. v0.5.0) and commit.
llama_release_name() {
    local pkg="$BENCH/node-llama-cpp-$NLC_VERSION"
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tag"])' "$pkg/package/llama/llama.cpp.info.json"
}

# build_llama_tools NAME SRC "TARGETS" CMAKE_ARGS...: builds the TARGETS (llama-bench,
# llama-server) from SRC into $BENCH/llama-tools-NAME (once); prints the bin folder, or nothing
# (reason on stderr).
build_llama_tools() {
    local name="$1" src="$2" targets="$3" t missing=""
    shift 3
    local build="$BENCH/llama-tools-$name"
    for t in $targets; do [ -x "$build/bin/$t" ] || missing=1; done
    if [ -n "$missing" ]; then
        say "building $targets ($name; once, 10-20 minutes on 2 cores)"
        if ! { cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
                   -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
                   -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF \
                   -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF "$@" \
               && cmake --build "$build" --config Release -j "$(nproc)" --target $targets; } \
               >"$LOGS/llama-tools-$name.log" 2>&1; then
            echo "bench: building llama.cpp's tools ($name) failed; see $LOGS/llama-tools-$name.log:" >&2
            tail -n 15 "$LOGS/llama-tools-$name.log" >&2
            return 0
        fi
    fi
    printf '%s\n' "$build/bin"
}

# Prints the bin folder of the release build (llama.cpp's defaults), or nothing.
ensure_release_tools() {
    local src
    src="$(ensure_llama_release_source)"
    build_llama_tools "release-$(llama_release_name)" "$src" "llama-bench llama-server"
}

# Prints the bin folder of the same-source build (our engine's llama.cpp and flags), or nothing.
ensure_same_tools() {
    local vendored release sys src
    vendored="$(vendored_llama_cpp)"
    release="$(ensure_llama_release_source)"
    sys="$(basename "$(dirname "$vendored")")"  # llama-cpp-sys-2-<version>
    src="$BENCH/$sys-with-tools"
    if [ ! -f "$src/tools/llama-bench/llama-bench.cpp" ]; then
        rm -rf "$src"
        cp -r "$vendored" "$src"
        rm -rf "${src:?}/tools/llama-bench"
        cp -r "$release/tools/llama-bench" "$src/tools/llama-bench"
        # Only the tool built here (the vendored list names tools whose sources are absent).
        printf '%s\n' 'find_package(Threads REQUIRED)' 'llama_add_compile_flags()' \
            'add_subdirectory(llama-bench)' >"$src/tools/CMakeLists.txt"
    fi
    # Our engine's flags (llama-cpp-sys-2 with .cargo/config.toml): Release (-O3), the host's
    # instruction set, no OpenMP, AMX left out (see .cargo/config.toml).
    build_llama_tools "same-$sys" "$src" llama-bench -DGGML_NATIVE=ON -DGGML_OPENMP=OFF \
        "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" \
        "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
}
