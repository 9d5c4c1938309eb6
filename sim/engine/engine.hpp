#pragma once
// Runs many replicates in parallel and merges their summaries in a fixed order.
#include "sim/engine/summary.hpp"
#include "sim/engine/trial.hpp"

#include <atomic>
#include <climits>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace trialsim {

// The reduction tree. Replicates are simulated in blocks of kBlockSize, each by one worker in
// replicate order; blocks are folded in order into chunks of kChunkSize replicates, chunks into
// super-chunks of kSuperChunkSize, and super-chunks into the run's summary. Every way of running
// a replicate range (any thread count, batches, MPI ranks, shards) produces exactly these nodes
// and folds them in this order, so the floating-point result is always the same.
inline constexpr std::uint64_t kBlockSize = 64;
inline constexpr std::uint64_t kChunkSize = 16 * kBlockSize;         // 1 024 replicates
inline constexpr std::uint64_t kSuperChunkSize = 64 * kChunkSize;    // 65 536 replicates

class ReductionTree {
 public:
  // A tree for replicates from `start` on (a multiple of kChunkSize, or 0).
  explicit ReductionTree(const Scenario& s, std::uint64_t start = 0);
  // Appends the summary of replicates [end(), end() + node.replicates()) as one node of `level`
  // (0 block, 1 chunk, 2 super-chunk). The node must start on a boundary of its level with the
  // lower levels closed; a node shorter than its level ends the tree (the run's last replicates).
  // Throws std::logic_error otherwise.
  void append(int level, const SummaryAccumulator& node);
  std::uint64_t start() const { return start_; }
  std::uint64_t end() const { return end_; }
  // Whether a node of `level` may be appended now.
  bool accepts(int level) const;
  // The fold of everything appended, closing the open chunk and super-chunk.
  SummaryAccumulator result() const;
  // The exact state, to give another process the same tree (see SummaryAccumulator::state).
  std::vector<double> state() const;
  void set_state(const std::vector<double>& state);

 private:
  const Scenario* scenario_;
  std::uint64_t start_ = 0, end_ = 0;
  bool ended_ = false;
  SummaryAccumulator chunk_, super_, total_;
};

struct EngineOptions {
  std::uint64_t replicates = 10000;
  std::uint64_t seed = 20190401;
  int threads = 0;  // 0: all cores
  // Called once per replicate, in replicate order, from one thread at a time.
  std::function<void(const ReplicateResult&)> on_trial;
  // Called after each block is merged, from one thread at a time.
  std::function<void(std::uint64_t done, std::uint64_t total)> on_progress;
  // on_trial is needed only for replicates below this (e.g. the trials sampled for figures), so
  // other processes of a distributed run need not send the rest.
  std::uint64_t on_trial_below = UINT64_MAX;
  // When set (e.g. by SIGINT), no new block starts; run_replicates throws Interrupted.
  const std::atomic<bool>* cancel = nullptr;
};

struct Interrupted : std::exception {
  std::string message;  // what was kept, for the user; empty: nothing was written
  explicit Interrupted(std::string m = {}) : message(std::move(m)) {}
  const char* what() const noexcept override { return "interrupted"; }
};

// Another process of a distributed run failed (it reported why, once): this process ends with
// the same exit code and says nothing more.
// On the first process, `message` is the failed process's one-line report, to print.
struct PeerFailed : std::exception {
  int exit_code = 1;
  std::string message;
  explicit PeerFailed(int code, std::string text = {}) : exit_code(code), message(std::move(text)) {}
  const char* what() const noexcept override { return "another process of the run failed"; }
};

// Broadcast from the first process of a distributed run to the others (a no-op in one process):
// for results every process must hold identically, computed from on_trial data that only the
// first process sees. Installed with the range runner.
using Broadcaster = void (*)(std::vector<double>&);
void set_broadcaster(Broadcaster b);
void broadcast_from_first(std::vector<double>& values);

SummaryAccumulator run_replicates(const Scenario& scenario, const EngineOptions& options);

// What one trial of `scenario` costs: CPU seconds per trial on this thread (simulation and every
// analysis), measured on replicates 0, 1, ... of `seed` until `budget_seconds` of CPU time have
// passed or `max_trials` are done (at least one). For a cost estimate before a long run; the
// trials are not kept.
double probe_trial_seconds(const Scenario& scenario, std::uint64_t seed, double budget_seconds = 0.2,
                           std::uint64_t max_trials = 32);
// The threads a run with `threads` (0: all cores) uses.
int effective_threads(int threads);
// Where a job of many simulations (a sweep's grid points, a sample-size search's values) stands
// while one of them runs: for a live progress line with the time left for the whole job.
struct JobProgress {
  std::string item;                                 // the one running, e.g. "trial.consented=120"
  std::uint64_t trials_done = 0, trials_total = 0;  // of it
  int items_done = 0;                               // finished before it, in this run
  int items_left = 0;                               // still to run after it (an estimate where the job cannot know)
  int items_left_max = -1;                          // at most (-1: not known)
  double seconds_done = 0;                          // spent on the finished ones
  std::string stage;                                // what the job is doing, e.g. "bracketing"
};

// A time still to come, as people say it: "under 1 s", "about 40 s", "about 3 min".
std::string about_duration(double seconds);

// One line for a run of `trials` trials at `seconds_per_trial` on `threads` threads when it
// would take longer than `notice_seconds` of wall time ("" otherwise): the CPU and wall time
// expected and the cost of one trial, so a user can stop it (Ctrl-C) or make it smaller.
// `stopping` says what Ctrl-C leaves behind.
std::string long_run_notice(double seconds_per_trial, std::uint64_t trials, int threads, const std::string& what,
                            double notice_seconds = 300.0,
                            const std::string& stopping = "Ctrl-C stops it and writes nothing");

// A unit of work for another process: replicates [first, end), one node of the tree at `level`.
struct WorkUnit {
  std::uint64_t first = 0, end = 0;
  int level = 1;
};
// Replicates [first, end) (first on a chunk boundary) as nodes: super-chunks where one fits
// whole (and `first` allows), chunks elsewhere; the last may be short.
std::vector<WorkUnit> units_of(std::uint64_t first, std::uint64_t end);
// Shard `index` of `count` of a run of `replicates`: a contiguous share of its chunks,
// [first, end); shards differ by at most one chunk and may be empty when count exceeds them.
std::pair<std::uint64_t, std::uint64_t> shard_range(std::uint64_t replicates, std::uint64_t index, std::uint64_t count);
// The summary of one unit, simulated in this process (on_trial as for run_replicates).
SummaryAccumulator simulate_unit(const Scenario& scenario, const EngineOptions& options, const WorkUnit& unit);

// Simulates replicates [tree.end(), end) in this process and appends them to `tree` as blocks.
// on_trial and on_progress are called as for run_replicates.
void simulate_range(const Scenario& scenario, const EngineOptions& options, ReductionTree& tree, std::uint64_t end);

// How a run's replicate range is computed: in this process (simulate_range), or spread over
// the processes of a distributed run, which every process calls together with the same
// arguments and which leaves the same tree in each. Installed once at start-up.
using RangeRunner = void (*)(const Scenario&, const EngineOptions&, ReductionTree&, std::uint64_t end);
void set_range_runner(RangeRunner runner);
// Whether a distributed runner is installed (this process is one of several).
bool distributed();
// Extends `tree` to `end` with the installed runner.
void extend_replicates(const Scenario& scenario, const EngineOptions& options, ReductionTree& tree, std::uint64_t end);

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
