#!/usr/bin/python3
"""Writes analysis_reference.hpp: datasets and expected results for tests/unit/test_analysis.cpp.

Reference results come from statsmodels' CompareMeans (two-sample t tests, checked against
scipy.stats.ttest_ind with equal_var True and False) and statsmodels OLS (ANCOVA, checked
against numpy.linalg.lstsq). P-values are checked against a 40-digit mpmath evaluation of the
t distribution. Confidence limits use t quantiles computed with mpmath: the quantile scipy
1.10 uses (special.stdtrit) is only good to about 1e-9 relative (2.5e-9 at 43 df), too coarse
for the tests' tolerance; the library limits are checked against them loosely.

Run with Debian's interpreter, which has numpy, scipy, statsmodels and mpmath
(apt-get install python3-numpy python3-scipy python3-statsmodels python3-mpmath):
    /usr/bin/python3 tests/reference/make_analysis_reference.py
"""

import os
import sys

import mpmath as mp
import numpy as np
import scipy
import scipy.stats
import statsmodels
import statsmodels.api as sm
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "analysis_reference.hpp")
ALPHAS = (0.05, 0.10)


def fmt(x):
    s = f"{float(x):.17g}"
    return s if any(c in s for c in ".en") else s + ".0"


def check_close(a, b, what, rtol=1e-12, atol=0.0):
    if not np.isclose(a, b, rtol=rtol, atol=atol):
        sys.exit(f"reference libraries disagree on {what}: {a!r} vs {b!r}")


mp.mp.dps = 40


def t_sf(t, df):
    t, df = mp.mpf(t), mp.mpf(df)
    return mp.betainc(df / 2, mp.mpf(1) / 2, 0, df / (df + t * t), regularized=True) / 2


def t_quantile(upper_tail, df):
    """The t value with upper-tail probability upper_tail, to about 30 digits."""
    guess = mp.mpf(scipy.stats.t.isf(upper_tail, df))
    q = mp.findroot(lambda t: t_sf(t, df) - mp.mpf(upper_tail), guess)
    if abs(t_sf(q, df) / mp.mpf(upper_tail) - 1) > mp.mpf("1e-30"):
        sys.exit(f"t quantile did not converge for df {df}")
    return q


def add_intervals(r, library_interval):
    """Adds 95% and 90% confidence limits to r; library_interval(alpha) gives a library's limits."""
    check_close(float(2 * t_sf(abs(r["estimate"] / r["se"]), r["df"])), r["p"], "p-value (mpmath)")
    for alpha in ALPHAS:
        q = t_quantile(alpha / 2, r["df"])
        low = mp.mpf(r["estimate"]) - q * mp.mpf(r["se"])
        high = mp.mpf(r["estimate"]) + q * mp.mpf(r["se"])
        lib_low, lib_high = library_interval(alpha)
        width = float(q) * r["se"]
        check_close(lib_low, float(low), f"CI low at alpha {alpha}", rtol=0.0, atol=1e-7 * width)
        check_close(lib_high, float(high), f"CI high at alpha {alpha}", rtol=0.0, atol=1e-7 * width)
        r[f"ci{round(100 * (1 - alpha))}"] = (float(low), float(high))
    return r


# ---------------------------------------------------------------- datasets

def two_sample_small():
    rng = np.random.default_rng(20240601)
    treatment = np.round(rng.normal(4.6, 0.9, 7), 2)
    control = np.round(rng.normal(5.3, 1.1, 9), 2)
    return treatment, control


def two_sample_unequal():
    rng = np.random.default_rng(20240602)
    treatment = np.round(rng.normal(-0.8, 0.6, 20), 3)
    control = np.round(rng.normal(-0.2, 1.9, 25), 3)
    return treatment, control


def two_sample_minimal():
    # The smallest design student_t accepts: n1 + n2 = 3, one degree of freedom.
    return np.array([1.0]), np.array([2.0, 4.0])


def ancova_stratified():
    rng = np.random.default_rng(20240603)
    n = 30
    baseline = np.round(rng.normal(5.0, 1.0, n), 2)
    treated = rng.permutation(np.r_[np.ones(15), np.zeros(15)]).astype(np.int8)
    stratum = (rng.random(n) < 0.4).astype(np.int8)
    y = 1.2 + 0.65 * baseline - 0.45 * treated + 0.35 * stratum + rng.normal(0.0, 0.5, n)
    return np.round(y, 3), baseline, treated, stratum


def ancova_constant_stratum():
    rng = np.random.default_rng(20240604)
    n = 24
    baseline = np.round(rng.normal(6.0, 1.3, n), 2)
    treated = rng.permutation(np.r_[np.ones(11), np.zeros(13)]).astype(np.int8)
    stratum = np.ones(n, dtype=np.int8)
    y = 0.8 + 0.7 * baseline - 0.6 * treated + rng.normal(0.0, 0.7, n)
    return np.round(y, 3), baseline, treated, stratum


# ---------------------------------------------------------------- references

