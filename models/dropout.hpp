#pragma once
// Withdrawal during follow-up: competing risks of death, transfer and (on MgO) adverse events.
#include "models/trial_data.hpp"
#include "sim/io/config_reader.hpp"
#include "sim/engine/draws.hpp"

#include <limits>

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

// The slots of a patient's dropout stream (sim/engine/rng.hpp): the Exp(1) threshold of the
// cumulative hazard, and the uniform that picks the cause of a patient who drops out.
namespace dropout_slot {
inline constexpr std::uint32_t threshold = 0, cause = 1;
}  // namespace dropout_slot

class Dropout {
 public:
  // `horizon_months`: follow-up ends here (the last visit); `effect_onset_months`: the ramp of
  // the treatment effect on the true SPP path (TruePath::onset_months of every path followed).
  Dropout(const DropoutConfig& cfg, double horizon_months, double effect_onset_months);

  // Each randomized row's dropout month and reason over [0, horizon] (t.dropout_month, infinity
  // if the patient stays; t.dropout_reason), from its dropout stream (`units` in row order),
  // given t.arm and the true paths. Death and transfer hazards are multiplied by
  // spp_hazard_ratio_per_10^((reference - x)/10), piecewise constant: the true SPP at the middle
  // of each month, or with on_observed the last reading in t.observed (as Measurement::readings
  // leaves it: one per visit at `months`, NaN where a visit is missed) taken at or before the
  // start of each piece, the pieces breaking at every month and visit.
  void follow(const UnitColumns& units, TrialData& t, const std::vector<double>& months, Scratch& scratch) const;

  // What happened to one patient, from the walk below.
  struct Fate {
    double month = std::numeric_limits<double>::infinity();
    DropoutReason reason = DropoutReason::none;
  };

  const DropoutConfig& config() const { return cfg_; }

 private:
  // The cause of a dropout in a piece whose hazard multiplier is m, from the cause slot.
  DropoutReason cause(const UnitKey& unit, bool treated, double m) const;
  // The crossing of the threshold in a piece [start, start + width) with multiplier m: sets the
  // fate and returns true; else adds the piece's hazard to `cumulative`.
  bool crosses(Fate& f, const UnitKey& unit, bool treated, double start, double width, double m, double threshold,
               double& cumulative) const;
  // Every row's fate on the true SPP path, and one patient's walk where a multiplier would pass
  // e^700 or on the readings (one per visit, `stride` apart).
  void walk_true(const UnitColumns& units, TrialData& t, const double* threshold, Scratch& scratch) const;
  Fate walk_capped(const UnitKey& unit, bool treated, const TruePath& path, double threshold) const;
  Fate walk_observed(const UnitKey& unit, bool treated, const std::vector<double>& months, const double* readings,
                     std::size_t stride, double threshold) const;

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
