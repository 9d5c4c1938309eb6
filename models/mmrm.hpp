#pragma once
// Mixed model for repeated measures (MMRM) on the post-baseline visits.
//
// Model: for patient i at post-baseline visit j = 1..J,
//   y_ij = alpha_j + gamma_j arm_i + delta_j baseline_i + eta stratum_i + e_ij,
//   e_i ~ N(0, Sigma) with Sigma unstructured (J x J),
// fitted by restricted maximum likelihood (REML, Patterson & Thompson, Biometrika 1971) with
// Fisher scoring on the unique elements of Sigma (Jennrich & Schluchter, Biometrics 1986).
// Patients with at least one post-baseline value contribute all their observed visits; under
// missing at random the estimates are valid (Mallinckrodt et al., Drug Inf J 2008).
// The treatment effect is gamma_J (MgO minus control at the last visit), with its model-based
// SE sqrt(c' (X' V^-1 X)^-1 c) and Satterthwaite degrees of freedom
//   df = 2 (c' Phi c)^2 / (g' I^-1 g),  g_k = d(c' Phi c)/d theta_k,
// using the expected REML information I (Satterthwaite, Biometrics Bull 1946; the rule the
// SAS MIXED DDFM=SATTERTH option and R's mmrm package use).
#include "models/estimate.hpp"
#include "models/repeated_measures.hpp"
#include "models/trial_data.hpp"

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace trialsim {

struct MmrmFit {
  Estimate effect;
  Eigen::VectorXd beta;   // [alpha_1..J, gamma_1..J, delta_1..J, eta (if stratum varies)]
  Eigen::MatrixXd sigma;  // J x J
  Eigen::MatrixXd beta_cov;  // (X' V^-1 X)^-1 at the REML estimate
  double reml_loglik = 0; // -1/2 [sum log|V_i| + log|X'V^-1X| + r'V^-1 r + (N - p) log 2 pi]
  int iterations = 0;
  int patients = 0;       // contributing (at least one post-baseline value)
  int observations = 0;
};

// Fits the model. effect.status is not_converged when Fisher scoring does not converge in 200
// iterations, rank_deficient when a fixed effect or a covariance element is not identified
// (e.g. no treated patient observed at the last visit, or no patient seen at two visits),
// too_few_patients when fewer patients than parameters contribute.
MmrmFit fit_mmrm(const RepeatedMeasures& d, double alpha);

}  // namespace trialsim
