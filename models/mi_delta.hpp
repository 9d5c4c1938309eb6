#pragma once
// Multiple imputation of missing last-visit values from the MMRM fit, shifted by delta
// (MNAR sensitivity analysis; the delta-adjustment of Ratitch, O'Kelly & Tosiello, Pharm Stat
// 2013), analysed by ANCOVA and combined by Rubin's rules (Rubin 1987) with the small-sample
// degrees of freedom of Barnard & Rubin (Biometrika 1999).
//
// For each imputation m = 1..M: Sigma* ~ inverse Wishart(nu, nu Sigma_hat) with nu the number
// of contributing patients minus the fixed effects per visit, and beta* ~ N(beta_hat, Phi)
// (an approximate draw from the posterior; Schafer 1997, ch. 5). Each randomized patient
// missing the last visit gets a draw from the normal distribution of that visit given their
// observed post-baseline values, baseline, arm and stratum under (beta*, Sigma*), plus delta
// when in an arm the shift applies to. Each completed data set is analysed by
// last ~ arm + baseline + stratum over every randomized patient.
#include "models/estimate.hpp"
#include "models/mmrm.hpp"
#include "sim/rng.hpp"

#include <vector>

namespace trialsim {

struct MiSettings {
  int imputations = 20;
  double delta = 0.0;              // mmHg added to imputed last-visit values
  bool delta_both_arms = false;    // false: MgO arm only
};

// Rubin's rules. `df_complete` is the complete-data residual df.
Estimate rubin_combine(const std::vector<double>& estimates, const std::vector<double>& variances, double df_complete,
                       double alpha);

Estimate mi_delta(const RepeatedMeasures& d, const MiSettings& s, double alpha, Stream& rng);
// The same from an MMRM already fitted to `d`.
Estimate mi_delta(const RepeatedMeasures& d, const MmrmFit& fit, const MiSettings& s, double alpha, Stream& rng);

}  // namespace trialsim
