#!/usr/bin/env bash
# Command-line behaviour: help, version, outputs, and bad input (one line, exit 2, no files).
# Usage: test_cli.sh path/to/trialsim repo_root
set -u
bin=$1
root=$2
seed="$root/configs/seed_trial.toml"
# shellcheck source=tests/cli/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/harness.sh"

# expect_error NAME EXPECTED_SUBSTRING -- ARGS...: exit 2, exactly one stderr line containing
# the substring, nothing on stdout, no file in $work/out.
expect_error() {
  local name=$1 want=$2
  shift 3
  rm -rf "$work/out" && mkdir -p "$work/out"
  "$bin" "$@" >"$work/stdout" 2>"$work/stderr"
  local rc=$?
  local lines
  lines=$(wc -l <"$work/stderr")
  if [ "$rc" -ne 2 ]; then bad "$name: exit $rc, expected 2"; return; fi
  if [ "$lines" -ne 1 ]; then bad "$name: $lines stderr lines, expected 1: $(cat "$work/stderr")"; return; fi
  if ! grep -qF -- "$want" "$work/stderr"; then bad "$name: stderr lacks '$want': $(cat "$work/stderr")"; return; fi
  if [ -s "$work/stdout" ]; then bad "$name: wrote to stdout"; return; fi
  if [ -n "$(ls -A "$work/out")" ]; then bad "$name: left files: $(ls -A "$work/out")"; return; fi
  ok
}

# --help and --version
if "$bin" --help | grep -q "run"; then ok; else bad "--help lacks the run command"; fi
if "$bin" run --help | grep -q -- "--patients-csv"; then ok; else bad "run --help lacks --patients-csv"; fi
# The version, the commit built (12 hex digits, -dirty with uncommitted changes, or unknown
# outside a git checkout) and the build type.
if "$bin" --version | grep -Eq '^trialsim 0\.1\.0 \(commit ([0-9a-f]{12}(-dirty)?|unknown), [A-Za-z]+ build\)$'; then ok; else bad "--version: $("$bin" --version)"; fi

