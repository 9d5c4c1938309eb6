#include <catch2/catch.hpp>

#include "models/analysis.hpp"
#include "models/estimate.hpp"
#include "tests/reference/analysis_reference.hpp"

#include <boost/math/distributions/students_t.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

using namespace trialsim;
namespace ref = trialsim::reference;

namespace {

constexpr double kTolerance = 1e-9;

Approx close_to(double expected) { return Approx(expected).epsilon(kTolerance).margin(0.0); }

// Checks one analysis against a reference at both the 95% and the 90% confidence level.
template <class Analyse>
void check_against(const Analyse& analyse, const ref::Expected& want) {
  struct Level {
    double alpha, low, high;
  };
  for (const Level level : {Level{0.05, want.ci95_low, want.ci95_high}, Level{0.10, want.ci90_low, want.ci90_high}}) {
    INFO("alpha = " << level.alpha);
    const Estimate got = analyse(level.alpha);
    REQUIRE(got.estimable());
    CHECK(got.estimate == close_to(want.estimate));
    CHECK(got.se == close_to(want.se));
    CHECK(got.df == close_to(want.df));
    CHECK(got.p(Hypothesis{}) == close_to(want.p));
    CHECK(got.ci_low == close_to(level.low));
    CHECK(got.ci_high == close_to(level.high));
  }
}

const std::vector<double> kEmpty;

}  // namespace

TEST_CASE("student_t matches the pooled-variance t test on 7 vs 9 values", "[analysis]") {
  check_against([](double alpha) { return student_t(ref::small_treatment, ref::small_control, alpha); },
                ref::small_student);
}

TEST_CASE("student_t matches the pooled-variance t test on 20 vs 25 values", "[analysis]") {
  check_against([](double alpha) { return student_t(ref::unequal_treatment, ref::unequal_control, alpha); },
                ref::unequal_student);
}

TEST_CASE("student_t accepts one treated and two control values with one degree of freedom", "[analysis]") {
  check_against([](double alpha) { return student_t(ref::minimal_treatment, ref::minimal_control, alpha); },
                ref::minimal_student);
}

TEST_CASE("welch_t matches Welch's test with Satterthwaite df on 7 vs 9 values", "[analysis]") {
  check_against([](double alpha) { return welch_t(ref::small_treatment, ref::small_control, alpha); },
                ref::small_welch);
}

TEST_CASE("welch_t matches Welch's test with Satterthwaite df on unequal variances", "[analysis]") {
  check_against([](double alpha) { return welch_t(ref::unequal_treatment, ref::unequal_control, alpha); },
                ref::unequal_welch);
}

TEST_CASE("swapping the arms negates the estimate and keeps se, df and p", "[analysis]") {
  const auto check_swap = [](const Estimate& forward, const Estimate& backward) {
    REQUIRE(forward.estimable());
    REQUIRE(backward.estimable());
    CHECK(backward.estimate == close_to(-forward.estimate));
    CHECK(backward.se == close_to(forward.se));
    CHECK(backward.df == close_to(forward.df));
    CHECK(backward.p(Hypothesis{}) == close_to(forward.p(Hypothesis{})));
    CHECK(backward.ci_low == close_to(-forward.ci_high));
    CHECK(backward.ci_high == close_to(-forward.ci_low));
  };
  check_swap(student_t(ref::unequal_treatment, ref::unequal_control, 0.05),
             student_t(ref::unequal_control, ref::unequal_treatment, 0.05));
  check_swap(welch_t(ref::unequal_treatment, ref::unequal_control, 0.05),
             welch_t(ref::unequal_control, ref::unequal_treatment, 0.05));
}

TEST_CASE("ancova matches OLS with arm, baseline and stratum", "[analysis]") {
  check_against(
      [](double alpha) {
        return ancova(ref::ancova_y, ref::ancova_baseline, ref::ancova_treated, ref::ancova_stratum, alpha);
      },
      ref::ancova_expected);
}

TEST_CASE("ancova drops a constant stratum and matches OLS with arm and baseline", "[analysis]") {
  check_against(
      [](double alpha) {
        return ancova(ref::ancova_flat_y, ref::ancova_flat_baseline, ref::ancova_flat_treated,
                      ref::ancova_flat_stratum, alpha);
      },
      ref::ancova_flat_expected);
}

TEST_CASE("ancova gives the same result whichever value a constant stratum takes", "[analysis]") {
  const std::vector<std::int8_t> zeros(ref::ancova_flat_stratum.size(), 0);
  const Estimate ones = ancova(ref::ancova_flat_y, ref::ancova_flat_baseline, ref::ancova_flat_treated,
                               ref::ancova_flat_stratum, 0.05);
  const Estimate none = ancova(ref::ancova_flat_y, ref::ancova_flat_baseline, ref::ancova_flat_treated, zeros, 0.05);
  REQUIRE(none.estimable());
  CHECK(none.estimate == close_to(ones.estimate));
  CHECK(none.se == close_to(ones.se));
  CHECK(none.df == ones.df);
}

