#pragma once
// Optional counts of random-stream use, for the benchmarks (bench/perf.cpp: the random-number
// floor of a scenario).
//
// Stream (sim/rng.hpp) calls on_stream() when it is keyed and on_output() for every 64-bit
// value it returns. Unless TRIALSIM_COUNT_DRAWS is defined, both are empty inline functions and
// a build is exactly what it would be without them. With the macro defined (the
// trialsim_core_counting library of bench/CMakeLists.txt), each call adds one to this thread's
// counters. Copies of a Stream are not counted as streams: they are not keyed anew.
//
// The macro changes inline code of sim/rng.hpp, so every translation unit of one program must be
// compiled with the same setting: never link trialsim_core_counting together with trialsim_core.
#include <cstdint>

namespace trialsim::draw_counter {

#ifdef TRIALSIM_COUNT_DRAWS
inline constexpr bool enabled = true;
#else
inline constexpr bool enabled = false;
#endif

struct Counts {
  std::uint64_t streams = 0;  // Stream constructions (keyings)
  std::uint64_t outputs = 0;  // uint64 values returned by Stream::operator()
};

// The calling thread's counts. They stay 0 unless TRIALSIM_COUNT_DRAWS is defined.
inline thread_local Counts counts;

inline void on_stream() {
#ifdef TRIALSIM_COUNT_DRAWS
  ++counts.streams;
#endif
}

inline void on_output() {
#ifdef TRIALSIM_COUNT_DRAWS
  ++counts.outputs;
#endif
}

}  // namespace trialsim::draw_counter
