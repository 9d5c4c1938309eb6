// Approval tests: fixed-seed summaries must match the approved JSON (volatile fields, such as
// the scenario's path and the version, are ignored). After an intended change of results,
// regenerate with tests/regression/update.sh and review the diff.
#include "sim/engine/engine.hpp"
#include "sim/io/scenario.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

using namespace trialsim;
using nlohmann::json;

namespace {

void compare(const json& got, const json& want, const std::string& path) {
  INFO(path);
  if (want.is_object()) {
    REQUIRE(got.is_object());
    for (auto it = want.begin(); it != want.end(); ++it) {
      if (it.key() == "source" || it.key() == "trialsim_version") continue;
      REQUIRE(got.contains(it.key()));
      compare(got[it.key()], it.value(), path + "." + it.key());
    }
    CHECK(got.size() == want.size());
  } else if (want.is_array()) {
    REQUIRE(got.is_array());
    REQUIRE(got.size() == want.size());
    for (std::size_t k = 0; k < want.size(); ++k) compare(got[k], want[k], path + "[" + std::to_string(k) + "]");
  } else if (want.is_number() && got.is_number()) {
    const double a = got.get<double>(), b = want.get<double>();
    CHECK(std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b)));
  } else {
    CHECK(got == want);
  }
}

void check_approved(const std::string& name) {
  const std::string root = TRIALSIM_SOURCE_DIR;
  const Scenario s = Scenario::load(root + "/configs/" + name + ".toml");
  EngineOptions o;
  o.replicates = 256;
  o.seed = 1;
  o.threads = 2;
  const json got = run_replicates(s, o).to_json(o.seed);
  std::ifstream in(root + "/tests/regression/" + name + ".json");
  REQUIRE(in.good());
  const json want = json::parse(in);
  compare(got, want, name);
}

}  // namespace

TEST_CASE("the seed scenario's fixed-seed summary matches the approved output", "[regression]") {
  check_approved("seed_trial");
}

TEST_CASE("the null scenario's fixed-seed summary matches the approved output", "[regression]") {
  check_approved("null_trial");
}
