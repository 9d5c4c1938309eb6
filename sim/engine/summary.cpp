#include "sim/engine/summary.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace trialsim {

void MethodAccumulator::merge(const MethodAccumulator& o) {
  estimate.merge(o.estimate);
  se2.merge(o.se2);
  err2.merge(o.err2);
  cover.merge(o.cover);
  reject.merge(o.reject);
  for (std::size_t k = 0; k < not_estimable.size(); ++k) not_estimable[k] += o.not_estimable[k];
}

void ArmAccumulator::merge(const ArmAccumulator& o) {
  randomized.merge(o.randomized);
  completed.merge(o.completed);
  for (std::size_t k = 0; k < withdrawn.size(); ++k) withdrawn[k].merge(o.withdrawn[k]);
  for (std::size_t k = 0; k < kMaxVisits; ++k) {
    withdrawn_before_visit[k].merge(o.withdrawn_before_visit[k]);
    mg_mean[k].merge(o.mg_mean[k]);
    mg_sd[k].merge(o.mg_sd[k]);
    mg_below_target[k].merge(o.mg_below_target[k]);
  }
  baseline_mean.merge(o.baseline_mean);
  baseline_sd.merge(o.baseline_sd);
  final_mean.merge(o.final_mean);
  final_sd.merge(o.final_sd);
  true_baseline_mean.merge(o.true_baseline_mean);
  observed_change.merge(o.observed_change);
  drift.merge(o.drift);
  slope_selection.merge(o.slope_selection);
  treatment_effect.merge(o.treatment_effect);
  regression_to_mean.merge(o.regression_to_mean);
  attrition.merge(o.attrition);
  regression_to_mean_total.merge(o.regression_to_mean_total);
  regression_to_mean_carried.merge(o.regression_to_mean_carried);
}

namespace {
void add_value(Moments& m, const Value& v) {
  if (v.defined) m.add(v.v);
}
}  // namespace

void SummaryAccumulator::add(const ReplicateResult& r) {
  ++replicates_;
  consented_.add(r.consented);
  prior_mg_.add(r.prior_mg);
  lost_pre_baseline_.add(r.lost_pre_baseline);
  entry_above_max_.add(r.entry_above_max);
  entry_below_min_.add(r.entry_below_min);
  randomized_.add(r.randomized);
  const std::size_t visits = scenario_->trial.months.size();
  for (std::size_t a = 0; a < 2; ++a) {
    const ArmResult& x = r.arms[a];
    ArmAccumulator& acc = arms_[a];
    acc.randomized.add(x.randomized);
    acc.completed.add(x.completed);
    for (std::size_t k = 0; k < kDropoutReasons; ++k) acc.withdrawn[k].add(x.withdrawn[k]);
    for (std::size_t k = 1; k < visits; ++k) {
      acc.withdrawn_before_visit[k].add(x.withdrawn_before_visit[k][0]);
      add_value(acc.mg_mean[k], x.mg_mean[k]);
      add_value(acc.mg_sd[k], x.mg_sd[k]);
      add_value(acc.mg_below_target[k], x.mg_below_target[k]);
    }
    add_value(acc.baseline_mean, x.baseline_mean);
    add_value(acc.baseline_sd, x.baseline_sd);
    add_value(acc.final_mean, x.final_mean);
    add_value(acc.final_sd, x.final_sd);
    add_value(acc.true_baseline_mean, x.true_baseline_mean);
    add_value(acc.observed_change, x.rtm.observed_change);
    add_value(acc.drift, x.rtm.drift);
    add_value(acc.slope_selection, x.rtm.slope_selection);
    add_value(acc.treatment_effect, x.rtm.treatment_effect);
    add_value(acc.regression_to_mean, x.rtm.regression_to_mean);
    add_value(acc.attrition, x.rtm.attrition);
    add_value(acc.regression_to_mean_total, x.rtm.regression_to_mean_total);
    add_value(acc.regression_to_mean_carried, x.rtm.regression_to_mean_carried);
  }
  const double theta = scenario_->true_effect();
  const Hypothesis hypothesis = scenario_->trial.hypothesis();
  for (const Method m : scenario_->analysis.methods) {
    const Estimate& e = r.estimates[static_cast<std::size_t>(m)];
    MethodAccumulator& acc = methods_[static_cast<std::size_t>(m)];
    if (!e.estimable()) {
      ++acc.not_estimable[static_cast<std::size_t>(e.status)];
      acc.reject.add(0.0);
      continue;
    }
    acc.estimate.add(e.estimate);
    acc.se2.add(e.se * e.se);
    acc.err2.add((e.estimate - theta) * (e.estimate - theta));
    acc.cover.add(e.covers(theta, hypothesis) ? 1.0 : 0.0);
    // With an interim design the test is the group-sequential one.
    const bool rejected = r.interim.enabled ? r.interim.reason[static_cast<std::size_t>(m)] == InterimStop::efficacy
                                            : e.rejects(hypothesis);
    acc.reject.add(rejected ? 1.0 : 0.0);
  }
  if (r.interim.enabled) interim_.add(r.interim, r.estimates, scenario_->analysis.methods);
}

