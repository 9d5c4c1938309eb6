// Trials per second of a scenario at one thread and at every core, and whether the summary is
// byte-identical between the two (the engine promises the same output at any thread count).
//
// Usage: bench_throughput [scenario.toml]   (default configs/seed_trial.toml, run from the repo root)
#include "sim/engine/engine.hpp"
#include "sim/io/scenario.hpp"
#include "sim/engine/summary.hpp"

#include <tbb/info.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <string>
#include <vector>

namespace trialsim {
namespace {

constexpr std::uint64_t kSeed = 20190401;
constexpr int kRepeats = 3;
// A single-thread measurement this long swamps pipeline start-up and timer noise while keeping
// the whole program near 20 s on two cores.
constexpr double kTargetSeconds = 2.0;
// Calibration runs until it has timed at least this long, so the per-trial estimate is stable.
constexpr double kPilotSeconds = 0.2;

struct Case {
  const char* label;
  std::vector<std::string> overrides;
};

// CPU time of all threads of the process.
double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timing {
  double wall = 0;
  double cpu = 0;
};

// One run_replicates call; the summary's JSON is produced outside the timed region.
Timing timed_run(const Scenario& s, std::uint64_t replicates, int threads, std::string* json) {
  EngineOptions opt;
  opt.replicates = replicates;
  opt.seed = kSeed;
  opt.threads = threads;
  const double cpu_start = cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  const SummaryAccumulator summary = run_replicates(s, opt);
  Timing t;
  t.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  t.cpu = cpu_seconds() - cpu_start;
  if (json) *json = summary.to_json(kSeed).dump();
  return t;
}

// Whole blocks only, so the last block does not leave a worker idle at the end.
std::uint64_t replicates_for(const Scenario& s) {
  std::uint64_t reps = kBlockSize;
  double seconds = timed_run(s, reps, 1, nullptr).wall;
  while (seconds < kPilotSeconds && reps < (std::uint64_t{1} << 30)) {
    reps *= 4;
    seconds = timed_run(s, reps, 1, nullptr).wall;
  }
  const double per_trial = seconds / static_cast<double>(reps);
  const auto wanted = static_cast<std::uint64_t>(kTargetSeconds / per_trial);
  return std::max<std::uint64_t>(1, (wanted + kBlockSize - 1) / kBlockSize) * kBlockSize;
}

struct Measurement {
  Timing best{std::numeric_limits<double>::infinity(), 0};
  std::vector<std::string> summaries;  // one per repeat
};

Measurement measure(const Scenario& s, std::uint64_t replicates, int threads) {
  Measurement m;
  for (int k = 0; k < kRepeats; ++k) {
    std::string json;
    const Timing t = timed_run(s, replicates, threads, &json);
    if (t.wall < m.best.wall) m.best = t;
    m.summaries.push_back(std::move(json));
  }
  return m;
}

int run(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "configs/seed_trial.toml";
  const int cores = tbb::info::default_concurrency();
  const std::vector<Case> cases = {{"seed", {}}, {"consented=1000", {"trial.consented=1000"}}};

  std::printf("trialsim %s throughput  scenario %s  seed %llu  cores %d  best of %d\n\n", TRIALSIM_VERSION,
              path.c_str(), static_cast<unsigned long long>(kSeed), cores, kRepeats);
  std::printf("%-15s %9s %7s %10s %8s %10s %11s %8s %10s %10s\n", "case", "consented", "threads", "replicates",
              "wall s", "trials/s", "ns/patient", "speed-up", "efficiency", "cores used");

  bool all_identical = true;
  std::vector<std::string> verdicts;
  for (const Case& c : cases) {
    const Scenario scenario = Scenario::load(path, c.overrides);
    const std::uint64_t reps = replicates_for(scenario);
    const auto patients = static_cast<double>(reps) * static_cast<double>(scenario.trial.consented);

    std::vector<int> thread_counts{1};
    if (cores > 1) thread_counts.push_back(cores);
    double single_seconds = 0;
    std::string reference;
    bool identical = true;
    for (const int threads : thread_counts) {
      const Measurement m = measure(scenario, reps, threads);
      if (threads == 1) {
        single_seconds = m.best.wall;
        reference = m.summaries.front();
      }
      // Every repeat is compared, not just one, so a rare ordering bug has three chances to show.
      for (const std::string& json : m.summaries) identical = identical && json == reference;
      const double wall = m.best.wall;
      const double speedup = single_seconds / wall;
      std::printf("%-15s %9d %7d %10llu %8.3f %10.1f %11.1f %8.2f %9.1f%% %10.2f\n", c.label,
                  scenario.trial.consented, threads, static_cast<unsigned long long>(reps), wall,
                  static_cast<double>(reps) / wall, wall * 1e9 / patients, speedup, 100.0 * speedup / threads,
                  m.best.cpu / wall);
      std::fflush(stdout);
    }
    all_identical = all_identical && identical;
    verdicts.push_back(std::string(c.label) + ": " + (identical ? "yes" : "no"));
  }

  std::printf("\nJSON summary at 1 thread vs %d threads, byte for byte:", cores);
  for (const std::string& v : verdicts) std::printf("  %s", v.c_str());
  std::printf("\nidentical: %s\n", all_identical ? "yes" : "no");
  if (cores == 1) std::printf("(only one core: the thread-count comparison was not exercised)\n");
  // A speed-up well below the thread count with "cores used" near 1 means other processes held
  // the cores, not that the engine failed to scale.
  std::printf("cores used = process CPU time / wall time of the best repeat\n");
  return 0;
}

}  // namespace
}  // namespace trialsim

int main(int argc, char** argv) {
  try {
    return trialsim::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_throughput: %s\n", e.what());
    return 1;
  }
}
