#include "sim/engine/trial.hpp"
#include "sim/engine/lanes.hpp"

#include "sim/engine/rng.hpp"

#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace trialsim {

namespace {

// The covariates the scenario's models read (Population draws only these for every patient).
CovariateNeeds covariate_needs(const Scenario& s) {
  const auto& f = s.randomization.factors;
  const bool minimization = s.randomization.method == RandomizationMethod::minimization;
  auto balances = [&](MinimizationFactor x) { return minimization && std::find(f.begin(), f.end(), x) != f.end(); };
  CovariateNeeds n;
  n.age = s.spp.age_shift_per_10y != 0.0 || balances(MinimizationFactor::age);
  n.male = balances(MinimizationFactor::sex);
  n.mg = true;  // serum Mg at every visit starts from it
  return n;
}

// Whether anything reads the readings of the visits between month 0 and the last: an analysis of
// every visit, dropout on observed SPP, or the patients CSV (`all_covariates`).
bool all_visits_read(const Scenario& s, bool all_covariates) {
  if (all_covariates || s.dropout.on_observed) return true;
  for (const Method m : s.analysis.methods) {
    if (m == Method::mmrm || m == Method::ipw_ancova || m == Method::mi_delta) return true;
  }
  return false;
}

// The randomized patients' columns in row order (t.patient set).
TRIALSIM_VECTOR_LOOPS void gather_rows(TrialData& t, const UnitColumns& units, UnitColumns& row_units, const double* u,
                                       double* row_u, double drift) {
  const std::size_t rows = t.rows;
  const std::uint32_t* const patient = t.patient.data();
  const std::uint64_t* const unit_key = units.key.data();
  const std::uint64_t* const unit_mask = units.mask.data();
  const double* const level = t.level.data();
  const double* const own_slope = t.slope.data();
  const double* const true_baseline = t.true_baseline.data();
  const double* const entry_spp = t.entry_spp.data();
  const std::uint8_t* const diabetes = t.diabetes.data();
  std::uint64_t* const row_key = row_units.key.data();
  std::uint64_t* const row_mask = row_units.mask.data();
  double* const path_level = t.path_level.data();
  double* const path_slope = t.path_slope.data();
  double* const row_diabetes = t.row_diabetes.data();
  double* const row_true_baseline = t.row_true_baseline.data();
  double* const row_slope = t.row_slope.data();
  double* const row_entry = t.row_entry.data();
  // Three columns per loop: with all nine at once the pointers outnumber the registers.
  TRIALSIM_COLUMNS for (std::size_t k = 0; k < rows; ++k) {
    const std::size_t i = patient[k];
    row_key[k] = unit_key[i];
    row_mask[k] = unit_mask[i];
    row_u[k] = u[i];
  }
  TRIALSIM_COLUMNS for (std::size_t k = 0; k < rows; ++k) {
    const std::size_t i = patient[k];
    path_level[k] = level[i];
    path_slope[k] = drift + own_slope[i];
    row_slope[k] = own_slope[i];
  }
  TRIALSIM_COLUMNS for (std::size_t k = 0; k < rows; ++k) {
    const std::size_t i = patient[k];
    row_diabetes[k] = static_cast<double>(diabetes[i]);  // 0 or 1; a select here would become a branch
    row_true_baseline[k] = true_baseline[i];
    row_entry[k] = entry_spp[i];
  }
}

}  // namespace

TrialSimulator::TrialSimulator(const Scenario& s, bool all_covariates)
    : scenario_(s),
      all_covariates_(all_covariates),
      population_(s.population, covariate_needs(s)),
      measurement_(s.spp, s.measurement, s.population, s.trial.months, s.screening.schedule(),
                   s.treatment.effect_onset_months, all_visits_read(s, all_covariates)),
      screening_(s.screening),
      randomizer_(s.randomization),
      treatment_(s.treatment, s.population.mg_mean, s.population.mg_sd),
      dropout_(s.dropout, s.trial.last_month(), s.treatment.effect_onset_months),
      analysis_(s.analysis),
      interim_(s.interim.enabled()
                   ? std::make_shared<const InterimDesign>(s.interim, static_cast<std::size_t>(s.trial.consented))
                   : nullptr) {}