void InterimAccumulator::add(const InterimResult& r, const std::array<Estimate, kMethods>& estimates,
                             const std::vector<Method>& methods) {
  for (std::size_t k = 0; k < r.looks; ++k) {
    held[k].add(r.held[k] ? 1.0 : 0.0);
    if (!r.held[k]) continue;
    month[k].add(r.month[k]);
    fraction[k].add(r.fraction[k]);
    randomized[k].add(r.randomized[k]);
    consented[k].add(r.consented[k]);
    if (std::isfinite(r.upper[k])) upper[k].add(r.upper[k]);
    if (std::isfinite(r.lower[k])) lower[k].add(r.lower[k]);
  }
  for (const Method me : methods) {
    const auto i = static_cast<std::size_t>(me);
    const auto stop = static_cast<std::size_t>(r.stop_look[i]);
    for (std::size_t k = 0; k < r.looks; ++k) {
      stop_efficacy[i][k].add(stop == k && r.reason[i] == InterimStop::efficacy ? 1.0 : 0.0);
      stop_futility[i][k].add(stop == k && r.reason[i] == InterimStop::futility ? 1.0 : 0.0);
      if (std::isfinite(r.z[i][k])) z[i][k].add(r.z[i][k]);
    }
    if (estimates[i].estimable()) estimate_at_stop[i][stop].add(estimates[i].estimate);
    month_at_stop[i].add(r.month[stop]);
    randomized_at_stop[i].add(r.randomized[stop]);
    consented_at_stop[i].add(r.consented[stop]);
  }
}

void InterimAccumulator::merge(const InterimAccumulator& o) {
  auto looks = [](Looks& a, const Looks& b) {
    for (std::size_t k = 0; k < kMaxLooks; ++k) a[k].merge(b[k]);
  };
  for (auto [a, b] : {std::pair{&held, &o.held}, {&month, &o.month}, {&fraction, &o.fraction}, {&randomized, &o.randomized},
                      {&consented, &o.consented}, {&upper, &o.upper}, {&lower, &o.lower}}) {
    looks(*a, *b);
  }
  for (std::size_t i = 0; i < kMethods; ++i) {
    looks(stop_efficacy[i], o.stop_efficacy[i]);
    looks(stop_futility[i], o.stop_futility[i]);
    looks(z[i], o.z[i]);
    looks(estimate_at_stop[i], o.estimate_at_stop[i]);
    month_at_stop[i].merge(o.month_at_stop[i]);
    randomized_at_stop[i].merge(o.randomized_at_stop[i]);
    consented_at_stop[i].merge(o.consented_at_stop[i]);
  }
}
void SummaryAccumulator::merge(const SummaryAccumulator& o) {
  replicates_ += o.replicates_;
  consented_.merge(o.consented_);
  prior_mg_.merge(o.prior_mg_);
  lost_pre_baseline_.merge(o.lost_pre_baseline_);
  entry_above_max_.merge(o.entry_above_max_);
  entry_below_min_.merge(o.entry_below_min_);
  randomized_.merge(o.randomized_);
  for (std::size_t a = 0; a < 2; ++a) arms_[a].merge(o.arms_[a]);
  for (std::size_t m = 0; m < kMethods; ++m) methods_[m].merge(o.methods_[m]);
  if (scenario_->interim.enabled()) interim_.merge(o.interim_);
}

namespace {
// Visits each quantity of a summary to write or read its state.
struct StateWriter {
  std::vector<double>& out;
  void operator()(const Moments& m) const {
    const auto s = m.state();
    out.insert(out.end(), s.begin(), s.end());
  }
  void operator()(const std::uint64_t& c) const { out.push_back(static_cast<double>(c)); }
};
struct StateReader {
  const double*& p;
  void operator()(Moments& m) const {
    m = Moments::from_state(p);
    p += Moments::kStateSize;
  }
  void operator()(std::uint64_t& c) const { c = static_cast<std::uint64_t>(*p++); }
};
}  // namespace

