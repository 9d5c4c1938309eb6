#include "sim/engine/draws.hpp"

#include <boost/random/exponential_distribution.hpp>
#include <boost/random/normal_distribution.hpp>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TRIALSIM_HAVE_AVX512 1
#else
#define TRIALSIM_HAVE_AVX512 0
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace trialsim::draws {
namespace {

using rng_detail::kGamma;
using rng_detail::kGammaMask;
using rng_detail::mix64;

// Boost's ziggurat tables (the same the scalar helpers read).
const double* normal_x() { return boost::random::detail::normal_table<double>::table_x; }
const double* exponential_x() { return boost::random::detail::exponential_table<double>::table_x; }

// The counter offset of output 0 of a slot, times gamma (the stream adds key + counter * gamma).
std::uint64_t slot_offset(StreamKind kind, std::uint32_t slot) { return Stream::counter(kind, slot) * kGamma; }

// The ziggurat's continuations for a unit whose first try was rejected, on the unit's own stream
// after output 0 of the slot: what standard_normal / standard_exponential do after their fast
// test fails.
double normal_rest(std::uint64_t key, std::uint64_t mask, StreamKind kind, std::uint32_t slot, std::uint64_t u) {
  const int bucket = static_cast<int>(u & 0xff);
  const int sign = (bucket & 1) * 2 - 1, i = bucket >> 1;
  const double x = rng_detail::ziggurat_uniform(u) * normal_x()[i];
  Stream rest(UnitKey{key, mask}, kind, slot, 1);
  return rng_detail::normal_rest(rest, x, i, sign);
}
double exponential_rest(std::uint64_t key, std::uint64_t mask, StreamKind kind, std::uint32_t slot, std::uint64_t u) {
  const int i = static_cast<int>(u & 0xff);
  const double x = rng_detail::ziggurat_uniform(u) * exponential_x()[i];
  Stream rest(UnitKey{key, mask}, kind, slot, 1);
  return rng_detail::exponential_rest(rest, x, i);
}

// Constants of exp (see draws.hpp). ln 2 split as in fdlibm's e_exp.c: kLn2Hi has its low 21
// bits zero, so k * kLn2Hi is exact for |k| < 2^11.
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kShifter = 0x1.8p52;  // x + kShifter - kShifter rounds x to an integer
constexpr double kExpMax = 709.782712893384;     // above: +inf
constexpr double kExpMin = -745.1332191019412;   // below: 0
// 1/j! for j = 13 down to 0: kTaylor[13 - j] = 1/j!.
constexpr double kTaylor[14] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,      1.0 / 720.0,
                                1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,         0.5,
                                1.0,                1.0};

// e^r for |r| <= ln(2)/2 by Estrin's scheme (pairs of terms, then pairs of pairs, with r^2, r^4
// and r^8; Estrin 1960): the same operations in the same order as the vector version below, with
// a dependency chain of six steps instead of Horner's fourteen.
inline double taylor(double r) {
  const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  const double b0 = kTaylor[13] + kTaylor[12] * r, b1 = kTaylor[11] + kTaylor[10] * r;
  const double b2 = kTaylor[9] + kTaylor[8] * r, b3 = kTaylor[7] + kTaylor[6] * r;
  const double b4 = kTaylor[5] + kTaylor[4] * r, b5 = kTaylor[3] + kTaylor[2] * r;
  const double b6 = kTaylor[1] + kTaylor[0] * r;
  const double c0 = b0 + b1 * r2, c1 = b2 + b3 * r2, c2 = b4 + b5 * r2;
  const double d0 = c0 + c1 * r4, d1 = c2 + b6 * r4;
  return d0 + d1 * r8;
}

double pow2(std::int64_t k) {
  const std::uint64_t bits = static_cast<std::uint64_t>(k + 1023) << 52;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

}  // namespace

double exp(double x) {
  if (std::isnan(x)) return x;
  if (!(x < kExpMax)) return std::numeric_limits<double>::infinity();
  if (x < kExpMin) return 0.0;
  const double k = (x * kLog2e + kShifter) - kShifter;
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  const double p = taylor(r);
  const auto ki = static_cast<std::int64_t>(k);
  const std::int64_t k1 = ki >> 1;  // NOLINT(hicpp-signed-bitwise): arithmetic shift, floor(k / 2)
  return p * pow2(k1) * pow2(ki - k1);
}

namespace portable {

void unit_keys(const TrialKey& trial, std::uint64_t first, std::size_t n, std::uint64_t* key, std::uint64_t* mask) {
  draw_counter::on_keys(n);
  const std::uint64_t k0 = trial.k0(), k1 = trial.k1();
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t index = first + i;
    key[i] = mix64(k0 + index * kGamma);
    mask[i] = mix64(k1 + index * kGammaMask);
  }
}

void uniform(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind, std::uint32_t slot,
             double* out) {
  draw_counter::on_draws(draw_counter::Draw::uniform, n);
  const std::uint64_t c = slot_offset(kind, slot);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<double>((mix64(key[i] + c) ^ mask[i]) >> 11) * 0x1.0p-53;
}

void normal(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind, std::uint32_t slot,
            double* out) {
  draw_counter::on_draws(draw_counter::Draw::normal, n);
  const std::uint64_t c = slot_offset(kind, slot);
  const double* const tx = normal_x();
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t u = mix64(key[i] + c) ^ mask[i];
    const int bucket = static_cast<int>(u & 0xff);
    const int sign = (bucket & 1) * 2 - 1, j = bucket >> 1;
    const double x = rng_detail::ziggurat_uniform(u) * tx[j];
    out[i] = x < tx[j + 1] ? x * sign : normal_rest(key[i], mask[i], kind, slot, u);
  }
}

