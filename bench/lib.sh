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