void TrialSimulator::simulate(std::uint64_t seed, std::uint64_t r, Workspace& ws) const {
  const auto n = static_cast<std::size_t>(scenario_.trial.consented);
  const auto& months = scenario_.trial.months;
  TrialData& t = ws.trial;
  Scratch& scratch = ws.scratch;
  t.reset_consented(n, months.size());
  t.onset_months = scenario_.treatment.effect_onset_months;
  ws.units.resize(n);
  const TrialKey key(seed, r);
  draws::unit_keys(key, 0, n, ws.units.key.data(), ws.units.mask.data());

  // Population and screening: each patient from their own streams, one slot per quantity
  // (common random numbers), all patients at once.
  population_.draw(ws.units, n, t, scratch, all_covariates_);
  if (scenario_.trial.has_accrual()) {
    // Consent times: the order statistics of n uniform entry shares, from n + 1 exponential
    // spacings, share i = (E_0 + ... + E_i) / (E_0 + ... + E_n) (Devroye, Non-Uniform Random
    // Variate Generation, 1986, sec. V.2), mapped through the accrual intensity. The last
    // spacing is drawn from the unit of a patient n who is not consented.
    double* const spacing = scratch.col(0, n + 1);
    draws::exponential(ws.units, n, StreamKind::population, population_slot::accrual, spacing);
    std::uint64_t extra_key = 0, extra_mask = 0;
    draws::unit_keys(key, n, 1, &extra_key, &extra_mask);
    Stream extra(UnitKey{extra_key, extra_mask}, StreamKind::population, population_slot::accrual);
    spacing[n] = standard_exponential(extra);
    double total = 0;
    for (std::size_t i = 0; i <= n; ++i) total += spacing[i];
    double cumulative = 0;
    for (std::size_t i = 0; i < n; ++i) {
      cumulative += spacing[i];
      t.entry_month[i] = scenario_.trial.accrual_month_at(cumulative / total);
    }
  } else {
    std::fill_n(t.entry_month.data(), n, 0.0);
  }
  measurement_.draw_latent(ws.units, n, t, scratch);
  double* const u = room(ws.fluctuation, n);
  measurement_.draw_entry(ws.units, n, t, u, scratch);
  screening_.classify(ws.units, n, t, scratch);

  // The randomized, in consent order, get rows.
  t.status_count = {};
  {
    const Status* const status = t.status.data();
    std::array<int, 5> count{};
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t s = 0; s < count.size(); ++s) count[s] += status[i] == static_cast<Status>(s);
    }
    t.status_count = count;
  }
  const auto rows = static_cast<std::size_t>(t.status_count[static_cast<std::size_t>(Status::randomized)]);
  t.reset_rows(rows);
  ws.row_units.resize(rows + 1);  // one spare row: the compaction below writes one past the last
  double* const row_u = room(ws.row_fluctuation, rows + 1);
  {
    // Every patient is written at the next free row, which only the randomized keep: no branch.
    std::uint32_t* const patient = room(t.patient, rows + 1);
    const Status* const status = t.status.data();
    std::size_t next = 0;
    for (std::size_t i = 0; i < n; ++i) {
      patient[next] = static_cast<std::uint32_t>(i);
      next += status[i] == Status::randomized;
    }
    gather_rows(t, ws.units, ws.row_units, u, row_u, measurement_.drift_per_month());
    double* const row_entry = t.row_entry_month.data();
    if (scenario_.trial.has_accrual()) {
      const double* const entry = t.entry_month.data();
      for (std::size_t k = 0; k < rows; ++k) row_entry[k] = entry[patient[k]];
    } else {
      std::fill_n(row_entry, rows, 0.0);
    }
  }
  ws.row_units.resize(rows);
  measurement_.draw_visits(ws.row_units, t, row_u, scratch);

  // The trial's own streams use unit 0 with kinds of their own.
  randomizer_.assign(t, ws.units[0], scratch);

  treatment_.apply(ws.row_units, t, months, scratch);
  // Dropout on observed SPP reads the readings the visits would give.
  if (dropout_.config().on_observed) measurement_.readings(t);
  dropout_.follow(ws.row_units, t, months, scratch);
  measurement_.observe(t);
}

