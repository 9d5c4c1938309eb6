#include "sim/engine.hpp"

#include <tbb/global_control.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

namespace trialsim {

namespace {
struct Block {
  std::uint64_t first = 0, count = 0;
  std::optional<SummaryAccumulator> summary;
  std::vector<ReplicateResult> trials;  // kept only when per-trial output is asked for
};
using BlockPtr = std::shared_ptr<Block>;
}  // namespace

SummaryAccumulator run_replicates(const Scenario& scenario, const EngineOptions& options) {
  const TrialSimulator sim(scenario);
  SummaryAccumulator total(scenario);
  const int threads = options.threads > 0 ? options.threads : tbb::info::default_concurrency();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
  const std::uint64_t blocks = (options.replicates + kBlockSize - 1) / kBlockSize;
  const bool keep_trials = static_cast<bool>(options.on_trial);
  // Scratch space per worker thread, reused across its blocks. Results never depend on it:
  // every replicate overwrites what it uses.
  tbb::enumerable_thread_specific<Workspace> workspaces;
  std::uint64_t next = 0;
  // Tokens bound the blocks in flight, so memory stays flat in the number of replicates.
  const auto tokens = static_cast<std::size_t>(2 * threads);

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
                                         b->count = std::min(kBlockSize, options.replicates - b->first);
                                         ++next;
                                         return b;
                                       }) &
          tbb::make_filter<BlockPtr, BlockPtr>(tbb::filter_mode::parallel,
                                               [&](BlockPtr b) -> BlockPtr {
                                                 Workspace& ws = workspaces.local();
                                                 b->summary.emplace(scenario);
                                                 if (keep_trials) b->trials.reserve(b->count);
                                                 for (std::uint64_t r = b->first; r < b->first + b->count; ++r) {
                                                   ReplicateResult res = sim.run(options.seed, r, ws);
                                                   b->summary->add(res);
                                                   if (keep_trials) b->trials.push_back(res);
                                                 }
                                                 return b;
                                               }) &
          tbb::make_filter<BlockPtr, void>(tbb::filter_mode::serial_in_order, [&](BlockPtr b) {
            total.merge(*b->summary);
            if (keep_trials) {
              for (const auto& t : b->trials) options.on_trial(t);
            }
            if (options.on_progress) options.on_progress(total.replicates(), options.replicates);
          }));
  if (options.cancel && options.cancel->load() && total.replicates() < options.replicates) throw Interrupted{};
  return total;
}

}  // namespace trialsim
