#!/usr/bin/env bash
# Fuzzes scenario parsing and validation (tests/fuzz/README.md).
#
#   tests/fuzz/run.sh [SECONDS] [--merge]
#
# Builds build-fuzz/fuzz_scenario if needed, then fuzzes for SECONDS (default 600) on the working
# corpus build-fuzz/corpus (kept between runs, seeded from tests/fuzz/corpus each time). A crash,
# sanitizer report, leak, timeout (> 5 s for one input) or out-of-memory (> 2 GiB) ends the run
# with exit status 1 and leaves the input in tests/fuzz/crashes/, named by what it triggers and
# where, with the fuzzer's log in build-fuzz/crash-logs/. --merge: afterwards, add to
# tests/fuzz/corpus the working corpus's entries that reach code the committed corpus does not.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

seconds=600
merge=0
for arg in "$@"; do
  case "$arg" in
    --merge) merge=1 ;;
    ''|*[!0-9]*) echo "usage: tests/fuzz/run.sh [SECONDS] [--merge]" >&2; exit 2 ;;
    *) seconds=$arg ;;
  esac
done

mkdir -p build-fuzz
tests/fuzz/build.sh >build-fuzz/build.log 2>&1 || { cat build-fuzz/build.log >&2; exit 1; }

fuzzer=build-fuzz/fuzz_scenario
work=build-fuzz/corpus
artifacts=build-fuzz/artifacts
logs=build-fuzz/crash-logs
mkdir -p "$work" "$logs" tests/fuzz/crashes
rm -rf "$artifacts" && mkdir -p "$artifacts"
cp -n tests/fuzz/corpus/* "$work"/ 2>/dev/null || true

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)}
flags=(-timeout=5 -rss_limit_mb=2048 -max_len=16384 -dict=tests/fuzz/scenario.dict -print_final_stats=1)
# TRIALSIM_FUZZ_SEED: libFuzzer's random seed (CI fixes it, so that a run explores the same
# inputs in the same order and a finding there comes from the change under test); unset, a new
# seed each run.
[ -n "${TRIALSIM_FUZZ_SEED:-}" ] && flags+=(-seed="$TRIALSIM_FUZZ_SEED")

log=build-fuzz/fuzz.log
echo "fuzzing for ${seconds}s; log: $log"
"$fuzzer" "${flags[@]}" -max_total_time="$seconds" -artifact_prefix="$artifacts/" "$work" >"$log" 2>&1
status=$?
grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -1; grep '^stat::' "$log"

# A name for what an input triggers, from the fuzzer's log: the kind of report and the first
# frame in the project's own code (not the harness), e.g. heap-buffer-overflow-config_reader.cpp-123.
name_of() {
  local artifact=$1 kind where
  kind=$(grep -m1 -oE 'ERROR: AddressSanitizer: [a-z-]+' "$log" | awk '{print $3}')
  [ -z "$kind" ] && grep -q 'runtime error:' "$log" &&
    kind=ubsan-$(grep -m1 -oE 'runtime error: [a-z -]+' "$log" | sed 's/runtime error: //; s/ *$//; s/ /-/g' | cut -c1-40)
  [ -z "$kind" ] && grep -q 'LeakSanitizer: detected memory leaks' "$log" && kind=leak
  [ -z "$kind" ] && grep -q "terminate called after throwing an instance of" "$log" &&
    kind=uncaught-$(grep -m1 -oE "throwing an instance of '[^']+'" "$log" | sed "s/.*of '//; s/'$//; s/::/-/g; s/[^A-Za-z0-9_-]/_/g")
  [ -z "$kind" ] && grep -q 'ALARM: working on the last Unit' "$log" && kind=timeout
  [ -z "$kind" ] && grep -q 'out-of-memory' "$log" && kind=out-of-memory
  [ -z "$kind" ] && kind=$(basename "$artifact" | cut -d- -f1)
  where=$(grep -E '^ +#[0-9]+ 0x[0-9a-f]+ in .* '"$root"'/(sim|models)/' "$log" | head -1 |
          grep -oE "$root/[^ :]+:[0-9]+" | sed "s|.*/||; s|:|-|")
  echo "${kind}${where:+-$where}-$(sha1sum "$artifact" | cut -c1-8)"
}

failed=0
for artifact in "$artifacts"/*; do
  [ -e "$artifact" ] || continue
  failed=1
  name=$(name_of "$artifact")
  cp "$artifact" "tests/fuzz/crashes/$name"
  cp "$log" "$logs/$name.log"
  echo "FINDING: tests/fuzz/crashes/$name (log: $logs/$name.log)"
  grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|terminate called|ALARM' "$log" | sed 's/^/  /'
  grep -E '^ +#[0-9]+ 0x' "$log" | head -8 | sed 's/^/  /'
done
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "the fuzzer exited with status $status and left no reproducer; see $log" >&2
  failed=1
fi
[ "$failed" -ne 0 ] && exit 1

if [ "$merge" -eq 1 ]; then
  # Coverage of the project's code only (build-fuzz/fuzz_scenario_merge links Debian's toml++),
  # edges without hit counts, and a greedy set cover: a few hundred small files, not thousands.
  make --no-print-directory -f tests/fuzz/Makefile -j2 BUILD=build-fuzz VERSION="$(sed -n 's/^project(trialsim VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)" \
    build-fuzz/fuzz_scenario_merge >>build-fuzz/build.log 2>&1 || { tail -20 build-fuzz/build.log >&2; exit 1; }
  before=$(ls tests/fuzz/corpus | wc -l)
  build-fuzz/fuzz_scenario_merge -set_cover_merge=1 -use_counters=0 -timeout=5 -rss_limit_mb=2048 -max_len=16384 \
    tests/fuzz/corpus "$work" >build-fuzz/merge.log 2>&1 || { echo "merge failed; see build-fuzz/merge.log" >&2; exit 1; }
  after=$(ls tests/fuzz/corpus | wc -l)
  size=$(du -sb tests/fuzz/corpus | cut -f1)
  echo "merged: tests/fuzz/corpus $before -> $after files, $size bytes ($(grep -m1 'MERGE-OUTER: .* new files' build-fuzz/merge.log))"
  if [ "$after" -gt 250 ] || [ "$size" -gt 1048576 ]; then
    echo "warning: tests/fuzz/corpus is well over 200 files or over 1 MiB; minimize it (see tests/fuzz/README.md)" >&2
  fi
fi
echo "no findings in ${seconds}s"
