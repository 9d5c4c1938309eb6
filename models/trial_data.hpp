#pragma once
// The patient-level table of one simulated trial.
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace trialsim {

// At most this many scheduled visits (month 0 included); checked when a scenario loads.
inline constexpr std::size_t kMaxVisits = 16;
// At most this many entry readings; checked when a scenario loads.
inline constexpr std::size_t kMaxEntryReadings = 8;

enum class Arm : std::int8_t { none = -1, control = 0, treatment = 1 };

// Where a consented patient left the screening funnel.
enum class Status : std::int8_t {
  prior_mg = 0,           // already on a magnesium preparation: excluded
  lost_pre_baseline = 1,  // died or transferred between consent and the entry reading
  entry_above_max = 2,    // entry SPP >= screening.entry_max
  entry_below_min = 3,    // entry SPP < screening.entry_min
  randomized = 4,
};

enum class DropoutReason : std::int8_t { none = 0, death = 1, transfer = 2, adverse_event = 3 };
inline constexpr std::size_t kDropoutReasons = 4;  // including none

// Table 1 laboratory values, in this order.
enum class Lab : std::size_t {
  total_protein, albumin, creatinine, sodium, potassium, chloride, calcium, phosphate,
  magnesium, pth, hemoglobin, ldl, crp, count
};
inline constexpr std::size_t kLabs = static_cast<std::size_t>(Lab::count);

struct Covariates {
  double age = 0;              // years
  bool male = false;
  double vintage = 0;          // years on dialysis
  bool diabetes = false;       // the randomization stratum
  bool prior_mg = false;       // already taking a magnesium preparation
  std::array<double, kLabs> labs{};
};

// The latent SPP process of a patient (see models/measurement.hpp for its definition).
struct SppLatent {
  double level = 0;        // true long-run SPP at month 0, mmHg
  double slope = 0;        // patient's deviation from the common drift, mmHg per month
};

// A patient's true SPP over follow-up: T(t) = level + slope t + effect min(1, t / onset).
struct TruePath {
  double level = 0;           // mmHg at month 0
  double slope = 0;           // mmHg per month, common drift included
  double effect = 0;          // full treatment effect, mmHg (0 in control)
  double onset_months = 0;    // effect reaches full size here (0: immediately)
  double at(double month) const { return level + slope * month + effect_at(month); }
  double effect_at(double month) const {
    if (month <= 0.0 || effect == 0.0) return 0.0;
    return effect * (onset_months <= 0.0 || month >= onset_months ? 1.0 : month / onset_months);
  }
};

struct Patient {
  int id = 0;  // 1-based order of consent
  Covariates cov;
  SppLatent spp;
  Status status = Status::randomized;
  double entry_spp = 0;  // mean of the entry readings (observed)
  // True SPP averaged over the times of the readings that form the baseline (the entry
  // readings, or month 0 with a separate baseline): what the observed baseline estimates.
  double true_baseline = 0;
  Arm arm = Arm::none;

  // Per scheduled visit (index k matches trial.months[k]); set for randomized patients only.
  std::array<double, kMaxVisits> true_spp{};      // true long-run SPP, treatment effect included
  std::array<double, kMaxVisits> observed_spp{};  // valid where seen[k]
  std::array<bool, kMaxVisits> seen{};            // visit attended and measured
  std::array<double, kMaxVisits> serum_mg{};      // mg/dL, valid where seen[k]
  std::array<double, kMaxVisits> dose{};          // MgO mg/day prescribed at the visit (0 in control)

  bool adherent = false;              // on MgO and taking the tablets
  double treatment_effect_final = 0;  // true SPP gain from MgO at the last visit (0 in control)
  double dropout_month = std::numeric_limits<double>::infinity();
  DropoutReason dropout_reason = DropoutReason::none;

  bool completed(std::size_t last_visit) const { return seen[last_visit]; }
};

struct TrialData {
  std::vector<Patient> patients;  // every consented patient, in consent order
  std::vector<std::size_t> randomized;  // indices into patients, in randomization order
  std::size_t visits = 0;
  std::size_t last() const { return visits - 1; }
};

inline constexpr std::size_t arm_index(Arm a) { return a == Arm::treatment ? 1u : 0u; }

}  // namespace trialsim
