#pragma once
// A group-sequential design for the simulated trial (`[interim]`): looks at information
// fractions, efficacy boundaries by alpha spending and optional futility boundaries, recomputed
// in every simulated trial at the information it actually has at each look (the spending
// approach of Lan & DeMets, Biometrika 1983; the boundaries by models/group_sequential.hpp).
//
// Information is the share of the final analysis's completers (randomized patients with the
// primary, last visit observed) whose primary visit has been observed: look k of a trial with
// n completers in the end is held when the ceil(f_k n)-th of them reaches the last visit, at
// observed fraction ceil(f_k n) / n. A real trial fixes the maximum information in its plan;
// here it is the trial's own final count, so every simulated trial spends exactly alpha. A look
// that would fall on the final analysis (or on the look before it) is not held in that trial.
// Looks may instead come at calendar months (interim.months): each then sees the completers
// observed by its month, at that share of the final count.
#include "models/group_sequential.hpp"
#include "sim/io/config_reader.hpp"

#include <nlohmann/json.hpp>
#include <tbb/concurrent_unordered_map.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace trialsim {

// At most this many looks, the final analysis included; checked when a scenario loads.
inline constexpr std::size_t kMaxLooks = 8;

enum class FutilityRule { none, z, beta_spending, conditional_power };

struct InterimConfig {
  std::vector<double> fractions;  // planned information fractions, the last 1; empty: no interim design
  // Looks at calendar months instead (interim.months): the interim looks' months, and
  // `fractions` then holds the planned shares of completers by them (without dropout), then 1.
  std::vector<double> calendar_months;
  bool by_calendar() const { return !calendar_months.empty(); }
  SpendingFunction efficacy;      // alpha = trial.alpha (one-sided, or two-sided with sides 2)
  FutilityRule futility = FutilityRule::none;
  std::vector<double> futility_z;  // z rule: the bound at each look before the last
  SpendingFunction beta;           // beta_spending: the type II error spent (alpha holds beta)
  double futility_cp = 0.1;        // conditional_power: stop when it is below this
  bool binding = false;            // futility stops bind: the efficacy bounds count on them
  int sides = 2;                   // trial.sides
  double margin = 0.0;             // trial.margin: z = (estimate - margin) / SE

  bool enabled() const { return !fractions.empty(); }
  std::size_t looks() const { return fractions.size(); }
  // Reads `[interim]`; trial.* must have been read (alpha, sides, margin, accrual).
  // `planned_share(month)`: the share of the randomized whose primary visit falls by that
  // calendar month (the plan's information, without dropout).
  static InterimConfig read(ConfigReader& in, double alpha, int sides, double margin, bool has_accrual,
                            const std::function<double(double)>& planned_share);
  // The design's keys as resolved (the scenario JSON's `interim`).
  nlohmann::json to_json() const;
  static std::string spending_name(SpendingType t);
  static std::string futility_name(FutilityRule r);
};

// The boundaries of one set of held looks.
struct LookBounds {
  std::vector<std::size_t> looks;  // the planned looks held (indices into fractions), the last one last
  std::vector<double> t;           // their information fractions
  std::vector<double> upper;       // efficacy bound per held look (z; +infinity where none can be spent)
  std::vector<double> lower;       // futility bound per held look (-infinity where none; always at the last)
  std::vector<std::size_t> completers;  // per held look: the completers observed by then (not for planned())
};

class InterimDesign {
 public:
  // max_completers: the most completers a trial can have (the consented count).
  InterimDesign(const InterimConfig& cfg, std::size_t max_completers);
  const InterimConfig& config() const { return cfg_; }
  // The design at the planned fractions (the drift of beta spending is computed there).
  const LookBounds& planned() const { return planned_; }
  double planned_drift() const { return drift_; }
  // The looks and boundaries of a trial whose final analysis has n completers (n <= the
  // maximum given to the constructor): computed once per n and shared by all threads.
  const LookBounds& for_completers(std::size_t n) const;
  // Calendar looks: the boundaries when the interim looks saw counts[k] of the n completers
  // (0 or n: not held), computed once per set of counts and shared by all threads.
  const LookBounds& for_counts(const std::vector<std::size_t>& counts, std::size_t n) const;

 private:
  LookBounds compute(const std::vector<std::size_t>& looks, const std::vector<double>& t) const;
  LookBounds held(const std::vector<std::size_t>& counts, std::size_t n) const;

  InterimConfig cfg_;
  LookBounds planned_;
  double drift_ = 0;
  std::size_t max_ = 0;
  std::unique_ptr<std::once_flag[]> once_;
  std::unique_ptr<LookBounds[]> by_n_;
  mutable tbb::concurrent_unordered_map<std::string, std::shared_ptr<const LookBounds>> by_counts_;
};

}  // namespace trialsim
