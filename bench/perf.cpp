// CPU cost per trial of named scenarios, set against the random-number floor: what the
// scenario's random draws alone cost with the same engine.
//
// Usage (from the repository root):
//   bench_perf [--cases simple,seed4,seed7,mmrm16] [--json FILE] [--seconds S]
//
// One source, two programs:
//   bench_perf        linked with trialsim_core. It times everything. Each case runs in a child,
//                     `bench_perf --worker CASE --seconds S`, so that every case starts from a
//                     fresh process: its peak RSS is its own, and no TBB worker threads left by
//                     an earlier case's scaling runs share its process CPU time.
//   bench_perf_count  linked with trialsim_core_counting (sim/engine/draw_counter.hpp switched on).
//                     `bench_perf_count CASE N1 N2` prints the unit keys derived, the engine
//                     outputs and the draws by type (normal, exponential, uniform, integer) per
//                     trial. It is never timed.
// The parent times the floor (unit keys, and each type of draw, made as the engine makes them:
// for columns of units at once, and integers on a Stream) itself, from the normal library, and
// prints the tables.
#include "sim/engine/draw_counter.hpp"
#include "sim/engine/draws.hpp"
#include "sim/engine/engine.hpp"
#include "sim/engine/rng.hpp"
#include "sim/io/scenario.hpp"
#include "sim/engine/summary.hpp"

#include <nlohmann/json.hpp>
#include <tbb/info.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

