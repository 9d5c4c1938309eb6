// Group-sequential boundaries (models/group_sequential.hpp) against rpact: the efficacy
// boundaries, the alpha spent and the probabilities of stopping at each look under a drift,
// for O'Brien-Fleming-, Pocock- and Hwang-Shih-DeCani-type spending at 2-5 looks, equal and
// unequal information fractions, one- and two-sided (tests/reference/make_gsd_reference.R).
#include "models/group_sequential.hpp"
#include "tests/reference/gsd_futility_reference.hpp"
#include "tests/reference/gsd_reference.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using namespace trialsim;

namespace {
SpendingFunction spending_of(const reference::GsdCase& c) {
  SpendingFunction f;
  const std::string name = c.spending;
  f.type = name == "obrien_fleming" ? SpendingType::obrien_fleming : name == "pocock" ? SpendingType::pocock
                                                                                      : SpendingType::hwang_shih_decani;
  f.alpha = c.alpha;
  f.gamma = c.gamma;
  return f;
}
std::string describe(const reference::GsdCase& c) {
  std::string s = std::string(c.spending) + " gamma " + std::to_string(c.gamma) + ", " + std::to_string(c.sides) + "-sided, t =";
  for (const double t : c.fractions) s += " " + std::to_string(t);
  return s;
}
}  // namespace

TEST_CASE("efficacy boundaries and stopping probabilities match rpact to 1e-6", "[group_sequential]") {
  const auto& cases = reference::gsd_cases();
  REQUIRE(cases.size() == 80);
  double worst_bound = 0, worst_spent = 0, worst_stop = 0;
  for (const auto& c : cases) {
    INFO(describe(c));
    const SpendingFunction f = spending_of(c);
    const std::vector<double> bounds = efficacy_bounds(c.fractions, f, c.sides);
    REQUIRE(bounds.size() == c.bounds.size());
    for (std::size_t k = 0; k < bounds.size(); ++k) {
      INFO("look " << k + 1);
      CHECK(std::abs(bounds[k] - c.bounds[k]) < 1e-6);
      worst_bound = std::max(worst_bound, std::abs(bounds[k] - c.bounds[k]));
      // rpact spends alpha - 1e-8 at some final looks (its search tolerance).
      CHECK(std::abs(f.spent(c.fractions[k], k, c.sides) - c.alpha_spent[k]) < 2e-8);
      worst_spent = std::max(worst_spent, std::abs(f.spent(c.fractions[k], k, c.sides) - c.alpha_spent[k]));
    }
    // The boundaries spend exactly what the function says at each look, under H0.
    const std::vector<double> null = crossing_probabilities(c.fractions, bounds, c.sides, 0.0);
    double cumulative = 0;
    for (std::size_t k = 0; k < null.size(); ++k) {
      cumulative += null[k];
      CHECK(std::abs(cumulative - f.spent(c.fractions[k], k, c.sides)) < 1e-9);
    }
    const std::vector<double> stop = crossing_probabilities(c.fractions, c.bounds, c.sides, 2.5);
    for (std::size_t k = 0; k < stop.size(); ++k) {
      INFO("look " << k + 1);
      CHECK(std::abs(stop[k] - c.reject_at_drift_2_5[k]) < 1e-6);
      worst_stop = std::max(worst_stop, std::abs(stop[k] - c.reject_at_drift_2_5[k]));
    }
  }
  WARN("largest differences from rpact: boundary " << worst_bound << ", alpha spent " << worst_spent << ", stopping "
                                                    << worst_stop);
}

TEST_CASE("one look is the fixed design; spending must fit the looks", "[group_sequential]") {
  SpendingFunction f;
  f.alpha = 0.025;
  CHECK(efficacy_bounds({1.0}, f, 1)[0] == Approx(1.959963984540054).epsilon(1e-12));
  f.alpha = 0.05;
  CHECK(efficacy_bounds({1.0}, f, 2)[0] == Approx(1.959963984540054).epsilon(1e-12));
  // User-given cumulative alpha: a look that spends nothing never stops the trial.
  SpendingFunction u;
  u.type = SpendingType::user;
  u.alpha = 0.025;
  u.cumulative = {0.0, 0.01, 0.025};
  const auto b = efficacy_bounds({0.3, 0.6, 1.0}, u, 1);
  CHECK(std::isinf(b[0]));
  CHECK(std::abs(b[1] - 2.326347874040841) < 1e-7);  // all of look 2's alpha is marginal (to the integration's accuracy)
  const auto p = crossing_probabilities({0.3, 0.6, 1.0}, b, 1, 0.0);
  CHECK(p[0] == 0.0);
  CHECK(p[0] + p[1] + p[2] == Approx(0.025).margin(1e-10));
  CHECK_THROWS_AS(efficacy_bounds({0.5, 0.4, 1.0}, f, 1), std::invalid_argument);
  CHECK_THROWS_AS(efficacy_bounds({0.5, 0.9}, f, 1), std::invalid_argument);
  u.cumulative = {0.02, 0.01, 0.025};
  CHECK_THROWS_AS(efficacy_bounds({0.3, 0.6, 1.0}, u, 1), std::invalid_argument);
}

