#!/usr/bin/python3
"""Vectorized numpy/scipy simulation of the "simple" benchmark trial (bench/scenarios/simple.toml).

A benchmark peer for trialsim: the same design, written as a competent numpy program would be
(float64, every random number drawn in bulk from one PCG64 Generator, all arithmetic vectorized
over trials x patients, one Python iteration per block of trials), so that trialsim's CPU time per
trial can be compared with it.

The trial, per simulated replicate:
  106 consented; true SPP T(t) = L + (-1.2/12) t + effect(t), L ~ N(60, 13^2), no covariate
  effects, no individual slope. One reading per visit: Y(t) = T(t) + e, e ~ N(0, 10^2), no
  biological fluctuation. A patient is lost before baseline with probability 0.08; the others
  are randomized if their month-0 reading (also the baseline) is < 80. Permuted blocks of 4,
  1:1, one block sequence per diabetes stratum (prevalence 0.62), in consent order. Dropout
  hazard 0.15/year x exp(0.3 (60 - T(t))/10), plus 0.05/year in the treatment arm; completers
  are those still in at month 12. effect(t) = 5 t/12 in the treatment arm (5 mmHg at month 12).
  Analyses on completers: pooled-variance Student t on month 12; Student t on month 12 minus
  baseline; ANCOVA month 12 ~ arm + baseline + diabetes stratum (least squares, t-based CI and p).

Where this differs from trialsim by design (none of it changes the expected results):
  - Random numbers: PCG64 draws in bulk, not trialsim's counter-based stream per patient and model part, so the
    two agree in distribution, not trial by trial. Results here also depend on --block, which
    fixes the order in which the bulk draws are consumed.
  - Only what the three analyses need is simulated: no month-6 reading (it enters no analysis
    and, since the hazard follows true SPP, not dropout either), no dropout time (only whether
    the patient completes month 12), no other covariates, serum Mg or dose titration.
  - Dropout: P(complete) = exp(-H) with H the exact integral of the hazard over 12 months
    (closed form, as log-hazard is linear in t); trialsim sums the hazard at monthly midpoints.
    The relative difference in H is below 1e-5.
  - One uniform draw gives both pre-baseline loss (u < 0.08) and diabetes
    (u < 0.08 + 0.92 x 0.62): among patients not lost, u is uniform on [0.08, 1), so diabetes is
    Bernoulli(0.62) and independent of everything else. Diabetes of lost patients is never used.
  - A 2+2 block in random order is drawn as one of its 6 distinct arrangements, uniformly: the
    same distribution as trialsim's Fisher-Yates shuffle.
  - ANCOVA is solved from per-trial sums of squares and cross products (intercept partialled
    out, closed-form 3x3 inverse), not by QR; in float64 with these well-conditioned designs the
    two agree to ~1e-12. It includes the stratum term as trialsim does, and drops it (df n - 3)
    in a trial where every completer is in one stratum.

Usage:  /usr/bin/python3 bench/peers/simple_numpy.py --trials 20000 --seed 1 --json out.json
CPU time per trial is time.process_time() around the simulation and analyses only (imports and
start-up excluded). One thread: the BLAS/OpenMP thread counts are pinned to 1 before numpy loads.
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy import special  # noqa: E402

# The design (bench/scenarios/simple.toml).
CONSENTED = 106
SPP_MEAN, SPP_SD = 60.0, 13.0
NOISE_SD = 10.0
DRIFT_PER_MONTH = -1.2 / 12.0
EFFECT = 5.0  # mmHg at month 12, linear from month 0
LAST_MONTH = 12.0
ENTRY_MAX = 80.0
LOSS = 0.08
DIABETES = 0.62
BLOCK = 4
HAZARD_PER_MONTH = 0.15 / 12.0  # SPP-dependent dropout at true SPP = REFERENCE_SPP
LOG_HR_PER_MMHG = 0.3 / 10.0  # hazard x exp(0.3) per 10 mmHg below the reference
REFERENCE_SPP = 60.0
TREATED_HAZARD_PER_MONTH = 0.05 / 12.0
ALPHA = 0.05
SHIFT = 60.0  # subtracted from readings before sums of squares (numerical hygiene only)
METHODS = ("completers_ttest", "change_ttest", "ancova")

# The 6 arrangements of a block of 2 treatment (1) and 2 control (0), as 4-bit codes; a byte
# holds two consecutive blocks, so BLOCK_PAIRS lists the 36 bytes and one uniform draw from it
# gives two independent blocks, unpacked to arms (MSB first) by np.unpackbits.
_ARRANGEMENTS = (0b1100, 0b1010, 0b1001, 0b0110, 0b0101, 0b0011)
BLOCK_PAIRS = np.array([(hi << 4) | lo for hi in _ARRANGEMENTS for lo in _ARRANGEMENTS], dtype=np.uint8)
BLOCKS_PER_STRATUM = 2 * -(-CONSENTED // (2 * BLOCK))  # even, so that a stratum's blocks fill whole bytes
SLOTS = BLOCKS_PER_STRATUM * BLOCK  # allocation slots per stratum (>= CONSENTED)
_OFFSETS = {}


def _row_offsets(b):
    """Index of the slot before each trial's first (1-based ranks), into the flattened sequences."""
    if b not in _OFFSETS:
        _OFFSETS[b] = (np.arange(b, dtype=np.int32) * (2 * SLOTS) - 1)[:, None]
    return _OFFSETS[b]


