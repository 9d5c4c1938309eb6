// GCC 12 at -O1 with -fsanitize=thread reports a "potential null pointer dereference" inside
// libstdc++'s std::vector<std::string> reallocation, inlined from CLI11's option-name splitting
// (CLI/StringTools.hpp); it is a false positive of that compiler (the pointer is a live string's
// buffer), and it appears or not with unrelated changes to this file. This file only builds the
// command line and calls the library, whose sources keep the warning.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "sim/present/cli.hpp"
#include "sim/present/build_info.hpp"

#include "sim/design/calibrate.hpp"
#include "sim/io/config_reader.hpp"
#include "sim/engine/engine.hpp"
#include "sim/present/plots.hpp"
#include "sim/present/report.hpp"
#include "sim/io/scenario.hpp"
#include "sim/engine/summary.hpp"
#include "sim/design/samplesize.hpp"
#include "sim/design/sweep.hpp"
#include "sim/design/validation.hpp"
#include "sim/io/writers.hpp"
#include "sim/io/shard.hpp"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <cstdlib>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

namespace trialsim {
namespace {

// SIGINT (Ctrl-C), SIGTERM (a scheduler's stop, mpirun passing on Ctrl-C) and SIGHUP (the
// terminal went away) all stop a command cleanly: no new work starts, temporary files are
// removed, finished sweep points are kept, and the exit code is 128 + the signal's number.
std::atomic<bool> g_interrupted{false};
std::atomic<int> g_signal{0};
extern "C" void on_signal(int sig) {
  int none = 0;
  g_signal.compare_exchange_strong(none, sig);
  g_interrupted.store(true);
}
void install_signal_handlers() {
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, on_signal);
}
int interrupted_exit_code() {
  const int sig = g_signal.load();
  return 128 + (sig != 0 ? sig : SIGINT);
}
const char* signal_name() {
  switch (g_signal.load()) {
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "Ctrl-C";
  }
}

struct RunArgs {
  std::string scenario;
  std::uint64_t reps = 10000;
  std::uint64_t seed = 20190401;
  int threads = 0;
  std::vector<std::string> sets;
  std::string json_path, trials_csv, patients_csv, patients_long, summary_csv;
  std::optional<std::uint64_t> replicate;
  bool reps_given = false;
  bool quiet = false;
  PrecisionTarget precision;
  std::string plots_dir, report_path;
  std::string shard;  // I/K: simulate only that share and write a shard file to --json
};

// The estimate distributions are drawn from the first trials (in replicate order, so the same
// at any thread count, and from shards as from one process); memory stays bounded.
constexpr std::uint64_t kSampledTrials = 20000;

// Figures are rendered by gnuplot; without it, or without a place to put them, fail before
// simulating rather than after. The plots directory is created here, so a report may go in it;
// returns the report's file (null when none is asked for). `out_dir`, when given, is created
// before the report is opened, since the report may go into it.
std::unique_ptr<AtomicFile> prepare_pictures(const std::string& plots_dir, const std::string& report_path,
                                             const std::string& out_dir = {}) {
  if (plots_dir.empty() && report_path.empty()) return nullptr;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  bool found = false;
  for (std::string dir; std::getline(dirs, dir, ':') && !found;) {
    found = !dir.empty() && ::access((dir + "/gnuplot").c_str(), X_OK) == 0;
  }
  if (!found) {
    throw InputError(std::string(plots_dir.empty() ? "--report" : "--plots") +
                     ": gnuplot not found; install Debian's gnuplot-nox (bash .ci/setup does)");
  }
  if (!plots_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(plots_dir, ec);
    if (ec) throw InputError("--plots: " + plots_dir + ": cannot create directory: " + ec.message());
  }
  if (report_path.empty()) return nullptr;
  if (!out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);  // if this fails, opening the report says so
  }
  return std::make_unique<AtomicFile>(report_path, "HTML report");
}

// Writes the figures and/or the report asked for.
void write_pictures(const std::vector<Figure>& figures, const std::string& plots_dir, const std::string& html,
                    std::unique_ptr<AtomicFile>& report) {
  if (!plots_dir.empty()) {
    write_figures(figures, plots_dir);
    // One provenance file for the directory's figures.
    if (provenance().is_object()) {
      nlohmann::json p = provenance();
      p["output"] = plots_dir;
      p["kind"] = "figures (SVG and PNG)";
      nlohmann::json names = nlohmann::json::array();
      for (const Figure& f : figures) names.push_back(f.name);
      p["figures"] = names;
      AtomicFile out((std::filesystem::path(plots_dir) / "provenance.json").string());
      out.write(p.dump(2) + "\n");
      out.commit();
    }
  }
  if (report) {
    report->write(html);
    report->commit();
  }
}

// Add --plots and --report to a subcommand.
void add_picture_options(CLI::App* app, std::string& plots_dir, std::string& report_path) {
  app->add_option("--plots", plots_dir, "Write the figures as SVG and PNG into this directory (needs gnuplot)");
  app->add_option("--report", report_path, "Write one self-contained HTML page with the tables and figures");
}

// Options shared by run, sweep and samplesize for precision on demand.
// Returns the --max-reps option, which is meaningless without a target.
CLI::Option* add_precision_options(CLI::App* app, PrecisionTarget& t, CLI::Option* reps) {
  auto* power = app->add_option("--mcse-target", t.power_mcse,
                                "Add trials in batches of 1024 until the MC SE of power is at most this (every analysis; in samplesize the one searched)")
                    ->check(CLI::Range(1e-5, 0.5));
  auto* bias = app->add_option("--mcse-bias", t.bias_mcse,
                               "Also (or only) until the MC SE of bias is at most this many mmHg")
                   ->check(CLI::Range(1e-6, 1e6));
  auto* cap = app->add_option("--max-reps", t.max_replicates,
                              "With --mcse-target/--mcse-bias: stop at this many trials even if the target is not met")
                  ->check(CLI::Range(std::uint64_t{64}, std::uint64_t{1000000000}))
                  ->capture_default_str();
  power->excludes(reps);
  bias->excludes(reps);
  cap->excludes(reps);
  return cap;
}

void check_cap(const CLI::Option* cap, const PrecisionTarget& t) {
  if (cap->count() > 0 && !t.active()) throw InputError("--max-reps: needs --mcse-target or --mcse-bias");
}

std::string precision_line(const PrecisionReport& r, const PrecisionTarget& t, const std::string& unit) {
  char line[320];
  std::string want;
  if (t.power_mcse > 0) {
    std::snprintf(line, sizeof line, "MC SE of power <= %g (reached %.4g)", t.power_mcse, r.worst_power_mcse);
    want += line;
  }
  if (t.bias_mcse > 0) {
    std::snprintf(line, sizeof line, "%sMC SE of bias <= %g %s (reached %.4g)", want.empty() ? "" : " and ", t.bias_mcse,
                  unit.c_str(), r.worst_bias_mcse);
    want += line;
  }
  std::snprintf(line, sizeof line, "%s %s after %llu trials in %llu batches%s", r.met ? "Precision reached:" : "WARNING: precision NOT reached:",
                want.c_str(), static_cast<unsigned long long>(r.replicates), static_cast<unsigned long long>(r.batches),
                r.met ? "" : " (--max-reps reached; raise it or relax the target)");
  return line;
}

class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), start_(std::chrono::steady_clock::now()) {}
  void update(std::uint64_t done, std::uint64_t total) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const double eta = frac > 0 ? secs * (1 - frac) / frac : 0.0;
    const int width = 30;
    const int filled = static_cast<int>(frac * width);
    std::fprintf(stderr, "\r[%.*s%*s] %3.0f%%  %llu/%llu trials  %.1fs elapsed  ETA %.1fs ", filled,
                 "##############################", width - filled, "", 100 * frac,
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), secs, eta);
    std::fflush(stderr);
  }
  void finish() {
    if (enabled_) std::fprintf(stderr, "\n");
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_{};
};