void exponential(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind,
                 std::uint32_t slot, double* out) {
  draw_counter::on_draws(draw_counter::Draw::exponential, n);
  const std::uint64_t c = slot_offset(kind, slot);
  const double* const tx = exponential_x();
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t u = mix64(key[i] + c) ^ mask[i];
    const int j = static_cast<int>(u & 0xff);
    const double x = rng_detail::ziggurat_uniform(u) * tx[j];
    out[i] = x < tx[j + 1] ? x : exponential_rest(key[i], mask[i], kind, slot, u);
  }
}

void exp(const double* x, std::size_t n, double* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = draws::exp(x[i]);
}

void normal_sequence(Stream& rng, std::size_t n, double* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = standard_normal(rng);
}

void exponential_sequence(Stream& rng, std::size_t n, double* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = standard_exponential(rng);
}

}  // namespace portable

#if TRIALSIM_HAVE_AVX512
// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*(), which its
// -Wmaybe-uninitialized reports inside the header once inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace avx512 {
namespace {

#define TRIALSIM_AVX512 __attribute__((target("avx512f,avx512dq")))

TRIALSIM_AVX512 inline __m512i mix(__m512i z) {
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64(static_cast<long long>(0xbf58476d1ce4e5b9ULL)));
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64(static_cast<long long>(0x94d049bb133111ebULL)));
  return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

// Lanes [i, i + 8) that exist (i + lane < n).
TRIALSIM_AVX512 inline __mmask8 lanes(std::size_t i, std::size_t n) {
  const std::size_t left = n - i;
  return left >= 8 ? static_cast<__mmask8>(0xff) : static_cast<__mmask8>((1u << left) - 1u);
}

// Output 0 of the slot for lanes [i, i + 8).
TRIALSIM_AVX512 inline __m512i first_output(const std::uint64_t* key, const std::uint64_t* mask, std::size_t i,
                                            __mmask8 m, __m512i offset) {
  const __m512i k = _mm512_maskz_loadu_epi64(m, key + i);
  const __m512i s = _mm512_maskz_loadu_epi64(m, mask + i);
  return _mm512_xor_si512(mix(_mm512_add_epi64(k, offset)), s);
}

