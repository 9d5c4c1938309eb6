#include "sim/engine/trial.hpp"

#include "sim/engine/rng.hpp"

#include <algorithm>
#include <cmath>
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

}  // namespace

TrialSimulator::TrialSimulator(const Scenario& s, bool all_covariates)
    : scenario_(s),
      all_covariates_(all_covariates),
      population_(s.population, covariate_needs(s)),
      measurement_(s.spp, s.measurement, s.population, s.trial.months, s.screening.schedule(),
                   s.treatment.effect_onset_months),
      screening_(s.screening),
      randomizer_(s.randomization),
      treatment_(s.treatment),
      dropout_(s.dropout, s.trial.last_month(), s.treatment.effect_onset_months),
      analysis_(s.analysis) {}

void TrialSimulator::simulate(std::uint64_t seed, std::uint64_t r, Workspace& ws) const {
  const auto n = static_cast<std::size_t>(scenario_.trial.consented);
  const auto& months = scenario_.trial.months;
  TrialData& t = ws.trial;
  t.visits = months.size();
  // Reused across replicates without allocating once grown: every field a later step reads is
  // written below. Raw pointers into the tables, so that stores through them do not make the
  // compiler reload the vectors.
  t.patients.resize(n);
  t.randomized.resize(n);
  t.table.reset(n, t.visits);
  if (all_covariates_) t.extras.resize(n);
  ws.units.resize(n);
  Patient* const patients = t.patients.data();
  std::size_t* const randomized = t.randomized.data();
  UnitKey* const units = ws.units.data();
  const TrialKey key(seed, r);

  // Population and screening: each patient from their own streams (common random numbers).
  // Visit deviations continue the measurement stream of those randomized only.
  std::size_t rows = 0;
  for (std::size_t i = 0; i < n; ++i) {
    Patient& p = patients[i];
    p.id = static_cast<std::int32_t>(i + 1);
    p.row = -1;
    p.arm = Arm::none;
    p.adherent = false;
    p.treatment_effect_final = 0;
    p.dropout_month = std::numeric_limits<double>::infinity();
    p.dropout_reason = DropoutReason::none;
    const UnitKey unit = key.unit(i);
    units[i] = unit;
    Stream pop_rng(unit, StreamKind::population);
    if (all_covariates_) {
      Stream extra_rng(unit, StreamKind::covariates);
      population_.draw(pop_rng, p.cov, &extra_rng, &t.extras[i]);
    } else {
      population_.draw(pop_rng, p.cov);
    }
    p.spp = measurement_.draw_latent(p.cov, pop_rng);
    Stream meas_rng(unit, StreamKind::measurement);
    double u = 0;
    p.entry_spp = measurement_.true_entry(p.spp) + measurement_.draw_entry(meas_rng, nullptr, u);
    p.true_baseline = measurement_.true_baseline(p.spp);
    // The loss draw ends the population stream.
    p.status = screening_.classify(p.cov, p.entry_spp, pop_rng);
    if (p.status == Status::randomized) {
      p.row = static_cast<std::int32_t>(rows);
      const VisitRow row = t.table.row(rows);
      measurement_.draw_visits(meas_rng, row.deviation, row.seen, u);
      randomized[rows++] = i;
    }
  }
  t.randomized.resize(rows);  // never reallocates: shrinks within the capacity

  // Trial-level streams use unit 0 with kinds of their own.
  Stream rand_rng(key.unit(0), StreamKind::randomization);
  randomizer_.assign(t, rand_rng);

  const bool on_observed = dropout_.config().on_observed;
  for (std::size_t k = 0; k < rows; ++k) {
    const std::size_t i = randomized[k];
    Patient& p = patients[i];
    const VisitRow row = t.table.row(k);
    Stream trt_rng(units[i], StreamKind::treatment);
    treatment_.apply(p, row, months, trt_rng);
    const TruePath path = measurement_.path(p.spp, p.treatment_effect_final);
    t.table.path(k) = path;
    // Dropout on observed SPP reads the readings the visits would give.
    if (on_observed) measurement_.readings(p, path, row);
    Stream drop_rng(units[i], StreamKind::dropout);
    dropout_.follow(p, path, months, row.observed, drop_rng);
    measurement_.observe(p, path, row);
  }
}

namespace {

// Mean and SD in one pass, shifted by the first value for numerical safety (Chan, Golub &
// LeVeque, Am Stat 1983): values are few (one arm of one trial) and of one magnitude.
struct Moments {
  double shift = 0, s = 0, ss = 0;
  int n = 0;
  void add(double x) {
    if (n == 0) shift = x;
    const double d = x - shift;
    s += d;
    ss += d * d;
    ++n;
  }
  Value mean() const { return n > 0 ? Value::of(shift + s / n) : Value{}; }
  Value sd() const {
    if (n < 2) return {};
    return Value::of(std::sqrt(std::max(0.0, (ss - s * s / n) / (n - 1))));
  }
};

}  // namespace

