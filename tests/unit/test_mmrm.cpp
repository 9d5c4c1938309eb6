// MMRM against R (nlme::gls REML, unstructured covariance) on trials written by trialsim's
// --patients-csv; see tests/reference/make_mmrm_reference.R and, for the small-sample rules
// (Kenward-Roger, observed-information Satterthwaite), make_mmrm_small_sample_reference.R.
#include "models/analysis.hpp"
#include "models/mi_delta.hpp"
#include "models/mmrm.hpp"
#include "tests/reference/mmrm_reference.hpp"
#include "tests/reference/mmrm_small_sample_reference.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

using namespace trialsim;

namespace {

RepeatedMeasures from_fixture(const ref_mmrm::Fixture& f) {
  RepeatedMeasures d;
  d.clear(2);
  for (std::size_t i = 0; i < f.baseline.size(); ++i) {
    d.treated.push_back(static_cast<std::int8_t>(f.treated[i]));
    d.stratum.push_back(static_cast<std::int8_t>(f.stratum[i]));
    d.baseline.push_back(f.baseline[i]);
    for (const double v : {f.y6[i], f.y12[i]}) {
      d.y.push_back(std::isnan(v) ? 0.0 : v);
      d.seen.push_back(std::isnan(v) ? 0 : 1);
    }
  }
  return d;
}

// Relative agreement to 1e-6, with an absolute floor of 1e-6 x `scale` for values near zero.
void check_close(double got, double want, double scale, const char* what) {
  INFO(what << ": got " << got << ", reference " << want);
  CHECK(std::abs(got - want) <= 1e-6 * std::max(std::abs(want), scale));
}

RepeatedMeasures from_fixture(const ref_mmrm_small_sample::Fixture& f) {
  RepeatedMeasures d;
  d.clear(f.visits);
  for (std::size_t i = 0; i < f.baseline.size(); ++i) {
    d.treated.push_back(static_cast<std::int8_t>(f.treated[i]));
    d.stratum.push_back(static_cast<std::int8_t>(f.stratum[i]));
    d.baseline.push_back(f.baseline[i]);
    for (std::size_t j = 0; j < static_cast<std::size_t>(f.visits); ++j) {
      const double v = f.y[i * static_cast<std::size_t>(f.visits) + j];
      d.y.push_back(std::isnan(v) ? 0.0 : v);
      d.seen.push_back(std::isnan(v) ? 0 : 1);
    }
  }
  return d;
}

}  // namespace

TEST_CASE("MMRM's Kenward-Roger and Satterthwaite inference match R on small trials with missing visits", "[mmrm]") {
  for (const auto& f : ref_mmrm_small_sample::fixtures) {
    DYNAMIC_SECTION(f.name) {
      const RepeatedMeasures d = from_fixture(f);
      const MmrmFit kr = fit_mmrm(d, 0.05, MmrmDf::kenward_roger);
      const MmrmFit obs = fit_mmrm(d, 0.05, MmrmDf::satterthwaite);
      const MmrmFit exp = fit_mmrm(d, 0.05, MmrmDf::satterthwaite_expected);
      REQUIRE(kr.effect.estimable());
      REQUIRE(obs.effect.estimable());
      REQUIRE(exp.effect.estimable());
      CHECK(kr.patients == f.patients);
      CHECK(kr.observations == f.observations);
      check_close(kr.reml_loglik, f.reml_loglik, 1.0, "REML log-likelihood");
      // The rule changes the test, never the fit.
      for (const MmrmFit* fit : {&kr, &obs, &exp}) {
        check_close(fit->effect.estimate, f.effect, f.se, "effect");
        CHECK(fit->beta == kr.beta);
        CHECK(fit->beta_cov == kr.beta_cov);
        CHECK(fit->status == NotEstimable::none);
      }
      check_close(kr.effect.se, f.se_kr, f.se_kr, "Kenward-Roger SE");
      check_close(kr.effect.df, f.df_kr, 1.0, "Kenward-Roger df");
      check_close(kr.effect.p(Hypothesis{}), f.p_kr, 1e-3, "Kenward-Roger p");
      check_close(kr.effect.ci_low, f.ci_low_kr, f.se_kr, "Kenward-Roger ci_low");
      check_close(kr.effect.ci_high, f.ci_high_kr, f.se_kr, "Kenward-Roger ci_high");
      check_close(obs.effect.se, f.se, f.se, "plug-in SE");
      check_close(obs.effect.df, f.df_observed, 1.0, "observed-information df");
      check_close(obs.effect.p(Hypothesis{}), f.p_observed, 1e-3, "observed-information p");
      check_close(obs.effect.ci_low, f.ci_low_observed, f.se, "observed-information ci_low");
      check_close(obs.effect.ci_high, f.ci_high_observed, f.se, "observed-information ci_high");
      check_close(exp.effect.se, f.se, f.se, "plug-in SE");
      check_close(exp.effect.df, f.df_expected, 1.0, "expected-information df");
      // Kenward-Roger only ever widens the plug-in SE (the correction is a positive semidefinite form).
      CHECK(kr.effect.se > obs.effect.se);
    }
  }
}

