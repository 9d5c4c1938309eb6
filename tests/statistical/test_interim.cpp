// Staggered entry and group-sequential designs in the simulation (models/interim.hpp,
// TrialSimulator::interim_looks): what each look sees, what the outputs say, the input errors.
#include "sim/engine/engine.hpp"
#include "sim/engine/trial.hpp"
#include "sim/io/scenario.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace trialsim;

namespace {
const std::string kSeed = std::string(TRIALSIM_SOURCE_DIR) + "/configs/seed_trial.toml";

std::string error_of(const std::string& toml) {
  try {
    ConfigReader in = ConfigReader::from_string(toml, "x.toml");
    (void)Scenario::read(in);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

SummaryAccumulator simulate(const Scenario& s, std::uint64_t reps, int threads = 2, std::uint64_t seed = 11) {
  EngineOptions o;
  o.replicates = reps;
  o.seed = seed;
  o.threads = threads;
  return run_replicates(s, o);
}

Scenario seed_with(const std::vector<std::string>& sets) { return Scenario::load(kSeed, sets); }

// Randomized patients seen at the last visit, and of them those whose last visit falls by a
// calendar month.
std::size_t completers_by(const TrialData& t, double last_month, double month = std::numeric_limits<double>::infinity()) {
  std::size_t n = 0;
  for (std::size_t row = 0; row < t.rows; ++row) n += t.seen_at(row, t.last()) && t.row_entry_month[row] + last_month <= month;
  return n;
}
}  // namespace

TEST_CASE("interim keys are checked: what a design needs and what applies", "[interim][config]") {
  const std::string accrual = "[trial]\naccrual_months = 12.0\n";
  CHECK_THAT(error_of("[interim]\nfractions = [0.5, 1]\n"), Catch::Contains("trial.accrual_months"));
  CHECK_THAT(error_of(accrual + "[interim]\nfractions = [0.5, 0.9]\n"), Catch::Contains("last look is the final analysis"));
  CHECK_THAT(error_of(accrual + "[interim]\nfractions = [0.6, 0.5, 1]\n"), Catch::Contains("strictly increasing"));
  CHECK_THAT(error_of(accrual + "[interim]\nfractions = [1]\n"), Catch::Contains("at least 2 looks"));
  CHECK_THAT(error_of(accrual + "[interim]\nfractions = [0.5, 1]\nhsd_gamma = 1.0\n"), Catch::Contains("interim.efficacy = \"hsd\""));
  CHECK_THAT(error_of("[interim]\nefficacy = \"pocock\"\n"), Catch::Contains("set interim.fractions"));
  CHECK_THAT(error_of(accrual + "[interim]\nfractions = [0.5, 1]\nfutility = \"z\"\nfutility_z = [0.0]\n"),
             Catch::Contains("trial.sides = 1"));
  const std::string one_sided = "[trial]\naccrual_months = 12.0\nsides = 1\nalpha = 0.025\n";
  CHECK_THAT(error_of(one_sided + "[interim]\nfractions = [0.5, 1]\nfutility = \"z\"\n"), Catch::Contains("interim.futility_z"));
  CHECK_THAT(error_of(one_sided + "[interim]\nfractions = [0.5, 1]\nbeta = 0.1\n"), Catch::Contains("interim.futility = \"beta_spending\""));
  CHECK_THAT(error_of(one_sided + "[interim]\nfractions = [0.5, 1]\nefficacy = \"user\"\nefficacy_alpha = [0.01, 0.02]\n"),
             Catch::Contains("spends all of trial.alpha"));
  CHECK_THAT(error_of(one_sided + "[interim]\nfractions = [0.5, 1]\nefficacy = \"user\"\nefficacy_alpha = [0.03, 0.025]\n"),
             Catch::Contains("must not decrease"));
  CHECK_THAT(error_of("[trial]\naccrual_rates = [1, 2]\n"), Catch::Contains("trial.accrual_months"));
  CHECK_THAT(error_of("[trial]\naccrual_months = -3\n"), Catch::Contains("trial.accrual_months"));
  CHECK(error_of("[trial]\naccrual_months = 0\n") == "no error");  // 0: everyone at month 0
  CHECK_THAT(error_of("[trial]\naccrual_months = 0\n[interim]\nfractions = [0.5, 1]\n"), Catch::Contains("trial.accrual_months"));
  // An O'Brien-Fleming first look that spends almost nothing (below 1e-16) still has a bound.
  CHECK(error_of(accrual + "[interim]\nfractions = [0.05, 1]\n") == "no error");
  CHECK_THAT(error_of(one_sided + "[interim]\nfractions = [0.5, 1]\nfutility = \"conditional_power\"\nbinding = true\n"),
             Catch::Contains("cannot bind"));
  CHECK_THAT(error_of(one_sided + "[interim]\nfractions = [0.5, 1]\nfutility_cp = 0.2\n"), Catch::Contains("conditional_power"));
  CHECK(error_of(one_sided + "[interim]\nfractions = [0.5, 1]\nfutility = \"conditional_power\"\nfutility_cp = 0.2\n") == "no error");
  CHECK(error_of(one_sided + "[interim]\nfractions = [0.3, 0.6, 1]\nefficacy = \"hsd\"\nhsd_gamma = -2.0\n"
                             "futility = \"beta_spending\"\nbeta_spending = \"pocock\"\nbeta = 0.1\nbinding = true\n") == "no error");
}

TEST_CASE("accrual: consent times are sorted uniform order statistics through the intensity", "[interim]") {
  const Scenario s = seed_with({"trial.accrual_months=24", "trial.consented=400"});
  const TrialSimulator sim(s);
  Workspace ws;
  double sum = 0, below_half = 0;
  const int trials = 50;
  for (int r = 0; r < trials; ++r) {
    sim.simulate(3, static_cast<std::uint64_t>(r), ws);
    const TrialData& t = ws.trial;
    CHECK(std::is_sorted(t.entry_month.begin(), t.entry_month.begin() + static_cast<long>(t.consented)));
    CHECK(t.entry_month[0] >= 0.0);
    CHECK(t.entry_month[t.consented - 1] <= 24.0);
    for (std::size_t i = 0; i < t.consented; ++i) {
      sum += t.entry_month[i];
      below_half += t.entry_month[i] < 12.0;
    }
    for (std::size_t k = 0; k < t.rows; ++k) CHECK(t.row_entry_month[k] == t.entry_month[t.patient[k]]);
  }
  // Uniform on [0, 24]: mean 12, SD 24 / sqrt(12) per patient.
  const double n = trials * 400.0;
  CHECK(std::abs(sum / n - 12.0) < 4 * 24.0 / std::sqrt(12.0 * n));
  CHECK(std::abs(below_half / n - 0.5) < 4 * std::sqrt(0.25 / n));
  // Rates 1 then 3 over the two halves: a quarter of the patients consent in the first half.
  const Scenario r = seed_with({"trial.accrual_months=24", "trial.consented=400", "trial.accrual_rates=[1, 3]"});
  CHECK(r.trial.accrual_month_at(0.25) == Approx(12.0));
  CHECK(r.trial.accrual_month_at(1.0) == Approx(24.0));
  CHECK(r.trial.accrual_month_at(0.625) == Approx(18.0));
  const TrialSimulator sim2(r);
  double first = 0;
  for (int k = 0; k < trials; ++k) {
    sim2.simulate(3, static_cast<std::uint64_t>(k), ws);
    for (std::size_t i = 0; i < ws.trial.consented; ++i) first += ws.trial.entry_month[i] < 12.0;
  }
  CHECK(std::abs(first / n - 0.25) < 4 * std::sqrt(0.25 * 0.75 / n));
}

TEST_CASE("accrual alone changes no result: follow-up is counted from each patient's consent", "[interim]") {
  const auto methods = "analysis.methods=[\"completers_ttest\", \"ancova\", \"mmrm\"]";
  const auto a = simulate(seed_with({methods}), 256).to_json(11);
  auto b = simulate(seed_with({methods, "trial.accrual_months=30"}), 256).to_json(11);
  CHECK(b["analyses"] == a["analyses"]);
  CHECK(b["funnel"] == a["funnel"]);
  CHECK_FALSE(b.contains("interim"));
}

TEST_CASE("interim looks: what each look sees and what the summary reports", "[interim]") {
  const Scenario s = seed_with({"trial.accrual_months=24", "interim.fractions=[0.4, 0.7, 1]", "treatment.effect_mmHg=8",
                                "analysis.methods=[\"completers_ttest\", \"ancova\", \"mmrm\"]"});
  const TrialSimulator sim(s);
  Workspace ws;
  const std::size_t last = s.trial.months.size() - 1;
  for (std::uint64_t r = 0; r < 40; ++r) {
    const ReplicateResult res = sim.run(5, r, ws);
    const TrialData& t = ws.trial;
    const InterimResult& in = res.interim;
    REQUIRE(in.enabled);
    REQUIRE(in.looks == 3);
    CHECK(in.held[2]);
    const std::size_t completers = completers_by(t, s.trial.months[last]);
    for (std::size_t k = 0; k < 3; ++k) {
      if (!in.held[k]) continue;
      // The look falls when its share of the final completers has reached the last visit.
      std::size_t observed = 0, randomized = 0;
      for (std::size_t row = 0; row < t.rows; ++row) {
        randomized += t.row_entry_month[row] <= in.month[k];
        observed += t.seen_at(row, last) && t.row_entry_month[row] + s.trial.months[last] <= in.month[k] + 1e-9;
      }
      CHECK(static_cast<double>(observed) == Approx(in.fraction[k] * static_cast<double>(completers)));
      if (k < 2) CHECK(in.fraction[k] >= s.interim.fractions[k]);
      CHECK(in.randomized[k] == static_cast<double>(randomized));
      CHECK(in.consented[k] <= static_cast<double>(t.consented));
      if (k > 0 && in.held[k - 1]) CHECK(in.month[k] > in.month[k - 1]);
      CHECK(std::isfinite(in.upper[k]));
      // The look's completers t test sees exactly its share of the completers, the one whose
      // last visit sets the look included: df = completers - 2.
      if (k < 2) {
        AnalysisWorkspace aw;
        const Analysis analysis(s.analysis);
        const auto est = analysis.estimate_look(t, randomized, t.row_entry_month.data(), s.trial.months, in.month[k],
                                                {Method::completers_ttest}, aw, 5, r, k + 1);
        const Estimate& e = est[static_cast<std::size_t>(Method::completers_ttest)];
        if (e.estimable()) CHECK(e.df == Approx(static_cast<double>(observed) - 2.0));
      }
    }
    for (const Method m : s.analysis.methods) {
      const auto i = static_cast<std::size_t>(m);
      const auto stop = static_cast<std::size_t>(in.stop_look[i]);
      REQUIRE(stop < 3);
      CHECK(in.held[stop]);
      const double z = in.z[i][stop];
      if (in.reason[i] == InterimStop::efficacy) CHECK(std::abs(z) >= in.upper[stop]);
      // No look before the stop crossed.
      for (std::size_t k = 0; k < stop; ++k) {
        if (in.held[k] && std::isfinite(in.z[i][k])) CHECK(std::abs(in.z[i][k]) < in.upper[k]);
      }
      // Looks after the stop were not analysed by this method.
      for (std::size_t k = stop + 1; k < 3; ++k) CHECK(std::isnan(in.z[i][k]));
    }
  }

  const SummaryAccumulator sum = simulate(s, 400);
  const auto j = sum.to_json(11);
  REQUIRE(j.contains("interim"));
  const auto& looks = j["interim"]["looks"];
  REQUIRE(looks.size() == 3);
  for (const Method m : s.analysis.methods) {
    const std::string name(method_name(m));
    double total = 0;
    for (const auto& l : looks) total += l["stop_efficacy"][name]["estimate"].get<double>();
    // The design's power is the sum over looks of stopping for efficacy, and the analyses say so.
    CHECK(total == Approx(j["analyses"][name]["power"]["estimate"].get<double>()).margin(1e-12));
    CHECK(looks[2]["cumulative_power"][name]["estimate"].get<double>() == Approx(total).margin(1e-12));
    CHECK(j["interim"]["methods"][name]["power"]["estimate"] == j["analyses"][name]["power"]["estimate"]);
    CHECK(j["interim"]["methods"][name]["calendar_month_at_end"]["estimate"].get<double>() <=
          looks[2]["calendar_month"]["estimate"].get<double>() + 1e-9);
  }
  // Planned O'Brien-Fleming bounds at 0.4, 0.7, 1 (two-sided, alpha 0.05; rpact 3.3.4: 3.356869356, 2.444542281,
  // 2.000539068).
  const auto& planned = j["interim"]["planned"]["efficacy_bounds"];
  CHECK(planned[0].get<double>() == Approx(3.356869356).margin(1e-6));
  CHECK(planned[1].get<double>() == Approx(2.444542281).margin(1e-6));
  CHECK(planned[2].get<double>() == Approx(2.000539068).margin(1e-6));
  CHECK(j.dump().find("NaN") == std::string::npos);
  // The terminal says it too.
  const std::string table = sum.to_table(11);
  CHECK_THAT(table, Catch::Contains("Group-sequential design: 3 looks, obf alpha spending"));
}

TEST_CASE("interim results are the same at any thread count and across a shard merge", "[interim][engine]") {
  const Scenario s = seed_with({"trial.accrual_months=24", "interim.fractions=[0.5, 1]", "trial.sides=1", "trial.alpha=0.025",
                                "interim.futility=\"beta_spending\"", "analysis.methods=[\"ancova\", \"mi_delta\"]"});
  const auto one = simulate(s, 192, 1);
  const auto two = simulate(s, 192, 2);
  CHECK(one.to_json(11).dump() == two.to_json(11).dump());
  SummaryAccumulator restored(s);
  restored.set_state(two.state());
  CHECK(restored.to_json(11).dump() == two.to_json(11).dump());
}

TEST_CASE("a look needing more completers than a trial has is not held", "[interim]") {
  // 6 consented: at most 6 completers, so a look at 0.95 falls on the final analysis.
  const Scenario s = seed_with({"trial.consented=12", "screening.entry_max=none", "trial.accrual_months=12",
                                "interim.fractions=[0.2, 0.95, 1]", "analysis.methods=[\"completers_ttest\"]"});
  const auto j = simulate(s, 200).to_json(11);
  const auto& looks = j["interim"]["looks"];
  CHECK(looks[1]["held"]["estimate"].get<double>() < 1.0);
  CHECK(looks[2]["held"]["estimate"].get<double>() == 1.0);
  CHECK(j.dump().find("NaN") == std::string::npos);
}

TEST_CASE("binding futility at a small trial's information fractions spends what is left", "[interim]") {
  // Pocock with binding z futility of 1.74: at 22 completers (fractions 0.5, 0.773) less alpha
  // is left after the futility exits than the last look should spend; the run still completes.
  const Scenario s = seed_with({"trial.consented=30", "screening.entry_max=none", "trial.accrual_months=12", "trial.sides=1",
                                "trial.alpha=0.025", "interim.fractions=[0.5, 0.75, 1]", "interim.efficacy=\"pocock\"",
                                "interim.futility=\"z\"", "interim.futility_z=[1.74, 1.74]", "interim.binding=true",
                                "analysis.methods=[\"completers_ttest\"]"});
  const InterimDesign d(s.interim, 30);
  for (std::size_t n = 0; n <= 30; ++n) CHECK_NOTHROW(d.for_completers(n));
  const auto j = simulate(s, 300).to_json(11);
  CHECK(j.dump().find("NaN") == std::string::npos);
}

TEST_CASE("conditional-power futility bounds: the z where the current trend's conditional power is gamma", "[interim]") {
  InterimConfig c;
  c.fractions = {0.5, 1.0};
  c.sides = 1;
  c.efficacy.alpha = 0.025;
  c.futility = FutilityRule::conditional_power;
  c.futility_cp = 0.2;
  const InterimDesign d(c, 0);
  const LookBounds& b = d.planned();
  // At the bound, CP = 1 - Phi((c_K - z / sqrt(t)) / sqrt(1 - t)) equals gamma.
  const double t = 0.5, z = b.lower[0], cK = b.upper[1];
  const double cp = 0.5 * std::erfc((cK - z / std::sqrt(t)) / std::sqrt(1 - t) / std::sqrt(2.0));
  CHECK(cp == Approx(0.2).margin(1e-12));
  CHECK(std::isinf(b.lower[1]));
}

TEST_CASE("looks at calendar months see the completers observed by then", "[interim]") {
  const Scenario s = seed_with({"trial.accrual_months=24", "interim.months=[22, 28]", "treatment.effect_mmHg=8",
                                "analysis.methods=[\"completers_ttest\", \"mmrm\"]"});
  REQUIRE(s.interim.by_calendar());
  REQUIRE(s.interim.looks() == 3);
  // Planned information: the share of primary visits (month 12) due by months 22 and 28 of a
  // uniform 24-month accrual.
  CHECK(s.interim.fractions[0] == Approx(10.0 / 24.0).margin(1e-9));
  CHECK(s.interim.fractions[1] == Approx(16.0 / 24.0).margin(1e-9));
  const TrialSimulator sim(s);
  Workspace ws;
  const std::size_t last = s.trial.months.size() - 1;
  for (std::uint64_t r = 0; r < 30; ++r) {
    const ReplicateResult res = sim.run(9, r, ws);
    const TrialData& t = ws.trial;
    const InterimResult& in = res.interim;
    const std::size_t completers = completers_by(t, s.trial.months[last]);
    for (std::size_t k = 0; k < 2; ++k) {
      if (!in.held[k]) continue;
      CHECK(in.month[k] == s.interim.calendar_months[k]);
      const std::size_t by = completers_by(t, s.trial.months[last], in.month[k]);
      CHECK(in.fraction[k] == Approx(static_cast<double>(by) / static_cast<double>(completers)));
    }
  }
  const auto j = simulate(s, 300).to_json(11);
  CHECK(j["scenario"]["interim"]["months"] == nlohmann::json::array({22.0, 28.0}));
  CHECK(j.dump().find("NaN") == std::string::npos);
  CHECK_THAT(error_of("[trial]\naccrual_months = 24\n[interim]\nmonths = [6]\n"), Catch::Contains("before any patient's primary visit"));
  CHECK_THAT(error_of("[trial]\naccrual_months = 24\n[interim]\nmonths = [40]\n"), Catch::Contains("after the last patient's primary visit"));
  CHECK_THAT(error_of("[trial]\naccrual_months = 24\n[interim]\nmonths = [20]\nfractions = [0.5, 1]\n"), Catch::Contains("not both"));
}
