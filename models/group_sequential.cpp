#include "models/group_sequential.hpp"
#include "sim/engine/draws.hpp"

#include <boost/math/distributions/normal.hpp>
#include <boost/math/tools/roots.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

namespace trialsim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Jennison & Turnbull's grid density (section 19.2.1): r = 16 gives boundaries to about 1e-6;
// 32 to well below it, at (6r)^2 = 37 000 products a look.
constexpr int kGridR = 32;

double upper_tail(double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); }  // 1 - Phi(x)
double lower_tail(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }  // Phi(x)
double density(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI); }

double z_quantile(double p) { return boost::math::quantile(boost::math::normal(), p); }
// The upper-p quantile, accurate for the tiny p an early look of O'Brien-Fleming type spends
// (1 - p rounds to 1 below 1e-16).
double z_upper(double p) { return boost::math::quantile(boost::math::complement(boost::math::normal(), std::max(p, 1e-300))); }

// Simpson's rule on Jennison & Turnbull's grid for N(mu, 1) restricted to (a, b): the points
// mu - 3 - 4 log(r / i) (i < r), mu - 3 + 3 (i - r) / (2 r) (r <= i <= 5r), mu + 3 + 4 log(r /
// (6r - i)) (i > 5r), those inside (a, b) with a and b themselves where finite, then the
// midpoints; `z` the nodes, `w` their weights.
void grid(double mu, double a, double b, std::vector<double>& z, std::vector<double>& w) {
  std::vector<double> x;
  const int r = kGridR;
  if (std::isfinite(a)) x.push_back(a);
  for (int i = 1; i <= 6 * r - 1; ++i) {
    double v;
    if (i < r) {
      v = mu - 3.0 - 4.0 * std::log(static_cast<double>(r) / i);
    } else if (i <= 5 * r) {
      v = mu - 3.0 + 3.0 * (i - r) / (2.0 * r);
    } else {
      v = mu + 3.0 + 4.0 * std::log(static_cast<double>(r) / (6 * r - i));
    }
    if (v > a && v < b) x.push_back(v);
  }
  if (std::isfinite(b)) x.push_back(b);
  z.clear();
  w.clear();
  if (x.size() < 2) {  // the region holds no grid point: its two ends (or nothing)
    if (x.size() == 1) {
      z.push_back(x[0]);
      w.push_back(0.0);
    }
    return;
  }
  const std::size_t m = x.size();
  z.resize(2 * m - 1);
  w.assign(2 * m - 1, 0.0);
  for (std::size_t i = 0; i < m; ++i) z[2 * i] = x[i];
  for (std::size_t i = 0; i + 1 < m; ++i) z[2 * i + 1] = 0.5 * (x[i] + x[i + 1]);
  for (std::size_t i = 0; i + 1 < m; ++i) {
    const double h = x[i + 1] - x[i];
    w[2 * i] += h / 6.0;
    w[2 * i + 1] += 4.0 * h / 6.0;
    w[2 * i + 2] += h / 6.0;
  }
}

void check_fractions(const std::vector<double>& t) {
  if (t.empty()) throw std::invalid_argument("no looks");
  for (std::size_t k = 0; k < t.size(); ++k) {
    if (!(t[k] > 0.0 && t[k] <= 1.0) || (k > 0 && !(t[k] > t[k - 1]))) {
      throw std::invalid_argument("information fractions must increase in (0, 1]");
    }
  }
  if (std::abs(t.back() - 1.0) > 1e-12) throw std::invalid_argument("the last information fraction must be 1");
}

// The sub-density of Z_k on the continuation region, as grid nodes with weights folded in:
// E[f(Z_k); no crossing before k, and continuing at k] ~ sum_j h[j] f(z[j]).
struct Stage {
  std::vector<double> z, h;
};

// Stage 1 on (lo, hi), under mean mu1.
Stage first_stage(double mu1, double lo, double hi) {
  Stage s;
  std::vector<double> w;
  grid(mu1, lo, hi, s.z, w);
  s.h.reserve(s.z.size());
  for (std::size_t j = 0; j < s.z.size(); ++j) s.h.push_back(w[j] * density(s.z[j] - mu1));
  return s;
}

