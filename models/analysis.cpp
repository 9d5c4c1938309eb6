#include "models/analysis.hpp"

#include <Eigen/Dense>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

namespace trialsim {

std::string_view method_name(Method m) {
  switch (m) {
    case Method::completers_ttest: return "completers_ttest";
    case Method::completers_welch: return "completers_welch";
    case Method::change_ttest: return "change_ttest";
    case Method::ancova: return "ancova";
    case Method::mmrm: return "mmrm";
    case Method::ipw_ancova: return "ipw_ancova";
    case Method::mi_delta: return "mi_delta";
  }
  return "?";
}

std::string method_description(Method m, const AnalysisConfig& cfg) {
  switch (m) {
    case Method::completers_ttest: return "Student t, final visit, completers";
    case Method::completers_welch: return "Welch t, final visit, completers";
    case Method::change_ttest: return "Student t on final minus baseline, completers";
    case Method::ancova: return "ANCOVA final ~ arm + baseline + stratum, completers";
    case Method::mmrm: {
      const std::string what = "MMRM, all post-baseline visits, unstructured covariance, REML, ";
      switch (cfg.mmrm_df) {
        case MmrmDf::kenward_roger: return what + "Kenward-Roger SE and df";
        case MmrmDf::satterthwaite: return what + "Satterthwaite df (observed information)";
        case MmrmDf::satterthwaite_expected: return what + "Satterthwaite df (expected information)";
      }
      return what;
    }
    case Method::ipw_ancova: return "ANCOVA on completers weighted by 1/P(complete) from sequential logistic models, HC2 SE";
    case Method::mi_delta: return "multiple imputation under the MMRM's normal model, parameters drawn from their posterior, shifted by delta (MNAR), ANCOVA, Rubin's rules";
  }
  return "?";
}

namespace {

// Student t in double precision: Boost.Math's default promotes to long double, which costs
// several times more and buys nothing at the 1e-9 agreement with R the tests ask for.
// An interval too wide for a double (df near 0, as a Kenward-Roger or Barnard-Rubin df can be in
// a tiny trial) comes back as infinity, which t_estimate reports as not estimable, rather than
// as an exception that would end the whole run.
using DoublePolicy = boost::math::policies::policy<
    boost::math::policies::promote_float<false>, boost::math::policies::promote_double<false>,
    boost::math::policies::overflow_error<boost::math::policies::ignore_error>>;
using StudentT = boost::math::students_t_distribution<double, DoublePolicy>;
using Normal = boost::math::normal_distribution<double, DoublePolicy>;

// Upper alpha/2 quantile of t(df) at a df >= 1 outside t_quantile's integer table (the
// Welch-Satterthwaite, Kenward-Roger, Satterthwaite and Barnard-Rubin df, and integer df above
// 1024): interpolated in u = 1/df
// on a grid of kNodes + 1 equally spaced nodes on [0, 1] (node 0 is df = infinity, the normal
// quantile), by the Lagrange polynomial of degree 5 through the six nodes around u. q is smooth
// in u, and at this spacing the interpolation stays within 4e-15 relative of Boost.Math's
// quantile for every df >= 1 and alpha from 1e-4 to 0.5 (tests/unit/test_analysis.cpp), at a
// few tens of nanoseconds where the quantile costs close to a microsecond. Each node is computed
// by Boost.Math the first time an interpolation reads it: a pure function of (node, alpha), so
// the results do not depend on which thread computed it or in what order.
class TQuantileGrid {
 public:
  static constexpr int kNodes = 8192;
  explicit TQuantileGrid(double alpha) : alpha_(alpha), q_(kNodes + 1, std::numeric_limits<double>::quiet_NaN()) {}
  double alpha() const { return alpha_; }
  double at(double df) {
    const double x = kNodes / df;  // u / h with u = 1 / df and h = 1 / kNodes
    const int first = std::clamp(static_cast<int>(x) - 2, 0, kNodes - 5);
    const double s = x - first;
    // Lagrange basis on the nodes 0..5 (at s): l_k = w_k prod_{m != k} (s - m), the products
    // from prefix and suffix products, w_k = 1 / prod_{m != k} (k - m).
    static constexpr std::array<double, 6> w{-1.0 / 120, 1.0 / 24, -1.0 / 12, 1.0 / 12, -1.0 / 24, 1.0 / 120};
    std::array<double, 7> before{}, after{};
    before[0] = 1.0;
    after[6] = 1.0;
    for (int k = 0; k < 6; ++k) before[idx(k + 1)] = before[idx(k)] * (s - k);
    for (int k = 5; k >= 0; --k) after[idx(k)] = after[idx(k + 1)] * (s - k);
    double r = 0;
    for (int k = 0; k < 6; ++k) r += node(first + k) * w[idx(k)] * before[idx(k)] * after[idx(k + 1)];
    return r;
  }