TEST_CASE("MMRM matches R's REML fit, SE, Satterthwaite df and p on reference trials", "[mmrm]") {
  for (const auto& f : ref_mmrm::fixtures) {
    DYNAMIC_SECTION(f.name) {
      // The reference df is the expected-information Satterthwaite df.
      const MmrmFit fit = fit_mmrm(from_fixture(f), 0.05, MmrmDf::satterthwaite_expected);
      REQUIRE(fit.effect.estimable());
      CHECK(fit.patients == f.patients);
      CHECK(fit.observations == f.observations);
      check_close(fit.effect.estimate, f.effect, f.se, "effect");
      check_close(fit.effect.se, f.se, f.se, "se");
      check_close(fit.effect.df, f.df, 1.0, "df");
      check_close(fit.effect.p(Hypothesis{}), f.p, 1e-3, "p");
      check_close(fit.effect.ci_low, f.ci_low, f.se, "ci_low");
      check_close(fit.effect.ci_high, f.ci_high, f.se, "ci_high");
      for (std::size_t k = 0; k < 7; ++k) check_close(fit.beta(static_cast<Eigen::Index>(k)), f.beta[k], f.se, "beta");
      check_close(fit.sigma(0, 0), f.sigma[0], f.sigma[0], "S11");
      check_close(fit.sigma(1, 0), f.sigma[1], f.sigma[0], "S21");
      check_close(fit.sigma(1, 1), f.sigma[2], f.sigma[2], "S22");
      check_close(fit.reml_loglik, f.reml_loglik, 1.0, "REML log-likelihood");
      CHECK(fit.iterations < 50);
    }
  }
}

TEST_CASE("MMRM with one post-baseline visit is ANCOVA with visit-specific baseline", "[mmrm]") {
  const auto& f = ref_mmrm::fixtures.front();
  RepeatedMeasures d;
  d.clear(1);
  std::vector<double> y, base;
  std::vector<std::int8_t> arm, stratum;
  for (std::size_t i = 0; i < f.baseline.size(); ++i) {
    d.treated.push_back(static_cast<std::int8_t>(f.treated[i]));
    d.stratum.push_back(static_cast<std::int8_t>(f.stratum[i]));
    d.baseline.push_back(f.baseline[i]);
    d.y.push_back(std::isnan(f.y12[i]) ? 0.0 : f.y12[i]);
    d.seen.push_back(std::isnan(f.y12[i]) ? 0 : 1);
    if (!std::isnan(f.y12[i])) {
      y.push_back(f.y12[i]);
      base.push_back(f.baseline[i]);
      arm.push_back(static_cast<std::int8_t>(f.treated[i]));
      stratum.push_back(static_cast<std::int8_t>(f.stratum[i]));
    }
  }
  const Estimate a = ancova(y, base, arm, stratum, 0.05);
  // REML's variance estimate is the residual mean square, so the SEs agree; with one variance
  // parameter the Satterthwaite df is the residual df (observed and expected information agree
  // at the REML estimate), and Kenward-Roger's correction vanishes (V^-1 X Phi c lies in the
  // column space of X, which P annihilates): every rule is the exact t test.
  for (const MmrmDf rule : {MmrmDf::kenward_roger, MmrmDf::satterthwaite, MmrmDf::satterthwaite_expected}) {
    INFO(mmrm_df_name(rule));
    const MmrmFit fit = fit_mmrm(d, 0.05, rule);
    REQUIRE(fit.effect.estimable());
    CHECK(fit.effect.estimate == Approx(a.estimate).epsilon(1e-10));
    CHECK(fit.effect.se == Approx(a.se).epsilon(1e-8));
    CHECK(fit.effect.df == Approx(a.df).epsilon(1e-6));
  }
}

