#include "sim/trial.hpp"

#include "sim/rng.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace trialsim {

TrialSimulator::TrialSimulator(const Scenario& s, bool all_covariates)
    : scenario_(s),
      all_covariates_(all_covariates),
      population_(s.population),
      measurement_(s.spp, s.measurement, s.population, s.trial.months, s.screening.schedule()),
      screening_(s.screening),
      randomizer_(s.randomization),
      treatment_(s.treatment),
      dropout_(s.dropout),
      analysis_(s.analysis) {}

void TrialSimulator::simulate(std::uint64_t seed, std::uint64_t r, Workspace& ws) const {
  const auto n = static_cast<std::size_t>(scenario_.trial.consented);
  const auto& months = scenario_.trial.months;
  TrialData& t = ws.trial;
  t.visits = months.size();
  // Reused across replicates: every field is rewritten below, the per-visit arrays for the
  // randomized patients (the only ones anything reads them for), so only the fields of a
  // patient's fate that not everyone reaches are reset here.
  t.patients.resize(n);
  for (Patient& p : t.patients) {
    p.arm = Arm::none;
    p.adherent = false;
    p.treatment_effect_final = 0;
    p.dropout_month = std::numeric_limits<double>::infinity();
    p.dropout_reason = DropoutReason::none;
  }
  t.randomized.clear();
  ws.deviations.resize(n);
  ws.paths.resize(n);

  // Population and screening: each patient from their own streams (common random numbers).
  // Visit deviations continue the measurement stream of those randomized only.
  for (std::size_t i = 0; i < n; ++i) {
    Patient& p = t.patients[i];
    p.id = static_cast<int>(i + 1);
    Stream pop_rng(seed, r, StreamKind::population, i);
    if (all_covariates_) {
      Stream extra_rng(seed, r, StreamKind::covariates, i);
      p.cov = population_.draw(pop_rng, &extra_rng);
    } else {
      p.cov = population_.draw(pop_rng);
    }
    p.spp = measurement_.draw_latent(p.cov, pop_rng);
    Stream meas_rng(seed, r, StreamKind::measurement, i);
    Deviations& dev = ws.deviations[i];
    double u = 0;
    measurement_.draw_entry(meas_rng, dev, u);
    p.entry_spp = measurement_.entry_mean(p.spp, dev);
    p.true_baseline = measurement_.true_baseline(p.spp);
    // The loss draw ends the population stream: one stream block fewer per patient.
    p.status = screening_.classify(p.cov, p.entry_spp, pop_rng);
    if (p.status == Status::randomized) {
      measurement_.draw_visits(meas_rng, dev, u);
      t.randomized.push_back(i);
    }
  }

  Stream rand_rng(seed, r, StreamKind::randomization, 0);
  randomizer_.assign(t, rand_rng);

  const double onset = scenario_.treatment.effect_onset_months;
  for (const std::size_t i : t.randomized) {
    Patient& p = t.patients[i];
    Stream trt_rng(seed, r, StreamKind::treatment, i);
    treatment_.apply(p, months, trt_rng);
    const TruePath path = measurement_.path(p.spp, p.treatment_effect_final, onset);
    ws.paths[i] = path;
    for (std::size_t k = 0; k < months.size(); ++k) p.true_spp[k] = path.at(months[k]);
    Stream drop_rng(seed, r, StreamKind::dropout, i);
    const auto readings = measurement_.potential(p, ws.deviations[i]);
    dropout_.follow(p, scenario_.trial.last_month(), path, months, readings, drop_rng);
    measurement_.observe(p, readings);
  }
}

namespace {

struct Sum {
  double s = 0;
  int n = 0;
  void add(double x) {
    s += x;
    ++n;
  }
  Value mean() const { return n > 0 ? Value::of(s / n) : Value{}; }
};

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
  Value sd() const {
    if (n < 2) return {};
    return Value::of(std::sqrt(std::max(0.0, (ss - s * s / n) / (n - 1))));
  }
};

}  // namespace