namespace {
SpendingFunction spending_named(const std::string& name, double gamma, double level) {
  SpendingFunction f;
  f.type = name == "obrien_fleming" ? SpendingType::obrien_fleming : name == "pocock" ? SpendingType::pocock
                                                                                      : SpendingType::hwang_shih_decani;
  f.alpha = level;
  f.gamma = gamma;
  return f;
}
}  // namespace

TEST_CASE("futility by beta spending and fixed bounds, binding or not, match rpact to 1e-6", "[group_sequential]") {
  const auto& cases = reference::gsd_futility_cases();
  REQUIRE(cases.size() == 264);
  double worst_bound = 0, worst_futility = 0, worst_stop = 0, worst_drift = 0;
  for (const auto& c : cases) {
    INFO(c.alpha_spending << " / " << c.beta_spending << " gamma_b " << c.gamma_b << " beta " << c.beta
                          << (c.binding ? " binding" : " non-binding") << ", " << c.fractions.size() << " looks");
    const SpendingFunction a = spending_named(c.alpha_spending, c.gamma_a, 0.025);
    std::vector<double> upper, futility;
    if (std::string(c.beta_spending) == "fixed") {
      futility = c.futility;
      upper = efficacy_bounds(c.fractions, a, 1, c.binding ? &futility : nullptr);
    } else {
      const BetaSpendingDesign d = beta_spending_design(c.fractions, a, spending_named(c.beta_spending, c.gamma_b, c.beta), c.binding);
      upper = d.upper;
      futility = d.futility;
      CHECK(std::abs(d.drift - c.drift) < 1e-6);
      worst_drift = std::max(worst_drift, std::abs(d.drift - c.drift));
    }
    REQUIRE(upper.size() == c.bounds.size());
    REQUIRE(futility.size() == c.futility.size());
    for (std::size_t k = 0; k < upper.size(); ++k) {
      INFO("look " << k + 1);
      CHECK(std::abs(upper[k] - c.bounds[k]) < 1e-6);
      worst_bound = std::max(worst_bound, std::abs(upper[k] - c.bounds[k]));
      if (k < futility.size()) {
        CHECK(std::abs(futility[k] - c.futility[k]) < 1e-6);
        worst_futility = std::max(worst_futility, std::abs(futility[k] - c.futility[k]));
      }
    }
    // Stopping probabilities of rpact's design (its bounds) under the drift 2.5.
    const Stopping s = stopping_probabilities(c.fractions, c.bounds, c.futility, 1, 2.5);
    for (std::size_t k = 0; k < upper.size(); ++k) {
      INFO("look " << k + 1);
      CHECK(std::abs(s.efficacy[k] - c.efficacy_at_drift_2_5[k]) < 1e-6);
      CHECK(std::abs(s.futility[k] - c.futility_at_drift_2_5[k]) < 1e-6);
      worst_stop = std::max({worst_stop, std::abs(s.efficacy[k] - c.efficacy_at_drift_2_5[k]),
                             std::abs(s.futility[k] - c.futility_at_drift_2_5[k])});
    }
    // Binding futility: the design spends exactly alpha under H0 counting the futility exits;
    // non-binding: at most alpha (exactly alpha with the futility exits ignored).
    const Stopping null = stopping_probabilities(c.fractions, upper, futility, 1, 0.0);
    double type1 = 0;
    for (const double p : null.efficacy) type1 += p;
    if (c.binding) {
      CHECK(std::abs(type1 - 0.025) < 2e-8);
    } else {
      CHECK(type1 <= 0.025 + 1e-9);
    }
  }
  WARN("largest differences from rpact: efficacy " << worst_bound << ", futility " << worst_futility << ", drift "
                                                   << worst_drift << ", stopping " << worst_stop);
}