TEST_CASE("MMRM reports trials it cannot fit instead of returning numbers", "[mmrm]") {
  const auto& f = ref_mmrm::fixtures.front();
  SECTION("no treated patient seen at the last visit") {
    RepeatedMeasures d = from_fixture(f);
    for (std::size_t i = 0; i < d.patients(); ++i) {
      if (d.treated[i]) d.seen[i * 2 + 1] = 0;
    }
    CHECK(fit_mmrm(d, 0.05, MmrmDf::kenward_roger).effect.status == NotEstimable::rank_deficient);
  }
  SECTION("no patient seen at both visits: their covariance is not identified") {
    RepeatedMeasures d = from_fixture(f);
    for (std::size_t i = 0; i < d.patients(); ++i) {
      if (d.seen[i * 2] && d.seen[i * 2 + 1]) d.seen[i * 2 + (i % 2)] = 0;
    }
    CHECK(fit_mmrm(d, 0.05, MmrmDf::kenward_roger).effect.status == NotEstimable::rank_deficient);
  }
  SECTION("fewer patients than parameters") {
    RepeatedMeasures d;
    d.clear(2);
    for (int i = 0; i < 5; ++i) {
      d.treated.push_back(static_cast<std::int8_t>(i % 2));
      d.stratum.push_back(0);
      d.baseline.push_back(50.0 + i);
      d.y.insert(d.y.end(), {55.0 + i, 57.0 - i});
      d.seen.insert(d.seen.end(), {1, 1});
    }
    CHECK(fit_mmrm(d, 0.05, MmrmDf::kenward_roger).effect.status == NotEstimable::too_few_patients);
  }
}

TEST_CASE("IPW ANCOVA matches R's sequential glm, weighted lm and HC2 sandwich on reference trials", "[ipw]") {
  for (const auto& f : ref_mmrm::fixtures) {
    DYNAMIC_SECTION(f.name) {
      const IpwFit fit = fit_ipw_ancova(from_fixture(f), 0.05);
      REQUIRE(fit.effect.estimable());
      check_close(fit.effect.estimate, f.ipw_effect, f.ipw_se, "effect");
      check_close(fit.effect.se, f.ipw_se, f.ipw_se, "se");
      CHECK(fit.effect.df == f.ipw_df);
      check_close(fit.effect.p(Hypothesis{}), f.ipw_p, 1e-3, "p");
      check_close(fit.effect.ci_low, f.ipw_ci_low, f.ipw_se, "ci_low");
      check_close(fit.effect.ci_high, f.ipw_ci_high, f.ipw_se, "ci_high");
      REQUIRE(fit.stage_coef.size() == 2);
      // Under quasi-separation (an arm in which nobody leaves at a stage) a coefficient heads
      // for infinity: glm stops wherever the probabilities saturate, trialsim takes the limit
      // (that coefficient +-infinity, the same sign as glm's). The weights, and so everything
      // checked above, agree regardless. Otherwise the coefficients are compared.
      auto check_stage = [&](const Eigen::VectorXd& got, const double* want, std::size_t n, const char* what) {
        bool separated = false;
        for (std::size_t k = 0; k < n; ++k) separated = separated || std::abs(want[k]) > 10.0;
        if (separated) {
          for (std::size_t k = 1; k < n; ++k) {
            if (std::abs(want[k]) <= 10.0) continue;
            INFO(what << " " << k);
            const double g = got(static_cast<Eigen::Index>(k));
            CHECK(std::isinf(g));
            CHECK((g > 0) == (want[k] > 0));
          }
          return;
        }
        for (std::size_t k = 0; k < n; ++k) check_close(got(static_cast<Eigen::Index>(k)), want[k], 1e-3, what);
      };
      check_stage(fit.stage_coef[0], f.stage1_coef.data(), 4, "stage 1 coefficient");
      check_stage(fit.stage_coef[1], f.stage2_coef.data(), 5, "stage 2 coefficient");
      for (std::size_t k = 0; k < 4; ++k) {
        check_close(fit.outcome_coef(static_cast<Eigen::Index>(k)), f.ipw_coef[k], f.ipw_se, "outcome coefficient");
      }
    }
  }
}

