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
#include "sim/io/config_reader.hpp"
#include "sim/engine/draws.hpp"

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

// The slots of a patient's measurement stream (sim/engine/rng.hpp), one per draw: the
// fluctuation at the first entry reading, the OU step to each later entry reading and to each
// visit, the noise of each entry reading and of each visit, and whether each visit is missed.
namespace measurement_slot {
inline constexpr std::uint32_t entry_fluctuation = 0;
constexpr std::uint32_t entry_step(std::size_t j) { return static_cast<std::uint32_t>(j); }  // j >= 1
constexpr std::uint32_t entry_noise(std::size_t j) { return static_cast<std::uint32_t>(8 + j); }
constexpr std::uint32_t visit_step(std::size_t k) { return static_cast<std::uint32_t>(16 + k); }
constexpr std::uint32_t visit_noise(std::size_t k) { return static_cast<std::uint32_t>(32 + k); }
constexpr std::uint32_t visit_missed(std::size_t k) { return static_cast<std::uint32_t>(48 + k); }
}  // namespace measurement_slot

class Measurement {
 public:
  // `effect_onset_months`: the treatment effect's ramp (TreatmentConfig), which shapes the true
  // paths this model measures. `all_visits_read`: whether anything reads the readings of the
  // visits between month 0 and the last (an analysis of every visit, dropout on observed SPP,
  // the patients CSV); if not, their reading noise is not drawn and their deviations are NaN.
  Measurement(const SppConfig& spp, const MeasurementConfig& m, const PopulationConfig& pop,
              std::vector<double> months, EntrySchedule entry, double effect_onset_months = 0.0,
              bool all_visits_read = true);

  // Latent level and slope of consented patients 0 .. n - 1 (t.level, t.slope), from their
  // population streams; reads t.diabetes and t.age. No draw for a slope that cannot vary.
  void draw_latent(const UnitColumns& units, std::size_t n, TrialData& t, Scratch& scratch) const;
  // Biological fluctuation and reading noise at every reading, from the measurement streams
  // (measurement_slot). draw_entry: the entry readings of consented patients 0 .. n - 1, into
  // t.entry_spp (their mean) and t.true_baseline, with the fluctuation at the last entry reading
  // in `u` (n values, for draw_visits) and, when `entry` is given, every entry reading's
  // deviation at entry[j * n + i]. draw_visits: the visits of the randomized rows (`units` in
  // row order, `u` gathered to rows), into t.deviation and, in t.seen, whether each visit is
  // attendable (0 where missed at random). A draw whose coefficient is 0 is not made: no
  // fluctuation without sd_biological or between readings at the same time, no missed visits
  // without missed_visit_prob, and no month-0 reading noise when the baseline is the entry
  // reading.
  void draw_entry(const UnitColumns& units, std::size_t n, TrialData& t, double* u, Scratch& scratch,
                  double* entry = nullptr) const;
  void draw_visits(const UnitColumns& units, TrialData& t, const double* u, Scratch& scratch) const;
  // The patient's true SPP path, given their full treatment effect.
  TruePath path(double level, double own_slope, double effect = 0.0) const {
    return {level, drift_per_month_ + own_slope, effect, onset_months_};
  }
  // True SPP at `month` without any treatment effect.
  double true_untreated(double level, double own_slope, double month) const {
    return level + (drift_per_month_ + own_slope) * month;
  }
  // True SPP at visit k on a path (TruePath::at with the effect's ramp at the schedule's months
  // worked out once).
  double true_at_visit(const TruePath& p, std::size_t k) const {
    return p.level + p.slope * months_[k] + p.effect * effect_fraction_[k];
  }
  // TruePath::effect_at(months[k]) / effect: the share of the full effect reached by visit k.
  double effect_fraction(std::size_t k) const { return effect_fraction_[k]; }
  // Mean time (months, <= 0) of the baseline reading(s).
  double baseline_time() const { return entry_.separate_baseline ? 0.0 : entry_time_mean_; }
  double drift_per_month() const { return drift_per_month_; }
  // The reading each visit would give if the patient were still in the trial, into t.observed
  // (NaN where the visit is missed at random), from t.deviation, t.seen (holding whether each
  // visit is attendable) and the true paths: what dropout on observed SPP reads.
  void readings(TrialData& t) const;
  // Once the dropout months are known: seen where attended (month 0 always), observed SPP there
  // and 0 elsewhere; at month 0 without a separate baseline the entry mean, whose deviation
  // from the true baseline goes into t.deviation.
  void observe(TrialData& t) const;

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
  std::array<double, kMaxVisits> visit_noise_{};
  std::array<double, kMaxVisits> effect_fraction_{};  // TruePath::effect_at(month) / effect
  std::vector<double> months_;
  std::size_t visits_ = 0;
  EntrySchedule entry_;
  double entry_time_mean_ = 0;
  double inv_entry_readings_ = 1;
  double onset_months_ = 0;
  bool bio_ = false, missing_ = false, all_visits_read_ = true;
  double diabetes_centre_;
  double age_centre_;
  double drift_per_month_;
  double slope_sd_per_month_;
};

}  // namespace trialsim