ReplicateResult TrialSimulator::summarize(std::uint64_t seed, std::uint64_t r, Workspace& ws) const {
  const TrialData& t = ws.trial;
  const auto& months = scenario_.trial.months;
  const std::size_t last = t.last();
  ReplicateResult out;
  out.replicate = r;
  out.consented = static_cast<int>(t.patients.size());
  for (const Patient& p : t.patients) {
    switch (p.status) {
      case Status::prior_mg: ++out.prior_mg; break;
      case Status::lost_pre_baseline: ++out.lost_pre_baseline; break;
      case Status::entry_above_max: ++out.entry_above_max; break;
      case Status::entry_below_min: ++out.entry_below_min; break;
      case Status::randomized: ++out.randomized; break;
    }
  }

  const double gap = months[last] - measurement_.baseline_time();
  for (const Arm arm : {Arm::control, Arm::treatment}) {
    ArmResult& a = out.arms[arm_index(arm)];
    Sum y_base, t_base, slope, effect, dev_base, dev_final, y_final_all, y_final_c;
    Moments base_m, final_m;
    std::array<Sum, kMaxVisits> mg;
    std::array<Moments, kMaxVisits> mg_m;
    std::array<int, kMaxVisits> below{};
    for (const std::size_t i : t.randomized) {
      const Patient& p = t.patients[i];
      if (p.arm != arm) continue;
      ++a.randomized;
      const bool done = p.completed(last);
      if (done) ++a.completed;
      if (p.dropout_reason != DropoutReason::none) {
        ++a.withdrawn[0];
        ++a.withdrawn[static_cast<std::size_t>(p.dropout_reason)];
      }
      for (std::size_t k = 1; k < months.size(); ++k) {
        if (p.dropout_month < months[k]) {
          ++a.withdrawn_before_visit[k][0];
          ++a.withdrawn_before_visit[k][static_cast<std::size_t>(p.dropout_reason)];
        }
        if (p.seen[k]) {
          mg[k].add(p.serum_mg[k]);
          mg_m[k].add(p.serum_mg[k]);
          if (p.serum_mg[k] < scenario_.treatment.target_mg_low) ++below[k];
        }
      }
      // The final reading every randomized patient would give without dropout or a missed
      // visit: the deviation is drawn for every visit whether or not it is observed.
      const double d_final = ws.deviations[i].visit[last];
      y_base.add(p.observed_spp[0]);
      base_m.add(p.observed_spp[0]);
      t_base.add(p.true_baseline);
      slope.add(p.spp.slope);
      effect.add(ws.paths[i].effect_at(months[last]));
      dev_base.add(p.observed_spp[0] - p.true_baseline);
      dev_final.add(d_final);
      y_final_all.add(p.true_spp[last] + d_final);
      if (done) {
        y_final_c.add(p.observed_spp[last]);
        final_m.add(p.observed_spp[last]);
      }
    }
    a.baseline_mean = y_base.mean();
    a.true_baseline_mean = t_base.mean();
    a.final_mean = y_final_c.mean();
    a.baseline_sd = base_m.sd();
    a.final_sd = final_m.sd();
    for (std::size_t k = 1; k < months.size(); ++k) {
      a.mg_mean[k] = mg[k].mean();
      a.mg_sd[k] = mg_m[k].sd();
      if (mg[k].n > 0) a.mg_below_target[k] = Value::of(below[k]);
    }
    // All together, and only when the arm has completers, so that the summary averages every
    // component over the same trials and the identity holds for the means too.
    if (a.completed > 0) {
      a.rtm.observed_change = Value::of(y_final_c.mean().v - y_base.mean().v);
      a.rtm.drift = Value::of(measurement_.drift_per_month() * gap);
      a.rtm.slope_selection = Value::of(slope.mean().v * gap);
      a.rtm.treatment_effect = effect.mean();
      a.rtm.regression_to_mean = Value::of(dev_final.mean().v - dev_base.mean().v);
      a.rtm.attrition = Value::of(y_final_c.mean().v - y_final_all.mean().v);
      a.rtm.regression_to_mean_total = Value::of(-dev_base.mean().v);
      a.rtm.regression_to_mean_carried = Value::of(-dev_final.mean().v);
    }
  }

  out.estimates = analysis_.estimate_all(t, ws.analysis, seed, r);
  return out;
}

}  // namespace trialsim
