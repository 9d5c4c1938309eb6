#include "models/measurement.hpp"

#include "models/population.hpp"
#include <algorithm>


#include <cmath>
#include <limits>

namespace trialsim {

SppConfig SppConfig::read(ConfigReader& in) {
  SppConfig c;
  c.mean = in.number("spp.mean", c.mean, Bounds::scale());
  c.sd_between = in.number("spp.sd_between", c.sd_between, Bounds::scale_sd());
  c.sd_biological = in.number("spp.sd_biological", c.sd_biological, Bounds::scale_sd());
  c.biological_corr_months = in.number("spp.biological_corr_months", c.biological_corr_months, Bounds{0.0, 1e6, true, false, {}, {}}.because(Bounds::kScaleNote));
  c.sd_measurement = in.number("spp.sd_measurement", c.sd_measurement, Bounds::scale_sd());
  c.drift_per_year = in.number("spp.drift_per_year", c.drift_per_year, Bounds::scale());
  c.sd_slope_per_year = in.number("spp.sd_slope_per_year", c.sd_slope_per_year, Bounds::scale_sd());
  c.diabetes_shift = in.number("spp.diabetes_shift", c.diabetes_shift, Bounds::scale());
  c.age_shift_per_10y = in.number("spp.age_shift_per_10y", c.age_shift_per_10y, Bounds::scale());
  return c;
}

MeasurementConfig MeasurementConfig::read(ConfigReader& in) {
  MeasurementConfig c;
  c.readings_per_visit = static_cast<int>(in.integer("measurement.readings_per_visit", c.readings_per_visit, 1, 20));
  c.missed_visit_prob = in.number("measurement.missed_visit_prob", c.missed_visit_prob, Bounds{0.0, 1.0, false, true, {}, {}});
  return c;
}

Measurement::Measurement(const SppConfig& spp, const MeasurementConfig& m, const PopulationConfig& pop,
                         std::vector<double> months, EntrySchedule entry, double effect_onset_months,
                         bool all_visits_read)
    : spp_(spp),
      cfg_(m),
      months_(std::move(months)),
      visits_(months_.size()),
      entry_(entry),
      onset_months_(effect_onset_months),
      bio_(spp.sd_biological > 0),
      missing_(m.missed_visit_prob > 0),
      all_visits_read_(all_visits_read),
      diabetes_centre_(pop.diabetes_prob),
      age_centre_(pop.age_mean),
      drift_per_month_(spp.drift_per_year / 12.0),
      slope_sd_per_month_(spp.sd_slope_per_year / 12.0) {
  prepare_schedule();
  double t = 0.0;
  for (int j = 0; j < entry_.readings; ++j) t += entry_.time(j);
  entry_time_mean_ = t / entry_.readings;
  inv_entry_readings_ = 1.0 / entry_.readings;
  const TruePath unit{0.0, 0.0, 1.0, onset_months_};
  for (std::size_t k = 0; k < visits_; ++k) effect_fraction_[k] = unit.effect_at(months_[k]);
}

// Exact discretisation of the stationary OU process at the ordered reading times:
// U(t2) = rho U(t1) + sqrt(1 - rho^2) sd Z with rho = exp(-(t2 - t1)/tau). The coefficients
// depend on the schedule only, so they are computed once.
void Measurement::prepare_schedule() {
  const double sd_u = spp_.sd_biological, tau = spp_.biological_corr_months;
  double t_prev = entry_.time(0);
  auto step = [&](double t) {
    const double rho = std::exp(-(t - t_prev) / tau);
    t_prev = t;
    return std::array<double, 2>{rho, std::sqrt(1.0 - rho * rho) * sd_u};
  };
  for (int j = 1; j < entry_.readings; ++j) entry_step_[static_cast<std::size_t>(j)] = step(entry_.time(j));
  for (std::size_t k = 0; k < months_.size(); ++k) {
    visit_step_[k] = step(months_[k]);
    visit_noise_[k] = spp_.sd_measurement / std::sqrt(static_cast<double>(cfg_.readings_per_visit));
  }
  // Without a separate baseline the month-0 reading is the entry mean: no noise of its own.
  if (!entry_.separate_baseline) visit_noise_[0] = 0.0;
}

TRIALSIM_VECTOR_LOOPS void Measurement::draw_latent(const UnitColumns& units, std::size_t n, TrialData& t,
                                                    Scratch& scratch) const {
  double* const z = scratch.col(0, n);
  draws::normal(units, n, StreamKind::population, population_slot::spp_level, z);
  const double mean = spp_.mean, shift = spp_.diabetes_shift, centre = diabetes_centre_, sd = spp_.sd_between;
  const std::uint8_t* const diabetes = t.diabetes.data();
  double* const level = t.level.data();
  TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) {
    level[i] = mean + shift * ((diabetes[i] != 0 ? 1.0 : 0.0) - centre) + sd * z[i];
  }
  // Age is drawn only where it shifts SPP (or minimization reads it): models/population.hpp.
  if (spp_.age_shift_per_10y != 0.0) {
    const double per = spp_.age_shift_per_10y, age_centre = age_centre_;
    const double* const age = t.age.data();
    TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) level[i] += per * (age[i] - age_centre) / 10.0;
  }
  double* const slope = t.slope.data();
  if (slope_sd_per_month_ > 0) {
    draws::normal(units, n, StreamKind::population, population_slot::spp_slope, slope);
    const double sd_slope = slope_sd_per_month_;
    TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) slope[i] *= sd_slope;
  } else {
    std::fill_n(slope, n, 0.0);
  }
}