# Bad input
printf '[trial]\nconsented = 50\n\n[dropout]\ndeath_per_year = -0.1\n' >"$work/neg.toml"
expect_error "negative rate" "neg.toml:5: dropout.death_per_year: must be in [0, 100], got -0.1" -- run "$work/neg.toml" --json "$work/out/s.json"
printf '[dropout]\ndeath_per_yaer = 0.1\n' >"$work/typo.toml"
expect_error "unknown key" "typo.toml:2: dropout.death_per_yaer: unknown key; did you mean dropout.death_per_year?" -- run "$work/typo.toml" --json "$work/out/s.json"
printf '[screening]\nentry_max = -30.0\n' >"$work/cut.toml"
expect_error "impossible cutoff" "screening.entry_max: nobody can pass this cutoff" -- run "$work/cut.toml" --trials-csv "$work/out/t.csv"
printf '[trial\nconsented = 3\n' >"$work/syntax.toml"
expect_error "syntax error" "syntax.toml:1:" -- run "$work/syntax.toml"
expect_error "missing file" "cannot open scenario file" -- run "$work/nope.toml" --json "$work/out/s.json"
expect_error "bad --set value" "--set trial.alpha=2: trial.alpha: must be in [1e-10, 1) (below 1e-10 the critical values leave double precision), got 2" -- run "$seed" --set trial.alpha=2 --json "$work/out/s.json"
expect_error "bad --set key" "did you mean trial.consented?" -- run "$seed" --set trial.consentd=10 --json "$work/out/s.json"
expect_error "wrong type" "expected an integer" -- run "$seed" --set 'trial.consented="ten"' --json "$work/out/s.json"
expect_error "bad --reps" "--reps" -- run "$seed" --reps 0
expect_error "bad --threads" "--threads" -- run "$seed" --threads -3
expect_error "unknown option" "--bogus" -- run "$seed" --bogus
expect_error "patients without replicate" "--patients-csv: needs --replicate" -- run "$seed" --patients-csv "$work/out/p.csv"
expect_error "replicate outside reps" "--replicate: 10 is not below --reps 10" -- run "$seed" --reps 10 --replicate 10 --json "$work/out/s.json"
expect_error "negative seed" "--seed" -- run "$seed" --seed -1
expect_error "two outputs, one file" "--trials-csv: $work/out/same is the same file as --json" -- run "$seed" --reps 10 --json "$work/out/same" --trials-csv "$work/out/same"
expect_error "output overwrites scenario" "is the same file as the scenario file" -- run "$work/neg.toml" --json "$work/neg.toml"
# Every command refuses outputs that name its scenario or each other (the scenario is checked
# to be intact afterwards).
cp "$work/neg.toml" "$work/keep.toml"
expect_error "samplesize json over scenario" "--json: $work/neg.toml is the same file as the scenario file" -- samplesize "$work/neg.toml" --method ancova --json "$work/neg.toml"
expect_error "samplesize report over scenario" "--report: $work/neg.toml is the same file as the scenario file" -- samplesize "$work/neg.toml" --method ancova --report "$work/neg.toml"
expect_error "samplesize json and report one file" "--report: $work/out/ss is the same file as --json" -- samplesize "$work/neg.toml" --method ancova --json "$work/out/ss" --report "$work/out/ss"
expect_error "sweep report over scenario" "--report: $work/neg.toml is the same file as the scenario file" -- sweep "$work/neg.toml" --vary trial.consented=40,50 --report "$work/neg.toml" --out "$work/out/swr"
mkdir -p "$work/swself" && cp "$work/neg.toml" "$work/swself/sweep.csv"
expect_error "sweep tables over scenario" "--out (its sweep.csv): $work/swself/sweep.csv is the same file as the scenario file" -- sweep "$work/swself/sweep.csv" --vary trial.consented=40,50 --out "$work/swself"
# ... and the files it extends, however deep.
printf 'extends = "keep.toml"\n[trial]\nconsented = 40\n' >"$work/child.toml"
printf 'extends = "child.toml"\n' >"$work/grandchild.toml"
cp "$work/child.toml" "$work/child.keep"
expect_error "run json over an extended file" "--json: $work/keep.toml is the same file as the file $work/child.toml extends" -- run "$work/grandchild.toml" --reps 10 --json "$work/keep.toml"
expect_error "run report over an extended file" "--report: $work/child.toml is the same file as the file $work/grandchild.toml extends" -- run "$work/grandchild.toml" --reps 10 --report "$work/child.toml"
expect_error "sweep report over an extended file" "--report: $work/keep.toml is the same file as the file $work/child.toml extends" -- sweep "$work/child.toml" --vary trial.consented=40,50 --reps 10 --out "$work/out/swx" --report "$work/keep.toml"
expect_error "samplesize json over an extended file" "--json: $work/keep.toml is the same file as the file $work/child.toml extends" -- samplesize "$work/child.toml" --method ancova --json "$work/keep.toml"
expect_error "calibrate write over an extended file" "--write: $work/keep.toml is the same file as the file $work/child.toml extends" -- calibrate "$work/child.toml" --observed "$root/configs/seed_observed.toml" --free spp.drift_per_year=0:20 --write "$work/keep.toml"
if cmp -s "$work/neg.toml" "$work/keep.toml" && cmp -s "$work/swself/sweep.csv" "$work/keep.toml" && cmp -s "$work/child.toml" "$work/child.keep"; then ok; else bad "a refused command changed its scenario"; fi
expect_error "unwritable output" "cannot create its directory" -- run "$seed" --reps 10 --json "$work/neg.toml/sub/s.json"
# A missing directory is created (as for --plots); a directory given as a file is refused.
if "$bin" run "$seed" --reps 10 --quiet --json "$work/made/here/s.json" && [ -s "$work/made/here/s.json" ]; then ok; else bad "output into a new directory"; fi
expect_error "output names a directory" "is a directory; give a file name" -- run "$seed" --reps 10 --json "$work"
# Standard input and output, pipes and devices.
if cat "$seed" | "$bin" run - --reps 50 --json - | grep -q '"replicates": 50'; then ok; else bad "scenario from stdin, JSON to stdout"; fi
# Standard input redirected from a file is read once too: the scenario, not the defaults.
if "$bin" run - --reps 20 --json - <"$seed" | grep -q '"treatment_transfer_per_year": 0.11'; then ok; else bad "scenario from stdin (< file) was not the file"; fi
if "$bin" run <(cat "$seed") --reps 50 --quiet --json /dev/stdout | grep -q '"replicates": 50'; then ok; else bad "scenario from a pipe, JSON to /dev/stdout"; fi
expect_error "scenario is a directory" "is a directory; expected a scenario file" -- run "$work" --reps 10
expect_error "scenario is a device" "is a device, not a scenario file" -- run /dev/zero --reps 10
expect_error "seed too large" "is too large (at most 18446744073709551615)" -- run "$seed" --seed 18446744073709551616
expect_error "reps not a number" "--reps: 'abc' is not a whole number" -- run "$seed" --reps abc
expect_error "mcse target nan" "--mcse-target: 'nan' is not a finite number" -- run "$seed" --mcse-target nan
expect_error "limit that follows another key" "treatment.effect_onset_months: must be in [0, 6], got 12.0; the limit follows trial.months (--set trial.months=[0,6]): change either key" -- run "$seed" --set 'trial.months=[0,6]' --reps 10
expect_error "sample size without an effect" "the true effect at the endpoint is 0 mmHg" -- samplesize "$root/configs/null_trial.toml" --method ancova --json "$work/out/ss.json"
expect_error "empty output name" "--json: must not be empty" -- run "$seed" --json ""

# A normal run writes the summary JSON, one CSV row per trial, and a table on stdout.
if "$bin" run "$seed" --reps 300 --seed 5 --threads 2 --json "$work/s.json" --trials-csv "$work/t.csv" >"$work/table.txt" 2>"$work/err.txt"; then ok; else bad "seed run failed: $(cat "$work/err.txt")"; fi
if grep -q '"replicates": 300' "$work/s.json" && grep -q '"regression_to_mean"' "$work/s.json"; then ok; else bad "summary JSON lacks keys"; fi
if [ "$(wc -l <"$work/t.csv")" -eq 301 ]; then ok; else bad "trials CSV has $(wc -l <"$work/t.csv") lines, expected 301"; fi
if head -1 "$work/t.csv" | grep -q "^replicate,.*,ancova_p,ancova_df,.*,mmrm_p,mmrm_df,.*,ipw_ancova_df,.*,mi_delta_df$"; then ok; else bad "trials CSV header: $(head -1 "$work/t.csv")"; fi
if grep -q "regression to the mean" "$work/table.txt" && grep -q "ancova" "$work/table.txt"; then ok; else bad "summary table incomplete"; fi
if ! grep -q '"mcse": null' "$work/s.json"; then ok; else bad "undefined MC SE in a normal run's summary"; fi
if [ ! -s "$work/err.txt" ]; then ok; else bad "stderr not empty without a terminal: $(cat "$work/err.txt")"; fi

# Same output at 1 and 2 threads.
"$bin" run "$seed" --reps 300 --seed 5 --threads 1 --json "$work/s1.json" --trials-csv "$work/t1.csv" --quiet
if cmp -s "$work/s.json" "$work/s1.json" && cmp -s "$work/t.csv" "$work/t1.csv"; then ok; else bad "1 vs 2 threads differ"; fi

