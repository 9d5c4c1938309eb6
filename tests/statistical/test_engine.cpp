// Engine properties: thread-count independence, replay, flat outputs.
#include "sim/engine/engine.hpp"
#include "sim/io/scenario.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using namespace trialsim;

namespace {
const std::string kSeed = std::string(TRIALSIM_SOURCE_DIR) + "/configs/seed_trial.toml";

SummaryAccumulator simulate(const Scenario& s, std::uint64_t reps, int threads, std::uint64_t seed = 42) {
  EngineOptions o;
  o.replicates = reps;
  o.seed = seed;
  o.threads = threads;
  return run_replicates(s, o);
}
}  // namespace

TEST_CASE("the same seed gives bit-identical output at 1, 2 and 3 threads", "[engine]") {
  const Scenario s = Scenario::load(kSeed);
  const std::uint64_t reps = 3 * kBlockSize + 17;  // a partial last block
  const std::string one = simulate(s, reps, 1).to_json(42).dump();
  CHECK(simulate(s, reps, 2).to_json(42).dump() == one);
  CHECK(simulate(s, reps, 3).to_json(42).dump() == one);
  CHECK(simulate(s, reps, 2, 43).to_json(43).dump() != one);
}

TEST_CASE("any replicate can be replayed alone", "[engine]") {
  const Scenario s = Scenario::load(kSeed);
  std::vector<ReplicateResult> rows;
  EngineOptions o;
  o.replicates = 150;
  o.seed = 99;
  o.threads = 2;
  o.on_trial = [&](const ReplicateResult& r) { rows.push_back(r); };
  (void)run_replicates(s, o);
  REQUIRE(rows.size() == 150);
  for (std::uint64_t r = 0; r < 150; ++r) REQUIRE(rows[r].replicate == r);
  const TrialSimulator sim(s);
  Workspace ws;
  for (const std::uint64_t r : {0u, 77u, 149u}) {
    const ReplicateResult alone = sim.run(99, r, ws);
    CHECK(alone.randomized == rows[r].randomized);
    for (const Method m : s.analysis.methods) {
      const auto k = static_cast<std::size_t>(m);
      CHECK(alone.estimates[k].estimate == rows[r].estimates[k].estimate);
      CHECK(alone.estimates[k].p(Hypothesis{}) == rows[r].estimates[k].p(Hypothesis{}));
    }
  }
}

TEST_CASE("trials that cannot be analysed are counted, never NaN in the summary", "[engine]") {
  // Tiny trials with heavy dropout: many have an arm without completers.
  ConfigReader in = ConfigReader::from_string(
      "[trial]\nconsented = 6\n[population]\nprior_mg_prob = 0.0\n[screening]\npre_baseline_loss = 0.0\n"
      "[randomization]\nmethod = \"simple\"\n[dropout]\ndeath_per_year = 1.5\n",
      "tiny.toml");
  const Scenario s = Scenario::read(in);
  const auto sum = simulate(s, 500, 2);
  const Performance p = performance(sum.method(Method::ancova), sum.replicates(), 0.0);
  CHECK(p.estimable < 500);
  CHECK(p.estimable > 0);
  const auto j = sum.to_json(42);
  // Walk the in-memory tree: a non-finite double would be dumped as null and hide.
  int numbers = 0;
  auto walk = [&](auto&& self, const nlohmann::json& node) -> void {
    if (node.is_structured()) {
      for (const auto& child : node) self(self, child);
    } else if (node.is_number_float()) {
      ++numbers;
      REQUIRE(std::isfinite(node.get<double>()));
    }
  };
  walk(walk, j);
  CHECK(numbers > 100);
  CHECK(j["analyses"]["ancova"]["not_estimable"]["total"].get<std::uint64_t>() == 500 - p.estimable);
}

