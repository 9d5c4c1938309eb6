#pragma once
// Withdrawal during follow-up: competing risks of death, transfer and (on MgO) adverse events.
#include "models/trial_data.hpp"
#include "sim/io/config_reader.hpp"
#include "sim/engine/rng.hpp"

#include <array>
#include <vector>


namespace trialsim {

struct DropoutConfig {
  double death_per_year = 0.065;
  double transfer_per_year = 0.025;
  double ae_per_year = 0.08;               // treatment arm only
  // Treatment arm only: withdrawals recorded as transfers beyond the arm-independent rate (not
  // SPP-dependent), e.g. patients moving to a unit that does not continue the study drug.
  double treatment_transfer_per_year = 0.0;
  double spp_hazard_ratio_per_10 = 1.38;   // per 10 mmHg lower true SPP; 1 = non-informative
  double reference_spp = 59.5;             // the SPP at which the rates above apply (spp.mean)
  // What the hazard ratio acts on: the patient's true SPP (dropout missing not at random), or
  // their last observed SPP reading (missing at random given the observed data).
  bool on_observed = false;

  static DropoutConfig read(ConfigReader& in, double reference_spp);
};

class Dropout {
 public:
  // `horizon_months`: follow-up ends here (the last visit); `effect_onset_months`: the ramp of
  // the treatment effect on the true SPP path (TruePath::onset_months of every path followed).
  Dropout(const DropoutConfig& cfg, double horizon_months, double effect_onset_months);

  // Draws the patient's dropout month and reason over [0, horizon] from its dropout stream
  // (nothing when no hazard is positive). Death and transfer hazards are multiplied by
  // spp_hazard_ratio_per_10^((reference - x)/10), piecewise constant: the true SPP `true_spp` at
  // the middle of each month, or with on_observed the last reading in `readings` (one per visit
  // at `months`, NaN where a visit is missed) taken at or before the start of each piece, the
  // pieces breaking at every month and visit.
  void follow(Patient& p, const TruePath& true_spp, const std::vector<double>& months, const double* readings,
              Stream& rng) const;

  const DropoutConfig& config() const { return cfg_; }

 private:
  // The threshold is crossed in whole months [k0, k1), where the hazard multiplier is
  // exp(e0 + step (k - k0)): sets the patient's dropout and returns true; else adds the run's
  // cumulative hazard.
  bool run(Patient& p, const TruePath& path, int k0, int k1, double e0, double step, double fixed_rate,
           double threshold, double& cumulative, Stream& rng) const;

  DropoutConfig cfg_;
  double log_hr_per_mmHg_;
  // Monthly rates: SPP-dependent (death, transfer), and the treatment arm's fixed ones.
  double death_rate_, transfer_rate_, spp_rate_, treated_transfer_rate_, treated_ae_rate_;
  // The schedule of the pieces: whole months, the part-month before the horizon, the pieces
  // whose middle falls on the effect's ramp, and TruePath::effect_at / effect at the middle of
  // the first piece of each run and of the part-month.
  double horizon_, width_, onset_;
  int whole_, ramp_;
  double frac_ramp_, frac_after_, frac_part_;
};

}  // namespace trialsim