// ---------------------------------------------------------------------------------------------
// Counting replacements of the C allocation functions (glibc): every heap allocation, whether from
// operator new (which libstdc++ builds on malloc and aligned_alloc), Eigen's dynamic matrices
// (std::malloc), oneTBB or C code, passes through one of these, which forward to glibc's own
// entry points. Counting is off except while `alloc_counting` is set, so the timed runs pay one
// relaxed load per allocation.
namespace {

std::atomic<bool> alloc_counting{false};
std::atomic<std::uint64_t> alloc_count{0};

void note_allocation() noexcept {
  if (alloc_counting.load(std::memory_order_relaxed)) alloc_count.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

extern "C" {
void* __libc_malloc(std::size_t size) noexcept;
void* __libc_calloc(std::size_t count, std::size_t size) noexcept;
void* __libc_realloc(void* p, std::size_t size) noexcept;
void* __libc_memalign(std::size_t align, std::size_t size) noexcept;

void* malloc(std::size_t size) noexcept {
  note_allocation();
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) noexcept {
  note_allocation();
  return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) noexcept {
  note_allocation();
  return __libc_realloc(p, size);
}
void* aligned_alloc(std::size_t align, std::size_t size) noexcept {
  note_allocation();
  return __libc_memalign(align, size);
}
void* memalign(std::size_t align, std::size_t size) noexcept {
  note_allocation();
  return __libc_memalign(align, size);
}
int posix_memalign(void** out, std::size_t align, std::size_t size) noexcept {
  // glibc's own checks: a power of two, a multiple of sizeof(void*).
  if (align % sizeof(void*) != 0 || (align & (align - 1)) != 0 || align == 0) return EINVAL;
  note_allocation();
  void* p = __libc_memalign(align, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}

namespace trialsim {
namespace {

using nlohmann::json;

constexpr std::uint64_t kSeed = 20190401;
constexpr int kRepeats = 3;       // best of, for every trial timing
constexpr int kFloorRepeats = 5;  // best of, for the floor loops
constexpr double kDefaultSeconds = 2.0;
constexpr const char* kDrawNames[draw_counter::kDrawTypes] = {"normal", "exponential", "uniform", "integer"};

// ---------------------------------------------------------------------------------------------
// Cases

struct Case {
  const char* name;
  const char* path;
  std::vector<std::string> overrides;
};

const std::vector<Case>& all_cases() {
  static const std::vector<Case> cases = {
      {"simple", "bench/scenarios/simple.toml", {}},
      {"seed4",
       "configs/seed_trial.toml",
       {R"(analysis.methods=["completers_ttest","completers_welch","change_ttest","ancova"])"}},
      {"seed7", "configs/seed_trial.toml", {}},
      // The seed trial followed monthly over 15 months (16 visits): the MMRM's 120 covariance
      // parameters and 46 fixed effects, and the imputation that shares its fit.
      {"mmrm16",
       "configs/seed_trial.toml",
       {"trial.months=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]", "treatment.effect_onset_months=1",
        R"(analysis.methods=["mmrm","mi_delta"])"}},
  };
  return cases;
}

const Case& find_case(const std::string& name) {
  for (const Case& c : all_cases()) {
    if (name == c.name) return c;
  }
  std::string known;
  for (const Case& c : all_cases()) known += (known.empty() ? "" : ", ") + std::string(c.name);
  throw std::runtime_error("unknown case '" + name + "' (known: " + known + ")");
}

Scenario load_case(const Case& c) { return Scenario::load(c.path, c.overrides); }

std::uint64_t whole_blocks(double replicates) {
  const double blocks = std::ceil(replicates / static_cast<double>(kBlockSize));
  return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(blocks)) * kBlockSize;
}

// Replicate counts for the differences (allocations, draws): N1 two blocks, N2 at least four
// blocks more and about a quarter of the timed run.
std::uint64_t small_reps() { return 2 * kBlockSize; }
std::uint64_t large_reps(std::uint64_t timed_reps) {
  return small_reps() + std::max<std::uint64_t>(4 * kBlockSize, whole_blocks(static_cast<double>(timed_reps) / 4));
}

// ---------------------------------------------------------------------------------------------
// Clocks

double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Timing {
  double cpu = 0;
  double wall = 0;
};

Timing timed_run(const Scenario& s, std::uint64_t replicates, int threads) {
  EngineOptions opt;
  opt.replicates = replicates;
  opt.seed = kSeed;
  opt.threads = threads;
  const double cpu0 = cpu_seconds();
  const double wall0 = wall_seconds();
  const SummaryAccumulator summary = run_replicates(s, opt);
  Timing t{cpu_seconds() - cpu0, wall_seconds() - wall0};
  if (summary.replicates() != replicates) throw std::runtime_error("run_replicates returned a short summary");
  return t;
}

// ---------------------------------------------------------------------------------------------
// Worker (bench_perf --worker CASE --seconds S): timings, allocations, scaling, peak RSS of one
// case, as JSON on stdout.

json worker(const Case& c, double seconds) {
  const Scenario s = load_case(c);
  const int cores = tbb::info::default_concurrency();
  std::fprintf(stderr, "bench_perf: %s: calibrating\n", c.name);

  // Calibration on CPU time at one thread.
  const double pilot = std::min(0.2, seconds / 4);
  std::uint64_t reps = kBlockSize;
  double cpu = timed_run(s, reps, 1).cpu;
  while (cpu < pilot && reps < (std::uint64_t{1} << 30)) {
    reps *= 4;
    cpu = timed_run(s, reps, 1).cpu;
  }
  reps = whole_blocks(seconds / (cpu / static_cast<double>(reps)));

  // One thread, best of kRepeats by CPU time; those runs are also the scaling table's first row.
  std::fprintf(stderr, "bench_perf: %s: %llu replicates at 1 thread\n", c.name, static_cast<unsigned long long>(reps));
  json cpu_runs = json::array();
  Timing best1{std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  Timing cpu_of_best_wall1{};
  for (int k = 0; k < kRepeats; ++k) {
    const Timing t = timed_run(s, reps, 1);
    cpu_runs.push_back(t.cpu);
    best1.cpu = std::min(best1.cpu, t.cpu);
    if (t.wall < best1.wall) {
      best1.wall = t.wall;
      cpu_of_best_wall1 = t;
    }
  }

  // Allocations of replicates [N1, N2) at one thread: the fixed cost of a run cancels.
  const std::uint64_t n1 = small_reps();
  const std::uint64_t n2 = large_reps(reps);
  auto allocations = [&](std::uint64_t n) {
    alloc_count.store(0);
    alloc_counting.store(true);
    timed_run(s, n, 1);
    alloc_counting.store(false);
    return alloc_count.load();
  };
  const std::uint64_t a1 = allocations(n1);
  const std::uint64_t a2 = allocations(n2);

  // Scaling: the same replicates at 1..cores threads, best of kRepeats by wall time.
  json scaling = json::array();
  for (int threads = 1; threads <= cores; ++threads) {
    Timing best = cpu_of_best_wall1;
    if (threads > 1) {
      std::fprintf(stderr, "bench_perf: %s: %llu replicates at %d threads\n", c.name,
                   static_cast<unsigned long long>(reps), threads);
      best.wall = std::numeric_limits<double>::infinity();
      for (int k = 0; k < kRepeats; ++k) {
        const Timing t = timed_run(s, reps, threads);
        if (t.wall < best.wall) best = t;
      }
    }
    const double speedup = best1.wall / best.wall;
    scaling.push_back({{"threads", threads},
                       {"wall_s", best.wall},
                       {"trials_per_s", static_cast<double>(reps) / best.wall},
                       {"speedup", speedup},
                       {"efficiency", speedup / threads},
                       {"cores_used", best.cpu / best.wall}});
  }

  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const double us_per_trial = 1e6 * best1.cpu / static_cast<double>(reps);
  return {{"case", c.name},
          {"scenario", c.path},
          {"overrides", c.overrides},
          {"consented", s.trial.consented},
          {"methods", s.analysis.methods.size()},
          {"replicates", reps},
          {"cpu_s_repeats", cpu_runs},
          {"us_per_trial", us_per_trial},
          {"trials_per_s_per_core", 1e6 / us_per_trial},
          {"alloc_replicates", {n1, n2}},
          {"allocs_per_trial", static_cast<double>(a2 - a1) / static_cast<double>(n2 - n1)},
          {"peak_rss_mib", static_cast<double>(usage.ru_maxrss) / 1024.0},  // Linux: KiB
          {"scaling", scaling}};
}

// ---------------------------------------------------------------------------------------------
// Counter (bench_perf_count CASE N1 N2): unit keys, outputs and draws by type per trial of
// replicates [N1, N2), as JSON on stdout. Only meaningful when built with TRIALSIM_COUNT_DRAWS.

json count_draws(const Case& c, std::uint64_t n1, std::uint64_t n2) {
  const Scenario s = load_case(c);
  // One thread: run_replicates sets max_allowed_parallelism to 1, so no TBB worker thread runs
  // any of it and every draw lands in this thread's counters.
  auto counted_run = [&](std::uint64_t n) {
    draw_counter::counts = {};
    timed_run(s, n, 1);
    return draw_counter::counts;
  };
  const draw_counter::Counts c1 = counted_run(n1);
  const draw_counter::Counts c2 = counted_run(n2);
  const auto trials = static_cast<double>(n2 - n1);
  auto per_trial = [&](std::uint64_t a, std::uint64_t b) { return static_cast<double>(b - a) / trials; };
  const double keys = per_trial(c1.keys, c2.keys);
  // Every consented patient has a unit key (the trial's own streams use the first patient's
  // unit): fewer means draws happened where this thread could not see them.
  if (keys < s.trial.consented) throw std::runtime_error("fewer unit keys than consented patients: the counts are incomplete");
  json draws = json::object();
  for (std::size_t d = 0; d < draw_counter::kDrawTypes; ++d) {
    draws[kDrawNames[d]] = per_trial(c1.draws[d], c2.draws[d]);
  }
  return {{"case", c.name},
          {"replicates", {n1, n2}},
          {"keys_per_trial", keys},
          {"outputs_per_trial", per_trial(c1.outputs, c2.outputs)},
          {"draws_per_trial", draws}};
}

// ---------------------------------------------------------------------------------------------
// The floor loops, timed in the parent with the normal (uncounted) Stream.

volatile double double_sink = 0;
volatile std::uint64_t word_sink = 0;

// Best of kFloorRepeats, CPU seconds of body().
template <class Body>
double best_cpu(Body body) {
  double best = std::numeric_limits<double>::infinity();
  for (int k = 0; k < kFloorRepeats; ++k) {
    const double t0 = cpu_seconds();
    body();
    best = std::min(best, cpu_seconds() - t0);
  }
  return best;
}

// What one unit key, and one draw of each type, cost on this machine with the engine's own
// code: loops of 10^7 to 2 x 10^7, best of kFloorRepeats. Integer draws are priced as
// uniform_below(rng, 4), what a block of 4 draws most.
struct FloorCosts {
  double ns_per_key = 0;
  std::array<double, draw_counter::kDrawTypes> ns_per_draw{};
  double ns_per_output = 0;  // a raw engine output: the price of the outputs no counted draw took
};

FloorCosts floor_costs() {
  constexpr std::uint64_t kKeys = 10'000'000;
  constexpr std::uint64_t kDraws = 20'000'000;
  // Keys and draws are made as the engine makes them: for columns of units at once
  // (sim/engine/draws.hpp), here 128 units at a time, each column a new slot.
  constexpr std::size_t kColumn = 128;
  FloorCosts f;
  f.ns_per_key = 1e9 / static_cast<double>(kKeys) * best_cpu([] {
    const TrialKey key(kSeed, 0);
    UnitColumns u;
    u.resize(kColumn);
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < kKeys; i += kColumn) {
      draws::unit_keys(key, i, kColumn, u.key.data(), u.mask.data());
      acc += u.key[7] ^ u.mask[3];
    }
    word_sink = acc;
  });
  UnitColumns units;
  units.resize(kColumn);
  draws::unit_keys(TrialKey(kSeed, 0), 0, kColumn, units.key.data(), units.mask.data());
  auto time_columns = [&](auto draw) {
    return 1e9 / static_cast<double>(kDraws) * best_cpu([&] {
      std::vector<double> out(kColumn);
      double acc = 0;
      std::uint32_t slot = 0;
      for (std::uint64_t i = 0; i < kDraws; i += kColumn) {
        draw(units, kColumn, StreamKind::measurement, slot++, out.data());
        acc += out[5];
      }
      double_sink = acc;
    });
  };
  auto time_draws = [&](auto draw) {
    return 1e9 / static_cast<double>(kDraws) * best_cpu([&] {
      Stream s(kSeed, 0, StreamKind::measurement);
      double acc = 0;
      for (std::uint64_t i = 0; i < kDraws; ++i) acc += draw(s);
      double_sink = acc;
    });
  };
  using Column = void (*)(const UnitColumns&, std::size_t, StreamKind, std::uint32_t, double*);
  f.ns_per_draw[static_cast<std::size_t>(draw_counter::Draw::normal)] = time_columns(static_cast<Column>(draws::normal));
  f.ns_per_draw[static_cast<std::size_t>(draw_counter::Draw::exponential)] =
      time_columns(static_cast<Column>(draws::exponential));
  f.ns_per_draw[static_cast<std::size_t>(draw_counter::Draw::uniform)] = time_columns(static_cast<Column>(draws::uniform));
  // Integer draws (randomization's block shuffles) and outputs beyond a draw's first are taken
  // one at a time from a stream.
  f.ns_per_draw[static_cast<std::size_t>(draw_counter::Draw::integer)] =
      time_draws([](Stream& s) { return static_cast<double>(uniform_below(s, 4)); });
  f.ns_per_output = time_draws([](Stream& s) { return static_cast<double>(s() >> 11); });
  return f;
}

// The floor of one case's counts, in us per trial.
double floor_us(const json& counted, const FloorCosts& f) {
  double ns = counted["keys_per_trial"].get<double>() * f.ns_per_key;
  double counted_outputs = 0;
  for (std::size_t d = 0; d < draw_counter::kDrawTypes; ++d) {
    const double n = counted["draws_per_trial"][kDrawNames[d]].get<double>();
    ns += n * f.ns_per_draw[d];
    counted_outputs += n;
  }
  // Outputs beyond one per counted draw: ziggurat rejections and the distributions the draw
  // helpers do not cover (mi_delta's gamma and chi-squared draws), each priced as a raw output.
  ns += std::max(0.0, counted["outputs_per_trial"].get<double>() - counted_outputs) * f.ns_per_output;
  return 1e-3 * ns;
}

// ---------------------------------------------------------------------------------------------
// Children

std::filesystem::path self_dir() { return std::filesystem::read_symlink("/proc/self/exe").parent_path(); }

// Runs `args` (args[0] is the program) with stdout to a pipe; returns what it printed, parsed.
json run_child(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  std::vector<std::string> storage = args;
  std::vector<char*> argv;
  for (std::string& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, storage[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw std::runtime_error("cannot start " + args[0]);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(args[0] + " " + (args.size() > 1 ? args[1] : "") + " " +
                             (args.size() > 2 ? args[2] : "") + " failed");
  }
  return json::parse(out);
}

// ---------------------------------------------------------------------------------------------
// Parent

struct Options {
  std::vector<std::string> cases{"simple", "seed4", "seed7", "mmrm16"};
  std::string json_path;
  double seconds = kDefaultSeconds;
};

constexpr const char* kUsage = "usage: bench_perf [--cases simple,seed4,seed7,mmrm16] [--json FILE] [--seconds S]";

[[noreturn]] void usage(const std::string& message) { throw std::invalid_argument(message + "\n" + kUsage); }

// Returns false for --help (usage printed).
bool parse(const std::vector<std::string>& args, Options& o) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::printf("%s\n", kUsage);
      return false;
    }
    if (a != "--cases" && a != "--json" && a != "--seconds") usage("unknown argument " + a);
    if (i + 1 >= args.size()) usage(a + " needs a value");
    const std::string& v = args[++i];
    if (a == "--cases") {
      o.cases.clear();
      std::size_t start = 0;
      while (start <= v.size()) {
        const std::size_t comma = std::min(v.find(',', start), v.size());
        const std::string name = v.substr(start, comma - start);
        find_case(name);  // throws on an unknown name
        o.cases.push_back(name);
        start = comma + 1;
      }
    } else if (a == "--json") {
      o.json_path = v;
    } else {
      char* end = nullptr;
      o.seconds = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(o.seconds > 0) || !std::isfinite(o.seconds)) {
        usage("--seconds needs a positive number");
      }
    }
  }
  return true;
}

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

int parent(const Options& o) {
  const std::filesystem::path dir = self_dir();
  const std::string self = (dir / "bench_perf").string();
  const std::string counter = (dir / "bench_perf_count").string();
  // Loaded once here, so that a bad path fails before anything is timed.
  for (const std::string& name : o.cases) load_case(find_case(name));
  const int cores = tbb::info::default_concurrency();
  double load_before[3] = {0, 0, 0};
  ::getloadavg(load_before, 3);
  std::fprintf(stderr, "bench_perf: timing the floor loops\n");
  const FloorCosts floor = floor_costs();

  char seconds_text[32];
  std::snprintf(seconds_text, sizeof seconds_text, "%.17g", o.seconds);
  std::vector<json> rows;
  for (const std::string& name : o.cases) {
    json r = run_child({self, "--worker", name, "--seconds", seconds_text});
    const auto reps = r["alloc_replicates"].get<std::vector<std::uint64_t>>();
    std::fprintf(stderr, "bench_perf: %s: counting draws\n", name.c_str());
    const json counted = run_child({counter, name, std::to_string(reps.at(0)), std::to_string(reps.at(1))});
    const double floor_trial = floor_us(counted, floor);
    r["keys_per_trial"] = counted["keys_per_trial"];
    r["outputs_per_trial"] = counted["outputs_per_trial"];
    r["draws_per_trial"] = counted["draws_per_trial"];
    r["count_replicates"] = counted["replicates"];
    r["floor_us_per_trial"] = floor_trial;
    r["multiple_of_floor"] = r["us_per_trial"].get<double>() / floor_trial;
    rows.push_back(std::move(r));
  }
  double load_after[3] = {0, 0, 0};
  ::getloadavg(load_after, 3);

  std::printf("trialsim %s perf  %s  seed %llu  cores %d  ~%.3g s per timed run, best of %d\n\n", TRIALSIM_VERSION,
              today().c_str(), static_cast<unsigned long long>(kSeed), cores, o.seconds, kRepeats);
  std::printf("| case | consented | us/trial (CPU, 1 thread) | trials/s/core | keys/trial | outputs/trial | "
              "normal | exponential | uniform | integer | floor us | multiple of floor | allocs/trial | peak RSS MiB |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const json& r : rows) {
    const json& d = r["draws_per_trial"];
    std::printf("| %s | %d | %.2f | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %.1f | %.1f |\n",
                r["case"].get<std::string>().c_str(), r["consented"].get<int>(), r["us_per_trial"].get<double>(),
                r["trials_per_s_per_core"].get<double>(), r["keys_per_trial"].get<double>(),
                r["outputs_per_trial"].get<double>(), d["normal"].get<double>(), d["exponential"].get<double>(),
                d["uniform"].get<double>(), d["integer"].get<double>(), r["floor_us_per_trial"].get<double>(),
                r["multiple_of_floor"].get<double>(), r["allocs_per_trial"].get<double>(),
                r["peak_rss_mib"].get<double>());
  }
  std::printf("\n| case | threads | replicates | wall s | trials/s | speed-up | efficiency | cores used |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const json& r : rows) {
    for (const json& p : r["scaling"]) {
      std::printf("| %s | %d | %llu | %.3f | %.0f | %.2f | %.1f%% | %.2f |\n", r["case"].get<std::string>().c_str(),
                  p["threads"].get<int>(), static_cast<unsigned long long>(r["replicates"].get<std::uint64_t>()),
                  p["wall_s"].get<double>(), p["trials_per_s"].get<double>(), p["speedup"].get<double>(),
                  100.0 * p["efficiency"].get<double>(), p["cores_used"].get<double>());
    }
  }
  std::printf("\nfloor = keys x %.2f ns + normal x %.2f + exponential x %.2f + uniform x %.2f + integer x %.2f ns"
              " + other outputs x %.2f ns\n",
              floor.ns_per_key, floor.ns_per_draw[0], floor.ns_per_draw[1], floor.ns_per_draw[2], floor.ns_per_draw[3],
              floor.ns_per_output);
  std::printf("load average before %.2f, after %.2f (1 min)\n", load_before[0], load_after[0]);

  if (!o.json_path.empty()) {
    json out = {{"trialsim_version", TRIALSIM_VERSION},
                {"date", today()},
                {"seed", kSeed},
                {"cores", cores},
                {"seconds", o.seconds},
                {"repeats", kRepeats},
                {"load_average_before", {load_before[0], load_before[1], load_before[2]}},
                {"load_average_after", {load_after[0], load_after[1], load_after[2]}},
                {"floor",
                 {{"ns_per_key", floor.ns_per_key},
                  {"ns_per_normal", floor.ns_per_draw[0]},
                  {"ns_per_exponential", floor.ns_per_draw[1]},
                  {"ns_per_uniform", floor.ns_per_draw[2]},
                  {"ns_per_integer", floor.ns_per_draw[3]},
                  {"ns_per_other_output", floor.ns_per_output}}},
                {"cases", rows}};
    std::ofstream f(o.json_path);
    f << out.dump(1) << '\n';
    if (!f) throw std::runtime_error("cannot write " + o.json_path);
  }
  return 0;
}

int run(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if constexpr (draw_counter::enabled) {
    if (args.size() != 3) throw std::invalid_argument("usage: bench_perf_count CASE N1 N2 (run by bench_perf)");
    const std::uint64_t n1 = std::stoull(args[1]);
    const std::uint64_t n2 = std::stoull(args[2]);
    if (n2 <= n1) throw std::invalid_argument("bench_perf_count: N2 must exceed N1");
    std::printf("%s\n", count_draws(find_case(args[0]), n1, n2).dump().c_str());
    return 0;
  } else {
    if (!args.empty() && args[0] == "--worker") {
      if (args.size() != 4 || args[2] != "--seconds") throw std::invalid_argument("usage: bench_perf --worker CASE --seconds S");
      std::printf("%s\n", worker(find_case(args[1]), std::stod(args[3])).dump().c_str());
      return 0;
    }
    Options o;
    return parse(args, o) ? parent(o) : 0;
  }
}

}  // namespace
}  // namespace trialsim

int main(int argc, char** argv) {
  try {
    return trialsim::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", trialsim::draw_counter::enabled ? "bench_perf_count" : "bench_perf", e.what());
    return 1;
  }
}
