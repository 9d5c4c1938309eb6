#pragma once
// Draws of many units at once: the same slot of the same kind for every unit of a column of keys
// (the patients of one trial), and e^x of a column.
//
// Each function gives exactly what the scalar draw helpers of sim/engine/rng.hpp give on
// Stream(unit, kind, slot) for each unit: uniform01, standard_normal and standard_exponential
// (Boost.Random's ziggurats with Boost's tables, bit for bit). The first output of every unit's
// slot and the ziggurat's first try are computed eight units at a time where the machine has
// AVX-512 (F and DQ: 64-bit multiplies, conversions and gathers); the rare unit whose first try
// is rejected continues on its own Stream. Machines without AVX-512 run the portable loops. Both
// paths give the same bits, so a result never depends on the machine it was computed on
// (tests/unit/test_rng.cpp compares them).
#include "sim/engine/rng.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

// Loops over the patients of a trial, compiled three times (for x86-64-v4, which has AVX-512,
// x86-64-v3, which has AVX2, and any x86-64) and chosen when the program loads (GCC's
// target_clones). Each element's arithmetic
// is the same IEEE operations either way (no multiply-add fusing: -ffp-contract=off), so the
// results are the same bits. Not under ThreadSanitizer: the clones' resolver runs while the
// program is being relocated, before the sanitizer's runtime is ready, and the function-entry
// hook TSan puts in it would crash the program at load.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define TRIALSIM_VECTOR_LOOPS __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TRIALSIM_VECTOR_LOOPS
#endif
// Before such a loop over columns that do not overlap: GCC would otherwise version the loop on
// run-time alias checks, and gives up past ten of them.
#if defined(__GNUC__) && !defined(__clang__)
#define TRIALSIM_COLUMNS _Pragma("GCC ivdep")
#else
#define TRIALSIM_COLUMNS
#endif

namespace trialsim {

// The keys of many units, as two columns (key, mask).
struct UnitColumns {
  std::vector<std::uint64_t> key, mask;
  std::size_t size() const { return key.size(); }
  void resize(std::size_t n) {
    key.resize(n);
    mask.resize(n);
  }
  UnitKey operator[](std::size_t i) const { return {key[i], mask[i]}; }
};

namespace draws {

// Unit keys of units first, first + 1, ..., first + n - 1 of a replicate (TrialKey::unit).
void unit_keys(const TrialKey& trial, std::uint64_t first, std::size_t n, std::uint64_t* key, std::uint64_t* mask);

// For units 0 .. n - 1 of (key, mask), the draw of slot `slot` of `kind` into out[0 .. n - 1].
void uniform(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind, std::uint32_t slot,
             double* out);
void normal(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind, std::uint32_t slot,
            double* out);
void exponential(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind,
                 std::uint32_t slot, double* out);
inline void uniform(const UnitColumns& u, std::size_t n, StreamKind kind, std::uint32_t slot, double* out) {
  uniform(u.key.data(), u.mask.data(), n, kind, slot, out);
}
inline void normal(const UnitColumns& u, std::size_t n, StreamKind kind, std::uint32_t slot, double* out) {
  normal(u.key.data(), u.mask.data(), n, kind, slot, out);
}
inline void exponential(const UnitColumns& u, std::size_t n, StreamKind kind, std::uint32_t slot, double* out) {
  exponential(u.key.data(), u.mask.data(), n, kind, slot, out);
}

// n standard normals (exponentials) from one stream in sequence: the values, in order, that n
// calls of standard_normal (standard_exponential) would give, and the stream left where they
// would leave it. The vector path draws eight outputs at a time and keeps the values up to the
// first whose fast test fails, which continues on the stream as the scalar draw does.
void normal_sequence(Stream& rng, std::size_t n, double* out);
void exponential_sequence(Stream& rng, std::size_t n, double* out);

// e^x, to within about one unit in the last place, the same bits on every code path: Cody and
// Waite's reduction x = k ln 2 + r with ln 2 in two parts (Cody & Waite, Software Manual for the
// Elementary Functions, 1980), |r| <= ln(2)/2, e^r by its Taylor polynomial of degree 13 (the
// remainder is below 5e-18) evaluated by Estrin's scheme, and 2^k applied in two steps so that results down to the subnormal
// range are reached. +inf above 709.78, 0 below -745.13, NaN for NaN. Unlike the C library's
// exp, whose implementation varies with the CPU (glibc has separate FMA and SSE2 versions), the
// value is a fixed sequence of IEEE operations.
double exp(double x);
void exp(const double* x, std::size_t n, double* out);

// The code path this machine runs: "avx512" or "portable".
std::string_view isa();

// The paths themselves, for tests that compare them.
namespace portable {
void unit_keys(const TrialKey& trial, std::uint64_t first, std::size_t n, std::uint64_t* key, std::uint64_t* mask);
void uniform(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind, std::uint32_t slot,
             double* out);
void normal(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind, std::uint32_t slot,
            double* out);
void exponential(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind,
                 std::uint32_t slot, double* out);
void exp(const double* x, std::size_t n, double* out);
void normal_sequence(Stream& rng, std::size_t n, double* out);
void exponential_sequence(Stream& rng, std::size_t n, double* out);
}  // namespace portable
namespace avx512 {
// Whether this machine (CPU and operating system) runs AVX-512 F and DQ: only then may the
// functions below be called.
bool available();
void unit_keys(const TrialKey& trial, std::uint64_t first, std::size_t n, std::uint64_t* key, std::uint64_t* mask);
void uniform(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind, std::uint32_t slot,
             double* out);
void normal(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind, std::uint32_t slot,
            double* out);
void exponential(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind,
                 std::uint32_t slot, double* out);
void exp(const double* x, std::size_t n, double* out);
void normal_sequence(Stream& rng, std::size_t n, double* out);
void exponential_sequence(Stream& rng, std::size_t n, double* out);
}  // namespace avx512

}  // namespace draws
}  // namespace trialsim
