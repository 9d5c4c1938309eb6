#pragma once
// Monte Carlo summary of many replicates, every figure with its Monte Carlo standard error.
#include "sim/engine/accumulators.hpp"
#include "sim/engine/trial.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <utility>
#include <string>
#include <vector>

namespace trialsim {

// Performance of one analysis method (Morris, White & Crowther, Stat Med 2019, Table 6).
struct MethodAccumulator {
  Moments estimate;  // over estimable trials
  Moments se2;       // squared model SE
  Moments err2;      // squared error (estimate - true effect)^2
  Moments cover;     // 1 if the CI covers the true effect
  Moments reject;    // over ALL trials: 1 if estimable and p < alpha
  std::array<std::uint64_t, kNotEstimableReasons> not_estimable{};  // by NotEstimable reason
  void merge(const MethodAccumulator& o);
  // Each quantity in the state's fixed order (Self: this type, const or not).
  template <class Self, class F>
  static void visit(Self& s, F&& f) {
    for (auto* m : {&s.estimate, &s.se2, &s.err2, &s.cover, &s.reject}) f(*m);
    for (auto& c : s.not_estimable) f(c);
  }
};

struct ArmAccumulator {
  Moments randomized, completed;
  std::array<Moments, kDropoutReasons> withdrawn;
  std::array<Moments, kMaxVisits> withdrawn_before_visit;
  Moments baseline_mean, baseline_sd, final_mean, final_sd, true_baseline_mean;
  std::array<Moments, kMaxVisits> mg_mean, mg_sd, mg_below_target;
  Moments observed_change, drift, slope_selection, treatment_effect, regression_to_mean, attrition;
  Moments regression_to_mean_total, regression_to_mean_carried;
  void merge(const ArmAccumulator& o);
  template <class Self, class F>
  static void visit(Self& s, F&& f) {
    f(s.randomized);
    f(s.completed);
    for (auto& m : s.withdrawn) f(m);
    for (auto& m : s.withdrawn_before_visit) f(m);
    for (auto* m : {&s.baseline_mean, &s.baseline_sd, &s.final_mean, &s.final_sd, &s.true_baseline_mean}) f(*m);
    for (auto* a : {&s.mg_mean, &s.mg_sd, &s.mg_below_target}) {
      for (auto& m : *a) f(m);
    }
    for (auto* m : {&s.observed_change, &s.drift, &s.slope_selection, &s.treatment_effect, &s.regression_to_mean,
                    &s.attrition, &s.regression_to_mean_total, &s.regression_to_mean_carried}) {
      f(*m);
    }
  }
};

// The looks of a group-sequential design over trials: per planned look (shared by the
// methods) whether it was held and when, and per method and look how often its test stopped
// the trial for efficacy or futility, its z there, and the naive estimate of the trials it
// stopped; per method the calendar month and sample sizes at the end of the trial.
struct InterimAccumulator {
  using Looks = std::array<Moments, kMaxLooks>;
  Looks held, month, fraction, randomized, consented, upper, lower;
  std::array<Looks, kMethods> stop_efficacy, stop_futility, z, estimate_at_stop;
  std::array<Moments, kMethods> month_at_stop, randomized_at_stop, consented_at_stop;
  void add(const InterimResult& r, const std::array<Estimate, kMethods>& estimates, const std::vector<Method>& methods);
  void merge(const InterimAccumulator& o);
  template <class Self, class F>
  static void visit(Self& s, F&& f) {
    for (auto* l : {&s.held, &s.month, &s.fraction, &s.randomized, &s.consented, &s.upper, &s.lower}) {
      for (auto& m : *l) f(m);
    }
    for (auto* a : {&s.stop_efficacy, &s.stop_futility, &s.z, &s.estimate_at_stop}) {
      for (auto& l : *a) {
        for (auto& m : l) f(m);
      }
    }
    for (auto* a : {&s.month_at_stop, &s.randomized_at_stop, &s.consented_at_stop}) {
      for (auto& m : *a) f(m);
    }
  }
};

class SummaryAccumulator {
 public:
  explicit SummaryAccumulator(const Scenario& s) : scenario_(&s) {}
  void add(const ReplicateResult& r);
  // Appends `o`, which must cover the replicates that follow this one's.
  void merge(const SummaryAccumulator& o);

