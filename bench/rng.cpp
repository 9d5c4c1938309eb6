// Cost of the random streams. The simulator gives every patient its own unit key and every
// model part its own counter-based stream under it (sim/engine/rng.hpp) instead of seeding one engine
// per worker; this shows what that choice costs per draw and per key, against a Philox4x64-10
// stream per patient and model part (the engine before) and Mersenne Twister.
//
// Usage: bench_rng
#include "sim/engine/draws.hpp"
#include "sim/engine/rng.hpp"

#include <boost/random/mersenne_twister.hpp>
#include <boost/random/normal_distribution.hpp>

#include <Random123/philox.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

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

void row(const char* what, double ns) { std::printf("%-56s %10.2f\n", what, ns); }

// A Philox4x64-10 stream keyed by (seed, replicate) with (kind, index) in the counter: one per
// patient and model part, as the engine used to key them.
class PhiloxStream {
 public:
  using result_type = std::uint64_t;
  PhiloxStream(std::uint64_t seed, std::uint64_t replicate, StreamKind kind, std::uint64_t index)
      : key_{{seed, replicate}}, ctr_{{0, 0, index, static_cast<std::uint64_t>(kind)}} {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }
  result_type operator()() {
    if (used_ == 4) {
      block_ = r123::Philox4x64{}(ctr_, key_);
      ++ctr_.v[0];
      used_ = 0;
    }
    return block_.v[used_++];
  }

 private:
  r123::Philox4x64::key_type key_;
  r123::Philox4x64::ctr_type ctr_;
  r123::Philox4x64::ctr_type block_{};
  unsigned used_ = 4;
};

template <class Engine>
double uniform_words(Engine& e, std::uint64_t n) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < n; ++i) acc += e();
  return static_cast<double>(acc);
}

template <class Engine>
double boost_normals(Engine& e, std::uint64_t n) {
  boost::random::normal_distribution<double> normal;
  double acc = 0;
  for (std::uint64_t i = 0; i < n; ++i) acc += normal(e);
  return acc;
}

template <class Engine>
double inlined_normals(Engine& e, std::uint64_t n) {
  double acc = 0;
  for (std::uint64_t i = 0; i < n; ++i) acc += standard_normal(e);
  return acc;
}

void row3(const char* what, double a, double b, double c) {
  std::printf("%-46s %10.2f %10.2f %12.2f\n", what, a, b, c);
}

