#include "models/interim.hpp"

#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace trialsim {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

SpendingType spending_of(const std::string& name) {
  return name == "obf" ? SpendingType::obrien_fleming
         : name == "pocock" ? SpendingType::pocock
         : name == "hsd" ? SpendingType::hwang_shih_decani
                         : SpendingType::user;
}

bool present(const ConfigReader& in, const char* key) { return in.table().at_path(key).node() != nullptr; }

std::string list(const std::vector<double>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + describe(toml::value<double>(v[i]));
  return s + "]";
}

}  // namespace

std::string InterimConfig::spending_name(SpendingType t) {
  switch (t) {
    case SpendingType::obrien_fleming: return "obf";
    case SpendingType::pocock: return "pocock";
    case SpendingType::hwang_shih_decani: return "hsd";
    case SpendingType::user: return "user";
  }
  return "?";
}

std::string InterimConfig::futility_name(FutilityRule r) {
  switch (r) {
    case FutilityRule::none: return "none";
    case FutilityRule::z: return "z";
    case FutilityRule::beta_spending: return "beta_spending";
    case FutilityRule::conditional_power: return "conditional_power";
  }
  return "?";
}

nlohmann::json InterimConfig::to_json() const {
  nlohmann::json j{{"fractions", fractions},
                   {"efficacy", spending_name(efficacy.type)},
                   {"months", calendar_months},
                   {"futility", futility_name(futility)}};
  if (efficacy.type == SpendingType::hwang_shih_decani) j["hsd_gamma"] = efficacy.gamma;
  if (efficacy.type == SpendingType::user) j["efficacy_alpha"] = efficacy.cumulative;
  if (futility == FutilityRule::z) j["futility_z"] = futility_z;
  if (futility == FutilityRule::conditional_power) j["futility_cp"] = futility_cp;
  if (futility == FutilityRule::beta_spending) {
    j["beta_spending"] = spending_name(beta.type);
    j["beta"] = beta.alpha;
    if (beta.type == SpendingType::hwang_shih_decani) j["beta_gamma"] = beta.gamma;
  }
  if (futility != FutilityRule::none) j["binding"] = binding;
  return j;
}

