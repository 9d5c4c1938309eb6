#pragma once
// ANCOVA on completers weighted by the inverse probability of completing (IPW).
//
// Completion model: logistic regression, fitted by iteratively reweighted least squares, of
// "seen at the last visit" on baseline SPP, stratum, arm, the last observed intermediate SPP
// (baseline when none) and whether any intermediate visit was seen, over every randomized
// patient. Completers are weighted by 1 / fitted probability and the outcome model
// final ~ arm + baseline + stratum is fitted by weighted least squares. The SE is the HC0
// sandwich (White, Econometrica 1980) treating the weights as known, which is conservative
// for estimated weights (Robins, Rotnitzky & Zhao, JASA 1995); t on n - p df. Valid when
// dropout is missing at random given the completion model's covariates.
#include "models/estimate.hpp"

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace trialsim {

struct IpwData {
  std::vector<std::int8_t> treated, stratum;
  std::vector<double> baseline;
  std::vector<double> last_observed;         // last intermediate value seen, else baseline
  std::vector<std::uint8_t> seen_intermediate;
  std::vector<std::uint8_t> completed;
  std::vector<double> final_value;           // valid where completed
  std::size_t patients() const { return baseline.size(); }
  void clear() {
    treated.clear();
    stratum.clear();
    baseline.clear();
    last_observed.clear();
    seen_intermediate.clear();
    completed.clear();
    final_value.clear();
  }
};

struct IpwFit {
  Estimate effect;
  // [intercept, baseline, stratum, arm, last_observed, seen_intermediate]; columns that are
  // constant or duplicate others in the data are left out and reported as 0. When no patient
  // unseen at every intermediate visit completes (monotone dropout), the model is fitted
  // among the others and seen_intermediate is left out (its MLE is at infinity).
  Eigen::VectorXd logit_coef;
  Eigen::VectorXd outcome_coef;  // [intercept, arm, baseline, stratum]
  int iterations = 0;
};

// not_converged: IRLS did not converge in 50 iterations or the fitted probabilities reach 0 or
// 1 (separation: the weights would be unbounded).
IpwFit fit_ipw_ancova(const IpwData& d, double alpha);

}  // namespace trialsim
