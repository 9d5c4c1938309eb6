#include "models/screening.hpp"


namespace trialsim {

ScreeningConfig ScreeningConfig::read(ConfigReader& in) {
  ScreeningConfig c;
  c.entry_max = in.optional_number("screening.entry_max", Bounds::scale());
  c.entry_min = in.optional_number("screening.entry_min", Bounds::scale());
  if (c.entry_max && c.entry_min && !(*c.entry_min < *c.entry_max)) {
    in.fail("screening.entry_max", "must be above screening.entry_min (" + describe(toml::value<double>(*c.entry_min)) +
                                       ") or nobody can enter, got " + describe(toml::value<double>(*c.entry_max)));
  }
  c.entry_measurements = static_cast<int>(
      in.integer("screening.entry_measurements", c.entry_measurements, 1, static_cast<std::int64_t>(kMaxEntryReadings)));
  c.separate_baseline = in.boolean("screening.separate_baseline", c.separate_baseline);
  c.pre_baseline_loss = in.number("screening.pre_baseline_loss", c.pre_baseline_loss, Bounds{0.0, 1.0, false, true, {}, {}});
  c.entry_lead_months = in.number("screening.entry_lead_months", c.entry_lead_months, Bounds::closed(0.0, 24.0));
  c.entry_interval_months = in.number("screening.entry_interval_months", c.entry_interval_months, Bounds::closed(0.0, 12.0));
  return c;
}

Status Screening::classify(const Covariates& cov, double entry_spp, Stream& rng) const {
  // Drawn for everyone who can be lost (whatever the exclusions), and never when nobody can.
  const double u = cfg_.pre_baseline_loss > 0 ? uniform01(rng) : 1.0;
  if (cov.prior_mg) return Status::prior_mg;
  if (u < cfg_.pre_baseline_loss) return Status::lost_pre_baseline;
  if (cfg_.entry_max && !(entry_spp < *cfg_.entry_max)) return Status::entry_above_max;
  if (cfg_.entry_min && !(entry_spp >= *cfg_.entry_min)) return Status::entry_below_min;
  return Status::randomized;
}

}  // namespace trialsim