TEST_CASE("IPW without dropout is unweighted ANCOVA with a sandwich SE", "[ipw]") {
  const auto& f = ref_mmrm::fixtures.front();
  RepeatedMeasures all;
  all.clear(2);
  std::vector<double> y, base;
  std::vector<std::int8_t> arm, stratum;
  for (std::size_t i = 0; i < f.baseline.size(); ++i) {
    if (std::isnan(f.y12[i]) || std::isnan(f.y6[i])) continue;
    all.treated.push_back(static_cast<std::int8_t>(f.treated[i]));
    all.stratum.push_back(static_cast<std::int8_t>(f.stratum[i]));
    all.baseline.push_back(f.baseline[i]);
    all.y.insert(all.y.end(), {f.y6[i], f.y12[i]});
    all.seen.insert(all.seen.end(), {1, 1});
    y.push_back(f.y12[i]);
    base.push_back(f.baseline[i]);
    arm.push_back(static_cast<std::int8_t>(f.treated[i]));
    stratum.push_back(static_cast<std::int8_t>(f.stratum[i]));
  }
  const IpwFit fit = fit_ipw_ancova(all, 0.05);
  const Estimate a = ancova(y, base, arm, stratum, 0.05);
  REQUIRE(fit.effect.estimable());
  CHECK(fit.effect.estimate == Approx(a.estimate).epsilon(1e-10));
  CHECK(fit.effect.df == a.df);
  CHECK(fit.stage_coef[0].isZero());  // nobody left: no model, probability 1
}

TEST_CASE("IPW reports an arm without completers as not estimable", "[ipw]") {
  RepeatedMeasures d = from_fixture(ref_mmrm::fixtures.front());
  for (std::size_t i = 0; i < d.patients(); ++i) {
    if (d.treated[i]) d.seen[i * 2 + 1] = 0;
  }
  CHECK(fit_ipw_ancova(d, 0.05).effect.status == NotEstimable::too_few_patients);
}

TEST_CASE("Rubin's rules with Barnard-Rubin df match a hand computation", "[mi]") {
  // Reference: scipy, Q = (1, 2.5, 1.75, 2.2), U = (0.5, 0.6, 0.55, 0.45), complete-data df 40.
  const Estimate e = rubin_combine({1.0, 2.5, 1.75, 2.2}, {0.5, 0.6, 0.55, 0.45}, 40.0, 0.05);
  REQUIRE(e.estimable());
  CHECK(e.estimate == Approx(1.8625).epsilon(1e-12));
  CHECK(e.se == Approx(1.0281202507489093).epsilon(1e-12));
  CHECK(e.df == Approx(7.286725913040937).epsilon(1e-10));
  CHECK(e.p(Hypothesis{}) == Approx(0.11128353617426215).epsilon(1e-8));
  CHECK(e.ci_low == Approx(-0.5493593795254641).epsilon(1e-8));
  CHECK(e.ci_high == Approx(4.274359379525464).epsilon(1e-8));
  // No between-imputation variance: the complete-data df.
  const Estimate same = rubin_combine({2.0, 2.0, 2.0}, {0.5, 0.5, 0.5}, 40.0, 0.05);
  CHECK(same.df == 40.0);
  CHECK(same.se == Approx(std::sqrt(0.5)));
}