InterimConfig InterimConfig::read(ConfigReader& in, double alpha, int sides, double margin, bool has_accrual,
                                  const std::function<double(double)>& planned_share) {
  InterimConfig c;
  c.sides = sides;
  c.margin = margin;
  c.fractions = in.numbers("interim.fractions", {}, Bounds{0.0, 1.0, true, false, {}, {}}, 0, kMaxLooks);
  c.calendar_months = in.numbers("interim.months", {}, Bounds{0.0, 1200.0, true, false, {}, {}}, 0, kMaxLooks - 1);
  const char* keys[] = {"interim.efficacy", "interim.hsd_gamma", "interim.efficacy_alpha", "interim.futility",
                        "interim.futility_z", "interim.beta_spending", "interim.beta_gamma", "interim.beta",
                        "interim.futility_cp", "interim.binding"};
  if (c.fractions.empty() && c.calendar_months.empty()) {
    for (const char* k : keys) {
      if (present(in, k)) in.fail(k, "applies only to a group-sequential design: set interim.fractions (e.g. [0.5, 1]) or interim.months");
    }
    return c;
  }
  if (!c.fractions.empty() && !c.calendar_months.empty()) {
    in.fail("interim.months", "looks come either at information fractions (interim.fractions) or at calendar months, not both");
  }
  if (c.by_calendar()) {
    if (!has_accrual) {
      in.fail("interim.months", "interim looks need staggered entry: set trial.accrual_months (with every patient entering "
                                "at month 0, all primary visits are observed at once)");
    }
    for (std::size_t k = 1; k < c.calendar_months.size(); ++k) {
      if (!(c.calendar_months[k] > c.calendar_months[k - 1])) in.fail("interim.months", "must be strictly increasing, got " + list(c.calendar_months));
    }
    // The plan: the share of primary visits due by each month.
    for (const double month : c.calendar_months) {
      const double share = planned_share(month);
      if (!(share > 0.0) || !(share < 1.0)) {
        in.fail("interim.months", "month " + describe(toml::value<double>(month)) + " comes " +
                                      (share > 0.0 ? "after the last patient's primary visit" : "before any patient's primary visit") +
                                      " (planned information " + describe(toml::value<double>(share)) + "); an interim look needs some but not all of them");
      }
      c.fractions.push_back(share);
    }
    c.fractions.push_back(1.0);
  }
  const char* looks_key = c.by_calendar() ? "interim.months" : "interim.fractions";
  if (c.fractions.size() < 2) in.fail(looks_key, "a group-sequential design needs at least 2 looks (the last at 1), got " + list(c.fractions));
  for (std::size_t k = 1; k < c.fractions.size(); ++k) {
    if (!(c.fractions[k] > c.fractions[k - 1])) in.fail("interim.fractions", "must be strictly increasing, got " + list(c.fractions));
  }
  if (c.fractions.back() != 1.0) in.fail("interim.fractions", "the last look is the final analysis at fraction 1, got " + list(c.fractions));
  if (!has_accrual) {
    in.fail(looks_key, "interim looks need staggered entry: set trial.accrual_months (with every patient entering "
                                 "at month 0, all primary visits are observed at once)");
  }
  const std::size_t K = c.fractions.size();

  const std::string eff = in.choice("interim.efficacy", "obf", {"obf", "pocock", "hsd", "user"});
  c.efficacy.type = spending_of(eff);
  c.efficacy.alpha = alpha;
  if (eff == "hsd") {
    c.efficacy.gamma = in.number("interim.hsd_gamma", -4.0, Bounds::closed(-40.0, 40.0));
  } else if (present(in, "interim.hsd_gamma")) {
    in.fail("interim.hsd_gamma", "applies only with interim.efficacy = \"hsd\"");
  }
  if (eff == "user") {
    if (!present(in, "interim.efficacy_alpha")) {
      in.fail("interim.efficacy_alpha", "interim.efficacy = \"user\" needs the cumulative alpha spent by each look (" +
                                            std::to_string(K) + " values, the last trial.alpha)");
    }
    c.efficacy.cumulative = in.numbers("interim.efficacy_alpha", {}, Bounds::closed(0.0, 1.0), K, K);
    if (c.efficacy.cumulative.size() != K) {
      in.fail("interim.efficacy_alpha", "one cumulative alpha per look (" + std::to_string(K) + "), as many as interim.fractions");
    }
    for (std::size_t k = 1; k < K; ++k) {
      if (c.efficacy.cumulative[k] < c.efficacy.cumulative[k - 1]) {
        in.fail("interim.efficacy_alpha", "cumulative alpha must not decrease, got " + list(c.efficacy.cumulative));
      }
    }
    if (std::abs(c.efficacy.cumulative.back() - alpha) > 1e-12) {
      in.fail("interim.efficacy_alpha", "the last look spends all of trial.alpha (" + describe(toml::value<double>(alpha)) +
                                            "), got " + list(c.efficacy.cumulative));
    }
  } else if (present(in, "interim.efficacy_alpha")) {
    in.fail("interim.efficacy_alpha", "applies only with interim.efficacy = \"user\"");
  }

  const std::string fut = in.choice("interim.futility", "none", {"none", "z", "beta_spending", "conditional_power"});
  c.futility = fut == "z"                   ? FutilityRule::z
               : fut == "beta_spending"     ? FutilityRule::beta_spending
               : fut == "conditional_power" ? FutilityRule::conditional_power
                                            : FutilityRule::none;
  if (c.futility != FutilityRule::none && sides != 1) {
    in.fail("interim.futility", "futility stopping needs a one-sided test: set trial.sides = 1 (and trial.alpha to its one-sided level, e.g. 0.025)");
  }
  if (c.futility == FutilityRule::z) {
    if (!present(in, "interim.futility_z")) {
      in.fail("interim.futility_z", "interim.futility = \"z\" needs the futility bound on the z scale at each look before the last (" +
                                        std::to_string(K - 1) + " values)");
    }
    c.futility_z = in.numbers("interim.futility_z", {}, Bounds::closed(-10.0, 10.0), K - 1, K - 1);
    if (c.futility_z.size() != K - 1) in.fail("interim.futility_z", "one bound per look before the last (" + std::to_string(K - 1) + ")");
  } else if (present(in, "interim.futility_z")) {
    in.fail("interim.futility_z", "applies only with interim.futility = \"z\"");
  }
  if (c.futility == FutilityRule::beta_spending) {
    const std::string b = in.choice("interim.beta_spending", "obf", {"obf", "pocock", "hsd"});
    c.beta.type = spending_of(b);
    c.beta.alpha = in.number("interim.beta", 0.2, Bounds::open(0.0, 1.0));
    if (b == "hsd") {
      c.beta.gamma = in.number("interim.beta_gamma", -4.0, Bounds::closed(-40.0, 40.0));
    } else if (present(in, "interim.beta_gamma")) {
      in.fail("interim.beta_gamma", "applies only with interim.beta_spending = \"hsd\"");
    }
  } else {
    for (const char* k : {"interim.beta_spending", "interim.beta", "interim.beta_gamma"}) {
      if (present(in, k)) in.fail(k, "applies only with interim.futility = \"beta_spending\"");
    }
  }
  if (c.futility == FutilityRule::conditional_power) {
    c.futility_cp = in.number("interim.futility_cp", c.futility_cp, Bounds::open(0.0, 1.0));
  } else if (present(in, "interim.futility_cp")) {
    in.fail("interim.futility_cp", "applies only with interim.futility = \"conditional_power\"");
  }
  if (c.futility != FutilityRule::none) {
    c.binding = in.boolean("interim.binding", false);
    if (c.binding && c.futility == FutilityRule::conditional_power) {
      in.fail("interim.binding", "conditional-power futility bounds depend on the last efficacy bound, so they cannot bind; "
                                 "use futility = \"z\" or \"beta_spending\" for binding futility");
    }
  } else if (present(in, "interim.binding")) {
    in.fail("interim.binding", "applies only with a futility rule (interim.futility = \"z\", \"beta_spending\" or \"conditional_power\")");
  }
  // The planned design must exist (e.g. user alpha a look cannot spend, beta spending that
  // never meets the efficacy bound).
  try {
    const InterimDesign check(c, 0);
  } catch (const std::exception& e) {
    in.fail(c.futility == FutilityRule::beta_spending ? "interim.beta_spending" : "interim.efficacy",
            std::string("this design has no boundaries: ") + e.what());
  }
  return c;
}