// From look k-1 (fraction t0) to look k (t1): the sub-density on (lo, hi) (J&T eq. 19.3).
Stage next_stage(const Stage& prev, double t0, double t1, double drift, double lo, double hi) {
  const double delta = t1 - t0, sd = std::sqrt(delta), s0 = std::sqrt(t0), s1 = std::sqrt(t1);
  Stage s;
  std::vector<double> w;
  grid(drift * s1, lo, hi, s.z, w);
  s.h.assign(s.z.size(), 0.0);
  // The normal densities of one row at once, through the vectorized exponential.
  thread_local std::vector<double> e;
  e.resize(prev.z.size());
  const double inv_root = 1.0 / std::sqrt(2.0 * M_PI);
  for (std::size_t j = 0; j < s.z.size(); ++j) {
    const double shift = s.z[j] * s1 - drift * delta;
    for (std::size_t i = 0; i < prev.z.size(); ++i) {
      const double x = (shift - prev.z[i] * s0) / sd;
      e[i] = -0.5 * x * x;
    }
    draws::exp(e.data(), e.size(), e.data());
    double sum = 0;
    for (std::size_t i = 0; i < prev.z.size(); ++i) sum += prev.h[i] * e[i];
    s.h[j] = w[j] * sum * inv_root * s1 / sd;
  }
  return s;
}

// P(no crossing before look k, and Z_k >= c) (+ P(..., Z_k <= -c) with two sides), look k at
// fraction t1 after `prev` at t0; for the first look prev is empty and t0 = 0.
double exit_probability(const Stage* prev, double t0, double t1, double drift, double c, int sides) {
  if (prev == nullptr) {
    const double mu = drift * std::sqrt(t1);
    return upper_tail(c - mu) + (sides == 2 ? lower_tail(-c - mu) : 0.0);
  }
  const double delta = t1 - t0, sd = std::sqrt(delta), s0 = std::sqrt(t0), s1 = std::sqrt(t1);
  double p = 0;
  for (std::size_t i = 0; i < prev->z.size(); ++i) {
    const double shift = prev->z[i] * s0 + drift * delta;
    double e = upper_tail((c * s1 - shift) / sd);
    if (sides == 2) e += lower_tail((-c * s1 - shift) / sd);
    p += prev->h[i] * e;
  }
  return p;
}

// P(no crossing before look k, and Z_k < b): the futility exit of a one-sided design.
double lower_exit_probability(const Stage* prev, double t0, double t1, double drift, double b) {
  if (prev == nullptr) return lower_tail(b - drift * std::sqrt(t1));
  const double delta = t1 - t0, sd = std::sqrt(delta), s0 = std::sqrt(t0), s1 = std::sqrt(t1);
  double p = 0;
  for (std::size_t i = 0; i < prev->z.size(); ++i) {
    p += prev->h[i] * lower_tail((b * s1 - prev->z[i] * s0 - drift * delta) / sd);
  }
  return p;
}

// The continuation region's lower end at look k: -c (two-sided), the futility bound where it
// binds (one-sided), else -infinity.
double continuation_low(int sides, double upper, const std::vector<double>* lower, std::size_t k) {
  if (sides == 2) return -upper;
  if (lower != nullptr && k < lower->size()) return std::min((*lower)[k], upper);
  return -kInf;
}

// The efficacy bound c that spends `target` at a look at t1 after `prev` (at t0; null for the
// first look), under H0: P(no stop before, Z >= c) (two-sided: |Z| >= c) = target. The exit
// probability falls as c rises, and the marginal quantile q is an upper end (continuation only
// lowers it); the root is usually within a unit below q, which saves the solver steps. When
// even c = -10 spends less than the target (only binding futility leaves so little, at a small
// trial's fractions) the look takes all there is if `may_fall_short`, else it is an error.
double efficacy_root(const Stage* prev, double t0, double t1, double target, int sides, bool may_fall_short,
                     std::size_t look) {
  const double q = sides == 2 ? z_upper(target / 2.0) : z_upper(target);
  if (prev == nullptr) return q;
  const auto gap = [&](double x) { return exit_probability(prev, t0, t1, 0.0, x, sides) - target; };
  double lo = q - 1.0, hi = q + 1e-9;
  if (gap(lo) < 0) lo = -10.0;
  if (gap(hi) > 0) hi = q + 1.0;
  if (gap(lo) < 0) {
    if (!may_fall_short) throw std::invalid_argument("cannot spend that much alpha at look " + std::to_string(look + 1));
    return lo;
  }
  std::uintmax_t iterations = 200;
  const auto root = boost::math::tools::toms748_solve(gap, lo, hi, boost::math::tools::eps_tolerance<double>(50), iterations);
  return 0.5 * (root.first + root.second);
}

}  // namespace