std::vector<double> SummaryAccumulator::state() const {
  std::vector<double> out;
  out.reserve(state_size());
  visit(*this, StateWriter{out});
  return out;
}

std::size_t SummaryAccumulator::state_size() {
  struct Counter {
    std::size_t& n;
    void operator()(const Moments&) const { n += Moments::kStateSize; }
    void operator()(const std::uint64_t&) const { ++n; }
  };
  static const std::size_t size = [] {
    const Scenario none;
    std::size_t n = 0;
    const SummaryAccumulator empty(none);
    visit(empty, Counter{n});
    return n;
  }();
  return size;
}

void SummaryAccumulator::set_state(const std::vector<double>& state) {
  if (state.size() != state_size()) {
    throw std::runtime_error("summary state has " + std::to_string(state.size()) + " values, expected " +
                             std::to_string(state_size()));
  }
  const double* p = state.data();
  visit(*this, StateReader{p});
}

Performance performance(const MethodAccumulator& m, std::uint64_t replicates, double true_effect) {
  Performance p;
  p.trials = replicates;
  p.estimable = m.estimate.n();
  const double n_all = static_cast<double>(replicates);
  if (replicates > 0) {
    p.power = m.reject.mean();
    p.power_mcse = std::sqrt(p.power * (1 - p.power) / n_all);
  }
  if (p.estimable == 0) return p;
  const double n = static_cast<double>(p.estimable);
  p.mean_estimate = m.estimate.mean();
  p.bias = p.mean_estimate - true_effect;
  p.bias_mcse = m.estimate.mcse();
  if (p.estimable < 2) return p;
  p.has_spread = true;
  p.emp_se = m.estimate.sd();
  p.emp_se_mcse = p.emp_se / std::sqrt(2.0 * (n - 1));
  p.model_se = std::sqrt(m.se2.mean());
  p.model_se_mcse = std::sqrt(m.se2.variance() / (4.0 * n * m.se2.mean()));
  p.rmse = std::sqrt(m.err2.mean());
  p.rmse_mcse = p.rmse > 0 ? m.err2.mcse() / (2.0 * p.rmse) : 0.0;
  p.coverage = m.cover.mean();
  p.coverage_mcse = std::sqrt(p.coverage * (1 - p.coverage) / n);
  if (p.emp_se > 0) {
    const double ratio = p.model_se / p.emp_se;
    p.relative_se_error = 100.0 * (ratio - 1.0);
    p.relative_se_error_mcse =
        100.0 * ratio * std::sqrt(m.se2.variance() / (4.0 * n * std::pow(m.se2.mean(), 2)) + 1.0 / (2.0 * (n - 1)));
  }
  return p;
}

namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

json num(double v) { return json_finite(v); }

json est(double v, double mcse) { return json{{"estimate", num(v)}, {"mcse", num(mcse)}}; }

// Every Monte Carlo estimate in the summary is {estimate, mcse}: the mean over trials of a
// per-trial quantity and its MC SE (analyses' performance measures likewise, est()).
json mean_over_trials(const Moments& m) { return m.n() ? est(m.mean(), m.mcse()) : est(kNaN, kNaN); }

// Distribution over trials of a per-trial quantity: its mean as {estimate, mcse}, with the
// spread across trials.
json stat(const Moments& m) {
  if (m.n() == 0) {
    return json{{"estimate", nullptr}, {"mcse", nullptr}, {"sd", nullptr}, {"min", nullptr}, {"max", nullptr}, {"trials", 0}};
  }
  return json{{"estimate", num(m.mean())}, {"mcse", num(m.mcse())}, {"sd", num(m.n() > 1 ? m.sd() : kNaN)},
              {"min", num(m.min())},   {"max", num(m.max())},   {"trials", m.n()}};
}

// An arm's mean and SD of a measurement, each averaged over trials: {mean: {estimate, mcse},
// sd: {estimate, mcse}, trials}.
json arm_stat(const Moments& mean, const Moments& sd) {
  return json{{"mean", mean_over_trials(mean)}, {"sd", mean_over_trials(sd)}, {"trials", mean.n()}};
}

