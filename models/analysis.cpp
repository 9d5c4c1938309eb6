#include "models/analysis.hpp"

#include <Eigen/Dense>
#include <boost/math/distributions/students_t.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

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

struct MeanVar {
  double mean = 0;
  double var = 0;  // sample variance (n - 1 denominator)
  std::size_t n = 0;
};

MeanVar mean_var(std::span<const double> x) {
  MeanVar r;
  r.n = x.size();
  if (r.n == 0) return r;
  // Identical values: exact mean and zero variance (sum / n would leave rounding residue).
  if (std::all_of(x.begin(), x.end(), [&](double v) { return v == x[0]; })) {
    r.mean = x[0];
    return r;
  }
  double s = 0;
  for (double v : x) s += v;
  r.mean = s / static_cast<double>(r.n);
  double ss = 0;
  for (double v : x) ss += (v - r.mean) * (v - r.mean);
  r.var = r.n > 1 ? ss / static_cast<double>(r.n - 1) : 0.0;
  return r;
}

}  // namespace

namespace {

// Student t in double precision: Boost.Math's default promotes to long double, which costs
// several times more and buys nothing at the 1e-9 agreement with R the tests ask for.
using DoublePolicy = boost::math::policies::policy<boost::math::policies::promote_float<false>,
                                                   boost::math::policies::promote_double<false>>;
using StudentT = boost::math::students_t_distribution<double, DoublePolicy>;

// Upper alpha/2 quantile of t(df). Integer df (every t test, ANCOVA and IPW fit) come from a
// per-thread table filled on first use: the value is a pure function of (df, alpha), so the
// results do not depend on which thread computed it.
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
  return boost::math::quantile(boost::math::complement(StudentT(std::min(df, 1e12)), half));
}

}  // namespace

Estimate t_estimate(double est, double se, double df, double alpha) {
  if (!(se > 0.0) || !std::isfinite(se)) return not_estimable(NotEstimable::no_variance);
  const double q = t_quantile(df, alpha);
  Estimate e;
  e.status = NotEstimable::none;
  e.estimate = est;
  e.se = se;
  e.df = df;
  e.ci_low = est - q * se;
  e.ci_high = est + q * se;
  return e;
}

double Estimate::p() const {
  if (!estimable()) return 0.0;
  const StudentT dist(std::min(df, 1e12));
  return std::min(1.0, 2.0 * boost::math::cdf(boost::math::complement(dist, std::abs(estimate / se))));
}

Estimate student_t(std::span<const double> treatment, std::span<const double> control, double alpha) {
  const MeanVar a = mean_var(treatment), b = mean_var(control);
  if (a.n < 1 || b.n < 1 || a.n + b.n < 3) return {};
  const double df = static_cast<double>(a.n + b.n - 2);
  const double pooled = ((static_cast<double>(a.n) - 1) * a.var + (static_cast<double>(b.n) - 1) * b.var) / df;
  const double se = std::sqrt(pooled * (1.0 / static_cast<double>(a.n) + 1.0 / static_cast<double>(b.n)));
  return t_estimate(a.mean - b.mean, se, df, alpha);
}

Estimate welch_t(std::span<const double> treatment, std::span<const double> control, double alpha) {
  const MeanVar a = mean_var(treatment), b = mean_var(control);
  if (a.n < 2 || b.n < 2) return {};
  const double va = a.var / static_cast<double>(a.n), vb = b.var / static_cast<double>(b.n);
  const double denom = va * va / static_cast<double>(a.n - 1) + vb * vb / static_cast<double>(b.n - 1);
  if (!(denom > 0.0)) {
    return not_estimable(NotEstimable::no_variance);
  }
  const double df = (va + vb) * (va + vb) / denom;
  return t_estimate(a.mean - b.mean, std::sqrt(va + vb), df, alpha);
}