namespace {

// Sums over the randomized rows, split by arm, in four lanes: row r adds to lane r mod 4 of its
// arm and the lanes are added pairwise at the end. The order of the additions is fixed by the
// rows alone, so the loops run four rows at a time in vector registers and give the same bits as
// one at a time.
struct ArmTotals {
  std::array<double, 2> sum{};  // [control, treatment]
};

// The sums of Q per-row values over the rows of each arm, the values computed four rows at a
// time by `values` from P input columns (in[0] is t.treated: 1 for the treatment arm, 0 for
// control) and added without being stored: x * treated and x - x * treated are x or 0 exactly
// (x is finite). The last partial block reads its inputs into lanes padded with zeros and adds
// +0 in the lanes past the last row, which leaves those lanes' sums as they are.
template <std::size_t Q, std::size_t P, class Values>
[[gnu::always_inline]] inline std::array<ArmTotals, Q> arm_sums_fused(const std::array<const double*, P>& in,
                                                                      std::size_t m, Values values) {
  std::array<Lanes, Q> l0{}, l1{};
  auto add = [&](const std::array<Lanes, Q>& v, Lanes w) __attribute__((always_inline)) {
    for (std::size_t q = 0; q < Q; ++q) {
      const Lanes v1 = v[q] * w;
      l0[q] += v[q] - v1;
      l1[q] += v1;
    }
  };
  std::array<Lanes, P> x;
  std::size_t c = 0;
  for (; c + 4 <= m; c += 4) {
    for (std::size_t p = 0; p < P; ++p) x[p] = load_lanes(in[p] + c);
    add(values(x), x[0]);
  }
  if (c < m) {
    // Built in registers: scalar stores read back as one vector would stall (and a loop here
    // becomes a call to memcpy).
    const std::size_t left = m - c;
    for (std::size_t p = 0; p < P; ++p) {
      const double* const q = in[p] + c;
      x[p] = left == 1 ? Lanes{q[0], 0.0, 0.0, 0.0} : left == 2 ? Lanes{q[0], q[1], 0.0, 0.0} : Lanes{q[0], q[1], q[2], 0.0};
    }
    const LaneMask valid = LaneMask{0, 1, 2, 3} < static_cast<long long>(m - c);
    std::array<Lanes, Q> v = values(x);
    const Lanes zero{};
    for (std::size_t q = 0; q < Q; ++q) v[q] = valid ? v[q] : zero;
    add(v, x[0]);
  }
  std::array<ArmTotals, Q> out;
  for (std::size_t q = 0; q < Q; ++q) out[q].sum = {lane_sum(l0[q]), lane_sum(l1[q])};
  return out;
}

// Mean and SD of values shifted by `shift` (the first value, for numerical safety: Chan, Golub &
// LeVeque, Am Stat 1983) from n, the sum s and the sum of squares ss of the shifted values.
Value shifted_mean(double shift, double s, double n) { return n > 0 ? Value::of(shift + s / n) : Value{}; }
Value shifted_sd(double s, double ss, double n) {
  if (n < 2) return {};
  return Value::of(std::sqrt(std::max(0.0, (ss - s * s / n) / (n - 1))));
}

}  // namespace