// rng_detail::ziggurat_uniform of each lane: bits 8..63 without bit 11, as a multiple of 2^-56.
TRIALSIM_AVX512 inline __m512d ziggurat_uniform(__m512i u) {
  const __m512i bits = _mm512_srli_epi64(_mm512_andnot_si512(_mm512_set1_epi64(1LL << 11), u), 8);
  return _mm512_mul_pd(_mm512_cvtepu64_pd(bits), _mm512_set1_pd(0x1.0p-56));
}

// kTaylor[a] + kTaylor[b] r, lane by lane (taylor's pairs).
TRIALSIM_AVX512 inline __m512d taylor_pair(int a, int b, __m512d r) {
  return _mm512_add_pd(_mm512_set1_pd(kTaylor[a]), _mm512_mul_pd(_mm512_set1_pd(kTaylor[b]), r));
}

}  // namespace

bool available() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return yes;
}

TRIALSIM_AVX512 void unit_keys(const TrialKey& trial, std::uint64_t first, std::size_t n, std::uint64_t* key,
                               std::uint64_t* mask) {
  draw_counter::on_keys(n);
  const __m512i k0 = _mm512_set1_epi64(static_cast<long long>(trial.k0()));
  const __m512i k1 = _mm512_set1_epi64(static_cast<long long>(trial.k1()));
  const __m512i g = _mm512_set1_epi64(static_cast<long long>(kGamma));
  const __m512i gm = _mm512_set1_epi64(static_cast<long long>(kGammaMask));
  const __m512i step = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  for (std::size_t i = 0; i < n; i += 8) {
    const __mmask8 m = lanes(i, n);
    const __m512i index = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(first + i)), step);
    _mm512_mask_storeu_epi64(key + i, m, mix(_mm512_add_epi64(k0, _mm512_mullo_epi64(index, g))));
    _mm512_mask_storeu_epi64(mask + i, m, mix(_mm512_add_epi64(k1, _mm512_mullo_epi64(index, gm))));
  }
}

TRIALSIM_AVX512 void uniform(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind,
                             std::uint32_t slot, double* out) {
  draw_counter::on_draws(draw_counter::Draw::uniform, n);
  const __m512i offset = _mm512_set1_epi64(static_cast<long long>(slot_offset(kind, slot)));
  for (std::size_t i = 0; i < n; i += 8) {
    const __mmask8 m = lanes(i, n);
    const __m512i u = first_output(key, mask, i, m, offset);
    const __m512d v = _mm512_mul_pd(_mm512_cvtepu64_pd(_mm512_srli_epi64(u, 11)), _mm512_set1_pd(0x1.0p-53));
    _mm512_mask_storeu_pd(out + i, m, v);
  }
}

// The ziggurat's first try on eight outputs u, as standard_normal (kNormal) or
// standard_exponential makes it: the value if the fast test passes (the normal with its sign),
// the lanes of m whose fast test fails, and x, from which the continuation goes on.
struct FirstTry {
  __m512d value, x;
  __mmask8 rejected;
};

template <bool kNormal>
TRIALSIM_AVX512 inline FirstTry first_try(__m512i u, __mmask8 m) {
  const __m512i bucket = _mm512_and_si512(u, _mm512_set1_epi64(0xff));
  // The normal's bucket: the low bit the sign, the rest the layer.
  const __m512i layer = kNormal ? _mm512_srli_epi64(bucket, 1) : bucket;
  const double* const tx = kNormal ? normal_x() : exponential_x();
  const __m512d x0 = _mm512_i64gather_pd(layer, tx, 8);
  const __m512d x1 = _mm512_i64gather_pd(layer, tx + 1, 8);
  const __m512d x = _mm512_mul_pd(ziggurat_uniform(u), x0);
  __m512d value = x;
  if (kNormal) {
    // Negative where the bucket's low bit is 0 (sign -1): flip the sign bit, as x * -1 does.
    const __mmask8 negative = _mm512_testn_epi64_mask(bucket, _mm512_set1_epi64(1));
    const __m512i sign_bit = _mm512_set1_epi64(static_cast<long long>(0x8000000000000000ULL));
    value = _mm512_castsi512_pd(_mm512_mask_xor_epi64(_mm512_castpd_si512(x), negative, _mm512_castpd_si512(x), sign_bit));
  }
  return {value, x, _mm512_mask_cmp_pd_mask(m, x, x1, _CMP_NLT_UQ)};
}