const char* kArmNames[2] = {"control", "treatment"};
const char* kReasonNames[kDropoutReasons] = {"total", "death", "transfer", "adverse_event"};
const char* kNotEstimableNames[kNotEstimableReasons] = {"none", "too_few_patients", "no_variance", "rank_deficient",
                                                        "not_converged"};

std::string month_key(double m) { return "month" + month_label(m); }

}  // namespace

// The group-sequential design and its operating characteristics: the planned boundaries, and
// per planned look what the simulated trials did there, every figure {estimate, mcse}; per
// method the design's power (as analyses.<method>.power) and the expected calendar month,
// randomized and consented at the end of the trial.
json SummaryAccumulator::interim_json() const {
  const Scenario& s = *scenario_;
  const InterimConfig& cfg = s.interim;
  const InterimDesign design(cfg, 0);
  const LookBounds& plan = design.planned();
  auto bound = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  json planned{{"fractions", plan.t}, {"efficacy_bounds", json::array()}, {"futility_bounds", json::array()}};
  for (std::size_t k = 0; k < plan.t.size(); ++k) {
    planned["efficacy_bounds"].push_back(bound(plan.upper[k]));
    planned["futility_bounds"].push_back(k + 1 < plan.t.size() ? bound(plan.lower[k]) : json(nullptr));
  }
  if (cfg.futility == FutilityRule::beta_spending) planned["drift"] = design.planned_drift();
  const InterimAccumulator& a = interim_;
  json j = cfg.to_json();
  j["sides"] = cfg.sides;
  j["alpha"] = s.trial.alpha;
  j["planned"] = planned;
  const auto& methods = s.analysis.methods;
  auto per_method = [&](const std::array<InterimAccumulator::Looks, kMethods>& x, std::size_t k) {
    json o = json::object();
    for (const Method m : methods) o[std::string(method_name(m))] = mean_over_trials(x[static_cast<std::size_t>(m)][k]);
    return o;
  };
  json looks = json::array();
  std::array<double, kMethods> power{};
  for (std::size_t k = 0; k < cfg.looks(); ++k) {
    json l{{"look", k + 1},
           {"planned_fraction", cfg.fractions[k]},
           {"planned_month", cfg.by_calendar() && k + 1 < cfg.looks() ? json(cfg.calendar_months[k]) : json(nullptr)},
           {"held", mean_over_trials(a.held[k])},
           {"fraction", stat(a.fraction[k])},
           {"calendar_month", stat(a.month[k])},
           {"randomized", stat(a.randomized[k])},
           {"consented", stat(a.consented[k])},
           {"efficacy_bound", stat(a.upper[k])},
           {"futility_bound", k + 1 < cfg.looks() && cfg.futility != FutilityRule::none ? stat(a.lower[k]) : json(nullptr)},
           {"stop_efficacy", per_method(a.stop_efficacy, k)},
           {"stop_futility", per_method(a.stop_futility, k)},
           {"cumulative_power", json::object()},
           {"z", json::object()},
           {"estimate_at_stop", json::object()}};
    for (const Method m : methods) {
      const auto i = static_cast<std::size_t>(m);
      const std::string name(method_name(m));
      // A sum of shares: rounding can carry it past 1 by an ulp.
      power[i] = std::clamp(power[i] + a.stop_efficacy[i][k].mean(), 0.0, 1.0);
      const double n = static_cast<double>(replicates_);
      l["cumulative_power"][name] = est(power[i], replicates_ > 0 ? std::sqrt(power[i] * (1 - power[i]) / n) : kNaN);
      l["z"][name] = stat(a.z[i][k]);
      l["estimate_at_stop"][name] = stat(a.estimate_at_stop[i][k]);
    }
    looks.push_back(l);
  }
  j["looks"] = looks;
  json by_method = json::object();
  for (const Method m : methods) {
    const auto i = static_cast<std::size_t>(m);
    double early = 0;
    for (std::size_t k = 0; k + 1 < cfg.looks(); ++k) early += a.stop_efficacy[i][k].mean() + a.stop_futility[i][k].mean();
    early = std::clamp(early, 0.0, 1.0);
    const double n = static_cast<double>(replicates_);
    by_method[std::string(method_name(m))] = json{
        {"power", est(methods_[i].reject.mean(), replicates_ > 0 ? std::sqrt(methods_[i].reject.mean() * (1 - methods_[i].reject.mean()) / n) : kNaN)},
        {"stopped_early", est(early, replicates_ > 0 ? std::sqrt(early * (1 - early) / n) : kNaN)},
        {"calendar_month_at_end", stat(a.month_at_stop[i])},
        {"randomized_at_end", stat(a.randomized_at_stop[i])},
        {"consented_at_end", stat(a.consented_at_stop[i])}};
  }
  j["methods"] = by_method;
  return j;
}