TRIALSIM_VECTOR_LOOPS ReplicateResult TrialSimulator::summarize(std::uint64_t seed, std::uint64_t r,
                                                                Workspace& ws) const {
  const TrialData& t = ws.trial;
  const auto& months = scenario_.trial.months;
  const std::size_t last = t.last(), visits = t.visits;
  ReplicateResult out;
  out.replicate = r;
  out.consented = static_cast<int>(t.consented);
  const std::array<int, 5>& status = t.status_count;
  out.prior_mg = status[static_cast<std::size_t>(Status::prior_mg)];
  out.lost_pre_baseline = status[static_cast<std::size_t>(Status::lost_pre_baseline)];
  out.entry_above_max = status[static_cast<std::size_t>(Status::entry_above_max)];
  out.entry_below_min = status[static_cast<std::size_t>(Status::entry_below_min)];
  out.randomized = status[static_cast<std::size_t>(Status::randomized)];

  const std::size_t m = t.rows;
  const Arm* const arm = t.arm.data();
  const double* const y0 = t.at(t.observed, 0);
  const double* const y_last = t.at(t.observed, last);
  const double* const d_last = t.at(t.deviation, last);
  const double* const seen_last = t.seen_at(last);
  const double* const level = t.path_level.data();
  const double* const slope = t.path_slope.data();
  const double* const effect = t.effect.data();

  // Withdrawals (few): by reason, and before each visit. The rows that withdrew are listed first
  // without a branch per row (which would mispredict on every withdrawal).
  double* const withdrew = ws.scratch.col(0, m + 1);
  std::size_t n_withdrew = 0;
  for (std::size_t k = 0; k < m; ++k) {
    withdrew[n_withdrew] = static_cast<double>(k);
    n_withdrew += t.dropout_reason[k] != DropoutReason::none;
  }
  for (std::size_t j = 0; j < n_withdrew; ++j) {
    const auto k = static_cast<std::size_t>(withdrew[j]);
    ArmResult& a = out.arms[arm_index(arm[k])];
    const auto reason = static_cast<std::size_t>(t.dropout_reason[k]);
    ++a.withdrawn[0];
    ++a.withdrawn[reason];
    for (std::size_t v = 1; v < visits; ++v) {
      const int before = t.dropout_month[k] < months[v];
      a.withdrawn_before_visit[v][0] += before;
      a.withdrawn_before_visit[v][reason] += before;
    }
  }

  // The shifts: each arm's first baseline and first completer's final and baseline values.
  std::array<double, 2> shift_base{}, shift_y{}, shift_x{};
  std::array<bool, 2> have_base{}, have_c{};
  for (std::size_t k = 0; k < m && !(have_base[0] && have_base[1] && have_c[0] && have_c[1]); ++k) {
    const std::size_t a = arm_index(arm[k]);
    if (!have_base[a]) {
      have_base[a] = true;
      shift_base[a] = y0[k];
    }
    if (!have_c[a] && seen_last[k] != 0.0) {
      have_c[a] = true;
      shift_y[a] = y_last[k];
      shift_x[a] = y0[k];
    }
  }

  // The sums of both arms over the randomized patients, and the completers' sums the t tests
  // and ANCOVA work from, from columns of per-row values (0 where a completers' sum skips the
  // row). The final reading every randomized patient would give without dropout or a missed
  // visit: the deviation is drawn for every visit whether or not it is observed.
  const double* const treated = t.treated.data();
  const double frac_last = measurement_.effect_fraction(last), month_last = months[last];
  const Lanes zero{}, one = splat(1.0), frac = splat(frac_last), month = splat(month_last);
  const Lanes base_c = splat(shift_base[0]), base_t = splat(shift_base[1]);
  const Lanes y_c = splat(shift_y[0]), y_t = splat(shift_y[1]), x_c = splat(shift_x[0]), x_t = splat(shift_x[1]);
  const std::array<ArmTotals, 17> sums = arm_sums_fused<17, 11>(
      {treated, y0, y_last, d_last, seen_last, level, slope, effect, t.row_diabetes.data(), t.row_true_baseline.data(),
       t.row_slope.data()},
      m, [&](const std::array<Lanes, 11>& in) __attribute__((always_inline)) {
        const Lanes tw = in[0], y0k = in[1], yl = in[2], dl = in[3], seen = in[4], lv = in[5], sl = in[6],
                    ef = in[7], stratum = in[8], true_base = in[9], own_slope = in[10];
        const LaneMask tr = tw != zero, c = seen != zero;
        const Lanes db = y0k - (tr ? base_t : base_c);
        const Lanes strat = c ? stratum : zero;
        const LaneMask s = strat != zero;
        const Lanes dy = yl - (tr ? y_t : y_c), dx = y0k - (tr ? x_t : x_c), dd = dy - dx;
        return std::array<Lanes, 17>{db,
                                     db * db,
                                     true_base,
                                     own_slope,
                                     ef * frac,
                                     dl,
                                     ((lv + sl * month) + ef * frac) + dl,
                                     c ? one : zero,
                                     strat,
                                     c ? dy : zero,
                                     c ? dy * dy : zero,
                                     c ? dx : zero,
                                     c ? dx * dx : zero,
                                     c ? dx * dy : zero,
                                     c ? dd * dd : zero,
                                     s ? dy : zero,
                                     s ? dx : zero};
      });
  const ArmTotals &base = sums[0], &base2 = sums[1], &true_base = sums[2], &slope_sum = sums[3],
                  &effect_sum = sums[4], &dev_final = sums[5], &final_all = sums[6], &done = sums[7],
                  &strat = sums[8], &sy = sums[9], &syy = sums[10], &sx = sums[11], &sxx = sums[12],
                  &sxy = sums[13], &sdd = sums[14], &ssy = sums[15], &ssx = sums[16];

  // Serum Mg at each visit among those seen: mean, SD (shifted by each arm's first value) and
  // how many are below the target range.
  const double target_low = scenario_.treatment.target_mg_low;
  for (std::size_t v = 1; v < visits && scenario_.treatment.serum_mg; ++v) {
    const double* const seen = t.seen_at(v);
    const double* const mg = t.at(t.serum_mg, v);
    std::array<double, 2> shift{};
    std::array<bool, 2> have{};
    for (std::size_t k = 0; k < m && !(have[0] && have[1]); ++k) {
      const std::size_t a = arm_index(arm[k]);
      if (!have[a] && seen[k] != 0.0) {
        have[a] = true;
        shift[a] = mg[k];
      }
    }
    const Lanes shift_c = splat(shift[0]), shift_t = splat(shift[1]), low = splat(target_low);
    const std::array<ArmTotals, 4> ms = arm_sums_fused<4, 3>(
        {treated, seen, mg}, m, [&](const std::array<Lanes, 3>& in) __attribute__((always_inline)) {
          const LaneMask on = in[1] != zero;
          const Lanes d = on ? in[2] - (in[0] != zero ? shift_t : shift_c) : zero;
          return std::array<Lanes, 4>{in[1], d, d * d, (on & (in[2] < low)) ? one : zero};
        });
    const ArmTotals &n_seen = ms[0], &sd = ms[1], &sdd2 = ms[2], &below = ms[3];
    for (std::size_t a = 0; a < 2; ++a) {
      ArmResult& res = out.arms[a];
      const double n = n_seen.sum[a];
      res.mg_mean[v] = shifted_mean(shift[a], sd.sum[a], n);
      res.mg_sd[v] = shifted_sd(sd.sum[a], sdd2.sum[a], n);
      if (n > 0) res.mg_below_target[v] = Value::of(below.sum[a]);
    }
  }

  CompleterSums& completers = ws.completers;
  completers.clear();
  const double gap = months[last] - measurement_.baseline_time();
  const std::array<double, 2> arm_n{static_cast<double>(m) - t.treated_rows, static_cast<double>(t.treated_rows)};
  for (std::size_t a = 0; a < 2; ++a) {
    const double n = arm_n[a];
    ArmSums& c = completers.arm[a];
    c.n = static_cast<std::size_t>(done.sum[a]);
    c.n_s = static_cast<std::size_t>(strat.sum[a]);
    c.shift_y = shift_y[a];
    c.shift_x = shift_x[a];
    c.y = sy.sum[a];
    c.x = sx.sum[a];
    c.yy = syy.sum[a];
    c.xx = sxx.sum[a];
    c.xy = sxy.sum[a];
    c.dd = sdd.sum[a];
    c.sy = ssy.sum[a];
    c.sx = ssx.sum[a];
    ArmResult& res = out.arms[a];
    res.randomized = static_cast<int>(n);
    res.completed = static_cast<int>(c.n);
    res.baseline_mean = shifted_mean(shift_base[a], base.sum[a], n);
    res.baseline_sd = shifted_sd(base.sum[a], base2.sum[a], n);
    auto mean = [&](const ArmTotals& q) { return n > 0 ? Value::of(q.sum[a] / n) : Value{}; };
    res.true_baseline_mean = mean(true_base);
    if (c.n > 0) res.final_mean = Value::of(c.shift_y + c.y / static_cast<double>(c.n));
    if (c.n > 1) {
      const auto nc = static_cast<double>(c.n);
      res.final_sd = Value::of(std::sqrt(std::max(0.0, c.yy - c.y * c.y / nc) / (nc - 1)));
    }
    // All together, and only when the arm has completers, so that the summary averages every
    // component over the same trials and the identity holds for the means too. The baseline's
    // deviation from the true baseline is the observed minus the true baseline mean.
    if (c.n > 0) {
      const double base_mean = res.baseline_mean.v, dev_base = base_mean - mean(true_base).v;
      res.rtm.observed_change = Value::of(res.final_mean.v - base_mean);
      res.rtm.drift = Value::of(measurement_.drift_per_month() * gap);
      res.rtm.slope_selection = Value::of(mean(slope_sum).v * gap);
      res.rtm.treatment_effect = mean(effect_sum);
      res.rtm.regression_to_mean = Value::of(mean(dev_final).v - dev_base);
      res.rtm.attrition = Value::of(res.final_mean.v - mean(final_all).v);
      res.rtm.regression_to_mean_total = Value::of(-dev_base);
      res.rtm.regression_to_mean_carried = Value::of(-mean(dev_final).v);
    }
  }

  out.estimates = analysis_.estimate_all(t, completers, ws.analysis, seed, r);
  if (interim_) interim_looks(seed, r, ws, out);
  return out;
}

