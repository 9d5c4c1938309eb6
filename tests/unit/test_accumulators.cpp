#include "sim/engine/accumulators.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

using namespace trialsim;

TEST_CASE("Moments gives the two-pass mean and sample variance", "[accumulators]") {
  const std::vector<double> x{1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16};
  Moments m;
  for (double v : x) m.add(v);
  CHECK(m.n() == 4);
  CHECK(m.mean() == Approx(1e9 + 10).epsilon(1e-15));
  CHECK(m.variance() == Approx(30.0).epsilon(1e-12));
  CHECK(m.min() == 1e9 + 4);
  CHECK(m.max() == 1e9 + 16);
  CHECK(m.mcse() == Approx(std::sqrt(30.0 / 4)).epsilon(1e-12));
}

TEST_CASE("merging partial Moments equals adding everything in order", "[accumulators]") {
  Moments all, a, b, c;
  for (int i = 0; i < 100; ++i) {
    const double v = std::sin(i) * 10 + i * 0.1;
    all.add(v);
    (i < 30 ? a : i < 31 ? b : c).add(v);
  }
  Moments merged;
  merged.merge(a);
  merged.merge(b);
  merged.merge(c);
  merged.merge(Moments{});
  CHECK(merged.n() == all.n());
  CHECK(merged.mean() == Approx(all.mean()).epsilon(1e-13));
  CHECK(merged.variance() == Approx(all.variance()).epsilon(1e-12));
  CHECK(merged.min() == all.min());
  CHECK(merged.max() == all.max());
}

TEST_CASE("empty and single-value Moments report no spread", "[accumulators]") {
  Moments m;
  CHECK(m.n() == 0);
  CHECK(m.variance() == 0.0);
  CHECK(std::isnan(m.mcse()));
  m.add(3.0);
  CHECK(m.variance() == 0.0);
  CHECK(std::isnan(m.mcse()));  // undefined, written as null
  m.add(5.0);
  CHECK(m.mcse() == Approx(1.0));
}
