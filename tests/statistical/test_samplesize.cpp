// Precision on demand and the sample-size search, against closed forms.
#include "sim/engine/engine.hpp"
#include "sim/design/samplesize.hpp"
#include "sim/design/validation.hpp"
#include "tests/temp_files.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

using namespace trialsim;

namespace {
const std::string kSeed = std::string(TRIALSIM_SOURCE_DIR) + "/configs/seed_trial.toml";

// No cutoff, no dropout, no exclusions, blocks of 2: the completers t test is the exact
// two-sample t test on N(., 161) outcomes with n/2 patients per arm.
std::string plain_scenario(double effect) {
  static testing::TempFiles files("trialsim_test_samplesize");
  std::ostringstream text;
  text << "[trial]\nconsented = 40\nmonths = [0, 12]\n[population]\nprior_mg_prob = 0.0\n"
       << "[spp]\nsd_between = 10.0\nsd_biological = 6.0\nsd_measurement = 5.0\ndiabetes_shift = 0.0\n"
       << "age_shift_per_10y = 0.0\nsd_slope_per_year = 0.0\n[screening]\npre_baseline_loss = 0.0\n"
       << "[randomization]\nmethod = \"block\"\nblock_sizes = [2]\n[treatment]\neffect_mmHg = " << effect
       << "\n[dropout]\ndeath_per_year = 0.0\ntransfer_per_year = 0.0\nae_per_year = 0.0\n"
       << "[analysis]\nmethods = [\"completers_ttest\", \"ancova\"]\n";
  return files.make(text.str());
}

int exact_t_test_total(double effect, double power) {
  for (int per_arm = 2;; ++per_arm) {
    if (t_test_power(per_arm, effect, std::sqrt(161.0), 0.05) >= power) return 2 * per_arm;
  }
}
}  // namespace

TEST_CASE("a precision run equals a plain run of the replicates it took, at any thread count", "[precision]") {
  const Scenario s = Scenario::load(kSeed, {"treatment.effect_mmHg=6", "analysis.methods=[\"completers_ttest\",\"ancova\"]"});
  PrecisionTarget t;
  t.power_mcse = 0.008;
  EngineOptions o;
  o.seed = 5;
  o.threads = 1;
  PrecisionReport r1, r2;
  const std::string one = run_to_precision(s, o, t, r1).to_json(5).dump();
  o.threads = 2;
  CHECK(run_to_precision(s, o, t, r2).to_json(5).dump() == one);
  CHECK(r2.replicates == r1.replicates);
  REQUIRE(r1.met);
  // p(1-p)/n <= 0.008^2 needs about 3900 trials at p ~ 0.5; batches are whole multiples of 1024.
  CHECK(r1.replicates % 1024 == 0);
  CHECK(r1.replicates >= 2048);
  CHECK(r1.worst_power_mcse <= 0.008);
  o.replicates = r1.replicates;
  CHECK(run_replicates(s, o).to_json(5).dump() == one);
  // One batch fewer would not have met the target.
  o.replicates = r1.replicates - 1024;
  CHECK_FALSE(precision_of(run_replicates(s, o), s, t).met);
}

TEST_CASE("a precision run stops at the cap and says the target was not met", "[precision]") {
  const Scenario s = Scenario::load(kSeed, {"analysis.methods=[\"ancova\"]"});
  PrecisionTarget t;
  t.bias_mcse = 0.05;  // needs ~6000 trials (SD ~4 mmHg)
  t.max_replicates = 2048;
  EngineOptions o;
  PrecisionReport r;
  (void)run_to_precision(s, o, t, r);
  CHECK_FALSE(r.met);
  CHECK(r.replicates == 2048);
  CHECK(r.worst_bias_mcse > 0.05);
}

TEST_CASE("no rejections yet is not precision: the stopping rule uses the adjusted proportion", "[precision]") {
  const Scenario s = Scenario::load(kSeed, {"analysis.methods=[\"ancova\"]"});
  SummaryAccumulator empty(s);
  PrecisionTarget t;
  t.power_mcse = 0.01;
  CHECK_FALSE(precision_of(empty, s, t).met);
  ReplicateResult r;
  r.estimates[static_cast<std::size_t>(Method::ancova)] = Estimate{};  // not estimable: no rejection
  for (int i = 0; i < 100; ++i) empty.add(r);
  // Morris's MC SE of a power of 0/100 is 0; the rule sees p~ = 2/104.
  const PrecisionReport p = precision_of(empty, s, t);
  CHECK_FALSE(p.met);
  CHECK(p.worst_power_mcse == Approx(std::sqrt(2.0 / 104 * (102.0 / 104) / 100)));
}

