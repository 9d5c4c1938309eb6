#include "sim/design/calibrate.hpp"

#include "sim/io/config_reader.hpp"
#include "sim/engine/engine.hpp"
#include "sim/engine/trial.hpp"

#include <Eigen/Dense>
#include <nlopt.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>

namespace trialsim {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The objective at a point the scenario refuses.
constexpr double kRefusedObjective = 1e300;

double value_or_nan(const Value& v) { return v.defined ? v.v : kNaN; }

// Shortest text that reads back as the same double.
std::string shortest(double x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

// A --set value as TOML text, read as --set reads it (a bare word that is not TOML is a
// string) and written back by toml++, so quotes and escapes are right.
std::string toml_value_text(std::string value) {
  const auto b = value.find_first_not_of(" \t");
  const auto e = value.find_last_not_of(" \t");
  value = b == std::string::npos ? std::string() : value.substr(b, e - b + 1);
  toml::table t;
  const std::string snippet = "v = " + value;
  if (non_ascii_outside_toml_strings(snippet)) {
    t = toml::table{{"v", value}};
  } else {
    try {
      t = toml::parse(snippet);
    } catch (const toml::parse_error&) {
      t = toml::table{{"v", value}};
    }
  }
  std::ostringstream out;
  out << toml::toml_formatter{t};
  std::string text = out.str();
  if (text.rfind("v = ", 0) == 0) text.erase(0, 4);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

}  // namespace

std::vector<StatisticDef> statistic_catalog(const Scenario& s) {
  using K = StatisticDef::Kind;
  std::vector<StatisticDef> c;
  auto add = [&](std::string name, K kind, std::string description, std::function<double(const ReplicateResult&)> get,
                 std::string sd_name = {}) {
    c.push_back({std::move(name), kind, std::move(description), std::move(sd_name), std::move(get)});
  };
  add("funnel.prior_mg", K::count, "excluded: already on a Mg preparation",
      [](const ReplicateResult& r) { return double(r.prior_mg); });
  add("funnel.lost_pre_baseline", K::count, "excluded: lost between consent and baseline",
      [](const ReplicateResult& r) { return double(r.lost_pre_baseline); });
  add("funnel.entry_above_max", K::count, "excluded: entry reading at or above the upper cutoff",
      [](const ReplicateResult& r) { return double(r.entry_above_max); });
  add("funnel.entry_below_min", K::count, "excluded: entry reading below the lower cutoff",
      [](const ReplicateResult& r) { return double(r.entry_below_min); });
  add("funnel.randomized", K::count, "randomized", [](const ReplicateResult& r) { return double(r.randomized); });
  static const char* const kReasons[] = {"", "death", "transfer", "adverse_event"};
  const auto& months = s.trial.months;
  for (const std::size_t arm : {std::size_t{1}, std::size_t{0}}) {
    const std::string p = arm == 1 ? "treatment." : "control.";
    const std::string label = arm == 1 ? s.labels.treatment : s.labels.control;
    const std::string& outcome = s.labels.outcome;
    const std::string unit = " (" + s.labels.unit + ")";
    add(p + "randomized", K::count, label + ": randomized",
        [arm](const ReplicateResult& r) { return double(r.arms[arm].randomized); });
    add(p + "completed", K::count, label + ": completed (seen at the last visit)",
        [arm](const ReplicateResult& r) { return double(r.arms[arm].completed); });
    for (std::size_t reason = 0; reason < kDropoutReasons; ++reason) {
      const std::string suffix = reason == 0 ? "" : std::string("_") + kReasons[reason];
      add(p + "withdrawn" + suffix, K::count,
          label + ": withdrawn" + (reason == 0 ? "" : std::string(" (") + kReasons[reason] + ")"),
          [arm, reason](const ReplicateResult& r) { return double(r.arms[arm].withdrawn[reason]); });
      for (std::size_t v = 1; v < months.size(); ++v) {
        const std::string m = month_label(months[v]);
        add(p + "withdrawn_before_month_" + m + suffix, K::count,
            label + ": withdrawn before month " + m + (reason == 0 ? "" : std::string(" (") + kReasons[reason] + ")"),
            [arm, v, reason](const ReplicateResult& r) {
              return double(r.arms[arm].withdrawn_before_visit[v][reason]);
            });
      }
    }
    add(p + "baseline_mean", K::mean, label + ": baseline " + outcome + " mean, randomized" + unit,
        [arm](const ReplicateResult& r) { return value_or_nan(r.arms[arm].baseline_mean); }, p + "baseline_sd");
    add(p + "baseline_sd", K::sd, label + ": baseline " + outcome + " SD, randomized" + unit,
        [arm](const ReplicateResult& r) { return value_or_nan(r.arms[arm].baseline_sd); });
    add(p + "final_mean", K::mean, label + ": final " + outcome + " mean, completers" + unit,
        [arm](const ReplicateResult& r) { return value_or_nan(r.arms[arm].final_mean); }, p + "final_sd");
    add(p + "final_sd", K::sd, label + ": final " + outcome + " SD, completers" + unit,
        [arm](const ReplicateResult& r) { return value_or_nan(r.arms[arm].final_sd); });
    for (std::size_t v = 1; v < months.size() && s.treatment.serum_mg; ++v) {
      const std::string m = month_label(months[v]);
      add(p + "mg_mean_month_" + m, K::mean, label + ": serum Mg mean at month " + m + " (mg/dL)",
          [arm, v](const ReplicateResult& r) { return value_or_nan(r.arms[arm].mg_mean[v]); }, p + "mg_sd_month_" + m);
      add(p + "mg_sd_month_" + m, K::sd, label + ": serum Mg SD at month " + m + " (mg/dL)",
          [arm, v](const ReplicateResult& r) { return value_or_nan(r.arms[arm].mg_sd[v]); });
      add(p + "mg_below_target_month_" + m, K::count, label + ": serum Mg below target at month " + m,
          [arm, v](const ReplicateResult& r) { return value_or_nan(r.arms[arm].mg_below_target[v]); });
    }
  }
  return c;
}

Observed read_observed(const std::string& path, const Scenario& s, const std::vector<StatisticDef>& catalog) {
  ConfigReader in = ConfigReader::from_file(path);
  Observed obs;
  obs.path = path;
  const double consented = s.trial.consented;
  std::map<std::string, double, std::less<>> values;
  struct Pending {
    std::size_t index;
    std::string n_path;
    double n;
  };
  std::vector<Pending> pending_n;
  for (std::size_t d = 0; d < catalog.size(); ++d) {
    const StatisticDef& def = catalog[d];
    const toml::node* node = in.table().at_path(def.name).node();
    const bool as_table = node != nullptr && node->is_table();
    const std::string value_path = as_table ? def.name + ".value" : def.name;
    std::optional<double> value = in.optional_number(value_path, Bounds::any());
    std::optional<double> se, n;
    if (as_table) {
      if (!value) in.fail(def.name, "a statistic given as a table needs value = ... (and se or n)");
      se = in.optional_number(def.name + ".se", Bounds::above(0.0));
      n = in.optional_number(def.name + ".n", Bounds::closed(2.0, consented));
      if (se && n) in.fail(def.name + ".n", "give se or n, not both");
      if (n && *n != std::floor(*n)) in.fail(def.name + ".n", "must be a whole number, got " + shortest(*n));
    }
    if (!value) continue;
    const double v = *value;
    if (def.kind == StatisticDef::Kind::count &&
        (v < 0 || v > consented || v != std::floor(v))) {
      in.fail(value_path, "must be a whole number of patients between 0 and trial.consented (" + shortest(consented) +
                              ") of the scenario, got " + shortest(v));
    }
    if (def.kind == StatisticDef::Kind::sd && !(v >= 0)) in.fail(value_path, "an SD must be >= 0, got " + shortest(v));
    ObservedStatistic o;
    o.def = d;
    o.value = v;
    o.se = se;
    o.where = in.where(value_path);
    values[def.name] = v;
    if (n) pending_n.push_back({obs.statistics.size(), def.name + ".n", *n});
    obs.statistics.push_back(o);
  }
  in.check_no_unknown_keys();
  // A sample size becomes a standard error: SD / sqrt(n) for a mean (the file must give that
  // SD), SD / sqrt(2 (n - 1)) for an SD (normal theory), sqrt(n p (1 - p)) for a count of n.
  for (const Pending& p : pending_n) {
    ObservedStatistic& o = obs.statistics[p.index];
    const StatisticDef& def = catalog[o.def];
    switch (def.kind) {
      case StatisticDef::Kind::mean: {
        const auto it = values.find(def.sd_name);
        if (it == values.end()) {
          in.fail(p.n_path, "needs " + def.sd_name + " in the same file to turn n into a standard error (or give se)");
        }
        if (!(it->second > 0)) {
          in.fail(p.n_path, "needs " + def.sd_name + " > 0 to turn n into a standard error, got " +
                                shortest(it->second) + " (or give se)");
        }
        o.se = it->second / std::sqrt(p.n);
        break;
      }
      case StatisticDef::Kind::sd:
        if (!(o.value > 0)) {
          in.fail(p.n_path, "an SD of " + shortest(o.value) + " has standard error 0 from n; give se instead");
        }
        o.se = o.value / std::sqrt(2.0 * (p.n - 1.0));
        break;
      case StatisticDef::Kind::count: {
        if (o.value > p.n) {
          in.fail(p.n_path, "a count of " + shortest(o.value) + " cannot be out of n = " + shortest(p.n) +
                                " (n must be at least the count)");
        }
        const double q = o.value / p.n;
        if (!(q > 0 && q < 1)) {
          in.fail(p.n_path, "a count of " + shortest(o.value) + " out of n = " + shortest(p.n) +
                                " has binomial SE 0; give se instead");
        }
        o.se = std::sqrt(p.n * q * (1 - q));
        break;
      }
    }
  }
  if (obs.statistics.empty()) {
    throw InputError(path + ": no statistics; name at least one, e.g. [control] completed = 39");
  }
  return obs;
}

FreeParameter parse_free(const std::string& spec) {
  const auto eq = spec.find('=');
  const auto colon = spec.find(':', eq == std::string::npos ? 0 : eq);
  auto bad = [&](const std::string& why) -> InputError {
    return InputError("--free " + spec + ": " + why + " (expected KEY=LO:HI, e.g. spp.drift_per_year=0:15)");
  };
  if (eq == std::string::npos || eq == 0 || colon == std::string::npos) throw bad("not KEY=LO:HI");
  FreeParameter f;
  f.spec = spec;
  f.key = spec.substr(0, eq);
  auto number = [&](const std::string& text, const char* what) {
    double x = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), x);
    if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() || !std::isfinite(x)) {
      throw bad(std::string(what) + " '" + text + "' is not a finite number");
    }
    return x;
  };
  f.lo = number(spec.substr(eq + 1, colon - eq - 1), "LO");
  f.hi = number(spec.substr(colon + 1), "HI");
  if (!(f.lo < f.hi)) throw bad("LO must be below HI");
  return f;
}

