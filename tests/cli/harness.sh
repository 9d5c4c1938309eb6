# Shared by the command-line test scripts (sourced): a scratch directory $work removed on exit,
# pass/fail counters with ok and bad NAME, and finish, which prints the counts and fails the
# script if any check failed.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