namespace {
std::string fixed3(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}
}  // namespace

std::string replicate_table(const Scenario& s, const ReplicateResult& r, std::uint64_t seed) {
  std::string o = "trialsim " + std::string(TRIALSIM_VERSION) + "  scenario " + s.source + "  replicate " +
                  std::to_string(r.replicate) + "  seed " + std::to_string(seed) + "\ntests " + s.hypothesis_text() +
                  (s.trial.sides == 1 ? "; CI: two-sided at 1 - 2 alpha, its lower end the one-sided bound" : "") + "\n";
  char line[256];
  const std::string prior = s.has_prior_exclusion() ? ", excluded prior Mg " + std::to_string(r.prior_mg) : "";
  std::snprintf(line, sizeof line,
                "consented %d%s, lost before baseline %d, excluded by entry cutoff %d, randomized %d\n",
                r.consented, prior.c_str(), r.lost_pre_baseline, r.entry_above_max + r.entry_below_min, r.randomized);
  o += line;
  for (const Arm arm : {Arm::treatment, Arm::control}) {
    const ArmResult& a = r.arms[arm_index(arm)];
    std::snprintf(line, sizeof line, "%-9s allocated %d, withdrawn %d, completed %d\n",
                  s.labels.arm(arm == Arm::treatment ? "treatment" : "control").c_str(), a.randomized, a.withdrawn[0],
                  a.completed);
    o += line;
  }
  for (const Method m : s.analysis.methods) {
    const Estimate& e = r.estimates[static_cast<std::size_t>(m)];
    if (e.estimable()) {
      std::snprintf(line, sizeof line, "%-17s estimate %8.3f  SE %7.3f  CI [%8.3f, %8.3f]  p %.4f  df %.1f\n",
                    std::string(method_name(m)).c_str(), e.estimate, e.se, e.ci_low, e.ci_high, e.p(s.trial.hypothesis()), e.df);
    } else {
      std::snprintf(line, sizeof line, "%-17s not estimable\n", std::string(method_name(m)).c_str());
    }
    o += line;
  }
  if (r.interim.enabled) {
    const InterimResult& in = r.interim;
    o += "group-sequential looks (estimates above are at the look that ended the trial):\n";
    for (std::size_t k = 0; k < in.looks; ++k) {
      if (!in.held[k]) {
        std::snprintf(line, sizeof line, "  look %zu not held (too few completers)\n", k + 1);
      } else {
        std::snprintf(line, sizeof line, "  look %zu at month %.1f, information %.3f, randomized %.0f, efficacy bound %s, futility bound %s\n",
                      k + 1, in.month[k], in.fraction[k], in.randomized[k],
                      std::isfinite(in.upper[k]) ? fixed3(in.upper[k]).c_str() : "none",
                      std::isfinite(in.lower[k]) ? fixed3(in.lower[k]).c_str() : "none");
      }
      o += line;
    }
    for (const Method m : s.analysis.methods) {
      const auto i = static_cast<std::size_t>(m);
      std::string zs;
      for (std::size_t k = 0; k < in.looks; ++k) {
        if (std::isfinite(in.z[i][k])) zs += (zs.empty() ? "" : ", ") + ("look " + std::to_string(k + 1) + " " + fixed3(in.z[i][k]));
      }
      const bool at_end = static_cast<std::size_t>(in.stop_look[i]) + 1 == in.looks;
      const char* why = in.reason[i] == InterimStop::efficacy ? (at_end ? "rejected at the final analysis," : "stopped for efficacy")
                        : in.reason[i] == InterimStop::futility ? "stopped for futility"
                                                                : "did not reject; ended";
      std::snprintf(line, sizeof line, "  %-17s %s at look %d; z: %s\n", std::string(method_name(m)).c_str(), why,
                    in.stop_look[i] + 1, zs.empty() ? "none" : zs.c_str());
      o += line;
    }
  }
  return o;
}

// The scenario file and every file it extends, as inputs (label, path) of check_distinct_files:
// an output naming one of them would overwrite a scenario.
// A scenario that cannot be read is left to the command's own loading, after its argument
// checks, so that its errors come in the order they did before this check.
std::vector<std::pair<std::string, std::string>> scenario_inputs(const std::string& scenario) {
  std::vector<std::pair<std::string, std::string>> in{{"the scenario file", scenario}};
  if (scenario.empty()) return in;
  std::vector<std::string> bases;
  try {
    bases = extended_files(scenario);
  } catch (const InputError&) {
    return in;
  }
  std::string from = scenario;
  for (const std::string& base : bases) {
    in.emplace_back("the file " + from + " extends", base);
    from = base;
  }
  return in;
}

// Two outputs (or an output and an input) naming one file would overwrite each other. Inputs
// first (label, path), then outputs (flag, path); empty paths are skipped.
void check_distinct_files(const std::vector<std::pair<std::string, std::string>>& files) {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, fs::path>> seen;
  for (const auto& [label, path] : files) {
    if (path.empty()) continue;
    const fs::path canon = file_identity(path, label.rfind("--", 0) != 0);  // inputs are named, outputs are flags
    for (const auto& [other, other_path] : seen) {
      if (canon == other_path) throw InputError(label + ": " + path + " is the same file as " + other);
    }
    seen.emplace_back(label, canon);
  }
}

// The same, with the scenario and every file it extends as the first inputs.
void check_distinct_files(const std::string& scenario, const std::vector<std::pair<std::string, std::string>>& others) {
  std::vector<std::pair<std::string, std::string>> files = scenario_inputs(scenario);
  files.insert(files.end(), others.begin(), others.end());
  check_distinct_files(files);
}

void check_distinct_paths(const RunArgs& a) {
  check_distinct_files(a.scenario, {{"--json", a.json_path},
                                    {"--trials-csv", a.trials_csv},
                                    {"--patients-csv", a.patients_csv},
                                    {"--patients-long", a.patients_long},
                                    {"--summary-csv", a.summary_csv},
                                    {"--report", a.report_path}});
}

struct CalibrateArgs {
  CalibrateOptions o;
  std::vector<std::string> free_specs;
  std::string write_path, json_path, plots_dir, report_path;
  bool quiet = false;
};

