// Cost of the random streams. The simulator keys a fresh Philox stream for every patient and
// model part instead of seeding one engine per worker; this shows what that choice costs per
// draw and what it saves per stream compared with Mersenne Twister.
//
// Usage: bench_rng
#include "sim/rng.hpp"

#include <boost/random/mersenne_twister.hpp>
#include <boost/random/normal_distribution.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>

namespace trialsim {
namespace {

constexpr std::uint64_t kSeed = 20190401;
constexpr int kRepeats = 5;

// Results are stored here so the optimizer must compute them.
volatile double g_double_sink = 0;
volatile std::uint64_t g_int_sink = 0;
void consume(double x) { g_double_sink = x; }
void consume(std::uint64_t x) { g_int_sink = x; }

// Forces `v` to exist in memory with its current contents, for loops whose work has no result
// (constructing or seeding without drawing).
template <class T>
void escape(T& v) {
  __asm__ __volatile__("" : : "r"(&v) : "memory");
}

// Best of kRepeats, in ns per operation; `body(n)` performs n operations and returns a value
// that depends on all of them.
template <class Body>
double ns_per_op(std::uint64_t n, Body body) {
  double best = std::numeric_limits<double>::infinity();
  for (int k = 0; k < kRepeats; ++k) {
    const auto start = std::chrono::steady_clock::now();
    consume(body(n));
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, ns / static_cast<double>(n));
  }
  return best;
}

// The same four words that key a Stream, as 32-bit seed_seq input.
std::array<std::uint32_t, 8> seed_words(std::uint64_t seed, std::uint64_t replicate, StreamKind kind,
                                        std::uint64_t index) {
  const std::array<std::uint64_t, 4> w{seed, replicate, static_cast<std::uint64_t>(kind), index};
  std::array<std::uint32_t, 8> out{};
  for (std::size_t i = 0; i < w.size(); ++i) {
    out[2 * i] = static_cast<std::uint32_t>(w[i]);
    out[2 * i + 1] = static_cast<std::uint32_t>(w[i] >> 32);
  }
  return out;
}

void row(const char* what, double stream_ns, double mt_ns) {
  std::printf("%-44s %14.2f %12.2f %8.2f\n", what, stream_ns, mt_ns, stream_ns / mt_ns);
}

void row(const char* what, double ns) { std::printf("%-56s %10.2f\n", what, ns); }

int run() {
  constexpr std::uint64_t kDraws = 20'000'000;
  constexpr std::uint64_t kStreams = 10'000'000;
  constexpr std::uint64_t kSeedings = 200'000;

  const double u64_stream = ns_per_op(kDraws, [](std::uint64_t n) {
    Stream s(kSeed, 0, StreamKind::measurement);
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) acc += s();
    return acc;
  });
  const double u64_mt = ns_per_op(kDraws, [](std::uint64_t n) {
    boost::random::mt19937_64 mt(kSeed);
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) acc += mt();
    return acc;
  });
  const double normal_stream = ns_per_op(kDraws, [](std::uint64_t n) {
    Stream s(kSeed, 0, StreamKind::measurement);
    boost::random::normal_distribution<double> normal;
    double acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) acc += normal(s);
    return acc;
  });
  const double normal_mt = ns_per_op(kDraws, [](std::uint64_t n) {
    boost::random::mt19937_64 mt(kSeed);
    boost::random::normal_distribution<double> normal;
    double acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) acc += normal(mt);
    return acc;
  });

  // A Stream defers all work to its first draw, so "construct + first draw" is the cost of a
  // usable stream; likewise mt19937_64 fills its state on seeding and twists on the first draw.
  const double key_only = ns_per_op(kStreams, [](std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      Stream s(kSeed, i, StreamKind::population, i);
      escape(s);
    }
    return n;
  });
  const double key_draw = ns_per_op(kStreams, [](std::uint64_t n) {
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      Stream s(kSeed, i, StreamKind::population, i);
      acc += s();
    }
    return acc;
  });
  const double mt_seed_only = ns_per_op(kSeedings, [](std::uint64_t n) {
    boost::random::mt19937_64 mt;
    for (std::uint64_t i = 0; i < n; ++i) {
      mt.seed(kSeed + i);
      escape(mt);
    }
    return n;
  });
  const double mt_seed_draw = ns_per_op(kSeedings, [](std::uint64_t n) {
    boost::random::mt19937_64 mt;
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      mt.seed(kSeed + i);
      acc += mt();
    }
    return acc;
  });
  // The seed_seq carries the same (seed, replicate, kind, index) a Stream is keyed with, which is
  // what a per-patient Mersenne Twister would need to avoid overlapping seeds.
  const double mt_seq_draw = ns_per_op(kSeedings, [](std::uint64_t n) {
    boost::random::mt19937_64 mt;
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto words = seed_words(kSeed, i, StreamKind::population, i);
      std::seed_seq seq(words.begin(), words.end());
      mt.seed(seq);
      acc += mt();
    }
    return acc;
  });

  std::printf("trialsim %s rng  best of %d, ns per operation\n\n", TRIALSIM_VERSION, kRepeats);
  std::printf("%-44s %14s %12s %8s\n", "draw", "Stream(Philox)", "mt19937_64", "ratio");
  row("uniform 64-bit output", u64_stream, u64_mt);
  row("standard normal (boost normal_distribution)", normal_stream, normal_mt);
  std::printf("\n%-56s %10s\n", "keying / seeding", "ns/op");
  row("Stream: construct (key) only", key_only);
  row("Stream: construct + first draw", key_draw);
  row("mt19937_64: seed(uint64) only", mt_seed_only);
  row("mt19937_64: seed(uint64) + first draw", mt_seed_draw);
  row("mt19937_64: seed(seed_seq of 8 words) + first draw", mt_seq_draw);
  std::printf("\nusable stream, mt19937_64 seed_seq / Stream: %.0fx\n", mt_seq_draw / key_draw);
  return 0;
}

}  // namespace
}  // namespace trialsim

int main() { return trialsim::run(); }