TEST_CASE("without cutoff or dropout the sample size matches the exact t test within one step", "[samplesize]") {
  SampleSizeOptions o;
  o.scenario_path = plain_scenario(9.5);
  o.method = "completers_ttest";
  o.target_power = 0.8;
  o.step = 2;
  o.seed = 11;
  const SampleSizeResult r = find_sample_size(o);
  const int exact = exact_t_test_total(9.5, 0.8);  // 58
  CHECK(exact == 58);
  CHECK(std::abs(r.n - exact) <= o.step);
  CHECK(r.n_low <= exact + o.step);
  CHECK(r.n_high >= exact - o.step);
  CHECK(r.n_low <= r.n);
  CHECK(r.n <= r.n_high);
  CHECK(r.at_n.randomized == r.n);  // nobody is excluded
  CHECK(r.at_n.completed_treatment == r.n / 2.0);
  CHECK(r.fit.b > 0);
  // Another target: 90% power.
  o.target_power = 0.9;
  const SampleSizeResult r90 = find_sample_size(o);
  CHECK(std::abs(r90.n - exact_t_test_total(9.5, 0.9)) <= o.step);
}

TEST_CASE("the sample-size search is reproducible at any thread count", "[samplesize]") {
  SampleSizeOptions o;
  o.scenario_path = plain_scenario(9.5);
  o.method = "ancova";
  o.replicates = 1000;
  o.threads = 1;
  const nlohmann::json one = find_sample_size(o).to_json(o);
  o.threads = 2;
  // The live progress: every value's trials counted up to its total, values in the order
  // evaluated, bracketing before refining, the estimate of what is left within its bound.
  std::vector<JobProgress> seen;
  o.progress = [&seen](const JobProgress& p) { seen.push_back(p); };
  const nlohmann::json two = find_sample_size(o).to_json(o);
  CHECK(two == one);
  REQUIRE(!seen.empty());
  std::vector<std::string> items;
  bool refining = false, ordered = true, bounded = true, counted = true;
  for (const JobProgress& p : seen) {
    if (items.empty() || items.back() != p.item) {
      items.push_back(p.item);
      counted = counted && p.items_done == static_cast<int>(items.size()) - 1;
    }
    counted = counted && p.trials_done <= p.trials_total && p.trials_total == 1000;
    if (p.stage == "refining") refining = true;
    ordered = ordered && (p.stage == "refining" || (p.stage == "bracketing" && !refining));
    bounded = bounded && (p.stage == "bracketing" ? p.items_left_max == -1 : p.items_left <= p.items_left_max);
  }
  CHECK(counted);
  CHECK(refining);
  CHECK(ordered);
  CHECK(bounded);
  CHECK(items.size() == two["points"].size());
}

TEST_CASE("a target no sample size reaches, or an unknown key or method, is a clear error", "[samplesize]") {
  SampleSizeOptions o;
  o.scenario_path = plain_scenario(0.0);
  o.method = "ancova";
  o.replicates = 500;
  o.hi = 300;
  // No effect: refused at once, before any simulation.
  CHECK_THROWS_WITH(find_sample_size(o), Catch::Contains("the true effect at the endpoint is 0 mmHg") &&
                                             Catch::Contains("power stays at alpha (0.05) at any size"));
  // A small effect that 300 patients cannot detect with 80% power.
  o.scenario_path = plain_scenario(0.5);
  CHECK_THROWS_WITH(find_sample_size(o), Catch::Contains("at trial.consented=300, the top of the search range; raise --hi"));
  o.scenario_path = plain_scenario(0.0);
  o.method = "anova";
  CHECK_THROWS_WITH(find_sample_size(o), Catch::StartsWith("--method: unknown analysis 'anova'; expected one of"));
  o.method = "ancova";
  o.key = "treatment.effect_mmHg";
  CHECK_THROWS_WITH(find_sample_size(o), "--key treatment.effect_mmHg: not an integer scenario key (e.g. trial.consented)");
}

TEST_CASE("a target already met at the smallest size searched is reported as such", "[samplesize]") {
  SampleSizeOptions o;
  o.scenario_path = plain_scenario(40.0);  // 2.5 SDs: tiny trials have high power
  o.method = "completers_ttest";
  o.replicates = 500;
  o.lo = 20;
  o.step = 2;
  const SampleSizeResult r = find_sample_size(o);
  CHECK(r.at_lower_limit);
  CHECK(r.n == 20);
  CHECK(r.at_n.power >= 0.8);
}
