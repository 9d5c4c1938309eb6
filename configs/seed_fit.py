#!/usr/bin/python3
"""Where each figure of the seed trial's report falls among simulated trials.

Usage: configs/seed_fit.py TRIALS.csv
where TRIALS.csv comes from
  trialsim run configs/seed_trial.toml --reps 10000 --trials-csv TRIALS.csv
Prints, for each figure, the report's value, the simulated mean, and the share of simulated
trials at or below the report's value (a mid-rank percentile: ties count half), so 50% means the
report sits in the middle and 2% or 98% in a tail. Needs only the Python standard library.
"""
import csv
import statistics
import sys

# (label, report value, function of a row giving the simulated per-trial figure)
def col(name):
    return lambda r: float(r[name]) if r[name] not in ("", "NA") else None

def withdrawn_by_month6(arm):
    names = [f"withdrawn_{reason}_before_m6_{arm}" for reason in ("death", "transfer", "adverse_event")]
    return lambda r: sum(float(r[n]) for n in names)


FIGURES = [
    ("randomized", 86, col("randomized")),
    ("excluded: SPP >= 80", 9, col("excluded_entry_above_max")),
    ("completers MgO", 32, col("completed_treatment")),
    ("completers control", 39, col("completed_control")),
    ("withdrawn by month 6, MgO", 5, withdrawn_by_month6("treatment")),
    ("  of them transfers", 3, col("withdrawn_transfer_before_m6_treatment")),
    ("  of them adverse events", 1, col("withdrawn_adverse_event_before_m6_treatment")),
    ("  of them deaths", 1, col("withdrawn_death_before_m6_treatment")),
    ("withdrawn by month 6, control", 1, withdrawn_by_month6("control")),
    ("baseline SPP mean, MgO", 58, col("baseline_mean_treatment")),
    ("baseline SPP mean, control", 57, col("baseline_mean_control")),
    ("baseline SPP SD, MgO", 15, col("baseline_sd_treatment")),
    ("baseline SPP SD, control", 15, col("baseline_sd_control")),
    ("month-12 SPP mean, MgO", 66, col("final_mean_treatment")),
    ("month-12 SPP mean, control", 69, col("final_mean_control")),
    ("month-12 SPP SD, MgO", 21, col("final_sd_treatment")),
    ("month-12 SPP SD, control", 18, col("final_sd_control")),
    ("serum Mg month 6, MgO", 3.0, col("serum_mg_mean_m6_treatment")),
    ("serum Mg month 6, control", 2.5, col("serum_mg_mean_m6_control")),
    ("serum Mg SD month 6, MgO", 0.4, col("serum_mg_sd_m6_treatment")),
    ("serum Mg SD month 6, control", 0.3, col("serum_mg_sd_m6_control")),
    ("MgO patients below the Mg target, month 6", 5, col("serum_mg_below_target_m6_treatment")),
]


def main(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    print(f"{'figure':34s} {'report':>7s} {'simulated':>10s} {'percentile':>10s}")
    for label, report, get in FIGURES:
        vals = [v for v in (get(r) for r in rows) if v is not None]
        below = sum(v < report for v in vals) + 0.5 * sum(v == report for v in vals)
        pct = 100.0 * below / len(vals)
        print(f"{label:34s} {report:7g} {statistics.fmean(vals):10.2f} {pct:9.0f}%")
    print(f"({len(rows)} simulated trials)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
