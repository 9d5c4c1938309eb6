#!/usr/bin/env bash
# cmake --install of the build into a temporary prefix: the program (which runs and says its
# version), the manual page (one section per command, the same text as --help), the scenarios
# and the README. Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
root=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
failed=0
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

cmake --install "$build" --prefix "$prefix" >/dev/null || { echo "FAIL: cmake --install"; exit 1; }
bin="$prefix/bin/trialsim"
man="$prefix/share/man/man1/trialsim.1"
[ -x "$bin" ] || bad "no $bin"
"$bin" --version | grep -q '^trialsim ' || bad "installed trialsim --version: $("$bin" --version 2>&1)"
[ -f "$man" ] || bad "no $man"
head -1 "$man" | grep -q '^\.TH TRIALSIM 1 ' || bad "manual page header: $(head -1 "$man")"
for cmd in run merge validate sweep samplesize calibrate; do
  grep -q "^\.SS $cmd$" "$man" || bad "manual page lacks the $cmd section"
done
# The page carries the help text itself (an option of run, as --help words it).
grep -q -- '--summary-csv TEXT' "$man" || bad "manual page lacks run's --summary-csv"
if command -v man >/dev/null; then
  MANWIDTH=100 man -l "$man" 2>/dev/null | grep -q 'trialsim - Monte Carlo simulation' || bad "man -l cannot render the page"
fi
for f in configs/seed_trial.toml configs/null_trial.toml; do
  cmp -s "$root/$f" "$prefix/share/trialsim/$f" || bad "installed $f differs"
done
cmp -s "$root/README.md" "$prefix/share/doc/trialsim/README.md" || bad "installed README differs"
# An installed scenario runs from anywhere.
(cd "$prefix" && "$bin" run share/trialsim/configs/seed_trial.toml --reps 20 --quiet --json out.json) &&
  grep -q '"replicates": 20' "$prefix/out.json" || bad "the installed program cannot run the installed seed scenario"
[ "$failed" -eq 0 ] && echo "install: all checks passed"
exit $(( failed > 0 ))