int run() {
  constexpr std::uint64_t kDraws = 20'000'000;
  constexpr std::uint64_t kStreams = 10'000'000;
  constexpr std::uint64_t kSeedings = 200'000;

  auto per_draw = [&](auto make, auto body) {
    return ns_per_op(kDraws, [&](std::uint64_t n) {
      auto e = make();
      return body(e, n);
    });
  };
  auto stream = [] { return Stream(kSeed, 0, StreamKind::measurement); };
  auto philox = [] { return PhiloxStream(kSeed, 0, StreamKind::measurement, 0); };
  auto mt = [] { return boost::random::mt19937_64(kSeed); };
  auto words = [](auto& e, std::uint64_t n) { return uniform_words(e, n); };
  auto boost_n = [](auto& e, std::uint64_t n) { return boost_normals(e, n); };
  auto inl_n = [](auto& e, std::uint64_t n) { return inlined_normals(e, n); };
  const double u64[3] = {per_draw(stream, words), per_draw(philox, words), per_draw(mt, words)};
  const double nb[3] = {per_draw(stream, boost_n), per_draw(philox, boost_n), per_draw(mt, boost_n)};
  const double ni[3] = {per_draw(stream, inl_n), per_draw(philox, inl_n), per_draw(mt, inl_n)};

  // Keys: what a patient's streams cost before their first output. A patient's unit key is two
  // SplitMix64 finalizers of the replicate's Philox key; its streams are then free to open.
  const double unit_key = ns_per_op(kStreams, [](std::uint64_t n) {
    const TrialKey key(kSeed, 0);
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      const UnitKey u = key.unit(i);
      acc += u.key ^ u.mask;
    }
    return acc;
  });
  const double unit_key_draw = ns_per_op(kStreams, [](std::uint64_t n) {
    const TrialKey key(kSeed, 0);
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      Stream s(key.unit(i), StreamKind::population);
      acc += s();
    }
    return acc;
  });
  const double trial_key = ns_per_op(kStreams, [](std::uint64_t n) {
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      Stream s(kSeed, i, StreamKind::population, i);
      acc += s();
    }
    return acc;
  });
  const double philox_key_draw = ns_per_op(kStreams, [](std::uint64_t n) {
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      PhiloxStream s(kSeed, i, StreamKind::population, i);
      acc += s();
    }
    return acc;
  });
  const double mt_seed_draw = ns_per_op(kSeedings, [](std::uint64_t n) {
    boost::random::mt19937_64 m;
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      m.seed(kSeed + i);
      acc += m();
    }
    return acc;
  });
  // The seed_seq carries the same (seed, replicate, kind, index) a Stream is keyed with, which is
  // what a per-patient Mersenne Twister would need to avoid overlapping seeds.
  const double mt_seq_draw = ns_per_op(kSeedings, [](std::uint64_t n) {
    boost::random::mt19937_64 m;
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto w = seed_words(kSeed, i, StreamKind::population, i);
      std::seed_seq seq(w.begin(), w.end());
      m.seed(seq);
      acc += m();
    }
    return acc;
  });

  std::printf("trialsim %s rng  best of %d, ns per operation\n\n", TRIALSIM_VERSION, kRepeats);
  std::printf("%-46s %10s %10s %12s\n", "draw", "Stream", "Philox4x64", "mt19937_64");
  row3("uniform 64-bit output", u64[0], u64[1], u64[2]);
  row3("standard normal, boost normal_distribution", nb[0], nb[1], nb[2]);
  row3("standard normal, standard_normal (inlined)", ni[0], ni[1], ni[2]);
  std::printf("\n%-56s %10s\n", "keying / seeding", "ns/op");
  row("unit key (a patient's streams) only", unit_key);
  row("unit key + first output", unit_key_draw);
  row("replicate key (Philox block) + unit key + first output", trial_key);
  row("Philox4x64 stream per patient and part + first output", philox_key_draw);
  row("mt19937_64: seed(uint64) + first draw", mt_seed_draw);
  row("mt19937_64: seed(seed_seq of 8 words) + first draw", mt_seq_draw);

  // Draws for a column of 128 patients at once (sim/engine/draws.hpp), as the models make them:
  // per draw, on this machine's path and on the portable one.
  constexpr std::size_t kColumn = 128;
  UnitColumns units;
  units.resize(kColumn);
  draws::unit_keys(TrialKey(kSeed, 0), 0, kColumn, units.key.data(), units.mask.data());
  std::vector<double> out(kColumn), x(kColumn);
  for (std::size_t i = 0; i < kColumn; ++i) x[i] = -20.0 + 40.0 * static_cast<double>(i) / kColumn;
  using Column = void (*)(const std::uint64_t*, const std::uint64_t*, std::size_t, StreamKind, std::uint32_t, double*);
  auto column = [&](Column f) {
    return ns_per_op(20'000'000, [&](std::uint64_t n) {
      double acc = 0;
      std::uint32_t slot = 0;
      for (std::uint64_t i = 0; i < n; i += kColumn) {
        f(units.key.data(), units.mask.data(), kColumn, StreamKind::measurement, slot++, out.data());
        acc += out[3];
      }
      return acc;
    });
  };
  auto keys = [&](auto f) {
    return ns_per_op(20'000'000, [&](std::uint64_t n) {
      const TrialKey key(kSeed, 1);
      std::uint64_t acc = 0;
      for (std::uint64_t i = 0; i < n; i += kColumn) {
        f(key, i, kColumn, units.key.data(), units.mask.data());
        acc += units.key[5];
      }
      return acc;
    });
  };
  auto exps = [&](auto f) {
    return ns_per_op(20'000'000, [&](std::uint64_t n) {
      double acc = 0;
      for (std::uint64_t i = 0; i < n; i += kColumn) {
        f(x.data(), kColumn, out.data());
        acc += out[7];
      }
      return acc;
    });
  };
  const bool vector = draws::avx512::available();
  const double nan = std::numeric_limits<double>::quiet_NaN();  // no AVX-512 here: printed as nan
  auto row2 = [](const char* what, double a, double b) { std::printf("%-46s %10.2f %10.2f\n", what, a, b); };
  std::printf("\n%-46s %10s %10s   (this machine: %s)\n", "a column of 128 at once, per value", "portable", "AVX-512",
              std::string(draws::isa()).c_str());
  row2("unit keys", keys(draws::portable::unit_keys), vector ? keys(draws::avx512::unit_keys) : nan);
  row2("uniform", column(draws::portable::uniform), vector ? column(draws::avx512::uniform) : nan);
  row2("standard normal", column(draws::portable::normal), vector ? column(draws::avx512::normal) : nan);
  row2("standard exponential", column(draws::portable::exponential),
       vector ? column(draws::avx512::exponential) : nan);
  row2("exp (draws::exp)", exps(draws::portable::exp), vector ? exps(draws::avx512::exp) : nan);
  return 0;
}

}  // namespace
}  // namespace trialsim

int main() { return trialsim::run(); }