json SummaryAccumulator::to_json(std::uint64_t seed) const {
  const Scenario& s = *scenario_;
  const auto& months = s.trial.months;
  json out;
  out["trialsim_version"] = TRIALSIM_VERSION;
  out["seed"] = seed;
  out["replicates"] = replicates_;
  out["true_effect"] = s.true_effect();
  out["true_effect_per_protocol"] = s.true_effect_per_protocol();
  out["alpha"] = s.trial.alpha;
  out["hypothesis"] = {{"sides", s.trial.sides}, {"margin", s.trial.margin}, {"text", s.hypothesis_text()}};
  out["scenario"] = s.to_json();

  json analyses = json::object();
  for (const Method m : s.analysis.methods) {
    const MethodAccumulator& acc = methods_[static_cast<std::size_t>(m)];
    const Performance p = performance(acc, replicates_, s.true_effect());
    json ne{{"total", replicates_ - p.estimable}};
    for (std::size_t k = 1; k < kNotEstimableReasons; ++k) ne[kNotEstimableNames[k]] = acc.not_estimable[k];
    json a{{"description", method_description(m, s.analysis)},
           {"estimable", p.estimable},
           {"not_estimable", ne},
           {"power", est(p.power, p.power_mcse)}};
    const bool any = p.estimable > 0;
    a["mean_estimate"] = any ? est(p.mean_estimate, p.bias_mcse) : est(kNaN, kNaN);
    a["bias"] = any ? est(p.bias, p.bias_mcse) : est(kNaN, kNaN);
    const bool spread = p.has_spread;
    a["emp_se"] = spread ? est(p.emp_se, p.emp_se_mcse) : est(kNaN, kNaN);
    a["model_se"] = spread ? est(p.model_se, p.model_se_mcse) : est(kNaN, kNaN);
    a["relative_se_error_pct"] = spread && p.emp_se > 0 ? est(p.relative_se_error, p.relative_se_error_mcse) : est(kNaN, kNaN);
    a["rmse"] = spread ? est(p.rmse, p.rmse_mcse) : est(kNaN, kNaN);
    a["coverage"] = spread ? est(p.coverage, p.coverage_mcse) : est(kNaN, kNaN);
    analyses[std::string(method_name(m))] = a;
  }
  out["analyses"] = analyses;
  if (s.interim.enabled()) out["interim"] = interim_json();

  // Steps the scenario does not have (Scenario::has_*) are left out, not shown as zeros.
  json funnel{{"consented", stat(consented_)}, {"lost_pre_baseline", stat(lost_pre_baseline_)}, {"randomized", stat(randomized_)}};
  if (s.has_prior_exclusion()) funnel["excluded_prior_mg"] = stat(prior_mg_);
  if (s.has_entry_max()) funnel["excluded_entry_above_max"] = stat(entry_above_max_);
  if (s.has_entry_min()) funnel["excluded_entry_below_min"] = stat(entry_below_min_);
  json spp{{"baseline", json::object()}, {"final", json::object()}, {"true_baseline", json::object()}};
  json mg = json::object(), mg_sd = json::object(), below = json::object(), rtm = json::object();
  for (std::size_t a = 0; a < 2; ++a) {
    const ArmAccumulator& acc = arms_[a];
    const char* arm = kArmNames[a];
    funnel["allocated"][arm] = stat(acc.randomized);
    funnel["completed"][arm] = stat(acc.completed);
    for (std::size_t k = 0; k < kDropoutReasons; ++k) {
      if (s.withdrawal_possible(k)) funnel["withdrawn"][arm][kReasonNames[k]] = stat(acc.withdrawn[k]);
    }
    for (std::size_t k = 1; k < months.size(); ++k) {
      funnel["withdrawn_before"][month_key(months[k])][arm] = stat(acc.withdrawn_before_visit[k]);
      mg[month_key(months[k])][arm] = stat(acc.mg_mean[k]);
      mg_sd[month_key(months[k])][arm] = stat(acc.mg_sd[k]);
      below[month_key(months[k])][arm] = stat(acc.mg_below_target[k]);
    }
    spp["baseline"][arm] = arm_stat(acc.baseline_mean, acc.baseline_sd);
    spp["final"][arm] = arm_stat(acc.final_mean, acc.final_sd);
    spp["true_baseline"][arm] = stat(acc.true_baseline_mean);
    const auto comp = mean_over_trials;
    rtm[arm] = json{{"observed_change", comp(acc.observed_change)},
                    {"drift", comp(acc.drift)},
                    {"slope_selection", comp(acc.slope_selection)},
                    {"treatment_effect", comp(acc.treatment_effect)},
                    {"regression_to_mean", comp(acc.regression_to_mean)},
                    {"attrition", comp(acc.attrition)},
                    {"regression_to_mean_total", comp(acc.regression_to_mean_total)},
                    {"regression_to_mean_carried", comp(acc.regression_to_mean_carried)},
                    // The split is averaged over the trials whose arm has completers; with none
                    // (every patient withdrew in every trial) its figures are null.
                    {"trials", acc.observed_change.n()}};
  }
  out["funnel"] = funnel;
  out["spp"] = spp;
  if (s.treatment.serum_mg) {
    out["serum_mg"] = mg;
    out["serum_mg_sd"] = mg_sd;
    out["serum_mg_below_target"] = below;
  }
  out["rtm"] = rtm;
  return out;
}

