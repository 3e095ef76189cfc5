# shellcheck shell=bash
# Shared by the bench scripts: the llama.cpp reference tools, built once into the cache from
# sources that come from package registries only.
#
#   LCP_VERSION, LCP_SRC      the llama-cpp-python source package (it vendors a llama.cpp release)
#   ensure_llama_cpp_source   downloads and unpacks it (once)
#   vendored_llama_cpp        prints the llama.cpp tree that llama-cpp-sys-2 (our engine) vendors
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
