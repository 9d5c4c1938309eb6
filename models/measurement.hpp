#pragma once
// The SPP process of a patient and how it is measured.
//
// A reading of patient i at month t is
//   Y_i(t) = T_i(t) + U_i(t) + e
//   T_i(t) = level_i + (drift + slope_i) t + effect_i(t)          (the true, long-run SPP)
//   level_i = mean + diabetes_shift (D_i - p_D) + age_shift (age_i - age_mean)/10 + b_i
//   b_i ~ N(0, sd_between^2), slope_i ~ N(0, (sd_slope_per_year/12)^2)
//   U_i   a stationary Ornstein-Uhlenbeck process, SD sd_biological, corr exp(-|dt|/tau):
//         biological visit-to-visit variation that decorrelates over months
//   e ~ N(0, sd_measurement^2 / readings)                          (reading noise)
// Covariate shifts are centred on the population's expected values, so `spp.mean` is the
// mean true SPP of consented patients at month 0. "True SPP" everywhere in trialsim means
// T_i(t): what repeated readings around month t would average to. Regression to the mean is
// the part of an entry reading's selection that falls on U + e and therefore does not last.
#include "models/population.hpp"
#include "models/trial_data.hpp"
#include "sim/config_reader.hpp"
#include "sim/rng.hpp"

#include <array>
#include <vector>

namespace trialsim {

struct SppConfig {
  double mean = 59.5;
  double sd_between = 12.0;
  double sd_biological = 10.0;
  double biological_corr_months = 6.0;
  double sd_measurement = 5.0;
  double drift_per_year = 8.0;
  double sd_slope_per_year = 10.0;
  double diabetes_shift = -6.0;
  double age_shift_per_10y = -2.0;

  static SppConfig read(ConfigReader& in);
};

struct MeasurementConfig {
  int readings_per_visit = 1;
  double missed_visit_prob = 0.0;

  static MeasurementConfig read(ConfigReader& in);
};

// When the entry readings are taken, relative to month 0.
struct EntrySchedule {
  int readings = 1;
  double lead_months = 0.0;      // the last entry reading is this long before month 0
  double interval_months = 0.0;  // spacing between entry readings
  bool separate_baseline = false;
  double time(int j) const { return -lead_months - (readings - 1 - j) * interval_months; }
};

// Within-patient deviations U + e of one patient at every reading the design can take.
struct Deviations {
  std::array<double, kMaxEntryReadings> entry{};
  std::array<double, kMaxVisits> visit{};
  std::array<bool, kMaxVisits> missed{};
};

class Measurement {
 public:
  Measurement(const SppConfig& spp, const MeasurementConfig& m, const PopulationConfig& pop,
              std::vector<double> months, EntrySchedule entry);

  // Latent level and slope, from the patient's population stream.
  SppLatent draw_latent(const Covariates& cov, Stream& rng) const;
  // Biological fluctuation and reading noise at every reading, from the measurement stream:
  // draw_entry for the entry readings (u: the fluctuation at the last of them), then
  // draw_visits for the visits (only patients who are randomized need them);
  // draw_deviations does both.
  void draw_entry(Stream& rng, Deviations& d, double& u) const;
  void draw_visits(Stream& rng, Deviations& d, double u) const;
  Deviations draw_deviations(Stream& rng) const;
  // The patient's true SPP path, given their full treatment effect and its onset.
  TruePath path(const SppLatent& s, double effect = 0.0, double onset_months = 0.0) const {
    return {s.level, drift_per_month_ + s.slope, effect, onset_months};
  }
  // True SPP at `month` without any treatment effect.
  double true_untreated(const SppLatent& s, double month) const { return path(s).at(month); }
  // Mean of the entry readings.
  double entry_mean(const SppLatent& s, const Deviations& d) const;
  // True SPP averaged over the times of the baseline reading(s).
  double true_baseline(const SppLatent& s) const;
  // Mean time (months, <= 0) of the baseline reading(s).
  double baseline_time() const;
  double drift_per_month() const { return drift_per_month_; }
  // The reading each visit would give if the patient were still in the trial (NaN where the
  // visit is missed at random). true_spp and entry_spp must already be filled.
  std::array<double, kMaxVisits> potential(const Patient& p, const Deviations& d) const;
  // Observed SPP at the visits the patient attended: before dropout and not missed.
  void observe(Patient& p, const std::array<double, kMaxVisits>& potential) const;

  const SppConfig& spp() const { return spp_; }
  const MeasurementConfig& config() const { return cfg_; }

 private:
  void prepare_schedule();

  SppConfig spp_;
  MeasurementConfig cfg_;
  // {rho, sqrt(1 - rho^2) sd} of the OU step to each entry reading (from the previous one) and
  // to each visit (from the previous reading), and the SD of a visit's mean reading noise.
  std::array<std::array<double, 2>, kMaxEntryReadings> entry_step_{};
  std::array<std::array<double, 2>, kMaxVisits> visit_step_{};
  double visit_noise_ = 0;
  std::vector<double> months_;
  EntrySchedule entry_;
  double diabetes_centre_;
  double age_centre_;
  double drift_per_month_;
  double slope_sd_per_month_;
};

}  // namespace trialsim