TEST_CASE("every key at the limit of its range gives a finite summary", "[engine]") {
  // Each outcome-scale key at +-Bounds::kScaleLimit (and a few combinations that push the
  // hazards and the selection to their extremes): the run completes, no non-finite double
  // reaches the summary, and a figure is null only where nothing defines it (an analysis
  // estimable in fewer than 2 trials, an RTM split averaged over fewer trials than it needs).
  const std::string L = "1000000";
  std::vector<std::vector<std::string>> cases;
  for (const char* k : {"treatment.effect_mmHg", "spp.drift_per_year", "spp.diabetes_shift", "spp.age_shift_per_10y"}) {
    cases.push_back({std::string(k) + "=" + L});
    cases.push_back({std::string(k) + "=-" + L});
  }
  for (const char* k : {"treatment.effect_sd_mmHg", "spp.sd_between", "spp.sd_biological", "spp.sd_measurement",
                        "spp.sd_slope_per_year", "spp.biological_corr_months"}) {
    cases.push_back({std::string(k) + "=" + L});
  }
  cases.push_back({"spp.mean=-" + L});
  cases.push_back({"spp.mean=" + L, "screening.entry_max=none", "spp.sd_between=0", "spp.sd_measurement=0"});
  cases.push_back({"treatment.effect_mmHg=" + L, "spp.sd_measurement=" + L, "spp.sd_between=" + L});
  cases.push_back({"spp.mean=-" + L, "spp.drift_per_year=" + L, "dropout.spp_hazard_ratio_per_10=100"});
  cases.push_back({"population.age_sd=100", "population.mg_sd=100", "population.mg_mean=100", "trial.alpha=1e-10"});
  cases.push_back({"treatment.mg_response_per_100mg=100", "treatment.max_dose_mg=100000", "treatment.mg_measurement_sd=100"});
  cases.push_back({"dropout.death_per_year=100"});
  for (const auto& overrides : cases) {
    std::string label;
    for (const auto& o : overrides) label += o + " ";
    INFO(label);
    const Scenario s = Scenario::load(kSeed, overrides);
    const auto j = simulate(s, 64, 2).to_json(42);
    std::vector<std::string> undefined;
    auto walk = [&](auto&& self, const nlohmann::json& node, const std::string& path) -> void {
      if (node.is_object()) {
        for (auto it = node.begin(); it != node.end(); ++it) self(self, it.value(), path + "." + it.key());
      } else if (node.is_array()) {
        for (const auto& child : node) self(self, child, path + "[]");
      } else if (node.is_number_float()) {
        INFO(path);
        REQUIRE(std::isfinite(node.get<double>()));
      } else if (node.is_null() && path.rfind(".scenario.", 0) != 0) {
        undefined.push_back(path);
      }
    };
    walk(walk, j, "");
    for (const auto& path : undefined) {
      INFO(path);
      const auto parts = [&] {
        std::vector<std::string> v;
        std::size_t start = 1;
        for (std::size_t dot; (dot = path.find('.', start)) != std::string::npos; start = dot + 1) {
          v.push_back(path.substr(start, dot - start));
        }
        v.push_back(path.substr(start));
        return v;
      }();
      if (parts[0] == "analyses") {
        CHECK(j["analyses"][parts[1]]["estimable"].get<std::uint64_t>() < 2);
      } else if (parts[0] == "rtm") {
        CHECK(j["rtm"][parts[1]]["trials"].get<std::uint64_t>() < (parts[3] == "mcse" ? 2u : 1u));
      } else {
        // Per-arm figures of the completers or of those seen at a visit carry their "trials",
        // in the object itself or (an arm's {mean, sd}, each {estimate, mcse}) one level up.
        REQUIRE(parts.size() >= 3);
        std::vector<nlohmann::json> chain{j};
        for (std::size_t k = 0; k + 1 < parts.size(); ++k) chain.push_back(chain.back()[parts[k]]);
        while (chain.size() > 1 && !chain.back().contains("trials")) chain.pop_back();
        const nlohmann::json& node = chain.back();
        REQUIRE(node.contains("trials"));
        CHECK(node["trials"].get<std::uint64_t>() < 2);
      }
    }
  }
}

TEST_CASE("the summary JSON carries the documented keys", "[engine]") {
  const Scenario s = Scenario::load(kSeed);
  const auto j = simulate(s, 100, 2).to_json(42);
  CHECK(j["replicates"] == 100);
  CHECK(j["seed"] == 42);
  for (const char* m : {"completers_ttest", "completers_welch", "change_ttest", "ancova"}) {
    for (const char* k : {"power", "bias", "coverage", "emp_se", "rmse", "model_se", "mean_estimate"}) {
      INFO(m << "." << k);
      CHECK(j["analyses"][m][k]["estimate"].is_number());
      CHECK(j["analyses"][m][k]["mcse"].is_number());
    }
  }
  CHECK(j["funnel"]["randomized"]["estimate"].is_number());
  CHECK(j["funnel"]["completed"]["treatment"]["estimate"].is_number());
  CHECK(j["funnel"]["completed"]["control"]["estimate"].is_number());
  for (const char* arm : {"treatment", "control"}) {
    CHECK(j["spp"]["baseline"][arm]["mean"]["estimate"].is_number());
    CHECK(j["spp"]["baseline"][arm]["mean"]["mcse"].is_number());
    CHECK(j["spp"]["final"][arm]["mean"]["estimate"].is_number());
    CHECK(j["spp"]["final"][arm]["sd"]["estimate"].is_number());
    CHECK(j["spp"]["final"][arm]["sd"]["mcse"].is_number());
    CHECK(j["serum_mg"]["month6"][arm]["estimate"].is_number());
  }
  for (const char* k : {"observed_change", "regression_to_mean", "attrition", "drift"}) {
    CHECK(j["rtm"]["control"][k]["estimate"].is_number());
  }
}

