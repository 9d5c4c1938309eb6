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
#include "sim/engine/rng.hpp"

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

// Within-patient deviations U + e of one patient at every reading the design can take, with the
// visits missed at random (the layout Measurement::draw_deviations returns; the trial itself
// draws straight into its visit table).
struct Deviations {
  std::array<double, kMaxEntryReadings> entry{};
  std::array<double, kMaxVisits> visit{};
  std::array<std::uint8_t, kMaxVisits> attendable{};  // 0 where the visit is missed at random
};

class Measurement {
 public:
  // `effect_onset_months`: the treatment effect's ramp (TreatmentConfig), which shapes the true
  // paths this model measures.
  Measurement(const SppConfig& spp, const MeasurementConfig& m, const PopulationConfig& pop,
              std::vector<double> months, EntrySchedule entry, double effect_onset_months = 0.0);

  // Latent level and slope, from the patient's population stream.
  SppLatent draw_latent(const Covariates& cov, Stream& rng) const {
    SppLatent s;
    s.level = spp_.mean + spp_.diabetes_shift * ((cov.diabetes ? 1.0 : 0.0) - diabetes_centre_) +
              spp_.sd_between * standard_normal(rng);
    // Age is drawn only where it shifts SPP (or minimization reads it): models/population.hpp.
    if (spp_.age_shift_per_10y != 0.0) s.level += spp_.age_shift_per_10y * (cov.age - age_centre_) / 10.0;
    // No draw for a slope that cannot vary.
    s.slope = slope_sd_per_month_ > 0 ? slope_sd_per_month_ * standard_normal(rng) : 0.0;
    return s;
  }
  // Biological fluctuation and reading noise at every reading, from the measurement stream:
  // draw_entry for the entry readings (into `entry`, one per entry reading, when given; u: the
  // fluctuation at the last of them), returning their mean deviation; then draw_visits for the
  // visits, which only randomized patients need: `deviation[k]` for every scheduled visit and
  // `attendable[k]` = 0 where visit k is missed at random. A draw whose coefficient is 0 is not
  // made: no fluctuation without sd_biological or between readings at the same time, no missed
  // visits without missed_visit_prob, and no month-0 reading noise when the baseline is the
  // entry reading. draw_deviations does both.
  double draw_entry(Stream& rng, double* entry, double& u) const {
    u = bio_ ? spp_.sd_biological * standard_normal(rng) : 0.0;
    double sum = 0.0;
    for (int j = 0; j < entry_.readings; ++j) {
      const auto jj = static_cast<std::size_t>(j);
      if (j > 0 && entry_step_[jj][1] > 0) u = entry_step_[jj][0] * u + entry_step_[jj][1] * standard_normal(rng);
      const double d = u + (spp_.sd_measurement > 0 ? spp_.sd_measurement * standard_normal(rng) : 0.0);
      if (entry != nullptr) entry[jj] = d;
      sum += d;
    }
    return sum * inv_entry_readings_;
  }
  void draw_visits(Stream& rng, double* deviation, std::uint8_t* attendable, double u) const {
    for (std::size_t k = 0; k < visits_; ++k) {
      if (visit_step_[k][1] > 0) {
        u = visit_step_[k][0] * u + visit_step_[k][1] * standard_normal(rng);
      } else {
        u *= visit_step_[k][0];
      }
      deviation[k] = u + (visit_noise_[k] > 0 ? visit_noise_[k] * standard_normal(rng) : 0.0);
      // Month 0 is the baseline, never missed; later visits are missed completely at random.
      attendable[k] = !(missing_ && k > 0 && uniform01(rng) < cfg_.missed_visit_prob);
    }
  }
  Deviations draw_deviations(Stream& rng) const;
  // The patient's true SPP path, given their full treatment effect.
  TruePath path(const SppLatent& s, double effect = 0.0) const {
    return {s.level, drift_per_month_ + s.slope, effect, onset_months_};
  }
  // True SPP at `month` without any treatment effect.
  double true_untreated(const SppLatent& s, double month) const { return s.level + (drift_per_month_ + s.slope) * month; }
  // True SPP at visit k on a path (TruePath::at with the effect's ramp at the schedule's months
  // worked out once).
  double true_at_visit(const TruePath& p, std::size_t k) const {
    return p.level + p.slope * months_[k] + p.effect * effect_fraction_[k];
  }
  // TruePath::effect_at(months[k]) / effect: the share of the full effect reached by visit k.
  double effect_fraction(std::size_t k) const { return effect_fraction_[k]; }
  // True SPP averaged over the times of the entry readings, and of the baseline reading(s).
  double true_entry(const SppLatent& s) const { return true_untreated(s, entry_time_mean_); }
  double true_baseline(const SppLatent& s) const {
    return entry_.separate_baseline ? true_untreated(s, 0.0) : true_entry(s);
  }
  // Mean time (months, <= 0) of the baseline reading(s).
  double baseline_time() const { return entry_.separate_baseline ? 0.0 : entry_time_mean_; }
  double drift_per_month() const { return drift_per_month_; }
  // The reading each visit would give if the patient were still in the trial, into
  // row.observed (NaN where the visit is missed at random), from row.deviation, row.seen (holding
  // whether each visit is attendable) and the true path: what dropout on observed SPP reads.
  void readings(const Patient& p, const TruePath& path, const VisitRow& row) const;
  // Once the dropout month is known: seen where attended (month 0 always), observed SPP there
  // and 0 elsewhere; at month 0 without a separate baseline the entry mean, whose deviation
  // from the true baseline goes into row.deviation[0].
  void observe(const Patient& p, const TruePath& path, VisitRow row) const {
    row.seen[0] = 1;
    if (entry_.separate_baseline) {
      row.observed[0] = true_at_visit(path, 0) + row.deviation[0];
    } else {
      row.observed[0] = p.entry_spp;
      row.deviation[0] = p.entry_spp - p.true_baseline;
    }
    for (std::size_t k = 1; k < visits_; ++k) {
      const bool seen = row.seen[k] && months_[k] < p.dropout_month;
      row.seen[k] = seen;
      row.observed[k] = seen ? true_at_visit(path, k) + row.deviation[k] : 0.0;
    }
  }

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
  bool bio_ = false, missing_ = false;
  double diabetes_centre_;
  double age_centre_;
  double drift_per_month_;
  double slope_sd_per_month_;
};

}  // namespace trialsim
