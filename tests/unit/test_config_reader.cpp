#include "sim/io/scenario.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace trialsim;

namespace {
std::string error_of(const std::string& toml, const std::vector<std::string>& sets = {}) {
  try {
    ConfigReader in = ConfigReader::from_string(toml, "x.toml");
    for (const auto& s : sets) in.apply_override(s);
    (void)Scenario::read(in);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("an empty scenario loads with documented defaults", "[config]") {
  ConfigReader in = ConfigReader::from_string("", "empty.toml");
  const Scenario s = Scenario::read(in);
  CHECK(s.trial.consented == 106);
  CHECK(s.trial.months == std::vector<double>{0, 6, 12});
  CHECK_FALSE(s.screening.entry_max.has_value());
  CHECK(s.treatment.effect_onset_months == 12.0);
  CHECK(s.analysis.mmrm_df == MmrmDf::kenward_roger);
}

TEST_CASE("the MMRM's df rule is read by name and a wrong name says which are allowed", "[config]") {
  ConfigReader in = ConfigReader::from_string("[analysis]\nmmrm_df = \"satterthwaite\"\n", "x.toml");
  CHECK(Scenario::read(in).analysis.mmrm_df == MmrmDf::satterthwaite);
  ConfigReader set = ConfigReader::from_string("", "x.toml");
  set.apply_override("analysis.mmrm_df=\"satterthwaite_expected\"");
  CHECK(Scenario::read(set).analysis.mmrm_df == MmrmDf::satterthwaite_expected);
  CHECK(error_of("[analysis]\nmmrm_df = \"kr\"\n") ==
        "x.toml:2: analysis.mmrm_df: must be one of kenward_roger, satterthwaite, satterthwaite_expected, got \"kr\"");
}

TEST_CASE("an out-of-range value names file, line, key, value and the expected range", "[config]") {
  CHECK(error_of("[trial]\nconsented = 50\n\n[dropout]\ndeath_per_year = -0.1\n") ==
        "x.toml:5: dropout.death_per_year: must be in [0, 100], got -0.1");
  CHECK(error_of("[trial]\nalpha = 1.5\n") == "x.toml:2: trial.alpha: must be in [1e-10, 1) (below 1e-10 the critical values leave double precision), got 1.5");
  CHECK(error_of("[screening]\npre_baseline_loss = 1.0\n") ==
        "x.toml:2: screening.pre_baseline_loss: must be in [0, 1), got 1.0");
}

TEST_CASE("a value of the wrong type is rejected with its type", "[config]") {
  CHECK(error_of("[trial]\nconsented = \"many\"\n") ==
        "x.toml:2: trial.consented: expected an integer, got a string \"many\"");
  CHECK(error_of("[trial]\nconsented = 10.5\n") ==
        "x.toml:2: trial.consented: expected an integer, got a number 10.5");
  CHECK(error_of("[spp]\nmean = true\n") == "x.toml:2: spp.mean: expected a number, got a boolean true");
}

TEST_CASE("an unknown key is an error that suggests the near miss", "[config]") {
  CHECK(error_of("[dropout]\ndeath_per_yaer = 0.1\n") ==
        "x.toml:2: dropout.death_per_yaer: unknown key; did you mean dropout.death_per_year?");
  CHECK(error_of("[dropuot]\ndeath_per_year = 0.1\n") ==
        "x.toml:1: dropuot: unknown section; did you mean [dropout]?");
  CHECK(error_of("[trial]\nsomething_else = 1\n") == "x.toml:2: trial.something_else: unknown key (see README, 'Scenario keys')");
}

TEST_CASE("a syntax error reports line and column", "[config]") {
  const std::string e = error_of("[trial]\nconsented = = 3\n");
  CHECK(e.rfind("x.toml:2:", 0) == 0);
  CHECK(e.find("TOML syntax error") != std::string::npos);
}

TEST_CASE("a --set override changes a key and is validated like the file", "[config]") {
  ConfigReader in = ConfigReader::from_string("[trial]\nconsented = 50\n", "x.toml");
  in.apply_override("trial.consented=80");
  in.apply_override("randomization.method=block");  // bare word taken as a string
  in.apply_override("treatment.effect_mmHg = 4.5");
  const Scenario s = Scenario::read(in);
  CHECK(s.trial.consented == 80);
  CHECK(s.randomization.method == RandomizationMethod::block);
  CHECK(s.treatment.effect_mmHg == 4.5);

  CHECK(error_of("", {"trial.alpha=2"}) == "--set trial.alpha=2: trial.alpha: must be in [1e-10, 1) (below 1e-10 the critical values leave double precision), got 2");
  CHECK(error_of("", {"trial.alhpa=0.1"}) == "--set trial.alhpa=0.1: trial.alhpa: unknown key; did you mean trial.alpha?");
  CHECK(error_of("", {"trial.alpha"}).find("expected KEY=VALUE") != std::string::npos);
  CHECK(error_of("[trial]\nconsented = 106\n", {"trial.consented.x=1"}) ==
        "--set trial.consented.x=1: trial.consented is 106, not a section");
  CHECK(error_of("", {"trial.consented.x=1"}) ==
        "--set trial.consented.x=1: trial.consented: expected an integer, got a table");
}

TEST_CASE("inconsistent designs are rejected at load time", "[config]") {
  CHECK(error_of("[trial]\nmonths = [6, 12]\n") ==
        "x.toml:2: trial.months: the first visit must be month 0 (baseline), got [6, 12]");
  CHECK(error_of("[trial]\nmonths = [0, 12, 6]\n") == "x.toml:2: trial.months: visit months must be strictly increasing");
  CHECK(error_of("[screening]\nentry_max = 40\nentry_min = 50\n").find("screening.entry_max: must be above screening.entry_min") !=
        std::string::npos);
  CHECK(error_of("[randomization]\nblock_sizes = [4, 5]\n") ==
        "x.toml:2: randomization.block_sizes: every block size must be a multiple of 2 (the sum of randomization.ratio), got 5");
  CHECK(error_of("[analysis]\nmethods = [\"ancova\", \"mmrm_typo\"]\n").find("element 2 must be one of") != std::string::npos);
  CHECK(error_of("[randomization]\nmethod = \"urn\"\n") ==
        "x.toml:2: randomization.method: must be one of simple, block, stratified_block, minimization, got \"urn\"");
}

TEST_CASE("values that would make results meaningless are rejected", "[config]") {
  CHECK(error_of("[treatment]\neffect_onset_months = 24.0\n") ==
        "x.toml:2: treatment.effect_onset_months: must be in [0, 12], got 24.0; the limit follows trial.months "
        "(its default): change either key");
  CHECK(error_of("[treatment]\ntitration_months = [1.0, 13.0]\n") ==
        "x.toml:2: treatment.titration_months: element 2 must be in (0, 12], got 13.0");
  CHECK(error_of("[dropout]\nspp_hazard_ratio_per_10 = 1e300\n") ==
        "x.toml:2: dropout.spp_hazard_ratio_per_10: must be in [0.01, 100], got 1e+300");
  CHECK(error_of("[trial]\nmonths = [0, 6.0000001, 6.0000002]\n").find("too close to label apart") != std::string::npos);
  CHECK(error_of("", {"trial.alpha=0.1\ntrial.consented=5"}).find("one value per --set") != std::string::npos);
  CHECK(error_of("", {"trial={alpha=0.1}"}) == "--set trial={alpha=0.1}: trial: set keys one at a time, e.g. --set trial.KEY=VALUE");
}

TEST_CASE("values whose derived figures would overflow are refused, saying why", "[config]") {
  CHECK(error_of("[spp]\nsd_measurement = 1e308\n") ==
        "x.toml:2: spp.sd_measurement: must be in [0, 1000000] (a limit that keeps every derived figure finite), "
        "got 1e+308");
  CHECK(error_of("[treatment]\neffect_mmHg = -1e7\n").find("treatment.effect_mmHg: must be in [-1000000, 1000000]") !=
        std::string::npos);
  CHECK(error_of("[population]\nmg_mean = 1e308\n").find("population.mg_mean: must be in (0, 100]") != std::string::npos);
  CHECK(error_of("[trial]\nalpha = 5e-324\n").find("(below 1e-10 the critical values leave double precision)") !=
        std::string::npos);
  CHECK(error_of("", {"screening.entry_max=-2e6"}).find("--set screening.entry_max=-2e6: screening.entry_max: must be in") !=
        std::string::npos);
  // The limits themselves are accepted.
  CHECK(error_of("[spp]\nsd_measurement = 1e6\ndrift_per_year = -1e6\n[treatment]\neffect_mmHg = 1e6\n") == "no error");
  CHECK(error_of("[trial]\nalpha = 1e-10\n") == "no error");
}

TEST_CASE("the nearest name is suggested only for a near miss", "[config]") {
  const std::vector<std::string> commands{"run", "sweep", "samplesize", "validate", "calibrate", "merge"};
  CHECK(nearest("runn", commands) == "run");
  CHECK(nearest("sampelsize", commands) == "samplesize");
  CHECK(nearest("swep", commands) == "sweep");
  CHECK(nearest("xyzzy", commands).empty());
  CHECK(nearest("--seedd", {"--seed", "--reps", "--json"}) == "--seed");
  CHECK(nearest("--output", {"--seed", "--reps", "--json"}).empty());
}

TEST_CASE("a cutoff nobody can pass is rejected before simulating", "[config]") {
  const std::string e = error_of("[screening]\nentry_max = -20.0\n");
  CHECK(e.rfind("x.toml:2: screening.entry_max: nobody can pass this cutoff", 0) == 0);
  CHECK(error_of("[screening]\nentry_max = 40.0\n") == "no error");
  CHECK(error_of("[trial]\nconsented = 2\n[screening]\npre_baseline_loss = 0.5\n").find("trial.consented: too few patients") !=
        std::string::npos);
}

TEST_CASE("'none' removes an optional key and is an error for any other", "[config]") {
  ConfigReader in = ConfigReader::from_string("[screening]\nentry_max = 80.0\n", "x.toml");
  in.apply_override("screening.entry_max=none");
  CHECK_FALSE(Scenario::read(in).screening.entry_max.has_value());
  // A later value brings it back.
  ConfigReader again = ConfigReader::from_string("[screening]\nentry_max = 80.0\n", "x.toml");
  again.apply_override("screening.entry_max=none");
  again.apply_override("screening.entry_max=70");
  CHECK(Scenario::read(again).screening.entry_max == 70.0);
  CHECK(error_of("", {"trial.alpha=none"}) ==
        "--set trial.alpha=none: trial.alpha: cannot be none (only optional keys such as screening.entry_max can be removed)");
  CHECK(error_of("", {"screening.entry_mx=none"}) ==
        "--set screening.entry_mx=none: screening.entry_mx: unknown key; did you mean screening.entry_max?");
}

namespace {
std::filesystem::path write_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
  return p;
}
std::string load_error(const std::filesystem::path& p) {
  try {
    (void)Scenario::load(p.string());
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("a scenario extends another file, key by key, and errors name the file that set the key", "[config]") {
  const auto dir = std::filesystem::temp_directory_path() / "trialsim_test_extends";
  std::filesystem::remove_all(dir);
  write_file(dir / "base.toml", "[trial]\nconsented = 50\nalpha = 0.05\n[treatment]\neffect_mmHg = 3.0\n");
  const auto child = write_file(dir / "sub" / "child.toml", "extends = \"../base.toml\"\n[trial]\nconsented = 70\n");
  const Scenario s = Scenario::load(child.string());
  CHECK(s.trial.consented == 70);           // the child's value wins
  CHECK(s.treatment.effect_mmHg == 3.0);    // the rest comes from the base
  CHECK(s.trial.alpha == 0.05);

  write_file(dir / "bad_base.toml", "[trial]\n\nalpha = 2.0\n");
  const auto bad = write_file(dir / "bad_child.toml", "extends = \"bad_base.toml\"\n");
  CHECK(load_error(bad) == (dir / "bad_base.toml").string() + ":3: trial.alpha: must be in [1e-10, 1) (below 1e-10 the critical values leave double precision), got 2.0");
  const auto typo = write_file(dir / "typo.toml", "extends = \"base.toml\"\n[trial]\nconsentd = 70\n");
  CHECK(load_error(typo) == typo.string() + ":3: trial.consentd: unknown key; did you mean trial.consented?");

  const auto a = write_file(dir / "a.toml", "extends = \"b.toml\"\n");
  write_file(dir / "b.toml", "extends = \"a.toml\"\n");
  CHECK(load_error(a).find("extends this file again (a cycle)") != std::string::npos);
  const auto missing = write_file(dir / "m.toml", "extends = \"nowhere.toml\"\n");
  CHECK(load_error(missing) == missing.string() + ":1: extends: no such scenario file " + (dir / "nowhere.toml").string());
  const auto number = write_file(dir / "n.toml", "extends = 3\n");
  CHECK(load_error(number) == number.string() + ":1: extends: expected the path of a scenario file, got 3");
}

TEST_CASE("every shipped scenario loads, and its sweep axes resolve", "[config]") {
  const std::filesystem::path dir = std::string(TRIALSIM_SOURCE_DIR) + "/configs";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    // Observed statistics for calibrate, not scenarios (tests/statistical/test_calibrate.cpp).
    if (entry.path().stem().string().ends_with("_observed")) continue;
    ++files;
    INFO(entry.path().string());
    const Scenario s = Scenario::load(entry.path().string());
    for (const auto& axis : s.sweep_vary) {
      const auto eq = axis.find('=');
      REQUIRE(eq != std::string::npos);
      // The first value of each axis must itself load.
      const std::string first = axis.substr(0, axis.find_first_of(",:", eq));
      CHECK_NOTHROW(Scenario::load(entry.path().string(), {}, {first}));
    }
  }
  CHECK(files >= 4);
  const Scenario entry = Scenario::load(std::string(TRIALSIM_SOURCE_DIR) + "/configs/entry_criteria.toml");
  CHECK(entry.treatment.effect_mmHg == 8.0);
  CHECK(entry.population.prior_mg_prob == 0.0283);  // from seed_trial.toml
  CHECK(entry.sweep_vary.size() == 3);
}

TEST_CASE("labels name the outcome, unit and arms; data keys keep their names", "[config]") {
  ConfigReader empty = ConfigReader::from_string("", "x.toml");
  const Scenario seed = Scenario::read(empty);
  CHECK(seed.labels.outcome == "SPP");
  CHECK(seed.labels.unit == "mmHg");
  CHECK(seed.labels.arm("treatment") == "MgO");
  CHECK(seed.labels.arm("control") == "control");
  ConfigReader in = ConfigReader::from_string(
      "[labels]\noutcome = \"HbA1c\"\nunit = \"%\"\ntreatment = \"Pioglitazone 30 mg\"\ncontrol = \"Placebo\"\n", "x.toml");
  const Scenario own = Scenario::read(in);
  CHECK(own.labels.arm("treatment") == "Pioglitazone 30 mg");
  CHECK(own.labels.arm("control") == "Placebo");
  CHECK(own.hypothesis_text() == "two-sided, H0: effect = 0 %, alpha 0.05");
  // Through the JSON every output carries, and the seed trial's for JSON without labels.
  const Labels back = Labels::from_json(own.to_json());
  CHECK(back.outcome == "HbA1c");
  CHECK(back.unit == "%");
  CHECK(back.treatment == "Pioglitazone 30 mg");
  CHECK(back.control == "Placebo");
  CHECK(Labels::from_json(nlohmann::json::object()).treatment == "MgO");
  CHECK(Labels::capital("placebo") == "Placebo");
  CHECK(Labels::capital("β-blocker") == "β-blocker");

  CHECK(error_of("[labels]\nunit = \"\"\n") == "x.toml:2: labels.unit: expected 1 to 40 characters, got 0 in \"\"");
  CHECK(error_of("[labels]\noutcome = \"" + std::string(41, 'a') + "\"\n").find("expected 1 to 40 characters, got 41") !=
        std::string::npos);
  CHECK(error_of("[labels]\noutcome = \"a\\tb\"\n").find("labels.outcome: a label is one line of printable text") !=
        std::string::npos);
  CHECK(error_of("[labels]\ncontrol = \" placebo\"\n").find("no leading or trailing spaces") != std::string::npos);
  CHECK(error_of("[labels]\ntreatment = \"A\"\ncontrol = \"A\"\n") ==
        "x.toml:3: labels.control: the two arms need different labels, both are \"A\"");
  CHECK(error_of("[labels]\nunit = 3\n").find("labels.unit: expected a string") != std::string::npos);
  // Forty characters of UTF-8 are forty characters, not their bytes.
  std::string greek;
  for (int i = 0; i < 40; ++i) greek += "μ";
  CHECK(error_of("[labels]\nunit = \"" + greek + "\"\n") == "no error");
}