ReplicateResult TrialSimulator::summarize(std::uint64_t seed, std::uint64_t r, Workspace& ws) const {
  const TrialData& t = ws.trial;
  const auto& months = scenario_.trial.months;
  const std::size_t last = t.last(), visits = t.visits;
  ReplicateResult out;
  out.replicate = r;
  out.consented = static_cast<int>(t.patients.size());
  std::array<int, 5> status{};
  for (const Patient& p : t.patients) ++status[static_cast<std::size_t>(p.status)];
  out.prior_mg = status[static_cast<std::size_t>(Status::prior_mg)];
  out.lost_pre_baseline = status[static_cast<std::size_t>(Status::lost_pre_baseline)];
  out.entry_above_max = status[static_cast<std::size_t>(Status::entry_above_max)];
  out.entry_below_min = status[static_cast<std::size_t>(Status::entry_below_min)];
  out.randomized = status[static_cast<std::size_t>(Status::randomized)];

  // One pass over the randomized patients: the sums of both arms, and the completers' sums
  // the t tests and ANCOVA work from.
  struct ArmPass {
    int n = 0;
    double t_base = 0, slope = 0, effect = 0, dev_final = 0, y_final_all = 0;
    Moments base;
    std::array<Moments, kMaxVisits> mg;
    std::array<int, kMaxVisits> below{};
  };
  std::array<ArmPass, 2> pass;
  CompleterSums& completers = ws.completers;
  completers.clear();
  const double target_low = scenario_.treatment.target_mg_low;
  const Patient* const patients = t.patients.data();
  const std::size_t* const randomized = t.randomized.data();
  const std::size_t rows = t.randomized.size();
  for (std::size_t k = 0; k < rows; ++k) {
    const Patient& p = patients[randomized[k]];
    const ConstVisitRow row = t.table.row(k);
    const std::size_t arm = arm_index(p.arm);
    ArmPass& x = pass[arm];
    ++x.n;
    if (p.dropout_reason != DropoutReason::none) {
      ArmResult& a = out.arms[arm];
      const auto reason = static_cast<std::size_t>(p.dropout_reason);
      ++a.withdrawn[0];
      ++a.withdrawn[reason];
      for (std::size_t v = 1; v < visits; ++v) {
        if (p.dropout_month < months[v]) {
          ++a.withdrawn_before_visit[v][0];
          ++a.withdrawn_before_visit[v][reason];
        }
      }
    }
    for (std::size_t v = 1; v < visits; ++v) {
      if (row.seen[v]) {
        x.mg[v].add(row.serum_mg[v]);
        if (row.serum_mg[v] < target_low) ++x.below[v];
      }
    }
    // The final reading every randomized patient would give without dropout or a missed
    // visit: the deviation is drawn for every visit whether or not it is observed.
    const TruePath& path = t.table.path(k);
    const double d_final = row.deviation[last];
    x.base.add(row.observed[0]);
    x.t_base += p.true_baseline;
    x.slope += p.spp.slope;
    x.effect += path.effect * measurement_.effect_fraction(last);
    x.dev_final += d_final;
    x.y_final_all += measurement_.true_at_visit(path, last) + d_final;
    if (row.seen[last]) completers.arm[arm].add(row.observed[last], row.observed[0], p.cov.diabetes);
  }

  const double gap = months[last] - measurement_.baseline_time();
  for (std::size_t arm = 0; arm < 2; ++arm) {
    const ArmPass& x = pass[arm];
    const ArmSums& c = completers.arm[arm];
    ArmResult& a = out.arms[arm];
    a.randomized = x.n;
    a.completed = static_cast<int>(c.n);
    a.baseline_mean = x.base.mean();
    a.baseline_sd = x.base.sd();
    auto mean = [&](double sum) { return x.n > 0 ? Value::of(sum / x.n) : Value{}; };
    a.true_baseline_mean = mean(x.t_base);
    if (c.n > 0) a.final_mean = Value::of(c.shift_y + c.y / static_cast<double>(c.n));
    if (c.n > 1) {
      const auto n = static_cast<double>(c.n);
      a.final_sd = Value::of(std::sqrt(std::max(0.0, c.yy - c.y * c.y / n) / (n - 1)));
    }
    for (std::size_t v = 1; v < visits; ++v) {
      a.mg_mean[v] = x.mg[v].mean();
      a.mg_sd[v] = x.mg[v].sd();
      if (x.mg[v].n > 0) a.mg_below_target[v] = Value::of(x.below[v]);
    }
    // All together, and only when the arm has completers, so that the summary averages every
    // component over the same trials and the identity holds for the means too. The baseline's
    // deviation from the true baseline is the observed minus the true baseline mean.
    if (c.n > 0) {
      const double base = a.baseline_mean.v, dev_base = base - mean(x.t_base).v;
      a.rtm.observed_change = Value::of(a.final_mean.v - base);
      a.rtm.drift = Value::of(measurement_.drift_per_month() * gap);
      a.rtm.slope_selection = Value::of(mean(x.slope).v * gap);
      a.rtm.treatment_effect = mean(x.effect);
      a.rtm.regression_to_mean = Value::of(mean(x.dev_final).v - dev_base);
      a.rtm.attrition = Value::of(a.final_mean.v - mean(x.y_final_all).v);
      a.rtm.regression_to_mean_total = Value::of(-dev_base);
      a.rtm.regression_to_mean_carried = Value::of(-mean(x.dev_final).v);
    }
  }

  out.estimates = analysis_.estimate_all(t, completers, ws.analysis, seed, r);
  return out;
}

}  // namespace trialsim