InterimDesign::InterimDesign(const InterimConfig& cfg, std::size_t max_completers) : cfg_(cfg), max_(max_completers) {
  if (!cfg_.enabled()) return;
  std::vector<std::size_t> all(cfg_.looks());
  for (std::size_t k = 0; k < all.size(); ++k) all[k] = k;
  if (cfg_.futility == FutilityRule::beta_spending) {
    drift_ = beta_spending_design(cfg_.fractions, cfg_.efficacy, cfg_.beta, cfg_.binding).drift;
  }
  planned_ = compute(all, cfg_.fractions);
  once_ = std::make_unique<std::once_flag[]>(max_ + 1);
  by_n_ = std::make_unique<LookBounds[]>(max_ + 1);
}

LookBounds InterimDesign::compute(const std::vector<std::size_t>& looks, const std::vector<double>& t) const {
  LookBounds b;
  b.looks = looks;
  b.t = t;
  // User spending is given per planned look: the held looks take theirs.
  SpendingFunction eff = cfg_.efficacy;
  if (eff.type == SpendingType::user) {
    eff.cumulative.clear();
    for (const std::size_t k : looks) eff.cumulative.push_back(cfg_.efficacy.cumulative[k]);
  }
  const std::size_t n = t.size();
  b.lower.assign(n, -kInf);
  switch (cfg_.futility) {
    case FutilityRule::none: b.upper = efficacy_bounds(t, eff, cfg_.sides); break;
    case FutilityRule::z: {
      std::vector<double> z;
      for (std::size_t i = 0; i + 1 < n; ++i) z.push_back(cfg_.futility_z[looks[i]]);
      b.upper = efficacy_bounds(t, eff, 1, cfg_.binding ? &z : nullptr);
      std::copy(z.begin(), z.end(), b.lower.begin());
      break;
    }
    case FutilityRule::beta_spending: {
      const BetaSpendingDesign d = beta_spending_at(t, eff, cfg_.beta, cfg_.binding, drift_);
      b.upper = d.upper;
      std::copy(d.futility.begin(), d.futility.end(), b.lower.begin());
      break;
    }
    case FutilityRule::conditional_power: {
      // Stochastic curtailment under the current trend (Lan, Simon & Halperin, Commun Stat C
      // 1982; Jennison & Turnbull 2000, sec. 10.2): with B(t) = z sqrt(t) and the drift estimated
      // as z / sqrt(t), P(Z_K >= c_K | z_k) = 1 - Phi((c_K - z_k / sqrt(t_k)) / sqrt(1 - t_k)),
      // which is below gamma exactly when z_k < sqrt(t_k) (c_K - sqrt(1 - t_k) z_(1 - gamma)).
      b.upper = efficacy_bounds(t, eff, 1);
      const double z_gamma = boost::math::quantile(boost::math::complement(boost::math::normal(), cfg_.futility_cp));
      for (std::size_t i = 0; i + 1 < n; ++i) {
        b.lower[i] = std::sqrt(t[i]) * (b.upper.back() - std::sqrt(1.0 - t[i]) * z_gamma);
      }
      break;
    }
  }
  return b;
}

