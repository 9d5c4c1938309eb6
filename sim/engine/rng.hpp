#pragma once
// Random streams for one replicate.
//
// Keying. Each replicate has a 128-bit key, one block of Random123's Philox4x64-10 (Salmon et
// al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) keyed by (seed, replicate): seed
// and replicate occupy separate key words, so (seed, r) pairs never collide the way `seed + r`
// would. Every unit of the replicate (a patient, by consent index; trial-level streams use index
// 0 with a kind of their own) gets a 128-bit unit key from it by two SplitMix64 finalizers (Steele,
// Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014):
//   key  = mix64(K0 + index * gamma),  mask = mix64(K1 + index * gamma').
// Deriving a unit key costs two multiplications-and-shifts; the streams of a unit cost nothing.
//
// Streams. A model kind's draws within a unit are counter based: output t of slot s of kind k is
//   mix64(key + (k * 2^56 + s * 2^32 + t) * gamma) XOR mask,
// SplitMix64's output function at that counter. Every quantity a model draws for a patient (the
// SPP level, the entry reading's noise, the dropout threshold, ...) owns a slot, and a draw takes
// output 0 of its slot, and outputs 1, 2, ... only when it needs more (a ziggurat's rare second
// try). So what one draw takes never moves another's numbers: switching a model part on or off,
// or a rejection in one draw, changes only that draw (common random numbers across designs), and
// the same draw of many patients is one vector operation over their keys (sim/engine/draws.hpp).
// Streams that draw in sequence (randomization's, imputation's) read their kind's counters in
// order from slot 0 on. A replicate's streams depend only on (seed, replicate, kind, index),
// never on the thread that runs them, so any replicate can be replayed alone. Within a unit the
// outputs are those of one SplitMix64 sequence at distinct positions (BigCrush-clean, Steele et
// al. 2014); units are separated by independent 64-bit keys and masks. Two streams of one
// replicate can only meet if two keys differ by a small multiple of gamma (probability ~1e-13
// per trial of 100 patients) and, across replicates, only if their masks also coincide (~2^-64).
//
// Why not one Philox stream per patient and kind, as before: a patient draws 4 to 12 numbers,
// and each Philox stream paid a whole 4-word block (about 11 ns) for its first one. Measured in
// bench/perf.cpp ("the random-number floor"), the per-output cost is now about 1.3 ns scalar and
// a fraction of that eight patients at a time.
#include "sim/engine/draw_counter.hpp"

#include <Random123/philox.h>
#include <boost/random/exponential_distribution.hpp>
#include <boost/random/normal_distribution.hpp>
#include <boost/random/uniform_01.hpp>

#include <cmath>

#include <cstdint>
#include <limits>
#include <type_traits>

namespace trialsim {

enum class StreamKind : std::uint64_t {
  population = 1,
  randomization = 3,
  treatment = 4,
  dropout = 5,
  measurement = 6,
  analysis = 7,
  covariates = 8,  // the covariates only the patients CSV shows (Population::draw)
};

namespace rng_detail {
inline constexpr std::uint64_t kGamma = 0x9e3779b97f4a7c15ULL;      // SplitMix64's golden gamma
inline constexpr std::uint64_t kGammaMask = 0xd1b54a32d192ed03ULL;  // a second odd gamma, for the masks
// SplitMix64's finalizer (Stafford's "Mix13"): a bijection of 64-bit words with full avalanche.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace rng_detail

// The key of one unit (patient, or the trial's own streams) of one replicate.
struct UnitKey {
  std::uint64_t key = 0, mask = 0;
};

// The key of one replicate: one Philox4x64-10 block of (seed, replicate).
class TrialKey {
 public:
  TrialKey(std::uint64_t seed, std::uint64_t replicate) {
    const r123::Philox4x64::ctr_type ctr{{0, 0, 0, 0}};
    const r123::Philox4x64::key_type key{{seed, replicate}};
    const auto block = r123::Philox4x64{}(ctr, key);
    k0_ = block.v[0];
    k1_ = block.v[1];
  }
  UnitKey unit(std::uint64_t index) const {
    draw_counter::on_key();
    return {rng_detail::mix64(k0_ + index * rng_detail::kGamma), rng_detail::mix64(k1_ + index * rng_detail::kGammaMask)};
  }
  // The two words unit keys are derived from (for deriving many at once: draws::unit_keys).
  std::uint64_t k0() const { return k0_; }
  std::uint64_t k1() const { return k1_; }

