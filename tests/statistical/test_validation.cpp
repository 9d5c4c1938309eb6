// The built-in validation suite (trialsim validate) at a size that keeps the test run quick:
// every case must pass. `trialsim validate --reps N` runs the same cases more strictly.
#include "sim/design/validation.hpp"

#include <catch2/catch.hpp>

#include <boost/math/distributions/normal.hpp>

#include <cmath>

using namespace trialsim;

TEST_CASE("every validation case passes at a fixed seed", "[statistical][validation]") {
  ValidationOptions o;
  o.replicates = 2000;
  o.seed = 20190401;
  const auto cases = run_validation(o);
  CHECK(cases.size() >= 20);
  for (const auto& c : cases) {
    INFO(c.name << ": reference " << c.reference << ", simulated " << c.simulated << ", MCSE " << c.mcse << ", z " << c.z);
    CHECK(c.pass);
    CHECK(std::isfinite(c.z));
    CHECK(c.mcse > 0);
  }
}

TEST_CASE("Welch's exact power reduces to Student's with equal variances and large n", "[validation]") {
  // With equal variances and 200 per arm Welch's df is ~398 and its power the t test's.
  CHECK(welch_power(200, 200, 161.0, 161.0, 3.0, 0.05) ==
        Approx(t_test_power(200, 3.0, std::sqrt(161.0), 0.05)).margin(1e-4));
  // Under the null the exact size is close to alpha (Welch's test is nearly exact).
  CHECK(welch_power(30, 30, 300.0, 100.0, 0.0, 0.05) == Approx(0.05).margin(0.003));
}

TEST_CASE("Barnett's regression to the mean has the textbook values", "[validation]") {
  // Selecting below the mean: sw^2/s * phi(0)/Phi(0) = sw^2/s * 0.7979.
  CHECK(barnett_rtm(60, 100, 100, 60, true) == Approx(100 / std::sqrt(200.0) * 0.7978845608).epsilon(1e-9));
  // Symmetric: selecting above mu + d mirrors selecting below mu - d.
  CHECK(barnett_rtm(60, 100, 50, 70, false) == Approx(-barnett_rtm(60, 100, 50, 50, true)).epsilon(1e-12));
  // No within-patient variation, no regression.
  CHECK(barnett_rtm(60, 100, 0, 70, true) == 0.0);
}
