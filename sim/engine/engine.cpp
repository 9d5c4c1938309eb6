#include "sim/engine/engine.hpp"

#include <tbb/global_control.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <stdexcept>
#include <vector>

namespace trialsim {

namespace {
struct Block {
  std::uint64_t first = 0, count = 0;
  std::optional<SummaryAccumulator> summary;
  std::vector<ReplicateResult> trials;  // kept only when per-trial output is asked for
  bool aborted = false;                 // cancelled before its last replicate
};
using BlockPtr = std::shared_ptr<Block>;
}  // namespace

ReductionTree::ReductionTree(const Scenario& s, std::uint64_t start)
    : scenario_(&s), start_(start), end_(start), chunk_(s), super_(s), total_(s) {
  if (start % kChunkSize != 0) throw std::logic_error("ReductionTree: start is not on a chunk boundary");
}

bool ReductionTree::accepts(int level) const {
  if (ended_) return false;
  switch (level) {
    case 0:
      return end_ % kBlockSize == 0;
    case 1:
      return end_ % kChunkSize == 0 && chunk_.replicates() == 0;
    case 2:
      return end_ % kSuperChunkSize == 0 && chunk_.replicates() == 0 && super_.replicates() == 0;
    default:
      return false;
  }
}

void ReductionTree::append(int level, const SummaryAccumulator& node) {
  if (!accepts(level)) throw std::logic_error("ReductionTree: node out of place");
  static constexpr std::uint64_t kSize[] = {kBlockSize, kChunkSize, kSuperChunkSize};
  const std::uint64_t n = node.replicates();
  if (n == 0 || n > kSize[level]) throw std::logic_error("ReductionTree: node of the wrong size");
  (level == 0 ? chunk_ : level == 1 ? super_ : total_).merge(node);
  end_ += n;
  if (n < kSize[level]) ended_ = true;  // the run's last, short node: result() closes the rest
  if (level == 0 && end_ % kChunkSize == 0) {
    super_.merge(chunk_);
    chunk_ = SummaryAccumulator(*scenario_);
  }
  if (level <= 1 && end_ % kSuperChunkSize == 0 && super_.replicates() > 0) {
    total_.merge(super_);
    super_ = SummaryAccumulator(*scenario_);
  }
}

SummaryAccumulator ReductionTree::result() const {
  SummaryAccumulator open = super_;
  open.merge(chunk_);
  SummaryAccumulator r = total_;
  r.merge(open);
  return r;
}

std::vector<double> ReductionTree::state() const {
  std::vector<double> out{static_cast<double>(start_), static_cast<double>(end_), ended_ ? 1.0 : 0.0};
  for (const SummaryAccumulator* x : {&chunk_, &super_, &total_}) {
    const std::vector<double> st = x->state();
    out.insert(out.end(), st.begin(), st.end());
  }
  return out;
}

void ReductionTree::set_state(const std::vector<double>& state) {
  const std::size_t n = SummaryAccumulator::state_size();
  if (state.size() != 3 + 3 * n) throw std::runtime_error("reduction tree state of the wrong size");
  start_ = static_cast<std::uint64_t>(state[0]);
  end_ = static_cast<std::uint64_t>(state[1]);
  ended_ = state[2] != 0;
  std::size_t at = 3;
  for (SummaryAccumulator* x : {&chunk_, &super_, &total_}) {
    x->set_state(std::vector<double>(state.begin() + static_cast<std::ptrdiff_t>(at),
                                     state.begin() + static_cast<std::ptrdiff_t>(at + n)));
    at += n;
  }
}

namespace {
RangeRunner g_runner = &simulate_range;
}  // namespace

void set_range_runner(RangeRunner runner) { g_runner = runner ? runner : &simulate_range; }
bool distributed() { return g_runner != &simulate_range; }

namespace {
Broadcaster g_broadcaster = nullptr;
}  // namespace

void set_broadcaster(Broadcaster b) { g_broadcaster = b; }
void broadcast_from_first(std::vector<double>& values) {
  if (g_broadcaster) g_broadcaster(values);
}

void extend_replicates(const Scenario& scenario, const EngineOptions& options, ReductionTree& tree, std::uint64_t end) {
  if (tree.end() >= end) return;
  g_runner(scenario, options, tree, end);
}

namespace {
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

std::string duration_text(double seconds) {
  char buf[64];
  if (seconds < 120) {
    std::snprintf(buf, sizeof buf, "%.0f s", seconds);
  } else if (seconds < 7200) {
    std::snprintf(buf, sizeof buf, "%.0f min", seconds / 60);
  } else if (seconds < 172800) {
    std::snprintf(buf, sizeof buf, "%.1f h", seconds / 3600);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f days", seconds / 86400);
  }
  return buf;
}
}  // namespace

double probe_trial_seconds(const Scenario& scenario, std::uint64_t seed, double budget_seconds, std::uint64_t max_trials) {
  const TrialSimulator sim(scenario);
  Workspace ws;
  // The first trial grows the workspace and fills the per-thread caches (t quantiles), which a
  // long run pays once: it is timed only when it is all the budget allows.
  double start = thread_cpu_seconds();
  (void)sim.run(seed, 0, ws);
  double spent = thread_cpu_seconds() - start;
  if (spent >= budget_seconds || max_trials <= 1) return spent;
  // The clock is read after batches of doubling size: reading a thread's CPU clock is a system
  // call, which would cost as much as a cheap trial.
  start = thread_cpu_seconds();
  std::uint64_t done = 0;
  for (std::uint64_t batch = 1; done + 1 < max_trials && spent < budget_seconds; batch *= 2) {
    for (std::uint64_t k = 0; k < batch && done + 1 < max_trials; ++k, ++done) (void)sim.run(seed, done + 1, ws);
    spent = thread_cpu_seconds() - start;
  }
  return spent / static_cast<double>(done);
}

int effective_threads(int threads) { return threads > 0 ? threads : tbb::info::default_concurrency(); }

std::string about_duration(double seconds) {
  if (!(seconds >= 1)) return "under 1 s";
  if (seconds < 90) return "about " + std::to_string(static_cast<long>(std::ceil(seconds))) + " s";
  return "about " + std::to_string(static_cast<long>(std::ceil(seconds / 60))) + " min";
}

std::string long_run_notice(double seconds_per_trial, std::uint64_t trials, int threads, const std::string& what,
                            double notice_seconds, const std::string& stopping) {
  const double cpu = seconds_per_trial * static_cast<double>(trials);
  const double wall = cpu / std::max(1, threads);
  if (!(wall > notice_seconds)) return {};
  char per[64];
  if (seconds_per_trial >= 0.1) {
    std::snprintf(per, sizeof per, "%.2f s", seconds_per_trial);
  } else {
    std::snprintf(per, sizeof per, "%.3g ms", seconds_per_trial * 1e3);
  }
  return "trialsim: " + what + " will take about " + duration_text(wall) + " on " + std::to_string(threads) +
         (threads == 1 ? " thread" : " threads") + " (" + duration_text(cpu) + " of CPU: " + per + " per trial x " +
         std::to_string(trials) + " trials); " + stopping;
}

SummaryAccumulator run_replicates(const Scenario& scenario, const EngineOptions& options) {
  ReductionTree tree(scenario);
  extend_replicates(scenario, options, tree, options.replicates);
  return tree.result();
}

std::vector<WorkUnit> units_of(std::uint64_t first, std::uint64_t end) {
  if (first % kChunkSize != 0) throw std::logic_error("units_of: start is not on a chunk boundary");
  std::vector<WorkUnit> units;
  for (std::uint64_t at = first; at < end;) {
    if (at % kSuperChunkSize == 0 && end - at >= kSuperChunkSize) {
      units.push_back({at, at + kSuperChunkSize, 2});
      at += kSuperChunkSize;
    } else {
      const std::uint64_t to = std::min(end, at + kChunkSize);
      units.push_back({at, to, 1});
      at = to;
    }
  }
  return units;
}

std::pair<std::uint64_t, std::uint64_t> shard_range(std::uint64_t replicates, std::uint64_t index, std::uint64_t count) {
  const std::uint64_t chunks = (replicates + kChunkSize - 1) / kChunkSize;
  // chunks * index / count without overflow for any realistic count (chunks < 2^40).
  const std::uint64_t a = chunks * index / count, b = chunks * (index + 1) / count;
  return {std::min(replicates, a * kChunkSize), std::min(replicates, b * kChunkSize)};
}

SummaryAccumulator simulate_unit(const Scenario& scenario, const EngineOptions& options, const WorkUnit& unit) {
  ReductionTree local(scenario, unit.first);
  simulate_range(scenario, options, local, unit.end);
  return local.result();
}

void simulate_range(const Scenario& scenario, const EngineOptions& options, ReductionTree& tree, std::uint64_t end) {
  const std::uint64_t first = tree.end();
  if (first >= end) return;
  if (first % kBlockSize != 0) throw std::logic_error("simulate_range: start is not on a block boundary");
  const TrialSimulator sim(scenario);
  const int threads = effective_threads(options.threads);
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
  const std::uint64_t blocks = (end + kBlockSize - 1) / kBlockSize;
  const bool keep_trials = static_cast<bool>(options.on_trial);
  // Scratch space per worker thread, reused across its blocks. Results never depend on it:
  // every replicate overwrites what it uses.
  tbb::enumerable_thread_specific<Workspace> workspaces;
  std::uint64_t next = first / kBlockSize;
  // Tokens bound the blocks in flight, so memory stays flat in the number of replicates.
  const auto tokens = static_cast<std::size_t>(2 * threads);
  bool cut = false;  // a block was cancelled part-way (read and set in the serial stage only)

  tbb::parallel_pipeline(
      tokens,
      tbb::make_filter<void, BlockPtr>(tbb::filter_mode::serial_in_order,
                                       [&](tbb::flow_control& fc) -> BlockPtr {
                                         if (next >= blocks || (options.cancel && options.cancel->load())) {
                                           fc.stop();
                                           return nullptr;
                                         }
                                         auto b = std::make_shared<Block>();
                                         b->first = next * kBlockSize;
                                         b->count = std::min(kBlockSize, end - b->first);
                                         ++next;
                                         return b;
                                       }) &
          tbb::make_filter<BlockPtr, BlockPtr>(tbb::filter_mode::parallel,
                                               [&](BlockPtr b) -> BlockPtr {
                                                 Workspace& ws = workspaces.local();
                                                 b->summary.emplace(scenario);
                                                 const bool keep = keep_trials && b->first < options.on_trial_below;
                                                 if (keep) b->trials.reserve(b->count);
                                                 for (std::uint64_t r = b->first; r < b->first + b->count; ++r) {
                                                   // Stop within one trial of a cancel, not one block
                                                   // (a block of long trials can take minutes).
                                                   if (options.cancel && options.cancel->load()) {
                                                     b->aborted = true;
                                                     break;
                                                   }
                                                   ReplicateResult res = sim.run(options.seed, r, ws);
                                                   b->summary->add(res);
                                                   if (keep) b->trials.push_back(res);
                                                 }
                                                 return b;
                                               }) &
          tbb::make_filter<BlockPtr, void>(tbb::filter_mode::serial_in_order, [&](BlockPtr b) {
            // Cancelled part-way: nothing from this block on is kept; the run throws Interrupted.
            cut = cut || b->aborted;
            if (cut) return;
            tree.append(0, *b->summary);
            for (const auto& t : b->trials) options.on_trial(t);
            if (options.on_progress) options.on_progress(tree.end(), end);
          }));
  if (options.cancel && options.cancel->load() && tree.end() < end) throw Interrupted{};
}

PrecisionReport precision_of(const SummaryAccumulator& s, const Scenario& scenario, const PrecisionTarget& t) {
  PrecisionReport r;
  r.replicates = s.replicates();
  const std::vector<Method>& methods = t.methods.empty() ? scenario.analysis.methods : t.methods;
  const double n = static_cast<double>(s.replicates());
  bool met = n > 0;
  for (const Method m : methods) {
    const MethodAccumulator& acc = s.method(m);
    if (t.power_mcse > 0) {
      const double p_adj = (acc.reject.mean() * n + 2.0) / (n + 4.0);
      const double mcse = std::sqrt(p_adj * (1 - p_adj) / std::max(n, 1.0));
      r.worst_power_mcse = std::max(r.worst_power_mcse, mcse);
      met = met && mcse <= t.power_mcse;
    }
    if (t.bias_mcse > 0) {
      // Fewer than two estimable trials: no MC SE yet, so the target is not met.
      const double mcse = acc.estimate.n() > 1 ? acc.estimate.mcse() : std::numeric_limits<double>::infinity();
      r.worst_bias_mcse = std::max(r.worst_bias_mcse, mcse);
      met = met && mcse <= t.bias_mcse;
    }
  }
  r.met = met;
  return r;
}

std::string PrecisionTarget::to_identity() const {
  char buf[160];
  std::snprintf(buf, sizeof buf, "power_mcse=%.17g,bias_mcse=%.17g,batch=%llu,max=%llu", power_mcse, bias_mcse,
                static_cast<unsigned long long>(batch), static_cast<unsigned long long>(max_replicates));
  std::string s = buf;
  for (const Method m : methods) s += "," + std::string(method_name(m));
  return s;
}

nlohmann::json PrecisionTarget::to_json() const {
  auto target = [](double v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"power_mcse_target", target(power_mcse)},
          {"bias_mcse_target", target(bias_mcse)},
          {"batch", batch},
          {"max_replicates", max_replicates}};
}