  std::uint64_t replicates() const { return replicates_; }
  const MethodAccumulator& method(Method m) const { return methods_[static_cast<std::size_t>(m)]; }
  const ArmAccumulator& arm(Arm a) const { return arms_[arm_index(a)]; }
  const Moments& randomized() const { return randomized_; }
  const InterimAccumulator& interim() const { return interim_; }

  // The exact state as doubles (counts are exact below 2^53), and back: for merging partial
  // summaries computed by other processes. from_state throws std::runtime_error on a wrong size.
  std::vector<double> state() const;
  void set_state(const std::vector<double>& state);
  static std::size_t state_size();

  // The full summary as JSON (no NaN or infinity: undefined figures are null).
  nlohmann::json to_json(std::uint64_t seed) const;
  // The `interim` section of to_json (only with an interim design).
  nlohmann::json interim_json() const;
  std::string interim_table() const;
  // A readable table for the terminal.
  std::string to_table(std::uint64_t seed) const;
  const Scenario& scenario() const { return *scenario_; }

 private:
  // Every accumulated quantity, in one fixed order (the state's layout).
  template <class Self, class F>
  static void visit(Self& s, F&& f) {
    f(s.replicates_);
    for (auto* m : {&s.consented_, &s.prior_mg_, &s.lost_pre_baseline_, &s.entry_above_max_, &s.entry_below_min_,
                    &s.randomized_}) {
      f(*m);
    }
    for (auto& a : s.arms_) ArmAccumulator::visit(a, f);
    for (auto& m : s.methods_) MethodAccumulator::visit(m, f);
    InterimAccumulator::visit(s.interim_, f);
  }

  const Scenario* scenario_;
  std::uint64_t replicates_ = 0;
  Moments consented_, prior_mg_, lost_pre_baseline_, entry_above_max_, entry_below_min_, randomized_;
  std::array<ArmAccumulator, 2> arms_;
  std::array<MethodAccumulator, kMethods> methods_;
  InterimAccumulator interim_;
};

// Performance measures of one method with MC standard errors.
struct Performance {
  std::uint64_t trials = 0, estimable = 0;
  double power = 0, power_mcse = 0;
  double mean_estimate = 0, bias = 0, bias_mcse = 0;
  double emp_se = 0, emp_se_mcse = 0;
  double model_se = 0, model_se_mcse = 0;
  double rmse = 0, rmse_mcse = 0;
  double coverage = 0, coverage_mcse = 0;
  double relative_se_error = 0, relative_se_error_mcse = 0;  // percent
  bool has_spread = false;  // at least 2 estimable trials: SEs, RMSE, coverage defined
};
Performance performance(const MethodAccumulator& m, std::uint64_t replicates, double true_effect);

// Reading a summary's JSON (SummaryAccumulator::to_json), e.g. the points of a sweep.json.
// A number inside it, or nullopt when any step of the path is absent or the value is null or
// not finite: nothing undefined can reach a data file, a label or a table.
std::optional<double> json_number(const nlohmann::json& j, std::initializer_list<std::string_view> path);
// A number for the JSON outputs: the value where finite, null where not (never NaN or inf).
nlohmann::json json_finite(double v);
// Screening burden: mean consented per mean randomized patient, with its MC SE (delta method,
// the consented count being fixed: consented / randomized^2 * MCSE(randomized)); nullopt where
// undefined (nobody randomized).
std::pair<std::optional<double>, std::optional<double>> consented_per_randomized(const nlohmann::json& summary);

}  // namespace trialsim
