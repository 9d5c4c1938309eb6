// Multiple imputation's delta adjustment and its calibration in a small trial at a fixed seed,
// within Monte Carlo error. (Power, regression to the mean, ANCOVA variance, type I error,
// coverage and bias under dropout are the validation suite's cases:
// tests/statistical/test_validation.cpp.)
#include "sim/engine/engine.hpp"
#include "sim/io/scenario.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using namespace trialsim;

namespace {

Scenario scenario(const std::string& toml) {
  ConfigReader in = ConfigReader::from_string(toml, "test.toml");
  return Scenario::read(in);
}

SummaryAccumulator simulate(const Scenario& s, std::uint64_t reps, std::uint64_t seed = 20190401) {
  EngineOptions o;
  o.replicates = reps;
  o.seed = seed;
  return run_replicates(s, o);
}

void check_within(double observed, double expected, double mcse) {
  INFO("simulated " << observed << ", closed form " << expected << ", MCSE " << mcse << ", z "
                    << (observed - expected) / mcse);
  CHECK(std::abs(observed - expected) <= 4 * mcse);
}

}  // namespace

TEST_CASE("a delta shift moves multiple imputation by delta times the share imputed", "[statistical][mi]") {
  // MCAR dropout and no effect: with delta the MI estimate is biased by about delta times the
  // MgO arm's share of missing last visits (up to ANCOVA's covariate adjustment).
  const std::string design = "[screening]\nentry_max = 80.0\n[dropout]\ndeath_per_year = 0.2\n"
                             "transfer_per_year = 0.1\nae_per_year = 0.2\nspp_hazard_ratio_per_10 = 1.0\n"
                             "[analysis]\nmethods = [\"mi_delta\"]\nmi_imputations = 10\n";
  const auto base = simulate(scenario(design), 1500, 5);
  const auto shifted = simulate(scenario(design + "mnar_delta_mmHg = -6.0\n"), 1500, 5);
  const Performance p0 = performance(base.method(Method::mi_delta), base.replicates(), 0.0);
  const Performance p1 = performance(shifted.method(Method::mi_delta), shifted.replicates(), 0.0);
  const double share = 1.0 - base.arm(Arm::treatment).completed.mean() / base.arm(Arm::treatment).randomized.mean();
  check_within(p0.bias, 0.0, p0.bias_mcse);
  // The two runs share their random numbers, so the MC SE of the difference is at most the sum.
  check_within(p1.bias - p0.bias, -6.0 * share, p0.bias_mcse + p1.bias_mcse);
}


TEST_CASE("multiple imputation is calibrated at 40 consented with 4 post-baseline visits", "[statistical][mi][slow]") {
  // About 35 randomized, 4 visits, MCAR dropout, no effect. Drawing the coefficients apart
  // from the covariance, with a Wishart on patients - p df, was conservative here: at this
  // seed, type I error 0.0456 and model SEs 1.5% above the empirical SE (z -4.1 and 4.1).
  // 40 000 trials (a few seconds in a release build; the sanitizer runs skip this case).
  ConfigReader in = ConfigReader::from_file(std::string(TRIALSIM_SOURCE_DIR) + "/configs/null_trial.toml");
  in.apply_override("trial.consented=40");
  in.apply_override("trial.months=[0, 3, 6, 9, 12]");
  in.apply_override("analysis.methods=[\"mi_delta\"]");
  const auto sum = simulate(Scenario::read(in), 40000);
  const Performance p = performance(sum.method(Method::mi_delta), sum.replicates(), 0.0);
  CHECK(p.estimable == sum.replicates());
  check_within(p.power, 0.05, std::sqrt(0.05 * 0.95 / static_cast<double>(sum.replicates())));
  check_within(p.relative_se_error, 0.0, p.relative_se_error_mcse);
}