// The normal and exponential columns take the ziggurat's fast path in the vector loop and list
// the lanes it rejects (about 2.8% of normals) in registers compressed to the front, which a
// second, scalar pass continues on each lane's own stream: no branch in the vector loop, and the
// continuations run back to back. Chunks of kChunk values bound the lists (no allocation).
constexpr std::size_t kChunk = 256;

template <bool kNormal>
TRIALSIM_AVX512 void ziggurat_column(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n,
                                     StreamKind kind, std::uint32_t slot, double* out) {
  draw_counter::on_draws(kNormal ? draw_counter::Draw::normal : draw_counter::Draw::exponential, n);
  const __m512i offset = _mm512_set1_epi64(static_cast<long long>(slot_offset(kind, slot)));
  const __m512i step = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  std::uint64_t rejected_u[kChunk + 8], rejected_at[kChunk + 8];
  for (std::size_t chunk = 0; chunk < n; chunk += kChunk) {
    const std::size_t end = std::min(n, chunk + kChunk);
    std::size_t rejected = 0;
    for (std::size_t i = chunk; i < end; i += 8) {
      const __mmask8 m = lanes(i, end);
      const __m512i u = first_output(key, mask, i, m, offset);
      const FirstTry f = first_try<kNormal>(u, m);
      _mm512_mask_storeu_pd(out + i, m, f.value);
      const __m512i at = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(i)), step);
      _mm512_storeu_si512(rejected_u + rejected, _mm512_maskz_compress_epi64(f.rejected, u));
      _mm512_storeu_si512(rejected_at + rejected, _mm512_maskz_compress_epi64(f.rejected, at));
      rejected += static_cast<std::size_t>(__builtin_popcount(f.rejected));
    }
    for (std::size_t j = 0; j < rejected; ++j) {
      const auto i = static_cast<std::size_t>(rejected_at[j]);
      out[i] = kNormal ? normal_rest(key[i], mask[i], kind, slot, rejected_u[j])
                       : exponential_rest(key[i], mask[i], kind, slot, rejected_u[j]);
    }
  }
}

TRIALSIM_AVX512 void normal(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind,
                            std::uint32_t slot, double* out) {
  ziggurat_column<true>(key, mask, n, kind, slot, out);
}

TRIALSIM_AVX512 void exponential(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind,
                                 std::uint32_t slot, double* out) {
  ziggurat_column<false>(key, mask, n, kind, slot, out);
}