Estimate ancova(std::span<const double> y, std::span<const double> baseline, std::span<const std::int8_t> treated,
                std::span<const std::int8_t> stratum, double alpha) {
  const auto n = static_cast<Eigen::Index>(y.size());
  bool stratum_varies = false;
  std::size_t n_treated = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    stratum_varies = stratum_varies || stratum[i] != stratum[0];
    n_treated += treated[i] != 0 ? 1u : 0u;
  }
  if (n_treated == 0 || n_treated == y.size()) return {};
  const Eigen::Index p = stratum_varies ? 4 : 3;
  if (n <= p) return {};
  // Centre the continuous column for conditioning; the arm coefficient is unchanged. With at
  // most 4 columns (intercept, arm and stratum indicators, centred baseline) X'X is well
  // conditioned, so the normal equations in fixed-size storage agree with a QR solution to
  // ~1e-13 and allocate nothing; the residuals are formed explicitly for the RSS.
  double base_mean = 0;
  for (double v : baseline) base_mean += v;
  base_mean /= static_cast<double>(n);
  using Small4 = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, 4, 4>;
  using Vec4 = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, 4, 1>;
  Small4 xtx = Small4::Zero(p, p);
  Vec4 xty = Vec4::Zero(p), x(p);
  auto row = [&](std::size_t k) {
    x(0) = 1.0;
    x(1) = treated[k] != 0 ? 1.0 : 0.0;
    x(2) = baseline[k] - base_mean;
    if (stratum_varies) x(3) = stratum[k] != 0 ? 1.0 : 0.0;
  };
  double y_mean = 0;
  for (std::size_t k = 0; k < y.size(); ++k) {
    row(k);
    for (Eigen::Index r = 0; r < p; ++r) {
      for (Eigen::Index c = 0; c <= r; ++c) xtx(r, c) += x(r) * x(c);
      xty(r) += x(r) * y[k];
    }
    y_mean += y[k];
  }
  for (Eigen::Index r = 0; r < p; ++r) {
    for (Eigen::Index c = r + 1; c < p; ++c) xtx(r, c) = xtx(c, r);
  }
  y_mean /= static_cast<double>(n);
  const Eigen::LLT<Small4> llt(xtx);
  if (llt.info() != Eigen::Success) return not_estimable(NotEstimable::rank_deficient);
  // A column (nearly) in the span of the others leaves a (nearly) zero pivot.
  for (Eigen::Index k = 0; k < p; ++k) {
    const double l = llt.matrixLLT()(k, k);
    if (!(l * l > 1e-12 * xtx(k, k))) return not_estimable(NotEstimable::rank_deficient);
  }
  const Vec4 beta = llt.solve(xty);
  double rss = 0, tss = 0, yy = 0;
  for (std::size_t k = 0; k < y.size(); ++k) {
    row(k);
    double fitted = 0;
    for (Eigen::Index c = 0; c < p; ++c) fitted += x(c) * beta(c);
    const double r = y[k] - fitted;
    rss += r * r;
    tss += (y[k] - y_mean) * (y[k] - y_mean);
    yy += y[k] * y[k];
  }
  // A perfect fit (e.g. a constant outcome) leaves only rounding residue: no variance to test.
  if (!(rss > 1e-24 * static_cast<double>(n) * std::max(tss, yy))) {
    return not_estimable(NotEstimable::no_variance);
  }
  const double df = static_cast<double>(n - p);
  const double sigma2 = rss / df;
  Vec4 e1 = Vec4::Zero(p);
  e1(1) = 1.0;
  const double v11 = llt.solve(e1)(1);  // (X'X)^-1 at the arm
  return t_estimate(beta(1), std::sqrt(sigma2 * v11), df, alpha);
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

Estimate Analysis::completers(Method m, const TrialData& trial, AnalysisWorkspace& ws) const {
  const std::size_t last = trial.last();
  ws.a.clear();
  ws.b.clear();
  ws.y.clear();
  ws.base.clear();
  ws.arm.clear();
  ws.stratum.clear();
  for (const std::size_t i : trial.randomized) {
    const Patient& p = trial.patients[i];
    if (!p.completed(last)) continue;
    const double final_value = p.observed_spp[last];
    if (m == Method::ancova) {
      ws.y.push_back(final_value);
      ws.base.push_back(p.observed_spp[0]);
      ws.arm.push_back(p.arm == Arm::treatment ? 1 : 0);
      ws.stratum.push_back(p.cov.diabetes ? 1 : 0);
    } else {
      const double v = m == Method::change_ttest ? final_value - p.observed_spp[0] : final_value;
      (p.arm == Arm::treatment ? ws.a : ws.b).push_back(v);
    }
  }
  if (m == Method::ancova) return ancova(ws.y, ws.base, ws.arm, ws.stratum, cfg_.alpha);
  return m == Method::completers_welch ? welch_t(ws.a, ws.b, cfg_.alpha) : student_t(ws.a, ws.b, cfg_.alpha);
}

std::array<Estimate, kMethods> Analysis::estimate_all(const TrialData& trial, AnalysisWorkspace& ws, std::uint64_t seed,
                                                      std::uint64_t replicate) const {
  std::array<Estimate, kMethods> out{};
  bool visits_built = false;
  std::optional<MmrmFit> mmrm;
  auto visits = [&]() -> const RepeatedMeasures& {
    if (!visits_built) {
      const std::size_t last = trial.last();
      RepeatedMeasures& d = ws.visits;
      d.clear(static_cast<int>(last));
      for (const std::size_t i : trial.randomized) {
        const Patient& p = trial.patients[i];
        d.treated.push_back(p.arm == Arm::treatment ? 1 : 0);
        d.stratum.push_back(p.cov.diabetes ? 1 : 0);
        d.baseline.push_back(p.observed_spp[0]);
        for (std::size_t k = 1; k <= last; ++k) {
          d.y.push_back(p.observed_spp[k]);
          d.seen.push_back(p.seen[k] ? 1 : 0);
        }
      }
      visits_built = true;
    }
    return ws.visits;
  };
  auto mmrm_fit = [&]() -> const MmrmFit& {
    if (!mmrm) mmrm = fit_mmrm(visits(), cfg_.alpha, cfg_.mmrm_df);
    return *mmrm;
  };
  for (const Method m : cfg_.methods) {
    Estimate& e = out[static_cast<std::size_t>(m)];
    switch (m) {
      case Method::completers_ttest:
      case Method::completers_welch:
      case Method::change_ttest:
      case Method::ancova: e = completers(m, trial, ws); break;
      case Method::mmrm: e = mmrm_fit().effect; break;
      case Method::ipw_ancova: e = fit_ipw_ancova(visits(), cfg_.alpha).effect; break;
      case Method::mi_delta: {
        Stream rng(seed, replicate, StreamKind::analysis, static_cast<std::uint64_t>(m));
        e = mi_delta(visits(), cfg_.mi, cfg_.alpha, rng);
        break;
      }
    }
  }
  return out;
}

}  // namespace trialsim
