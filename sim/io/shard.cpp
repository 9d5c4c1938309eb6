#include "sim/io/shard.hpp"

#include "sim/io/config_reader.hpp"

#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace trialsim {

namespace {

constexpr const char* kFormat = "trialsim-shard";
constexpr int kFormatVersion = 1;

std::uint64_t parse_u64(const std::string& text, const std::string& what, const std::string& spec) {
  std::uint64_t v = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size()) {
    throw InputError("--shard " + spec + ": " + what + " '" + text + "' is not a whole number (expected I/K, e.g. 0/4)");
  }
  return v;
}

}  // namespace

std::pair<std::uint64_t, std::uint64_t> parse_shard(const std::string& spec) {
  const auto slash = spec.find('/');
  if (slash == std::string::npos) throw InputError("--shard " + spec + ": expected I/K, e.g. 0/4 (shard I of K, from 0)");
  const std::uint64_t i = parse_u64(spec.substr(0, slash), "I", spec);
  const std::uint64_t k = parse_u64(spec.substr(slash + 1), "K", spec);
  if (k == 0 || k > 1000000) throw InputError("--shard " + spec + ": K must be between 1 and 1000000");
  if (i >= k) throw InputError("--shard " + spec + ": I must be below K (shards are numbered 0 to K-1)");
  return {i, k};
}

std::string doubles_to_hex(const std::vector<double>& v) {
  static const char* const kDigits = "0123456789abcdef";
  std::string out(16 * v.size(), '0');
  for (std::size_t k = 0; k < v.size(); ++k) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v[k], sizeof bits);
    for (int d = 15; d >= 0; --d) {
      out[16 * k + static_cast<std::size_t>(d)] = kDigits[bits & 0xF];
      bits >>= 4;
    }
  }
  return out;
}

std::vector<double> doubles_from_hex(const std::string& hex) {
  if (hex.size() % 16 != 0) throw std::runtime_error("state is not a whole number of 16-digit values");
  std::vector<double> v(hex.size() / 16);
  for (std::size_t k = 0; k < v.size(); ++k) {
    std::uint64_t bits = 0;
    const auto r = std::from_chars(hex.data() + 16 * k, hex.data() + 16 * (k + 1), bits, 16);
    if (r.ec != std::errc() || r.ptr != hex.data() + 16 * (k + 1)) throw std::runtime_error("state holds a non-hex digit");
    std::memcpy(&v[k], &bits, sizeof bits);
  }
  return v;
}

nlohmann::json RunShard::to_json() const {
  nlohmann::json nodes_json = nlohmann::json::array();
  for (const ShardNode& n : nodes) {
    nodes_json.push_back({{"level", n.unit.level}, {"first", n.unit.first}, {"end", n.unit.end}, {"state", doubles_to_hex(n.state)}});
  }
  nlohmann::json samples_json = nlohmann::json::array();
  for (const auto& [method, values] : samples) samples_json.push_back({{"method", method}, {"estimates", values}});
  return {{"format", kFormat},
          {"format_version", kFormatVersion},
          {"trialsim_version", version},
          {"command", "run"},
          {"scenario", {{"source", source}, {"path", scenario_path}, {"sets", sets}, {"resolved", resolved}}},
          {"seed", seed},
          {"replicates", replicates},
          {"shard", {{"index", index}, {"count", count}, {"first", first}, {"end", end}}},
          {"state_size", SummaryAccumulator::state_size()},
          {"nodes", nodes_json},
          {"samples", {{"below", samples_below}, {"methods", samples_json}}},
          {"trials_csv", trials_csv ? nlohmann::json(*trials_csv) : nlohmann::json(nullptr)}};
}