TEST_CASE("MI with delta 0 is close to the MMRM and reproducible from its stream", "[mi]") {
  const auto& f = ref_mmrm::fixtures.front();
  const RepeatedMeasures d = from_fixture(f);
  MiSettings s;
  s.imputations = 200;
  Stream rng1(1, 2, StreamKind::analysis, 6), rng2(1, 2, StreamKind::analysis, 6);
  const Estimate a = mi_delta(d, s, 0.05, rng1);
  const Estimate b = mi_delta(d, s, 0.05, rng2);
  REQUIRE(a.estimable());
  CHECK(a.estimate == b.estimate);
  CHECK(a.se == b.se);
  // Imputation and the MMRM estimate the same MAR effect; with 200 imputations their
  // difference is well under a tenth of the SE.
  CHECK(std::abs(a.estimate - f.effect) < 0.1 * f.se);
  CHECK(a.se == Approx(f.se).epsilon(0.1));
  // A shift in the MgO arm moves the estimate by about delta x the share of MgO patients imputed.
  s.delta = -10.0;
  Stream rng3(1, 2, StreamKind::analysis, 6);
  const Estimate shifted = mi_delta(d, s, 0.05, rng3);
  double treated = 0, imputed = 0;
  for (std::size_t i = 0; i < f.baseline.size(); ++i) {
    treated += f.treated[i];
    imputed += f.treated[i] && std::isnan(f.y12[i]) ? 1 : 0;
  }
  CHECK(shifted.estimate - a.estimate == Approx(-10.0 * imputed / treated).margin(0.5));
}

TEST_CASE("MI of a trial with nothing missing is that trial's ANCOVA", "[mi]") {
  // Every imputation is the data themselves: the estimate and SE are the ANCOVA's.
  const auto& f = ref_mmrm::fixtures.front();
  RepeatedMeasures d;
  d.clear(2);
  std::vector<double> y, base;
  std::vector<std::int8_t> arm, stratum;
  for (std::size_t i = 0; i < f.baseline.size(); ++i) {
    if (std::isnan(f.y6[i]) || std::isnan(f.y12[i])) continue;
    d.treated.push_back(static_cast<std::int8_t>(f.treated[i]));
    d.stratum.push_back(static_cast<std::int8_t>(f.stratum[i]));
    d.baseline.push_back(f.baseline[i]);
    d.y.insert(d.y.end(), {f.y6[i], f.y12[i]});
    d.seen.insert(d.seen.end(), {1, 1});
    y.push_back(f.y12[i]);
    base.push_back(f.baseline[i]);
    arm.push_back(static_cast<std::int8_t>(f.treated[i]));
    stratum.push_back(static_cast<std::int8_t>(f.stratum[i]));
  }
  MiSettings s;
  s.imputations = 5;
  s.delta = -10.0;  // nothing is imputed, so nothing is shifted
  Stream rng(3, 4, StreamKind::analysis, 6);
  const Estimate mi = mi_delta(d, s, 0.05, rng);
  const Estimate a = ancova(y, base, arm, stratum, 0.05);
  REQUIRE(mi.estimable());
  CHECK(mi.estimate == Approx(a.estimate).epsilon(1e-10));
  CHECK(mi.se == Approx(a.se).epsilon(1e-10));
}

TEST_CASE("MI fills intermittent gaps and agrees with the MMRM on every reference trial", "[mi]") {
  // The fixtures were simulated with missed_visit_prob 0.15: some patients miss month 6 but
  // are seen at month 12, which the data augmentation chain fills. Under MAR the MI estimate
  // with many imputations and the MMRM estimate the same effect (not identically: the
  // imputation model has a stratum effect per visit, the MMRM one for all visits).
  for (const auto& f : ref_mmrm::fixtures) {
    DYNAMIC_SECTION(f.name) {
      std::size_t gaps = 0;
      for (std::size_t i = 0; i < f.baseline.size(); ++i) gaps += std::isnan(f.y6[i]) && !std::isnan(f.y12[i]) ? 1u : 0u;
      REQUIRE(gaps > 0);
      MiSettings s;
      s.imputations = 400;
      Stream rng(7, 6, StreamKind::analysis, 6);
      const Estimate mi = mi_delta(from_fixture(f), s, 0.05, rng);
      REQUIRE(mi.estimable());
      CHECK(std::abs(mi.estimate - f.effect) < 0.2 * f.se);
      CHECK(mi.se == Approx(f.se).epsilon(0.1));
    }
  }
}

