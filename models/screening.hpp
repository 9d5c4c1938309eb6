#pragma once
// Screening: consent -> prior-Mg exclusion -> loss before baseline -> entry reading(s) ->
// cutoff -> randomized.
#include "models/measurement.hpp"
#include "models/trial_data.hpp"
#include "sim/io/config_reader.hpp"
#include "sim/engine/rng.hpp"

#include <optional>

namespace trialsim {

struct ScreeningConfig {
  std::optional<double> entry_max;         // eligible if entry SPP < entry_max (none: no cutoff)
  std::optional<double> entry_min;         // eligible if entry SPP >= entry_min
  int entry_measurements = 1;
  bool separate_baseline = false;
  double pre_baseline_loss = 8.0 / 103.0;
  double entry_lead_months = 0.0;
  double entry_interval_months = 0.0;

  static ScreeningConfig read(ConfigReader& in);
  EntrySchedule schedule() const {
    return {entry_measurements, entry_lead_months, entry_interval_months, separate_baseline};
  }
};

class Screening {
 public:
  explicit Screening(const ScreeningConfig& cfg) : cfg_(cfg) {}

  // Where the patient leaves the funnel (or Status::randomized), given the entry SPP mean.
  // Draws the loss before baseline from `rng` (the patient's population stream, after the
  // covariates and the SPP level), only when that loss can happen.
  Status classify(const Covariates& cov, double entry_spp, Stream& rng) const;

  const ScreeningConfig& config() const { return cfg_; }

 private:
  ScreeningConfig cfg_;
};

}  // namespace trialsim
