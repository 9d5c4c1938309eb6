#pragma once
// Runs many replicates in parallel and merges their summaries in a fixed order.
#include "sim/summary.hpp"
#include "sim/trial.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

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

}  // namespace trialsim