namespace {

// The parts of an arm's change (RtmComponents), in this order; the first is the observed change.
constexpr std::size_t kParts = 6;
const char* const kPartNames[kParts] = {"observed_change", "drift", "slope_selection", "treatment_effect",
                                        "regression_to_mean", "attrition"};
double part_of(const RtmComponents& c, std::size_t k) {
  const Value* const v[kParts] = {&c.observed_change, &c.drift, &c.slope_selection, &c.treatment_effect,
                                  &c.regression_to_mean, &c.attrition};
  return value_or_nan(*v[k]);
}

// The statistics of the simulated trials at one parameter value: their means and SDs, and, at
// the estimate only, every trial's values (for quantiles and covariances). During the search
// only sums are kept, so memory does not grow with --reps.
struct Simulated {
  std::size_t trials = 0;
  // Per arm (index 1 MgO, 0 control) and part: mean and SD over the trials where defined.
  std::array<std::array<double, kParts>, 2> part_mean{}, part_sd{};
  Eigen::MatrixXd values;  // trials x statistics (NaN where undefined); empty unless kept
  std::vector<double> mean, sd;

  double quantile(std::size_t s, double q) const {
    std::vector<double> v;
    for (Eigen::Index t = 0; t < values.rows(); ++t) {
      const double x = values(t, static_cast<Eigen::Index>(s));
      if (!std::isnan(x)) v.push_back(x);
    }
    if (v.empty()) return kNaN;
    std::sort(v.begin(), v.end());
    // Hyndman & Fan (Am Stat 1996) type 7, R's default.
    const double h = (static_cast<double>(v.size()) - 1) * q;
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
  }
  // Covariance of two statistics over the trials where both are defined.
  double cov(std::size_t a, std::size_t b) const {
    double sa = 0, sb = 0, sab = 0;
    double n = 0;
    for (Eigen::Index t = 0; t < values.rows(); ++t) {
      const double x = values(t, static_cast<Eigen::Index>(a)), y = values(t, static_cast<Eigen::Index>(b));
      if (std::isnan(x) || std::isnan(y)) continue;
      sa += x;
      sb += y;
      sab += x * y;
      n += 1;
    }
    if (n < 2) return kNaN;
    return (sab - sa * sb / n) / (n - 1);
  }
};

// Running sums of values that may be undefined (NaN), added in replicate order.
struct Sums {
  double sum = 0, sum_sq = 0, n = 0;
  void add(double v) {
    if (std::isnan(v)) return;
    sum += v;
    sum_sq += v * v;
    n += 1;
  }
  double mean() const { return n > 0 ? sum / n : kNaN; }
  double sd() const { return n > 1 ? std::sqrt(std::max(0.0, (sum_sq - sum * sum / n) / (n - 1))) : kNaN; }
};

// The scenario refuses a combination of free keys (e.g. a lower entry cutoff above the upper).
struct Refused {
  std::string why;
};

class Calibrator {
 public:
  Calibrator(const CalibrateOptions& o, const std::vector<StatisticDef>& catalog, const Observed& observed)
      : o_(o), catalog_(catalog), observed_(observed) {}

