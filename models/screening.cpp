#include "models/screening.hpp"

#include "models/population.hpp"

#include <algorithm>
#include <limits>


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

TRIALSIM_VECTOR_LOOPS void Screening::classify(const UnitColumns& units, std::size_t n, TrialData& t, Scratch& scratch) const {
  double* const u = scratch.col(0, n);
  if (cfg_.pre_baseline_loss > 0) {
    draws::uniform(units, n, StreamKind::population, population_slot::pre_baseline_loss, u);
  } else {
    std::fill_n(u, n, 1.0);
  }
  const std::uint8_t* const prior = t.prior_mg.data();
  const double* const entry = t.entry_spp.data();
  Status* const status = t.status.data();
  const double loss = cfg_.pre_baseline_loss;
  const double hi = has_max_ ? max_ : std::numeric_limits<double>::infinity();
  const double lo = has_min_ ? min_ : -std::numeric_limits<double>::infinity();
  // classify(prior_mg, entry, u) without branches: the first exclusion that applies. A NaN
  // entry reading (never drawn) would fail both cutoffs, as the comparisons above do.
  TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) {
    const int s = prior[i] != 0                               ? 0
                  : u[i] < loss                               ? 1
                  : (has_max_ && !(entry[i] < hi))            ? 2
                  : (has_min_ && !(entry[i] >= lo))           ? 3
                                                              : 4;
    status[i] = static_cast<Status>(s);
  }
}

}  // namespace trialsim