double SpendingFunction::spent(double t, std::size_t look) const {
  if (t <= 0) return 0.0;
  switch (type) {
    case SpendingType::obrien_fleming:
      return t >= 1.0 ? alpha : 2.0 * upper_tail(z_quantile(1.0 - alpha / 2.0) / std::sqrt(t));
    case SpendingType::pocock: return t >= 1.0 ? alpha : alpha * std::log(1.0 + (std::exp(1.0) - 1.0) * t);
    case SpendingType::hwang_shih_decani:
      if (t >= 1.0) return alpha;
      if (gamma == 0.0) return alpha * t;
      return alpha * -std::expm1(-gamma * t) / -std::expm1(-gamma);
    case SpendingType::user:
      if (look >= cumulative.size()) throw std::invalid_argument("user spending needs one cumulative alpha per look");
      return cumulative[look];
  }
  return alpha;
}

double SpendingFunction::spent(double t, std::size_t look, int sides) const {
  if (sides != 2) return spent(t, look);
  SpendingFunction half = *this;
  half.alpha = alpha / 2.0;
  for (double& a : half.cumulative) a /= 2.0;
  return 2.0 * half.spent(t, look);
}

std::vector<double> efficacy_bounds(const std::vector<double>& t, const SpendingFunction& f, int sides) {
  return efficacy_bounds(t, f, sides, nullptr);
}

std::vector<double> efficacy_bounds(const std::vector<double>& t, const SpendingFunction& f, int sides,
                                    const std::vector<double>* binding_futility) {
  check_fractions(t);
  if (sides != 1 && sides != 2) throw std::invalid_argument("sides must be 1 or 2");
  if (binding_futility != nullptr && sides != 1) throw std::invalid_argument("futility bounds need a one-sided design");
  std::vector<double> c(t.size(), kInf);
  Stage stage;  // from look 1 on: the sub-density on the continuation region of the look before
  double before = 0.0;
  for (std::size_t k = 0; k < t.size(); ++k) {
    const double cumulative = f.spent(t[k], k, sides);
    const double target = cumulative - before;
    if (target < -1e-15) throw std::invalid_argument("cumulative alpha must not decrease");
    const double t0 = k == 0 ? 0.0 : t[k - 1];
    if (target > 0) c[k] = efficacy_root(k > 0 ? &stage : nullptr, t0, t[k], target, sides, binding_futility != nullptr, k);
    before = cumulative;
    if (k + 1 < t.size()) {
      const double lo = continuation_low(sides, c[k], binding_futility, k);
      stage = k > 0 ? next_stage(stage, t0, t[k], 0.0, lo, c[k]) : first_stage(0.0, lo, c[k]);
    }
  }
  return c;
}

std::vector<double> crossing_probabilities(const std::vector<double>& t, const std::vector<double>& bounds, int sides,
                                           double drift) {
  return stopping_probabilities(t, bounds, {}, sides, drift).efficacy;
}

Stopping stopping_probabilities(const std::vector<double>& t, const std::vector<double>& upper,
                                const std::vector<double>& futility, int sides, double drift) {
  check_fractions(t);
  if (upper.size() != t.size()) throw std::invalid_argument("one boundary per look");
  if (!futility.empty() && sides != 1) throw std::invalid_argument("futility bounds need a one-sided design");
  Stopping p;
  p.efficacy.assign(t.size(), 0.0);
  p.futility.assign(t.size(), 0.0);
  Stage stage;
  for (std::size_t k = 0; k < t.size(); ++k) {
    const double t0 = k == 0 ? 0.0 : t[k - 1];
    const Stage* prev = k == 0 ? nullptr : &stage;
    p.efficacy[k] = std::isfinite(upper[k]) ? exit_probability(prev, t0, t[k], drift, upper[k], sides) : 0.0;
    if (k + 1 < t.size()) {
      const double lo = continuation_low(sides, upper[k], futility.empty() ? nullptr : &futility, k);
      if (std::isfinite(lo) && sides == 1) p.futility[k] = lower_exit_probability(prev, t0, t[k], drift, lo);
      stage = k == 0 ? first_stage(drift * std::sqrt(t[0]), lo, upper[k]) : next_stage(stage, t0, t[k], drift, lo, upper[k]);
    }
  }
  return p;
}

