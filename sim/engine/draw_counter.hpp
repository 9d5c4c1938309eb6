#pragma once
// Optional counts of random-number use, for the benchmarks (bench/perf.cpp: the random-number
// floor of a scenario).
//
// TrialKey::unit (sim/engine/rng.hpp) calls on_key() for every unit key it derives, Stream calls
// on_output() for every 64-bit value it returns, and the draw helpers of sim/engine/rng.hpp
// (standard_normal, standard_exponential, uniform01, uniform_below) call on_draw() with their
// type; the draws of many units at once (sim/engine/draws.hpp) count theirs with on_keys() and
// on_draws(). Unless TRIALSIM_COUNT_DRAWS is defined, all are empty inline functions and a build is
// exactly what it would be without them. With the macro defined (the trialsim_core_counting
// library of bench/CMakeLists.txt), each call adds one to this thread's counters.
//
// The macro changes inline code of sim/engine/rng.hpp, so every translation unit of one program must be
// compiled with the same setting: never link trialsim_core_counting together with trialsim_core.
#include <array>
#include <cstddef>
#include <cstdint>

namespace trialsim::draw_counter {

#ifdef TRIALSIM_COUNT_DRAWS
inline constexpr bool enabled = true;
#else
inline constexpr bool enabled = false;
#endif

// The draw types priced separately by the floor.
enum class Draw : std::size_t { normal, exponential, uniform, integer };
inline constexpr std::size_t kDrawTypes = 4;

struct Counts {
  std::uint64_t keys = 0;     // unit keys derived (TrialKey::unit)
  std::uint64_t outputs = 0;  // uint64 values returned by Stream::operator()
  std::array<std::uint64_t, kDrawTypes> draws{};  // by Draw; other distributions (gamma,
                                                  // chi-squared in mi_delta) only as outputs
};

// The calling thread's counts. They stay 0 unless TRIALSIM_COUNT_DRAWS is defined.
inline thread_local Counts counts;

inline void on_key() {
#ifdef TRIALSIM_COUNT_DRAWS
  ++counts.keys;
#endif
}

inline void on_output() {
#ifdef TRIALSIM_COUNT_DRAWS
  ++counts.outputs;
#endif
}

inline void on_draw([[maybe_unused]] Draw d) {
#ifdef TRIALSIM_COUNT_DRAWS
  ++counts.draws[static_cast<std::size_t>(d)];
#endif
}

// The same for n keys, or n draws of one type with their first outputs, made at once
// (sim/engine/draws.hpp); outputs a draw takes beyond its first are counted where taken.
inline void on_keys([[maybe_unused]] std::size_t n) {
#ifdef TRIALSIM_COUNT_DRAWS
  counts.keys += n;
#endif
}

inline void on_draws([[maybe_unused]] Draw d, [[maybe_unused]] std::size_t n) {
#ifdef TRIALSIM_COUNT_DRAWS
  counts.draws[static_cast<std::size_t>(d)] += n;
  counts.outputs += n;
#endif
}

}  // namespace trialsim::draw_counter