RunShard RunShard::read(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw InputError(path + ": not a readable file (expected a shard file written by run --shard)");
  std::ifstream in(path, std::ios::binary);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  auto bad = [&](const std::string& why) { return InputError(path + ": " + why); };
  if (j.is_discarded() || !j.is_object()) throw bad("not JSON; expected a shard file written by run --shard");
  const auto* format = j.contains("format") ? &j["format"] : nullptr;
  if (format == nullptr || !format->is_string() || format->get_ref<const std::string&>() != kFormat) {
    throw bad("not a trialsim shard file (written by run --shard I/K --json FILE)");
  }
  RunShard s;
  s.file = path;
  try {
    if (j.at("format_version").get<int>() != kFormatVersion) {
      throw bad("shard format " + j.at("format_version").dump() + ", this trialsim reads format " + std::to_string(kFormatVersion));
    }
    if (j.at("command").get<std::string>() != "run") throw bad("a shard of '" + j.at("command").get<std::string>() + "', not of run");
    s.version = j.at("trialsim_version").get<std::string>();
    const auto& sc = j.at("scenario");
    s.source = sc.at("source").get<std::string>();
    s.scenario_path = sc.at("path").get<std::string>();
    s.sets = sc.at("sets").get<std::vector<std::string>>();
    s.resolved = sc.at("resolved");
    s.seed = j.at("seed").get<std::uint64_t>();
    s.replicates = j.at("replicates").get<std::uint64_t>();
    const auto& sh = j.at("shard");
    s.index = sh.at("index").get<std::uint64_t>();
    s.count = sh.at("count").get<std::uint64_t>();
    s.first = sh.at("first").get<std::uint64_t>();
    s.end = sh.at("end").get<std::uint64_t>();
    if (j.at("state_size").get<std::size_t>() != SummaryAccumulator::state_size()) {
      throw bad("written by a trialsim with another summary layout (" + s.version + "); rerun the shards with this one");
    }
    for (const auto& n : j.at("nodes")) {
      ShardNode node;
      node.unit.level = n.at("level").get<int>();
      node.unit.first = n.at("first").get<std::uint64_t>();
      node.unit.end = n.at("end").get<std::uint64_t>();
      node.state = doubles_from_hex(n.at("state").get<std::string>());
      if (node.state.size() != SummaryAccumulator::state_size()) throw bad("a node's state has the wrong size");
      s.nodes.push_back(std::move(node));
    }
    const auto& samples = j.at("samples");
    s.samples_below = samples.at("below").get<std::uint64_t>();
    for (const auto& m : samples.at("methods")) {
      s.samples.emplace_back(m.at("method").get<std::string>(), m.at("estimates").get<std::vector<double>>());
    }
    if (!j.at("trials_csv").is_null()) s.trials_csv = j.at("trials_csv").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("damaged shard file: ") + e.what());
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const InputError*>(&e) != nullptr) throw;
    throw bad(std::string("damaged shard file: ") + e.what());
  }
  return s;
}

std::vector<RunShard> check_shards(std::vector<RunShard> shards) {
  if (shards.empty()) throw InputError("merge: name the shard files to merge");
  const RunShard& ref = shards.front();
  auto differs = [&](const RunShard& s, const std::string& what, const std::string& a, const std::string& b) {
    return InputError("merge: " + s.file + " is not a shard of the same run as " + ref.file + ": " + what + " " + a + " vs " + b);
  };
  for (const RunShard& s : shards) {
    if (s.version != ref.version) throw differs(s, "trialsim version", s.version, ref.version);
    if (s.scenario_path != ref.scenario_path) throw differs(s, "scenario", s.scenario_path, ref.scenario_path);
    if (s.sets != ref.sets) throw differs(s, "--set keys", nlohmann::json(s.sets).dump(), nlohmann::json(ref.sets).dump());
    if (s.resolved != ref.resolved) throw differs(s, "resolved scenario", "(differs)", "(the scenario file changed between shards?)");
    if (s.seed != ref.seed) throw differs(s, "seed", std::to_string(s.seed), std::to_string(ref.seed));
    if (s.replicates != ref.replicates) throw differs(s, "--reps", std::to_string(s.replicates), std::to_string(ref.replicates));
    if (s.count != ref.count) throw differs(s, "shard count K", std::to_string(s.count), std::to_string(ref.count));
  }
  std::map<std::uint64_t, std::size_t> by_index;
  for (std::size_t k = 0; k < shards.size(); ++k) {
    const auto [it, fresh] = by_index.emplace(shards[k].index, k);
    if (!fresh) {
      throw InputError("merge: " + shards[it->second].file + " and " + shards[k].file + " are both shard " +
                       std::to_string(shards[k].index) + "/" + std::to_string(ref.count));
    }
  }
  std::string missing;
  for (std::uint64_t i = 0; i < ref.count; ++i) {
    if (by_index.count(i) == 0) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
  }
  if (!missing.empty()) {
    throw InputError("merge: shard" + std::string(missing.find(',') == std::string::npos ? " " : "s ") + missing + " of " +
                     std::to_string(ref.count) + " missing (have " + std::to_string(shards.size()) + " of the run's " +
                     std::to_string(ref.count) + " shard files)");
  }
  std::vector<RunShard> ordered;
  ordered.reserve(shards.size());
  for (const auto& [index, k] : by_index) ordered.push_back(std::move(shards[k]));
  for (const RunShard& s : ordered) {
    const auto [first, end] = shard_range(s.replicates, s.index, s.count);
    if (s.first != first || s.end != end) throw InputError("merge: " + s.file + ": replicate range does not match its shard number");
    std::uint64_t at = first;
    for (const ShardNode& n : s.nodes) {
      if (n.unit.first != at || n.unit.end <= n.unit.first) throw InputError("merge: " + s.file + ": nodes do not cover its range in order");
      at = n.unit.end;
    }
    if (at != end) throw InputError("merge: " + s.file + ": incomplete (its nodes end at replicate " + std::to_string(at) + " of " + std::to_string(end) + ")");
  }
  return ordered;
}

}  // namespace trialsim
