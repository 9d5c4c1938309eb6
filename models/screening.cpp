#include "models/screening.hpp"

#include "models/population.hpp"

#include <algorithm>


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

void Screening::classify(const UnitColumns& units, std::size_t n, TrialData& t, Scratch& scratch) const {
  double* const u = scratch.col(0, n);
  if (cfg_.pre_baseline_loss > 0) {
    draws::uniform(units, n, StreamKind::population, population_slot::pre_baseline_loss, u);
  } else {
    std::fill_n(u, n, 1.0);
  }
  for (std::size_t i = 0; i < n; ++i) t.status[i] = classify(t.prior_mg[i] != 0, t.entry_spp[i], u[i]);
}

}  // namespace trialsim