  // The scenario at parameter values x (in the keys' own units).
  Scenario scenario_at(const std::vector<double>& x) const {
    std::vector<std::string> sets = o_.sets;
    for (std::size_t k = 0; k < x.size(); ++k) sets.push_back(o_.free[k].key + "=" + shortest(x[k]));
    // No analysis is needed for the statistics: the cheapest one keeps the engine's summary valid.
    sets.emplace_back("analysis.methods=[\"completers_ttest\"]");
    return Scenario::load(o_.scenario_path, sets);
  }

  // Simulates at x; keep_values keeps every trial's statistics. Throws Refused when the scenario
  // refuses x.
  Simulated simulate(const std::vector<double>& x, bool keep_values = false) {
    std::optional<Scenario> loaded;
    try {
      loaded.emplace(scenario_at(x));
    } catch (const InputError& e) {
      throw Refused{e.what()};
    }
    const Scenario& s = *loaded;
    Simulated sim;
    const std::size_t stats = observed_.statistics.size();
    if (keep_values) sim.values.resize(static_cast<Eigen::Index>(o_.replicates), static_cast<Eigen::Index>(stats));
    EngineOptions e;
    e.replicates = o_.replicates;
    e.seed = o_.seed;
    e.threads = o_.threads;
    e.cancel = o_.cancel;
    std::size_t row = 0;
    std::array<std::array<Sums, kParts>, 2> parts{};
    std::vector<Sums> sums(stats);
    // Trials arrive in replicate order whatever the thread count.
    e.on_trial = [&](const ReplicateResult& r) {
      for (std::size_t arm = 0; arm < 2; ++arm) {
        for (std::size_t k = 0; k < kParts; ++k) parts[arm][k].add(part_of(r.arms[arm].rtm, k));
      }
      for (std::size_t j = 0; j < stats; ++j) {
        const double v = catalog_[observed_.statistics[j].def].get(r);
        sums[j].add(v);
        if (keep_values) sim.values(static_cast<Eigen::Index>(row), static_cast<Eigen::Index>(j)) = v;
      }
      ++row;
    };
    run_replicates(s, e);
    // In a distributed run only the first process sees the trials: every process takes its sums
    // (and values), so all continue the search identically.
    {
      std::vector<double> packed;
      for (const auto& arm : parts) {
        for (const Sums& t : arm) packed.insert(packed.end(), {t.sum, t.sum_sq, t.n});
      }
      for (const Sums& t : sums) packed.insert(packed.end(), {t.sum, t.sum_sq, t.n});
      packed.push_back(static_cast<double>(row));
      if (keep_values) packed.insert(packed.end(), sim.values.data(), sim.values.data() + sim.values.size());
      broadcast_from_first(packed);
      std::size_t at = 0;
      for (auto& arm : parts) {
        for (Sums& t : arm) {
          t = {packed[at], packed[at + 1], packed[at + 2]};
          at += 3;
        }
      }
      for (Sums& t : sums) {
        t = {packed[at], packed[at + 1], packed[at + 2]};
        at += 3;
      }
      row = static_cast<std::size_t>(packed[at++]);
      if (keep_values) std::copy(packed.begin() + static_cast<std::ptrdiff_t>(at), packed.end(), sim.values.data());
    }
    sim.trials = row;
    for (std::size_t arm = 0; arm < 2; ++arm) {
      for (std::size_t k = 0; k < kParts; ++k) {
        sim.part_mean[arm][k] = parts[arm][k].mean();
        sim.part_sd[arm][k] = parts[arm][k].sd();
      }
    }
    sim.mean.resize(stats);
    sim.sd.resize(stats);
    for (std::size_t j = 0; j < stats; ++j) {
      sim.mean[j] = sums[j].mean();
      sim.sd[j] = sums[j].sd();
    }
    return sim;
  }

