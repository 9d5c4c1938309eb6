#include "models/measurement.hpp"

#include <boost/random/normal_distribution.hpp>
#include <boost/random/uniform_01.hpp>

#include <cmath>
#include <limits>

namespace trialsim {

SppConfig SppConfig::read(ConfigReader& in) {
  SppConfig c;
  c.mean = in.number("spp.mean", c.mean, Bounds::any());
  c.sd_between = in.number("spp.sd_between", c.sd_between, Bounds::at_least(0.0));
  c.sd_biological = in.number("spp.sd_biological", c.sd_biological, Bounds::at_least(0.0));
  c.biological_corr_months = in.number("spp.biological_corr_months", c.biological_corr_months, Bounds::above(0.0));
  c.sd_measurement = in.number("spp.sd_measurement", c.sd_measurement, Bounds::at_least(0.0));
  c.drift_per_year = in.number("spp.drift_per_year", c.drift_per_year, Bounds::any());
  c.sd_slope_per_year = in.number("spp.sd_slope_per_year", c.sd_slope_per_year, Bounds::at_least(0.0));
  c.diabetes_shift = in.number("spp.diabetes_shift", c.diabetes_shift, Bounds::any());
  c.age_shift_per_10y = in.number("spp.age_shift_per_10y", c.age_shift_per_10y, Bounds::any());
  return c;
}

MeasurementConfig MeasurementConfig::read(ConfigReader& in) {
  MeasurementConfig c;
  c.readings_per_visit = static_cast<int>(in.integer("measurement.readings_per_visit", c.readings_per_visit, 1, 20));
  c.missed_visit_prob = in.number("measurement.missed_visit_prob", c.missed_visit_prob, {0.0, 1.0, false, true});
  return c;
}

Measurement::Measurement(const SppConfig& spp, const MeasurementConfig& m, const PopulationConfig& pop,
                         std::vector<double> months, EntrySchedule entry)
    : spp_(spp),
      cfg_(m),
      months_(std::move(months)),
      entry_(entry),
      diabetes_centre_(pop.diabetes_prob),
      age_centre_(pop.age_mean),
      drift_per_month_(spp.drift_per_year / 12.0),
      slope_sd_per_month_(spp.sd_slope_per_year / 12.0) {}

SppLatent Measurement::draw_latent(const Covariates& cov, Stream& rng) const {
  boost::random::normal_distribution<double> normal;
  SppLatent s;
  s.level = spp_.mean + spp_.diabetes_shift * ((cov.diabetes ? 1.0 : 0.0) - diabetes_centre_) +
            spp_.age_shift_per_10y * (cov.age - age_centre_) / 10.0 + spp_.sd_between * normal(rng);
  s.slope = slope_sd_per_month_ * normal(rng);
  return s;
}

Deviations Measurement::draw_deviations(Stream& rng) const {
  boost::random::normal_distribution<double> normal;
  boost::random::uniform_01<double> unif;
  Deviations d;
  // Exact discretisation of the stationary OU process at the ordered reading times:
  // U(t2) = rho U(t1) + sqrt(1 - rho^2) sd Z with rho = exp(-(t2 - t1)/tau).
  const double sd_u = spp_.sd_biological;
  const double tau = spp_.biological_corr_months;
  double u = sd_u * normal(rng);
  double t_prev = entry_.time(0);
  auto advance = [&](double t) {
    const double rho = std::exp(-(t - t_prev) / tau);
    u = rho * u + std::sqrt(1.0 - rho * rho) * sd_u * normal(rng);
    t_prev = t;
  };
  for (int j = 0; j < entry_.readings; ++j) {
    if (j > 0) advance(entry_.time(j));
    d.entry[static_cast<std::size_t>(j)] = u + spp_.sd_measurement * normal(rng);
  }
  const double visit_noise = spp_.sd_measurement / std::sqrt(static_cast<double>(cfg_.readings_per_visit));
  for (std::size_t k = 0; k < months_.size(); ++k) {
    advance(months_[k]);
    d.visit[k] = u + visit_noise * normal(rng);
    // Month 0 is the baseline, never missed; later visits are missed completely at random.
    d.missed[k] = k > 0 && unif(rng) < cfg_.missed_visit_prob;
  }
  return d;
}

double Measurement::entry_mean(const SppLatent& s, const Deviations& d) const {
  double sum = 0.0;
  for (int j = 0; j < entry_.readings; ++j) {
    sum += true_untreated(s, entry_.time(j)) + d.entry[static_cast<std::size_t>(j)];
  }
  return sum / entry_.readings;
}

double Measurement::true_baseline(const SppLatent& s) const {
  if (entry_.separate_baseline) return true_untreated(s, 0.0);
  double sum = 0.0;
  for (int j = 0; j < entry_.readings; ++j) sum += true_untreated(s, entry_.time(j));
  return sum / entry_.readings;
}

double Measurement::baseline_time() const {
  if (entry_.separate_baseline) return 0.0;
  double sum = 0.0;
  for (int j = 0; j < entry_.readings; ++j) sum += entry_.time(j);
  return sum / entry_.readings;
}

std::array<double, kMaxVisits> Measurement::potential(const Patient& p, const Deviations& d) const {
  std::array<double, kMaxVisits> y{};
  y[0] = entry_.separate_baseline ? p.true_spp[0] + d.visit[0] : p.entry_spp;
  for (std::size_t k = 1; k < months_.size(); ++k) {
    y[k] = d.missed[k] ? std::numeric_limits<double>::quiet_NaN() : p.true_spp[k] + d.visit[k];
  }
  return y;
}

void Measurement::observe(Patient& p, const std::array<double, kMaxVisits>& potential) const {
  for (std::size_t k = 0; k < months_.size(); ++k) {
    p.seen[k] = k == 0 || (!std::isnan(potential[k]) && months_[k] < p.dropout_month);
    p.observed_spp[k] = p.seen[k] ? potential[k] : 0.0;
  }
}

}  // namespace trialsim
