#pragma once
// The patient-level table of one simulated trial.
//
// Compact by design, because a worker thread keeps one trial in flight and trials can be large:
// a consented patient is one fixed-size record (Patient, 88 bytes) and only randomized patients
// have per-visit data, in a visit table of (randomized patients) x (scheduled visits) columns
// sized to the scenario's schedule (VisitTable). The covariates that only the patients CSV
// shows (vintage and the labs of Table 1) live in a table of their own, filled only when that
// CSV is asked for.
#include <array>
#include <cmath>
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

// The covariates the models read. Age and sex are drawn only when a model reads them or the
// patients CSV shows them (models/population.hpp); otherwise age is its mean when it cannot
// vary and NaN when it was not drawn, and male is false.
struct Covariates {
  double age = 0;              // years
  double mg = 0;               // serum Mg at consent, mg/dL (Table 1's magnesium)
  bool male = false;
  bool diabetes = false;       // the randomization stratum
  bool prior_mg = false;       // already taking a magnesium preparation
};

// The covariates only the patients CSV shows.
struct ExtraCovariates {
  double vintage = 0;                // years on dialysis
  std::array<double, kLabs> labs{};  // labs[magnesium] repeats Covariates::mg
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
  Covariates cov;
  SppLatent spp;
  double entry_spp = 0;  // mean of the entry readings (observed)
  // True SPP averaged over the times of the readings that form the baseline (the entry
  // readings, or month 0 with a separate baseline): what the observed baseline estimates.
  double true_baseline = 0;
  double treatment_effect_final = 0;  // true SPP gain from MgO at the last visit (0 in control)
  double dropout_month = std::numeric_limits<double>::infinity();
  std::int32_t id = 0;    // 1-based order of consent
  std::int32_t row = -1;  // the patient's row of the visit table when randomized, else -1
  Status status = Status::randomized;
  Arm arm = Arm::none;
  DropoutReason dropout_reason = DropoutReason::none;
  bool adherent = false;  // on MgO and taking the tablets
};

// One randomized patient's cells of the visit table (index k matches trial.months[k]).
struct ConstVisitRow;
struct VisitRow {
  double* observed;        // observed SPP, valid where seen[k]; before Measurement::observe, the
                           // reading the visit would give (NaN where missed at random)
  std::uint8_t* seen;      // visit attended and measured
  double* deviation;       // U + e of the visit's reading, drawn whether or not it is observed
  double* serum_mg;        // mg/dL, valid where seen[k]
  double* dose;            // MgO mg/day prescribed at the visit (0 in control)
  operator ConstVisitRow() const;  // NOLINT(google-explicit-constructor): a view, read-only
};
struct ConstVisitRow {
  const double* observed;
  const std::uint8_t* seen;
  const double* deviation;
  const double* serum_mg;
  const double* dose;
};
inline VisitRow::operator ConstVisitRow() const { return {observed, seen, deviation, serum_mg, dose}; }

// Per-visit data of the randomized patients, row-major: cell (row, k) at row * visits + k.
class VisitTable {
 public:
  // Sizes for `rows` rows of `visits` visits; keeps the storage of earlier, larger trials.
  void reset(std::size_t rows, std::size_t visits) {
    visits_ = visits;
    const std::size_t n = rows * visits;
    if (observed_.size() < n) {
      observed_.resize(n);
      seen_.resize(n);
      deviation_.resize(n);
      serum_mg_.resize(n);
      dose_.resize(n);
      path_.resize(rows);
    }
  }
  std::size_t visits() const { return visits_; }
  VisitRow row(std::size_t r) {
    const std::size_t o = r * visits_;
    return {&observed_[o], &seen_[o], &deviation_[o], &serum_mg_[o], &dose_[o]};
  }
  ConstVisitRow row(std::size_t r) const {
    const std::size_t o = r * visits_;
    return {&observed_[o], &seen_[o], &deviation_[o], &serum_mg_[o], &dose_[o]};
  }
  TruePath& path(std::size_t r) { return path_[r]; }
  const TruePath& path(std::size_t r) const { return path_[r]; }

 private:
  std::size_t visits_ = 0;
  std::vector<double> observed_;
  std::vector<std::uint8_t> seen_;
  std::vector<double> deviation_, serum_mg_, dose_;
  std::vector<TruePath> path_;
};

struct TrialData {
  std::vector<Patient> patients;        // every consented patient, in consent order
  std::vector<std::size_t> randomized;  // indices into patients, in randomization order; the
                                        // j-th is the patient of visit-table row j
  std::vector<ExtraCovariates> extras;  // per patient, only when the patients CSV is written
  VisitTable table;
  std::size_t visits = 0;
  std::size_t last() const { return visits - 1; }

  const Patient& randomized_patient(std::size_t row) const { return patients[randomized[row]]; }
  // Observed at the last visit.
  bool completed(std::size_t row) const { return table.row(row).seen[last()] != 0; }
};

static_assert(sizeof(Patient) <= 88, "the patient record stays compact");

inline constexpr std::size_t arm_index(Arm a) { return a == Arm::treatment ? 1u : 0u; }

}  // namespace trialsim
