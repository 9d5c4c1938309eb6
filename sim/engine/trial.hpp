#pragma once
// One simulated trial: from consent to the analyses, and what is kept of it.
#include "models/analysis.hpp"
#include "models/dropout.hpp"
#include "models/measurement.hpp"
#include "models/population.hpp"
#include "models/randomization.hpp"
#include "models/screening.hpp"
#include "models/treatment.hpp"
#include "models/trial_data.hpp"
#include "sim/engine/draws.hpp"
#include "sim/io/scenario.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace trialsim {

// A per-trial quantity that may be undefined (e.g. the SD of an arm with one completer).
struct Value {
  double v = 0;
  bool defined = false;
  static Value of(double x) { return {x, true}; }
};

// How the observed change of an arm splits up (all in mmHg, means over patients):
//   observed_change = mean_C(Y_final) - mean_R(Y_base)
//                   = drift + slope_selection + treatment_effect + regression_to_mean + attrition
// exactly, with R the arm's randomized patients, C its completers, T true SPP, Y observed SPP,
// D = Y - T a reading's deviation (biological fluctuation plus noise), t_b the mean time of the
// baseline reading(s) and t_f the last visit. Y_final and D_final exist for every randomized
// patient in the simulation (the reading they would have had without dropout), so each part is
// defined whatever the dropout mechanism:
//   drift              common drift per month x (t_f - t_b)
//   slope_selection    mean_R(own slope) x (t_f - t_b): selection on patients' own slopes when
//                      entry readings precede month 0 (0 otherwise, slopes having mean 0)
//   treatment_effect   mean_R(true MgO effect at the final visit)          (0 in control)
//   regression_to_mean mean_R(D_final) - mean_R(D_base): the regression realized by the last
//                      visit (Barnett, van der Pols & Dobson, Int J Epidemiol 2005)
//   attrition          mean_C(Y_final) - mean_R(Y_final): who is left, on true level and on
//                      fluctuations alike (the latter matters when dropout follows readings)
// and, beside the sum, the baseline's whole selection error split in two:
//   regression_to_mean_total   mean_R(T_base) - mean_R(Y_base) = -mean_R(D_base), the regression
//                              after an unlimited gap
//   regression_to_mean_carried -mean_R(D_final): the part still carried at the last visit
//                              (total = realized + carried).
// T_base is the true SPP at the time(s) of the baseline reading(s), so selection on the
// patient's true level or slope is never counted as regression to the mean.
struct RtmComponents {
  Value observed_change, drift, slope_selection, treatment_effect, regression_to_mean, attrition;
  Value regression_to_mean_total, regression_to_mean_carried;
};

struct ArmResult {
  int randomized = 0;
  int completed = 0;  // observed at the last visit
  std::array<int, kDropoutReasons> withdrawn{};        // by reason; [0] = total
  // [k][reason]: dropped out before visit k for that reason; [k][0] = total
  std::array<std::array<int, kDropoutReasons>, kMaxVisits> withdrawn_before_visit{};
  Value baseline_mean, baseline_sd;                    // observed baseline, randomized
  Value final_mean, final_sd;                          // observed last visit, completers
  Value true_baseline_mean;
  std::array<Value, kMaxVisits> mg_mean{};             // serum Mg among those seen at visit k
  std::array<Value, kMaxVisits> mg_sd{};               // its SD (two or more seen)
  std::array<Value, kMaxVisits> mg_below_target{};     // count below target_mg_low (treatment arm)
  RtmComponents rtm;
};

// Why a method's group-sequential test ended the trial where it did.
enum class InterimStop : std::int8_t { none = 0, efficacy = 1, futility = 2 };  // none: reached the end, not rejected

// The interim looks of one trial (only with an `[interim]` design; the arrays are written for
// the planned looks and the scenario's methods only).
struct InterimResult {
  bool enabled = false;
  std::size_t looks = 0;  // planned looks, the final analysis included
  // Per planned look: whether it was held in this trial (the last always is), its calendar
  // month, information fraction, the randomized and consented by then, and its bounds (z).
  std::array<bool, kMaxLooks> held;
  std::array<double, kMaxLooks> month, fraction, randomized, consented, upper, lower;
  // Per method: the planned look at which its test stopped the trial (the last if it ran to
  // the end), why, and its z at each look held (NaN where not estimable or not reached).
  std::array<std::int8_t, kMethods> stop_look;
  std::array<InterimStop, kMethods> reason;
  std::array<std::array<double, kMaxLooks>, kMethods> z;
};

struct ReplicateResult {
  std::uint64_t replicate = 0;
  int consented = 0;
  int prior_mg = 0;
  int lost_pre_baseline = 0;
  int entry_above_max = 0;
  int entry_below_min = 0;
  int randomized = 0;
  std::array<ArmResult, 2> arms;  // indexed by arm_index: [0] control, [1] treatment
  std::array<Estimate, kMethods> estimates{};  // only the scenario's methods are filled; with an
                                               // interim design, each at the look that ended the trial
  InterimResult interim;
};

// Scratch space reused across the replicates a worker thread runs, so a replicate does not
// allocate.
struct Workspace {
  TrialData trial;
  UnitColumns units;      // per consented patient: the keys of their random streams
  UnitColumns row_units;  // the same, per randomized row
  std::vector<double> fluctuation, row_fluctuation;  // OU state at the last entry reading
  Scratch scratch;
  CompleterSums completers;
  AnalysisWorkspace analysis;
  std::vector<double> primary_months;  // interim looks: the completers' primary visits, calendar months
  std::vector<std::size_t> look_counts;  // calendar looks: the completers each has seen
  std::vector<Method> running;           // interim looks: the methods whose test is still going
};

class TrialSimulator {
 public:
  // all_covariates: also draw the covariates only the patients CSV shows (vintage, the labs
  // other than Mg), from their own stream; the rest of the trial is the same either way.
  explicit TrialSimulator(const Scenario& s, bool all_covariates = false);

  // Simulates replicate `r` into ws.trial (every consented patient, with their fate).
  void simulate(std::uint64_t seed, std::uint64_t r, Workspace& ws) const;
  // Funnel counts, arm summaries, RTM split and every configured analysis of ws.trial.
  // Analyses that draw random numbers (multiple imputation) use the replicate's analysis stream.
  ReplicateResult summarize(std::uint64_t seed, std::uint64_t r, Workspace& ws) const;
  ReplicateResult run(std::uint64_t seed, std::uint64_t r, Workspace& ws) const {
    simulate(seed, r, ws);
    return summarize(seed, r, ws);
  }

  const Scenario& scenario() const { return scenario_; }
  // The scenario's group-sequential design (null without `[interim]`).
  const InterimDesign* interim_design() const { return interim_.get(); }

 private:
  const Scenario& scenario_;
  bool all_covariates_;
  Population population_;
  Measurement measurement_;
  Screening screening_;
  Randomizer randomizer_;
  Treatment treatment_;
  Dropout dropout_;
  Analysis analysis_;
  std::shared_ptr<const InterimDesign> interim_;

  void interim_looks(std::uint64_t seed, std::uint64_t r, Workspace& ws, ReplicateResult& out) const;
};

}  // namespace trialsim