  // Weights 1 / SE^2: the SE given in the observed file, else one simulated trial's SD at x.
  // Statistics that never vary in the simulation (nor have an SE) carry no information.
  void set_weights(const Simulated& sim) {
    const std::size_t stats = observed_.statistics.size();
    weight_.assign(stats, 0.0);
    se_.assign(stats, kNaN);
    for (std::size_t j = 0; j < stats; ++j) {
      const ObservedStatistic& ob = observed_.statistics[j];
      const double se = ob.se ? *ob.se : sim.sd[j];
      if (std::isnan(sim.mean[j]) || !(se > 0)) continue;
      se_[j] = se;
      weight_[j] = 1.0 / (se * se);
    }
  }

  double objective(const Simulated& sim) const {
    double q = 0;
    for (std::size_t j = 0; j < weight_.size(); ++j) {
      if (weight_[j] == 0) continue;
      // A statistic undefined in every simulated trial here (e.g. no completers) is as far from
      // the observation as can be: a large finite penalty keeps the simplex moving.
      const double d = std::isnan(sim.mean[j]) ? 1e3 : observed_.statistics[j].value - sim.mean[j];
      q += weight_[j] * d * d;
    }
    return q;
  }

  // Nelder-Mead on [0, 1]^p from `start` (key units); returns the minimizer in key units.
  std::vector<double> minimize(const std::vector<double>& start, double step) {
    const std::size_t p = start.size();
    nlopt::opt opt(nlopt::LN_NELDERMEAD, static_cast<unsigned>(p));
    opt.set_lower_bounds(std::vector<double>(p, 0.0));
    opt.set_upper_bounds(std::vector<double>(p, 1.0));
    opt.set_initial_step(step);
    opt.set_xtol_abs(1e-4);
    opt.set_ftol_abs(1e-6);
    opt.set_maxeval(o_.max_evaluations);
    // NLopt's wrapper turns an exception in the objective into a generic failure; the
    // context keeps it (an InputError, Interrupted) to rethrow as it was.
    struct Context {
      Calibrator* self;
      int evaluations = 0;
      std::exception_ptr error;
    } ctx{this, 0, nullptr};
    opt.set_min_objective(
        [](unsigned n, const double* u, double*, void* data) -> double {
          auto* c = static_cast<Context*>(data);
          try {
            double q = kRefusedObjective;
            try {
              q = c->self->objective(c->self->simulate(c->self->to_keys(std::vector<double>(u, u + n))));
            } catch (const Refused&) {
              // A point the scenario refuses (free keys that must keep an order, say) is as bad
              // as can be: the simplex moves away from it.
              ++c->self->refused_;
            }
            ++c->evaluations;
            ++c->self->evaluations_;
            if (c->self->o_.on_evaluation) c->self->o_.on_evaluation(c->evaluations, c->self->o_.max_evaluations, q);
            return q;
          } catch (...) {
            c->error = std::current_exception();
            throw nlopt::forced_stop();
          }
        },
        &ctx);
    std::vector<double> u = to_unit(start);
    double best = 0;
    try {
      if (opt.optimize(u, best) == nlopt::MAXEVAL_REACHED) stopped_at_max_ = true;
    } catch (const nlopt::forced_stop&) {
      if (ctx.error) std::rethrow_exception(ctx.error);
      throw;
    } catch (const nlopt::roundoff_limited&) {
      // Converged as far as the objective's resolution allows: u holds the best point.
    }
    if (ctx.error) std::rethrow_exception(ctx.error);
    return to_keys(u);
  }

  std::vector<double> to_unit(const std::vector<double>& x) const {
    std::vector<double> u(x.size());
    for (std::size_t k = 0; k < x.size(); ++k) {
      u[k] = std::clamp((x[k] - o_.free[k].lo) / (o_.free[k].hi - o_.free[k].lo), 0.0, 1.0);
    }
    return u;
  }
  std::vector<double> to_keys(const std::vector<double>& u) const {
    std::vector<double> x(u.size());
    for (std::size_t k = 0; k < u.size(); ++k) x[k] = o_.free[k].lo + u[k] * (o_.free[k].hi - o_.free[k].lo);
    return x;
  }

  const std::vector<double>& weights() const { return weight_; }
  const std::vector<double>& ses() const { return se_; }
  int evaluations() const { return evaluations_; }
  int refused() const { return refused_; }
  bool stopped_at_max() const { return stopped_at_max_; }

 private:
  const CalibrateOptions& o_;
  const std::vector<StatisticDef>& catalog_;
  const Observed& observed_;
  std::vector<double> weight_, se_;
  int evaluations_ = 0;
  int refused_ = 0;
  bool stopped_at_max_ = false;
};

// The value of a key in the resolved scenario (its JSON form), or NaN.
double scenario_value(const Scenario& s, const std::string& key) {
  const nlohmann::json j = s.to_json();
  const nlohmann::json* node = &j;
  std::stringstream parts(key);
  for (std::string part; std::getline(parts, part, '.');) {
    if (!node->is_object() || !node->contains(part)) return kNaN;
    node = &(*node)[part];
  }
  return node->is_number() ? node->get<double>() : kNaN;
}

}  // namespace

