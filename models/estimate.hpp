#pragma once
// What one analysis of one trial returns.
#include <cstddef>
#include <cstdint>

namespace trialsim {

// Why a trial could not be analysed by a method.
enum class NotEstimable : std::uint8_t {
  none = 0,
  too_few_patients,  // an arm empty, or not enough completers for a variance
  no_variance,       // all outcomes identical: the standard error is zero
  rank_deficient,    // a design matrix or covariance is not identified (e.g. constant baseline)
  not_converged,     // an iterative fit (MMRM's REML) did not converge
};
inline constexpr std::size_t kNotEstimableReasons = 5;

// The hypothesis every analysis of a scenario tests (trial.sides, trial.margin). Two-sided:
// H0 effect = margin against effect != margin, rejected when the (1 - alpha) CI excludes the
// margin. One-sided: H0 effect <= margin against effect > margin (superiority at margin 0,
// non-inferiority at a negative margin), rejected at level alpha when the one-sided (1 - alpha)
// lower confidence bound lies above the margin. A one-sided analysis reports the two-sided
// (1 - 2 alpha) interval, whose lower end is that bound (ICH E9; Piaggio et al., CONSORT for
// non-inferiority trials, JAMA 2012).
struct Hypothesis {
  int sides = 2;
  double margin = 0.0;
  // The level at which the analyses compute their two-sided intervals.
  double interval_alpha(double alpha) const { return sides == 1 ? 2.0 * alpha : alpha; }
  // Whether a true effect lies in the null hypothesis: then the rejection rate is the type I
  // error (at most alpha), whatever the size.
  bool null_holds(double effect) const { return sides == 1 ? effect <= margin : effect == margin; }
};

struct Estimate {
  NotEstimable status = NotEstimable::too_few_patients;
  double estimate = 0;
  double se = 0;
  double ci_low = 0;
  double ci_high = 0;
  double df = 0;
  bool estimable() const { return status == NotEstimable::none; }
  // p of the test of `h` from Student's t(df) at (estimate - margin) / se: two-sided, or the
  // upper tail for a one-sided test (0 when not estimable). Computed on request: the summaries
  // need only whether the test rejects, which the CI already says.
  double p(const Hypothesis& h) const;
  // The level-alpha test of `h` rejects (the interval computed at h.interval_alpha(alpha)):
  // two-sided, the CI excludes the margin; one-sided, its lower end is above the margin. Either
  // is p < alpha.
  bool rejects(const Hypothesis& h) const {
    return estimable() && (ci_low > h.margin || (h.sides == 2 && ci_high < h.margin));
  }
  // The confidence set covers `theta`: the two-sided interval, or for a one-sided hypothesis the
  // one-sided (1 - alpha) set [ci_low, infinity).
  bool covers(double theta, const Hypothesis& h) const {
    return ci_low <= theta && (h.sides == 1 || theta <= ci_high);
  }
};

// An estimable Estimate from estimate, SE and t degrees of freedom: (1 - alpha) CI from
// Student's t (Boost.Math's quantile; at a df that is not an integer, interpolated on a grid of
// its values, see t_quantile in models/analysis.cpp); no_variance when the SE is zero or not finite.
Estimate t_estimate(double estimate, double se, double df, double alpha);

// Whether a Cholesky factorization A = L L' of a cross-product matrix A = X'X shows X's columns
// linearly independent: the factorization succeeded and every squared pivot L_kk^2 (the part of
// column k not explained by the columns before it) exceeds 1e-10 of A_kk, i.e. no column has a
// squared partial correlation of 1 - 1e-10 or more with the earlier ones.
template <class Llt, class Matrix>
bool full_rank_cholesky(const Llt& llt, const Matrix& a) {
  if (llt.info() != 0) return false;  // Eigen::Success
  for (decltype(a.rows()) k = 0; k < a.rows(); ++k) {
    const double l = llt.matrixLLT()(k, k);
    if (!(l * l > 1e-10 * a(k, k))) return false;
  }
  return true;
}

// A not-estimable result with its reason.
inline Estimate not_estimable(NotEstimable why) {
  Estimate e;
  e.status = why;
  return e;
}

}  // namespace trialsim