int calibrate_command(CalibrateArgs& a) {
  check_distinct_files(a.o.scenario_path, {{"the observed file", a.o.observed_path},
                                           {"--write", a.write_path},
                                           {"--json", a.json_path},
                                           {"--report", a.report_path}});
  for (const std::string& spec : a.free_specs) a.o.free.push_back(parse_free(spec));
  if (!a.write_path.empty()) {
    for (const std::string& set : a.o.sets) {
      const auto eq = set.find('=');
      if (eq == std::string::npos) continue;  // the scenario's reader reports it
      std::string value = set.substr(eq + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      value.erase(value.find_last_not_of(" \t") + 1);
      if (value == "none") {
        throw InputError("--write: --set " + set +
                         " removes a key, which a scenario that extends the original cannot do; remove it from " +
                         a.o.scenario_path + " instead (or leave out --write)");
      }
    }
  }
  std::unique_ptr<AtomicFile> write_file, json_file;
  if (!a.write_path.empty()) write_file = std::make_unique<AtomicFile>(a.write_path, "calibrated scenario");
  if (!a.json_path.empty()) json_file = std::make_unique<AtomicFile>(a.json_path, "calibration JSON");
  std::unique_ptr<AtomicFile> report = prepare_pictures(a.plots_dir, a.report_path);
  a.o.cancel = &g_interrupted;
  install_signal_handlers();
  // Progress: evaluations of the objective, each of --reps trials, against the most a step may
  // take (two steps, then 2 per free key for the standard errors).
  const auto start = std::chrono::steady_clock::now();
  int done = 0;
  auto last = start - std::chrono::seconds(1);
  const int most = 2 * (a.o.max_evaluations + 1) + 1 + 2 * static_cast<int>(a.o.free.size());
  const bool show_progress = !a.quiet && ::isatty(STDERR_FILENO) != 0;
  if (show_progress) {
    a.o.on_evaluation = [&](int, int, double q) {
      ++done;
      const auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::milliseconds(200)) return;
      last = now;
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "\rcalibrate: evaluation %d (at most %d), objective %.5g, %.1fs elapsed, ETA at most %.0fs   ",
                   done, most, q, secs, secs / done * std::max(0, most - done));
      std::fflush(stderr);
    };
  }
  std::optional<CalibrationResult> result;
  try {
    result.emplace(calibrate(a.o));
  } catch (...) {
    if (show_progress && done > 0) std::fprintf(stderr, "\n");  // errors start on their own line
    throw;
  }
  if (show_progress) std::fprintf(stderr, "\n");
  // An interrupt that came after the last trial still means: write nothing.
  if (g_interrupted.load()) throw Interrupted{};
  const CalibrationResult& r = *result;
  const nlohmann::json j = r.to_json(a.o);
  if (outputs_enabled() && (!a.plots_dir.empty() || report)) {
    const std::vector<Figure> figures = r.accounts.empty() ? std::vector<Figure>{} : calibrate_figures(j);
    if (figures.empty() && !a.quiet) {
      std::fprintf(stderr,
                   "calibrate: no figure: calibration_change needs an arm's baseline_mean and final_mean in %s\n",
                   a.o.observed_path.c_str());
    }
    write_pictures(figures, a.plots_dir, report ? calibrate_report_html(j, figures) : std::string(), report);
  }
  if (write_file) {
    write_file->write(r.scenario_toml(a.o, a.write_path));
    write_file->commit();
  }
  if (json_file) {
    json_file->write(j.dump(2) + "\n");
    json_file->commit();
  }
  if (!a.quiet && !stdout_is_output()) std::cout << r.to_table(a.o);
  return 0;
}

// What run writes once the summary is complete (shared with merge, which must write the same).
void write_run_outputs(const RunArgs& a, const SummaryAccumulator& summary, EstimateSamples& samples,
                       const PrecisionReport* precision, std::unique_ptr<AtomicFile>& json_file,
                       std::unique_ptr<AtomicFile>& summary_file, std::unique_ptr<AtomicFile>& report,
                       const std::function<void()>& commit_trials) {
  nlohmann::json j = summary.to_json(a.seed);
  if (precision) j["precision"] = precision->to_json(a.precision);
  if (summary_file) summary_file->write(summary_csv(j));
  if (outputs_enabled() && (!a.plots_dir.empty() || report)) {
    samples.total_trials = summary.replicates();
    const std::vector<Figure> figures = run_figures(j, samples);
    write_pictures(figures, a.plots_dir, report ? run_report_html(j, figures) : std::string(), report);
  }
  commit_trials();
  if (summary_file) summary_file->commit();
  if (json_file) {
    json_file->write(j.dump(2) + "\n");
    json_file->commit();
  }
  if (!a.quiet && !stdout_is_output()) std::cout << summary.to_table(a.seed);
  if (precision && (!a.quiet || !precision->met)) std::cerr << precision_line(*precision, a.precision, summary.scenario().labels.unit) << "\n";
}

// The most trials --patients-long writes in one run (about 10^7 rows at the seed trial's size).
constexpr std::uint64_t kMaxLongTrials = 100000;

