#pragma once
// Calibration: the values of chosen scenario keys under which the simulated trial reproduces a
// real trial's summary statistics.
//
// Method: simulated method of moments (McFadden, Econometrica 1989; Pakes & Pollard,
// Econometrica 1989; Gourieroux & Monfort, "Simulation-Based Econometric Methods", 1996,
// ch. 2). For free parameters theta, m(theta) is the mean of each statistic over R simulated
// trials, all with the same seed (common random numbers, so the objective is a deterministic,
// nearly smooth function of theta), and the estimate minimizes
//   Q(theta) = sum_s w_s (observed_s - m_s(theta))^2
// with diagonal weights w_s = 1 / Var(statistic s in one trial): the observed statistics are one
// trial's, and their sampling variance is what the simulation says one trial's is (or the
// standard error the observed file gives). Two steps (Hansen, Econometrica 1982): weights at
// the start, a fit, weights again at that fit, a second fit. The minimizer is Nelder & Mead's
// simplex (Computer Journal 1965) from NLopt, on the parameters scaled to [0, 1].
//
// Uncertainty: the SMM sandwich, Var(theta_hat) = (1 + 1/R) A^-1 G'W Omega W G A^-1 with
// A = G'WG, G the Jacobian of m at theta_hat (central differences, common random numbers),
// Omega the covariance of one trial's statistics at theta_hat (Gourieroux & Monfort 1996,
// prop. 2.2; Duffie & Singleton, Econometrica 1993). Parameters the statistics do not identify
// are flagged: a direction in the null space of A (judged with each key scaled to its range),
// an interval wider than the search range or reaching its bounds, an estimate on a bound, or a
// pair of estimates correlated beyond 0.9.
#include "sim/io/scenario.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace trialsim {

struct ReplicateResult;

// A summary statistic of one simulated trial that an observed trial can report.
struct StatisticDef {
  enum class Kind { count, mean, sd };
  std::string name;         // e.g. "treatment.final_mean": also its key path in the observed file
  Kind kind = Kind::count;
  std::string description;  // for tables, e.g. "final SPP mean, completers (mmHg)"
  std::string sd_name;      // for a mean: the statistic holding its SD (to turn n into an SE)
  std::function<double(const ReplicateResult&)> get;  // NaN where undefined in that trial
};

// Every statistic the scenario's schedule defines: the funnel counts, and per arm the counts
// randomized, completed and withdrawn (by reason, and before each follow-up visit), baseline and
// final SPP mean and SD, and serum Mg mean, SD and count below target at each follow-up visit.
std::vector<StatisticDef> statistic_catalog(const Scenario& s);

struct ObservedStatistic {
  std::size_t def = 0;      // index into the catalog
  double value = 0;
  std::optional<double> se;  // given (or derived from a sample size) in the observed file
  std::string where;        // file:line
};

struct Observed {
  std::string path;
  std::vector<ObservedStatistic> statistics;
};

// Reads an observed-statistics file (TOML: each statistic at its name's key path, a number or
// {value = x, se = s} or {value = x, n = k}). Throws InputError (file:line, key, value, what was
// expected) for an unknown statistic, a negative or zero SD or SE, a count that is not a whole
// number between 0 and the scenario's consented patients, or a sample size that cannot be used.
Observed read_observed(const std::string& path, const Scenario& s, const std::vector<StatisticDef>& catalog);

struct FreeParameter {
  std::string key;   // scenario key path, e.g. spp.drift_per_year
  double lo = 0, hi = 0;
  std::string spec;  // as given: KEY=LO:HI
};

// Parses "KEY=LO:HI" (throws InputError naming --free).
FreeParameter parse_free(const std::string& spec);

struct CalibrateOptions {
  std::string scenario_path;
  std::string observed_path;
  std::vector<std::string> sets;       // --set overrides, kept in the calibrated scenario
  std::vector<FreeParameter> free;
  std::uint64_t replicates = 4000;     // simulated trials per evaluation of the objective
  std::uint64_t seed = 20190401;
  int threads = 0;
  int max_evaluations = 300;           // per Nelder-Mead step (there are two)
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(int evaluation, int max_evaluations, double objective)> on_evaluation;
};

struct ParameterEstimate {
  std::string key;
  double lo = 0, hi = 0;
  double start = 0, estimate = 0;
  double se = 0;                       // NaN when not identified
  double ci_low = 0, ci_high = 0;      // estimate -/+ 1.96 SE cut to [lo, hi] (NaN when not identified)
  bool identified = true;              // not: no interval, one wider than the range, or |r| > 0.9
  std::vector<std::string> flags;      // identification problems and bounds reached, in words
};

struct FitRow {
  std::string name, description;
  double observed = 0;
  double weight_se = 0;                // the SE that weighted it (simulated, or given)
  bool se_given = false;
  double simulated_mean = 0, simulated_sd = 0, range_low = 0, range_high = 0;  // at the estimate
  bool used = true;                    // in the objective (else listed in ignored)
  bool outside = false;                // used, and observed outside the simulated 95% range
};

// One part of an arm's mean change from baseline to the last visit at the estimate (the
// decomposition of sim/engine/trial.hpp, RtmComponents): its simulated mean over trials and the SE of
// that mean from the parameters' uncertainty (delta method: g' V g, g its gradient).
struct ChangePart {
  std::string arm, part;
  double value = 0, se = 0;
};

// An arm's observed change against the calibrated model: the expected change (the sum of the
// parts), and the rest, chance, with the spread of one trial's change around its expectation.
struct ChangeAccount {
  std::string arm;
  double observed = 0, expected = 0, expected_se = 0, chance = 0, trial_sd = 0;
  double z = 0;  // chance / sqrt(trial_sd^2 + expected_se^2)
};

struct CalibrationResult {
  Labels labels;                       // the scenario's names for the outcome, unit and arms
  std::vector<ParameterEstimate> parameters;
  std::vector<std::vector<double>> correlation;  // of the estimates (NaN when not identified)
  std::vector<FitRow> fit;
  std::vector<std::string> ignored;    // observed statistics left out, with the reason
  std::vector<ChangePart> parts;       // per arm: drift, slope selection, treatment effect,
                                       // regression to the mean, attrition
  std::vector<ChangeAccount> accounts; // per arm whose baseline and final means were observed
  double objective = 0;                // Q at the estimate
  int evaluations = 0;
  int refused = 0;                     // evaluations at points the scenario refuses
  bool identified = true;              // every parameter identified
  bool converged = true;               // neither Nelder-Mead step stopped at max_evaluations
  std::uint64_t replicates = 0, seed = 0;
  nlohmann::json to_json(const CalibrateOptions& o) const;
  std::string to_table(const CalibrateOptions& o) const;
  // The calibrated scenario: extends the original and sets the --set and free keys.
  std::string scenario_toml(const CalibrateOptions& o, const std::string& out_path) const;
};

// Throws InputError on bad input and Interrupted when cancelled.
CalibrationResult calibrate(const CalibrateOptions& options);

}  // namespace trialsim
