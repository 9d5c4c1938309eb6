#!/usr/bin/env bash
# Malformed input, table-driven: each case is a scenario text (or none) and a command line; each
# must exit 2 with exactly one stderr line that names the key (or option, or file) and the
# problem, write nothing to stdout and leave no file behind. The classes are listed in the
# README's "Troubleshooting" section.
# Usage: test_malformed.sh path/to/trialsim repo_root [--show]   (--show prints every message)
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
root=$(cd "$2" && pwd)
show=${3:-}
seed="$root/configs/seed_trial.toml"
# shellcheck source=tests/cli/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
mkdir -p "$work/adir"

# t NAME SCENARIO EXPECTED -- ARGS...
#   SCENARIO: printf format of the file written to $work/m.toml ("" writes none); in ARGS,
#   @M is that file, @W the work directory, @S the seed scenario. EXPECTED: a substring of the
#   one stderr line.
t() {
  local name=$1 text=$2 want=$3
  shift 4
  rm -rf "$work/out" "$work/m.toml" && mkdir -p "$work/out"
  if [ -n "$text" ]; then printf -- "$text" >"$work/m.toml"; fi
  local args=() a
  for a in "$@"; do
    a=${a//@M/$work/m.toml}
    a=${a//@W/$work}
    a=${a//@S/$seed}
    args+=("$a")
  done
  (cd "$work/out" && timeout 60 "$bin" "${args[@]}" >"$work/stdout" 2>"$work/stderr" </dev/null)
  local rc=$?
  [ -n "$show" ] && printf '%-28s rc=%s %s\n' "$name" "$rc" "$(head -c 400 "$work/stderr")"
  local lines
  lines=$(wc -l <"$work/stderr")
  if [ "$rc" -ne 2 ]; then failed=$((failed + 1)); echo "FAIL: $name: exit $rc, expected 2: $(head -c 300 "$work/stderr")"; return; fi
  if [ "$lines" -ne 1 ]; then failed=$((failed + 1)); echo "FAIL: $name: $lines stderr lines, expected 1: $(cat "$work/stderr")"; return; fi
  if ! grep -qF -- "$want" "$work/stderr"; then failed=$((failed + 1)); echo "FAIL: $name: stderr lacks '$want': $(cat "$work/stderr")"; return; fi
  if [ -s "$work/stdout" ]; then failed=$((failed + 1)); echo "FAIL: $name: wrote to stdout"; return; fi
  if [ -n "$(ls -A "$work/out")" ]; then failed=$((failed + 1)); echo "FAIL: $name: left files: $(ls -A "$work/out")"; return; fi
  passed=$((passed + 1))
}
R=(run @M --reps 10 --json @W/out/s.json)

# --- Wrong types
t "string for integer"      '[trial]\nconsented = "ten"\n'   'm.toml:2: trial.consented: expected an integer, got a string "ten"' -- "${R[@]}"
t "float for integer"       '[trial]\nconsented = 10.5\n'    'm.toml:2: trial.consented: expected an integer' -- "${R[@]}"
t "bool for number"         '[trial]\nalpha = true\n'        'm.toml:2: trial.alpha: expected a number, got a boolean' -- "${R[@]}"
t "array for number"        '[trial]\nalpha = [0.05]\n'      'trial.alpha: expected a number, got an array' -- "${R[@]}"
t "table for number"        '[trial.alpha]\nx = 1\n'         'trial.alpha: expected a number, got a table' -- "${R[@]}"
t "number for string"       '[randomization]\nmethod = 3\n'  'randomization.method: expected a string' -- "${R[@]}"
t "number for boolean"      '[screening]\nseparate_baseline = 1\n' 'screening.separate_baseline: expected true or false' -- "${R[@]}"
t "date for number"         '[spp]\nmean = 1979-05-27\n'     'spp.mean: expected a number, got a date/time' -- "${R[@]}"
t "string in number array"  '[trial]\nmonths = [0, "6", 12]\n' 'trial.months: element 2: expected a number' -- "${R[@]}"
t "scalar for array"        '[trial]\nmonths = 12\n'         'trial.months: expected an array of numbers' -- "${R[@]}"
t "section as a value"      'trial = 5\n'                    'trial' -- "${R[@]}"

# --- Out of range
t "too few patients"        '[trial]\nconsented = 1\n'       'trial.consented: must be' -- "${R[@]}"
t "too many patients"       '[trial]\nconsented = 1000000000\n' 'trial.consented: must be' -- "${R[@]}"
t "alpha zero"              '[trial]\nalpha = 0\n'           'trial.alpha: must be in [1e-10, 1)' -- "${R[@]}"
t "alpha one"               '[trial]\nalpha = 1\n'           'trial.alpha: must be in [1e-10, 1)' -- "${R[@]}"
t "negative SD"             '[spp]\nsd_measurement = -1\n'   'spp.sd_measurement: must be in [0, 1000000]' -- "${R[@]}"
t "probability above 1"     '[population]\ndiabetes_prob = 1.5\n' 'population.diabetes_prob: must be in [0, 1], got 1.5' -- "${R[@]}"
t "probability 1 for loss"  '[screening]\npre_baseline_loss = 1\n' 'screening.pre_baseline_loss: must be' -- "${R[@]}"
t "hazard ratio 0"          '[dropout]\nspp_hazard_ratio_per_10 = 0\n' 'dropout.spp_hazard_ratio_per_10: must be in [0.01, 100]' -- "${R[@]}"
t "negative month"          '[trial]\nmonths = [0, -6, 12]\n' 'trial.months: element 2 must be in [0, 240]' -- "${R[@]}"
t "entry readings 0"        '[screening]\nentry_measurements = 0\n' 'screening.entry_measurements: must be' -- "${R[@]}"
t "imputations 1"           '[analysis]\nmi_imputations = 1\n' 'analysis.mi_imputations: must be' -- "${R[@]}"

# --- NaN, infinities, huge and tiny numbers
t "nan"                     '[spp]\nmean = nan\n'            'spp.mean: must be in [-1000000, 1000000] (a limit that keeps every derived figure finite), got nan' -- "${R[@]}"
t "inf"                     '[spp]\nsd_between = inf\n'      'spp.sd_between: must be' -- "${R[@]}"
t "minus inf"               '[treatment]\neffect_mmHg = -inf\n' 'treatment.effect_mmHg: must be' -- "${R[@]}"
t "1e308 SD"                '[spp]\nsd_measurement = 1e308\n' 'spp.sd_measurement: must be in [0, 1000000] (a limit that keeps every derived figure finite), got 1e+308' -- "${R[@]}"
t "1e308 effect"            '[treatment]\neffect_mmHg = 1e308\n' 'treatment.effect_mmHg: must be in [-1000000, 1000000]' -- "${R[@]}"
t "1e308 drift"             '[spp]\ndrift_per_year = -1e308\n' 'spp.drift_per_year: must be' -- "${R[@]}"
t "1e308 age SD"            '[population]\nage_sd = 1e308\n'  'population.age_sd: must be in [0, 100]' -- "${R[@]}"
t "1e308 Mg mean"           '[population]\nmg_mean = 1e308\n' 'population.mg_mean: must be in (0, 100]' -- "${R[@]}"
t "denormal alpha"          '[trial]\nalpha = 5e-324\n'      'trial.alpha: must be in [1e-10, 1) (below 1e-10 the critical values leave double precision)' -- "${R[@]}"
t "1e308 vintage"           '[population]\nvintage_mean_years = 1e308\n' 'population.vintage_mean_years: must be in (0, 100]' -- "${R[@]}"
t "integer beyond int64"    '[trial]\nconsented = 99999999999999999999\n' 'm.toml:2' -- "${R[@]}"
t "largest int64"           '[trial]\nconsented = 9223372036854775807\n' 'trial.consented: must be' -- "${R[@]}"

# --- Empty and malformed arrays
t "empty months"            '[trial]\nmonths = []\n'         'trial.months: expected 2 to 16 numbers, got 0' -- "${R[@]}"
t "one visit"               '[trial]\nmonths = [0]\n'        'trial.months: expected 2 to 16 numbers' -- "${R[@]}"
t "too many visits"         '[trial]\nmonths = [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\n' 'trial.months: expected 2 to 16 numbers, got 17' -- "${R[@]}"
t "first month not 0"       '[trial]\nmonths = [1, 6, 12]\n' 'trial.months: the first visit must be month 0' -- "${R[@]}"
t "months decreasing"       '[trial]\nmonths = [0, 12, 6]\n' 'trial.months: visit months must be strictly increasing' -- "${R[@]}"
t "empty methods"           '[analysis]\nmethods = []\n'     'analysis.methods: expected at least 1' -- "${R[@]}"
t "unknown method"          '[analysis]\nmethods = ["anova"]\n' 'analysis.methods' -- "${R[@]}"
t "empty block sizes"       '[randomization]\nblock_sizes = []\n' 'randomization.block_sizes' -- "${R[@]}"
t "ratio of one number"     '[randomization]\nratio = [1]\n' 'randomization.ratio' -- "${R[@]}"
t "ratio zero"              '[randomization]\nratio = [0, 1]\n' 'randomization.ratio' -- "${R[@]}"

# --- Contradictory values
t "one-sided alpha 0.5"     '[trial]\nsides = 1\nalpha = 0.5\n' 'trial.alpha: with trial.sides = 1 it is the one-sided level and must be below 0.5' -- "${R[@]}"
t "three sides"             '[trial]\nsides = 3\n'          'm.toml:2: trial.sides: must be an integer in [1, 2], got 3' -- "${R[@]}"
t "samplesize effect in H0" '' 'inside the null hypothesis (effect <= 2, trial.sides and trial.margin), so ancova'"'"'s power stays at or below alpha (0.05)' -- samplesize @S --method ancova --set trial.sides=1 --set trial.margin=2 --set treatment.effect_mmHg=1
t "entry min above max"     '[screening]\nentry_min = 90\nentry_max = 80\n' 'screening.entry_max: must be above screening.entry_min' -- "${R[@]}"
t "nobody passes the cutoff" '[screening]\nentry_max = -1000\n' 'screening.entry_max: nobody can pass this cutoff' -- "${R[@]}"
t "max dose below min"      '[treatment]\nmin_dose_mg = 500\nmax_dose_mg = 100\n' 'treatment.max_dose_mg: must be >= treatment.min_dose_mg' -- "${R[@]}"
t "start dose outside"      '[treatment]\nstart_dose_mg = 5000\n' 'treatment.start_dose_mg: must lie between' -- "${R[@]}"
t "Mg target inverted"      '[treatment]\ntarget_mg_low = 3\ntarget_mg_high = 2\n' 'treatment.target_mg_high: must be above treatment.target_mg_low' -- "${R[@]}"
t "titration not increasing" '[treatment]\ntitration_months = [6, 3]\n' 'treatment.titration_months: must be strictly increasing' -- "${R[@]}"
t "blocks vs ratio"         '[randomization]\nratio = [2, 1]\nblock_sizes = [4]\n' 'randomization.block_sizes: every block size must be a multiple of 3' -- "${R[@]}"
t "onset after last visit"  '[trial]\nmonths = [0, 6]\n[treatment]\neffect_onset_months = 12\n' 'treatment.effect_onset_months: must be in [0, 6]' -- "${R[@]}"
t "unknown choice"          '[dropout]\nhazard_depends_on = "observed"\n' 'dropout.hazard_depends_on: must be one of true_spp, observed_spp, got "observed"' -- "${R[@]}"
t "interim without accrual" '[interim]\nfractions = [0.5, 1]\n' 'm.toml:2: interim.fractions: interim looks need staggered entry: set trial.accrual_months' -- "${R[@]}"
t "interim last look"       '[trial]\naccrual_months = 12\n[interim]\nfractions = [0.5, 0.8]\n' 'interim.fractions: the last look is the final analysis at fraction 1' -- "${R[@]}"
t "futility two-sided"      '[trial]\naccrual_months = 12\n[interim]\nfractions = [0.5, 1]\nfutility = "z"\nfutility_z = [0]\n' 'interim.futility: futility stopping needs a one-sided test' -- "${R[@]}"
t "futility z count"        '[trial]\naccrual_months = 12\nsides = 1\nalpha = 0.025\n[interim]\nfractions = [0.3, 0.6, 1]\nfutility = "z"\nfutility_z = [0]\n' 'interim.futility_z' -- "${R[@]}"
t "interim key not applying" '[trial]\naccrual_months = 12\n[interim]\nfractions = [0.5, 1]\nbeta = 0.1\n' 'interim.beta: applies only with interim.futility = "beta_spending"' -- "${R[@]}"
t "accrual rates alone"     '[trial]\naccrual_rates = [1, 2]\n' 'trial.accrual_rates: applies only with trial.accrual_months' -- "${R[@]}"

# --- Keys: duplicates, typos, unknown sections
t "duplicate key"           '[trial]\nalpha = 0.05\nalpha = 0.1\n' 'm.toml:3' -- "${R[@]}"
t "duplicate table"         '[trial]\nalpha = 0.05\n[trial]\nconsented = 50\n' 'm.toml:3' -- "${R[@]}"
t "misspelt key"            '[dropout]\ndeath_per_yaer = 0.1\n' 'dropout.death_per_yaer: unknown key; did you mean dropout.death_per_year?' -- "${R[@]}"
t "misspelt section"        '[trail]\nconsented = 50\n' 'did you mean [trial]' -- "${R[@]}"
t "key in wrong section"    '[spp]\nconsented = 50\n' 'spp.consented: unknown key; did you mean trial.consented?' -- "${R[@]}"

# --- Broken files
t "truncated table header"  '[trial\nconsented = 50\n' 'm.toml:1' -- "${R[@]}"
t "truncated value"         '[trial]\nalpha = \n'    'm.toml:2' -- "${R[@]}"
t "truncated string"        '[randomization]\nmethod = "strat' 'm.toml:2' -- "${R[@]}"
t "not TOML at all"         'this is not a scenario\n' 'm.toml:1' -- "${R[@]}"
t "non-UTF-8 bytes"         '[trial]\n# \xff\xfe\nconsented = 50\n' 'm.toml:2' -- "${R[@]}"
t "letter beyond ASCII in a key" '[trial]\nconsen\xd0\x92ted = 50\n' 'm.toml:2:7: TOML syntax error: the character U+0412' -- "${R[@]}"
t "ideograph opening the file" '\xe2\xbd\xbd = 1\n' 'm.toml:1:1: TOML syntax error: the character U+2F7D' -- "${R[@]}"
t "letter after a multi-line string closed by four quotes" 'a = [["""x"""" , \xc3\xa9]]\n' 'm.toml:1:18: TOML syntax error: the character U+00E9' -- "${R[@]}"
t "letter after a multi-line literal closed by five quotes" "a = [['''x''''' , \\xc3\\xa9]]\\n" 'm.toml:1:19: TOML syntax error: the character U+00E9' -- "${R[@]}"
t "letter in quotes running on from a number" '[trial]\nalpha = -9"a\xc3\xa9"\n' 'm.toml:2:13: TOML syntax error: the character U+00E9 runs on from the value that starts at column 9' -- "${R[@]}"
t "a quote where no value or key begins" '[trial]\nalpha = 0.05 "\xc3\xa9"\n' 'm.toml:2:15: TOML syntax error: the character U+00E9 after the quote at column 14, which opens no string' -- "${R[@]}"
t "NUL byte"                '[trial]\nconsented = 5\0000\n' 'm.toml:2' -- "${R[@]}"
t "binary junk"             '\x89PNG\r\n\x1a\n' 'm.toml:1' -- "${R[@]}"

# --- Files that are not scenarios
t "missing file"            '' 'cannot open scenario file' -- run @W/nope.toml --json @W/out/s.json
t "a directory"             '' 'is a directory' -- run @W/adir --json @W/out/s.json
t "a device"                '' '/dev/zero: is a device, not a scenario file' -- run /dev/zero --json @W/out/s.json
t "empty scenario path"     '' 'must not be empty' -- run "" --json @W/out/s.json
t "extends a missing file"  'extends = "nope.toml"\n' 'extends' -- "${R[@]}"
t "extends itself"          'extends = "m.toml"\n' 'extends this file again (a cycle)' -- "${R[@]}"
t "extends a directory"     'extends = "adir"\n' 'is a directory' -- "${R[@]}"
t "extends a number"        'extends = 5\n' 'extends: expected the path of a scenario file, got 5' -- "${R[@]}"

# --- Command lines
t "--set without ="         '' '--set trial.alpha: expected KEY=VALUE' -- run @S --set trial.alpha --json @W/out/s.json
t "--set empty value"       '' '--set trial.alpha=' -- run @S --set trial.alpha= --json @W/out/s.json
t "--set two values"        '' '--set trial.alpha=0.1 0.2: trial.alpha: expected a number, got a string' -- run @S --set 'trial.alpha=0.1 0.2' --json @W/out/s.json
t "--set a section"         '' 'trial' -- run @S --set trial=1 --json @W/out/s.json
t "--set unknown key"       '' 'did you mean trial.consented?' -- run @S --set trial.consentd=10 --json @W/out/s.json
t "--reps 0"                '' '--reps' -- run @S --reps 0
t "--reps not a number"     '' "--reps: 'abc' is not a whole number" -- run @S --reps abc
t "--reps 1e3"              '' "--reps: '1e3' is not a whole number" -- run @S --reps 1e3
t "--reps 10^12"            '' '--reps' -- run @S --reps 1000000000000
t "--seed 2^64"             '' "--seed: '18446744073709551616' is too large (at most 18446744073709551615)" -- run @S --seed 18446744073709551616
t "--seed negative"         '' "--seed: '-1' is not a whole number" -- run @S --seed -1
t "--replicate >= --reps"   '' '--replicate: 10 is not below --reps 10' -- run @S --reps 10 --replicate 10 --json @W/out/s.json
t "--mcse-target nan"       '' "--mcse-target: 'nan' is not a finite number" -- run @S --mcse-target nan
t "--mcse-target negative"  '' '--mcse-target' -- run @S --mcse-target -1
t "--json empty"            '' '--json: must not be empty' -- run @S --json ""
t "--json a directory"      '' 'is a directory' -- run @S --reps 10 --json @W/adir
t "--threads 0"             '' '--threads' -- run @S --threads 0
t "unknown option"          '' 'run has no option --seedd; did you mean --seed?' -- run @S --seedd 3
t "option of another command" '' 'run has no option --vary; --vary belongs to sweep' -- run @S --vary trial.consented=50,60
t "unknown command"         '' "unknown command 'runn'; did you mean run?" -- runn @S
t "no command"              '' 'A subcommand is required' --
t "--vary descending"       '' '--vary trial.consented=1:0:1: a range needs STEP > 0 and HI >= LO' -- sweep @S --vary trial.consented=1:0:1 --out @W/out/sw
t "--vary zero step"        '' '--vary trial.consented=0:1:0: a range needs STEP > 0' -- sweep @S --vary trial.consented=0:1:0 --out @W/out/sw
t "--vary million points"   '' '--vary: the grid has more than 10000 points' -- sweep @S --vary trial.consented=2:1000:1 --vary treatment.effect_mmHg=0:9.99:0.01 --out @W/out/sw
t "--vary long axis"        '' 'more than 1000 values on one axis' -- sweep @S --vary treatment.effect_mmHg=0:100:0.001 --out @W/out/sw
t "--vary unknown key"      '' 'did you mean' -- sweep @S --vary trial.consentd=50,60 --out @W/out/sw
t "--vary without values"   '' '--vary trial.consented' -- sweep @S --vary trial.consented --out @W/out/sw
t "--vary bad value"        '' 'trial.consented' -- sweep @S --vary trial.consented=50,abc --out @W/out/sw
t "sweep --out empty"       '' '--out: must not be empty' -- sweep @S --vary trial.consented=50,60 --out ""
t "samplesize --lo > --hi"  '' '--lo' -- samplesize @S --method ancova --set treatment.effect_mmHg=5 --lo 200 --hi 100
t "samplesize power 1.5"    '' '--target-power' -- samplesize @S --method ancova --target-power 1.5
t "samplesize no effect"    '' 'so ancova'"'"'s power stays at alpha (0.05) at any size' -- samplesize @S --method ancova --set treatment.effect_mmHg=0
t "validate too few reps"   '' '--reps' -- validate --reps 100
t "merge missing shard"     '' 'nope.json' -- merge @W/nope.json --json @W/out/s.json

finish
