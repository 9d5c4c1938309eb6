// Peak resident memory of run_replicates against the number of replicates. The engine keeps at
// most 2 x threads blocks in flight and folds each into running moments, so the peak should not
// move between 1e3 and 1e6 replicates.
//
// Usage: bench_memory [scenario.toml [key=value ...]]
//   default scenario configs/seed_trial.toml; default override trial.consented=20, which keeps
//   the 1e6-replicate run short. Memory per block scales with the trial size, not the replicate
//   count, so a smaller trial does not weaken the comparison. Any override given replaces it.
#include "sim/engine/engine.hpp"
#include "sim/io/scenario.hpp"
#include "sim/engine/summary.hpp"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tbb/info.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace trialsim {
namespace {

constexpr std::uint64_t kSeed = 20190401;

struct ChildReport {
  std::uint64_t replicates = 0;
  double seconds = 0;
  int threads = 0;
  int ok = 0;
};

bool write_all(int fd, const void* data, std::size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t size) {
  auto* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::read(fd, p, size);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Runs in the child. TBB is first touched here, never in the parent, so no worker threads are
// duplicated across fork().
[[noreturn]] void child(const Scenario& s, std::uint64_t replicates, int fd) {
  ChildReport report;
  try {
    EngineOptions opt;
    opt.replicates = replicates;
    opt.seed = kSeed;
    report.threads = tbb::info::default_concurrency();
    const auto start = std::chrono::steady_clock::now();
    const SummaryAccumulator summary = run_replicates(s, opt);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.replicates = summary.replicates();
    report.ok = 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_memory child: %s\n", e.what());
  }
  const bool sent = write_all(fd, &report, sizeof report);
  // _exit: the parent's stdio buffers and static destructors belong to the parent.
  ::_exit(report.ok && sent ? 0 : 1);
}

struct Row {
  ChildReport report;
  long max_rss_kib = 0;
};

// A fresh process per size, so each peak starts from the same baseline and cannot inherit the
// high-water mark of a larger run.
bool measure(const Scenario& s, std::uint64_t replicates, Row& row) {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::close(fds[0]);
    child(s, replicates, fds[1]);
  }
  ::close(fds[1]);
  const bool got = read_all(fds[0], &row.report, sizeof row.report);
  ::close(fds[0]);
  int status = 0;
  rusage usage{};
  if (::wait4(pid, &status, 0, &usage) != pid) return false;
  row.max_rss_kib = usage.ru_maxrss;  // Linux reports KiB
  return got && row.report.ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int run(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "configs/seed_trial.toml";
  std::vector<std::string> overrides(argv + std::min(argc, 2), argv + argc);
  if (overrides.empty()) overrides.emplace_back("trial.consented=20");
  // Loaded once in the parent so a bad path fails before any child is started.
  const Scenario scenario = Scenario::load(path, overrides);

  std::string joined;
  for (const std::string& o : overrides) joined += (joined.empty() ? "" : " ") + o;
  std::printf("trialsim %s memory  scenario %s  overrides %s  seed %llu  one fresh process per row\n\n",
              TRIALSIM_VERSION, path.c_str(), joined.c_str(), static_cast<unsigned long long>(kSeed));
  std::printf("%10s %7s %8s %10s %13s %14s\n", "replicates", "threads", "wall s", "trials/s", "peak RSS MiB",
              "vs first, MiB");

  long first_kib = -1;
  for (const std::uint64_t replicates : {std::uint64_t{1000}, std::uint64_t{10000}, std::uint64_t{100000},
                                         std::uint64_t{1000000}}) {
    Row row;
    if (!measure(scenario, replicates, row)) {
      std::fprintf(stderr, "bench_memory: run of %llu replicates failed\n",
                   static_cast<unsigned long long>(replicates));
      return 1;
    }
    if (first_kib < 0) first_kib = row.max_rss_kib;
    std::printf("%10llu %7d %8.2f %10.0f %13.1f %+14.1f\n", static_cast<unsigned long long>(row.report.replicates),
                row.report.threads, row.report.seconds,
                static_cast<double>(row.report.replicates) / row.report.seconds,
                static_cast<double>(row.max_rss_kib) / 1024.0,
                static_cast<double>(row.max_rss_kib - first_kib) / 1024.0);
    std::fflush(stdout);
  }
  std::printf("\npeak RSS is ru_maxrss of each child (getrusage via wait4), including the loaded scenario\n");
  return 0;
}

}  // namespace
}  // namespace trialsim

int main(int argc, char** argv) {
  try {
    return trialsim::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_memory: %s\n", e.what());
    return 1;
  }
}
