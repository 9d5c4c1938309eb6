#include "sim/engine/rng.hpp"

#include <boost/random/exponential_distribution.hpp>
#include <boost/random/normal_distribution.hpp>
#include <boost/random/uniform_01.hpp>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

using namespace trialsim;

namespace {
std::vector<std::uint64_t> first(Stream s, int n) {
  std::vector<std::uint64_t> v;
  for (int i = 0; i < n; ++i) v.push_back(s());
  return v;
}
}  // namespace

TEST_CASE("a stream is a pure function of seed, replicate, kind and index", "[rng]") {
  CHECK(first(Stream(7, 3, StreamKind::dropout, 11), 9) == first(Stream(7, 3, StreamKind::dropout, 11), 9));
  const auto base = first(Stream(7, 3, StreamKind::dropout, 11), 9);
  CHECK(base != first(Stream(8, 3, StreamKind::dropout, 11), 9));
  CHECK(base != first(Stream(7, 4, StreamKind::dropout, 11), 9));
  CHECK(base != first(Stream(7, 3, StreamKind::treatment, 11), 9));
  CHECK(base != first(Stream(7, 3, StreamKind::dropout, 12), 9));
}

TEST_CASE("seed and replicate do not collide the way seed + replicate would", "[rng]") {
  CHECK(first(Stream(1, 2, StreamKind::population), 4) != first(Stream(2, 1, StreamKind::population), 4));
  CHECK(first(Stream(0, 3, StreamKind::population), 4) != first(Stream(3, 0, StreamKind::population), 4));
}

TEST_CASE("stream output is uniform: mean and variance of U(0,1) within 4 MC SE", "[rng]") {
  Stream s(20190401, 0, StreamKind::analysis);
  boost::random::uniform_01<double> u;
  const int n = 200000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double x = u(s);
    sum += x;
    sum2 += x * x;
  }
  const double mean = sum / n;
  CHECK(std::abs(mean - 0.5) < 4 * std::sqrt(1.0 / 12 / n));
  const double var = sum2 / n - mean * mean;
  // Var of (U - 1/2)^2 is 1/180; the variance estimate's SE is sqrt(1/180/n).
  CHECK(std::abs(var - 1.0 / 12) < 4 * std::sqrt(1.0 / 180 / n));
}

TEST_CASE("the inlined ziggurats give Boost.Random's normal and exponential draws bit for bit", "[rng]") {
  Stream a(20190401, 9, StreamKind::analysis, 3), b(20190401, 9, StreamKind::analysis, 3);
  boost::random::normal_distribution<double> normal;
  boost::random::exponential_distribution<double> expo;
  long mismatches = 0;
  for (int i = 0; i < 1000000; ++i) {
    mismatches += standard_normal(a) != normal(b);
    mismatches += standard_exponential(a) != expo(b);
  }
  CHECK(mismatches == 0);
  CHECK(a() == b());  // the same number of outputs taken, tails and wedges included
}

TEST_CASE("uniform_below is uniform below n and uniform01 on the unit interval", "[rng]") {
  Stream s(3, 1, StreamKind::randomization);
  for (const std::uint64_t n : {1u, 2u, 3u, 6u, 7u}) {
    std::vector<int> count(n, 0);
    const int draws = 60000;
    for (int i = 0; i < draws; ++i) {
      const std::uint64_t k = uniform_below(s, n);
      REQUIRE(k < n);
      ++count[k];
    }
    // Each count is Binomial(draws, 1/n): within 4 SDs.
    const double p = 1.0 / static_cast<double>(n), sd = std::sqrt(draws * p * (1 - p));
    for (const int c : count) CHECK(std::abs(c - draws * p) <= 4 * sd + 1e-9);
  }
  double sum = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double u = uniform01(s);
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(std::abs(sum / n - 0.5) < 4 * std::sqrt(1.0 / 12 / n));
}

TEST_CASE("streams of one unit and of neighbouring units are uncorrelated", "[rng]") {
  // Lag-0 correlation of the first normal draw between kinds of one patient and between
  // consecutive patients of one kind, over 100 000 patients: |r| < 4 / sqrt(n).
  const TrialKey key(11, 5);
  const int n = 100000;
  double sxy_kind = 0, sxy_next = 0, sxx = 0;
  double prev = 0;
  for (int i = 0; i < n; ++i) {
    const UnitKey u = key.unit(static_cast<std::uint64_t>(i));
    Stream pop(u, StreamKind::population), meas(u, StreamKind::measurement);
    const double x = standard_normal(pop), y = standard_normal(meas);
    sxy_kind += x * y;
    if (i > 0) sxy_next += x * prev;
    sxx += x * x;
    prev = x;
  }
  CHECK(std::abs(sxy_kind / sxx) < 4 / std::sqrt(n));
  CHECK(std::abs(sxy_next / sxx) < 4 / std::sqrt(n));
}

TEST_CASE("a stream keyed from a unit key is the stream keyed from scratch", "[rng]") {
  const TrialKey key(7, 3);
  Stream a(key.unit(11), StreamKind::dropout), b(7, 3, StreamKind::dropout, 11);
  for (int i = 0; i < 10; ++i) CHECK(a() == b());
}

#include "sim/engine/draws.hpp"

namespace {
// The keys of n patients of replicate (seed, r), one at a time.
UnitColumns patient_keys(std::uint64_t seed, std::uint64_t r, std::size_t n) {
  UnitColumns u;
  u.resize(n);
  const TrialKey key(seed, r);
  for (std::size_t i = 0; i < n; ++i) {
    const UnitKey k = key.unit(i);
    u.key[i] = k.key;
    u.mask[i] = k.mask;
  }
  return u;
}
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }
}  // namespace