CalibrationResult calibrate(const CalibrateOptions& o) {
  if (o.free.empty()) throw InputError("calibrate: name at least one --free KEY=LO:HI");
  for (std::size_t a = 0; a < o.free.size(); ++a) {
    for (std::size_t b = a + 1; b < o.free.size(); ++b) {
      if (o.free[a].key == o.free[b].key) throw InputError("--free " + o.free[b].spec + ": " + o.free[b].key + " is already free");
    }
  }
  const Scenario base = Scenario::load(o.scenario_path, o.sets);
  const std::vector<StatisticDef> catalog = statistic_catalog(base);
  const Observed observed = read_observed(o.observed_path, base, catalog);

  // Each free key must be a number the scenario accepts over the whole range: load it at both
  // ends (the scenario's own checks, with its messages).
  std::vector<double> start(o.free.size());
  for (std::size_t k = 0; k < o.free.size(); ++k) {
    const FreeParameter& f = o.free[k];
    for (const double v : {f.lo, f.hi}) {
      std::vector<std::string> sets = o.sets;
      sets.push_back(f.key + "=" + shortest(v));
      try {
        (void)Scenario::load(o.scenario_path, sets);
      } catch (const InputError& e) {
        throw InputError("--free " + f.spec + ": the scenario does not accept " + f.key + " = " + shortest(v) + ": " +
                         e.what());
      }
    }
    // And inside it, at a value no integer key takes (integer keys cannot be calibrated).
    {
      std::vector<std::string> sets = o.sets;
      const double inside = f.lo + 0.6180339887498949 * (f.hi - f.lo);
      sets.push_back(f.key + "=" + shortest(inside));
      try {
        (void)Scenario::load(o.scenario_path, sets);
      } catch (const InputError& e) {
        throw InputError("--free " + f.spec + ": " + f.key + " must take any number between LO and HI, but " +
                         shortest(inside) + " is refused: " + e.what());
      }
    }
    const double current = scenario_value(base, f.key);
    start[k] = std::isnan(current) ? 0.5 * (f.lo + f.hi) : std::clamp(current, f.lo, f.hi);
  }

  Calibrator cal(o, catalog, observed);
  CalibrationResult res;
  res.labels = base.labels;
  res.replicates = o.replicates;
  res.seed = o.seed;
  auto point_text = [&](const std::vector<double>& x) {
    std::string t;
    for (std::size_t k = 0; k < x.size(); ++k) t += (k ? ", " : "") + o.free[k].key + " = " + shortest(x[k]);
    return t;
  };
  auto simulate_or_fail = [&](const std::vector<double>& x, const std::string& what, bool keep = false) {
    try {
      return cal.simulate(x, keep);
    } catch (const Refused& r) {
      throw InputError("calibrate: the scenario refuses the " + what + " (" + point_text(x) + "): " + r.why);
    }
  };
  // Two-step SMM: weights at the start, fit; weights at that fit, fit again from there with a
  // smaller simplex (which also restarts Nelder-Mead, guarding against a collapsed simplex).
  cal.set_weights(simulate_or_fail(start, "start"));
  {
    const auto usable = static_cast<std::size_t>(
        std::count_if(cal.weights().begin(), cal.weights().end(), [](double x) { return x > 0; }));
    if (usable < o.free.size()) {
      throw InputError(o.observed_path + ": only " + std::to_string(usable) + " of the " +
                       std::to_string(observed.statistics.size()) +
                       " observed statistics vary between the simulated trials at the start (a statistic that "
                       "does not vary needs a given se), but " + std::to_string(o.free.size()) +
                       " free keys need at least as many: give more statistics or free fewer keys");
    }
  }
  const std::vector<double> first = cal.minimize(start, 0.2);
  cal.set_weights(simulate_or_fail(first, "first step's estimate"));
  const std::vector<double> est = cal.minimize(first, 0.05);
  const Simulated at = simulate_or_fail(est, "estimate", true);
  res.objective = cal.objective(at);

  // Observed statistics left out of the objective.
  std::vector<std::size_t> used;
  for (std::size_t j = 0; j < observed.statistics.size(); ++j) {
    const StatisticDef& def = catalog[observed.statistics[j].def];
    if (cal.weights()[j] > 0) {
      used.push_back(j);
    } else {
      res.ignored.push_back(def.name + ": " + (std::isnan(at.mean[j]) ? "never defined in the simulation"
                                                                       : "does not vary in the simulation (give se to use it)"));
    }
  }

  // Jacobian of the simulated means by central differences (common random numbers), 5% of
  // each range, one-sided at a bound or where the scenario refuses the neighbouring point.
  const auto p = static_cast<Eigen::Index>(o.free.size());
  const auto m = static_cast<Eigen::Index>(used.size());
  Eigen::MatrixXd G(m, p);
  // The same differences for the parts of each arm's change: row arm * kParts + part.
  Eigen::MatrixXd Gparts(2 * static_cast<Eigen::Index>(kParts), p);
  Simulated at_means = at;
  at_means.values.resize(0, 0);
  for (Eigen::Index k = 0; k < p; ++k) {
    const FreeParameter& f = o.free[static_cast<std::size_t>(k)];
    const double h = 0.05 * (f.hi - f.lo);
    std::vector<double> up = est, down = est;
    const auto ku = static_cast<std::size_t>(k);
    up[ku] = std::min(f.hi, est[ku] + h);
    down[ku] = std::max(f.lo, est[ku] - h);
    auto side = [&](std::vector<double>& x) {
      try {
        return cal.simulate(x);
      } catch (const Refused&) {
        x = est;
        return at_means;
      }
    };
    const Simulated a = side(up), b = side(down);
    const double dx = up[ku] - down[ku];
    for (Eigen::Index i = 0; i < m; ++i) {
      const std::size_t j = used[static_cast<std::size_t>(i)];
      const double d = a.mean[j] - b.mean[j];
      G(i, k) = std::isnan(d) || !(dx > 0) ? 0.0 : d / dx;
    }
    for (std::size_t arm = 0; arm < 2; ++arm) {
      for (std::size_t q = 0; q < kParts; ++q) {
        const double d = a.part_mean[arm][q] - b.part_mean[arm][q];
        Gparts(static_cast<Eigen::Index>(arm * kParts + q), k) = std::isnan(d) || !(dx > 0) ? 0.0 : d / dx;
      }
    }
  }
  // Omega: one trial's covariance of the used statistics at the estimate, with a given SE in
  // place of the simulated SD (correlations kept).
  Eigen::MatrixXd omega(m, m);
  for (Eigen::Index a = 0; a < m; ++a) {
    for (Eigen::Index b = 0; b < m; ++b) {
      const std::size_t ja = used[static_cast<std::size_t>(a)], jb = used[static_cast<std::size_t>(b)];
      double c = at.cov(ja, jb);
      if (std::isnan(c)) c = 0;
      auto scale = [&](std::size_t j) {
        const auto& se = observed.statistics[j].se;
        return se && at.sd[j] > 0 ? *se / at.sd[j] : 1.0;
      };
      c *= scale(ja) * scale(jb);
      if (a == b && observed.statistics[ja].se && !(at.sd[ja] > 0)) c = *observed.statistics[ja].se * *observed.statistics[ja].se;
      omega(a, b) = c;
    }
  }
  Eigen::VectorXd w(m);
  for (Eigen::Index i = 0; i < m; ++i) w(i) = cal.weights()[used[static_cast<std::size_t>(i)]];
  // Identification is judged with each key scaled to its search range (so that units do not
  // decide it): A_s = D G'WG D, D = diag(ranges). Directions with eigenvalues below 1e-10 of the
  // largest form the null space; a key with a component in it is not identified. The sandwich
  // uses the Moore-Penrose inverse of A_s, which gives the identified keys (those orthogonal to
  // the null space) their correct variance.
  Eigen::VectorXd range(p);
  for (Eigen::Index k = 0; k < p; ++k) range(k) = o.free[static_cast<std::size_t>(k)].hi - o.free[static_cast<std::size_t>(k)].lo;
  const Eigen::MatrixXd Gs = G * range.asDiagonal();
  const Eigen::MatrixXd WGs = w.asDiagonal() * Gs;
  const Eigen::MatrixXd As = Gs.transpose() * WGs;
  const Eigen::MatrixXd Bs = WGs.transpose() * omega * WGs;
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(As);
  const Eigen::VectorXd lambda = eig.eigenvalues();  // ascending
  const double lambda_max = p > 0 ? lambda(p - 1) : 0.0;
  Eigen::MatrixXd As_pinv = Eigen::MatrixXd::Zero(p, p), null_projection = Eigen::MatrixXd::Zero(p, p);
  for (Eigen::Index i = 0; i < p; ++i) {
    const Eigen::VectorXd v = eig.eigenvectors().col(i);
    if (lambda_max > 0 && lambda(i) > 1e-10 * lambda_max) {
      As_pinv += v * v.transpose() / lambda(i);
    } else {
      null_projection += v * v.transpose();
    }
  }
  const Eigen::MatrixXd V = range.asDiagonal() *
                            ((1.0 + 1.0 / static_cast<double>(o.replicates)) * As_pinv * Bs * As_pinv) *
                            range.asDiagonal();
  std::vector<bool> unidentified(static_cast<std::size_t>(p));
  for (Eigen::Index k = 0; k < p; ++k) unidentified[static_cast<std::size_t>(k)] = null_projection(k, k) > 1e-3;

  res.correlation.assign(static_cast<std::size_t>(p), std::vector<double>(static_cast<std::size_t>(p), kNaN));
  for (Eigen::Index k = 0; k < p; ++k) {
    const auto ku = static_cast<std::size_t>(k);
    const FreeParameter& f = o.free[ku];
    ParameterEstimate e;
    e.key = f.key;
    e.lo = f.lo;
    e.hi = f.hi;
    e.start = start[ku];
    e.estimate = est[ku];
    const double range_k = f.hi - f.lo;
    if (unidentified[ku]) {
      e.se = e.ci_low = e.ci_high = kNaN;
      e.identified = false;
      std::string with;
      for (Eigen::Index l = 0; l < p; ++l) {
        if (l != k && std::abs(null_projection(k, l)) > 1e-3) with += (with.empty() ? "" : ", ") + o.free[static_cast<std::size_t>(l)].key;
      }
      e.flags.push_back(with.empty() ? "not identified: none of the used statistics changes with it"
                                     : "not identified: the statistics tell only its combination with " + with);
    } else {
      e.se = V(k, k) >= 0 ? std::sqrt(V(k, k)) : kNaN;
      // Wald interval, cut to the search range (the model is not defined beyond it), with a flag.
      const double wald_low = e.estimate - 1.959963984540054 * e.se, wald_high = e.estimate + 1.959963984540054 * e.se;
      e.ci_low = std::max(f.lo, wald_low);
      e.ci_high = std::min(f.hi, wald_high);
      if (2 * 1.959963984540054 * e.se > range_k) {
        e.identified = false;
        e.flags.push_back("weakly identified: the 95% interval is wider than the search range (shown cut to it)");
      } else if (wald_low < f.lo || wald_high > f.hi) {
        e.flags.push_back("the 95% interval reaches a bound of the search range (shown cut to it)");
      }
      for (Eigen::Index l = 0; l < p; ++l) {
        if (unidentified[static_cast<std::size_t>(l)]) continue;
        const double r = V(k, l) / std::sqrt(V(k, k) * V(l, l));
        res.correlation[ku][static_cast<std::size_t>(l)] = r;
        if (l != k && std::abs(r) > 0.9) {
          e.identified = false;
          e.flags.push_back("strongly correlated with " + o.free[static_cast<std::size_t>(l)].key + " (r = " + fmt("%.2f", r) +
                            "): the data tell mainly their combination");
        }
      }
    }
    if (e.estimate - f.lo < 1e-3 * range_k || f.hi - e.estimate < 1e-3 * range_k) {
      e.flags.push_back("estimate on a bound of the search range: widen it");
    }
    res.identified = res.identified && e.identified;
    res.parameters.push_back(e);
  }

  // The parts of each arm's change, and the observed change against the expected one.
  // Delta method; undefined when the part moves along a direction the statistics do not identify.
  auto delta_se = [&](Eigen::Index row) {
    const Eigen::VectorXd g = Gparts.row(row).transpose();
    const Eigen::VectorXd gs = range.asDiagonal() * g;
    if ((null_projection * gs).norm() > 1e-6 * gs.norm()) return kNaN;
    const double v = g.dot(V * g);
    return v >= 0 ? std::sqrt(v) : kNaN;
  };
  for (const std::size_t arm : {std::size_t{1}, std::size_t{0}}) {
    const std::string arm_name = arm == 1 ? "treatment" : "control";
    for (std::size_t q = 1; q < kParts; ++q) {
      res.parts.push_back({arm_name, kPartNames[q], at.part_mean[arm][q],
                           delta_se(static_cast<Eigen::Index>(arm * kParts + q))});
    }
    std::optional<double> base_mean, final_mean;
    for (const ObservedStatistic& ob : observed.statistics) {
      if (catalog[ob.def].name == arm_name + ".baseline_mean") base_mean = ob.value;
      if (catalog[ob.def].name == arm_name + ".final_mean") final_mean = ob.value;
    }
    if (base_mean && final_mean) {
      ChangeAccount acc;
      acc.arm = arm_name;
      acc.observed = *final_mean - *base_mean;
      acc.expected = at.part_mean[arm][0];
      acc.expected_se = delta_se(static_cast<Eigen::Index>(arm * kParts));
      acc.chance = acc.observed - acc.expected;
      acc.trial_sd = at.part_sd[arm][0];
      // Chance against the spread of one trial's change and the expectation's own uncertainty.
      acc.z = acc.chance / std::sqrt(acc.trial_sd * acc.trial_sd + acc.expected_se * acc.expected_se);
      res.accounts.push_back(acc);
    }
  }

  for (std::size_t j = 0; j < observed.statistics.size(); ++j) {
    const ObservedStatistic& ob = observed.statistics[j];
    const StatisticDef& def = catalog[ob.def];
    FitRow row;
    row.name = def.name;
    row.description = def.description;
    row.observed = ob.value;
    row.weight_se = cal.ses()[j];
    row.se_given = ob.se.has_value();
    row.simulated_mean = at.mean[j];
    row.simulated_sd = at.sd[j];
    row.range_low = at.quantile(j, 0.025);
    row.range_high = at.quantile(j, 0.975);
    row.used = cal.weights()[j] > 0;
    row.outside = row.used && !(ob.value >= row.range_low && ob.value <= row.range_high);
    res.fit.push_back(row);
  }
  res.evaluations = cal.evaluations();
  res.refused = cal.refused();
  res.converged = !cal.stopped_at_max();
  return res;
}

