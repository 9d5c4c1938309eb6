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
      slope_sd_per_month_(spp.sd_slope_per_year / 12.0) {
  prepare_schedule();
}

SppLatent Measurement::draw_latent(const Covariates& cov, Stream& rng) const {
  boost::random::normal_distribution<double> normal;
  SppLatent s;
  s.level = spp_.mean + spp_.diabetes_shift * ((cov.diabetes ? 1.0 : 0.0) - diabetes_centre_) +
            spp_.age_shift_per_10y * (cov.age - age_centre_) / 10.0 + spp_.sd_between * normal(rng);
  // No draw for a slope that cannot vary.
  s.slope = slope_sd_per_month_ > 0 ? slope_sd_per_month_ * normal(rng) : 0.0;
  return s;
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
  for (std::size_t k = 0; k < months_.size(); ++k) visit_step_[k] = step(months_[k]);
  visit_noise_ = spp_.sd_measurement / std::sqrt(static_cast<double>(cfg_.readings_per_visit));
}

// Without biological fluctuation U is 0 throughout and no draw is spent on it; without missed
// visits none is spent on them either.
void Measurement::draw_entry(Stream& rng, Deviations& d, double& u) const {
  boost::random::normal_distribution<double> normal;
  const bool bio = spp_.sd_biological > 0;
  u = bio ? spp_.sd_biological * normal(rng) : 0.0;
  for (int j = 0; j < entry_.readings; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    if (bio && j > 0) u = entry_step_[jj][0] * u + entry_step_[jj][1] * normal(rng);
    d.entry[jj] = u + spp_.sd_measurement * normal(rng);
  }
}

void Measurement::draw_visits(Stream& rng, Deviations& d, double u) const {
  boost::random::normal_distribution<double> normal;
  boost::random::uniform_01<double> unif;
  const bool bio = spp_.sd_biological > 0, missing = cfg_.missed_visit_prob > 0;
  for (std::size_t k = 0; k < months_.size(); ++k) {
    if (bio) u = visit_step_[k][0] * u + visit_step_[k][1] * normal(rng);
    d.visit[k] = u + visit_noise_ * normal(rng);
    // Month 0 is the baseline, never missed; later visits are missed completely at random.
    d.missed[k] = missing && k > 0 && unif(rng) < cfg_.missed_visit_prob;
  }
}

Deviations Measurement::draw_deviations(Stream& rng) const {
  Deviations d;
  double u = 0;
  draw_entry(rng, d, u);
  draw_visits(rng, d, u);
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