def hazard_integral(slope_per_month):
    """Integral over months 0..12 of exp(-LOG_HR_PER_MMHG * slope * t): the time part of the hazard."""
    k = -LOG_HR_PER_MMHG * slope_per_month
    return LAST_MONTH if k == 0.0 else math.expm1(k * LAST_MONTH) / k


# Cumulative SPP-dependent hazard to month 12 = HAZARD_PER_MONTH exp(k (ref - L)) x INTEGRAL[arm].
INTEGRAL_CONTROL = hazard_integral(DRIFT_PER_MONTH)
INTEGRAL_TREATED = hazard_integral(DRIFT_PER_MONTH + EFFECT / LAST_MONTH)


def t_results(est, se, df, ok):
    """CI bounds and two-sided p from a t distribution; quantiles computed once per distinct df."""
    df_safe = np.where(ok, df, 1.0)
    udf, inv = np.unique(df_safe, return_inverse=True)
    q = special.stdtrit(udf, 1.0 - ALPHA / 2.0)[inv]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = est / se
    p = np.minimum(1.0, 2.0 * special.stdtr(df_safe, -np.abs(t)))
    return est - q * se, est + q * se, p


def two_sample(n1, n0, s1, s0, ss):
    """Pooled-variance Student t from counts, per-arm sums and the pooled within-arm sum of squares."""
    df = n1 + n0 - 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        est = s1 / n1 - s0 / n0
        se = np.sqrt(ss / df * (1.0 / n1 + 1.0 / n0))
    ok = (n1 >= 1) & (n0 >= 1) & (df >= 1) & (se > 0) & np.isfinite(se)
    return est, se, df, ok