TEST_CASE("two-sample tests report too_few_patients when an arm is empty", "[analysis]") {
  const std::vector<double> values{1.0, 2.5, 3.0};
  CHECK(student_t(kEmpty, values, 0.05).status == NotEstimable::too_few_patients);
  CHECK(student_t(values, kEmpty, 0.05).status == NotEstimable::too_few_patients);
  CHECK(student_t(kEmpty, kEmpty, 0.05).status == NotEstimable::too_few_patients);
  CHECK(welch_t(kEmpty, values, 0.05).status == NotEstimable::too_few_patients);
  CHECK(welch_t(values, kEmpty, 0.05).status == NotEstimable::too_few_patients);
  CHECK_FALSE(student_t(kEmpty, values, 0.05).estimable());
}

TEST_CASE("student_t reports too_few_patients with one value per arm", "[analysis]") {
  const std::vector<double> one{4.2}, other{5.1};
  const Estimate e = student_t(one, other, 0.05);
  CHECK_FALSE(e.estimable());
  CHECK(e.status == NotEstimable::too_few_patients);
}

TEST_CASE("welch_t reports too_few_patients when an arm has fewer than two values", "[analysis]") {
  const std::vector<double> one{4.2}, several{5.1, 4.7, 6.0, 5.5};
  CHECK(welch_t(one, several, 0.05).status == NotEstimable::too_few_patients);
  CHECK(welch_t(several, one, 0.05).status == NotEstimable::too_few_patients);
  CHECK(welch_t(one, one, 0.05).status == NotEstimable::too_few_patients);
}

TEST_CASE("two-sample tests report no_variance when all values are identical", "[analysis]") {
  const std::vector<double> a(7, 5.0), b(9, 5.0);
  CHECK(student_t(a, b, 0.05).status == NotEstimable::no_variance);
  CHECK(welch_t(a, b, 0.05).status == NotEstimable::no_variance);
}

TEST_CASE("two-sample tests report no_variance when each arm is constant", "[analysis]") {
  const std::vector<double> a(4, 6.5), b(3, 5.25);
  CHECK(student_t(a, b, 0.05).status == NotEstimable::no_variance);
  CHECK(welch_t(a, b, 0.05).status == NotEstimable::no_variance);
}

TEST_CASE("two-sample tests report no_variance for constant arms whose mean is inexact in binary",
          "[analysis]") {
  const std::vector<double> same_a(7, 7.3), same_b(9, 7.3);
  CHECK(student_t(same_a, same_b, 0.05).status == NotEstimable::no_variance);
  CHECK(welch_t(same_a, same_b, 0.05).status == NotEstimable::no_variance);
  const std::vector<double> a(7, 7.3), b(9, 7.1);
  CHECK(student_t(a, b, 0.05).status == NotEstimable::no_variance);
  CHECK(welch_t(a, b, 0.05).status == NotEstimable::no_variance);
}

TEST_CASE("ancova reports no_variance when all outcomes are identical", "[analysis]") {
  for (const double value : {5.0, 7.3}) {
    INFO("y = " << value);
    const std::vector<double> y(ref::ancova_y.size(), value);
    CHECK(ancova(y, ref::ancova_baseline, ref::ancova_treated, ref::ancova_stratum, 0.05).status ==
          NotEstimable::no_variance);
  }
}

TEST_CASE("ancova reports rank_deficient when the baseline is constant", "[analysis]") {
  for (const double value : {120.0, 7.3, 0.1}) {
    INFO("baseline = " << value);
    const std::vector<double> baseline(ref::ancova_y.size(), value);
    const Estimate e = ancova(ref::ancova_y, baseline, ref::ancova_treated, ref::ancova_stratum, 0.05);
    CHECK_FALSE(e.estimable());
    CHECK(e.status == NotEstimable::rank_deficient);
  }
}

TEST_CASE("ancova reports too_few_patients when all patients are in one arm", "[analysis]") {
  const std::vector<std::int8_t> all_treated(ref::ancova_y.size(), 1), all_control(ref::ancova_y.size(), 0);
  CHECK(ancova(ref::ancova_y, ref::ancova_baseline, all_treated, ref::ancova_stratum, 0.05).status ==
        NotEstimable::too_few_patients);
  CHECK(ancova(ref::ancova_y, ref::ancova_baseline, all_control, ref::ancova_stratum, 0.05).status ==
        NotEstimable::too_few_patients);
}

TEST_CASE("ancova reports too_few_patients with no patients", "[analysis]") {
  const std::vector<std::int8_t> none;
  CHECK(ancova(kEmpty, kEmpty, none, none, 0.05).status == NotEstimable::too_few_patients);
}

TEST_CASE("ancova reports too_few_patients with no more patients than coefficients", "[analysis]") {
  const std::vector<double> y{4.1, 5.2, 3.9, 4.8}, baseline{4.0, 5.5, 4.2, 4.4};
  const std::vector<std::int8_t> treated{1, 0, 1, 0}, stratum{0, 0, 1, 1};
  CHECK(ancova(y, baseline, treated, stratum, 0.05).status == NotEstimable::too_few_patients);
  const std::vector<std::int8_t> one_stratum(4, 0);
  CHECK(ancova(std::span(y).first(3), std::span(baseline).first(3), std::span(treated).first(3),
               std::span(one_stratum).first(3), 0.05)
            .status == NotEstimable::too_few_patients);
}