int run_command(const RunArgs& a) {
  if (!a.patients_csv.empty() && !a.replicate) {
    throw InputError("--patients-csv: needs --replicate R (the trial whose patients to write)");
  }
  if (!a.patients_long.empty()) {
    if (!a.shard.empty()) throw InputError("--patients-long: not with --shard; write it from one process");
    if (a.precision.active()) throw InputError("--patients-long: needs a fixed --reps (the trials whose patients to write)");
    if (!a.replicate && a.reps > kMaxLongTrials) {
      throw InputError("--patients-long: writes every trial's patients; at most " + std::to_string(kMaxLongTrials) +
                       " trials, got --reps " + std::to_string(a.reps) + " (lower --reps, or pick one with --replicate)");
    }
  }
  check_distinct_paths(a);
  if (a.replicate && (!a.plots_dir.empty() || !a.report_path.empty())) {
    throw InputError(std::string(a.plots_dir.empty() ? "--report" : "--plots") +
                     ": summarizes many trials; not with --replicate");
  }
  if (!a.shard.empty()) {
    (void)parse_shard(a.shard);
    if (distributed()) throw InputError("--shard: not under mpirun (ranks share the run by themselves); run each shard as its own process");
    if (a.json_path.empty()) throw InputError("--shard: needs --json FILE, where the shard is written (merge reads it)");
    if (a.replicate) throw InputError("--shard: not with --replicate (a shard is part of a whole run)");
    if (!a.plots_dir.empty() || !a.report_path.empty()) {
      throw InputError(std::string(a.plots_dir.empty() ? "--report" : "--plots") +
                       ": not with --shard; merge writes them from the shards (trialsim merge SHARD... --report FILE)");
    }
    if (!a.summary_csv.empty()) {
      throw InputError("--summary-csv: not with --shard; merge writes it from the shards (trialsim merge SHARD... --summary-csv FILE)");
    }
    if (a.precision.active()) {
      throw InputError("--shard: not with --mcse-target or --mcse-bias: the stopping rule needs the whole run (use MPI, "
                       "or give --reps)");
    }
  }
  if (a.replicate && a.precision.active()) {
    throw InputError("--replicate: replays one trial; --mcse-target and --mcse-bias do not apply");
  }
  if (a.replicate && a.reps_given && *a.replicate >= a.reps) {
    // With --replicate, --reps is not needed; given, it must contain the replayed trial.
    throw InputError("--replicate: " + std::to_string(*a.replicate) + " is not below --reps " + std::to_string(a.reps));
  }
  const Scenario scenario = Scenario::load(a.scenario, a.sets);
  // From here on an interrupt stops the run cleanly: temporary files are removed.
  install_signal_handlers();

  // Create every output before simulating, so an unwritable path fails fast.
  std::unique_ptr<AtomicFile> json_file;
  // A shard's files are intermediate, for merge, whose outputs carry the provenance (and
  // sidecars named *.json would be caught by `merge shards/*.json`): none for them.
  if (!a.shard.empty()) set_provenance(nlohmann::json());
  if (!a.json_path.empty()) {
    json_file = std::make_unique<AtomicFile>(a.json_path, a.replicate ? "one trial's summary JSON" : "summary JSON");
  }
  std::unique_ptr<AtomicFile> summary_file;
  if (!a.summary_csv.empty()) summary_file = std::make_unique<AtomicFile>(a.summary_csv, "summary CSV");
  std::unique_ptr<TrialsCsv> trials;
  if (!a.trials_csv.empty()) trials = std::make_unique<TrialsCsv>(scenario, a.trials_csv);

  std::unique_ptr<AtomicFile> patients;
  if (!a.patients_csv.empty()) patients = std::make_unique<AtomicFile>(a.patients_csv, "patients CSV");
  std::unique_ptr<AtomicFile> patients_long;
  if (!a.patients_long.empty()) {
    patients_long = std::make_unique<AtomicFile>(a.patients_long, "patients CSV, long");
    patients_long->write(PatientsLong::header(scenario));
  }
  std::unique_ptr<AtomicFile> report = prepare_pictures(a.plots_dir, a.report_path);

  if (a.replicate) {
    const TrialSimulator sim(scenario, patients != nullptr || patients_long != nullptr);
    Workspace ws;
    const ReplicateResult r = sim.run(a.seed, *a.replicate, ws);
    if (patients) write_patients_csv(scenario, ws.trial, *patients);
    if (patients_long) patients_long->write(PatientsLong::rows(scenario, *a.replicate, ws.trial));
    if (trials) trials->add(r);
    if (json_file || summary_file) {
      SummaryAccumulator one(scenario);
      one.add(r);
      nlohmann::json j = one.to_json(a.seed);
      j["replicate"] = *a.replicate;
      if (json_file) json_file->write(j.dump(2) + "\n");
      if (summary_file) summary_file->write(summary_csv(j));
    }
    if (g_interrupted.load()) throw Interrupted{};
    // Everything is written; only now do the files appear.
    if (patients) patients->commit();
    if (patients_long) patients_long->commit();
    if (trials) trials->commit();
    if (json_file) json_file->commit();
    if (summary_file) summary_file->commit();
    if (!a.quiet && !stdout_is_output()) std::cout << replicate_table(scenario, r, a.seed);
    return 0;
  }

  // A run that will be long says so before it starts, from the cost of its first trials.
  if (!a.quiet && !distributed()) {
    std::uint64_t planned = a.precision.active() ? a.precision.max_replicates : a.reps;
    std::string what = a.precision.active() ? "this run, at the --max-reps cap," : "this run";
    if (!a.shard.empty()) {
      const auto [index, count] = parse_shard(a.shard);
      const auto [first, end] = shard_range(a.reps, index, count);
      planned = end - first;
      what = "this shard";
    }
    const std::string line = long_run_notice(probe_trial_seconds(scenario, a.seed, 0.05, 4096), planned,
                                             effective_threads(a.threads), what);
    if (!line.empty()) std::cerr << line << "\n";
  }
  Progress progress(!a.quiet && ::isatty(STDERR_FILENO) != 0);
  EngineOptions opt;
  opt.replicates = a.reps;
  opt.seed = a.seed;
  opt.threads = a.threads;
  opt.cancel = &g_interrupted;
  opt.on_progress = [&](std::uint64_t done, std::uint64_t total) { progress.update(done, total); };
  const bool pictures = !a.plots_dir.empty() || report || !a.shard.empty();  // a shard keeps samples for merge's figures
  EstimateSamples samples;
  samples.true_effect = scenario.true_effect();
  for (const Method m : scenario.analysis.methods) samples.by_method.emplace_back(std::string(method_name(m)), std::vector<double>{});
  if (trials || pictures) {
    opt.on_trial = [&](const ReplicateResult& r) {
      if (trials) trials->add(r);
      if (!pictures || r.replicate >= kSampledTrials) return;
      for (std::size_t k = 0; k < scenario.analysis.methods.size(); ++k) {
        const Estimate& e = r.estimates[static_cast<std::size_t>(scenario.analysis.methods[k])];
        if (e.estimable()) samples.by_method[k].second.push_back(e.estimate);
      }
    };
    if (!trials) opt.on_trial_below = kSampledTrials;
  }
  if (!a.shard.empty()) {
    const auto [index, count] = parse_shard(a.shard);
    RunShard shard;
    shard.version = TRIALSIM_VERSION;
    shard.source = a.scenario;
    shard.scenario_path = std::filesystem::absolute(a.scenario).lexically_normal().string();
    shard.sets = a.sets;
    shard.resolved = scenario.to_json();
    shard.resolved.erase("source");
    shard.seed = a.seed;
    shard.replicates = a.reps;
    shard.index = index;
    shard.count = count;
    std::tie(shard.first, shard.end) = shard_range(a.reps, index, count);
    for (const WorkUnit& u : units_of(shard.first, shard.end)) {
      shard.nodes.push_back({u, simulate_unit(scenario, opt, u).state()});
      progress.update(u.end - shard.first, shard.end - shard.first);
    }
    progress.finish();
    shard.samples_below = kSampledTrials;
    shard.samples = samples.by_method;
    if (trials) shard.trials_csv = std::filesystem::absolute(a.trials_csv).lexically_normal().string();
    if (g_interrupted.load()) throw Interrupted{};
    json_file->write(shard.to_json().dump() + "\n");
    if (trials) trials->commit();
    json_file->commit();
    if (!a.quiet && !stdout_is_output()) {
      std::printf("shard %llu/%llu: replicates %llu to %llu (%llu trials) written to %s\n",
                  static_cast<unsigned long long>(index), static_cast<unsigned long long>(count),
                  static_cast<unsigned long long>(shard.first), static_cast<unsigned long long>(shard.end),
                  static_cast<unsigned long long>(shard.end - shard.first), a.json_path.c_str());
    }
    return 0;
  }
  PrecisionReport precision;
  const SummaryAccumulator summary =
      a.precision.active() ? run_to_precision(scenario, opt, a.precision, precision) : run_replicates(scenario, opt);
  progress.finish();
  if (g_interrupted.load()) throw Interrupted{};
  if (patients_long) {
    // Every trial replayed in order (the same trials the run summarized: each is a function of
    // the seed and its replicate number alone), one at a time so the file is in replicate order.
    const TrialSimulator sim(scenario, true);  // with the covariates no model reads (sex), as --patients-csv
    Workspace ws;
    for (std::uint64_t r = 0; r < a.reps && !g_interrupted.load(); ++r) {
      (void)sim.run(a.seed, r, ws);
      patients_long->write(PatientsLong::rows(scenario, r, ws.trial));
    }
    if (g_interrupted.load()) throw Interrupted{};
  }
  write_run_outputs(a, summary, samples, a.precision.active() ? &precision : nullptr, json_file, summary_file, report, [&] {
    if (trials) trials->commit();
    if (patients_long) patients_long->commit();
  });
  return 0;
}

struct MergeArgs {
  std::vector<std::string> shards;
  std::string json_path, trials_csv, summary_csv, plots_dir, report_path;
  bool quiet = false;
};

