#pragma once
// Shard files: one process's share of a run, for clusters without MPI (job arrays, cloud batch).
//
// `run --shard I/K` simulates shard I of K (a contiguous share of the run's chunks, see
// shard_range) and writes a self-describing JSON file: the run's identity (version, scenario
// path, --set keys, the resolved scenario, seed, replicates), its replicate range, the exact
// state of each node of the reduction tree it computed (hex of the IEEE-754 bits, so nothing is
// rounded), the estimates the figures sample, and where its part of the trials CSV is.
// `merge` checks that the shards form one complete run and folds their nodes in replicate order,
// which gives the single process's result bit for bit.
#include "sim/engine/engine.hpp"
#include "sim/io/scenario.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace trialsim {

// A node of the reduction tree computed by a shard.
struct ShardNode {
  WorkUnit unit;
  std::vector<double> state;  // SummaryAccumulator::state()
};

struct RunShard {
  std::string file;               // where it was read from (for messages)
  std::string version;
  std::string source;             // the scenario path as given to run
  std::string scenario_path;      // absolute
  std::vector<std::string> sets;
  nlohmann::json resolved;        // Scenario::to_json() without "source"
  std::uint64_t seed = 0, replicates = 0;
  std::uint64_t index = 0, count = 1, first = 0, end = 0;
  std::vector<ShardNode> nodes;
  std::uint64_t samples_below = 0;                                       // trials sampled: [0, this)
  std::vector<std::pair<std::string, std::vector<double>>> samples;     // per method, this shard's
  std::optional<std::string> trials_csv;                                 // absolute path of its part

  nlohmann::json to_json() const;
  // Throws InputError naming the file when it is not a shard file this version can read.
  static RunShard read(const std::string& path);
};

// "I/K" as given to --shard: 0 <= I < K; throws InputError naming --shard.
std::pair<std::uint64_t, std::uint64_t> parse_shard(const std::string& spec);

// Hex of a vector of doubles' bits (16 hex digits each), and back (throws std::runtime_error).
std::string doubles_to_hex(const std::vector<double>& v);
std::vector<double> doubles_from_hex(const std::string& hex);

// The shards of one run in index order, checked: same run (version, scenario, --set keys,
// seed, replicates, shard count), each index exactly once, ranges as shard_range gives them and
// nodes covering each range. Throws InputError naming the shard at fault.
std::vector<RunShard> check_shards(std::vector<RunShard> shards);

}  // namespace trialsim