nlohmann::json CalibrationResult::to_json(const CalibrateOptions& o) const {
  nlohmann::json params = nlohmann::json::array();
  for (const ParameterEstimate& e : parameters) {
    params.push_back({{"key", e.key},
                      {"lo", e.lo},
                      {"hi", e.hi},
                      {"start", e.start},
                      {"estimate", e.estimate},
                      {"se", json_finite(e.se)},
                      {"ci95", {json_finite(e.ci_low), json_finite(e.ci_high)}},
                      {"identified", e.identified},
                      {"flags", e.flags}});
  }
  nlohmann::json corr = nlohmann::json::array();
  for (const auto& row : correlation) {
    nlohmann::json r = nlohmann::json::array();
    for (const double x : row) r.push_back(json_finite(x));
    corr.push_back(r);
  }
  nlohmann::json fit_rows = nlohmann::json::array();
  for (const FitRow& f : fit) {
    fit_rows.push_back({{"statistic", f.name},
                        {"description", f.description},
                        {"observed", f.observed},
                        {"se", json_finite(f.weight_se)},
                        {"se_source", f.se_given ? "observed file" : "simulated"},
                        {"simulated_mean", json_finite(f.simulated_mean)},
                        {"simulated_sd", json_finite(f.simulated_sd)},
                        {"simulated_range95", {json_finite(f.range_low), json_finite(f.range_high)}},
                        {"used", f.used},
                        {"outside_range", f.outside}});
  }
  nlohmann::json parts_json = nlohmann::json::array();
  for (const ChangePart& c : parts) {
    parts_json.push_back({{"arm", c.arm}, {"part", c.part}, {"estimate", json_finite(c.value)}, {"se_from_parameters", json_finite(c.se)}});
  }
  nlohmann::json accounts_json = nlohmann::json::array();
  for (const ChangeAccount& a : accounts) {
    accounts_json.push_back({{"arm", a.arm},
                             {"observed_change", a.observed},
                             {"expected_change", json_finite(a.expected)},
                             {"expected_change_se_from_parameters", json_finite(a.expected_se)},
                             {"chance", json_finite(a.chance)},
                             {"one_trial_sd", json_finite(a.trial_sd)},
                             {"chance_z", json_finite(a.z)}});
  }
  return {{"trialsim_version", TRIALSIM_VERSION},
          {"labels", labels.to_json()},
          {"method", "simulated method of moments, two-step diagonal weights, Nelder-Mead; sandwich standard errors"},
          {"scenario", o.scenario_path},
          {"observed", o.observed_path},
          {"sets", o.sets},
          {"seed", seed},
          {"replicates_per_evaluation", replicates},
          {"evaluations", evaluations},
          {"refused_points", refused},
          {"objective", objective},
          {"identified", identified},
          {"converged", converged},
          {"parameters", params},
          {"correlation", corr},
          {"fit", fit_rows},
          {"change_parts", parts_json},
          {"change_accounts", accounts_json},
          {"ignored", ignored}};
}

