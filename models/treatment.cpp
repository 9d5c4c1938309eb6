#include "models/treatment.hpp"


#include <algorithm>
#include <limits>

namespace trialsim {

TreatmentConfig TreatmentConfig::read(ConfigReader& in, double last_visit_month) {
  TreatmentConfig c;
  c.effect_mmHg = in.number("treatment.effect_mmHg", c.effect_mmHg, Bounds::scale());
  c.effect_sd_mmHg = in.number("treatment.effect_sd_mmHg", c.effect_sd_mmHg, Bounds::scale_sd());
  // effect_mmHg is defined as the effect at the last visit, so it must be fully phased in by then.
  c.effect_onset_months =
      in.number("treatment.effect_onset_months", last_visit_month, Bounds::closed(0.0, last_visit_month).following("trial.months"));
  c.start_dose_mg = in.number("treatment.start_dose_mg", c.start_dose_mg, Bounds::closed(0.0, 1e5).because(Bounds::kScaleNote));
  c.dose_step_mg = in.number("treatment.dose_step_mg", c.dose_step_mg, Bounds::closed(0.0, 1e5).because(Bounds::kScaleNote));
  c.min_dose_mg = in.number("treatment.min_dose_mg", c.min_dose_mg, Bounds::closed(0.0, 1e5).because(Bounds::kScaleNote));
  c.max_dose_mg = in.number("treatment.max_dose_mg", c.max_dose_mg, Bounds::closed(0.0, 1e5).because(Bounds::kScaleNote));
  if (c.max_dose_mg < c.min_dose_mg) {
    in.fail("treatment.max_dose_mg", "must be >= treatment.min_dose_mg (" + describe(toml::value<double>(c.min_dose_mg)) +
                                         "), got " + describe(toml::value<double>(c.max_dose_mg)));
  }
  if (c.start_dose_mg < c.min_dose_mg || c.start_dose_mg > c.max_dose_mg) {
    in.fail("treatment.start_dose_mg", "must lie between treatment.min_dose_mg and treatment.max_dose_mg, got " +
                                           describe(toml::value<double>(c.start_dose_mg)));
  }
  c.titration_months = in.numbers("treatment.titration_months", c.titration_months,
                                  {0.0, last_visit_month, true, false}, 0, 24);
  if (!std::is_sorted(c.titration_months.begin(), c.titration_months.end()) ||
      std::adjacent_find(c.titration_months.begin(), c.titration_months.end()) != c.titration_months.end()) {
    in.fail("treatment.titration_months", "must be strictly increasing");
  }
  c.target_mg_low = in.number("treatment.target_mg_low", c.target_mg_low, Bounds{0.0, 100.0, true, false, {}, {}}.because(Bounds::kScaleNote));
  c.target_mg_high = in.number("treatment.target_mg_high", c.target_mg_high, Bounds{0.0, 100.0, true, false, {}, {}}.because(Bounds::kScaleNote));
  if (!(c.target_mg_low < c.target_mg_high)) {
    in.fail("treatment.target_mg_high", "must be above treatment.target_mg_low (" +
                                            describe(toml::value<double>(c.target_mg_low)) + "), got " +
                                            describe(toml::value<double>(c.target_mg_high)));
  }
  c.mg_response_per_100mg = in.number("treatment.mg_response_per_100mg", c.mg_response_per_100mg, Bounds::closed(0.0, 100.0).because(Bounds::kScaleNote));
  c.mg_response_sd = in.number("treatment.mg_response_sd", c.mg_response_sd, Bounds::closed(0.0, 100.0).because(Bounds::kScaleNote));
  c.mg_measurement_sd = in.number("treatment.mg_measurement_sd", c.mg_measurement_sd, Bounds::closed(0.0, 100.0).because(Bounds::kScaleNote));
  c.nonadherence_prob = in.number("treatment.nonadherence_prob", c.nonadherence_prob, Bounds{0.0, 1.0, false, true, {}, {}});
  c.serum_mg = in.boolean("treatment.serum_mg", c.serum_mg);
  return c;
}

namespace {

// out = serum Mg under the dose: base + response * dose / 100 + sd * noise, the noise 0 without
// assay noise. Without a response (mean and SD 0) every response is +0, so the dose term is +0
// for any dose: the same sums without the per-row division. A function of its own, not a lambda,
// so that it is built for the vector targets of TRIALSIM_VECTOR_LOOPS.
TRIALSIM_VECTOR_LOOPS void serum_mg_under(const double* base, const double* response, const double* dose,
                                          const double* noise, double sd, std::size_t m, bool no_response,
                                          double* out) {
  if (no_response) {
    TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) out[r] = base[r] + 0.0 + sd * noise[r];
  } else {
    TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) out[r] = base[r] + response[r] * dose[r] / 100.0 + sd * noise[r];
  }
}

