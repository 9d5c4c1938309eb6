#pragma once
// Runs many replicates in parallel and merges their summaries in a fixed order.
#include "sim/engine/summary.hpp"
#include "sim/engine/trial.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace trialsim {

// Replicates are simulated in blocks of this many; a block is always run by one worker in
// replicate order and blocks are merged in block order, so the floating-point result is the
// same for any number of threads.
inline constexpr std::uint64_t kBlockSize = 64;

struct EngineOptions {
  std::uint64_t replicates = 10000;
  std::uint64_t seed = 20190401;
  int threads = 0;  // 0: all cores
  // Called once per replicate, in replicate order, from one thread at a time.
  std::function<void(const ReplicateResult&)> on_trial;
  // Called after each block is merged, from one thread at a time.
  std::function<void(std::uint64_t done, std::uint64_t total)> on_progress;
  // When set (e.g. by SIGINT), no new block starts; run_replicates throws Interrupted.
  const std::atomic<bool>* cancel = nullptr;
};

struct Interrupted : std::exception {
  std::string message;  // what was kept, for the user; empty: nothing was written
  explicit Interrupted(std::string m = {}) : message(std::move(m)) {}
  const char* what() const noexcept override { return "interrupted"; }
};

SummaryAccumulator run_replicates(const Scenario& scenario, const EngineOptions& options);

// Simulates replicates [total.replicates(), options.replicates) and appends them to `total`.
// `total.replicates()` must be a multiple of kBlockSize (or equal options.replicates), so the
// blocks, and therefore the merged result, are exactly those of one run of options.replicates.
void extend_replicates(const Scenario& scenario, const EngineOptions& options, SummaryAccumulator& total);

// "Precision on demand": replicates are added in whole batches until every Monte Carlo SE asked
// for is at most its target. Batch boundaries are multiples of kBlockSize and the stopping rule
// sees only the merged summary, so the result is bit-identical to `run_replicates` with the
// final replicate count, whatever the thread count.
struct PrecisionTarget {
  double power_mcse = 0;              // > 0: MC SE of power at most this (every method checked)
  double bias_mcse = 0;               // > 0: MC SE of bias (mmHg) at most this
  std::uint64_t batch = 1024;         // first batch, and the granularity of every later one
  std::uint64_t max_replicates = 1000000;
  std::vector<Method> methods;        // methods whose MC SEs must meet the targets; empty: all
  bool active() const { return power_mcse > 0 || bias_mcse > 0; }
  // The targets as text, for naming results computed to them (e.g. sweep points).
  std::string to_identity() const;
  nlohmann::json to_json() const;
};

struct PrecisionReport {
  std::uint64_t replicates = 0, batches = 0;
  bool met = false;
  double worst_power_mcse = 0, worst_bias_mcse = 0;  // the largest over the checked methods
  nlohmann::json to_json(const PrecisionTarget& t) const;
};

// Replicates needed so far: the largest MC SE ratio over the checked methods and measures.
// Exposed for tests. The stopping rule uses the power MC SE at p~ = (k + 2) / (n + 4)
// (Agresti & Coull, Am Stat 1998), so a run that has seen no rejections yet (p = 0, whose
// Morris MC SE is 0) does not stop early.
PrecisionReport precision_of(const SummaryAccumulator& s, const Scenario& scenario, const PrecisionTarget& t);

// Runs batches until the targets are met or max_replicates is reached; options.replicates is
// ignored. The report says which.
SummaryAccumulator run_to_precision(const Scenario& scenario, const EngineOptions& options, const PrecisionTarget& t,
                                    PrecisionReport& report);

}  // namespace trialsim
