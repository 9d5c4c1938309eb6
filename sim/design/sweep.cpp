#include "sim/design/sweep.hpp"

#include "sim/io/writers.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
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
  add("design", "randomized", f["randomized"]["mean"], f["randomized"]["mcse"]);
  for (const char* arm : {"treatment", "control"}) {
    add("design", std::string("completed_") + arm, f["completed"][arm]["mean"], f["completed"][arm]["mcse"]);
  }
  if (const auto [burden, mcse] = consented_per_randomized(summary); burden) {
    add("design", "consented_per_randomized", *burden, mcse ? json(*mcse) : json(nullptr));
  }
  for (const char* arm : {"control", "treatment"}) {
    for (const char* c : {"observed_change", "drift", "slope_selection", "regression_to_mean", "attrition",
                          "regression_to_mean_total", "regression_to_mean_carried"}) {
      const json& v = summary["rtm"][arm][c];
      add("design", std::string("rtm_") + arm + "_" + c, v["mean"], v["mcse"]);
    }
  }
  for (auto it = summary["analyses"].begin(); it != summary["analyses"].end(); ++it) {
    for (const char* metric :
         {"power", "mean_estimate", "bias", "emp_se", "model_se", "relative_se_error_pct", "rmse", "coverage"}) {
      add(it.key(), metric, it.value()[metric]["estimate"], it.value()[metric]["mcse"]);
    }
    add(it.key(), "not_estimable", it.value()["not_estimable"]["total"], nullptr);
  }
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (const char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string num_cell(const json& v) {
  if (!v.is_number()) return "";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v.get<double>());
  return buf;
}

}  // namespace

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
    const std::string reps = o.precision.active() ? o.precision.to_identity() : std::to_string(o.replicates);
    const std::string identity = key.dump() + "|seed=" + std::to_string(o.seed) + "|reps=" + reps +
                                 "|crn=" + (crn ? "1" : "0") + "|version=" + TRIALSIM_VERSION;
    p.hash = hex(fnv1a(identity));
    // Without common random numbers each point draws from streams named by its own inputs.
    p.seed = crn ? o.seed : fnv1a(p.hash + std::to_string(o.seed));
  }

  const fs::path dir(o.out_dir);
  std::error_code ec;
  fs::create_directories(dir / "points", ec);
  if (ec) throw InputError(o.out_dir + ": cannot create output directory: " + ec.message());

  SweepResult result;
  result.points = total;
  for (std::size_t i = 0; i < total; ++i) {
    const Point& p = points[i];
    const fs::path file = dir / "points" / (p.hash + ".json");
    std::string prefix = "[" + std::to_string(i + 1) + "/" + std::to_string(total) + "] " + point_label(axes, p) + ": ";
    if (fs::exists(file)) {
      std::ifstream in(file);
      const json done = json::parse(in, nullptr, false);
      if (!done.is_discarded() && done.value("hash", "") == p.hash) {
        ++result.reused;
        if (o.log) o.log(prefix + "already done");
        continue;
      }
    }
    EngineOptions e;
    e.replicates = o.replicates;
    e.seed = p.seed;
    e.threads = o.threads;
    e.cancel = o.cancel;
    const auto start = std::chrono::steady_clock::now();
    SummaryAccumulator summary(scenarios[i]);
    PrecisionReport precision;
    try {
      summary = o.precision.active() ? run_to_precision(scenarios[i], e, o.precision, precision)
                                     : run_replicates(scenarios[i], e);
    } catch (const Interrupted&) {
      throw Interrupted{"interrupted: " + std::to_string(result.computed + result.reused) + " of " + std::to_string(total) +
                        " grid points are done and kept in " + (dir / "points").string() +
                        "; rerun the same command to resume"};
    }
    json axes_json = json::object();
    for (std::size_t a = 0; a < axes.size(); ++a) axes_json[axes[a].key] = p.values[a];
    AtomicFile out(file.string());
    json point{{"hash", p.hash}, {"axes", axes_json}, {"seed", p.seed}, {"summary", summary.to_json(p.seed)}};
    if (o.precision.active()) point["precision"] = precision.to_json(o.precision);
    out.write(point.dump(1) + "\n");
    out.commit();
    ++result.computed;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char t[32];
    std::snprintf(t, sizeof t, "%.1f s", secs);
    std::string note = std::string("computed in ") + t;
    if (o.precision.active()) {
      note += ", " + std::to_string(precision.replicates) + " trials" + (precision.met ? "" : " (WARNING: precision target NOT met)");
    }
    if (o.log) o.log(prefix + note);
  }

  // In a distributed run only the first process wrote the points and writes the tables.
  if (!outputs_enabled()) return result;
  // Collect every point, in grid order, into the tidy CSV and the JSON.
  AtomicFile csv((dir / "sweep.csv").string());
  std::string header;
  for (const auto& ax : axes) header += csv_cell(ax.key) + ",";
  csv.write(header + "method,metric,estimate,mcse\n");
  json all = json::array();
  for (const Point& p : points) {
    std::ifstream in(dir / "points" / (p.hash + ".json"));
    const json done = json::parse(in);
    std::vector<std::tuple<std::string, std::string, json, json>> rows;
    tidy_rows(done["summary"], rows);
    std::string lead;
    for (const auto& v : p.values) lead += csv_cell(v) + ",";
    for (const auto& [method, metric, est, mcse] : rows) {
      csv.write(lead + method + "," + metric + "," + num_cell(est) + "," + num_cell(mcse) + "\n");
    }
    all.push_back(done);
  }
  json axis_list = json::array();
  for (const auto& ax : axes) axis_list.push_back({{"key", ax.key}, {"values", ax.values}});
  AtomicFile js((dir / "sweep.json").string());
  js.write(json{{"trialsim_version", TRIALSIM_VERSION},
                {"scenario", o.scenario_path},
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
