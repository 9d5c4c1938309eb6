#include "models/treatment.hpp"


#include <algorithm>

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
  return c;
}

void Treatment::apply(Patient& p, const VisitRow& row, const std::vector<double>& months, Stream& rng) const {
  const bool treated = p.arm == Arm::treatment;
  // Fixed draw order whatever the arm, so a patient's noise does not depend on allocation.
  // A part the scenario switches off (SD or probability 0) costs no draw.
  const double effect_z = effect_varies_ ? standard_normal(rng) : 0.0;
  const double response_z = response_varies_ ? standard_normal(rng) : 0.0;
  const bool adherent = !(nonadherence_ && uniform01(rng) < cfg_.nonadherence_prob);
  const double response = adherent ? std::max(0.0, cfg_.mg_response_per_100mg + cfg_.mg_response_sd * response_z) : 0.0;
  const double mg_base = p.cov.mg;
  auto noise = [&]() { return mg_noise_ ? cfg_.mg_measurement_sd * standard_normal(rng) : 0.0; };
  auto serum = [&](double dose) { return mg_base + response * dose / 100.0 + noise(); };

  // The effect follows the dose actually taken: a patient who takes no tablets gains nothing,
  // so intention-to-treat and per-protocol effects differ by the share of non-adherent patients.
  p.adherent = treated && adherent;
  p.treatment_effect_final = p.adherent ? per_protocol_effect_ + cfg_.effect_sd_mmHg * effect_z : 0.0;

  // Titration: at each titration month the serum Mg under the current dose is measured and
  // the dose moved one step toward the target range, within [min_dose, max_dose].
  double dose = treated ? cfg_.start_dose_mg : 0.0;
  const std::size_t visits = months.size();
  if (!titrates_) {
    // The starting dose throughout: the same draws as the loop below makes without titration.
    const double on_dose = mg_base + response * dose / 100.0;
    row.dose[0] = 0.0;
    row.serum_mg[0] = serum(0.0);
    for (std::size_t k = 1; k < visits; ++k) {
      row.dose[k] = dose;
      row.serum_mg[k] = on_dose + noise();
    }
    return;
  }
  std::size_t next_titration = 0;
  for (std::size_t k = 0; k < visits; ++k) {
    while (next_titration < cfg_.titration_months.size() && cfg_.titration_months[next_titration] <= months[k]) {
      const double mg = serum(dose);
      if (treated) {
        if (mg < cfg_.target_mg_low) dose = std::min(cfg_.max_dose_mg, dose + cfg_.dose_step_mg);
        if (mg > cfg_.target_mg_high) dose = std::max(cfg_.min_dose_mg, dose - cfg_.dose_step_mg);
      }
      ++next_titration;
    }
    // Month 0 serum Mg is measured before the first tablet.
    row.dose[k] = k == 0 ? 0.0 : dose;
    row.serum_mg[k] = serum(row.dose[k]);
  }
}

}  // namespace trialsim
