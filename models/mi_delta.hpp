#pragma once
// Multiple imputation of missing last-visit values, shifted by delta (MNAR sensitivity
// analysis; the delta-adjustment of Ratitch, O'Kelly & Tosiello, Pharm Stat 2013), analysed by
// ANCOVA and combined by Rubin's rules (Rubin 1987) with the small-sample degrees of freedom
// of Barnard & Rubin (Biometrika 1999).
//
// Imputation model: the MMRM's multivariate normal model of the post-baseline visits (means
// linear in arm, baseline and stratum at each visit, unstructured covariance), written as the
// regressions of each visit j on arm, baseline, stratum and visits 1..j-1 (Carpenter & Kenward
// 2013, ch. 3). Dropout leaves monotone patterns, for which the likelihood factors into these
// regressions, each fitted to the patients still seen at its visit (Little & Rubin 2002,
// ch. 7); a patient's missing visits are drawn from them in order, valid under MAR.
//
// Parameters, which proper imputation must draw afresh for every imputation (Rubin 1987,
// ch. 4): each imputation refits every regression under Bayesian bootstrap weights,
// Dirichlet(1, ..., 1) over the patients of each arm (Rubin, Ann Stat 1981), the posterior of
// the regressions under a nonparametric model of the patients, with each residual variance on
// the df that make it unbiased under the weights. Exact draws from the normal model's
// posterior under the usual prior 1/sigma^2 (sigma^2 ~ RSS / chi^2(n - p), beta | sigma^2 ~
// N(beta_hat, sigma^2 (X'X)^-1)) overstate the parameters' uncertainty in small trials (von
// Hippel, Sociol Methods Res 2013): at 40 consented with 4 post-baseline visits they gave
// type I error 0.041 and model SEs 4% above the empirical SE, the bootstrap 0.047 and 0.7%.
//
// Visits missed by a patient seen later (`measurement.missed_visit_prob`) break the monotone
// pattern. They are filled by monotone data augmentation (Li, J Stat Comput Simul 1988;
// Schafer 1997, ch. 6): a Gibbs chain on the trial's own data that alternates drawing those
// gaps given each patient's observed visits with drawing the regressions from that posterior
// given the filled data. Each imputation takes the chain's current fill and then the bootstrap
// refit above for the visits after each patient's last. Without gaps no chain is run.
//
// Each patient missing the last visit gets its imputed value plus delta when in an arm the
// shift applies to; each completed data set is analysed by last ~ arm + baseline + stratum
// over every randomized patient.
#include "models/estimate.hpp"
#include "models/repeated_measures.hpp"
#include "sim/engine/rng.hpp"

#include <vector>

namespace trialsim {

struct MiSettings {
  int imputations = 20;
  double delta = 0.0;              // mmHg added to imputed last-visit values
  bool delta_both_arms = false;    // false: MgO arm only
  // Without intermittent gaps the imputations are made eight at a time (their draws in the
  // order of one at a time, their cross-products and regressions vectorized across them): the
  // same results bit for bit as one at a time (false), which the unit tests compare.
  bool batched = true;
};

// Rubin's rules. `df_complete` is the complete-data residual df.
Estimate rubin_combine(const std::vector<double>& estimates, const std::vector<double>& variances, double df_complete,
                       double alpha);

// too_few_patients when an arm is empty or a visit's regression has no residual df left,
// rank_deficient when a regression's design is singular (e.g. one arm no longer seen at a
// visit), no_variance when a visit or the completed last visit is fitted exactly.
Estimate mi_delta(const RepeatedMeasures& d, const MiSettings& s, double alpha, Stream& rng);

}  // namespace trialsim
