#!/usr/bin/env bash
# Reports as a browser shows them: each report (run, sweep, sample size, calibration, a run of a
# non-seed trial and a group-sequential run) is loaded in headless Chromium at desktop width (1280 px) and every
# figure must be rendered: one <figure> per figure file written, each drawn (an inline SVG with
# marks in it, or a decoded PNG) at a readable size and inside the page's width.
# Usage: test_render.sh path/to/trialsim repo_root. Exits 77 (skipped) without chromium.
set -u
bin=$1
root=$2
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "chromium not found: skipped (apt-get install chromium; .ci/test installs it)"
  exit 77
fi
# shellcheck source=tests/cli/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/harness.sh"

seed="$root/configs/seed_trial.toml"
"$bin" run "$seed" --reps 300 --quiet --set 'analysis.methods=["ancova","mmrm"]' --plots "$work/run" --report "$work/run.html" ||
  bad "run report"
"$bin" run "$root/configs/blood_pressure.toml" --reps 300 --quiet --plots "$work/bp" --report "$work/bp.html" || bad "own trial's report"
"$bin" run "$root/configs/seed_interim.toml" --reps 300 --quiet --set treatment.effect_mmHg=8 --plots "$work/gs" \
  --report "$work/gs.html" || bad "group-sequential report"
[ -s "$work/gs/interim.svg" ] || bad "group-sequential run: no interim figure"
grep -q "Group-sequential design" "$work/gs.html" || bad "group-sequential report: no design section"
"$bin" sweep "$seed" --vary screening.entry_max=70,80,none --vary trial.consented=60,100 --reps 100 --quiet --out "$work/sw" \
  --plots "$work/sweep" --report "$work/sweep.html" || bad "sweep report"
"$bin" samplesize "$seed" --method ancova --set treatment.effect_mmHg=12 --reps 300 --quiet --plots "$work/ss" \
  --report "$work/ss.html" >/dev/null || bad "samplesize report"
"$bin" calibrate "$seed" --observed "$root/configs/seed_observed.toml" --free spp.drift_per_year=0:20 --reps 200 --max-evals 20 \
  --quiet --plots "$work/cal" --report "$work/cal.html" >/dev/null || bad "calibrate report"

# The check runs in the page once it has loaded, and leaves its verdict in an attribute of
# <body> that --dump-dom prints.
cat >"$work/check.js" <<'JS'
<script>
window.addEventListener("load", () => {
  const width = document.documentElement.clientWidth, out = [];
  const figures = [...document.querySelectorAll("figure")];
  figures.forEach((f, i) => {
    const img = f.querySelector("img"), svg = f.querySelector("svg");
    const box = (img || svg || f).getBoundingClientRect();
    let drawn = false;
    if (img) drawn = img.complete && img.naturalWidth > 0;
    if (svg) drawn = svg.querySelectorAll("path, polyline, polygon, rect, line, text").length > 10;
    if (!drawn) out.push("figure " + (i + 1) + " not drawn");
    if (box.width < 400 || box.height < 200) out.push("figure " + (i + 1) + " is " + Math.round(box.width) + "x" + Math.round(box.height));
    if (box.right > width + 1) out.push("figure " + (i + 1) + " overflows the page");
  });
  document.body.setAttribute("data-check", "figures=" + figures.length + (out.length ? " " + out.join("; ") : " ok"));
});
</script>
JS

for page in run bp gs sweep ss cal; do
  html="$work/$page.html"
  [ -s "$html" ] || { bad "$page: no report"; continue; }
  want=$(ls "$work/$page/"*.svg 2>/dev/null | wc -l)
  probe="$work/${page}_probe.html"
  awk -v js="$work/check.js" '/<\/body>/ { while ((getline line < js) > 0) print line; close(js) } { print }' "$html" >"$probe"
  verdict=$(timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --window-size=1280,1000 \
              --virtual-time-budget=10000 --dump-dom "file://$probe" 2>/dev/null |
            grep -o 'data-check="[^"]*"' | head -1)
  if [ "$verdict" = "data-check=\"figures=$want ok\"" ] && [ "$want" -gt 0 ]; then ok
  else bad "$page: $want figure files, browser says ${verdict:-nothing (page did not load)}"; fi
done

finish
