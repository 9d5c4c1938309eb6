// The seed scenario reproduces the report's figures on average (../shared/seed/trial-facts.md).
#include <cmath>
#include "sim/engine/engine.hpp"
#include "sim/io/scenario.hpp"

#include <catch2/catch.hpp>

using namespace trialsim;

TEST_CASE("the seed scenario reproduces the trial report on average", "[statistical][seed]") {
  const Scenario s = Scenario::load(std::string(TRIALSIM_SOURCE_DIR) + "/configs/seed_trial.toml");
  EngineOptions o;
  o.replicates = 2000;
  o.seed = 20190401;
  const auto j = run_replicates(s, o).to_json(o.seed);
  // Every Monte Carlo estimate is {estimate, mcse}; an arm's mean and SD each are one.
  auto mean = [&](const nlohmann::json& node) {
    return (node.contains("estimate") ? node["estimate"] : node["mean"]["estimate"]).get<double>();
  };
  auto sd_of = [&](const nlohmann::json& node) { return node["sd"]["estimate"].get<double>(); };
  // Report: 86 randomized (43/43), 32 and 39 completers.
  CHECK(mean(j["funnel"]["randomized"]) == Approx(86).margin(2));
  CHECK(mean(j["funnel"]["allocated"]["treatment"]) == Approx(43).margin(1.5));
  CHECK(mean(j["funnel"]["completed"]["treatment"]) == Approx(32).margin(2));
  CHECK(mean(j["funnel"]["completed"]["control"]) == Approx(39).margin(2));
  // A count's trial-to-trial SD: the report's 9 must not sit in the tail of the simulated trials.
  const double excluded_sd = j["funnel"]["excluded_entry_above_max"]["sd"].get<double>();
  CHECK(std::abs(mean(j["funnel"]["excluded_entry_above_max"]) - 9) < 1.5 * excluded_sd);
  // Baseline SPP 58 (15) and 57 (15); final 66 (21) and 69 (18).
  for (const char* arm : {"treatment", "control"}) {
    INFO(arm);
    // An arm mean of 43 patients varies by about SD / sqrt(43) (~2.1 mmHg) between trials.
    const double se_mean = sd_of(j["spp"]["baseline"][arm]) / std::sqrt(43.0);
    CHECK(std::abs(mean(j["spp"]["baseline"][arm]) - 57.5) < 1.5 * se_mean);
    CHECK(sd_of(j["spp"]["baseline"][arm]) == Approx(15).margin(2.5));
    CHECK(mean(j["spp"]["final"][arm]) == Approx(67.5).margin(2));
    CHECK(sd_of(j["spp"]["final"][arm]) == Approx(19.5).margin(2.5));
  }
  // Serum Mg at month 6: 3.0 (0.4) vs 2.5 (0.3).
  CHECK(mean(j["serum_mg"]["month6"]["treatment"]) == Approx(3.0).margin(0.1));
  CHECK(mean(j["serum_mg"]["month6"]["control"]) == Approx(2.5).margin(0.05));
  // Both arms rise by 8-12 mmHg; regression to the mean explains only 1-3 of it.
  const auto& rtm = j["rtm"]["control"];
  CHECK(mean(rtm["observed_change"]) > 8);
  CHECK(mean(rtm["observed_change"]) < 12);
  CHECK(mean(rtm["regression_to_mean"]) > 1);
  CHECK(mean(rtm["regression_to_mean"]) < 3);
  CHECK(mean(rtm["attrition"]) > 0);
}