namespace {

using DoublePolicy = boost::math::policies::policy<boost::math::policies::promote_float<false>,
                                                   boost::math::policies::promote_double<false>,
                                                   boost::math::policies::overflow_error<boost::math::policies::ignore_error>>;

// A test's z: (estimate - margin) / SE, carried to the normal scale through its t distribution
// where it has finite df, so that each look's marginal level is the nominal one, as the
// significance-level approach to group-sequential t tests does (Jennison & Turnbull, Group
// Sequential Methods with Applications to Clinical Trials, 2000, sec. 3.8 and ch. 11).
double z_of(const Estimate& e, double margin) {
  if (!e.estimable() || !(e.se > 0)) return std::numeric_limits<double>::quiet_NaN();
  const double t = (e.estimate - margin) / e.se;
  if (!(e.df > 0) || !std::isfinite(e.df) || e.df > 1e7) return t;
  const boost::math::students_t_distribution<double, DoublePolicy> dist(e.df);
  const boost::math::normal_distribution<double, DoublePolicy> normal;
  const double tail = boost::math::cdf(boost::math::complement(dist, std::abs(t)));
  if (!(tail > 0)) return t > 0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  if (tail >= 0.5) return 0.0;
  const double z = boost::math::quantile(boost::math::complement(normal, tail));
  return t < 0 ? -z : z;
}

}  // namespace