namespace {
std::string fmt(const char* f, double v) {
  if (!std::isfinite(v)) return "NA";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string pm(const char* f, double v, double se) { return fmt(f, v) + " (" + fmt(f, se) + ")"; }
}  // namespace

std::string SummaryAccumulator::to_table(std::uint64_t seed) const {
  const Scenario& s = *scenario_;
  const auto& months = s.trial.months;
  const Labels& L = s.labels;
  std::ostringstream o;
  char line[512];
  o << "trialsim " << TRIALSIM_VERSION << "  scenario " << s.source << "  replicates " << replicates_ << "  seed "
    << seed << "\nTrue effect " << fmt("%g", s.true_effect()) << " " << L.unit << " at month " << fmt("%g", months.back())
    << "; tests " << s.hypothesis_text() << ". Figures are means over trials, (MC standard error).\n\n";

  o << "Patient flow per trial\n";
  auto row = [&](const std::string& label, const Moments& m) {
    std::snprintf(line, sizeof line, "  %-36s %8s  sd %5s  range %s-%s\n", label.c_str(), fmt("%.2f", m.mean()).c_str(),
                  fmt("%.2f", m.sd()).c_str(), fmt("%.0f", m.min()).c_str(), fmt("%.0f", m.max()).c_str());
    o << line;
  };
  row("consented", consented_);
  if (s.has_prior_exclusion()) row("excluded: prior Mg preparation", prior_mg_);
  row("lost before baseline", lost_pre_baseline_);
  if (s.has_entry_max()) row("excluded: entry " + L.outcome + " >= entry_max", entry_above_max_);
  if (s.has_entry_min()) row("excluded: entry " + L.outcome + " < entry_min", entry_below_min_);
  row("randomized", randomized_);

  std::snprintf(line, sizeof line, "\n  %-36s %16s %16s\n", "", L.treatment.c_str(), L.control.c_str());
  o << line;
  auto arm_row = [&](const std::string& label, const Moments& t, const Moments& c, const char* f) {
    std::snprintf(line, sizeof line, "  %-36s %16s %16s\n", label.c_str(),
                  t.n() ? pm(f, t.mean(), t.mcse()).c_str() : "NA", c.n() ? pm(f, c.mean(), c.mcse()).c_str() : "NA");
    o << line;
  };
  const ArmAccumulator& T = arms_[1];
  const ArmAccumulator& C = arms_[0];
  arm_row("allocated", T.randomized, C.randomized, "%.2f");
  for (std::size_t k = 1; k < kDropoutReasons; ++k) {
    if (s.withdrawal_possible(k)) arm_row(std::string("withdrawn: ") + kReasonNames[k], T.withdrawn[k], C.withdrawn[k], "%.2f");
  }
  for (std::size_t k = 1; k + 1 < months.size(); ++k) {
    arm_row("withdrawn before month " + fmt("%g", months[k]), T.withdrawn_before_visit[k], C.withdrawn_before_visit[k], "%.2f");
  }
  arm_row("completed (seen at month " + fmt("%g", months.back()) + ")", T.completed, C.completed, "%.2f");
  arm_row("baseline " + L.outcome + " mean, " + L.unit, T.baseline_mean, C.baseline_mean, "%.2f");
  arm_row("baseline " + L.outcome + " SD", T.baseline_sd, C.baseline_sd, "%.2f");
  arm_row("final " + L.outcome + " mean (completers)", T.final_mean, C.final_mean, "%.2f");
  arm_row("final " + L.outcome + " SD (completers)", T.final_sd, C.final_sd, "%.2f");
  if (s.treatment.serum_mg) {
    for (std::size_t k = 1; k < months.size(); ++k) {
      arm_row("serum Mg month " + fmt("%g", months[k]) + ", mg/dL", T.mg_mean[k], C.mg_mean[k], "%.3f");
    }
  }

  o << "\nWhy the observed " << L.outcome << " changed (mean over completers at the end minus all randomized at baseline)\n";
  arm_row("observed change", T.observed_change, C.observed_change, "%.2f");
  arm_row("  = secular drift", T.drift, C.drift, "%.2f");
  arm_row("  + selection on own slopes", T.slope_selection, C.slope_selection, "%.2f");
  arm_row("  + treatment effect", T.treatment_effect, C.treatment_effect, "%.2f");
  arm_row("  + regression to the mean, realized", T.regression_to_mean, C.regression_to_mean, "%.2f");
  arm_row("  + attrition (completers vs all)", T.attrition, C.attrition, "%.2f");
  arm_row("  (baseline selection error, in all", T.regression_to_mean_total, C.regression_to_mean_total, "%.2f");
  arm_row("   still carried at the last visit)", T.regression_to_mean_carried, C.regression_to_mean_carried, "%.2f");

  o << "\nAnalyses (estimate = " << L.treatment << " minus " << L.control << " at month " << fmt("%g", months.back()) << ")\n";
  std::snprintf(line, sizeof line, "  %-17s %15s %15s %15s %15s %15s %15s %8s\n", "method", "power", "bias", "emp SE",
                "model SE", "RMSE", "coverage", "not est.");
  o << line;
  for (const Method m : s.analysis.methods) {
    const MethodAccumulator& acc = methods_[static_cast<std::size_t>(m)];
    const Performance p = performance(acc, replicates_, s.true_effect());
    const bool sp = p.has_spread;
    std::snprintf(line, sizeof line, "  %-17s %15s %15s %15s %15s %15s %15s %8llu\n", std::string(method_name(m)).c_str(),
                  pm("%.3f", p.power, p.power_mcse).c_str(),
                  p.estimable ? pm("%.2f", p.bias, p.bias_mcse).c_str() : "NA",
                  sp ? pm("%.2f", p.emp_se, p.emp_se_mcse).c_str() : "NA",
                  sp ? pm("%.2f", p.model_se, p.model_se_mcse).c_str() : "NA",
                  sp ? pm("%.2f", p.rmse, p.rmse_mcse).c_str() : "NA",
                  sp ? pm("%.3f", p.coverage, p.coverage_mcse).c_str() : "NA",
                  static_cast<unsigned long long>(replicates_ - p.estimable));
    o << line;
  }
  if (s.interim.enabled()) o << interim_table();
  return o.str();
}

// The terminal's interim section: the design, each look's timing and bounds, and per method the
// probabilities of stopping at each look and the expected size and length of the trial.
std::string SummaryAccumulator::interim_table() const {
  const Scenario& s = *scenario_;
  const InterimConfig& cfg = s.interim;
  const InterimAccumulator& a = interim_;
  std::ostringstream o;
  char line[512];
  std::string design = std::to_string(cfg.looks()) + " looks, " + InterimConfig::spending_name(cfg.efficacy.type) +
                       " alpha spending";
  if (cfg.efficacy.type == SpendingType::hwang_shih_decani) design += " (gamma " + fmt("%g", cfg.efficacy.gamma) + ")";
  if (cfg.futility == FutilityRule::z) design += ", futility on z";
  if (cfg.futility == FutilityRule::conditional_power) design += ", futility at conditional power (current trend) below " + fmt("%g", cfg.futility_cp);
  if (cfg.futility == FutilityRule::beta_spending) {
    design += ", futility by " + InterimConfig::spending_name(cfg.beta.type) + " beta spending (beta " + fmt("%g", cfg.beta.alpha) + ")";
  }
  if (cfg.futility != FutilityRule::none) design += cfg.binding ? ", binding" : ", non-binding";
  o << "\nGroup-sequential design: " << design << ".\n"
    << "The analyses' power, bias and coverage above are the design's: each trial's estimate is taken at the look\n"
    << "that ended it. Bounds on the z scale, recomputed at each trial's information; 'held': share of trials\n"
    << "with enough completers for the look.\n";
  std::snprintf(line, sizeof line, "  %-6s %9s %9s %16s %16s %16s %16s %16s\n", "look", "planned", "held", "information",
                "calendar month", "randomized", "efficacy bound", "futility bound");
  o << line;
  for (std::size_t k = 0; k < cfg.looks(); ++k) {
    auto mean = [&](const Moments& m, const char* f) { return m.n() ? pm(f, m.mean(), m.mcse()) : std::string("-"); };
    // Calendar looks: the planned month (the planned information is in the JSON).
    const std::string planned = cfg.by_calendar() && k + 1 < cfg.looks() ? "month " + fmt("%g", cfg.calendar_months[k])
                                                                         : fmt("%g", cfg.fractions[k]);
    std::snprintf(line, sizeof line, "  %-6zu %9s %9s %16s %16s %16s %16s %16s\n", k + 1, planned.c_str(),
                  fmt("%.3f", a.held[k].mean()).c_str(), mean(a.fraction[k], "%.3f").c_str(), mean(a.month[k], "%.1f").c_str(),
                  mean(a.randomized[k], "%.1f").c_str(), mean(a.upper[k], "%.3f").c_str(), mean(a.lower[k], "%.3f").c_str());
    o << line;
  }
  std::snprintf(line, sizeof line, "\n  %-17s %-9s", "method", "stop at");
  o << line;
  for (std::size_t k = 0; k < cfg.looks(); ++k) {
    std::snprintf(line, sizeof line, " %15s", ("look " + std::to_string(k + 1)).c_str());
    o << line;
  }
  std::snprintf(line, sizeof line, " %15s %15s\n", "randomized", "month at end");
  o << line;
  for (const Method m : s.analysis.methods) {
    const auto i = static_cast<std::size_t>(m);
    for (int kind = 0; kind < (cfg.futility != FutilityRule::none ? 2 : 1); ++kind) {
      std::snprintf(line, sizeof line, "  %-17s %-9s", kind == 0 ? std::string(method_name(m)).c_str() : "",
                    kind == 0 ? "efficacy" : "futility");
      o << line;
      for (std::size_t k = 0; k < cfg.looks(); ++k) {
        const Moments& x = kind == 0 ? a.stop_efficacy[i][k] : a.stop_futility[i][k];
        const bool none = kind == 1 && k + 1 == cfg.looks();
        std::snprintf(line, sizeof line, " %15s", none ? "-" : pm("%.3f", x.mean(), x.mcse()).c_str());
        o << line;
      }
      if (kind == 0) {
        std::snprintf(line, sizeof line, " %15s %15s\n", pm("%.1f", a.randomized_at_stop[i].mean(), a.randomized_at_stop[i].mcse()).c_str(),
                      pm("%.1f", a.month_at_stop[i].mean(), a.month_at_stop[i].mcse()).c_str());
      } else {
        std::snprintf(line, sizeof line, "\n");
      }
      o << line;
    }
  }
  return o.str();
}

nlohmann::json json_finite(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::optional<double> json_number(const nlohmann::json& j, std::initializer_list<std::string_view> path) {
  const nlohmann::json* p = &j;
  for (const std::string_view k : path) {
    if (!p->is_object()) return std::nullopt;
    const auto it = p->find(std::string(k));
    if (it == p->end()) return std::nullopt;
    p = &*it;
  }
  if (!p->is_number()) return std::nullopt;
  const double v = p->get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

std::pair<std::optional<double>, std::optional<double>> consented_per_randomized(const nlohmann::json& summary) {
  const auto c = json_number(summary, {"funnel", "consented", "estimate"});
  const auto r = json_number(summary, {"funnel", "randomized", "estimate"});
  const auto r_se = json_number(summary, {"funnel", "randomized", "mcse"});
  if (!c || !r || *r <= 0) return {std::nullopt, std::nullopt};
  return {*c / *r, r_se ? std::optional<double>(*c / (*r * *r) * *r_se) : std::nullopt};
}

}  // namespace trialsim