std::string CalibrationResult::to_table(const CalibrateOptions& o) const {
  std::ostringstream out;
  char line[512];
  out << "Calibration of " << o.scenario_path << " to " << o.observed_path << "\n";
  std::snprintf(line, sizeof line,
                "Simulated method of moments: %d evaluations of %llu trials each (seed %llu), objective %.4g\n\n",
                evaluations, static_cast<unsigned long long>(replicates), static_cast<unsigned long long>(seed), objective);
  out << line;
  std::snprintf(line, sizeof line, "%-34s %10s %10s %10s %23s\n", "parameter", "start", "estimate", "SE", "95% interval");
  out << line;
  for (const ParameterEstimate& e : parameters) {
    const std::string ci = std::isfinite(e.se) ? "[" + fmt("%.4g", e.ci_low) + ", " + fmt("%.4g", e.ci_high) + "]" : "-";
    std::snprintf(line, sizeof line, "%-34s %10.4g %10.4g %10s %23s\n", e.key.c_str(), e.start, e.estimate,
                  std::isfinite(e.se) ? fmt("%.3g", e.se).c_str() : "-", ci.c_str());
    out << line;
    for (const std::string& f : e.flags) out << "    ! " << f << "\n";
  }
  out << "\nGoodness of fit at the estimate (simulated 95% range of one trial; * = observed outside it)\n";
  std::snprintf(line, sizeof line, "%-48s %9s %9s %9s %21s\n", "statistic", "observed", "SE", "simulated", "95% range");
  out << line;
  auto num = [](const char* f, double v) { return std::isfinite(v) ? fmt(f, v) : std::string("-"); };
  for (const FitRow& f : fit) {
    const std::string range =
        std::isfinite(f.range_low) ? "[" + fmt("%.4g", f.range_low) + ", " + fmt("%.4g", f.range_high) + "]" : "-";
    std::snprintf(line, sizeof line, "%-48s %9.4g %8s%s %9s %21s %s\n", f.name.c_str(), f.observed,
                  num("%.3g", f.weight_se).c_str(), f.se_given ? "g" : " ", num("%.4g", f.simulated_mean).c_str(),
                  range.c_str(), !f.used ? "(not used)" : f.outside ? "*" : "");
    out << line;
  }
  out << "(SE: one trial's simulated SD at the start of the last step, or g = given in the observed file)\n";
  if (!parts.empty()) {
    out << "\nWhere each arm's change from baseline to the last visit comes from, at the estimate (" << labels.unit
        << ";\nmean over simulated trials, SE from the parameters' uncertainty)\n";
    std::snprintf(line, sizeof line, "%-20s %18s %18s\n", "part", labels.treatment.c_str(), labels.control.c_str());
    out << line;
    for (std::size_t q = 0; q + 1 < kParts; ++q) {
      const ChangePart& t = parts[q];
      const ChangePart& c = parts[q + kParts - 1];
      auto two = [](double v) { return std::isfinite(v) ? fmt("%.2f", v) : std::string("-"); };
      auto cell = [&](const ChangePart& x) { return two(x.value) + " (" + two(x.se) + ")"; };
      std::snprintf(line, sizeof line, "%-20s %18s %18s\n", t.part.c_str(), cell(t).c_str(), cell(c).c_str());
      out << line;
    }
    auto two = [](double v) { return std::isfinite(v) ? fmt("%.2f", v) : std::string("-"); };
    for (const ChangeAccount& a : accounts) {
      out << a.arm << ": observed change " << two(a.observed) << " = expected " << two(a.expected) << " (SE "
          << two(a.expected_se) << ") + chance " << two(a.chance) << " (one trial's SD " << two(a.trial_sd)
          << ", z = " << two(a.z) << ")\n";
    }
  }
  for (const std::string& i : ignored) out << "not used: " << i << "\n";
  if (refused > 0) {
    out << refused << " evaluations fell on points the scenario refuses (e.g. free keys out of order); they were "
           "treated as the worst fit\n";
  }
  if (!converged) out << "\nWARNING: Nelder-Mead stopped at --max-evals before converging; raise it.\n";
  if (!identified) out << "\nWARNING: some parameters are not well identified by these statistics (see ! above).\n";
  return out.str();
}