TEST_CASE("MI reports trials it cannot impute instead of returning numbers", "[mi]") {
  const auto& f = ref_mmrm::fixtures.front();
  MiSettings s;
  Stream rng(1, 1, StreamKind::analysis, 6);
  SECTION("no treated patient seen at the last visit: its regression has no arm contrast") {
    RepeatedMeasures d = from_fixture(f);
    for (std::size_t i = 0; i < d.patients(); ++i) {
      if (d.treated[i]) d.seen[i * 2 + 1] = 0;
    }
    CHECK(mi_delta(d, s, 0.05, rng).status == NotEstimable::rank_deficient);
  }
  SECTION("fewer patients seen at the last visit than its regression has coefficients") {
    RepeatedMeasures d = from_fixture(f);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < d.patients(); ++i) {
      if (d.seen[i * 2 + 1] && ++kept > 4) d.seen[i * 2 + 1] = 0;
    }
    CHECK(mi_delta(d, s, 0.05, rng).status == NotEstimable::too_few_patients);
  }
}

TEST_CASE("MI made eight imputations at a time gives one at a time's results bit for bit", "[mi]") {
  // Random monotone trials, from 8 patients (where about half the trials draw bootstrap weights
  // that leave a regression singular, so the batch hands over to one at a time mid-way) to 60,
  // with 1 to 4 visits and imputation counts on either side of the batch's eight.
  Stream gen(2026, 12, StreamKind::analysis, 0);
  int estimable = 0, trials = 0;
  for (const std::size_t n : {8u, 10u, 12u, 20u, 60u}) {
    for (int visits = 1; visits <= 4; ++visits) {
      for (int rep = 0; rep < 12; ++rep) {
        RepeatedMeasures d;
        d.clear(visits);
        for (std::size_t i = 0; i < n; ++i) {
          d.treated.push_back(static_cast<std::int8_t>(i % 2));
          d.stratum.push_back(static_cast<std::int8_t>(uniform01(gen) < 0.6 ? 1 : 0));
          const double base = 60 + 13 * standard_normal(gen);
          d.baseline.push_back(base);
          // Seen up to a last visit; about a third leave before the end.
          const int last = uniform01(gen) < 0.35 ? static_cast<int>(uniform_below(gen, static_cast<std::uint64_t>(visits))) : visits;
          for (int j = 0; j < visits; ++j) {
            d.y.push_back(0.8 * base + 12 + 8 * standard_normal(gen));
            d.seen.push_back(j < last ? 1 : 0);
          }
        }
        for (const int imputations : {3, 8, 9, 21}) {
          MiSettings s;
          s.imputations = imputations;
          s.delta = -2.0;
          MiSettings one = s;
          one.batched = false;
          Stream rng_batch(5, static_cast<std::uint64_t>(trials), StreamKind::analysis, 6);
          Stream rng_one = rng_batch;
          const Estimate a = mi_delta(d, s, 0.05, rng_batch);
          const Estimate b = mi_delta(d, one, 0.05, rng_one);
          INFO("n " << n << ", visits " << visits << ", rep " << rep << ", imputations " << imputations);
          REQUIRE(a.status == b.status);
          if (!a.estimable()) continue;
          ++estimable;
          CHECK(std::memcmp(&a.estimate, &b.estimate, sizeof(double)) == 0);
          CHECK(std::memcmp(&a.se, &b.se, sizeof(double)) == 0);
          CHECK(std::memcmp(&a.df, &b.df, sizeof(double)) == 0);
          CHECK(std::memcmp(&a.ci_low, &b.ci_low, sizeof(double)) == 0);
        }
        ++trials;
      }
    }
  }
  CHECK(estimable > 600);  // of 960 comparisons: the check covers fitted trials, not just refusals
}