// Folds the shards of one run into the outputs the single process would have written.
int merge_command(const MergeArgs& a) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const std::string& f : a.shards) files.emplace_back("shard " + f, f);
  for (const auto& [flag, path] : {std::pair<std::string, std::string>{"--json", a.json_path},
                                   {"--trials-csv", a.trials_csv},
                                   {"--summary-csv", a.summary_csv},
                                   {"--report", a.report_path}}) {
    files.emplace_back(flag, path);
  }
  check_distinct_files(files);
  std::vector<RunShard> read;
  for (const std::string& f : a.shards) read.push_back(RunShard::read(f));
  const std::vector<RunShard> shards = check_shards(std::move(read));
  // The shards' trial rows are inputs too: no output may overwrite them.
  std::vector<std::pair<std::string, std::string>> inputs_and_outputs{{"the scenario file", shards.front().scenario_path}};
  for (const RunShard& sh : shards) {
    inputs_and_outputs.emplace_back("shard " + sh.file, sh.file);
    if (sh.trials_csv) inputs_and_outputs.emplace_back("the trial rows of " + sh.file, *sh.trials_csv);
  }
  inputs_and_outputs.insert(inputs_and_outputs.end(), files.end() - 4, files.end());
  check_distinct_files(inputs_and_outputs);
  const RunShard& ref = shards.front();
  if (ref.version != TRIALSIM_VERSION) {
    throw InputError("merge: the shards were written by trialsim " + ref.version + ", this is " + TRIALSIM_VERSION +
                     "; merge with the version that ran them");
  }
  Scenario scenario = Scenario::load(ref.scenario_path, ref.sets);
  {
    nlohmann::json now = scenario.to_json();
    now.erase("source");
    if (now != ref.resolved) {
      throw InputError("merge: " + ref.scenario_path + " (or a file it extends) has changed since the shards were run");
    }
  }
  scenario.source = ref.source;
  add_provenance("scenario", ref.scenario_path);
  add_provenance("seed", ref.seed);
  add_provenance("replicates", ref.replicates);
  add_provenance("set", ref.sets);
  std::unique_ptr<AtomicFile> json_file;
  if (!a.json_path.empty()) json_file = std::make_unique<AtomicFile>(a.json_path, "summary JSON");
  std::unique_ptr<AtomicFile> trials;
  if (!a.trials_csv.empty()) {
    for (const RunShard& s : shards) {
      if (!s.trials_csv) {
        throw InputError("--trials-csv: " + s.file + " was run without --trials-csv, so it holds no trial rows");
      }
    }
    trials = std::make_unique<AtomicFile>(a.trials_csv, "trials CSV");
  }
  std::unique_ptr<AtomicFile> summary_file;
  if (!a.summary_csv.empty()) summary_file = std::make_unique<AtomicFile>(a.summary_csv, "summary CSV");
  std::unique_ptr<AtomicFile> report = prepare_pictures(a.plots_dir, a.report_path);
  install_signal_handlers();

  ReductionTree tree(scenario);
  for (const RunShard& s : shards) {
    for (const ShardNode& n : s.nodes) {
      SummaryAccumulator node(scenario);
      node.set_state(n.state);
      if (node.replicates() != n.unit.end - n.unit.first || !tree.accepts(n.unit.level)) {
        throw InputError("merge: " + s.file + ": a node does not fit the run (damaged file?)");
      }
      tree.append(n.unit.level, node);
    }
  }
  const SummaryAccumulator summary = tree.result();
  EstimateSamples samples;
  samples.true_effect = scenario.true_effect();
  for (const Method m : scenario.analysis.methods) samples.by_method.emplace_back(std::string(method_name(m)), std::vector<double>{});
  for (const RunShard& s : shards) {
    for (const auto& [method, values] : s.samples) {
      for (auto& [name, all] : samples.by_method) {
        if (name == method) all.insert(all.end(), values.begin(), values.end());
      }
    }
  }
  if (trials) {
    const std::string header = TrialsCsv::header(scenario);
    trials->write(header);
    for (const RunShard& s : shards) {
      std::ifstream in(*s.trials_csv, std::ios::binary);
      if (!in) throw InputError("--trials-csv: " + *s.trials_csv + " (the trial rows of " + s.file + "): cannot be read");
      std::string line;
      std::getline(in, line);
      if (line + "\n" != header) {
        throw InputError("--trials-csv: " + *s.trials_csv + " (the trial rows of " + s.file + "): not this run's trials CSV");
      }
      std::uint64_t rows = 0;
      std::string chunk;
      while (std::getline(in, line)) {
        // Each row starts with its replicate number: the rows must be exactly the shard's.
        const std::string expect = std::to_string(s.first + rows) + ",";
        if (line.compare(0, expect.size(), expect) != 0) {
          throw InputError("--trials-csv: " + *s.trials_csv + ": row " + std::to_string(rows + 1) +
                           " is not replicate " + std::to_string(s.first + rows) + " (changed or truncated?)");
        }
        chunk += line;
        chunk += '\n';
        ++rows;
        if (chunk.size() > (1u << 20)) {
          trials->write(chunk);
          chunk.clear();
        }
      }
      trials->write(chunk);
      // The last row must end its line (a cut-off copy would pass the count).
      in.clear();
      in.seekg(-1, std::ios::end);
      if (rows > 0 && in.get() != '\n') {
        throw InputError("--trials-csv: " + *s.trials_csv + ": the last row is cut off (no final newline)");
      }
      if (rows != s.end - s.first) {
        throw InputError("--trials-csv: " + *s.trials_csv + " has " + std::to_string(rows) + " trial rows, shard " +
                         s.file + " covers " + std::to_string(s.end - s.first));
      }
    }
  }
  if (g_interrupted.load()) throw Interrupted{};
  RunArgs as_run;
  as_run.seed = ref.seed;
  as_run.quiet = a.quiet;
  as_run.plots_dir = a.plots_dir;
  write_run_outputs(as_run, summary, samples, nullptr, json_file, summary_file, report, [&] { if (trials) trials->commit(); });
  return 0;
}

struct ValidateArgs {
  std::uint64_t reps = 4000;
  std::uint64_t seed = 20190401;
  int threads = 0;
  std::string json_path;
};

int validate_command(const ValidateArgs& a) {
  std::unique_ptr<AtomicFile> json_file;
  if (!a.json_path.empty()) json_file = std::make_unique<AtomicFile>(a.json_path, "validation JSON");
  // The case table goes to stdout, or to stderr when the JSON does (--json -).
  std::FILE* table = stdout_is_output() ? stderr : stdout;
  std::fprintf(table, "trialsim %s validation: %llu simulated trials per scenario, seed %llu\n", TRIALSIM_VERSION,
              static_cast<unsigned long long>(a.reps), static_cast<unsigned long long>(a.seed));
  std::fprintf(table, "A case passes when |z| <= 4, z = (simulated - reference) / MC SE; sign cases pass when z < -4.\n\n");
  std::fprintf(table, "%-58s %-26s %10s %10s %8s %8s  %s\n", "case", "reference from", "reference", "simulated", "MC SE", "z",
              "result");
  install_signal_handlers();
  ValidationOptions o;
  o.cancel = &g_interrupted;
  o.replicates = a.reps;
  o.seed = a.seed;
  o.threads = a.threads;
  o.on_case = [table](const ValidationCase& c) {
    std::fprintf(table, "%-58s %-26s %10.4f %10.4f %8.4f %8.2f  %s\n", c.name.c_str(), c.source.c_str(), c.reference, c.simulated,
                c.mcse, c.z, c.pass ? "pass" : "FAIL");
    std::fflush(table);
  };
  const auto cases = run_validation(o);
  int failed = 0;
  nlohmann::json j = nlohmann::json::array();
  for (const auto& c : cases) {
    failed += c.pass ? 0 : 1;
    j.push_back({{"case", c.name}, {"source", c.source}, {"reference", c.reference}, {"simulated", c.simulated},
                 {"mcse", c.mcse}, {"z", std::isfinite(c.z) ? nlohmann::json(c.z) : nlohmann::json(nullptr)},
                 {"rule", c.sign_rule ? "z < -4" : "|z| <= 4"}, {"pass", c.pass}});
  }
  std::fprintf(table, "\n%zu passed, %d failed\n", cases.size() - static_cast<std::size_t>(failed), failed);
  if (json_file) {
    json_file->write(nlohmann::json{{"replicates", a.reps}, {"seed", a.seed}, {"cases", j}}.dump(2) + "\n");
    json_file->commit();
  }
  return failed == 0 ? 0 : 1;
}

struct SweepArgs {
  std::string scenario;
  std::vector<std::string> varies, sets;
  std::uint64_t reps = 10000;
  std::uint64_t seed = 20190401;
  int threads = 0;
  std::string out;
  bool no_crn = false;
  bool quiet = false;
  PrecisionTarget precision;
  std::string plots_dir, report_path;
  std::string shard;
};