TEST_CASE("t_estimate gives a finite interval at tiny df and reports none at all when it would overflow", "[analysis]") {
  // scipy.stats.t.isf(0.025, 0.5) = 164.55767352096126; at df 1e-3 the quantile exceeds any
  // double, so the trial counts as not estimable instead of ending the run.
  const Estimate half = t_estimate(2.0, 0.5, 0.5, 0.05);
  REQUIRE(half.estimable());
  CHECK(half.ci_high == Approx(2.0 + 164.55767352096126 * 0.5).epsilon(1e-9));
  for (const double df : {1e-3, 0.0, -1.0, std::numeric_limits<double>::quiet_NaN()}) {
    const Estimate e = t_estimate(2.0, 0.5, df, 0.05);
    CHECK_FALSE(e.estimable());
    CHECK(e.status == NotEstimable::too_few_patients);
  }
}

TEST_CASE("t quantiles at non-integer df match Boost.Math's to a few ulp", "[analysis]") {
  // Welch, Kenward-Roger and Barnard-Rubin df are not integers: their quantiles are interpolated
  // on a grid in 1/df (models/analysis.cpp). Against Boost.Math's quantile itself, over df from 1
  // to 1e9 and the alphas a design may ask for (one-sided tests use 2 alpha).
  using Policy = boost::math::policies::policy<boost::math::policies::promote_float<false>,
                                               boost::math::policies::promote_double<false>>;
  double worst = 0;
  for (const double alpha : {1e-4, 0.001, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5}) {
    for (int i = 0; i < 4000; ++i) {
      // Dense at small df, where the quantile bends most, and out to 1e9 on a log scale.
      const double df = i < 2000 ? 1.0 + i * 0.0173 + 1e-3 : std::exp((i - 2000) * (std::log(1e9) / 2000.0)) + 0.37;
      const double want = boost::math::quantile(
          boost::math::complement(boost::math::students_t_distribution<double, Policy>(df), alpha / 2.0));
      const Estimate e = t_estimate(0.0, 1.0, df, alpha);
      REQUIRE(e.estimable());
      worst = std::max(worst, std::abs(e.ci_high - want) / want);
    }
  }
  INFO("worst relative difference " << worst);
  CHECK(worst < 1e-14);
  // At an integer df the quantile is Boost.Math's own value.
  const double q30 = boost::math::quantile(
      boost::math::complement(boost::math::students_t_distribution<double, Policy>(30.0), 0.025));
  CHECK(t_estimate(0.0, 1.0, 30.0, 0.05).ci_high == q30);
}

TEST_CASE("one-sided and non-inferiority tests reject, cover and give p as their hypothesis says", "[analysis]") {
  // Estimate 2, SE 1, 30 df (scipy.stats.t). Two-sided at 0.05: t_0.975(30) = 2.04227, CI
  // [-0.04227, 4.04227], so no rejection of 0 (p = 0.054625). One-sided at 0.05: the interval is
  // computed at 0.10, t_0.95(30) = 1.69726, lower bound 0.30274 > 0: rejected, p = P(T > 2) =
  // 0.0273125. Non-inferiority at margin -1: t = 3, p = 0.00269498; at margin 0.5 the bound is
  // below it: not rejected.
  const Hypothesis two{2, 0.0}, one{1, 0.0}, ni{1, -1.0}, above{1, 0.5};
  const Estimate e2 = t_estimate(2.0, 1.0, 30.0, two.interval_alpha(0.05));
  const Estimate e1 = t_estimate(2.0, 1.0, 30.0, one.interval_alpha(0.05));
  CHECK(e2.ci_low == Approx(-0.04227245630123733).margin(1e-9));
  CHECK(e1.ci_low == Approx(0.30273910563826223).margin(1e-9));
  CHECK(e1.ci_high == Approx(3.69726089436173777).margin(1e-9));
  CHECK_FALSE(e2.rejects(two));
  CHECK(e1.rejects(one));
  CHECK(e1.rejects(ni));
  CHECK_FALSE(e1.rejects(above));
  CHECK(e2.p(two) == Approx(0.0546250449629831).epsilon(1e-9));
  CHECK(e1.p(one) == Approx(0.02731252248149155).epsilon(1e-9));
  CHECK(e1.p(ni) == Approx(0.002694982032825972).epsilon(1e-9));
  // A one-sided set [lower bound, infinity) covers any effect above its bound, even beyond the
  // two-sided interval's upper end; the two-sided interval does not.
  CHECK(e1.covers(10.0, one));
  CHECK_FALSE(e1.covers(10.0, two));
  CHECK_FALSE(e1.covers(0.0, one));
  // A negative estimate: the one-sided test of superiority never rejects in the wrong direction.
  const Estimate neg = t_estimate(-5.0, 1.0, 30.0, one.interval_alpha(0.05));
  CHECK_FALSE(neg.rejects(one));
  CHECK(neg.rejects(two));
  CHECK(neg.p(one) > 0.99);
}
