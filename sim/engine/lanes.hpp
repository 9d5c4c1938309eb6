#pragma once
// Four doubles as one value of GCC's generic vectors: one 256-bit register in the x86-64-v4 and
// -v3 clones of the column loops (TRIALSIM_VECTOR_LOOPS), two SSE2 registers in the portable
// one, the same lane-wise IEEE operations either way. A sum kept in lanes (element i in lane
// i mod 4) and finished by lane_sum has an order fixed by the data alone, so the same bits on
// every machine.
#include <array>
#include <cstring>

namespace trialsim {

using Lanes = double __attribute__((vector_size(32)));
// The result of comparing Lanes: each lane all ones (true) or zero; `mask ? a : b` selects lane
// by lane.
using LaneMask = long long __attribute__((vector_size(32)));

// Lanes of one value.
[[gnu::always_inline]] inline Lanes splat(double v) { return Lanes{v, v, v, v}; }

// Whether every lane of a mask is true.
[[gnu::always_inline]] inline bool all_lanes(LaneMask m) { return (m[0] & m[1] & m[2] & m[3]) != 0; }

[[gnu::always_inline]] inline Lanes load_lanes(const double* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

[[gnu::always_inline]] inline std::array<double, 4> lanes_of(Lanes v) {
  std::array<double, 4> a;
  std::memcpy(a.data(), &v, sizeof v);
  return a;
}

// The lanes added pairwise: (l0 + l1) + (l2 + l3).
inline double pairwise(const std::array<double, 4>& l) { return (l[0] + l[1]) + (l[2] + l[3]); }
[[gnu::always_inline]] inline double lane_sum(Lanes v) { return pairwise(lanes_of(v)); }

}  // namespace trialsim