TRIALSIM_VECTOR_LOOPS void Measurement::draw_entry(const UnitColumns& units, std::size_t n, TrialData& t, double* u,
                                                   Scratch& scratch, double* entry) const {
  double* const z = scratch.col(0, n);
  double* const sum = scratch.col(1, n);
  if (bio_) {
    draws::normal(units, n, StreamKind::measurement, measurement_slot::entry_fluctuation, u);
    const double sd = spp_.sd_biological;
    TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) u[i] *= sd;
  } else {
    std::fill_n(u, n, 0.0);
  }
  const double sd_noise = spp_.sd_measurement;
  for (int j = 0; j < entry_.readings; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    if (j > 0 && entry_step_[jj][1] > 0) {
      draws::normal(units, n, StreamKind::measurement, measurement_slot::entry_step(jj), z);
      const double a = entry_step_[jj][0], b = entry_step_[jj][1];
      TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) u[i] = a * u[i] + b * z[i];
    }
    // d = u + noise, summed over the readings.
    double* const d = entry != nullptr ? entry + jj * n : z;
    if (sd_noise > 0) {
      draws::normal(units, n, StreamKind::measurement, measurement_slot::entry_noise(jj), z);
      TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) d[i] = u[i] + sd_noise * z[i];
    } else {
      TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) d[i] = u[i] + 0.0;
    }
    if (j == 0) {
      std::copy_n(d, n, sum);
    } else {
      TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) sum[i] += d[i];
    }
  }
  const double t_entry = entry_time_mean_, inv = inv_entry_readings_, drift = drift_per_month_;
  const bool separate = entry_.separate_baseline;
  const double* const level = t.level.data();
  const double* const slope = t.slope.data();
  double* const entry_spp = t.entry_spp.data();
  double* const true_baseline = t.true_baseline.data();
  TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) {
    const double true_entry = level[i] + (drift + slope[i]) * t_entry;
    entry_spp[i] = true_entry + sum[i] * inv;
    true_baseline[i] = separate ? level[i] + (drift + slope[i]) * 0.0 : true_entry;
  }
}

