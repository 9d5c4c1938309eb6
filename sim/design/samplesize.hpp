#pragma once
// Sample-size search: the smallest value of an integer design key (by default the number of
// consented patients) at which one analysis reaches a target power, with an interval that
// reflects the Monte Carlo error of the simulated powers.
#include "sim/engine/engine.hpp"
#include "sim/io/scenario.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace trialsim {

struct SampleSizeOptions {
  std::string scenario_path;
  std::vector<std::string> sets;         // --set overrides
  std::string key = "trial.consented";   // the design key searched over (integer values)
  std::string method;                    // analysis whose power is targeted
  double target_power = 0.8;
  std::uint64_t replicates = 4000;       // trials per evaluated n (unless precision is active)
  PrecisionTarget precision;             // when active: each n runs to it (power MC SE of `method`)
  std::uint64_t seed = 20190401;
  int threads = 0;
  int step = 1;                          // n is searched on multiples of this
  int lo = 0, hi = 0;                    // search range; 0: from the key's own limits
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(const std::string&)> log;  // one line per evaluated n
  // While a value is simulated: the values still probably needed after it (at most: not known
  // while bracketing), stage "bracketing" or "refining".
  std::function<void(const JobProgress&)> progress;
};

struct SampleSizePoint {
  int n = 0;
  std::uint64_t replicates = 0, rejections = 0;
  double power = 0, power_mcse = 0;
  double randomized = 0, completed_treatment = 0, completed_control = 0;
  bool used_in_fit = false;
};

// probit(power) = a + b sqrt(n), fitted by binomial maximum likelihood (IRLS) to the simulated
// rejections near the target.
struct ProbitFit {
  double a = 0, b = 0;
  double cov[2][2]{};  // inverse Fisher information of (a, b)
  int points_used = 0;
  double power(double n) const;
  // Pointwise 95% band of the fitted power at n (delta method on the linear predictor).
  double lower(double n) const;
  double upper(double n) const;
};

struct SampleSizeResult {
  Labels labels;  // the scenario's names for the outcome, unit and arms
  std::string key, method;
  double target_power = 0;
  std::vector<SampleSizePoint> points;  // sorted by n
  ProbitFit fit;
  int n = 0;                 // smallest n on the step grid whose fitted power reaches the target
  int n_low = 0, n_high = 0; // 95% Monte Carlo interval for it (where the band crosses the target)
  bool at_lower_limit = false;  // the target is already met at the smallest n searched
  SampleSizePoint at_n;      // the simulation at n
  nlohmann::json scenario;   // the resolved scenario at n
  nlohmann::json to_json(const SampleSizeOptions& o) const;
  std::string to_table(const SampleSizeOptions& o) const;
};

// Throws InputError on bad input (unknown key or method, a target no n in range reaches) and
// Interrupted when cancelled.
SampleSizeResult find_sample_size(const SampleSizeOptions& options);

}  // namespace trialsim