nlohmann::json PrecisionReport::to_json(const PrecisionTarget& t) const {
  auto value = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j = t.to_json();
  j.update(nlohmann::json{{"replicates", replicates},
          {"batches", batches},
          {"met", met},
          {"worst_power_mcse_stopping_rule", t.power_mcse > 0 ? value(worst_power_mcse) : nlohmann::json(nullptr)},
          {"worst_bias_mcse", t.bias_mcse > 0 ? value(worst_bias_mcse) : nlohmann::json(nullptr)}});
  return j;
}

SummaryAccumulator run_to_precision(const Scenario& scenario, const EngineOptions& options, const PrecisionTarget& t,
                                    PrecisionReport& report) {
  if (!t.active()) throw std::logic_error("run_to_precision: no target");
  if (t.batch == 0 || t.batch % kChunkSize != 0) throw std::logic_error("run_to_precision: batch is not whole chunks");
  ReductionTree tree(scenario);
  EngineOptions o = options;
  std::uint64_t batches = 0;
  std::uint64_t goal = std::min(t.batch, t.max_replicates);
  for (;;) {
    o.replicates = goal;
    extend_replicates(scenario, o, tree, goal);
    ++batches;
    SummaryAccumulator total = tree.result();
    report = precision_of(total, scenario, t);
    report.batches = batches;
    if (report.met || total.replicates() >= t.max_replicates) return total;
    // Aim at the replicates the current MC SEs predict (MC SE ~ 1/sqrt(n)), rounded up to whole
    // batches, at least one batch more and at most double what is done: the goal depends only on
    // the merged summary, never on timing or threads.
    const double n = static_cast<double>(total.replicates());
    double ratio = 1.0;
    if (t.power_mcse > 0) ratio = std::max(ratio, std::pow(report.worst_power_mcse / t.power_mcse, 2));
    if (t.bias_mcse > 0 && std::isfinite(report.worst_bias_mcse)) {
      ratio = std::max(ratio, std::pow(report.worst_bias_mcse / t.bias_mcse, 2));
    }
    const double wanted = std::min(2.0 * n, n * ratio);
    std::uint64_t next = static_cast<std::uint64_t>(std::ceil(wanted / static_cast<double>(t.batch))) * t.batch;
    next = std::max(next, total.replicates() + t.batch);
    goal = std::min(next, t.max_replicates);
  }
}

}  // namespace trialsim