// A job's live line on a terminal (sweep, samplesize): the item running and its trials, then
// the time left for the whole job, from the seconds per item so far and the items still to
// run (with the most it could take where the job only knows a bound). Other lines on stderr go
// through line(), which clears it first.
class JobLine {
 public:
  explicit JobLine(bool enabled) : enabled_(enabled) {}
  void update(const JobProgress& p) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (p.item != item_) {
      item_ = p.item;
      item_start_ = now;
    }
    if (p.trials_done < p.trials_total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double in_item = std::chrono::duration<double>(now - item_start_).count();
    const double frac = p.trials_total ? static_cast<double>(p.trials_done) / static_cast<double>(p.trials_total) : 1.0;
    const double item_total = frac > 0 ? in_item / frac : 0.0;
    const double per_item = (p.seconds_done + item_total) / (p.items_done + 1);
    const double rest = item_total - in_item;
    std::string left = std::to_string(p.items_left) + " more";
    if (p.items_left_max != p.items_left) left = "~" + left + (p.items_left_max >= 0 ? ", at most " + std::to_string(p.items_left_max) : "");
    std::string eta = about_duration(rest + per_item * p.items_left);
    if (p.items_left_max > p.items_left) eta += " (at most " + about_duration(rest + per_item * p.items_left_max) + ")";
    const int width = 20, filled = static_cast<int>(frac * width);
    std::fprintf(stderr, "\r\033[K[%.*s%*s] %s: %llu/%llu trials; %d done%s%s, %s; ETA %s ", filled, "####################",
                 width - filled, "", p.item.c_str(), static_cast<unsigned long long>(p.trials_done),
                 static_cast<unsigned long long>(p.trials_total), p.items_done, p.stage.empty() ? "" : ", ", p.stage.c_str(),
                 left.c_str(), eta.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void line(const std::string& text) {
    clear();
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  void clear() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::string item_;
  std::chrono::steady_clock::time_point item_start_{}, last_{};
};

// Runs a job with its live line, which is cleared however the job ends.
template <class F>
auto with_job_line(JobLine& bar, F&& job) {
  try {
    auto r = job();
    bar.clear();
    return r;
  } catch (...) {
    bar.clear();
    throw;
  }
}

int sweep_command(const SweepArgs& a) {
  // The tables the sweep writes into --out, and the report, must not be the scenario.
  const auto in_out = [&](const char* name) { return a.out.empty() ? std::string() : (std::filesystem::path(a.out) / name).string(); };
  check_distinct_files(a.scenario, {{"--report", a.report_path},
                                    {"--out (its sweep.csv)", in_out("sweep.csv")},
                                    {"--out (its sweep.json)", in_out("sweep.json")}});
  SweepOptions o;
  o.scenario_path = a.scenario;
  o.sets = a.sets;
  for (const auto& v : a.varies) o.axes.push_back(parse_axis(v, "--vary"));
  o.replicates = a.reps;
  o.seed = a.seed;
  o.threads = a.threads;
  o.common_random_numbers = !a.no_crn;
  o.precision = a.precision;
  o.out_dir = a.out;
  o.cancel = &g_interrupted;
  if (!a.shard.empty()) {
    std::tie(o.shard_index, o.shard_count) = parse_shard(a.shard);
    if (distributed()) throw InputError("--shard: not under mpirun (ranks share the sweep by themselves); run each shard as its own process");
    if (!a.plots_dir.empty() || !a.report_path.empty()) {
      throw InputError(std::string(a.plots_dir.empty() ? "--report" : "--plots") +
                       ": not with --shard; the same sweep without --shard writes them once every shard is done");
    }
  }
  JobLine bar(!a.quiet && ::isatty(STDERR_FILENO) != 0);
  if (!a.quiet) {
    o.log = [&bar](const std::string& line) { bar.line(line); };
    o.progress = [&bar](const JobProgress& p) { bar.update(p); };
  }
  // The sweep would create its output directory anyway.
  std::unique_ptr<AtomicFile> report = prepare_pictures(a.plots_dir, a.report_path, a.out);
  install_signal_handlers();
  const SweepResult r = with_job_line(bar, [&] { return run_sweep(o); });
  if (!a.shard.empty()) {
    if (!a.quiet && !stdout_is_output()) {
      std::printf("sweep shard %s: %zu computed, %zu already done in %s; when every shard is done, the same sweep "
                  "without --shard writes sweep.csv and sweep.json\n",
                  a.shard.c_str(), r.computed, r.reused, a.out.c_str());
    }
    return 0;
  }
  if (outputs_enabled() && (!a.plots_dir.empty() || report)) {
    std::ifstream in(std::filesystem::path(a.out) / "sweep.json");
    const nlohmann::json sweep = nlohmann::json::parse(in);
    const std::vector<Figure> figures = sweep_figures(sweep);
    write_pictures(figures, a.plots_dir, report ? sweep_report_html(sweep, figures) : std::string(), report);
  }
  if (!a.quiet && !stdout_is_output()) {
    std::printf("%zu grid points (%zu computed, %zu already done); results in %s/sweep.csv and %s/sweep.json\n", r.points,
                r.computed, r.reused, a.out.c_str(), a.out.c_str());
  }
  return 0;
}

struct SampleSizeArgs {
  SampleSizeOptions o;
  std::string json_path;
  bool quiet = false;
  std::string plots_dir, report_path;
};

int samplesize_command(SampleSizeArgs& a) {
  check_distinct_files(a.o.scenario_path, {{"--json", a.json_path}, {"--report", a.report_path}});
  std::unique_ptr<AtomicFile> json_file;
  if (!a.json_path.empty()) json_file = std::make_unique<AtomicFile>(a.json_path, "sample-size JSON");
  std::unique_ptr<AtomicFile> report = prepare_pictures(a.plots_dir, a.report_path);
  a.o.cancel = &g_interrupted;
  JobLine bar(!a.quiet && ::isatty(STDERR_FILENO) != 0);
  if (!a.quiet) {
    a.o.log = [&bar](const std::string& line) { bar.line(line); };
    a.o.progress = [&bar](const JobProgress& p) { bar.update(p); };
  }
  install_signal_handlers();
  const SampleSizeResult r = with_job_line(bar, [&] { return find_sample_size(a.o); });
  const nlohmann::json j = r.to_json(a.o);
  if (outputs_enabled() && (!a.plots_dir.empty() || report)) {
    const std::vector<Figure> figures = samplesize_figures(j);
    write_pictures(figures, a.plots_dir, report ? samplesize_report_html(j, figures) : std::string(), report);
  }
  if (json_file) {
    json_file->write(j.dump(2) + "\n");
    json_file->commit();
  }
  if (!a.quiet && !stdout_is_output()) std::cout << r.to_table(a.o);
  return 0;
}

}  // namespace

namespace {
// The fields every output's provenance sidecar shares (sim/io/writers.hpp), from the command line
// as given; each command adds what it ran with.
nlohmann::json provenance_base(int argc, char** argv, const std::string& command) {
  nlohmann::json args = nlohmann::json::array();
  for (int k = 0; k < argc; ++k) args.push_back(argv[k]);
  std::error_code ec;
  const std::string cwd = std::filesystem::current_path(ec).string();
  const std::time_t now = std::time(nullptr);
  char when[32];
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return {{"trialsim_version", TRIALSIM_VERSION},
          {"commit", build_commit()},
          {"build_type", build_type()},
          {"command", command},
          {"command_line", args},
          {"working_directory", ec ? nlohmann::json(nullptr) : nlohmann::json(cwd)},
          {"started_utc", when}};
}

void add_run_provenance(const std::string& scenario, std::uint64_t seed, nlohmann::json replicates, int threads,
                        const std::vector<std::string>& sets, const std::vector<std::string>& varies) {
  add_provenance("scenario", scenario);
  add_provenance("seed", seed);
  add_provenance("replicates", std::move(replicates));
  add_provenance("threads", effective_threads(threads));
  add_provenance("set", sets);
  add_provenance("vary", varies);
}

nlohmann::json replicates_of(std::uint64_t reps, const PrecisionTarget& precision) {
  return precision.active() ? nlohmann::json{{"precision", precision.to_json()}} : nlohmann::json(reps);
}
}  // namespace

int cli_main(int argc, char** argv) {
  CLI::App app{"trialsim: Monte Carlo simulation of randomized trial designs (MgO and skin perfusion pressure)"};
  app.set_version_flag("--version", std::string("trialsim ") + TRIALSIM_VERSION + " (commit " + build_commit() + ", " +
                                        build_type() + " build)");
  app.require_subcommand(1);
  RunArgs a;
  CLI::App* run = app.add_subcommand("run", "Simulate a scenario many times and summarize its operating characteristics");
  run->add_option("scenario", a.scenario, "Scenario file (TOML), e.g. configs/seed_trial.toml")->required();
  CLI::Option* reps = run->add_option("--reps", a.reps, "Number of simulated trials")
                          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000000000}))
                          ->capture_default_str();
  run->add_option("--seed", a.seed, "Random seed; the same seed gives identical output at any thread count")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  run->add_option("--threads", a.threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
  run->add_option("--set", a.sets, "Override a scenario key, e.g. --set treatment.effect_mmHg=5 (repeatable)")->take_all()->allow_extra_args(false);
  run->add_option("--json", a.json_path, "Write the summary (or, with --replicate, that trial) as JSON");
  run->add_option("--trials-csv", a.trials_csv, "Write one row per simulated trial");
  run->add_option("--summary-csv", a.summary_csv, "Write the summary as a tidy table (method,metric,estimate,mcse; as sweep.csv)");
  run->add_option("--replicate", a.replicate, "Replay this one trial (0-based) instead of the whole run")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--patients-csv", a.patients_csv, "With --replicate: write that trial's patient-level table");
  run->add_option("--patients-long", a.patients_long,
                  "Write the randomized patients of every trial (or of --replicate R) in long format, a row per patient and visit");
  run->add_flag("--quiet", a.quiet, "No summary table on stdout and no progress bar");
  CLI::Option* run_cap = add_precision_options(run, a.precision, reps);
  add_picture_options(run, a.plots_dir, a.report_path);
  run->add_option("--shard", a.shard,
                  "Simulate only share I of K (0-based, e.g. 0/4) and write a shard file to --json; "
                  "trialsim merge combines the K files into the single run's outputs");

  MergeArgs mg;
  CLI::App* merge = app.add_subcommand(
      "merge", "Combine the shard files of one run (run --shard I/K) into exactly the outputs of the whole run");
  merge->add_option("shards", mg.shards, "Shard files (any order), all K of one run")->required();
  merge->add_option("--json", mg.json_path, "Write the summary as JSON (as run --json)");
  merge->add_option("--trials-csv", mg.trials_csv, "Write one row per trial (the shards must have been run with --trials-csv)");
  merge->add_option("--summary-csv", mg.summary_csv, "Write the summary as a tidy table (as run --summary-csv)");
  merge->add_flag("--quiet", mg.quiet, "No summary table on stdout");
  add_picture_options(merge, mg.plots_dir, mg.report_path);

  ValidateArgs v;
  CLI::App* validate = app.add_subcommand(
      "validate", "Run the built-in validation suite (closed forms and theory); exit 0 only if every case passes");
  validate->add_option("--reps", v.reps, "Simulated trials per scenario; more makes every case stricter")
      ->check(CLI::Range(std::uint64_t{1000}, std::uint64_t{100000000}))
      ->capture_default_str();
  validate->add_option("--seed", v.seed, "Random seed")->check(CLI::NonNegativeNumber)->capture_default_str();
  validate->add_option("--threads", v.threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
  validate->add_option("--json", v.json_path, "Write the cases and results as JSON");

  SweepArgs w;
  CLI::App* sweep = app.add_subcommand("sweep", "Simulate a scenario over a grid of parameter values (resumable)");
  sweep->add_option("scenario", w.scenario, "Scenario file (TOML); its sweep.vary axes are included")->required();
  sweep->add_option("--vary", w.varies, "An axis: KEY=V1,V2,... or KEY=LO:HI:STEP (repeatable; the grid is the product)")
      ->take_all()
      ->allow_extra_args(false);
  sweep->add_option("--set", w.sets, "Override a scenario key at every grid point (repeatable)")->take_all()->allow_extra_args(false);
  sweep->add_option("--out", w.out, "Output directory: sweep.csv, sweep.json and points/ (one file per finished point)")
      ->required();
  CLI::Option* sweep_reps = sweep->add_option("--reps", w.reps, "Simulated trials per grid point")
                               ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000000000}))
                               ->capture_default_str();
  CLI::Option* sweep_cap = add_precision_options(sweep, w.precision, sweep_reps);
  add_picture_options(sweep, w.plots_dir, w.report_path);
  sweep->add_option("--seed", w.seed, "Random seed")->check(CLI::NonNegativeNumber)->capture_default_str();
  sweep->add_option("--threads", w.threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
  sweep->add_flag("--no-crn", w.no_crn,
                  "Independent random numbers per grid point (default: common random numbers, the same simulated "
                  "patients at every point)");
  sweep->add_flag("--quiet", w.quiet, "No progress lines");
  sweep->add_option("--shard", w.shard,
                    "Compute only share I of K of the grid (0-based, e.g. 0/4; points, or parts of points when K "
                    "exceeds them); then the same sweep without --shard writes the tables");

  SampleSizeArgs ss;
  CLI::App* samplesize = app.add_subcommand(
      "samplesize", "Find the smallest number of patients (or other integer key) giving an analysis a target power");
  samplesize->add_option("scenario", ss.o.scenario_path, "Scenario file (TOML)")->required();
  samplesize->add_option("--method", ss.o.method, "Analysis whose power is targeted, e.g. ancova")->required();
  samplesize->add_option("--target-power", ss.o.target_power, "Power to reach")
      ->check(CLI::Range(0.01, 0.999))
      ->capture_default_str();
  samplesize->add_option("--key", ss.o.key, "Integer scenario key searched over")->capture_default_str();
  samplesize->add_option("--step", ss.o.step, "Search on multiples of this (e.g. 2 or 4 to keep blocks whole)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  samplesize->add_option("--lo", ss.o.lo, "Smallest value searched (default: --step)")->check(CLI::Range(1, 100000000));
  samplesize->add_option("--hi", ss.o.hi, "Largest value searched (default: 100000)")->check(CLI::Range(1, 100000000));
  CLI::Option* ss_reps = samplesize->add_option("--reps", ss.o.replicates, "Simulated trials at each value evaluated")
                             ->check(CLI::Range(std::uint64_t{100}, std::uint64_t{1000000000}))
                             ->capture_default_str();
  CLI::Option* ss_cap = add_precision_options(samplesize, ss.o.precision, ss_reps);
  add_picture_options(samplesize, ss.plots_dir, ss.report_path);
  samplesize->add_option("--seed", ss.o.seed, "Random seed")->check(CLI::NonNegativeNumber)->capture_default_str();
  samplesize->add_option("--threads", ss.o.threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
  samplesize->add_option("--set", ss.o.sets, "Override a scenario key (repeatable)")->take_all()->allow_extra_args(false);
  samplesize->add_option("--json", ss.json_path, "Write the evaluated points, the fit and the result as JSON");
  samplesize->add_flag("--quiet", ss.quiet, "No progress lines and no table");

  CalibrateArgs cal;
  CLI::App* calibrate_app = app.add_subcommand(
      "calibrate", "Estimate scenario keys so that the simulated trial reproduces an observed trial's statistics");
  calibrate_app->add_option("scenario", cal.o.scenario_path, "Scenario file (TOML)")->required();
  calibrate_app->add_option("--observed", cal.o.observed_path, "Observed statistics (TOML), e.g. configs/seed_observed.toml")
      ->required();
  calibrate_app->add_option("--free", cal.free_specs, "A key to estimate within a range: KEY=LO:HI (repeatable)")
      ->required()
      ->take_all()
      ->allow_extra_args(false);
  calibrate_app->add_option("--set", cal.o.sets, "Override a scenario key (repeatable; kept in --write)")
      ->take_all()
      ->allow_extra_args(false);
  calibrate_app->add_option("--reps", cal.o.replicates, "Simulated trials per evaluation of the objective")
      ->check(CLI::Range(std::uint64_t{100}, std::uint64_t{10000000}))
      ->capture_default_str();
  calibrate_app->add_option("--max-evals", cal.o.max_evaluations, "Most evaluations per Nelder-Mead step (two steps)")
      ->check(CLI::Range(10, 100000))
      ->capture_default_str();
  calibrate_app->add_option("--seed", cal.o.seed, "Random seed (the same trials at every evaluation)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  calibrate_app->add_option("--threads", cal.o.threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
  calibrate_app->add_option("--write", cal.write_path, "Write the calibrated scenario (TOML, extending the original)");
  calibrate_app->add_option("--json", cal.json_path, "Write the estimates, intervals and fit table as JSON");
  calibrate_app->add_flag("--quiet", cal.quiet, "No progress line and no tables");
  add_picture_options(calibrate_app, cal.plots_dir, cal.report_path);

  // Checks that run before an option's own: a whole number that fits (CLI11 would clamp
  // 2^64 and call "abc" out of range), a finite number (NaN passes range checks), a non-empty
  // file name (an empty one would silently write nothing).
  const CLI::Validator whole(
      [](std::string& text) -> std::string {
        std::uint64_t x = 0;
        const auto r = std::from_chars(text.data(), text.data() + text.size(), x);
        if (r.ec == std::errc::result_out_of_range && r.ptr == text.data() + text.size()) {
          return "'" + text + "' is too large (at most 18446744073709551615)";
        }
        if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size()) {
          return "'" + text + "' is not a whole number (digits 0-9 only)";
        }
        return {};
      },
      "");
  const CLI::Validator finite(
      [](std::string& text) -> std::string {
        double x = 0;
        const auto r = std::from_chars(text.data(), text.data() + text.size(), x);
        if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() || !std::isfinite(x)) {
          return "'" + text + "' is not a finite number";
        }
        return {};
      },
      "");
  const CLI::Validator non_empty([](std::string& text) -> std::string { return text.empty() ? "must not be empty" : ""; }, "");
  for (CLI::App* sub : app.get_subcommands({})) {
    for (CLI::Option* opt : sub->get_options()) {
      const std::string name = opt->get_name();
      static const std::set<std::string> wholes{"--reps", "--seed", "--replicate", "--max-reps", "--max-evals",
                                                "--lo",   "--hi",   "--step",      "--threads"};
      static const std::set<std::string> finites{"--mcse-target", "--mcse-bias", "--target-power"};
      static const std::set<std::string> paths{"--json",  "--trials-csv", "--patients-csv", "--summary-csv", "--plots", "--report",
                                               "--out",   "--write",      "--observed",     "scenario", "shards"};
      if (wholes.count(name)) opt->transform(whole);
      if (finites.count(name)) opt->transform(finite);
      if (paths.count(name)) opt->transform(non_empty);
    }
  }
  // An unknown command or option gets the nearest known one (CLI11 says only that an argument
  // was not expected).
  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
  if (argc > 1 && argv[1][0] != '-' && std::find(commands.begin(), commands.end(), argv[1]) == commands.end()) {
    const std::string hint = nearest(argv[1], commands);
    std::string list;
    for (const auto& c : commands) list += (list.empty() ? "" : ", ") + c;
    std::cerr << "trialsim: unknown command '" << argv[1] << "'" << (hint.empty() ? "" : "; did you mean " + hint + "?")
              << " (commands: " << list << "; see trialsim --help)\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const char* sub = run->parsed()          ? "run "
                      : validate->parsed()   ? "validate "
                      : sweep->parsed()      ? "sweep "
                      : samplesize->parsed() ? "samplesize "
                      : calibrate_app->parsed() ? "calibrate "
                      : merge->parsed()      ? "merge "
                                             : "";
    const CLI::App* parsed = nullptr;
    for (const CLI::App* x : app.get_subcommands({})) {
      if (x->parsed()) parsed = x;
    }
    // Whatever CLI11 noticed first (a missing --out, say), an option the command does not have
    // is the mistake to report.
    if (parsed != nullptr) {
      std::vector<std::string> options;
      for (const CLI::Option* opt : parsed->get_options()) {
        for (const auto& l : opt->get_lnames()) options.push_back("--" + l);
      }
      for (int k = 2; k < argc; ++k) {
        const std::string arg = argv[k];
        if (arg == "--") break;
        if (arg.size() < 2 || arg[0] != '-' || (arg[1] != '-' && arg.size() != 2)) continue;
        const std::string name = arg.substr(0, arg.find('='));
        if (const CLI::Option* known = parsed->get_option_no_throw(name)) {
          // Its value is the next argument (which may start with '-', e.g. --seed -1).
          if (known->get_type_size_max() > 0 && name.size() == arg.size()) ++k;
          continue;
        }
        const std::string hint = nearest(name, options);
        std::string elsewhere;
        for (const CLI::App* x : app.get_subcommands({})) {
          if (x != parsed && x->get_option_no_throw(name) != nullptr) elsewhere += (elsewhere.empty() ? "" : ", ") + x->get_name();
        }
        std::cerr << "trialsim: " << sub << "has no option " << name
                  << (hint.empty() ? "" : "; did you mean " + hint + "?")
                  << (elsewhere.empty() ? "" : "; " + name + " belongs to " + elsewhere) << " (see trialsim " << sub
                  << "--help)\n";
        return 2;
      }
    }
    std::cerr << "trialsim: " << e.what() << " (see trialsim " << sub << "--help)\n";
    return 2;
  }
  try {
    std::string command = "run";
    for (const CLI::App* x : app.get_subcommands({})) {
      if (x->parsed()) command = x->get_name();
    }
    set_provenance(provenance_base(argc, argv, command));
    if (validate->parsed()) {
      add_run_provenance("(built-in validation cases)", v.seed, v.reps, v.threads, {}, {});
      return validate_command(v);
    }
    if (calibrate_app->parsed()) {
      add_run_provenance(cal.o.scenario_path, cal.o.seed, nlohmann::json{{"per_evaluation", cal.o.replicates}}, cal.o.threads,
                         cal.o.sets, {});
      add_provenance("observed", cal.o.observed_path);
      add_provenance("free", cal.free_specs);
      return calibrate_command(cal);
    }
    if (merge->parsed()) {
      add_provenance("shards", mg.shards);
      return merge_command(mg);
    }
    if (sweep->parsed()) {
      check_cap(sweep_cap, w.precision);
      add_run_provenance(w.scenario, w.seed, replicates_of(w.reps, w.precision), w.threads, w.sets, w.varies);
      add_provenance("common_random_numbers", !w.no_crn);
      return sweep_command(w);
    }
    if (samplesize->parsed()) {
      check_cap(ss_cap, ss.o.precision);
      add_run_provenance(ss.o.scenario_path, ss.o.seed, replicates_of(ss.o.replicates, ss.o.precision), ss.o.threads,
                         ss.o.sets, {});
      add_provenance("method", ss.o.method);
      add_provenance("key", ss.o.key);
      return samplesize_command(ss);
    }
    check_cap(run_cap, a.precision);
    a.reps_given = reps->count() > 0;
    add_run_provenance(a.scenario, a.seed, replicates_of(a.reps, a.precision), a.threads, a.sets, {});
    if (a.replicate) add_provenance("replicate", *a.replicate);
    if (!a.shard.empty()) add_provenance("shard", a.shard);
    return run_command(a);
  } catch (const InputError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const OutputError& e) {
    std::cerr << "trialsim: " << e.what() << "\n";
    return 3;
  } catch (const PeerFailed& e) {
    // Another rank failed: rank 0 reports its line once; the others say nothing more.
    if (!e.message.empty()) std::cerr << e.message << "\n";
    return e.exit_code;
  } catch (const Interrupted& e) {
    std::cerr << "\ntrialsim: " << signal_name() << ": "
              << (e.message.empty() ? "interrupted; no output files were written" : e.message) << "\n";
    return interrupted_exit_code();
  } catch (const std::exception& e) {
    std::cerr << "trialsim: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace trialsim