# Replaying one trial gives its row of the full run and its patient table.
"$bin" run "$seed" --seed 5 --replicate 17 --patients-csv "$work/p.csv" --trials-csv "$work/t17.csv" >"$work/r17.txt"
if [ "$(sed -n 2p "$work/t17.csv")" = "$(sed -n 19p "$work/t.csv")" ]; then ok; else bad "replayed row differs from the full run's"; fi
if [ "$(wc -l <"$work/p.csv")" -eq 107 ]; then ok; else bad "patients CSV has $(wc -l <"$work/p.csv") lines, expected 107"; fi
if head -1 "$work/p.csv" | grep -q "^id,status,arm,stratum,.*,true_spp_m0,observed_spp_m0,serum_mg_m0,dose_mg_m0,.*,dropout_month,dropout_reason$"; then ok; else bad "patients CSV header"; fi
if grep -q ",randomized,treatment," "$work/p.csv" && grep -q ",excluded_entry_above_max,," "$work/p.csv"; then ok; else bad "patients CSV content"; fi
if grep -q "ancova" "$work/r17.txt"; then ok; else bad "replicate report lacks analyses"; fi

# validate: bad size refused; a small run writes every case and its exit code matches the results.
expect_error "validate with too few trials" "--reps" -- validate --reps 10
if "$bin" validate --help | grep -q -- "--reps"; then ok; else bad "validate --help lacks --reps"; fi
expect_error "validate below the size that decides every case" "--reps: Value 500 not in range 1000" -- validate --reps 500
"$bin" validate --reps 1000 --threads 2 --json "$work/v.json" >"$work/v.txt"
rc=$?
fails=$(grep -c " FAIL$" "$work/v.txt")
if [ "$fails" -eq 0 ] && [ "$rc" -eq 0 ]; then ok; else bad "validate at its smallest size: exit $rc with $fails failures"; fi
if [ "$(grep -c '"case":' "$work/v.json")" -ge 20 ]; then ok; else bad "validate JSON has fewer than 20 cases"; fi
if grep -q "^[0-9]* passed, [0-9]* failed$" "$work/v.txt"; then ok; else bad "validate lacks its closing line"; fi

# sweep: a grid from --vary and the file's [sweep] section, resumed on rerun; bad axes refused;
# Ctrl-C keeps only complete grid points.
printf '[sweep]\nvary = ["screening.entry_max=70:80:10"]\n[analysis]\nmethods = ["ancova"]\n' >"$work/sw.toml"
expect_error "sweep bad axis" "--vary trial.consented=abc" -- sweep "$work/sw.toml" --vary trial.consented=abc --out "$work/out/sw"
if "$bin" sweep "$work/sw.toml" --vary trial.consented=60,100 --reps 100 --out "$work/sw" --quiet; then ok; else bad "sweep failed"; fi
if [ "$(ls "$work/sw/points" | wc -l)" -eq 4 ] && [ "$(head -1 "$work/sw/sweep.csv")" = "screening.entry_max,trial.consented,method,metric,estimate,mcse" ]; then ok; else bad "sweep outputs: $(ls "$work/sw/points" | wc -l) points, header $(head -1 "$work/sw/sweep.csv")"; fi
if "$bin" sweep "$work/sw.toml" --vary trial.consented=60,100 --reps 100 --out "$work/sw" | grep -q "0 computed, 4 already done"; then ok; else bad "sweep did not resume"; fi
timeout --preserve-status -s INT 3 "$bin" sweep "$work/sw.toml" --vary trial.consented=60:200:20 --reps 400000 --threads 2 --out "$work/swi" --quiet 2>"$work/swi.err"
rc=$?
if [ "$rc" -eq 130 ] && grep -q "rerun the same command to resume" "$work/swi.err" && [ -z "$(find "$work/swi" -name '*.tmp-*')" ] && [ ! -e "$work/swi/sweep.csv" ]; then ok; else bad "sweep interrupt: exit $rc, $(cat "$work/swi.err")"; fi

# Precision on demand: reps are reported, and --reps is refused alongside a target.
expect_error "reps with mcse target" "--reps excludes --mcse-target" -- run "$seed" --reps 100 --mcse-target 0.01 --json "$work/out/s.json"
expect_error "max-reps without a target" "--max-reps: needs --mcse-target or --mcse-bias" -- run "$seed" --max-reps 5000 --json "$work/out/s.json"
expect_error "replicate with mcse target" "--replicate: replays one trial" -- run "$seed" --replicate 3 --mcse-target 0.01 --json "$work/out/s.json"
if "$bin" run "$seed" --mcse-target 0.02 --set 'analysis.methods=["ancova"]' --json "$work/prec.json" --quiet 2>"$work/prec.err" &&
   grep -q '"met": true' "$work/prec.json" && grep -q '"replicates": 1024' "$work/prec.json" && [ ! -s "$work/prec.err" ]; then ok; else bad "precision run: $(cat "$work/prec.err")"; fi
if "$bin" run "$seed" --mcse-bias 0.01 --max-reps 128 --set 'analysis.methods=["ancova"]' --quiet 2>"$work/prec.err" &&
   grep -q "WARNING: precision NOT reached" "$work/prec.err"; then ok; else bad "precision cap not reported: $(cat "$work/prec.err")"; fi
# 'none' removes the optional cutoff, in --set and in sweep values (sweep.csv writes it NA).
if "$bin" sweep "$seed" --vary screening.entry_max=none,80 --set 'analysis.methods=["ancova"]' --reps 64 --out "$work/swn" --quiet &&
   [ "$(grep -c '^NA,' "$work/swn/sweep.csv")" -gt 10 ]; then ok; else bad "sweep over entry_max=none"; fi