// The looks of the group-sequential design on this trial: each held interim look analyses the
// data observed by its calendar month with every method still running; a method's test stops
// the trial at the first look whose z crosses a bound (the final look decides what is left).
void TrialSimulator::interim_looks(std::uint64_t seed, std::uint64_t r, Workspace& ws, ReplicateResult& out) const {
  const TrialData& t = ws.trial;
  const InterimConfig& cfg = interim_->config();
  const auto& months = scenario_.trial.months;
  const std::size_t last = t.last(), m = t.rows, K = cfg.looks();
  InterimResult& res = out.interim;
  res.enabled = true;
  res.looks = K;
  res.held.fill(false);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (auto* a : {&res.month, &res.fraction, &res.randomized, &res.consented, &res.upper, &res.lower}) a->fill(nan);
  for (auto& z : res.z) z.fill(nan);
  // The completers' primary visits in calendar order (rows are in order of entry).
  std::vector<double>& primary = ws.primary_months;
  primary.clear();
  for (std::size_t k = 0; k < m; ++k) {
    if (t.seen_at(k, last)) primary.push_back(t.row_entry_month[k] + months[last]);
  }
  std::vector<std::size_t>& counts = ws.look_counts;
  if (cfg.by_calendar()) {
    // Each interim look sees the completers whose primary visit falls by its month.
    counts.clear();
    for (const double month : cfg.calendar_months) {
      counts.push_back(static_cast<std::size_t>(std::upper_bound(primary.begin(), primary.end(), month) - primary.begin()));
    }
  }
  const LookBounds& b = cfg.by_calendar() ? interim_->for_counts(counts, primary.size()) : interim_->for_completers(primary.size());
  const double* const entry = t.row_entry_month.data();
  const double* const consent = t.entry_month.data();
  const double end = m > 0 ? entry[m - 1] + months[last] : months[last];
  // The methods still running, compacted in place (a per-thread buffer: no allocation per trial).
  std::vector<Method>& running = ws.running;
  running = scenario_.analysis.methods;
  for (const Method me : running) {
    res.stop_look[static_cast<std::size_t>(me)] = static_cast<std::int8_t>(K - 1);
    res.reason[static_cast<std::size_t>(me)] = InterimStop::none;
  }
  for (std::size_t h = 0; h < b.looks.size(); ++h) {
    const std::size_t look = b.looks[h];
    const bool final = h + 1 == b.looks.size();
    // A fraction look comes with its completer's primary visit, a calendar look at its month.
    const double tau = final ? end : cfg.by_calendar() ? cfg.calendar_months[look] : primary[b.completers[h] - 1];
    const auto randomized = static_cast<std::size_t>(std::upper_bound(entry, entry + m, tau) - entry);
    res.held[look] = true;
    res.month[look] = tau;
    res.fraction[look] = b.t[h];
    res.randomized[look] = static_cast<double>(randomized);
    res.consented[look] = static_cast<double>(std::upper_bound(consent, consent + t.consented, tau) - consent);
    res.upper[look] = b.upper[h];
    res.lower[look] = b.lower[h];
    // The schedule is recorded to the end; the analyses run while some method is still going.
    if (running.empty()) continue;
    const std::array<Estimate, kMethods> est =
        final ? out.estimates
              : analysis_.estimate_look(t, randomized, entry, months, tau, running, ws.analysis, seed, r, look + 1);
    std::size_t still = 0;
    for (const Method me : running) {
      const auto i = static_cast<std::size_t>(me);
      const double z = z_of(est[i], cfg.margin);
      res.z[i][look] = z;
      // A look that may spend no alpha has an infinite bound, which even an infinite z does not cross.
      const bool efficacy = std::isfinite(b.upper[h]) && (cfg.sides == 2 ? std::abs(z) >= b.upper[h] : z >= b.upper[h]);
      const bool futility = !final && z < std::min(b.lower[h], b.upper[h]);
      if (efficacy || futility || final) {
        res.stop_look[i] = static_cast<std::int8_t>(look);
        res.reason[i] = efficacy ? InterimStop::efficacy : futility ? InterimStop::futility : InterimStop::none;
        out.estimates[i] = est[i];  // the naive estimate at the look that ended the trial
      } else {
        running[still++] = me;
      }
    }
    running.resize(still);
  }
}

}  // namespace trialsim