namespace {

// The bound b with P(no stop before look k, Z_k < b) = target under `drift`, after `prev`.
double futility_root(const Stage* prev, double t0, double t1, double drift, double target) {
  if (prev == nullptr) return drift * std::sqrt(t1) + z_quantile(std::clamp(target, 1e-300, 1.0 - 1e-16));
  const auto gap = [&](double b) { return lower_exit_probability(prev, t0, t1, drift, b) - target; };
  double lo = drift * std::sqrt(t1) - 12.0, hi = drift * std::sqrt(t1) + 12.0;
  if (gap(hi) < 0) return hi;  // more than the continuation holds: everything left stops
  if (gap(lo) > 0) return lo;
  std::uintmax_t iterations = 200;
  const auto root = boost::math::tools::toms748_solve(gap, lo, hi, boost::math::tools::eps_tolerance<double>(50), iterations);
  return 0.5 * (root.first + root.second);
}

// For a drift: the futility bounds b_1..b_K spending `beta_f` under that drift and, with
// binding futility, the efficacy bounds recomputed on the continuation regions (b_k, c_k).
void beta_spending_pass(const std::vector<double>& t, const SpendingFunction& alpha_f, const SpendingFunction& beta_f,
                        bool binding, double drift, std::vector<double>& upper, std::vector<double>& lower) {
  const std::size_t K = t.size();
  lower.assign(K, -kInf);
  Stage null_stage, alt_stage;
  double alpha_before = 0.0, beta_before = 0.0;
  for (std::size_t k = 0; k < K; ++k) {
    const double t0 = k == 0 ? 0.0 : t[k - 1];
    if (binding) {
      const double target = alpha_f.spent(t[k], k, 1) - alpha_before;
      upper[k] = target > 0 ? efficacy_root(k == 0 ? nullptr : &null_stage, t0, t[k], target, 1, true, k) : kInf;
      alpha_before = alpha_f.spent(t[k], k, 1);
    }
    const double beta_target = beta_f.spent(t[k], k, 1) - beta_before;
    beta_before = beta_f.spent(t[k], k, 1);
    lower[k] = beta_target > 0 ? futility_root(k == 0 ? nullptr : &alt_stage, t0, t[k], drift, beta_target) : -kInf;
    if (k + 1 < K) {
      const double lo = std::min(lower[k], upper[k]);
      if (binding) null_stage = k == 0 ? first_stage(0.0, lo, upper[k]) : next_stage(null_stage, t0, t[k], 0.0, lo, upper[k]);
      alt_stage = k == 0 ? first_stage(drift * std::sqrt(t[0]), lo, upper[k]) : next_stage(alt_stage, t0, t[k], drift, lo, upper[k]);
    }
  }
}

}  // namespace

BetaSpendingDesign beta_spending_at(const std::vector<double>& t, const SpendingFunction& alpha_f,
                                    const SpendingFunction& beta_f, bool binding, double drift) {
  check_fractions(t);
  BetaSpendingDesign d;
  d.upper = efficacy_bounds(t, alpha_f, 1);
  std::vector<double> lower;
  beta_spending_pass(t, alpha_f, beta_f, binding, drift, d.upper, lower);
  d.futility.assign(lower.begin(), lower.end() - 1);
  d.drift = drift;
  return d;
}

BetaSpendingDesign beta_spending_design(const std::vector<double>& t, const SpendingFunction& alpha_f,
                                        const SpendingFunction& beta_f, bool binding) {
  check_fractions(t);
  if (!(beta_f.alpha > 0.0 && beta_f.alpha < 1.0)) throw std::invalid_argument("beta must lie in (0, 1)");
  BetaSpendingDesign d;
  d.upper = efficacy_bounds(t, alpha_f, 1);
  std::vector<double> upper = d.upper, lower;
  // The drift at which the last futility bound meets the last efficacy bound (rpact's shift,
  // searched on [-4, 10] as rpact does): b_K rises with the drift faster than c_K does.
  const auto gap = [&](double drift) {
    upper = d.upper;
    beta_spending_pass(t, alpha_f, beta_f, binding, drift, upper, lower);
    return lower.back() - upper.back();
  };
  double lo = -4.0, hi = 10.0;
  if (gap(lo) > 0 || gap(hi) < 0) throw std::invalid_argument("no drift makes the futility and efficacy bounds meet at the last look");
  std::uintmax_t iterations = 200;
  const auto root = boost::math::tools::toms748_solve(gap, lo, hi, boost::math::tools::eps_tolerance<double>(50), iterations);
  d.drift = 0.5 * (root.first + root.second);
  upper = d.upper;
  beta_spending_pass(t, alpha_f, beta_f, binding, d.drift, upper, lower);
  d.upper = upper;
  d.futility.assign(lower.begin(), lower.end() - 1);
  return d;
}

}  // namespace trialsim
