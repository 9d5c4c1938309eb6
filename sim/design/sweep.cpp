#include "sim/design/sweep.hpp"

#include "sim/io/shard.hpp"
#include "sim/io/writers.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace trialsim {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

bool parse_double(const std::string& s, double& out) {
  try {
    std::size_t used = 0;
    out = std::stod(s, &used);
    return used == s.size() && std::isfinite(out);
  } catch (const std::exception&) {
    return false;
  }
}

// FNV-1a, 64 bit (Fowler, Noll & Vo): a stable name for a grid point's inputs.
std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 14695981039346656037ULL;
  for (const char c : s) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

std::string hex(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

struct Point {
  std::vector<std::string> values;  // one per axis
  std::vector<std::string> varies;  // "key=value" per axis
  std::string hash;
  std::uint64_t seed = 0;
};

std::string point_label(const std::vector<SweepAxis>& axes, const Point& p) {
  std::string s;
  for (std::size_t a = 0; a < axes.size(); ++a) s += (a ? " " : "") + axes[a].key + "=" + p.values[a];
  return s;
}

using nlohmann::json;

// Tidy rows of one point: (method, metric, estimate, mcse).
void tidy_rows(const json& summary, std::vector<std::tuple<std::string, std::string, json, json>>& rows) {
  auto add = [&](const std::string& method, const std::string& metric, const json& est, const json& mcse) {
    rows.emplace_back(method, metric, est, mcse);
  };
  const json& f = summary["funnel"];
  add("design", "replicates", summary["replicates"], nullptr);
  add("design", "randomized", f["randomized"]["estimate"], f["randomized"]["mcse"]);
  for (const char* arm : {"treatment", "control"}) {
    add("design", std::string("completed_") + arm, f["completed"][arm]["estimate"], f["completed"][arm]["mcse"]);
  }
  if (const auto [burden, mcse] = consented_per_randomized(summary); burden) {
    add("design", "consented_per_randomized", *burden, mcse ? json(*mcse) : json(nullptr));
  }
  for (const char* arm : {"control", "treatment"}) {
    for (const char* c : {"observed_change", "drift", "slope_selection", "regression_to_mean", "attrition",
                          "regression_to_mean_total", "regression_to_mean_carried"}) {
      const json& v = summary["rtm"][arm][c];
      // rtm_<component>_<arm>: the trials CSV's order (measure, then arm).
      add("design", std::string("rtm_") + c + "_" + arm, v["estimate"], v["mcse"]);
    }
  }
  for (auto it = summary["analyses"].begin(); it != summary["analyses"].end(); ++it) {
    for (const char* metric :
         {"power", "mean_estimate", "bias", "emp_se", "model_se", "relative_se_error_pct", "rmse", "coverage"}) {
      add(it.key(), metric, it.value()[metric]["estimate"], it.value()[metric]["mcse"]);
    }
    add(it.key(), "not_estimable", it.value()["not_estimable"]["total"], nullptr);
  }
  // A group-sequential design: per method the stopping probabilities of each look and the
  // expected size and length of the trial; per look its expected calendar month.
  if (summary.contains("interim") && summary["interim"].is_object()) {
    const json& in = summary["interim"];
    for (const auto& look : in["looks"]) {
      const std::string l = "look" + std::to_string(look["look"].get<int>());
      add("design", l + "_calendar_month", look["calendar_month"]["estimate"], look["calendar_month"]["mcse"]);
      add("design", l + "_randomized", look["randomized"]["estimate"], look["randomized"]["mcse"]);
      for (auto m = look["stop_efficacy"].begin(); m != look["stop_efficacy"].end(); ++m) {
        add(m.key(), l + "_stop_efficacy", m.value()["estimate"], m.value()["mcse"]);
        const json& fut = look["stop_futility"][m.key()];
        add(m.key(), l + "_stop_futility", fut["estimate"], fut["mcse"]);
      }
    }
    for (auto m = in["methods"].begin(); m != in["methods"].end(); ++m) {
      add(m.key(), "stopped_early", m.value()["stopped_early"]["estimate"], m.value()["stopped_early"]["mcse"]);
      for (const char* c : {"calendar_month_at_end", "randomized_at_end", "consented_at_end"}) {
        add(m.key(), c, m.value()[c]["estimate"], m.value()[c]["mcse"]);
      }
    }
  }
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (const char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// An axis value as a CSV cell that R's read.csv and pandas.read_csv type without help: `none`
// (the key removed) as NA, which both read as missing, so that a cutoff column of none and
// numbers is numeric; true and false are read as logical by both as they are.
std::string axis_cell(const std::string& v) { return v == "none" ? "NA" : csv_cell(v); }

std::string num_cell(const json& v) {
  if (!v.is_number()) return "";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v.get<double>());
  return buf;
}

// A summary's tidy rows as CSV lines, each after `lead` (a sweep point's axis cells).
std::string tidy_lines(const json& summary, const std::string& lead) {
  std::vector<std::tuple<std::string, std::string, json, json>> rows;
  tidy_rows(summary, rows);
  std::string out;
  for (const auto& [method, metric, est, mcse] : rows) out += lead + method + "," + metric + "," + num_cell(est) + "," + num_cell(mcse) + "\n";
  return out;
}

}  // namespace

std::string summary_csv(const nlohmann::json& summary) { return "method,metric,estimate,mcse\n" + tidy_lines(summary, ""); }

SweepAxis parse_axis(const std::string& spec, const std::string& where) {
  const auto eq = spec.find('=');
  const std::string usage = " (expected KEY=V1,V2,... or KEY=LO:HI:STEP)";
  if (eq == std::string::npos || eq == 0) throw InputError(where + " " + spec + ": missing '='" + usage);
  SweepAxis axis;
  axis.key = trim(spec.substr(0, eq));
  const std::string rhs = trim(spec.substr(eq + 1));
  if (rhs.empty()) throw InputError(where + " " + spec + ": no values" + usage);
  if (rhs.find(':') != std::string::npos && rhs.find(',') == std::string::npos) {
    std::vector<std::string> parts;
    std::stringstream ss(rhs);
    for (std::string part; std::getline(ss, part, ':');) parts.push_back(trim(part));
    double lo = 0, hi = 0, step = 0;
    if (parts.size() != 3 || !parse_double(parts[0], lo) || !parse_double(parts[1], hi) || !parse_double(parts[2], step)) {
      throw InputError(where + " " + spec + ": a range needs three numbers LO:HI:STEP");
    }
    if (!(step > 0) || hi < lo) throw InputError(where + " " + spec + ": a range needs STEP > 0 and HI >= LO");
    const double count = std::floor((hi - lo) / step + 1e-9) + 1;
    if (count > 1000) throw InputError(where + " " + spec + ": more than 1000 values on one axis");
    for (int k = 0; k < static_cast<int>(count); ++k) {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.15g", lo + k * step);
      axis.values.emplace_back(buf);
    }
  } else {
    std::stringstream ss(rhs);
    for (std::string v; std::getline(ss, v, ',');) {
      if (trim(v).empty()) throw InputError(where + " " + spec + ": empty value in the list" + usage);
      axis.values.push_back(trim(v));
    }
  }
  return axis;
}

SweepResult run_sweep(const SweepOptions& o) {
  namespace fs = std::filesystem;
  const Scenario base = Scenario::load(o.scenario_path, o.sets);
  std::vector<SweepAxis> axes;
  for (const auto& spec : base.sweep_vary) axes.push_back(parse_axis(spec, base.source + ": sweep.vary"));
  axes.insert(axes.end(), o.axes.begin(), o.axes.end());
  if (axes.empty()) {
    throw InputError(o.scenario_path + ": nothing to sweep: give --vary KEY=V1,V2,... or sweep.vary in the scenario");
  }
  for (std::size_t a = 0; a < axes.size(); ++a) {
    for (std::size_t b = 0; b < a; ++b) {
      if (axes[a].key == axes[b].key) throw InputError("--vary " + axes[a].key + ": the key is varied twice");
    }
  }
  std::size_t total = 1;
  for (const auto& ax : axes) {
    total *= ax.values.size();
    if (total > 10000) throw InputError("--vary: the grid has more than 10000 points");
  }
  const bool crn = o.common_random_numbers && base.sweep_crn;

  // Resolve and validate every point before simulating anything.
  std::vector<Point> points(total);
  std::vector<Scenario> scenarios;
  scenarios.reserve(total);
  for (std::size_t i = 0; i < total; ++i) {
    Point& p = points[i];
    std::size_t rest = i;
    p.values.resize(axes.size());
    for (std::size_t a = axes.size(); a-- > 0;) {
      p.values[a] = axes[a].values[rest % axes[a].values.size()];
      rest /= axes[a].values.size();
    }
    for (std::size_t a = 0; a < axes.size(); ++a) p.varies.push_back(axes[a].key + "=" + p.values[a]);
    scenarios.push_back(Scenario::load(o.scenario_path, o.sets, p.varies));
    json key = scenarios.back().to_json();
    key.erase("source");
    key.erase("labels");  // names shown to people do not change the results
    const std::string reps = o.precision.active() ? o.precision.to_identity() : std::to_string(o.replicates);
    const std::string identity = key.dump() + "|seed=" + std::to_string(o.seed) + "|reps=" + reps +
                                 "|crn=" + (crn ? "1" : "0") + "|version=" + TRIALSIM_VERSION;
    p.hash = hex(fnv1a(identity));
    // Without common random numbers each point draws from streams named by its own inputs.
    p.seed = crn ? o.seed : fnv1a(p.hash + std::to_string(o.seed));
  }

  // Shards: see below.
  const std::uint64_t shards = o.shard_count;
  const std::uint64_t parts = shards > total ? (shards + total - 1) / total : 1;
  if (shards > 0 && parts > 1 && o.precision.active()) {
    throw InputError("--shard " + std::to_string(o.shard_index) + "/" + std::to_string(shards) + ": with --mcse-target or "
                     "--mcse-bias each grid point runs whole in one shard, so use at most " + std::to_string(total) +
                     " shards (the number of grid points)");
  }
  const fs::path dir(o.out_dir);
  std::error_code ec;
  fs::create_directories(dir / "points", ec);
  if (ec) throw InputError(o.out_dir + ": cannot create output directory: " + ec.message());

  SweepResult result;
  result.points = total;
  // Shards (--shard I/K, for job arrays): the work is a list of units in grid order, whole
  // points when there are at least as many points as shards, else each point split into
  // `parts` replicate ranges (shard_range); shard I takes a contiguous share of the list. A
  // whole point is written to points/ as in one process; a part's reduction-tree nodes go to
  // parts/, and the same sweep without --shard assembles them into the point, bit for bit.
  const std::uint64_t units = total * parts;
  const std::uint64_t unit_first = shards > 0 ? units * o.shard_index / shards : 0;
  const std::uint64_t unit_end = shards > 0 ? units * (o.shard_index + 1) / shards : units;
  auto part_file = [&](const Point& p, std::uint64_t j, std::uint64_t of) {
    return dir / "parts" / (p.hash + ".part" + std::to_string(j) + "of" + std::to_string(of) + ".json");
  };
  auto finished = [&](const fs::path& file, const Point& p) {
    if (!fs::exists(file)) return false;
    std::ifstream in(file);
    const json done = json::parse(in, nullptr, false);
    return !done.is_discarded() && done.is_object() && done.contains("hash") && done["hash"].is_string() &&
           done["hash"].get_ref<const std::string&>() == p.hash;
  };
  auto write_point = [&](std::size_t i, const SummaryAccumulator& summary, const PrecisionReport* precision) {
    const Point& p = points[i];
    json axes_json = json::object();
    for (std::size_t a = 0; a < axes.size(); ++a) axes_json[axes[a].key] = p.values[a];
    AtomicFile out((dir / "points" / (p.hash + ".json")).string());
    json point{{"hash", p.hash}, {"axes", axes_json}, {"seed", p.seed}, {"summary", summary.to_json(p.seed)}};
    if (precision) point["precision"] = precision->to_json(o.precision);
    out.write(point.dump(1) + "\n");
    out.commit();
  };
  // The point from a complete set of `of` parts.
  auto assemble_parts = [&](std::size_t i, std::uint64_t of) -> std::optional<SummaryAccumulator> {
    const Point& p = points[i];
    ReductionTree tree(scenarios[i]);
    for (std::uint64_t j = 0; j < of; ++j) {
      const fs::path file = part_file(p, j, of);
      std::ifstream in(file);
      const json part = json::parse(in);
      for (const json& n : part.at("nodes")) {
        SummaryAccumulator node(scenarios[i]);
        node.set_state(doubles_from_hex(n.at("state").get<std::string>()));
        const int level = n.at("level").get<int>();
        if (n.at("first").get<std::uint64_t>() != tree.end() || !tree.accepts(level)) {
          throw InputError(file.string() + ": does not continue the point's earlier parts (damaged?); delete " +
                           (dir / "parts").string() + " and rerun");
        }
        tree.append(level, node);
      }
    }
    if (tree.end() != o.replicates) return std::nullopt;
    return tree.result();
  };

  // A point split over shards: its summary from the parts' nodes, once all are there.
  auto assemble = [&](std::size_t i) -> std::optional<SummaryAccumulator> {
    const Point& p = points[i];
    std::error_code list_ec;
    // Part sets by their count (shards of earlier runs may have used another K).
    std::vector<std::uint64_t> counts;
    for (const auto& entry : fs::directory_iterator(dir / "parts", list_ec)) {
      const std::string name = entry.path().filename().string();
      const std::string lead = p.hash + ".part";
      if (name.rfind(lead, 0) != 0) continue;
      const auto of_at = name.find("of", lead.size());
      if (of_at == std::string::npos) continue;
      const std::uint64_t of = std::strtoull(name.c_str() + of_at + 2, nullptr, 10);
      if (of > 0 && std::find(counts.begin(), counts.end(), of) == counts.end()) counts.push_back(of);
    }
    std::sort(counts.begin(), counts.end());
    std::string missing;
    for (const std::uint64_t of : counts) {
      std::string absent;
      for (std::uint64_t j = 0; j < of; ++j) {
        if (!finished(part_file(p, j, of), p)) absent += (absent.empty() ? "" : ", ") + std::to_string(j + 1);
      }
      if (absent.empty()) return assemble_parts(i, of);
      missing += (missing.empty() ? "" : "; ") + std::string("parts ") + absent + " of " + std::to_string(of);
    }
    if (!missing.empty() && o.log) {
      o.log("[" + std::to_string(i + 1) + "/" + std::to_string(total) + "] " + point_label(axes, p) +
            ": some shards' parts are missing (" + missing + "); computing the point whole");
    }
    return std::nullopt;
  };
  if (parts > 1) fs::create_directories(dir / "parts", ec);
  // The units still to compute (neither the point nor, with parts, this part is finished), by
  // their points: for the notice of a long sweep and each point line's estimate of what is left.
  std::vector<std::size_t> todo;
  if (o.log || o.progress) {
    for (std::uint64_t unit = unit_first; unit < unit_end; ++unit) {
      const std::size_t i = static_cast<std::size_t>(unit / parts);
      const bool done = finished(dir / "points" / (points[i].hash + ".json"), points[i]) ||
                        (parts > 1 && finished(part_file(points[i], unit % parts, parts), points[i]));
      if (!done) todo.push_back(i);
    }
  }
  // A sweep that will be long says so before it starts: the cost of a trial at up to three of
  // the points still to compute (the first, middle and last; costs vary along an axis such as
  // the sample size), times the trials of every such point.
  if (o.log && !todo.empty() && !distributed()) {
    std::vector<std::size_t> probe{todo.front(), todo[todo.size() / 2], todo.back()};
    probe.erase(std::unique(probe.begin(), probe.end()), probe.end());
    double per_trial = 0;
    for (const std::size_t i : probe) per_trial += probe_trial_seconds(scenarios[i], points[i].seed, 0.05, 4096);
    per_trial /= static_cast<double>(probe.size());
    const std::uint64_t per_unit = o.precision.active() ? o.precision.max_replicates : o.replicates / parts;
    const std::string line =
        long_run_notice(per_trial, per_unit * todo.size(), effective_threads(o.threads),
                        o.precision.active() ? "this sweep, at the --max-reps cap," : "this sweep", 300.0,
                        "Ctrl-C stops it and keeps every point finished, which the same command resumes from");
    if (!line.empty()) o.log(line);
  }
  const std::size_t to_compute = todo.size();
  double computed_seconds = 0;
  for (std::uint64_t unit = unit_first; unit < unit_end; ++unit) {
    const std::size_t i = static_cast<std::size_t>(unit / parts);
    const std::uint64_t part = unit % parts;
    const Point& p = points[i];
    const fs::path file = dir / "points" / (p.hash + ".json");
    std::string prefix = "[" + std::to_string(i + 1) + "/" + std::to_string(total) + "] " + point_label(axes, p) +
                         (parts > 1 ? " part " + std::to_string(part + 1) + "/" + std::to_string(parts) : "") + ": ";
    // Whether the unit is done, or can be assembled from parts, is decided by the process that
    // writes the files and told to the others of a distributed run (their view of the output
    // directory may differ), so that all take the same steps.
    std::vector<double> decision{0.0};
    if (outputs_enabled()) {
      if (finished(file, p) || (parts > 1 && finished(part_file(p, part, parts), p))) {
        decision[0] = 1;
      } else if (shards == 0 && fs::exists(dir / "parts")) {
        if (const auto summary = assemble(i)) {
          write_point(i, *summary, nullptr);
          decision[0] = 2;
        }
      }
    }
    broadcast_from_first(decision);
    if (decision[0] != 0) {
      ++result.reused;
      if (o.log) o.log(prefix + (decision[0] == 1 ? "already done" : "assembled from the parts written by shards"));
      continue;
    }
    EngineOptions e;
    e.replicates = o.replicates;
    e.seed = p.seed;
    e.threads = o.threads;
    e.cancel = o.cancel;
    if (o.progress) {
      std::string item;
      for (const auto& v : p.varies) item += (item.empty() ? "" : " ") + v;
      if (parts > 1) item += " (part " + std::to_string(part + 1) + " of " + std::to_string(parts) + ")";
      const int before = static_cast<int>(result.computed);
      const int left = static_cast<int>(to_compute) - before - 1;
      e.on_progress = [&, item, before, left](std::uint64_t trials_done, std::uint64_t trials_total) {
        o.progress({item, trials_done, trials_total, before, left, left, computed_seconds, ""});
      };
    }
    const auto start = std::chrono::steady_clock::now();
    SummaryAccumulator summary(scenarios[i]);
    PrecisionReport precision;
    try {
      if (parts > 1) {
        const auto [first, end] = shard_range(o.replicates, part, parts);
        json nodes = json::array();
        for (const WorkUnit& u : units_of(first, end)) {
          nodes.push_back({{"level", u.level}, {"first", u.first}, {"end", u.end},
                           {"state", doubles_to_hex(simulate_unit(scenarios[i], e, u).state())}});
        }
        AtomicFile out(part_file(p, part, parts).string());
        out.write(json{{"hash", p.hash}, {"part", part}, {"of", parts}, {"first", first}, {"end", end}, {"nodes", nodes}}.dump() + "\n");
        out.commit();
      } else {
        summary = o.precision.active() ? run_to_precision(scenarios[i], e, o.precision, precision)
                                       : run_replicates(scenarios[i], e);
      }
    } catch (const Interrupted&) {
      throw Interrupted{"interrupted: " + std::to_string(result.computed + result.reused) + " of " +
                        std::to_string(unit_end - unit_first) + (parts > 1 ? " parts" : " grid points") +
                        " are done and kept in " + dir.string() + "; rerun the same command to resume"};
    }
    if (parts == 1) write_point(i, summary, o.precision.active() ? &precision : nullptr);
    ++result.computed;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char t[32];
    std::snprintf(t, sizeof t, "%.1f s", secs);
    std::string note = std::string("computed in ") + t;
    if (o.precision.active()) {
      note += ", " + std::to_string(precision.replicates) + " trials" + (precision.met ? "" : " (WARNING: precision target NOT met)");
    }
    // The whole job: how many are left to compute, and their time at the mean so far.
    computed_seconds += secs;
    if (to_compute > result.computed) {
      const std::size_t left = to_compute - result.computed;
      const double eta = computed_seconds / static_cast<double>(result.computed) * static_cast<double>(left);
      const std::string more = about_duration(eta);
      note += "; " + std::to_string(left) + " of " + std::to_string(to_compute) + " to compute left, " + more + " more";
    } else if (to_compute > 0) {
      note += "; that was the last to compute";
    }
    if (o.log) o.log(prefix + note);
  }
  if (shards > 0) return result;  // the same sweep without --shard writes the tables

  // In a distributed run only the first process wrote the points and writes the tables.
  if (!outputs_enabled()) return result;
  // Collect every point, in grid order, into the tidy CSV and the JSON.
  AtomicFile csv((dir / "sweep.csv").string(), "sweep CSV");
  std::string header;
  for (const auto& ax : axes) header += csv_cell(ax.key) + ",";
  csv.write(header + "method,metric,estimate,mcse\n");
  json all = json::array();
  for (const Point& p : points) {
    std::ifstream in(dir / "points" / (p.hash + ".json"));
    const json done = json::parse(in);
    std::string lead;
    for (const auto& v : p.values) lead += axis_cell(v) + ",";
    csv.write(tidy_lines(done["summary"], lead));
    all.push_back(done);
  }
  json axis_list = json::array();
  for (const auto& ax : axes) axis_list.push_back({{"key", ax.key}, {"values", ax.values}});
  AtomicFile js((dir / "sweep.json").string(), "sweep JSON");
  js.write(json{{"trialsim_version", TRIALSIM_VERSION},
                {"scenario", o.scenario_path},
                {"labels", scenarios.front().labels.to_json()},
                {"axes", axis_list},
                {"seed", o.seed},
                {"replicates", o.precision.active() ? json(nullptr) : json(o.replicates)},
                {"precision", o.precision.active() ? o.precision.to_json() : json(nullptr)},
                {"common_random_numbers", crn},
                {"points", all}}
               .dump(1) +
           "\n");
  csv.commit();
  js.commit();
  return result;
}

}  // namespace trialsim