 private:
  std::uint64_t k0_ = 0, k1_ = 0;
};

// A UniformRandomBitGenerator: usable as the engine of any Boost.Random or <random>
// distribution. Copies continue independently from where the original was.
class Stream {
 public:
  using result_type = std::uint64_t;

  // Slot `slot` of `kind` (slot 0 for streams drawn in sequence), from its output `first` on.
  Stream(const UnitKey& unit, StreamKind kind, std::uint32_t slot = 0, std::uint32_t first = 0)
      : key_(unit.key), mask_(unit.mask), ctr_(counter(kind, slot) + first) {}
  // The same stream keyed from scratch (a Philox block and a unit key): for tests, tools and
  // streams opened once per replicate.
  Stream(std::uint64_t seed, std::uint64_t replicate, StreamKind kind, std::uint64_t index = 0)
      : Stream(TrialKey(seed, replicate).unit(index), kind) {}

  // The counter of output 0 of a slot.
  static constexpr std::uint64_t counter(StreamKind kind, std::uint32_t slot) {
    return (static_cast<std::uint64_t>(kind) << 56) | (static_cast<std::uint64_t>(slot) << 32);
  }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  [[gnu::always_inline]] result_type operator()() {
    draw_counter::on_output();
    return rng_detail::mix64(key_ + (ctr_++) * rng_detail::kGamma) ^ mask_;
  }

  // The state, for drawing many outputs at once (draws::normal_sequence): the next output is
  // mix64(key + position * gamma) ^ mask, and skip(k) passes over k outputs.
  std::uint64_t key() const { return key_; }
  std::uint64_t mask() const { return mask_; }
  std::uint64_t position() const { return ctr_; }
  void skip(std::uint64_t k) { ctr_ += k; }