// One titration step of the treatment arm: a dose below the target range goes up a step, one
// above it down a step, within [min_dose, max_dose]; as selects, not branches (the rows fall
// on either side at random).
TRIALSIM_VECTOR_LOOPS void titrate(const TreatmentConfig& c, const double* treated, const double* mg, std::size_t m,
                                   double* dose) {
  const double low = c.target_mg_low, high = c.target_mg_high, step = c.dose_step_mg;
  const double max_dose = c.max_dose_mg, min_dose = c.min_dose_mg;
  TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
    const double d0 = dose[r];
    const double d1 = mg[r] < low ? std::min(max_dose, d0 + step) : d0;
    const double d2 = mg[r] > high ? std::max(min_dose, d1 - step) : d1;
    dose[r] = treated[r] != 0.0 ? d2 : d0;
  }
}

}  // namespace

TRIALSIM_VECTOR_LOOPS void Treatment::apply(const UnitColumns& units, TrialData& t, const std::vector<double>& months, Scratch& scratch) const {
  const std::size_t m = t.rows;
  double* const effect_z = scratch.col(0, m);
  double* const response = scratch.col(1, m);
  double* const u = scratch.col(2, m);
  double* const base = scratch.col(3, m);
  double* const dose = scratch.col(4, m);
  double* const noise = scratch.col(5, m);
  if (effect_varies_) {
    draws::normal(units, m, StreamKind::treatment, treatment_slot::effect, effect_z);
  } else {
    std::fill_n(effect_z, m, 0.0);
  }
  if (response_varies_) {
    draws::normal(units, m, StreamKind::treatment, treatment_slot::response, response);
  } else {
    std::fill_n(response, m, 0.0);
  }
  if (nonadherence_) {
    draws::uniform(units, m, StreamKind::treatment, treatment_slot::adherence, u);
  } else {
    std::fill_n(u, m, 1.0);
  }
  const double p_non = cfg_.nonadherence_prob, resp_mean = cfg_.mg_response_per_100mg, resp_sd = cfg_.mg_response_sd;
  const double pp = per_protocol_effect_, eff_sd = cfg_.effect_sd_mmHg, start = cfg_.start_dose_mg;
  const bool non = nonadherence_;
  const double* const treated = t.treated.data();
  const double* const mg0 = t.mg.data();  // every patient's is mg_mean_ unless mg_varies_
  const std::uint32_t* const patient = t.patient.data();
  std::uint8_t* const adherent_out = t.adherent.data();
  double* const effect = t.effect.data();
  TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
    const bool tr = treated[r] != 0.0;
    const bool adherent = !(non && u[r] < p_non);
    response[r] = adherent ? std::max(0.0, resp_mean + resp_sd * response[r]) : 0.0;
    // The effect follows the dose actually taken: a patient who takes no tablets gains
    // nothing, so intention-to-treat and per-protocol effects differ by the share of
    // non-adherent patients.
    effect[r] = tr && adherent ? pp + eff_sd * effect_z[r] : 0.0;
    dose[r] = tr ? start : 0.0;
  }
  if (non) {
    for (std::size_t r = 0; r < m; ++r) adherent_out[r] = treated[r] != 0.0 && !(u[r] < p_non);
  } else {
    for (std::size_t r = 0; r < m; ++r) adherent_out[r] = treated[r] != 0.0;
  }
  if (!cfg_.serum_mg) {
    // No titration and no serum Mg: the columns are left as NaN (never shown).
    const std::size_t visits = months.size();
    for (std::size_t k = 0; k < visits; ++k) {
      std::fill_n(t.at(t.dose, k), m, std::numeric_limits<double>::quiet_NaN());
      std::fill_n(t.at(t.serum_mg, k), m, std::numeric_limits<double>::quiet_NaN());
    }
    return;
  }
  if (mg_varies_) {
    for (std::size_t r = 0; r < m; ++r) base[r] = mg0[patient[r]];
  } else {
    std::fill_n(base, m, mg_mean_);
  }
  const bool no_response = !response_varies_ && cfg_.mg_response_per_100mg == 0.0;
  // Serum Mg under a dose, with noise from `slot` (none without assay noise: the noise stays 0).
  if (!mg_noise_) std::fill_n(noise, m, 0.0);
  auto serum = [&](const double* dose_now, std::uint32_t slot, double* out) {
    if (mg_noise_) draws::normal(units, m, StreamKind::treatment, slot, noise);
    serum_mg_under(base, response, dose_now, noise, cfg_.mg_measurement_sd, m, no_response, out);
  };
  const std::size_t visits = months.size();
  // Month 0 serum Mg is measured before the first tablet.
  double* const zero = scratch.col(6, m);
  std::fill_n(zero, m, 0.0);
  // Titration: at each titration month the serum Mg under the current dose is measured and
  // the dose moved one step toward the target range, within [min_dose, max_dose].
  double* const mg = scratch.col(7, m);
  std::size_t next_titration = 0;
  for (std::size_t k = 0; k < visits; ++k) {
    while (next_titration < cfg_.titration_months.size() && cfg_.titration_months[next_titration] <= months[k]) {
      serum(dose, treatment_slot::titration_noise(next_titration), mg);
      titrate(cfg_, treated, mg, m, dose);
      ++next_titration;
    }
    const double* const dose_k = k == 0 ? zero : dose;
    std::copy_n(dose_k, m, t.at(t.dose, k));
    serum(dose_k, treatment_slot::visit_noise(k), t.at(t.serum_mg, k));
  }
}

}  // namespace trialsim
