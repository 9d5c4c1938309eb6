// Simulated operating characteristics against closed forms, at fixed seeds, within 4 Monte
// Carlo standard errors.
#include "sim/engine.hpp"
#include "sim/scenario.hpp"

#include <boost/math/distributions/non_central_t.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

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

// A design whose final SPP is exactly normal with variance sd_between^2 + sd_biological^2 +
// sd_measurement^2 and n patients per arm: no cutoff, no dropout, no covariate shifts.
std::string plain_design(int per_arm, double effect, double diabetes_prob = 0.616) {
  std::ostringstream t;
  t << "[trial]\nconsented = " << 2 * per_arm << "\nmonths = [0, 12]\n"
    << "[population]\nprior_mg_prob = 0.0\ndiabetes_prob = " << diabetes_prob << "\n"
    << "[spp]\nsd_between = 10.0\nsd_biological = 6.0\nsd_measurement = 5.0\ndiabetes_shift = 0.0\n"
    << "age_shift_per_10y = 0.0\nsd_slope_per_year = 0.0\n"
    << "[screening]\npre_baseline_loss = 0.0\n"
    << "[randomization]\nmethod = \"block\"\nblock_sizes = [" << 2 * per_arm << "]\n"
    << "[treatment]\neffect_mmHg = " << effect << "\n"
    << "[dropout]\ndeath_per_year = 0.0\ntransfer_per_year = 0.0\nae_per_year = 0.0\n";
  return t.str();
}

// Exact power of the two-sided two-sample Student t test: noncentral t with df = 2n - 2 and
// noncentrality delta / (sigma sqrt(2/n)), both rejection tails.
double t_test_power(int per_arm, double delta, double sigma, double alpha) {
  const double df = 2.0 * per_arm - 2;
  const double ncp = delta / (sigma * std::sqrt(2.0 / per_arm));
  const double q = boost::math::quantile(boost::math::complement(boost::math::students_t(df), alpha / 2));
  const boost::math::non_central_t nct(df, ncp);
  return boost::math::cdf(boost::math::complement(nct, q)) + boost::math::cdf(nct, -q);
}

}  // namespace

TEST_CASE("Student t power matches the exact noncentral t without cutoff or dropout", "[statistical][power]") {
  const double sigma = std::sqrt(100.0 + 36.0 + 25.0);
  struct Case {
    int per_arm;
    double effect;
  };
  for (const Case c : {Case{20, 10.0}, Case{50, 5.0}, Case{30, -8.0}, Case{15, 0.0}}) {
    DYNAMIC_SECTION("n per arm " << c.per_arm << ", effect " << c.effect) {
      const Scenario s = scenario(plain_design(c.per_arm, c.effect));
      const auto sum = simulate(s, 4000);
      const Performance p = performance(sum.method(Method::completers_ttest), sum.replicates(), c.effect);
      const double exact = t_test_power(c.per_arm, c.effect, sigma, 0.05);
      check_within(p.power, exact, std::sqrt(exact * (1 - exact) / 4000.0));
      check_within(p.emp_se, sigma * std::sqrt(2.0 / c.per_arm), p.emp_se_mcse);
      CHECK(p.estimable == 4000);
    }
  }
}

namespace {

// Regression to the mean of a selected group (Barnett, van der Pols & Dobson, Int J Epidemiol
// 2005): with true value T ~ N(mu, sb^2) and a reading Y = T + W, W ~ N(0, sw^2), selecting
// Y < c gives E[T - Y | Y < c] = sw^2 / s * phi(z) / Phi(z), s^2 = sb^2 + sw^2, z = (c - mu)/s;
// selecting Y >= c gives -sw^2 / s * phi(z) / (1 - Phi(z)).
double barnett_rtm(double mu, double sb2, double sw2, double cutoff, bool below) {
  const double s = std::sqrt(sb2 + sw2);
  const double z = (cutoff - mu) / s;
  const boost::math::normal n01;
  const double phi = boost::math::pdf(n01, z);
  return below ? sw2 / s * phi / boost::math::cdf(n01, z) : -sw2 / s * phi / boost::math::cdf(boost::math::complement(n01, z));
}

std::string rtm_design(const std::string& screening, double sd_bio = 8.0) {
  std::ostringstream t;
  t << "[trial]\nconsented = 150\n"
    << "[population]\nprior_mg_prob = 0.0\n"
    << "[spp]\nmean = 60.0\nsd_between = 10.0\nsd_biological = " << sd_bio
    << "\nsd_measurement = 5.0\ndiabetes_shift = 0.0\nage_shift_per_10y = 0.0\n"
    << "drift_per_year = 0.0\nsd_slope_per_year = 0.0\n"
    << "[screening]\npre_baseline_loss = 0.0\n"
    << screening << "\n[dropout]\ndeath_per_year = 0.0\ntransfer_per_year = 0.0\nae_per_year = 0.0\n";
  return t.str();
}

void check_rtm(const Scenario& s, double expected) {
  const auto sum = simulate(s, 2000);
  for (const Arm arm : {Arm::control, Arm::treatment}) {
    const Moments& m = sum.arm(arm).regression_to_mean;
    check_within(m.mean(), expected, m.mcse());
  }
}

}  // namespace