def simulate_block(rng, b):
    """b trials: per-trial (estimate, se, df, ok) for each method, and per-trial counts."""
    n = CONSENTED
    z = rng.standard_normal((3, b, n))
    u = rng.random((b, n))
    e = rng.standard_exponential((b, n))
    codes = rng.integers(0, len(BLOCK_PAIRS), size=(b, BLOCKS_PER_STRATUM), dtype=np.uint8)

    level = z[0]  # true SPP at month 0 (in place: every array below reuses a buffer where it can)
    level *= SPP_SD
    level += SPP_MEAN
    x = z[1]  # entry reading = baseline
    x *= NOISE_SD
    x += level
    randomized = x < ENTRY_MAX
    randomized &= u >= LOSS
    diabetic = u < LOSS + (1.0 - LOSS) * DIABETES

    # Stratified permuted blocks: the j-th randomized patient of stratum s (in consent order)
    # takes slot j of that stratum's block sequence (bits of the block codes, stratum 0 in the
    # first SLOTS bits). Non-randomized patients get a slot too; it is never used.
    in_d = randomized & diabetic
    rank_d = np.cumsum(in_d, axis=1, dtype=np.int32)
    rank = np.cumsum(randomized, axis=1, dtype=np.int32)
    rank -= rank_d  # rank within the non-diabetic stratum
    dia = diabetic.view(np.int8)
    rank_d -= rank
    rank_d += SLOTS
    rank_d *= dia
    rank += rank_d  # = rank_d + SLOTS for diabetics, rank_n otherwise (1-based)
    rank += _row_offsets(b)
    sequence = np.unpackbits(BLOCK_PAIRS[codes], axis=1)  # (b, 2 SLOTS) arms, 1 = treatment
    treated = np.take(sequence.ravel(), rank)  # uint8, 1 = treatment
    ta = treated.astype(np.float64)

    # Completes month 12 iff Exp(1) > cumulative hazard (exact integral, see the module notes).
    h = level * -LOG_HR_PER_MMHG
    h += LOG_HR_PER_MMHG * REFERENCE_SPP
    np.exp(h, out=h)
    h *= HAZARD_PER_MONTH * INTEGRAL_CONTROL + HAZARD_PER_MONTH * (INTEGRAL_TREATED - INTEGRAL_CONTROL) * ta
    h += TREATED_HAZARD_PER_MONTH * LAST_MONTH * ta
    completer = e > h
    completer &= randomized
    w = completer.astype(np.float64)

    # Month-12 reading and baseline, shifted by SHIFT, zero outside completers; then the sums
    # of squares and cross products over completers that all three analyses need.
    y = z[2]
    y *= NOISE_SD
    y += level
    y += DRIFT_PER_MONTH * LAST_MONTH - SHIFT
    y += EFFECT * ta
    x -= SHIFT
    x *= w
    y *= w
    ds = diabetic.astype(np.float64)
    wa = w * ta
    dot = lambda p, q: np.einsum("tn,tn->t", p, q)  # noqa: E731
    nn = w.sum(1)
    n1 = wa.sum(1)
    ns = dot(w, ds)
    n1s = dot(wa, ds)
    sx, sy = x.sum(1), y.sum(1)
    s1x, s1y = dot(ta, x), dot(ta, y)
    ssx, ssy = dot(ds, x), dot(ds, y)
    sxx, sxy, syy = dot(x, x), dot(x, y), dot(y, y)
    n0 = nn - n1

    with np.errstate(divide="ignore", invalid="ignore"):
        # Completers t test on month 12.
        ss_y = syy - s1y * s1y / n1 - (sy - s1y) ** 2 / n0
        ttest = two_sample(n1, n0, s1y, sy - s1y, ss_y)
        # Change-score t test: d = y - x.
        s1d, sd = s1y - s1x, sy - sx
        sdd = syy - 2.0 * sxy + sxx
        ss_d = sdd - s1d * s1d / n1 - (sd - s1d) ** 2 / n0
        change = two_sample(n1, n0, s1d, sd - s1d, ss_d)
        # ANCOVA y ~ 1 + arm + baseline + stratum: centred cross products (intercept partialled
        # out), then the 3x3 system by cofactors. M[arm, arm] etc.
        inv_n = 1.0 / nn
        maa = n1 - n1 * n1 * inv_n
        mab = s1x - n1 * sx * inv_n
        mas = n1s - n1 * ns * inv_n
        mbb = sxx - sx * sx * inv_n
        mbs = ssx - sx * ns * inv_n
        mss = ns - ns * ns * inv_n
        may = s1y - n1 * sy * inv_n
        mby = sxy - sx * sy * inv_n
        msy = ssy - ns * sy * inv_n
        myy = syy - sy * sy * inv_n
        c00 = mbb * mss - mbs * mbs
        c01 = mas * mbs - mab * mss
        c02 = mab * mbs - mbb * mas
        c11 = maa * mss - mas * mas
        c12 = mab * mas - maa * mbs
        c22 = maa * mbb - mab * mab
        det = maa * c00 + mab * c01 + mas * c02
        beta_a = (c00 * may + c01 * mby + c02 * msy) / det
        beta_b = (c01 * may + c11 * mby + c12 * msy) / det
        beta_s = (c02 * may + c12 * mby + c22 * msy) / det
        rss = myy - beta_a * may - beta_b * mby - beta_s * msy
        inv_aa = c00 / det
        df_a = nn - 4.0
        one_stratum = (ns == 0) | (ns == nn)
        if one_stratum.any():  # arm + baseline only (2x2), as trialsim drops a constant stratum
            det2 = c22
            b2a = (mbb * may - mab * mby) / det2
            b2b = (maa * mby - mab * may) / det2
            beta_a = np.where(one_stratum, b2a, beta_a)
            rss = np.where(one_stratum, myy - b2a * may - b2b * mby, rss)
            inv_aa = np.where(one_stratum, mbb / det2, inv_aa)
            df_a = np.where(one_stratum, nn - 3.0, df_a)
        se_a = np.sqrt(rss / df_a * inv_aa)
    ok_a = (n1 >= 1) & (n0 >= 1) & (df_a >= 1) & (se_a > 0) & np.isfinite(se_a)
    ancova = (beta_a, se_a, df_a, ok_a)

    counts = {
        "lost_pre_baseline": np.count_nonzero(u < LOSS, axis=1),
        "randomized": np.count_nonzero(randomized, axis=1),
        "randomized_treatment": np.count_nonzero(randomized & treated.view(bool), axis=1),
        "completed_treatment": n1,
        "completed_control": n0,
    }
    return (ttest, change, ancova), counts