 private:
  static std::size_t idx(int k) { return static_cast<std::size_t>(k); }
  double node(int i) {
    double& q = q_[idx(i)];
    if (std::isnan(q)) {
      q = i == 0 ? boost::math::quantile(boost::math::complement(Normal(), alpha_ / 2.0))
                 : boost::math::quantile(boost::math::complement(StudentT(static_cast<double>(kNodes) / i), alpha_ / 2.0));
    }
    return q;
  }
  double alpha_;
  std::vector<double> q_;
};

// Upper alpha/2 quantile of t(df). Integer df up to 1024 (every t test, ANCOVA and IPW fit of a
// trial that size) come from a per-thread table of Boost.Math's values, filled on first use;
// other df >= 1 from the thread's TQuantileGrid for alpha (a few alphas at once; beyond them,
// and below df 1, Boost.Math directly).
double t_quantile(double df, double alpha) {
  constexpr int kCached = 1024;
  struct Cache {
    double alpha = -1;
    std::array<double, kCached + 1> q{};
  };
  thread_local Cache cache;
  const double half = alpha / 2.0;
  if (df >= 1 && df <= kCached && df == std::floor(df)) {
    if (cache.alpha != alpha) {
      cache.alpha = alpha;
      cache.q.fill(0.0);
    }
    double& q = cache.q[static_cast<std::size_t>(df)];
    if (q == 0.0) q = boost::math::quantile(boost::math::complement(StudentT(df), half));
    return q;
  }
  if (df >= 1) {
    constexpr std::size_t kGrids = 4;
    thread_local std::vector<TQuantileGrid> grids;
    for (TQuantileGrid& g : grids) {
      if (g.alpha() == alpha) return g.at(df);
    }
    if (grids.size() < kGrids) return grids.emplace_back(alpha).at(df);
  }
  return boost::math::quantile(boost::math::complement(StudentT(std::min(df, 1e12)), half));
}

}  // namespace

Estimate t_estimate(double est, double se, double df, double alpha) {
  if (!(se > 0.0) || !std::isfinite(se)) return not_estimable(NotEstimable::no_variance);
  // Too few degrees of freedom for a finite interval: the trial carries no usable information
  // on the effect's precision.
  if (!(df > 0.0)) return not_estimable(NotEstimable::too_few_patients);
  const double q = t_quantile(df, alpha);
  if (!std::isfinite(q)) return not_estimable(NotEstimable::too_few_patients);
  Estimate e;
  e.status = NotEstimable::none;
  e.estimate = est;
  e.se = se;
  e.df = df;
  e.ci_low = est - q * se;
  e.ci_high = est + q * se;
  return e;
}

double Estimate::p(const Hypothesis& h) const {
  if (!estimable()) return 0.0;
  const StudentT dist(std::min(df, 1e12));
  const double t = (estimate - h.margin) / se;
  if (h.sides == 1) return boost::math::cdf(boost::math::complement(dist, t));
  return std::min(1.0, 2.0 * boost::math::cdf(boost::math::complement(dist, std::abs(t))));
}

namespace {

// Mean and sample variance (n - 1) of an arm's final values or changes from its sums.
struct MeanVar {
  double mean = 0, var = 0;
  std::size_t n = 0;
};

MeanVar mean_var(const ArmSums& a, bool change) {
  MeanVar r;
  r.n = a.n;
  if (a.n == 0) return r;
  const auto n = static_cast<double>(a.n);
  const double s = change ? a.y - a.x : a.y, ss = change ? a.dd : a.yy;
  r.mean = (change ? a.shift_y - a.shift_x : a.shift_y) + s / n;
  r.var = a.n > 1 ? std::max(0.0, ss - s * s / n) / (n - 1) : 0.0;
  return r;
}

ArmSums sums_of(std::span<const double> values) {
  ArmSums a;
  for (const double v : values) a.add(v, 0.0, false);
  return a;
}

}  // namespace

Estimate student_t(const ArmSums& treatment, const ArmSums& control, double alpha, bool change) {
  const MeanVar a = mean_var(treatment, change), b = mean_var(control, change);
  if (a.n < 1 || b.n < 1 || a.n + b.n < 3) return {};
  const double df = static_cast<double>(a.n + b.n - 2);
  const double pooled = ((static_cast<double>(a.n) - 1) * a.var + (static_cast<double>(b.n) - 1) * b.var) / df;
  const double se = std::sqrt(pooled * (1.0 / static_cast<double>(a.n) + 1.0 / static_cast<double>(b.n)));
  return t_estimate(a.mean - b.mean, se, df, alpha);
}

Estimate student_t(std::span<const double> treatment, std::span<const double> control, double alpha) {
  return student_t(sums_of(treatment), sums_of(control), alpha);
}

Estimate welch_t(const ArmSums& treatment, const ArmSums& control, double alpha) {
  const MeanVar a = mean_var(treatment, false), b = mean_var(control, false);
  if (a.n < 2 || b.n < 2) return {};
  const double va = a.var / static_cast<double>(a.n), vb = b.var / static_cast<double>(b.n);
  const double denom = va * va / static_cast<double>(a.n - 1) + vb * vb / static_cast<double>(b.n - 1);
  if (!(denom > 0.0)) {
    return not_estimable(NotEstimable::no_variance);
  }
  const double df = (va + vb) * (va + vb) / denom;
  return t_estimate(a.mean - b.mean, std::sqrt(va + vb), df, alpha);
}

Estimate welch_t(std::span<const double> treatment, std::span<const double> control, double alpha) {
  return welch_t(sums_of(treatment), sums_of(control), alpha);
}

// ANCOVA y = a + tau arm + b_x baseline [+ b_s stratum] + e by the Frisch-Waugh-Lovell route:
// within-arm centring partials out the intercept and arm, the slopes come from the pooled
// within-arm cross-products W of z = (baseline, stratum), and the arm effect is the difference
// of the arm means adjusted by them, tau = (ybar_1 - ybar_0) - b' (zbar_1 - zbar_0), with
// Var(tau) = sigma^2 [1/n_1 + 1/n_0 + g' W^-1 g], g = zbar_1 - zbar_0 (the adjusted-means
// variance; Snedecor & Cochran, Statistical Methods, 8th ed., sec. 18.3). This is the OLS arm
// coefficient and its classical SE exactly, on n - p df.
Estimate ancova(const ArmSums& t1, const ArmSums& t0, double alpha) {
  if (t1.n == 0 || t0.n == 0) return {};
  const std::size_t n_all = t1.n + t0.n, ns_all = t1.n_s + t0.n_s;
  const bool stratum_varies = ns_all > 0 && ns_all < n_all;
  const std::size_t p = stratum_varies ? 4 : 3;
  if (n_all <= p) return {};
  const double n1 = static_cast<double>(t1.n), n0 = static_cast<double>(t0.n), n = n1 + n0;
  // Arm means (in each arm's shifted units; shifts cancel in the within-arm sums).
  struct Within {
    double xx = 0, xy = 0, yy = 0, ss = 0, xs = 0, sy = 0;
  } w;
  std::array<double, 2> mx{}, my{}, ms{};
  for (std::size_t a = 0; a < 2; ++a) {
    const ArmSums& s = a == 1 ? t1 : t0;
    const auto na = static_cast<double>(s.n), nsa = static_cast<double>(s.n_s);
    w.xx += s.xx - s.x * s.x / na;
    w.xy += s.xy - s.x * s.y / na;
    w.yy += s.yy - s.y * s.y / na;
    w.ss += nsa - nsa * nsa / na;
    w.xs += s.sx - s.x * nsa / na;
    w.sy += s.sy - s.y * nsa / na;
    mx[a] = s.shift_x + s.x / na;
    my[a] = s.shift_y + s.y / na;
    ms[a] = nsa / na;
  }
  // Total (overall-centred) sums of squares, for the rank and perfect-fit checks.
  const double tx = w.xx + n1 * n0 / n * (mx[1] - mx[0]) * (mx[1] - mx[0]);
  const double ty = w.yy + n1 * n0 / n * (my[1] - my[0]) * (my[1] - my[0]);
  // A column (nearly) in the span of the others leaves a (nearly) zero pivot: the baseline
  // after the intercept and arm, the stratum after those and the baseline (as a Cholesky
  // factorization of X'X would find them).
  if (!(w.xx > 1e-12 * tx)) return not_estimable(NotEstimable::rank_deficient);
  const double gx = mx[1] - mx[0], gs = ms[1] - ms[0];
  double bx = 0, bs = 0, quad = 0, rss = 0;
  if (stratum_varies) {
    const double pivot_s = w.ss - w.xs * w.xs / w.xx;
    if (!(pivot_s > 1e-12 * static_cast<double>(ns_all))) return not_estimable(NotEstimable::rank_deficient);
    const double det = w.xx * w.ss - w.xs * w.xs;
    bx = (w.ss * w.xy - w.xs * w.sy) / det;
    bs = (w.xx * w.sy - w.xs * w.xy) / det;
    rss = w.yy - bx * w.xy - bs * w.sy;
    quad = (w.ss * gx * gx - 2.0 * w.xs * gx * gs + w.xx * gs * gs) / det;
  } else {
    bx = w.xy / w.xx;
    rss = w.yy - bx * w.xy;
    quad = gx * gx / w.xx;
  }
  // A perfect fit (e.g. a constant outcome) leaves only rounding residue: no variance to test.
  if (!(rss > 1e-13 * ty)) return not_estimable(NotEstimable::no_variance);
  const double df = static_cast<double>(n_all - p);
  const double effect = (my[1] - my[0]) - bx * gx - bs * gs;
  return t_estimate(effect, std::sqrt(rss / df * (1.0 / n1 + 1.0 / n0 + quad)), df, alpha);
}

Estimate ancova(std::span<const double> y, std::span<const double> baseline, std::span<const std::int8_t> treated,
                std::span<const std::int8_t> stratum, double alpha) {
  std::array<ArmSums, 2> arms;
  for (std::size_t k = 0; k < y.size(); ++k) arms[treated[k] != 0 ? 1 : 0].add(y[k], baseline[k], stratum[k] != 0);
  return ancova(arms[1], arms[0], alpha);
}

std::optional<Method> method_from_name(std::string_view name) {
  for (std::size_t m = 0; m < kMethods; ++m) {
    if (name == method_name(static_cast<Method>(m))) return static_cast<Method>(m);
  }
  return std::nullopt;
}

std::vector<std::string> all_method_names() {
  std::vector<std::string> all;
  for (std::size_t m = 0; m < kMethods; ++m) all.emplace_back(method_name(static_cast<Method>(m)));
  return all;
}

AnalysisConfig AnalysisConfig::read(ConfigReader& in, double alpha) {
  AnalysisConfig c;
  c.alpha = alpha;
  const std::vector<std::string> all = all_method_names();
  const auto names = in.choices("analysis.methods", all, all, 1);
  c.mmrm_df = *mmrm_df_from_name(in.choice("analysis.mmrm_df", std::string(mmrm_df_name(c.mmrm_df)), all_mmrm_df_names()));
  c.mi.imputations = static_cast<int>(in.integer("analysis.mi_imputations", c.mi.imputations, 2, 1000));
  c.mi.delta = in.number("analysis.mnar_delta_mmHg", c.mi.delta, Bounds::closed(-100.0, 100.0));
  c.mi.delta_both_arms = in.choice("analysis.mnar_delta_arms", "treatment", {"treatment", "both"}) == "both";
  c.methods.clear();
  for (const auto& n : names) c.methods.push_back(*method_from_name(n));  // choices() checked the names
  return c;
}

std::array<Estimate, kMethods> Analysis::estimate_all(const TrialData& trial, const CompleterSums& completers,
                                                      AnalysisWorkspace& ws, std::uint64_t seed,
                                                      std::uint64_t replicate) const {
  return estimate(trial, completers, trial.rows, nullptr, cfg_.methods, ws, seed, replicate, 0);
}

std::array<Estimate, kMethods> Analysis::estimate_look(const TrialData& trial, std::size_t rows, const double* entry,
                                                       const std::vector<double>& months, double tau,
                                                       const std::vector<Method>& methods, AnalysisWorkspace& ws,
                                                       std::uint64_t seed, std::uint64_t replicate,
                                                       std::uint64_t look) const {
  // Per row: how many of its visits are due by tau.
  double* const due = room(ws.due, rows);
  double* const follow_up = room(ws.follow_up, rows);
  CompleterSums completers;
  const std::size_t last = trial.last();
  for (std::size_t r = 0; r < rows; ++r) {
    // The same expression as the look's own month (entry + months[last] of its completer), so
    // that the completer who sets the look is in it.
    std::size_t k = 0;
    while (k < months.size() && entry[r] + months[k] <= tau) ++k;
    due[r] = static_cast<double>(k);
    follow_up[r] = tau - entry[r];
    if (k > last && trial.seen_at(r, last)) {
      completers.arm[arm_index(trial.arm[r])].add(trial.observed_at(r, last), trial.observed_at(r, 0),
                                                  trial.diabetes[trial.patient[r]] != 0);
    }
  }
  return estimate(trial, completers, rows, due, methods, ws, seed, replicate, look);
}

std::array<Estimate, kMethods> Analysis::estimate(const TrialData& trial, const CompleterSums& completers,
                                                  std::size_t rows, const double* due,
                                                  const std::vector<Method>& methods, AnalysisWorkspace& ws,
                                                  std::uint64_t seed, std::uint64_t replicate,
                                                  std::uint64_t look) const {
  std::array<Estimate, kMethods> out{};
  bool visits_built = false;
  auto visits = [&]() -> const RepeatedMeasures& {
    if (!visits_built) {
      const std::size_t last = trial.last();
      RepeatedMeasures& d = ws.visits;
      d.clear(static_cast<int>(last));
      // Column by column (the trial's columns are visit-major, the visits' rows patient-major),
      // each entry written in place: no branch per patient.
      d.treated.resize(rows);
      d.stratum.resize(rows);
      d.baseline.resize(rows);
      d.y.resize(rows * last);
      d.seen.resize(rows * last);
      const Arm* const arm = trial.arm.data();
      const double* const diabetes = trial.row_diabetes.data();
      const double* const y0 = trial.at(trial.observed, 0);
      for (std::size_t r = 0; r < rows; ++r) {
        d.treated[r] = static_cast<std::int8_t>(arm[r] == Arm::treatment);
        d.stratum[r] = static_cast<std::int8_t>(diabetes[r] != 0.0);
        d.baseline[r] = y0[r];
      }
      for (std::size_t k = 1; k <= last; ++k) {
        const double* const y = trial.at(trial.observed, k);
        const double* const seen = trial.seen_at(k);
        double* const yk = d.y.data() + (k - 1);
        std::uint8_t* const sk = d.seen.data() + (k - 1);
        for (std::size_t r = 0; r < rows; ++r) {
          yk[r * last] = y[r];
          sk[r * last] = static_cast<std::uint8_t>(seen[r] != 0.0 && (due == nullptr || static_cast<double>(k) < due[r]));
        }
      }
      if (due != nullptr) {
        // The last visit not yet due, and the patient not withdrawn by the look.
        d.pending.resize(rows);
        for (std::size_t r = 0; r < rows; ++r) {
          const bool withdrawn = trial.dropout_month[r] <= ws.follow_up[r];
          d.pending[r] = static_cast<std::uint8_t>(static_cast<std::size_t>(due[r]) <= last && !withdrawn);
        }
      }
      visits_built = true;
    }
    return ws.visits;
  };
  for (const Method m : methods) {
    Estimate& e = out[static_cast<std::size_t>(m)];
    switch (m) {
      case Method::completers_ttest: e = student_t(completers.arm[1], completers.arm[0], cfg_.alpha); break;
      case Method::completers_welch: e = welch_t(completers.arm[1], completers.arm[0], cfg_.alpha); break;
      case Method::change_ttest: e = student_t(completers.arm[1], completers.arm[0], cfg_.alpha, true); break;
      case Method::ancova: e = ancova(completers.arm[1], completers.arm[0], cfg_.alpha); break;
      case Method::mmrm: e = fit_mmrm(visits(), cfg_.alpha, cfg_.mmrm_df).effect; break;
      case Method::ipw_ancova: e = ipw_ancova(visits(), cfg_.alpha); break;
      case Method::mi_delta: {
        // Look 0 is the final analysis; each interim look has a stream of its own.
        Stream rng(seed, replicate, StreamKind::analysis, static_cast<std::uint64_t>(m) + kMethods * look);
        e = mi_delta(visits(), cfg_.mi, cfg_.alpha, rng);
        break;
      }
    }
  }
  return out;
}

}  // namespace trialsim
