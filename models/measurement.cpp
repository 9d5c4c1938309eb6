#include "models/measurement.hpp"


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
                         std::vector<double> months, EntrySchedule entry, double effect_onset_months)
    : spp_(spp),
      cfg_(m),
      months_(std::move(months)),
      visits_(months_.size()),
      entry_(entry),
      onset_months_(effect_onset_months),
      bio_(spp.sd_biological > 0),
      missing_(m.missed_visit_prob > 0),
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

Deviations Measurement::draw_deviations(Stream& rng) const {
  Deviations d;
  double u = 0;
  draw_entry(rng, d.entry.data(), u);
  draw_visits(rng, d.visit.data(), d.attendable.data(), u);
  return d;
}

void Measurement::readings(const Patient& p, const TruePath& path, const VisitRow& row) const {
  row.observed[0] = entry_.separate_baseline ? true_at_visit(path, 0) + row.deviation[0] : p.entry_spp;
  for (std::size_t k = 1; k < visits_; ++k) {
    row.observed[k] = row.seen[k] ? true_at_visit(path, k) + row.deviation[k] : std::numeric_limits<double>::quiet_NaN();
  }
}

}  // namespace trialsim