class MethodSums:
    """Running sums over trials for one method (performance measures as in trialsim's summary)."""

    def __init__(self):
        self.trials = self.estimable = 0
        self.reject = self.err = self.err2 = self.se2 = self.se4 = self.cover = 0.0

    def add(self, est, se, df, ok):
        lo, hi, p = t_results(est, se, df, ok)
        est, se, lo, hi, p = est[ok], se[ok], lo[ok], hi[ok], p[ok]
        err = est - EFFECT
        self.trials += ok.size
        self.estimable += int(ok.sum())
        self.reject += float((p < ALPHA).sum())
        self.err += float(err.sum())
        self.err2 += float((err * err).sum())
        s2 = se * se
        self.se2 += float(s2.sum())
        self.se4 += float((s2 * s2).sum())
        self.cover += float(((lo <= EFFECT) & (EFFECT <= hi)).sum())

    def summary(self):
        n_all, n = self.trials, self.estimable
        power = self.reject / n_all
        bias = self.err / n
        var = (self.err2 - n * bias * bias) / (n - 1)
        emp_se = math.sqrt(var)
        se2_mean = self.se2 / n
        se2_var = (self.se4 - n * se2_mean * se2_mean) / (n - 1)
        model_se = math.sqrt(se2_mean)
        coverage = self.cover / n
        rmse = math.sqrt(self.err2 / n)
        est = lambda v, m: {"estimate": v, "mcse": m}  # noqa: E731
        return {
            "estimable": n,
            "power": est(power, math.sqrt(power * (1 - power) / n_all)),
            "mean_estimate": est(EFFECT + bias, emp_se / math.sqrt(n)),
            "bias": est(bias, emp_se / math.sqrt(n)),
            "emp_se": est(emp_se, emp_se / math.sqrt(2.0 * (n - 1))),
            "model_se": est(model_se, math.sqrt(se2_var / (4.0 * n * se2_mean))),
            "rmse": est(rmse, None),
            "coverage": est(coverage, math.sqrt(coverage * (1 - coverage) / n)),
        }


def run(trials, seed, block):
    rng = np.random.default_rng(seed)  # PCG64
    sums = [MethodSums() for _ in METHODS]
    count_sums = {}
    t0 = time.process_time()
    done = 0
    while done < trials:
        b = min(block, trials - done)
        results, counts = simulate_block(rng, b)
        for acc, r in zip(sums, results):
            acc.add(*r)
        for k, v in counts.items():
            count_sums[k] = count_sums.get(k, 0.0) + float(v.sum())
        done += b
    cpu = time.process_time() - t0
    return {
        "peer": "simple_numpy",
        "trials": trials,
        "seed": seed,
        "block": block,
        "true_effect": EFFECT,
        "alpha": ALPHA,
        "cpu_seconds": cpu,
        "us_per_trial": 1e6 * cpu / trials,
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__},
        "funnel": {k: v / trials for k, v in count_sums.items()},
        "analyses": {m: acc.summary() for m, acc in zip(METHODS, sums)},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=10000, help="number of simulated trials (default 10000)")
    ap.add_argument("--seed", type=int, default=20190401, help="seed of the PCG64 generator")
    ap.add_argument("--block", type=int, default=1024, help="trials simulated together (peak memory ~ 10 kB x block)")
    ap.add_argument("--json", help="write the CPU time per trial and the summary as JSON")
    ap.add_argument("--quiet", action="store_true", help="no table on stdout")
    a = ap.parse_args(argv)
    if a.trials < 2 or a.block < 1:
        ap.error("--trials must be >= 2 and --block >= 1")
    out = run(a.trials, a.seed, a.block)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    if not a.quiet:
        print(f"simple_numpy  trials {a.trials}  seed {a.seed}  block {a.block}  "
              f"CPU {out['cpu_seconds']:.3f} s  {out['us_per_trial']:.2f} us/trial")
        fun = out["funnel"]
        print(f"randomized {fun['randomized']:.2f}  completers treatment {fun['completed_treatment']:.2f}  "
              f"control {fun['completed_control']:.2f}")
        print(f"{'method':<18}{'power':>16}{'mean estimate':>18}{'emp SE':>10}{'model SE':>10}{'coverage':>10}")
        for m, s in out["analyses"].items():
            print(f"{m:<18}{s['power']['estimate']:>8.4f} ({s['power']['mcse']:.4f})"
                  f"{s['mean_estimate']['estimate']:>10.3f} ({s['mean_estimate']['mcse']:.3f})"
                  f"{s['emp_se']['estimate']:>10.3f}{s['model_se']['estimate']:>10.3f}{s['coverage']['estimate']:>10.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