# samplesize: bad method, unreachable target, and a successful search with JSON.
expect_error "samplesize bad method" "--method: unknown analysis 'ancva'" -- samplesize "$seed" --method ancva --json "$work/out/ss.json"
expect_error "samplesize unreachable" "raise --hi" -- samplesize "$seed" --method ancova --set treatment.effect_mmHg=1 --hi 200 --reps 200 --quiet --json "$work/out/ss.json"
if "$bin" samplesize "$seed" --method ancova --set treatment.effect_mmHg=12 --reps 500 --json "$work/ss.json" 2>/dev/null |
   grep -q "Smallest trial.consented with ancova power >= 0.8: " && grep -q '"interval"' "$work/ss.json"; then ok; else bad "samplesize run"; fi

# Pictures: --plots writes SVG and PNG per figure, --report one self-contained page.
expect_error "plots with replicate" "--plots: summarizes many trials; not with --replicate" -- run "$seed" --replicate 1 --plots "$work/out/p"
if "$bin" run "$seed" --reps 300 --set 'analysis.methods=["ancova","mmrm"]' --plots "$work/pics" --report "$work/pics/run.html" --quiet &&
   [ -s "$work/pics/consort.svg" ] && [ -s "$work/pics/consort.png" ] && [ -s "$work/pics/estimates.png" ] && [ -s "$work/pics/rtm.svg" ] &&
   grep -q "<svg" "$work/pics/run.html" && ! grep -q 'src="http' "$work/pics/run.html"; then ok; else bad "run --plots/--report"; fi
# A run where no trial has completers: the figures with nothing to show are left out, the rest
# and the report are written.
if "$bin" run "$seed" --reps 50 --set dropout.death_per_year=100 --plots "$work/nocomp" --report "$work/nocomp/run.html" --quiet &&
   [ -s "$work/nocomp/consort.svg" ] && [ ! -e "$work/nocomp/rtm.svg" ] && [ -s "$work/nocomp/run.html" ] &&
   ! grep -qiw "nan" "$work/nocomp/run.html"; then ok; else bad "run --plots with no completers"; fi
if "$bin" sweep "$work/sw.toml" --vary trial.consented=60,100 --reps 100 --out "$work/sw" --quiet --report "$work/sw/report.html" --plots "$work/sw/plots" &&
   [ -s "$work/sw/report.html" ] && [ -s "$work/sw/plots/power.png" ] && [ -s "$work/sw/plots/screening_burden.svg" ]; then ok; else bad "sweep --plots/--report"; fi
if PATH=/nonexistent "$bin" run "$seed" --reps 10 --plots "$work/nogp" 2>"$work/nogp.err"; then bad "plots without gnuplot succeeded"; 
elif grep -q "gnuplot not found" "$work/nogp.err" && [ ! -e "$work/nogp" ]; then ok; else bad "plots without gnuplot: $(cat "$work/nogp.err")"; fi

# --patients-long: every trial's randomized patients, a row per visit, NA for what is missing;
# the same rows as replaying one trial, and the completers' difference computed from the rows
# is the completers t test's estimate in the trials CSV.
if "$bin" run "$seed" --reps 6 --seed 11 --quiet --patients-long "$work/long.csv" --trials-csv "$work/long_t.csv" &&
   "$bin" run "$seed" --seed 11 --replicate 4 --quiet --patients-long "$work/long4.csv"; then
  head -1 "$work/long.csv" | grep -q '^replicate,id,arm,stratum,age,male,diabetes,visit,month,true,observed,' && ok || bad "--patients-long header"
  if [ "$(grep '^4,' "$work/long.csv" | md5sum)" = "$(tail -n +2 "$work/long4.csv" | md5sum)" ]; then ok; else bad "--patients-long: trial 4 differs from its replay"; fi
  if awk -F, 'NR > 1 && ($11 == "" || $16 == "") { bad = 1 } END { exit bad }' "$work/long.csv" && grep -q ',NA,' "$work/long.csv"; then ok; else bad "--patients-long: empty cells instead of NA"; fi
  from_rows=$(awk -F, 'NR > 1 && $1 == 2 && $9 == 12 && $11 != "NA" { s[$3] += $11; n[$3]++ } END { printf "%.6f", s["treatment"] / n["treatment"] - s["control"] / n["control"] }' "$work/long.csv")
  col=$(head -1 "$work/long_t.csv" | tr ',' '\n' | grep -nx 'completers_ttest_estimate' | cut -d: -f1)
  from_csv=$(awk -F, -v c="$col" '$1 == 2 { printf "%.6f", $c }' "$work/long_t.csv")
  if [ -n "$col" ] && [ "$from_rows" = "$from_csv" ]; then ok; else bad "--patients-long: completers difference $from_rows, trials CSV $from_csv"; fi
else bad "--patients-long run"; fi
expect_error "patients-long too many trials" "--patients-long: writes every trial's patients; at most 100000 trials, got --reps 200000" -- run "$seed" --reps 200000 --patients-long "$work/out/l.csv"
expect_error "patients-long with a shard" "--patients-long: not with --shard" -- run "$seed" --reps 10 --shard 0/2 --json "$work/out/s.json" --patients-long "$work/out/l.csv"

