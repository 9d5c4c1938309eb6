#pragma once
// A scenario: every model's section, parsed and validated once, then immutable.
#include "models/analysis.hpp"
#include "models/dropout.hpp"
#include "models/interim.hpp"
#include "models/measurement.hpp"
#include "models/population.hpp"
#include "models/randomization.hpp"
#include "models/screening.hpp"
#include "models/treatment.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace trialsim {

struct TrialConfig {
  int consented = 106;
  double alpha = 0.05;  // the level of every test: two-sided, or one-sided with sides = 1
  std::vector<double> months{0.0, 6.0, 12.0};
  // The hypothesis tested (models/estimate.hpp): sides 2, H0 effect = margin; sides 1, H0
  // effect <= margin (non-inferiority with a negative margin).
  int sides = 2;
  double margin = 0.0;
  Hypothesis hypothesis() const { return {sides, margin}; }
  // Staggered entry: patients consent over accrual_months (0: all at month 0), at relative
  // rates accrual_rates over equal pieces of that time (empty: uniform).
  double accrual_months = 0.0;
  std::vector<double> accrual_rates;
  bool has_accrual() const { return accrual_months > 0.0; }
  // The calendar month by which a share u in [0, 1] of the accrual intensity has passed.
  double accrual_month_at(double u) const;

  static TrialConfig read(ConfigReader& in);
  double last_month() const { return months.back(); }
};

// Names shown to people: tables, figures, reports and the terminal say these, while data keys
// and column names (`spp`, `treatment`, `effect_mmHg`) stay as they are.
struct Labels {
  std::string outcome = "SPP";       // the measured outcome
  std::string unit = "mmHg";         // its unit
  std::string treatment = "MgO";     // the arm data keys call `treatment`
  std::string control = "control";   // the arm data keys call `control`

  static Labels read(ConfigReader& in);
  // From a scenario's JSON (its "labels" object); the seed trial's for JSON written before
  // labels existed.
  static Labels from_json(const nlohmann::json& scenario);
  // The labels of an output's JSON: its resolved scenario's (run summary, sample size) or its
  // own top-level ones (sweep.json, calibration JSON).
  static Labels of_output(const nlohmann::json& doc);
  nlohmann::json to_json() const;
  // The arm's label for a data key ("treatment" or "control"); other keys as they are.
  std::string arm(const std::string& key) const;
  // The label with its first letter upper-case (ASCII), for the start of a sentence or a legend.
  static std::string capital(std::string s);
};

struct Scenario {
  std::string source;
  Labels labels;
  TrialConfig trial;
  PopulationConfig population;
  SppConfig spp;
  ScreeningConfig screening;
  MeasurementConfig measurement;
  RandomizationConfig randomization;
  TreatmentConfig treatment;
  DropoutConfig dropout;
  AnalysisConfig analysis;
  InterimConfig interim;
  std::vector<std::string> sweep_vary;  // sweep.vary: axes as "KEY=V1,V2,..." or "KEY=LO:HI:STEP"
  bool sweep_crn = true;                // sweep.common_random_numbers

  // Reads a scenario file and applies `--set` overrides; throws InputError on bad input.
  static Scenario load(const std::string& path, const std::vector<std::string>& overrides = {},
                       const std::vector<std::string>& varies = {});
  // Reads every section from `in` and rejects unknown keys and inconsistent values.
  static Scenario read(ConfigReader& in);

  // The true treatment effect the analyses estimate: mean SPP gain from MgO at the last visit.
  // Intention to treat, over all patients randomized to MgO, whether or not they take it.
  double true_effect() const { return treatment.effect_mmHg; }
  // Model parts the scenario has: outputs leave out the rows and columns of the others rather
  // than showing zeros. The prior-medication exclusion (population.prior_mg_prob > 0), each
  // entry cutoff, and withdrawal for a reason (DropoutReason index 1-3) at a rate above 0.
  bool has_prior_exclusion() const { return population.prior_mg_prob > 0; }
  bool has_entry_max() const { return screening.entry_max.has_value(); }
  bool has_entry_min() const { return screening.entry_min.has_value(); }
  bool withdrawal_possible(std::size_t reason) const;
  // The test every analysis makes, in words: "two-sided, H0: effect = 0 mmHg, alpha 0.05" or
  // "one-sided, H0: effect <= -4 mmHg (non-inferiority), alpha 0.025".
  std::string hypothesis_text() const;
  // Among MgO patients who take the tablets.
  double true_effect_per_protocol() const { return treatment.per_protocol_effect(); }
  // Every parameter as resolved (defaults filled in), for the JSON summary.
  nlohmann::json to_json() const;
};

// The label of a visit month in output keys and columns ("6" for month 6, "1.5" for 1.5).
std::string month_label(double month);

// Probability that a consented patient's entry SPP mean passes the cutoff(s), by a normal
// approximation of its marginal distribution; used to reject designs nobody can enter.
double entry_pass_probability(const Scenario& s);

}  // namespace trialsim