TEST_CASE("keys and draws of many units at once are each unit's own stream's, on every code path", "[rng]") {
  // 100 003 units: whole groups of eight and a partial one; about 2% of the normal and 1% of
  // the exponential draws need the ziggurat's second try, so the continuations are exercised.
  const std::size_t n = 100003;
  const UnitColumns expect = patient_keys(20190401, 17, n);
  const TrialKey trial(20190401, 17);
  const bool vector = draws::avx512::available();
  INFO("this machine's path: " << draws::isa());
  for (const bool use_vector : {false, true}) {
    if (use_vector && !vector) continue;
    UnitColumns u;
    u.resize(n);
    (use_vector ? draws::avx512::unit_keys : draws::portable::unit_keys)(trial, 0, n, u.key.data(), u.mask.data());
    REQUIRE(u.key == expect.key);
    REQUIRE(u.mask == expect.mask);
    std::vector<double> uni(n), nor(n), ex(n);
    (use_vector ? draws::avx512::uniform : draws::portable::uniform)(u.key.data(), u.mask.data(), n, StreamKind::population, 7, uni.data());
    (use_vector ? draws::avx512::normal : draws::portable::normal)(u.key.data(), u.mask.data(), n, StreamKind::measurement, 3, nor.data());
    (use_vector ? draws::avx512::exponential : draws::portable::exponential)(u.key.data(), u.mask.data(), n, StreamKind::dropout, 0, ex.data());
    long mismatches = 0;
    for (std::size_t i = 0; i < n; ++i) {
      Stream su(u[i], StreamKind::population, 7), sn(u[i], StreamKind::measurement, 3), se(u[i], StreamKind::dropout, 0);
      mismatches += !same_bits(uni[i], uniform01(su));
      mismatches += !same_bits(nor[i], standard_normal(sn));
      mismatches += !same_bits(ex[i], standard_exponential(se));
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("sequences of draws from one stream are the scalar draws in order, on every code path", "[rng]") {
  // Lengths around the vector width, and enough draws that rejected first tries (about 2.8% of
  // normals, 1.2% of exponentials) fall at every lane and in runs.
  for (const bool use_vector : {false, true}) {
    if (use_vector && !draws::avx512::available()) continue;
    CAPTURE(use_vector);
    long mismatches = 0, draws_made = 0;
    for (std::uint64_t r = 0; r < 400; ++r) {
      for (const std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{9}, std::size_t{61}, std::size_t{500}}) {
        Stream a(11, r, StreamKind::analysis, n), b = a, c(12, r, StreamKind::analysis, n), d = c;
        std::vector<double> nor(n + 1), ex(n + 1);
        (use_vector ? draws::avx512::normal_sequence : draws::portable::normal_sequence)(a, n, nor.data());
        (use_vector ? draws::avx512::exponential_sequence : draws::portable::exponential_sequence)(c, n, ex.data());
        for (std::size_t i = 0; i < n; ++i) {
          mismatches += !same_bits(nor[i], standard_normal(b));
          mismatches += !same_bits(ex[i], standard_exponential(d));
        }
        // Both streams left at the same place: the next outputs agree.
        mismatches += a() != b();
        mismatches += c() != d();
        draws_made += static_cast<long>(n);
      }
    }
    CHECK(draws_made == 400 * 586);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("the slots of a unit are separate streams", "[rng]") {
  const UnitKey u = TrialKey(3, 4).unit(5);
  Stream a(u, StreamKind::measurement, 0), b(u, StreamKind::measurement, 1), c(u, StreamKind::population, 0);
  const auto x = a(), y = b(), z = c();
  CHECK(x != y);
  CHECK(x != z);
  // Slot 0 of a kind is the kind's sequential stream.
  Stream seq(u, StreamKind::measurement);
  CHECK(seq() == x);
  // A stream from output 1 of a slot is the slot's stream after its first output.
  Stream later(u, StreamKind::measurement, 1, 1);
  CHECK(later() == b());
}

TEST_CASE("exp is within 2 ulp of the C library's, with the same bits on every code path", "[rng]") {
  Stream s(5, 5, StreamKind::analysis);
  std::vector<double> x;
  for (int i = 0; i < 200000; ++i) x.push_back(-745.0 + 1455.0 * uniform01(s));
  for (int i = 0; i < 20000; ++i) x.push_back(-1.0 + 2.0 * uniform01(s));
  for (const double v : {0.0, -0.0, 1e-300, -1e-300, 1.0, -1.0, 700.0, 709.78, 709.79, 710.0, -745.13, -745.14, -746.0,
                         -708.5, -730.0, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                         std::numeric_limits<double>::quiet_NaN()}) {
    x.push_back(v);
  }
  std::vector<double> a(x.size()), b(x.size());
  draws::portable::exp(x.data(), x.size(), a.data());
  if (draws::avx512::available()) {
    draws::avx512::exp(x.data(), x.size(), b.data());
  } else {
    b = a;
  }
  long differ = 0, far = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    differ += !same_bits(a[i], b[i]);
    REQUIRE(same_bits(a[i], draws::exp(x[i])));
    const double want = std::exp(x[i]);
    if (std::isnan(want)) {
      REQUIRE(std::isnan(a[i]));
      continue;
    }
    if (want == 0.0 || std::isinf(want) || want < std::numeric_limits<double>::min()) {
      // Overflow, underflow and subnormal results: within one subnormal step or exactly the limit.
      far += std::abs(a[i] - want) > 2 * std::numeric_limits<double>::denorm_min() && a[i] != want;
      continue;
    }
    far += std::abs(a[i] - want) > 2 * std::abs(std::nextafter(want, 0.0) - want);
  }
  CHECK(differ == 0);
  CHECK(far == 0);
}
