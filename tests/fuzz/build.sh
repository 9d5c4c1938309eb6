#!/usr/bin/env bash
# Builds build-fuzz/fuzz_scenario (libFuzzer + ASan + UBSan, Debian's clang-14) from the
# repository root's sources; incremental (tests/fuzz/Makefile keeps objects and header
# dependencies in build-fuzz/). Usage: tests/fuzz/build.sh [-jN]   (default -j2)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
command -v clang++-14 >/dev/null || { echo "build.sh: clang++-14 not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }
# The project's version, as CMakeLists.txt gives it to the library (sweep points' identity).
version=$(sed -n 's/^project(trialsim VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
jobs=${1:--j2}
exec make --no-print-directory -f tests/fuzz/Makefile "$jobs" BUILD=build-fuzz VERSION="${version:-0.0.0}"