# Provenance: every output a person asked for has a sidecar <output>.provenance.json with what
# made it; the outputs themselves stay the same bytes at any thread count.
if "$bin" run "$seed" --reps 64 --seed 5 --threads 1 --quiet --set treatment.effect_mmHg=3 --json "$work/pv/s.json" \
     --summary-csv "$work/pv/s.csv" --trials-csv "$work/pv/t.csv" --report "$work/pv/r.html" --plots "$work/pv/plots" &&
   "$bin" run "$seed" --reps 64 --seed 5 --threads 2 --quiet --set treatment.effect_mmHg=3 --json "$work/pv/s2.json" &&
   "$bin" sweep "$seed" --vary trial.consented=60,80 --reps 64 --quiet --out "$work/pv/sw"; then
  all=1
  for f in s.json s.csv t.csv r.html plots/provenance.json sw/sweep.csv sw/sweep.json; do
    side="$work/pv/$f.provenance.json"
    [ "$f" = plots/provenance.json ] && side="$work/pv/$f"
    for key in trialsim_version commit build_type command command_line working_directory started_utc scenario seed \
               replicates threads set vary output kind; do
      grep -q "^  \"$key\": " "$side" || { all=0; echo "provenance of $f lacks $key"; }
    done
    case $f in
      sw/*) grep -q '"command": "sweep"' "$side" && grep -q '"trial.consented=60,80"' "$side" || { all=0; echo "sweep provenance: $(cat "$side")"; } ;;
      *) grep -q '"command": "run"' "$side" && grep -q '"seed": 5,' "$side" && grep -q '"replicates": 64,' "$side" &&
           grep -q '"threads": 1,' "$side" && grep -q '"treatment.effect_mmHg=3"' "$side" || { all=0; echo "run provenance: $(cat "$side")"; } ;;
    esac
  done
  if [ "$all" -eq 1 ] && cmp -s "$work/pv/s.json" "$work/pv/s2.json" && ! grep -q provenance "$work/pv/s.json"; then ok
  else bad "provenance sidecars, or outputs that differ by thread count"; fi
else bad "provenance runs"; fi
"$bin" run "$seed" --reps 20 --quiet --shard 0/2 --json "$work/pv/sh.json" --trials-csv "$work/pv/sh.csv"
if [ -s "$work/pv/sh.json" ] && ! ls "$work/pv/" | grep -q '^sh\..*provenance'; then ok; else bad "a shard's files got provenance sidecars"; fi

# Your own trial (configs/blood_pressure.toml, with a unit that is not the seed's): every
# table, CSV header, figure and report says its labels, and shows no row, column or box of the
# seed trial's parts it switches off (serum Mg and titration, the prior-medication exclusion,
# the labs). Scenario keys and their values (`spp.mean`, `effect_mmHg`, `true_spp`) are data
# names and stay; they are removed before looking.
bp="$root/configs/blood_pressure.toml"
printf '[labels]\noutcome = ""\n' >"$work/lab_empty.toml"
expect_error "empty label" "lab_empty.toml:2: labels.outcome: expected 1 to 40 characters, got 0" -- run "$work/lab_empty.toml" --json "$work/out/s.json"
printf '[labels]\ntreatment = "arm A"\ncontrol = "arm A"\n' >"$work/lab_same.toml"
expect_error "same arm labels" "labels.control: the two arms need different labels" -- run "$work/lab_same.toml" --json "$work/out/s.json"
expect_error "label not a string" "labels.unit: expected a string" -- run "$seed" --set labels.unit=3 --json "$work/out/s.json"
seed_words() {  # prints what is left of the seed trial's names in files $@ after data names go
  sed -E 's/<code>[^<]*<\/code>//g; s/[A-Za-z_]+\.[A-Za-z_0-9]+//g; s/"[A-Za-z_]+"//g; s/true_spp|observed_spp|entry_spp//g' "$@" |
    grep -oiE 'SPP|MgO|mmHg|serum Mg|mg/dL|prior Mg|dialysis|vintage' | sort | uniq -c
}
own=(--set labels.unit=kPa)
if "$bin" run "$bp" "${own[@]}" --reps 300 --seed 3 --json "$work/bp/s.json" --summary-csv "$work/bp/s.csv" \
     --trials-csv "$work/bp/t.csv" --plots "$work/bp/plots" --report "$work/bp/run.html" >"$work/bp.txt" 2>&1 &&
   "$bin" run "$bp" "${own[@]}" --reps 300 --seed 3 --replicate 4 --patients-csv "$work/bp/p.csv" >"$work/bp_rep.txt" 2>&1 &&
   "$bin" sweep "$bp" "${own[@]}" --vary screening.entry_min=130,140 --reps 100 --out "$work/bp/sw" --quiet \
     --report "$work/bp/sw/report.html" --plots "$work/bp/sw/plots" &&
   "$bin" samplesize "$bp" "${own[@]}" --method ancova --reps 200 --lo 100 --hi 400 --step 10 --json "$work/bp/ss.json" \
     --report "$work/bp/ss.html" --plots "$work/bp/ssp" >"$work/bp_ss.txt" 2>&1; then
  left=$(seed_words "$work/bp.txt" "$work/bp_rep.txt" "$work/bp_ss.txt" "$work/bp/run.html" "$work/bp/plots/"*.svg \
           "$work/bp/sw/report.html" "$work/bp/sw/plots/"*.svg "$work/bp/ss.html" "$work/bp/ssp/"*.svg)
  headers=$(head -qn1 "$work/bp/t.csv" "$work/bp/p.csv" | tr ',' '\n' | grep -E 'mg|vintage|albumin' | tr '\n' ' ')
  if [ -z "$left" ] && [ -z "$headers" ] && grep -q "drug minus placebo" "$work/bp.txt" && grep -q "baseline SBP mean, kPa" "$work/bp.txt" &&
     grep -q "Allocated to drug" "$work/bp/plots/consort.svg" && grep -q "<th class=\"n\">placebo</th>" "$work/bp/run.html" &&
     ! grep -q "excluded_prior_mg\|serum_mg" "$work/bp/s.csv"; then ok
  else bad "own trial's outputs: seed names left: $left; columns: $headers"; fi
else bad "own trial's run, replicate, sweep or samplesize failed: $(tail -3 "$work/bp.txt" "$work/bp_ss.txt")"; fi

# calibrate: bad observed files and --free specifications, then a small run with every output.
obs="$root/configs/seed_observed.toml"
printf '[control]\ncompleted = 39\ncompletd = 39\n' >"$work/obs_typo.toml"
expect_error "calibrate unknown statistic" "obs_typo.toml:3: control.completd: unknown key; did you mean control.completed?" -- calibrate "$seed" --observed "$work/obs_typo.toml" --free spp.drift_per_year=0:20 --json "$work/out/c.json"
printf '[treatment]\nfinal_sd = -21\n' >"$work/obs_neg.toml"
expect_error "calibrate negative SD" "obs_neg.toml:2: treatment.final_sd: an SD must be >= 0, got -21" -- calibrate "$seed" --observed "$work/obs_neg.toml" --free spp.drift_per_year=0:20 --write "$work/out/c.toml"
printf '[funnel]\nentry_above_max = 200\n' >"$work/obs_big.toml"
expect_error "calibrate count above consented" "obs_big.toml:2: funnel.entry_above_max: must be a whole number of patients between 0 and trial.consented (106)" -- calibrate "$seed" --observed "$work/obs_big.toml" --free spp.drift_per_year=0:20 --json "$work/out/c.json"
expect_error "calibrate bad free" "--free spp.drift_per_year=20:0: LO must be below HI" -- calibrate "$seed" --observed "$obs" --free spp.drift_per_year=20:0 --json "$work/out/c.json"
expect_error "calibrate unknown free key" "--free spp.drift=0:20: the scenario does not accept spp.drift = 0" -- calibrate "$seed" --observed "$obs" --free spp.drift=0:20 --json "$work/out/c.json"
expect_error "calibrate integer key" "--free trial.consented=50:150: trial.consented must take any number between LO and HI" -- calibrate "$seed" --observed "$obs" --free trial.consented=50:150 --json "$work/out/c.json"
expect_error "calibrate write over scenario" "--write: $seed is the same file as the scenario file" -- calibrate "$seed" --observed "$obs" --free spp.drift_per_year=0:20 --write "$seed"
expect_error "calibrate --write with a removed key" "--write: --set screening.entry_max=none removes a key" -- calibrate "$seed" --observed "$obs" --free spp.drift_per_year=0:20 --set screening.entry_max=none --write "$work/out/c.toml"
printf '[control]\ncompleted = 39\n' >"$work/obs_one.toml"
expect_error "calibrate more keys than statistics" "only 1 of the 1 observed statistics vary" -- calibrate "$seed" --observed "$work/obs_one.toml" --free spp.drift_per_year=0:20 --free spp.mean=40:70 --reps 100
if "$bin" calibrate "$seed" --observed "$obs" --free spp.drift_per_year=0:20 --reps 200 --max-evals 20 --quiet \
     --json "$work/cal.json" --write "$work/cal.toml" --plots "$work/calpics" --report "$work/calpics/cal.html" &&
   grep -q '"change_accounts"' "$work/cal.json" && [ -s "$work/calpics/calibration_change.png" ] &&
   grep -q "Goodness of fit" "$work/calpics/cal.html" && grep -q "<svg" "$work/calpics/cal.html" &&
   "$bin" run "$work/cal.toml" --reps 64 --quiet; then ok; else bad "calibrate run, --json, --write, pictures and run on the result"; fi

# Signals: `interrupt NAME SIG WANT DIR -- ARGS...` starts trialsim ARGS (its outputs in DIR),
# sends SIG after a second and checks the exit code, that DIR stays empty (temporaries removed)
# and that the message names the signal.
interrupt() {
  local name=$1 sig=$2 want=$3 dir=$4
  shift 5
  mkdir -p "$dir"
  "$bin" "$@" >/dev/null 2>"$work/sig.err" &
  local pid=$!
  sleep 1
  kill -"$sig" "$pid"
  wait "$pid"
  local rc=$?
  local said=$([ "$sig" = INT ] && echo "Ctrl-C" || echo "SIG$sig")
  if [ "$rc" -eq "$want" ] && [ -z "$(ls -A "$dir")" ] && grep -q "$said: interrupted" "$work/sig.err"; then ok
  else bad "$name: exit $rc (want $want), files: $(ls -A "$dir"), $(cat "$work/sig.err")"; fi
}
interrupt "calibrate, Ctrl-C" INT 130 "$work/int" -- calibrate "$seed" --observed "$obs" --free spp.drift_per_year=0:20 \
  --reps 100000 --quiet --json "$work/int/c.json" --write "$work/int/c.toml"
interrupt "run, SIGTERM" TERM 143 "$work/sigTERM" -- run "$seed" --reps 5000000 --quiet --json "$work/sigTERM/x.json" --trials-csv "$work/sigTERM/x.csv"
interrupt "run, SIGHUP" HUP 129 "$work/sigHUP" -- run "$seed" --reps 5000000 --quiet --json "$work/sigHUP/x.json"
interrupt "validate, Ctrl-C" INT 130 "$work/sigval" -- validate --reps 1000000 --json "$work/sigval/v.json"

# A long run says so before it starts: its expected wall and CPU time from the cost of its first
# trials (the seed trial's seven analyses: 10^8 trials are hours on any machine).
"$bin" run "$seed" --reps 100000000 --json "$work/long.json" >/dev/null 2>"$work/long.err" &
pid=$!
sleep 1
kill -INT "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 130 ] && grep -q "^trialsim: this run will take about .* of CPU: .* per trial x 100000000 trials); Ctrl-C stops it" "$work/long.err" &&
   [ ! -e "$work/long.json" ]; then ok; else bad "long-run notice: exit $rc, $(cat "$work/long.err")"; fi
if "$bin" run "$seed" --reps 64 --json "$work/short.json" >/dev/null 2>"$work/short.err" && ! grep -q "will take about" "$work/short.err"; then ok
else bad "a short run printed a cost notice: $(cat "$work/short.err")"; fi
# A full disk after the work: exit 3, one line naming the file and the reason.
if [ -c /dev/full ]; then
  "$bin" run "$seed" --reps 64 --quiet --json /dev/full >/dev/null 2>"$work/full.err"
  rc=$?
  if [ "$rc" -eq 3 ] && [ "$(wc -l <"$work/full.err")" -eq 1 ] && grep -q "^trialsim: /dev/full: write failed: No space left on device" "$work/full.err"; then ok
  else bad "full disk: exit $rc, $(cat "$work/full.err")"; fi
fi
# A long sweep says so too, before its first point, from the points still to compute.
"$bin" sweep "$seed" --vary 'trial.consented=40,80' --reps 10000000 --out "$work/longsweep" >/dev/null 2>"$work/longsweep.err" &
pid=$!
sleep 1
kill -INT "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 130 ] && grep -q "^trialsim: this sweep will take about .* per trial x 20000000 trials); Ctrl-C stops it and keeps every point finished" "$work/longsweep.err"; then ok
else bad "long-sweep notice: exit $rc, $(cat "$work/longsweep.err")"; fi
if "$bin" sweep "$seed" --vary 'trial.consented=40,80' --reps 64 --out "$work/shortsweep" >/dev/null 2>"$work/shortsweep.err" &&
   ! grep -q "will take about" "$work/shortsweep.err"; then ok
else bad "a short sweep printed a cost notice: $(cat "$work/shortsweep.err")"; fi

# Shards and merge: byte-identical to one process, for K that divides the chunks or not, and K
# larger than the chunks (empty shards).
mkdir -p "$work/sh"
small=(--set trial.consented=20 --reps 2500 --seed 12)
"$bin" run "$seed" "${small[@]}" --quiet --json "$work/sh/one.json" --trials-csv "$work/sh/one.csv" --summary-csv "$work/sh/one.sum.csv"
# The summary as a tidy table: sweep.csv's columns, a row per design figure and per analysis x
# measure (tests/unit/test_sweep.cpp checks the numbers against the JSON).
if [ "$(head -1 "$work/sh/one.sum.csv")" = "method,metric,estimate,mcse" ] &&
   grep -q '^design,replicates,2500,$' "$work/sh/one.sum.csv" &&
   [ "$(grep -c '^ancova,' "$work/sh/one.sum.csv")" -eq 9 ] &&
   grep -Eq '^mmrm,power,0\.[0-9]+,0\.[0-9]+$' "$work/sh/one.sum.csv"; then ok; else bad "run --summary-csv: $(head -3 "$work/sh/one.sum.csv")"; fi
expect_error "summary csv with a shard" "--summary-csv: not with --shard; merge writes it" -- run "$seed" "${small[@]}" --shard 0/2 --json "$work/sh/x.json" --summary-csv "$work/sh/x.csv"
expect_error "summary csv and json one file" "--summary-csv: $work/sh/same is the same file as --json" -- run "$seed" --reps 10 --json "$work/sh/same" --summary-csv "$work/sh/same"
for k in 2 5; do
  ok_k=1
  for ((i = 0; i < k; i++)); do
    "$bin" run "$seed" "${small[@]}" --quiet --shard "$i/$k" --json "$work/sh/s$k.$i.json" --trials-csv "$work/sh/s$k.$i.csv" || ok_k=0
  done
  # Shards in any order.
  if [ "$ok_k" -eq 1 ] && "$bin" merge $(ls "$work"/sh/s$k.*.json | sort -r) --quiet --json "$work/sh/m$k.json" --trials-csv "$work/sh/m$k.csv" --summary-csv "$work/sh/m$k.sum.csv" &&
     cmp -s "$work/sh/one.json" "$work/sh/m$k.json" && cmp -s "$work/sh/one.csv" "$work/sh/m$k.csv" &&
     cmp -s "$work/sh/one.sum.csv" "$work/sh/m$k.sum.csv"; then ok; else bad "merge of $k shards differs from one process"; fi
done
# Sweep shards: whole points (K=2) or parts of points (K=5 over 2 points), then the same sweep
# without --shard writes the tables, byte-identical to one process.
swv=(--vary trial.consented=20,30 --reps 2500 --seed 4 --quiet)
"$bin" sweep "$seed" "${swv[@]}" --out "$work/swa"
for k in 2 5; do
  for ((i = 0; i < k; i++)); do "$bin" sweep "$seed" "${swv[@]}" --out "$work/sw$k" --shard "$i/$k" >/dev/null; done
  if [ ! -e "$work/sw$k/sweep.csv" ] && "$bin" sweep "$seed" "${swv[@]}" --out "$work/sw$k" &&
     cmp -s "$work/swa/sweep.csv" "$work/sw$k/sweep.csv" && cmp -s "$work/swa/sweep.json" "$work/sw$k/sweep.json"; then ok; else bad "sweep in $k shards differs from one process"; fi
done
# Two processes sweeping into one directory at the same time: one file per point, each written
# whole under its final name, so the tables equal one uninterrupted run's, with no leftovers.
"$bin" sweep "$seed" "${swv[@]}" --threads 1 --out "$work/swc" &
pid=$!
"$bin" sweep "$seed" "${swv[@]}" --threads 1 --out "$work/swc"
rc=$?
wait "$pid"
rc2=$?
if [ "$rc" -eq 0 ] && [ "$rc2" -eq 0 ] && [ "$(ls "$work/swc/points" | wc -l)" -eq 2 ] && [ -z "$(find "$work/swc" -name '*.tmp-*')" ] &&
   cmp -s "$work/swa/sweep.csv" "$work/swc/sweep.csv" && cmp -s "$work/swa/sweep.json" "$work/swc/sweep.json"; then ok
else bad "two concurrent sweeps into one directory: exits $rc $rc2, $(ls "$work/swc/points" | wc -l) point files"; fi
expect_error "sweep shards of points with precision" "each grid point runs whole in one shard, so use at most 2 shards" -- sweep "$seed" --vary trial.consented=20,30 --mcse-target 0.05 --out "$work/out/sw" --shard 0/3
expect_error "merge missing shard" "merge: shard 1 of 2 missing" -- merge "$work/sh/s2.0.json" --json "$work/out/m.json"
"$bin" run "$seed" --set trial.consented=20 --reps 2500 --seed 13 --quiet --shard 1/2 --json "$work/sh/other.json"
expect_error "merge shards of two runs" "is not a shard of the same run as" -- merge "$work/sh/s2.0.json" "$work/sh/other.json" --json "$work/out/m.json"
cp "$work/sh/s2.0.json" "$work/sh/copy.json"
expect_error "merge duplicate shard" "are both shard 0/2" -- merge "$work/sh/s2.0.json" "$work/sh/copy.json" --json "$work/out/m.json"
expect_error "merge not a shard" "not a trialsim shard file" -- merge "$work/sh/one.json" --json "$work/out/m.json"
expect_error "merge over a shard's rows" "is the same file as the trial rows of" -- merge "$work/sh/s2.0.json" "$work/sh/s2.1.json" --trials-csv "$work/sh/s2.0.csv"
expect_error "shard without --json" "--shard: needs --json FILE" -- run "$seed" --reps 100 --shard 0/2
expect_error "shard out of range" "--shard 2/2: I must be below K" -- run "$seed" --reps 100 --shard 2/2 --json "$work/out/s.json"

# MPI (when this binary was built with -DTRIALSIM_MPI=ON): byte-identical to one process for
# 2 and 3 ranks (3 ranks over 3 chunks), for run and sweep; failures end every rank with one line.
if command -v mpirun >/dev/null && ldd "$bin" | grep -q libmpi; then
  mpi=(mpirun --allow-run-as-root --oversubscribe -q)
  for np in 2 3; do
    if "${mpi[@]}" -np "$np" "$bin" run "$seed" "${small[@]}" --threads 1 --quiet --json "$work/sh/mpi$np.json" --trials-csv "$work/sh/mpi$np.csv" &&
       cmp -s "$work/sh/one.json" "$work/sh/mpi$np.json" && cmp -s "$work/sh/one.csv" "$work/sh/mpi$np.csv"; then ok; else bad "mpirun -np $np run differs from one process"; fi
  done
  "$bin" sweep "$seed" --vary trial.consented=20,30 --reps 1500 --seed 4 --out "$work/swm1" --quiet
  if "${mpi[@]}" -np 2 "$bin" sweep "$seed" --vary trial.consented=20,30 --reps 1500 --seed 4 --out "$work/swm2" --quiet --threads 1 &&
     cmp -s "$work/swm1/sweep.csv" "$work/swm2/sweep.csv" && cmp -s "$work/swm1/sweep.json" "$work/swm2/sweep.json"; then ok; else bad "mpirun -np 2 sweep differs from one process"; fi
  rm -rf "$work/out" && mkdir -p "$work/out"
  "${mpi[@]}" -np 2 "$bin" run "$seed" --reps 500 --threads 1 --json "$work/neg.toml/x.json" >"$work/stdout" 2>"$work/stderr"
  rc=$?
  if [ "$rc" -eq 2 ] && [ "$(wc -l <"$work/stderr")" -eq 1 ] && grep -q "cannot" "$work/stderr"; then ok; else bad "mpirun bad output path: exit $rc, $(cat "$work/stderr")"; fi
  # A rank that cannot read its input (here: another command line for ranks 1-2).
  "${mpi[@]}" -np 1 "$bin" run "$seed" --reps 5000 --threads 1 --quiet --json "$work/out/x.json" : -np 2 "$bin" run "$work/missing.toml" --reps 5000 --threads 1 --quiet >"$work/stdout" 2>"$work/stderr"
  rc=$?
  if [ "$rc" -eq 2 ] && [ "$(wc -l <"$work/stderr")" -eq 1 ] && grep -Eq "rank [12] stopped with exit code 2" "$work/stderr" && [ -z "$(ls -A "$work/out")" ]; then ok; else bad "mpirun failing rank: exit $rc, $(cat "$work/stderr"), files: $(ls -A "$work/out")"; fi
  # Ranks at different steps (here: another seed) are caught, not folded together.
  "${mpi[@]}" -np 1 "$bin" run "$seed" --reps 3000 --seed 1 --threads 1 --quiet : -np 1 "$bin" run "$seed" --reps 3000 --seed 2 --threads 1 --quiet >"$work/stdout" 2>"$work/stderr"
  rc=$?
  if [ "$rc" -eq 1 ] && [ "$(wc -l <"$work/stderr")" -eq 1 ] && grep -q "is at another step of the command" "$work/stderr"; then ok; else bad "mpirun ranks out of step: exit $rc, $(cat "$work/stderr")"; fi
  printf '#!/bin/sh\nexec mpirun --allow-run-as-root --oversubscribe -q -np 2 "%s" "$@"\n' "$bin" >"$work/mpibin"
  chmod +x "$work/mpibin"
  plain=$bin
  bin=$work/mpibin
  expect_error "shard under mpirun" "--shard: not under mpirun" -- run "$seed" --reps 100 --shard 0/2 --json "$work/out/s.json"
  bin=$plain
else
  echo "(MPI cases skipped: $bin was built without MPI or mpirun is missing)"
fi

finish