TRIALSIM_AVX512 void exp(const double* x, std::size_t n, double* out) {
  const __m512d log2e = _mm512_set1_pd(kLog2e), shifter = _mm512_set1_pd(kShifter);
  const __m512d ln2_hi = _mm512_set1_pd(kLn2Hi), ln2_lo = _mm512_set1_pd(kLn2Lo);
  const __m512d lo = _mm512_set1_pd(kExpMin), hi = _mm512_set1_pd(kExpMax);
  const __m512i bias = _mm512_set1_epi64(1023);
  for (std::size_t i = 0; i < n; i += 8) {
    const __mmask8 m = lanes(i, n);
    const __m512d v = _mm512_maskz_loadu_pd(m, x + i);
    // Clamped into the finite range for the arithmetic; the ends are set below.
    const __m512d c = _mm512_min_pd(_mm512_max_pd(v, lo), hi);
    const __m512d k = _mm512_sub_pd(_mm512_add_pd(_mm512_mul_pd(c, log2e), shifter), shifter);
    const __m512d r = _mm512_sub_pd(_mm512_sub_pd(c, _mm512_mul_pd(k, ln2_hi)), _mm512_mul_pd(k, ln2_lo));
    // taylor(r), lane by lane.
    const __m512d r2 = _mm512_mul_pd(r, r), r4 = _mm512_mul_pd(r2, r2), r8 = _mm512_mul_pd(r4, r4);
    const __m512d b0 = taylor_pair(13, 12, r), b1 = taylor_pair(11, 10, r), b2 = taylor_pair(9, 8, r),
                  b3 = taylor_pair(7, 6, r), b4 = taylor_pair(5, 4, r), b5 = taylor_pair(3, 2, r),
                  b6 = taylor_pair(1, 0, r);
    const __m512d c0 = _mm512_add_pd(b0, _mm512_mul_pd(b1, r2)), c1 = _mm512_add_pd(b2, _mm512_mul_pd(b3, r2));
    const __m512d c2 = _mm512_add_pd(b4, _mm512_mul_pd(b5, r2));
    const __m512d d0 = _mm512_add_pd(c0, _mm512_mul_pd(c1, r4)), d1 = _mm512_add_pd(c2, _mm512_mul_pd(b6, r4));
    const __m512d p = _mm512_add_pd(d0, _mm512_mul_pd(d1, r8));
    const __m512i ki = _mm512_cvtpd_epi64(k);
    const __m512i k1 = _mm512_srai_epi64(ki, 1);
    const __m512i k2 = _mm512_sub_epi64(ki, k1);
    const __m512d s1 = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(k1, bias), 52));
    const __m512d s2 = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(k2, bias), 52));
    __m512d y = _mm512_mul_pd(_mm512_mul_pd(p, s1), s2);
    y = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, hi, _CMP_NLT_UQ), y,
                             _mm512_set1_pd(std::numeric_limits<double>::infinity()));
    y = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, lo, _CMP_LT_OQ), y, _mm512_setzero_pd());
    y = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q), y, v);
    _mm512_mask_storeu_pd(out + i, m, y);
  }
}

// Outputs position .. position + 7 of a stream.
TRIALSIM_AVX512 inline __m512i next_eight(const Stream& rng) {
  const __m512i lane_gamma = _mm512_mullo_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0),
                                                _mm512_set1_epi64(static_cast<long long>(kGamma)));
  const std::uint64_t base = rng.key() + rng.position() * kGamma;
  const __m512i z = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(base)), lane_gamma);
  return _mm512_xor_si512(mix(z), _mm512_set1_epi64(static_cast<long long>(rng.mask())));
}

// n draws in sequence from one stream: eight outputs at a time, the values up to the first
// rejected fast test kept, and that draw continued on the stream as the scalar draw does.
template <bool kNormal>
TRIALSIM_AVX512 void ziggurat_sequence(Stream& rng, std::size_t n, double* out) {
  draw_counter::on_draws(kNormal ? draw_counter::Draw::normal : draw_counter::Draw::exponential, n);
  alignas(64) std::uint64_t us[8];
  alignas(64) double xs[8];
  for (std::size_t i = 0; i < n;) {
    const __mmask8 m = lanes(i, n);
    const __m512i u = next_eight(rng);
    const FirstTry f = first_try<kNormal>(u, m);
    const auto rejected = static_cast<unsigned>(f.rejected);
    const auto take = static_cast<unsigned>(rejected != 0 ? __builtin_ctz(rejected) : __builtin_popcount(m));
    _mm512_mask_storeu_pd(out + i, static_cast<__mmask8>((1u << take) - 1u), f.value);
    i += take;
    rng.skip(take);
    if (rejected != 0) {
      // This draw's first output is taken; Boost's loop goes on from the next.
      _mm512_store_si512(us, u);
      _mm512_store_pd(xs, f.x);
      rng.skip(1);
      const int bucket = static_cast<int>(us[take] & 0xff);
      out[i++] = kNormal ? rng_detail::normal_rest(rng, xs[take], bucket >> 1, (bucket & 1) * 2 - 1)
                         : rng_detail::exponential_rest(rng, xs[take], bucket);
    }
  }
}

