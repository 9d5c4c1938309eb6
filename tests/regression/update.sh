#!/usr/bin/env bash
# Regenerates the approved fixed-seed outputs after an intended change of results.
# Usage: bash tests/regression/update.sh [path/to/trialsim]   (from the repository root)
# Review the diff before committing: every changed number is a changed result.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/trialsim}
for scenario in seed_trial null_trial; do
  "$bin" run "configs/$scenario.toml" --reps 256 --seed 1 --threads 2 --quiet --json "tests/regression/$scenario.json"
done
# The provenance sidecars name the commit and the time: not approved outputs.
rm -f tests/regression/*.json.provenance.json
echo "updated tests/regression/{seed_trial,null_trial}.json"
