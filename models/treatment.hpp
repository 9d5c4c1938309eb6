#pragma once
// MgO: dose titration toward a serum Mg target, serum Mg at each visit, and the effect on SPP.
#include "models/trial_data.hpp"
#include "sim/io/config_reader.hpp"
#include "sim/engine/draws.hpp"

#include <vector>

namespace trialsim {

struct TreatmentConfig {
  // Mean true SPP gain at the last visit from being assigned MgO (intention to treat): the
  // average over adherent patients, who gain effect_mmHg / (1 - nonadherence_prob), and
  // non-adherent ones, who take no tablets and gain nothing.
  double effect_mmHg = 0.0;
  double effect_sd_mmHg = 0.0;  // between-patient SD of the gain among adherent patients
  double effect_onset_months = 12.0;  // effect rises linearly from 0 at month 0 to full here
  double start_dose_mg = 250.0;
  double dose_step_mg = 250.0;
  double min_dose_mg = 250.0;
  double max_dose_mg = 750.0;
  std::vector<double> titration_months{1.0, 2.0, 3.0};
  double target_mg_low = 2.7;
  double target_mg_high = 3.3;
  double mg_response_per_100mg = 0.15;  // serum Mg rise, mg/dL per 100 mg/day
  double mg_response_sd = 0.10;         // between-patient SD of that response
  double mg_measurement_sd = 0.15;      // serum Mg assay and day-to-day noise
  double nonadherence_prob = 0.03;      // never takes the tablets: no serum Mg response, no SPP effect
  // Whether the trial has the seed trial's dose titration and serum Mg readings. Without them
  // (false) the effect is the plain one above (constant, or rising to full size by
  // effect_onset_months), no dose or serum Mg is drawn, and no output shows them; the dose and
  // serum Mg keys are still checked, so a scenario that extends the seed trial can switch
  // them off with this key alone.
  bool serum_mg = true;

  // True effect among the patients who take MgO (per protocol).
  double per_protocol_effect() const { return effect_mmHg / (1.0 - nonadherence_prob); }

  static TreatmentConfig read(ConfigReader& in, double last_visit_month);
};

// The slots of a patient's treatment stream (sim/engine/rng.hpp): the effect's and the serum Mg
// response's deviations, adherence, the serum Mg noise at each titration and at each visit.
namespace treatment_slot {
inline constexpr std::uint32_t effect = 0, response = 1, adherence = 2;
constexpr std::uint32_t titration_noise(std::size_t j) { return static_cast<std::uint32_t>(3 + j); }  // j < 24
constexpr std::uint32_t visit_noise(std::size_t k) { return static_cast<std::uint32_t>(27 + k); }
}  // namespace treatment_slot

class Treatment {
 public:
  // `consent_mg_mean`, `consent_mg_sd`: serum Mg at consent (PopulationConfig), which each
  // patient's serum Mg readings start from.
  Treatment(const TreatmentConfig& cfg, double consent_mg_mean, double consent_mg_sd)
      : cfg_(cfg),
        mg_mean_(consent_mg_mean),
        mg_varies_(consent_mg_sd > 0),
        per_protocol_effect_(cfg.per_protocol_effect()),
        effect_varies_(cfg.effect_sd_mmHg > 0),
        response_varies_(cfg.mg_response_sd > 0),
        nonadherence_(cfg.nonadherence_prob > 0),
        mg_noise_(cfg.mg_measurement_sd > 0) {}

  // For every randomized row (`units` in row order): draws the response and titration history
  // from the patient's treatment stream (treatment_slot) and fills t.dose and t.serum_mg at
  // every visit, t.adherent and t.effect. Call after the arms are known. The draws do not
  // depend on the arm, so a patient's noise is the same whatever the allocation; a part the
  // scenario switches off (SD or probability 0) costs no draw.
  void apply(const UnitColumns& units, TrialData& t, const std::vector<double>& months, Scratch& scratch) const;

  const TreatmentConfig& config() const { return cfg_; }

 private:
  TreatmentConfig cfg_;
  double mg_mean_;
  bool mg_varies_;
  double per_protocol_effect_;
  bool effect_varies_, response_varies_, nonadherence_, mg_noise_;
};

}  // namespace trialsim