def two_sample(treatment, control, equal_var):
    usevar = "pooled" if equal_var else "unequal"
    cm = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    t, p, df = cm.ttest_ind(usevar=usevar)
    se = cm.std_meandiff_pooledvar if equal_var else cm.std_meandiff_separatevar
    estimate = treatment.mean() - control.mean()
    check_close(estimate / se, t, "estimate / se")
    check_close(2.0 * scipy.stats.t.sf(abs(t), df), p, "p-value from the t distribution")
    if len(treatment) > 1 and len(control) > 1:
        # scipy 1.10 returns nan when an arm has a single value, so it checks only larger designs.
        tt = scipy.stats.ttest_ind(treatment, control, equal_var=equal_var)
        check_close(tt.statistic, t, "t statistic")
        check_close(tt.pvalue, p, "p-value")
    r = {"estimate": estimate, "se": se, "df": df, "p": p}
    return add_intervals(r, lambda alpha: cm.tconfint_diff(alpha=alpha, usevar=usevar))


def ols_ancova(y, baseline, treated, stratum):
    columns = [np.ones_like(y), treated.astype(float), baseline]
    if np.any(stratum != stratum[0]):
        columns.append(stratum.astype(float))
    X = np.column_stack(columns)
    fit = sm.OLS(y, X).fit()
    check_close(fit.params[1], np.linalg.lstsq(X, y, rcond=None)[0][1], "OLS coefficient", rtol=1e-10)
    r = {"estimate": fit.params[1], "se": fit.bse[1], "df": fit.df_resid, "p": fit.pvalues[1]}
    return add_intervals(r, lambda alpha: fit.conf_int(alpha=alpha)[1])


# ---------------------------------------------------------------- output

def array(name, values, ctype):
    if ctype == "double":
        items, per_line = [fmt(v) for v in values], 4
    else:
        items, per_line = [str(int(v)) for v in values], 10
    lines = []
    for i in range(0, len(items), per_line):
        lines.append("    " + ", ".join(items[i:i + per_line]) + ",")
    return (f"inline constexpr std::array<{ctype}, {len(items)}> {name}{{\n" + "\n".join(lines) + "\n};\n")


def expected(name, r):
    fields = [
        ("estimate", r["estimate"]), ("se", r["se"]), ("df", r["df"]), ("p", r["p"]),
        ("ci95_low", r["ci95"][0]), ("ci95_high", r["ci95"][1]),
        ("ci90_low", r["ci90"][0]), ("ci90_high", r["ci90"][1]),
    ]
    body = "\n".join(f"    .{k} = {fmt(v)}," for k, v in fields)
    return f"inline constexpr Expected {name}{{\n{body}\n}};\n"


def main():
    out = []
    out.append(
        "// Generated by tests/reference/make_analysis_reference.py; do not edit by hand.\n"
        "// Regenerate from the repository root with:\n"
        "//   /usr/bin/python3 tests/reference/make_analysis_reference.py\n"
        f"// Reference libraries: numpy {np.__version__}, scipy {scipy.__version__}, "
        f"statsmodels {statsmodels.__version__}, mpmath {mp.__version__}.\n"
        "#pragma once\n\n#include <array>\n#include <cstdint>\n\n"
        "namespace trialsim::reference {\n\n"
        "// Expected effect estimate (treatment minus control) with 95% and 90% confidence intervals.\n"
        "struct Expected {\n"
        "  double estimate;\n  double se;\n  double df;\n  double p;\n"
        "  double ci95_low;\n  double ci95_high;\n  double ci90_low;\n  double ci90_high;\n"
        "};\n\n"
    )

    for prefix, comment, (treatment, control) in [
        ("small", "7 treatment vs 9 control values", two_sample_small()),
        ("unequal", "20 treatment vs 25 control values with unequal variances", two_sample_unequal()),
        ("minimal", "1 treatment vs 2 control values: the smallest design the pooled t test accepts",
         two_sample_minimal()),
    ]:
        out.append(f"// {comment}.\n")
        out.append(array(f"{prefix}_treatment", treatment, "double"))
        out.append(array(f"{prefix}_control", control, "double"))
        out.append(expected(f"{prefix}_student", two_sample(treatment, control, equal_var=True)))
        if len(treatment) > 1 and len(control) > 1:
            out.append(expected(f"{prefix}_welch", two_sample(treatment, control, equal_var=False)))
        out.append("\n")

    for prefix, comment, (y, baseline, treated, stratum) in [
        ("ancova", "ANCOVA, 30 patients: y ~ 1 + treated + baseline + stratum", ancova_stratified()),
        ("ancova_flat", "ANCOVA, 24 patients in a single stratum: y ~ 1 + treated + baseline",
         ancova_constant_stratum()),
    ]:
        out.append(f"// {comment}.\n")
        out.append(array(f"{prefix}_y", y, "double"))
        out.append(array(f"{prefix}_baseline", baseline, "double"))
        out.append(array(f"{prefix}_treated", treated, "std::int8_t"))
        out.append(array(f"{prefix}_stratum", stratum, "std::int8_t"))
        out.append(expected(f"{prefix}_expected", ols_ancova(y, baseline, treated, stratum)))
        out.append("\n")

    out.append("}  // namespace trialsim::reference\n")
    with open(OUTPUT, "w") as f:
        f.write("".join(out))
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