// The looks held when the interim looks have seen counts[k] of the n completers: those with some
// but not all of them and more than the look before; then the final analysis.
LookBounds InterimDesign::held(const std::vector<std::size_t>& counts, std::size_t n) const {
  std::vector<std::size_t> looks, seen;
  std::vector<double> t;
  std::size_t before = 0;
  for (std::size_t k = 0; k < counts.size(); ++k) {
    const std::size_t j = counts[k];
    if (j == 0 || j >= n || j <= before) continue;
    looks.push_back(k);
    seen.push_back(j);
    t.push_back(static_cast<double>(j) / static_cast<double>(n));
    before = j;
  }
  looks.push_back(cfg_.looks() - 1);
  seen.push_back(n);
  t.push_back(1.0);
  LookBounds b = compute(looks, t);
  b.completers = std::move(seen);
  return b;
}

const LookBounds& InterimDesign::for_counts(const std::vector<std::size_t>& counts, std::size_t n) const {
  std::string key = std::to_string(n);
  for (const std::size_t j : counts) key += "," + std::to_string(j);
  if (const auto it = by_counts_.find(key); it != by_counts_.end()) return *it->second;
  // Two threads may compute the same entry: both give the same bounds, and the first stays.
  return *by_counts_.insert({key, std::make_shared<const LookBounds>(held(counts, n))}).first->second;
}

const LookBounds& InterimDesign::for_completers(std::size_t n) const {
  if (n > max_) throw std::logic_error("interim design asked for more completers than it was built for");
  std::call_once(once_[n], [&] {
    // Look k at the ceil(f_k n)-th completer.
    std::vector<std::size_t> counts;
    for (std::size_t k = 0; k + 1 < cfg_.looks(); ++k) {
      counts.push_back(static_cast<std::size_t>(std::ceil(cfg_.fractions[k] * static_cast<double>(n) - 1e-9)));
    }
    by_n_[n] = held(counts, n);
  });
  return by_n_[n];
}

}  // namespace trialsim