TEST_CASE("regression to the mean under a cutoff matches Barnett's truncated-normal form", "[statistical][rtm]") {
  const double sb2 = 100.0, sw2 = 64.0 + 25.0;
  SECTION("selection below entry_max") {
    check_rtm(scenario(rtm_design("entry_max = 60.0")), barnett_rtm(60.0, sb2, sw2, 60.0, true));
    check_rtm(scenario(rtm_design("entry_max = 75.0")), barnett_rtm(60.0, sb2, sw2, 75.0, true));
  }
  SECTION("selection above entry_min") {
    check_rtm(scenario(rtm_design("entry_min = 70.0")), barnett_rtm(60.0, sb2, sw2, 70.0, false));
  }
  SECTION("mean of k readings at one visit: only reading noise averages out") {
    for (const int k : {2, 3}) {
      const double sw2_k = 64.0 + 25.0 / k;
      check_rtm(scenario(rtm_design("entry_max = 65.0\nentry_measurements = " + std::to_string(k))),
                barnett_rtm(60.0, sb2, sw2_k, 65.0, true));
    }
  }
  SECTION("mean of 2 readings 3 months apart: the biological part averages too") {
    const double rho = std::exp(-3.0 / 6.0);
    const double sw2_k = 64.0 * (2 + 2 * rho) / 4 + 25.0 / 2;
    check_rtm(scenario(rtm_design("entry_max = 65.0\nentry_measurements = 2\nentry_interval_months = 3.0")),
              barnett_rtm(60.0, sb2, sw2_k, 65.0, true));
  }
  SECTION("no cutoff: no regression to the mean") {
    check_rtm(scenario(rtm_design("")), 0.0);
  }
}

TEST_CASE("a separate baseline removes regression to the mean under compound symmetry", "[statistical][rtm]") {
  // No biological fluctuation: readings differ only by independent noise, so a fresh baseline
  // reading is unselected.
  check_rtm(scenario(rtm_design("entry_max = 60.0\nseparate_baseline = true", 0.0)), 0.0);
  // With biological fluctuation shared by entry and baseline, only the noise part vanishes.
  const double sb2 = 100.0, su2 = 64.0, se2 = 25.0;
  const double s = std::sqrt(sb2 + su2 + se2);
  const double z = 0.0;
  const boost::math::normal n01;
  const double expected = su2 / s * boost::math::pdf(n01, z) / boost::math::cdf(n01, z);
  check_rtm(scenario(rtm_design("entry_max = 60.0\nseparate_baseline = true")), expected);
}

TEST_CASE("every method holds its type I error under non-informative dropout", "[statistical][type1]") {
  // The seed design with no effect and dropout unrelated to SPP (AE withdrawal in the MgO arm
  // only, death and transfer in both).
  const Scenario s = scenario(
      "[screening]\nentry_max = 80.0\n[dropout]\ndeath_per_year = 0.1\ntransfer_per_year = 0.05\n"
      "ae_per_year = 0.2\nspp_hazard_ratio_per_10 = 1.0\n");
  const auto sum = simulate(s, 6000, 7);
  const double mcse = std::sqrt(0.05 * 0.95 / 6000.0);
  for (const Method m : s.analysis.methods) {
    INFO(method_name(m));
    const Performance p = performance(sum.method(m), sum.replicates(), 0.0);
    check_within(p.power, 0.05, mcse);
    check_within(p.coverage, 0.95, mcse);
    check_within(p.bias, 0.0, p.bias_mcse);
  }
}

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

TEST_CASE("ANCOVA's variance matches 2 sigma^2 (1 - rho^2)/n (1 + 1/(2n - 4))", "[statistical][ancova]") {
  // No diabetics, so the stratum column drops out and baseline is the only (normal) covariate.
  const Scenario s = scenario(plain_design(40, 0.0, 0.0));
  const auto sum = simulate(s, 4000, 11);
  const Performance t = performance(sum.method(Method::completers_ttest), sum.replicates(), 0.0);
  const Performance a = performance(sum.method(Method::ancova), sum.replicates(), 0.0);
  // Correlation of baseline and month-12 readings: (sb^2 + su^2 e^-2) / total. With normal
  // covariates E[(X'X)^-1] gives the exact small-sample factor 1 + 1/(2n - 4) for the model
  // variance (Wishart moments); the model SE's MC SE is small enough to tell it apart.
  const double total = 161.0;
  const double rho = (100.0 + 36.0 * std::exp(-2.0)) / total;
  const double expected_var = 2.0 * total * (1 - rho * rho) / 40 * (1 + 1.0 / (2.0 * 40 - 4));
  check_within(a.model_se, std::sqrt(expected_var), a.model_se_mcse);
  check_within(a.emp_se, std::sqrt(expected_var), a.emp_se_mcse);
  check_within(a.relative_se_error, 0.0, a.relative_se_error_mcse);
  CHECK(a.emp_se < t.emp_se);
}
