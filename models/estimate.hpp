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

struct Estimate {
  NotEstimable status = NotEstimable::too_few_patients;
  double estimate = 0;
  double se = 0;
  double ci_low = 0;
  double ci_high = 0;
  double df = 0;
  bool estimable() const { return status == NotEstimable::none; }
  // Two-sided p from Student's t(df) at estimate / se (0 when not estimable). Computed on
  // request: the summaries need only whether the test rejects, which the CI already says.
  double p() const;
  // The two-sided level-alpha test of a zero effect rejects: the (1 - alpha) CI excludes 0,
  // which is p < alpha.
  bool rejects() const { return estimable() && (ci_low > 0.0 || ci_high < 0.0); }
};

// An estimable Estimate from estimate, SE and t degrees of freedom: (1 - alpha) CI from
// Student's t (Boost.Math); no_variance when the SE is zero or not finite.
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
