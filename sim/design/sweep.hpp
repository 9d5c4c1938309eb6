#pragma once
// Sweeps: one scenario evaluated over a grid of parameter values.
#include "sim/engine/engine.hpp"
#include "sim/io/scenario.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace trialsim {

// One axis: a scenario key and the values it takes, each as the text of a --set value.
struct SweepAxis {
  std::string key;
  std::vector<std::string> values;
};

// Parses "KEY=V1,V2,..." or "KEY=LO:HI:STEP" (inclusive). `where` names the source in errors
// (e.g. "--vary" or "configs/x.toml: sweep.vary").
SweepAxis parse_axis(const std::string& spec, const std::string& where);

struct SweepOptions {
  std::string scenario_path;
  std::vector<std::string> sets;   // --set overrides applied to every point
  std::vector<SweepAxis> axes;     // --vary axes (added to the file's sweep.vary)
  std::uint64_t replicates = 10000;
  std::uint64_t seed = 20190401;
  int threads = 0;
  bool common_random_numbers = true;
  PrecisionTarget precision;       // when active, each point runs to it and `replicates` is unused
  std::string out_dir;
  // A shard of the sweep (--shard I/K): count 0 is the whole sweep. A shard computes its share
  // of the grid and writes no tables; the same sweep without --shard then assembles them.
  std::uint64_t shard_index = 0, shard_count = 0;
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(const std::string&)> log;  // one line per grid point
  std::function<void(const JobProgress&)> progress;  // while a point (or part) is computed
};

struct SweepResult {
  std::size_t points = 0, computed = 0, reused = 0;
};

// One run's summary (SummaryAccumulator::to_json) as the tidy table sweep.csv holds for each
// point: `method,metric,estimate,mcse`, one row per design figure (method `design`) and per
// analysis x measure; an empty mcse where the figure has none (a count).
std::string summary_csv(const nlohmann::json& summary);

// Validates every grid point (a bad value stops everything before any simulation), then
// simulates each point not already in out_dir/points/, writing each atomically, and finally
// writes out_dir/sweep.csv (tidy: one row per point x method x metric) and sweep.json.
// Throws InputError on bad input and Interrupted when cancelled (finished points are kept).
SweepResult run_sweep(const SweepOptions& options);

}  // namespace trialsim