TRIALSIM_VECTOR_LOOPS void Measurement::draw_visits(const UnitColumns& units, TrialData& t, const double* u_in,
                                                    Scratch& scratch) const {
  const std::size_t m = t.rows;
  double* const u = scratch.col(0, m);
  double* const z = scratch.col(1, m);
  std::copy_n(u_in, m, u);
  const std::size_t last = visits_ - 1;
  for (std::size_t k = 0; k < visits_; ++k) {
    const double a = visit_step_[k][0], b = visit_step_[k][1];
    if (b > 0) {
      draws::normal(units, m, StreamKind::measurement, measurement_slot::visit_step(k), z);
      TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) u[r] = a * u[r] + b * z[r];
    } else if (a != 1.0) {
      TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) u[r] *= a;
    }
    double* const dev = t.at(t.deviation, k);
    if (!all_visits_read_ && k != 0 && k != last) {
      std::fill_n(dev, m, std::numeric_limits<double>::quiet_NaN());
    } else if (visit_noise_[k] > 0) {
      draws::normal(units, m, StreamKind::measurement, measurement_slot::visit_noise(k), z);
      const double sd = visit_noise_[k];
      TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) dev[r] = u[r] + sd * z[r];
    } else {
      TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) dev[r] = u[r] + 0.0;
    }
    // Month 0 is the baseline, never missed; later visits are missed completely at random.
    double* const seen = t.seen_at(k);
    if (missing_ && k > 0) {
      draws::uniform(units, m, StreamKind::measurement, measurement_slot::visit_missed(k), z);
      const double p = cfg_.missed_visit_prob;
      TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) seen[r] = z[r] < p ? 0.0 : 1.0;
    } else {
      std::fill_n(seen, m, 1.0);
    }
  }
}

TRIALSIM_VECTOR_LOOPS void Measurement::readings(TrialData& t) const {
  const std::size_t m = t.rows;
  const double* const level = t.path_level.data();
  const double* const slope = t.path_slope.data();
  const double* const effect = t.effect.data();
  double* const y0 = t.at(t.observed, 0);
  const double* const d0 = t.at(t.deviation, 0);
  const double* const entry = t.row_entry.data();
  const bool separate = entry_.separate_baseline;
  TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
    y0[r] = separate ? level[r] + slope[r] * months_[0] + effect[r] * effect_fraction_[0] + d0[r] : entry[r];
  }
  for (std::size_t k = 1; k < visits_; ++k) {
    double* const y = t.at(t.observed, k);
    const double* const d = t.at(t.deviation, k);
    const double* const seen = t.seen_at(k);
    const double month = months_[k], frac = effect_fraction_[k];
    TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
      y[r] = seen[r] != 0.0 ? level[r] + slope[r] * month + effect[r] * frac + d[r]
                            : std::numeric_limits<double>::quiet_NaN();
    }
  }
}

TRIALSIM_VECTOR_LOOPS void Measurement::observe(TrialData& t) const {
  const std::size_t m = t.rows;
  const double* const level = t.path_level.data();
  const double* const slope = t.path_slope.data();
  const double* const effect = t.effect.data();
  const double* const dropout = t.dropout_month.data();
  double* const y0 = t.at(t.observed, 0);
  double* const d0 = t.at(t.deviation, 0);
  std::fill_n(t.seen_at(0), m, 1.0);
  if (entry_.separate_baseline) {
    const double month = months_[0], frac = effect_fraction_[0];
    TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) y0[r] = level[r] + slope[r] * month + effect[r] * frac + d0[r];
  } else {
    const double* const entry = t.row_entry.data();
    const double* const true_baseline = t.row_true_baseline.data();
    TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
      y0[r] = entry[r];
      d0[r] = entry[r] - true_baseline[r];
    }
  }
  for (std::size_t k = 1; k < visits_; ++k) {
    double* const y = t.at(t.observed, k);
    const double* const d = t.at(t.deviation, k);
    double* const seen = t.seen_at(k);
    const double month = months_[k], frac = effect_fraction_[k];
    TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
      const bool s = seen[r] != 0.0 && month < dropout[r];
      seen[r] = s ? 1.0 : 0.0;
      y[r] = s ? level[r] + slope[r] * month + effect[r] * frac + d[r] : 0.0;
    }
  }
}

}  // namespace trialsim
