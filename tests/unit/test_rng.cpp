#include "sim/rng.hpp"

#include <boost/random/uniform_01.hpp>
#include <catch2/catch.hpp>

#include <cmath>
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
