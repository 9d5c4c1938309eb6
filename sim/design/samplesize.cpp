#include "sim/design/samplesize.hpp"

#include "sim/io/config_reader.hpp"
#include "sim/engine/summary.hpp"

#include <Eigen/Dense>
#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

namespace trialsim {
namespace {

using nlohmann::json;

const boost::math::normal kStdNormal;
constexpr double kZ95 = 1.959963984540054;

double phi_cdf(double x) { return boost::math::cdf(kStdNormal, x); }

// SplitMix64 finalizer (Steele, Lea & Flood, OOPSLA 2014): the seed of the streams used at one
// n. Every n gets its own independent trials, so the binomial fit below sees independent
// points and its interval is honest (common random numbers would make the points look
// smoother than their Monte Carlo error warrants).
std::uint64_t seed_for(std::uint64_t seed, int n) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (static_cast<std::uint64_t>(n) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Binomial probit regression of rejections on sqrt(n) by iteratively reweighted least squares
// (Finney, Probit Analysis, 3rd ed. 1971; McCullagh & Nelder, Generalized Linear Models, 1989,
// sec. 4.4). Under the normal approximation to a two-sample test, power = Phi(delta sqrt(n) /
// (2 sigma) - z_{1-alpha/2}) (z_{1-alpha} one-sided, delta less the margin), so probit(power) is
// close to linear in sqrt(n).
ProbitFit fit_probit(const std::vector<const SampleSizePoint*>& pts) {
  const std::size_t k = pts.size();
  Eigen::MatrixXd x(k, 2);
  Eigen::VectorXd m(k), y(k);
  for (std::size_t i = 0; i < k; ++i) {
    x(static_cast<Eigen::Index>(i), 0) = 1.0;
    x(static_cast<Eigen::Index>(i), 1) = std::sqrt(static_cast<double>(pts[i]->n));
    m(static_cast<Eigen::Index>(i)) = static_cast<double>(pts[i]->replicates);
    y(static_cast<Eigen::Index>(i)) = static_cast<double>(pts[i]->rejections) / static_cast<double>(pts[i]->replicates);
  }
  // Start from the probits of the (shrunken) observed proportions.
  Eigen::VectorXd eta(k);
  for (Eigen::Index i = 0; i < eta.size(); ++i) {
    const double p = (y(i) * m(i) + 0.5) / (m(i) + 1.0);
    eta(i) = boost::math::quantile(kStdNormal, p);
  }
  Eigen::Vector2d beta = (x.transpose() * x).ldlt().solve(x.transpose() * eta);
  Eigen::Matrix2d info;
  for (int iter = 0; iter < 100; ++iter) {
    eta = x * beta;
    Eigen::VectorXd w(k), z(k);
    for (Eigen::Index i = 0; i < eta.size(); ++i) {
      const double mu = std::clamp(phi_cdf(eta(i)), 1e-12, 1.0 - 1e-12);
      const double d = std::max(boost::math::pdf(kStdNormal, eta(i)), 1e-300);
      w(i) = m(i) * d * d / (mu * (1.0 - mu));
      z(i) = eta(i) + (y(i) - mu) / d;
    }
    info = x.transpose() * w.asDiagonal() * x;
    const Eigen::Vector2d next = info.ldlt().solve(x.transpose() * w.asDiagonal() * z);
    const double change = (next - beta).cwiseAbs().maxCoeff();
    beta = next;
    if (change < 1e-10) break;
  }
  // The Fisher information at the estimate.
  eta = x * beta;
  Eigen::VectorXd w(k);
  for (Eigen::Index i = 0; i < eta.size(); ++i) {
    const double mu = std::clamp(phi_cdf(eta(i)), 1e-12, 1.0 - 1e-12);
    const double d = boost::math::pdf(kStdNormal, eta(i));
    w(i) = m(i) * d * d / (mu * (1.0 - mu));
  }
  info = x.transpose() * w.asDiagonal() * x;
  const Eigen::Matrix2d cov = info.inverse();
  ProbitFit f;
  f.a = beta(0);
  f.b = beta(1);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) f.cov[r][c] = cov(r, c);
  f.points_used = static_cast<int>(k);
  return f;
}

std::string format(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

double ProbitFit::power(double n) const { return phi_cdf(a + b * std::sqrt(n)); }

namespace {
double eta_se(const ProbitFit& f, double n) {
  const double s = std::sqrt(n);
  return std::sqrt(std::max(0.0, f.cov[0][0] + 2 * s * f.cov[0][1] + s * s * f.cov[1][1]));
}
}  // namespace

double ProbitFit::lower(double n) const { return phi_cdf(a + b * std::sqrt(n) - kZ95 * eta_se(*this, n)); }
double ProbitFit::upper(double n) const { return phi_cdf(a + b * std::sqrt(n) + kZ95 * eta_se(*this, n)); }

SampleSizeResult find_sample_size(const SampleSizeOptions& o) {
  // The method must be one the analysis knows; only it is run, which is all the search needs.
  const std::optional<Method> known = method_from_name(o.method);
  if (!known) {
    std::string names;
    for (const auto& name : all_method_names()) names += (names.empty() ? "" : ", ") + name;
    throw InputError("--method: unknown analysis '" + o.method + "'; expected one of " + names);
  }
  const Method method = *known;
  if (!(o.target_power > 0 && o.target_power < 1)) {
    throw InputError("--target-power: must be in (0, 1), got " + format("%g", o.target_power));
  }
  if (o.step < 1) throw InputError("--step: must be >= 1, got " + std::to_string(o.step));

  const Scenario base = Scenario::load(o.scenario_path, o.sets);
  const json resolved = base.to_json();
  std::string pointer = "/";
  for (const char c : o.key) pointer += c == '.' ? '/' : c;
  const json::json_pointer ptr(pointer);
  if (!resolved.contains(ptr) || !resolved.at(ptr).is_number_integer()) {
    throw InputError("--key " + o.key + ": not an integer scenario key (e.g. trial.consented)");
  }
  const double alpha = base.trial.alpha;
  if (o.target_power <= alpha) {
    throw InputError("--target-power: must be above the significance level " + format("%g", alpha) + ", got " +
                     format("%g", o.target_power));
  }

  // With a true effect the null hypothesis includes (no effect for the usual two-sided test),
  // power stays at or below alpha whatever the size: say so now rather than after doubling the
  // size up to --hi.
  const Hypothesis h = base.trial.hypothesis();
  if (h.null_holds(base.true_effect())) {
    const std::string null = h.sides == 2 ? "= " + format("%g", h.margin) : "<= " + format("%g", h.margin);
    throw InputError(o.scenario_path + ": the true effect at the endpoint is " + format("%g", base.true_effect()) +
                     " " + base.labels.unit + " (treatment.effect_mmHg), inside the null hypothesis (effect " + null +
                     ", trial.sides and trial.margin), so " + o.method + "'s power stays " +
                     (h.sides == 2 ? "at" : "at or below") + " alpha (" + format("%g", alpha) +
                     ") at any size; set the effect to look for, e.g. --set treatment.effect_mmHg=5");
  }

  const int step = o.step;
  auto up = [&](double v) { return static_cast<int>(std::ceil(v / step - 1e-9)) * step; };
  auto nearest = [&](double v) { return std::max(step, static_cast<int>(std::lround(v / step)) * step); };
  int lo = o.lo > 0 ? up(o.lo) : step;
  const int hi = o.hi > 0 ? (o.hi / step) * step : 100000 / step * step;
  if (lo > hi) throw InputError("--lo/--hi: empty search range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");

  std::map<int, SampleSizePoint> done;
  std::map<int, json> scenarios;
  const std::string methods_set = "analysis.methods=[\"" + o.method + "\"]";

  // For the progress display: the search brackets the target (each doubling or halving one
  // value, one or two usually), then refines in rounds of up to three values near the fitted
  // answer until the fit lands on simulated values (at most kRounds rounds; three usually).
  constexpr int kRounds = 8, kPerRound = 3, kUsualRounds = 3;
  bool bracketing = true;
  int round = 0, in_round = 0;
  double seconds_done = 0;
  auto evaluate = [&](int n) -> const SampleSizePoint& {
    if (auto it = done.find(n); it != done.end()) return it->second;
    std::vector<std::string> sets = o.sets;
    sets.push_back(methods_set);
    const Scenario s = Scenario::load(o.scenario_path, sets, {o.key + "=" + std::to_string(n)});
    EngineOptions e;
    e.replicates = o.replicates;
    e.seed = seed_for(o.seed, n);
    e.threads = o.threads;
    e.cancel = o.cancel;
    if (o.progress) {
      const int points_done = static_cast<int>(done.size());
      const int rest_of_round = kPerRound - 1 - in_round;
      const int left = bracketing ? 1 + kUsualRounds * kPerRound : rest_of_round + kPerRound * std::max(0, kUsualRounds - 1 - round);
      const int left_max = bracketing ? -1 : rest_of_round + kPerRound * (kRounds - 1 - round);
      const std::string item = o.key + "=" + std::to_string(n);
      e.on_progress = [&, item, points_done, left, left_max](std::uint64_t trials_done, std::uint64_t total) {
        o.progress({item, trials_done, total, points_done, left, left_max, seconds_done, bracketing ? "bracketing" : "refining"});
      };
    }
    const auto start = std::chrono::steady_clock::now();
    SummaryAccumulator summary(s);
    if (o.precision.active()) {
      PrecisionTarget t = o.precision;
      t.methods = {method};
      PrecisionReport report;
      summary = run_to_precision(s, e, t, report);
    } else {
      summary = run_replicates(s, e);
    }
    const Performance perf = performance(summary.method(method), summary.replicates(), s.true_effect());
    SampleSizePoint p;
    p.n = n;
    p.replicates = summary.replicates();
    p.power = perf.power;
    p.power_mcse = perf.power_mcse;
    p.rejections = static_cast<std::uint64_t>(std::llround(summary.method(method).reject.mean() * static_cast<double>(p.replicates)));
    p.randomized = summary.randomized().mean();
    p.completed_treatment = summary.arm(Arm::treatment).completed.mean();
    p.completed_control = summary.arm(Arm::control).completed.mean();
    scenarios[n] = s.to_json();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    seconds_done += secs;
    if (o.log) {
      o.log(o.key + "=" + std::to_string(n) + ": power " + format("%.4f", p.power) + " (MC SE " + format("%.4f", p.power_mcse) +
            ", " + std::to_string(p.replicates) + " trials, " + format("%.1f s", secs) + ")");
    }
    return done.emplace(n, p).first->second;
  };

  // 1. Bracket the target by doubling or halving from the scenario's own value.
  const int n0 = std::clamp(nearest(static_cast<double>(resolved.at(ptr).get<std::int64_t>())), lo, hi);
  bool at_lower_limit = false;
  if (evaluate(n0).power < o.target_power) {
    for (int n = n0;;) {
      if (n >= hi) {
        const SampleSizePoint& p = done.at(n);
        throw InputError("--target-power: " + o.method + " reaches only " + format("%.3f", p.power) + " (MC SE " +
                         format("%.3f", p.power_mcse) + ") at " + o.key + "=" + std::to_string(n) +
                         ", the top of the search range; raise --hi or check the effect size");
      }
      n = std::min(hi, up(2.0 * n));
      if (evaluate(n).power >= o.target_power) break;
    }
  } else {
    for (int n = n0;;) {
      if (n <= lo) {
        at_lower_limit = true;
        break;
      }
      const int next = std::max(lo, up(n / 2.0));
      try {
        if (evaluate(next).power < o.target_power) break;
      } catch (const InputError&) {
        // Too small to be a valid design (e.g. nobody reaches randomization): the search
        // cannot go lower.
        lo = next + step;
        at_lower_limit = true;
        break;
      }
      n = next;
    }
  }

  bracketing = false;
  SampleSizeResult r;
  r.labels = base.labels;
  r.key = o.key;
  r.method = o.method;
  r.target_power = o.target_power;
  const double eta_target = boost::math::quantile(kStdNormal, o.target_power);

  if (at_lower_limit) {
    // The target is met at the smallest n searched; nothing to interpolate.
    r.at_lower_limit = true;
    r.n = r.n_low = r.n_high = done.begin()->first;
    for (auto& [n, p] : done) p.used_in_fit = false;
  } else {
    // 2. Fit near the target and evaluate where the fit puts it, and either side of it, until
    // the fit's answer lands on points already simulated.
    auto local_fit = [&](double n_pred) {
      std::vector<const SampleSizePoint*> near;
      for (auto& [n, p] : done) {
        p.used_in_fit = n >= n_pred / 1.5 && n <= n_pred * 1.5;
        if (p.used_in_fit) near.push_back(&p);
      }
      if (near.size() < 3) {
        std::vector<SampleSizePoint*> all;
        for (auto& [n, p] : done) all.push_back(&p);
        std::sort(all.begin(), all.end(), [&](const SampleSizePoint* x, const SampleSizePoint* y) {
          return std::abs(std::log(x->n / n_pred)) < std::abs(std::log(y->n / n_pred));
        });
        near.clear();
        for (auto& [n, p] : done) p.used_in_fit = false;
        for (std::size_t i = 0; i < all.size() && i < 3; ++i) {
          all[i]->used_in_fit = true;
          near.push_back(all[i]);
        }
      }
      return fit_probit(near);
    };
    auto solve = [&](const ProbitFit& f) {
      if (!(f.b > 0)) {
        throw InputError("--key " + o.key + ": the power of " + o.method + " does not increase with " + o.key +
                         " near the target (fitted slope " + format("%.3g", f.b) + "); no sample size can be found");
      }
      const double root = (eta_target - f.a) / f.b;
      return root > 0 ? root * root : 0.0;
    };
    double n_pred = 0;
    {
      // First guess: between the bracketing points.
      int below = 0, above = 0;
      for (const auto& [n, p] : done) {
        if (p.power < o.target_power) below = std::max(below, n);
        if (p.power >= o.target_power && (above == 0 || n < above)) above = n;
      }
      n_pred = std::sqrt(static_cast<double>(below) * above);
    }
    for (round = 0; round < kRounds; ++round) {
      r.fit = local_fit(n_pred);
      n_pred = std::clamp(solve(r.fit), static_cast<double>(lo), static_cast<double>(hi));
      const int cand = std::clamp(nearest(n_pred), lo, hi);
      const int spacing = std::max(step, nearest(0.08 * cand));
      bool added = false;
      in_round = 0;
      for (const int n : {cand, cand - spacing, cand + spacing}) {
        if (n >= lo && n <= hi && !done.count(n)) {
          evaluate(n);
          added = true;
        }
        ++in_round;
      }
      if (!added) break;
    }
    r.fit = local_fit(n_pred);
    n_pred = solve(r.fit);
    r.n = std::clamp(up(n_pred), lo, hi);
    // 3. The interval: where the fit's pointwise 95% band crosses the target (an
    // inverse-prediction interval, Finney 1971, ch. 4).
    auto first_reaching = [&](auto&& curve) {
      const int from = std::max(lo, up(n_pred / 4));
      const int to = std::min(hi, up(n_pred * 4 + step));
      for (int n = from; n <= to; n += step) {
        if (curve(static_cast<double>(n)) >= o.target_power) return n;
      }
      return to;
    };
    r.n_low = first_reaching([&](double n) { return r.fit.upper(n); });
    r.n_high = first_reaching([&](double n) { return r.fit.lower(n); });
  }
  r.at_n = evaluate(r.n);
  if (!r.at_lower_limit) r.at_n.used_in_fit = done.at(r.n).used_in_fit;
  r.scenario = scenarios.at(r.n);
  for (const auto& [n, p] : done) r.points.push_back(p);
  return r;
}

json SampleSizeResult::to_json(const SampleSizeOptions& o) const {
  json pts = json::array();
  for (const auto& p : points) {
    pts.push_back({{"n", p.n},
                   {"replicates", p.replicates},
                   {"power", p.power},
                   {"power_mcse", p.power_mcse},
                   {"randomized", p.randomized},
                   {"completed", {{"treatment", p.completed_treatment}, {"control", p.completed_control}}},
                   {"used_in_fit", p.used_in_fit}});
  }
  json out{{"trialsim_version", TRIALSIM_VERSION},
           {"scenario", scenario},
           {"scenario_file", o.scenario_path},
           {"method", method},
           {"key", key},
           {"target_power", target_power},
           {"seed", o.seed},
           {"step", o.step},
           {"replicates_per_point", o.precision.active() ? json(nullptr) : json(o.replicates)},
           {"precision", o.precision.active() ? o.precision.to_json() : json(nullptr)},
           {"points", pts}};
  if (at_lower_limit) {
    out["fit"] = nullptr;
    out["curve"] = json::array();
  } else {
    out["fit"] = {{"model", "probit(power) = a + b*sqrt(n)"},
                  {"a", fit.a},
                  {"b", fit.b},
                  {"cov", {{fit.cov[0][0], fit.cov[0][1]}, {fit.cov[1][0], fit.cov[1][1]}}},
                  {"points_used", fit.points_used}};
    double lo_n = 1e300, hi_n = 0;
    for (const auto& p : points) {
      if (!p.used_in_fit) continue;
      lo_n = std::min(lo_n, static_cast<double>(p.n));
      hi_n = std::max(hi_n, static_cast<double>(p.n));
    }
    lo_n = std::min(lo_n, static_cast<double>(n_low));
    hi_n = std::max(hi_n, static_cast<double>(n_high));
    json curve = json::array();
    for (int i = 0; i <= 100; ++i) {
      const double at = lo_n + (hi_n - lo_n) * i / 100.0;
      curve.push_back({{"n", at}, {"power", fit.power(at)}, {"lower", fit.lower(at)}, {"upper", fit.upper(at)}});
    }
    out["curve"] = curve;
  }
  out["result"] = {{"n", n},
                   {"interval", {n_low, n_high}},
                   {"at_lower_limit", at_lower_limit},
                   {"fitted_power", at_lower_limit ? json(nullptr) : json(fit.power(n))},
                   {"power", at_n.power},
                   {"power_mcse", at_n.power_mcse},
                   {"replicates", at_n.replicates},
                   {"randomized", at_n.randomized},
                   {"completed", {{"treatment", at_n.completed_treatment}, {"control", at_n.completed_control}}}};
  return out;
}

std::string SampleSizeResult::to_table(const SampleSizeOptions& o) const {
  std::ostringstream s;
  char line[256];
  s << "trialsim " << TRIALSIM_VERSION << "  sample size for " << method << " power >= " << format("%g", target_power)
    << "  scenario " << o.scenario_path << "  seed " << o.seed << "\n\n";
  const int w = static_cast<int>(std::max<std::size_t>(10, key.size()));
  // The arms' completer columns are headed "<label> compl." (at least 11 wide).
  const std::string tc = labels.treatment + " compl.", cc = labels.control + " compl.";
  const int wt = static_cast<int>(std::max<std::size_t>(11, tc.size())), wc = static_cast<int>(std::max<std::size_t>(11, cc.size()));
  std::snprintf(line, sizeof line, "  %*s %8s %16s %11s %*s %*s  %s\n", w, key.c_str(), "trials", "power (MC SE)",
                "randomized", wt, tc.c_str(), wc, cc.c_str(), "in fit");
  s << line;
  for (const auto& p : points) {
    std::snprintf(line, sizeof line, "  %*d %8llu %16s %11.1f %*.1f %*.1f  %s\n", w, p.n,
                  static_cast<unsigned long long>(p.replicates),
                  (format("%.4f", p.power) + " (" + format("%.4f", p.power_mcse) + ")").c_str(), p.randomized, wt,
                  p.completed_treatment, wc, p.completed_control, p.used_in_fit ? "yes" : "");
    s << line;
  }
  s << "\n";
  if (at_lower_limit) {
    s << "The target is already reached at the smallest " << key << " searched, " << n << " (power "
      << format("%.4f", at_n.power) << ", MC SE " << format("%.4f", at_n.power_mcse) << "); lower --lo to search below it.\n";
  } else {
    s << "Fit: probit(power) = " << format("%.4f", fit.a) << " + " << format("%.5f", fit.b) << " * sqrt(n), on "
      << fit.points_used << " points near the target.\n";
    s << "Smallest " << key << " with " << method << " power >= " << format("%g", target_power) << ": " << n
      << "  (95% Monte Carlo interval " << n_low << " to " << n_high << ")\n";
    s << "Simulated at " << n << ": power " << format("%.4f", at_n.power) << " (MC SE " << format("%.4f", at_n.power_mcse)
      << ", " << at_n.replicates << " trials); fitted " << format("%.4f", fit.power(n)) << ".\n";
  }
  s << "Expected per trial at " << n << ": " << format("%.1f", at_n.randomized) << " randomized, "
    << format("%.1f", at_n.completed_treatment) << " " << labels.treatment << " and "
    << format("%.1f", at_n.completed_control) << " " << labels.control << " completers.\n";
  return s.str();
}

}  // namespace trialsim
