#pragma once
// Screening: consent -> prior-Mg exclusion -> loss before baseline -> entry reading(s) ->
// cutoff -> randomized.
#include "models/measurement.hpp"
#include "models/trial_data.hpp"
#include "sim/io/config_reader.hpp"
#include "sim/engine/draws.hpp"

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
  explicit Screening(const ScreeningConfig& cfg)
      : cfg_(cfg),
        has_max_(cfg.entry_max.has_value()),
        has_min_(cfg.entry_min.has_value()),
        max_(cfg.entry_max.value_or(0.0)),
        min_(cfg.entry_min.value_or(0.0)) {}

  // Where each of consented patients 0 .. n - 1 leaves the funnel (or Status::randomized), into
  // t.status, from t.prior_mg and t.entry_spp. Draws the loss before baseline from the
  // patients' population streams (population_slot::pre_baseline_loss) for everyone who can be
  // lost, whatever the exclusions, and never when nobody can.
  void classify(const UnitColumns& units, std::size_t n, TrialData& t, Scratch& scratch) const;
  // One patient's status, given the loss draw u (1 when the loss cannot happen).
  Status classify(bool prior_mg, double entry_spp, double u) const {
    if (prior_mg) return Status::prior_mg;
    if (u < cfg_.pre_baseline_loss) return Status::lost_pre_baseline;
    if (has_max_ && !(entry_spp < max_)) return Status::entry_above_max;
    if (has_min_ && !(entry_spp >= min_)) return Status::entry_below_min;
    return Status::randomized;
  }

  const ScreeningConfig& config() const { return cfg_; }

 private:
  ScreeningConfig cfg_;
  bool has_max_, has_min_;
  double max_, min_;
};

}  // namespace trialsim
