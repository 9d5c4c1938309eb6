#include "sim/design/sweep.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

using namespace trialsim;

namespace {
std::string error_of(const std::string& spec) {
  try {
    (void)parse_axis(spec, "--vary");
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("trialsim_test_" + name);
  std::filesystem::remove_all(dir);
  return dir;
}

nlohmann::json without_source(nlohmann::json j) {
  j["scenario"].erase("source");
  return j;
}
}  // namespace

TEST_CASE("sweep axes are lists or inclusive ranges", "[sweep]") {
  const SweepAxis list = parse_axis("trial.consented=60, 80,100", "--vary");
  CHECK(list.key == "trial.consented");
  CHECK(list.values == std::vector<std::string>{"60", "80", "100"});
  CHECK(parse_axis("screening.entry_max=60:90:10", "--vary").values == std::vector<std::string>{"60", "70", "80", "90"});
  CHECK(parse_axis("spp.sd_measurement=2.5:3.5:0.5", "--vary").values == std::vector<std::string>{"2.5", "3", "3.5"});
  CHECK(error_of("trial.consented") == "--vary trial.consented: missing '=' (expected KEY=V1,V2,... or KEY=LO:HI:STEP)");
  CHECK(error_of("a=90:60:10") == "--vary a=90:60:10: a range needs STEP > 0 and HI >= LO");
  CHECK(error_of("a=1:2") == "--vary a=1:2: a range needs three numbers LO:HI:STEP");
  CHECK(error_of("a=1,,2").find("empty value") != std::string::npos);
  CHECK(error_of("a=0:100000:1").find("more than 1000 values") != std::string::npos);
}

TEST_CASE("with common random numbers a grid point equals the plain run of that design", "[sweep]") {
  const std::string seed = std::string(TRIALSIM_SOURCE_DIR) + "/configs/seed_trial.toml";
  const auto dir = fresh_dir("crn");
  SweepOptions o;
  o.scenario_path = seed;
  o.axes = {parse_axis("trial.consented=90,106", "--vary")};
  o.sets = {"analysis.methods=[\"ancova\"]"};
  o.replicates = 200;
  o.seed = 7;
  o.threads = 2;
  o.out_dir = dir.string();
  std::vector<JobProgress> seen;
  o.progress = [&seen](const JobProgress& p) { seen.push_back(p); };
  const SweepResult r = run_sweep(o);
  CHECK(r.points == 2);
  CHECK(r.computed == 2);
  // The live progress names each point as it runs, with the points left after it.
  REQUIRE(!seen.empty());
  CHECK(seen.front().item == "trial.consented=90");
  CHECK(seen.front().items_done == 0);
  CHECK(seen.front().items_left == 1);
  CHECK(seen.back().item == "trial.consented=106");
  CHECK(seen.back().items_left == 0);
  CHECK(seen.back().trials_done == 200);
  o.progress = nullptr;

  EngineOptions e;
  e.replicates = 200;
  e.seed = 7;
  const auto plain = run_replicates(Scenario::load(seed, {"analysis.methods=[\"ancova\"]"}), e).to_json(7);
  std::ifstream in(dir / "sweep.json");
  const auto sweep = nlohmann::json::parse(in);
  REQUIRE(sweep["points"].size() == 2);
  CHECK(sweep["points"][1]["axes"]["trial.consented"] == "106");
  CHECK(without_source(sweep["points"][1]["summary"]).dump() == without_source(plain).dump());

  // Rerunning finds every point done; without common random numbers the points differ.
  CHECK(run_sweep(o).reused == 2);
  o.common_random_numbers = false;
  o.out_dir = fresh_dir("nocrn").string();
  run_sweep(o);
  std::ifstream in2(std::filesystem::path(o.out_dir) / "sweep.json");
  const auto independent = nlohmann::json::parse(in2);
  CHECK(without_source(independent["points"][1]["summary"]).dump() != without_source(plain).dump());
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(o.out_dir);
}

TEST_CASE("a bad grid value stops the sweep before anything is written", "[sweep]") {
  const auto dir = fresh_dir("bad");
  SweepOptions o;
  o.scenario_path = std::string(TRIALSIM_SOURCE_DIR) + "/configs/seed_trial.toml";
  o.axes = {parse_axis("trial.alpha=0.05,1.5", "--vary")};
  o.replicates = 10;
  o.out_dir = dir.string();
  try {
    run_sweep(o);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == "--vary trial.alpha=1.5: trial.alpha: must be in [1e-10, 1) (below 1e-10 the critical values leave double precision), got 1.5");
  }
  CHECK_FALSE(std::filesystem::exists(dir));
}

TEST_CASE("run --summary-csv's table holds the summary JSON's figures, as sweep.csv does", "[sweep]") {
  const Scenario s = Scenario::load(std::string(TRIALSIM_SOURCE_DIR) + "/configs/seed_trial.toml",
                                    {"trial.consented=40", R"(analysis.methods=["ancova","mmrm"])"});
  EngineOptions o;
  o.replicates = 200;
  o.seed = 3;
  o.threads = 1;
  const nlohmann::json j = run_replicates(s, o).to_json(o.seed);
  const std::string csv = summary_csv(j);
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  CHECK(line == "method,metric,estimate,mcse");
  std::map<std::pair<std::string, std::string>, std::pair<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream cells(line);
    for (std::string c; std::getline(cells, c, ',');) f.push_back(c);
    if (line.back() == ',') f.emplace_back();
    REQUIRE(f.size() == 4);
    rows[{f[0], f[1]}] = {f[2], f[3]};
  }
  // Two analyses x 9 measures, and the design rows.
  CHECK(rows.count({"design", "replicates"}) == 1);
  CHECK(rows.at({"design", "replicates"}).first == "200");
  CHECK(rows.at({"design", "replicates"}).second.empty());
  for (const char* m : {"ancova", "mmrm"}) {
    for (const char* measure : {"power", "mean_estimate", "bias", "emp_se", "model_se", "rmse", "coverage"}) {
      INFO(m << " " << measure);
      const auto& r = rows.at({m, measure});
      const nlohmann::json& want = j["analyses"][m][measure];
      CHECK(std::stod(r.first) == Approx(want["estimate"].get<double>()).epsilon(1e-9));
      CHECK(std::stod(r.second) == Approx(want["mcse"].get<double>()).epsilon(1e-9));
    }
  }
  CHECK(std::stod(rows.at({"design", "randomized"}).first) == Approx(j["funnel"]["randomized"]["estimate"].get<double>()).epsilon(1e-9));
}
