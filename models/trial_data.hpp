#pragma once
// The patient-level table of one simulated trial.
//
// Columns, not records: each model step is a loop over all patients (sim/engine/draws.hpp draws
// one slot of every patient's stream at once). Only randomized patients have per-visit data, in
// tables of (scheduled visits) x (randomized patients) sized to the scenario's schedule. The
// covariates that only the patients CSV shows (vintage and the labs of Table 1) live in a table
// of their own, filled only when that CSV is asked for.
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

// The covariates only the patients CSV shows.
struct ExtraCovariates {
  double vintage = 0;                // years on dialysis
  std::array<double, kLabs> labs{};  // labs[magnesium] repeats Covariates::mg
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

// Scratch columns a model's batch step works in (random draws of one slot for every patient,
// intermediate values), reused across the replicates a thread runs so that a replicate does not
// allocate once they have grown.
class Scratch {
 public:
  static constexpr std::size_t kColumns = 16;
  // Column k (< kColumns) with room for n values; its contents are whatever was left there.
  double* col(std::size_t k, std::size_t n) {
    std::vector<double>& c = cols_[k];
    if (c.size() < n) c.resize(n);
    return c.data();
  }
  std::vector<Arm> arms;  // randomization's block sequences (both strata, one buffer)
  std::vector<std::uint32_t> rows;  // a list of rows (e.g. those dropout walks piece by piece)

 private:
  std::array<std::vector<double>, kColumns> cols_;
};

// Grows v to at least n elements (never shrinks: a thread's buffers keep their largest size).
template <class T>
T* room(std::vector<T>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// The patients of one trial as columns (structure of arrays), so that each step of the model
// runs over all patients at once. Consented patients are indexed by consent order i; randomized
// patients have a row r (their order of randomization, which is consent order) and per-visit
// cells in visit-major tables, cell (k, r) at k * rows + r. Columns are sized by reset() and
// reused across trials: every cell a step reads is written by an earlier step of the same trial.
struct TrialData {
  std::size_t consented = 0, rows = 0, visits = 0;
  std::size_t last() const { return visits - 1; }

  // Consented patient i.
  std::vector<double> age;            // years (NaN where not drawn and able to vary)
  std::vector<double> mg;             // serum Mg at consent, mg/dL (Table 1's magnesium)
  std::vector<std::uint8_t> male;
  std::vector<std::uint8_t> diabetes;  // the randomization stratum
  std::vector<std::uint8_t> prior_mg;  // already taking a magnesium preparation
  std::vector<double> level;          // SppLatent::level
  std::vector<double> slope;          // SppLatent::slope (the patient's own, without the drift)
  std::vector<double> entry_spp;      // mean of the entry readings (observed)
  // True SPP averaged over the times of the readings that form the baseline (the entry
  // readings, or month 0 with a separate baseline): what the observed baseline estimates.
  std::vector<double> true_baseline;
  std::vector<Status> status;
  std::array<int, 5> status_count{};    // patients by Status
  // Calendar month of consent (trial.accrual_months; 0 for all without it), increasing with i:
  // a patient's visit at month m of follow-up falls at calendar month entry_month + m.
  std::vector<double> entry_month;
  std::vector<ExtraCovariates> extras;  // only when the patients CSV is written

  // Randomized row r.
  std::vector<std::uint32_t> patient;  // consent index i of the row
  std::vector<Arm> arm;
  std::vector<double> treated;         // 1 in the treatment arm, 0 in control (arithmetic over rows)
  int treated_rows = 0;                // rows in the treatment arm
  // The patient's columns a step over the rows reads, in row order.
  std::vector<double> row_diabetes;    // 1 with diabetes (the stratum), 0 without
  std::vector<double> row_true_baseline, row_slope, row_entry;
  std::vector<double> row_entry_month;  // entry_month of the row's patient
  std::vector<std::uint8_t> adherent;  // on MgO and taking the tablets
  std::vector<double> path_level, path_slope;  // TruePath::level and slope (drift included)
  std::vector<double> effect;          // true SPP gain from MgO at the last visit (0 in control)
  std::vector<double> dropout_month;   // infinity if the patient stays to the last visit
  std::vector<DropoutReason> dropout_reason;
  double onset_months = 0;             // TruePath::onset_months of every path

  // Visit-major tables of the randomized patients, cell (k, r) at k * rows + r.
  std::vector<double> observed;   // observed SPP where seen; before Measurement::observe, the
                                  // reading the visit would give (NaN where missed at random)
  std::vector<double> seen;       // 1 where the visit is attended and measured, else 0
  std::vector<double> deviation;  // U + e of the visit's reading (NaN at visits nothing reads)
  std::vector<double> serum_mg;   // mg/dL, valid where seen
  std::vector<double> dose;       // MgO mg/day prescribed at the visit (0 in control)

  // Sizes the consented columns for n patients.
  void reset_consented(std::size_t n, std::size_t visit_count) {
    consented = n;
    visits = visit_count;
    for (auto* c : {&age, &mg, &level, &slope, &entry_spp, &true_baseline, &entry_month}) room(*c, n);
    for (auto* c : {&male, &diabetes, &prior_mg}) room(*c, n);
    room(status, n);
  }
  // Sizes the randomized columns and visit tables for m rows.
  void reset_rows(std::size_t m) {
    rows = m;
    room(patient, m);
    room(arm, m);
    for (auto* c : {&treated, &row_diabetes, &row_true_baseline, &row_slope, &row_entry, &row_entry_month}) room(*c, m);
    room(adherent, m);
    for (auto* c : {&path_level, &path_slope, &effect, &dropout_month}) room(*c, m);
    room(dropout_reason, m);
    const std::size_t cells = m * visits;
    for (auto* c : {&observed, &deviation, &serum_mg, &dose, &seen}) room(*c, cells);
  }

  // Visit k's column of a table (rows values).
  double* at(std::vector<double>& table, std::size_t k) { return table.data() + k * rows; }
  const double* at(const std::vector<double>& table, std::size_t k) const { return table.data() + k * rows; }
  double* seen_at(std::size_t k) { return seen.data() + k * rows; }
  const double* seen_at(std::size_t k) const { return seen.data() + k * rows; }
  double observed_at(std::size_t r, std::size_t k) const { return observed[k * rows + r]; }
  bool seen_at(std::size_t r, std::size_t k) const { return seen[k * rows + r] != 0.0; }

  // Sets `treated` and treated_rows from `arm` (after the arms are assigned or changed).
  void arms_changed() {
    int count = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const bool tr = arm[r] == Arm::treatment;
      treated[r] = tr ? 1.0 : 0.0;
      count += tr;
    }
    treated_rows = count;
  }

  TruePath path(std::size_t r) const { return {path_level[r], path_slope[r], effect[r], onset_months}; }
  // Observed at the last visit.
  bool completed(std::size_t r) const { return seen_at(r, last()); }
};

inline constexpr std::size_t arm_index(Arm a) { return a == Arm::treatment ? 1u : 0u; }

}  // namespace trialsim
