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
// The treatment effect is gamma_J (MgO minus control at the last visit), c' beta with c the unit
// vector of gamma_J. Its test and CI use one of three small-sample rules (MmrmDf), all with
// theta = the unique elements of Sigma, in which V is linear (d2 V / d theta_k d theta_l = 0):
//  * kenward_roger (the default): Kenward & Roger (Biometrics 1997). The plug-in
//    Phi = (X' V^-1 X)^-1 ignores that Sigma is estimated and is biased downwards in small
//    samples (Kackar & Harville, JASA 1984); the adjusted covariance is
//      Phi_A = Phi + 2 Phi [sum_kl W_kl (Q_kl - P_k Phi P_l)] Phi,
//      P_k = -X' V^-1 V_k V^-1 X,  Q_kl = X' V^-1 V_k V^-1 V_l V^-1 X,
//    with W the inverse expected REML information (their R_kl term is zero for linear V).
//    For a single contrast their F scaling lambda is exactly 1 and their denominator df
//    m = 2 / A_2, A_2 = (g' W g) / (c' Phi c)^2, g_k = d(c' Phi c) / d theta_k; the test is
//    t = c' beta / sqrt(c' Phi_A c) on m df.
//  * satterthwaite: plug-in SE sqrt(c' Phi c), df = 2 (c' Phi c)^2 / (g' H^-1 g) with H the
//    observed REML information (minus the Hessian of the REML log-likelihood), which
//    Kenward & Molenberghs (Biometrics 1998) recommend over the expected information when
//    data are missing at random (Satterthwaite, Biometrics Bull 1946).
//  * satterthwaite_expected: plug-in SE, the same df with the expected information I in place
//    of H (the rule trialsim used before the other two; kept to reproduce earlier results).
//    For one contrast it is also Kenward-Roger's df, so the two differ only in the SE.
#include "models/estimate.hpp"
#include "models/repeated_measures.hpp"
#include "models/trial_data.hpp"

#include <Eigen/Core>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trialsim {

// How the MMRM's treatment effect is tested: see the header comment.
enum class MmrmDf : std::uint8_t { kenward_roger, satterthwaite, satterthwaite_expected };

std::string_view mmrm_df_name(MmrmDf df);
// The rule of a name, if any.
std::optional<MmrmDf> mmrm_df_from_name(std::string_view name);
// Every rule's name, in enum order.
std::vector<std::string> all_mmrm_df_names();

// Capacities of the fit's matrices: J post-baseline visits at most kMaxVisits, so at most
// 3 J + 1 fixed effects. Fixed capacities keep a fit off the heap.
inline constexpr int kMmrmMaxVisits = static_cast<int>(kMaxVisits);
inline constexpr int kMmrmMaxFixed = 3 * kMmrmMaxVisits + 1;
using MmrmVector = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMmrmMaxFixed, 1>;
using MmrmFixedMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMmrmMaxFixed, kMmrmMaxFixed>;
using MmrmVisitMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMmrmMaxVisits, kMmrmMaxVisits>;

struct MmrmFit {
  // Whether the REML fit itself succeeded (beta, sigma and beta_cov are then valid, and
  // c' Phi c > 0); effect adds what the chosen df rule needs on top of it.
  NotEstimable status = NotEstimable::too_few_patients;
  Estimate effect;
  MmrmVector beta;          // [alpha_1..J, gamma_1..J, delta_1..J, eta (if stratum varies)]
  MmrmVisitMatrix sigma;    // J x J
  MmrmFixedMatrix beta_cov; // (X' V^-1 X)^-1 at the REML estimate (the plug-in Phi, unadjusted)
  double reml_loglik = 0; // -1/2 [sum log|V_i| + log|X'V^-1X| + r'V^-1 r + (N - p) log 2 pi]
  int iterations = 0;
  int patients = 0;       // contributing (at least one post-baseline value)
  int observations = 0;
};

// Fits the model and tests the effect by the rule `df`. status (and effect.status) is
// not_converged when Fisher scoring does not converge in 200 iterations, rank_deficient when a
// fixed effect or a covariance element is not identified (e.g. no treated patient observed at
// the last visit, or no patient seen at two visits), too_few_patients when fewer patients than
// parameters contribute. With satterthwaite, effect.status is also not_converged when the
// observed information is not positive definite there (no strict maximum of the REML
// likelihood), though the fit itself is returned.
// Each thread keeps its working storage from one call to the next (sized by the largest J seen),
// so a trial's fit makes no heap allocation once a thread has fitted one of the same size.
MmrmFit fit_mmrm(const RepeatedMeasures& d, double alpha, MmrmDf df);

}  // namespace trialsim