 private:
  std::uint64_t key_, mask_, ctr_;
};

// The draws the models make, in one place so that the benchmarks can count them by type.
//
// Normal and exponential variates are Boost.Random's ziggurats (Marsaglia & Tsang, J Stat Softw
// 2000) with Boost's tables, split so that the common case inlines: the first try's fast accept
// (about 98% of normal draws) is done here, exactly as boost::random::normal_distribution and
// exponential_distribution do it with a 64-bit engine, and anything else goes to an out-of-line
// continuation of Boost's own loop. The values are bit for bit Boost's for the same engine
// (tests/unit/test_rng.cpp checks millions of draws).
namespace rng_detail {

// Boost's generate_int_float_pair<double, 8> for a full-range 64-bit engine: the low 8 bits
// pick the layer (and, for the normal, the sign), the rest give a uniform in [0, 1).
inline double ziggurat_uniform(std::uint64_t u) {
  return static_cast<double>((u & ~(std::uint64_t{1} << 11)) >> 8) * 0x1.0p-56;
}

template <class Engine>
[[gnu::noinline]] double normal_rest(Engine& eng, double x, int i, int sign) {
  using Table = boost::random::detail::normal_table<double>;
  const double* const table_x = Table::table_x;
  const double* const table_y = Table::table_y;
  boost::random::detail::unit_normal_distribution<double> boost_normal;
  if (i == 0) return boost_normal.generate_tail(eng) * sign;
  // The wedge test of Boost's loop, for this try.
  const double y01 = boost::random::uniform_01<double>()(eng);
  const double y = table_y[i] + y01 * (table_y[i + 1] - table_y[i]);
  double y_above_ubound, y_above_lbound;
  if (table_x[i] >= 1) {
    y_above_ubound = (table_x[i] - table_x[i + 1]) * y01 - (table_x[i] - x);
    y_above_lbound = y - (table_y[i] + (table_x[i] - x) * table_y[i] * table_x[i]);
  } else {
    y_above_lbound = (table_x[i] - table_x[i + 1]) * y01 - (table_x[i] - x);
    y_above_ubound = y - (table_y[i] + (table_x[i] - x) * table_y[i] * table_x[i]);
  }
  if (y_above_ubound < 0 && (y_above_lbound < 0 || y < boost_normal.f(x))) return x * sign;
  // Rejected: Boost's loop starts a new try.
  return boost_normal(eng);
}

template <class Engine>
[[gnu::noinline]] double exponential_rest(Engine& eng, double x, int i) {
  using Table = boost::random::detail::exponential_table<double>;
  const double* const table_x = Table::table_x;
  const double* const table_y = Table::table_y;
  double shift = 0;
  // Boost's loop, entered after the fast test of its first try failed.
  for (bool first = true;; first = false) {
    if (!first) {
      const std::uint64_t u = eng();
      i = static_cast<int>(u & 0xff);
      x = ziggurat_uniform(u) * table_x[i];
      if (x < table_x[i + 1]) return shift + x;
    }
    if (i == 0) {
      shift += table_x[1];
    } else {
      const double y01 = boost::random::uniform_01<double>()(eng);
      const double y = table_y[i] + y01 * (table_y[i + 1] - table_y[i]);
      const double y_above_ubound = (table_x[i] - table_x[i + 1]) * y01 - (table_x[i] - x);
      const double y_above_lbound = y - (table_y[i + 1] + (table_x[i + 1] - x) * table_y[i + 1]);
      if (y_above_ubound < 0 && (y_above_lbound < 0 || y < std::exp(-x))) return x + shift;
    }
  }
}

}  // namespace rng_detail

template <class Engine>
[[gnu::always_inline]] inline double standard_normal(Engine& rng) {
  static_assert(std::is_same_v<typename Engine::result_type, std::uint64_t>, "a full-range 64-bit engine");
  draw_counter::on_draw(draw_counter::Draw::normal);
  const double* const table_x = boost::random::detail::normal_table<double>::table_x;
  const std::uint64_t u = rng();
  const int bucket = static_cast<int>(u & 0xff);
  const int sign = (bucket & 1) * 2 - 1, i = bucket >> 1;
  const double x = rng_detail::ziggurat_uniform(u) * table_x[i];
  if (x < table_x[i + 1]) return x * sign;
  return rng_detail::normal_rest(rng, x, i, sign);
}

template <class Engine>
[[gnu::always_inline]] inline double standard_exponential(Engine& rng) {
  static_assert(std::is_same_v<typename Engine::result_type, std::uint64_t>, "a full-range 64-bit engine");
  draw_counter::on_draw(draw_counter::Draw::exponential);
  const double* const table_x = boost::random::detail::exponential_table<double>::table_x;
  const std::uint64_t u = rng();
  const int i = static_cast<int>(u & 0xff);
  const double x = rng_detail::ziggurat_uniform(u) * table_x[i];
  if (x < table_x[i + 1]) return x;
  return rng_detail::exponential_rest(rng, x, i);
}

// U[0, 1) from the top 53 bits of one output: every multiple of 2^-53 equally likely. (Boost's
// uniform_01 takes the full 64-bit output through an unsigned conversion that costs about four
// times as much on x86-64 and gives the same distribution to within 2^-53.)
template <class Engine>
[[gnu::always_inline]] inline double uniform01(Engine& rng) {
  draw_counter::on_draw(draw_counter::Draw::uniform);
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Uniform integer in [0, n), n >= 1, exactly: Lemire's multiply-and-reject (ACM TOMACS 2019),
// which needs a division only in the rare rejection step.
template <class Engine>
std::uint64_t uniform_below(Engine& rng, std::uint64_t n) {
  draw_counter::on_draw(draw_counter::Draw::integer);
  __extension__ using Wide = unsigned __int128;
  Wide m = static_cast<Wide>(rng()) * n;
  auto low = static_cast<std::uint64_t>(m);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<Wide>(rng()) * n;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

}  // namespace trialsim