TEST_CASE("the observed change splits exactly into its components", "[engine]") {
  auto check_identity = [](const nlohmann::json& j) {
    for (const char* arm : {"treatment", "control"}) {
      INFO(arm);
      const auto& r = j["rtm"][arm];
      const double sum = r["drift"]["estimate"].get<double>() + r["slope_selection"]["estimate"].get<double>() +
                         r["treatment_effect"]["estimate"].get<double>() + r["regression_to_mean"]["estimate"].get<double>() +
                         r["attrition"]["estimate"].get<double>();
      CHECK(sum == Approx(r["observed_change"]["estimate"].get<double>()).epsilon(1e-9));
      CHECK(r["regression_to_mean"]["estimate"].get<double>() + r["regression_to_mean_carried"]["estimate"].get<double>() ==
            Approx(r["regression_to_mean_total"]["estimate"].get<double>()).epsilon(1e-9));
    }
  };
  const Scenario s = Scenario::load(kSeed, {"treatment.effect_mmHg=4"});
  const auto j = simulate(s, 300, 2).to_json(42);
  check_identity(j);
  // Non-adherent MgO patients gain nothing, adherent ones 4 / (1 - 0.05): 4 on average.
  const auto& te = j["rtm"]["treatment"]["treatment_effect"];
  CHECK(std::abs(te["estimate"].get<double>() - 4.0) < 4 * te["mcse"].get<double>());
  CHECK(te["mcse"].get<double>() > 0);
  CHECK(j["rtm"]["control"]["treatment_effect"]["estimate"].get<double>() == 0.0);
  // Tiny trials where an arm often has no completers: components cover the same trials.
  const Scenario tiny = Scenario::load(kSeed, {"trial.consented=10", "dropout.death_per_year=1.5"});
  const auto jt = simulate(tiny, 600, 2).to_json(42);
  CHECK(jt["rtm"]["treatment"]["observed_change"]["estimate"].is_number());
  check_identity(jt);
}

namespace {
// The summary of replicates [first, end) as one node, computed on its own (as another process
// of a distributed run would).
SummaryAccumulator node_of(const Scenario& s, std::uint64_t first, std::uint64_t end, int threads) {
  EngineOptions o;
  o.seed = 42;
  o.threads = threads;
  ReductionTree local(s, first);
  simulate_range(s, o, local, end);
  return local.result();
}
}  // namespace

TEST_CASE("a run split into super-chunks, chunks and blocks anywhere gives the same bits", "[engine]") {
  // Small trials, so that more than two super-chunks are cheap; a short last chunk.
  const Scenario s = Scenario::load(kSeed, {"trial.consented=8", "analysis.methods=[\"completers_ttest\"]"});
  const std::uint64_t reps = 2 * kSuperChunkSize + 3 * kChunkSize + 100;
  const std::string whole = simulate(s, reps, 2).to_json(42).dump();

  ReductionTree tree(s);
  tree.append(2, node_of(s, 0, kSuperChunkSize, 1));                       // a super-chunk
  for (std::uint64_t c = 0; c < kSuperChunkSize / kChunkSize; ++c) {       // the next as chunks
    const std::uint64_t first = kSuperChunkSize + c * kChunkSize;
    tree.append(1, node_of(s, first, first + kChunkSize, 2));
  }
  EngineOptions o;
  o.seed = 42;
  o.threads = 3;
  simulate_range(s, o, tree, tree.end() + kChunkSize);                     // blocks, in this process
  // The state moves to another tree exactly, which goes on from there.
  ReductionTree moved(s);
  moved.set_state(tree.state());
  REQUIRE(moved.end() == tree.end());
  moved.append(1, node_of(s, moved.end(), moved.end() + kChunkSize, 1));
  moved.append(1, node_of(s, moved.end(), moved.end() + kChunkSize, 3));
  moved.append(1, node_of(s, moved.end(), reps, 2));                       // the short last node
  CHECK(moved.end() == reps);
  CHECK(moved.result().to_json(42).dump() == whole);
  // And so does a summary's state.
  SummaryAccumulator copy(s);
  copy.set_state(moved.result().state());
  CHECK(copy.to_json(42).dump() == whole);
  // A short last super-chunk.
  const std::uint64_t reps2 = kSuperChunkSize + 3 * kChunkSize + 5;
  ReductionTree two(s);
  two.append(2, node_of(s, 0, kSuperChunkSize, 2));
  two.append(2, node_of(s, kSuperChunkSize, reps2, 1));
  CHECK(two.result().to_json(42).dump() == simulate(s, reps2, 1).to_json(42).dump());
  // Nodes out of place are refused: after the short last node, and a chunk that does not start
  // on a chunk boundary.
  CHECK_THROWS_AS(moved.append(0, node_of(s, 0, kBlockSize, 1)), std::logic_error);
  ReductionTree partial(s);
  partial.append(0, node_of(s, 0, kBlockSize, 1));
  CHECK_FALSE(partial.accepts(1));
  CHECK_THROWS_AS(partial.append(1, node_of(s, kBlockSize, kChunkSize, 1)), std::logic_error);
  CHECK_THROWS_AS(copy.set_state(std::vector<double>(3, 0.0)), std::runtime_error);
}