TRIALSIM_AVX512 void normal_sequence(Stream& rng, std::size_t n, double* out) { ziggurat_sequence<true>(rng, n, out); }

TRIALSIM_AVX512 void exponential_sequence(Stream& rng, std::size_t n, double* out) {
  ziggurat_sequence<false>(rng, n, out);
}

#undef TRIALSIM_AVX512

}  // namespace avx512
#pragma GCC diagnostic pop
#else
namespace avx512 {
bool available() { return false; }
void unit_keys(const TrialKey& t, std::uint64_t f, std::size_t n, std::uint64_t* k, std::uint64_t* m) {
  portable::unit_keys(t, f, n, k, m);
}
void uniform(const std::uint64_t* k, const std::uint64_t* m, std::size_t n, StreamKind kind, std::uint32_t s, double* o) {
  portable::uniform(k, m, n, kind, s, o);
}
void normal(const std::uint64_t* k, const std::uint64_t* m, std::size_t n, StreamKind kind, std::uint32_t s, double* o) {
  portable::normal(k, m, n, kind, s, o);
}
void exponential(const std::uint64_t* k, const std::uint64_t* m, std::size_t n, StreamKind kind, std::uint32_t s,
                 double* o) {
  portable::exponential(k, m, n, kind, s, o);
}
void exp(const double* x, std::size_t n, double* o) { portable::exp(x, n, o); }
void normal_sequence(Stream& rng, std::size_t n, double* o) { portable::normal_sequence(rng, n, o); }
void exponential_sequence(Stream& rng, std::size_t n, double* o) { portable::exponential_sequence(rng, n, o); }
}  // namespace avx512
#endif

void unit_keys(const TrialKey& trial, std::uint64_t first, std::size_t n, std::uint64_t* key, std::uint64_t* mask) {
  if (avx512::available()) {
    avx512::unit_keys(trial, first, n, key, mask);
  } else {
    portable::unit_keys(trial, first, n, key, mask);
  }
}
void uniform(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind, std::uint32_t slot,
             double* out) {
  if (avx512::available()) {
    avx512::uniform(key, mask, n, kind, slot, out);
  } else {
    portable::uniform(key, mask, n, kind, slot, out);
  }
}
void normal(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind, std::uint32_t slot,
            double* out) {
  if (avx512::available()) {
    avx512::normal(key, mask, n, kind, slot, out);
  } else {
    portable::normal(key, mask, n, kind, slot, out);
  }
}
void exponential(const std::uint64_t* key, const std::uint64_t* mask, std::size_t n, StreamKind kind,
                 std::uint32_t slot, double* out) {
  if (avx512::available()) {
    avx512::exponential(key, mask, n, kind, slot, out);
  } else {
    portable::exponential(key, mask, n, kind, slot, out);
  }
}
void exp(const double* x, std::size_t n, double* out) {
  if (avx512::available()) {
    avx512::exp(x, n, out);
  } else {
    portable::exp(x, n, out);
  }
}

void normal_sequence(Stream& rng, std::size_t n, double* out) {
  if (avx512::available()) {
    avx512::normal_sequence(rng, n, out);
  } else {
    portable::normal_sequence(rng, n, out);
  }
}
void exponential_sequence(Stream& rng, std::size_t n, double* out) {
  if (avx512::available()) {
    avx512::exponential_sequence(rng, n, out);
  } else {
    portable::exponential_sequence(rng, n, out);
  }
}

std::string_view isa() { return avx512::available() ? "avx512" : "portable"; }

}  // namespace trialsim::draws