std::string CalibrationResult::scenario_toml(const CalibrateOptions& o, const std::string& out_path) const {
  namespace fs = std::filesystem;
  const fs::path out_dir = fs::absolute(out_path).parent_path();
  // Relative to the written file where there is such a path (so the pair can move together),
  // absolute otherwise.
  std::string base = fs::relative(fs::absolute(o.scenario_path), out_dir).generic_string();
  if (base.empty()) base = fs::absolute(o.scenario_path).generic_string();
  std::ostringstream t;
  t << "# Calibrated scenario, written by trialsim " << TRIALSIM_VERSION << ":\n#   trialsim calibrate "
    << o.scenario_path << " --observed " << o.observed_path;
  for (const FreeParameter& f : o.free) t << " --free " << f.spec;
  for (const std::string& s : o.sets) {
    std::string quoted;  // for a POSIX shell: ' closes, \' is a quote, ' reopens
    for (const char ch : s) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    t << " --set '" << quoted << "'";
  }
  t << " --seed " << seed << " --reps " << replicates << "\n";
  t << "# Simulated method of moments (see README, \"Calibrate to an observed trial\"): the free keys below\n"
       "# are the estimates, with 95% intervals from the sandwich standard errors; everything else is the\n"
    << (o.sets.empty() ? "# original scenario's.\n" : "# original scenario's, with the --set keys above.\n");
  t << "extends = \"" << base << "\"\n";
  // Keys by table, in first-seen order.
  std::vector<std::pair<std::string, std::vector<std::string>>> tables;
  auto put = [&](const std::string& key, const std::string& line) {
    const auto dot = key.rfind('.');
    const std::string table = dot == std::string::npos ? "" : key.substr(0, dot);
    const std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
    auto it = std::find_if(tables.begin(), tables.end(), [&](const auto& x) { return x.first == table; });
    if (it == tables.end()) {
      tables.push_back({table, {}});
      it = tables.end() - 1;
    }
    it->second.push_back(leaf + " = " + line);
  };
  for (const std::string& s : o.sets) {
    const auto eq = s.find('=');
    const std::string key = s.substr(0, eq), value = s.substr(eq + 1);
    if (std::find_if(o.free.begin(), o.free.end(), [&](const FreeParameter& f) { return f.key == key; }) != o.free.end()) continue;
    put(key, toml_value_text(value) + "  # --set");
  }
  for (const ParameterEstimate& e : parameters) {
    std::string c = "  # calibrated";
    if (std::isfinite(e.se)) c += ", 95% interval [" + fmt("%.4g", e.ci_low) + ", " + fmt("%.4g", e.ci_high) + "]";
    if (!e.flags.empty()) c += "; " + e.flags.front();
    put(e.key, shortest(e.estimate) + c);
  }
  for (const auto& [table, lines] : tables) {
    t << "\n";
    if (!table.empty()) t << "[" << table << "]\n";
    for (const std::string& l : lines) t << l << "\n";
  }
  return t.str();
}

}  // namespace trialsim
