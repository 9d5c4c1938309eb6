#include "sim/io/scenario.hpp"
#include "sim/engine/trial.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace trialsim;

namespace {
Scenario scenario(const std::string& toml) {
  ConfigReader in = ConfigReader::from_string(toml, "test.toml");
  return Scenario::read(in);
}
// |observed - expected| within 4 Monte Carlo standard errors.
void check_within(double observed, double expected, double mcse) {
  INFO("observed " << observed << ", expected " << expected << ", MCSE " << mcse);
  CHECK(std::abs(observed - expected) <= 4 * mcse);
}
}  // namespace

TEST_CASE("population marginals match the configured proportions and means", "[population]") {
  PopulationConfig cfg;
  cfg.diabetes_prob = 0.6;
  cfg.male_prob = 0.3;
  cfg.prior_mg_prob = 0.1;
  const Population pop(cfg, {true, false, true});
  const int n = 20000;
  double diab = 0, male = 0, prior = 0, age = 0, vint = 0, mg = 0;
  for (int i = 0; i < n; ++i) {
    Stream rng(5, 0, StreamKind::population, static_cast<std::uint64_t>(i));
    Stream extras(5, 0, StreamKind::covariates, static_cast<std::uint64_t>(i));
    Covariates c;
    ExtraCovariates x;
    pop.draw(rng, c, &extras, &x);
    diab += c.diabetes;
    male += c.male;
    prior += c.prior_mg;
    age += c.age;
    vint += x.vintage;
    mg += c.mg;
    REQUIRE(x.labs[static_cast<std::size_t>(Lab::magnesium)] == c.mg);
    REQUIRE(x.vintage > 0);
    REQUIRE(x.labs[static_cast<std::size_t>(Lab::crp)] > 0);
  }
  check_within(diab / n, 0.6, std::sqrt(0.6 * 0.4 / n));
  check_within(male / n, 0.3, std::sqrt(0.3 * 0.7 / n));
  check_within(prior / n, 0.1, std::sqrt(0.1 * 0.9 / n));
  check_within(age / n, cfg.age_mean, cfg.age_sd / std::sqrt(n));
  check_within(vint / n, cfg.vintage_mean, cfg.vintage_sd / std::sqrt(n));
  check_within(mg / n, cfg.mg_mean, cfg.mg_sd / std::sqrt(n));
}

TEST_CASE("population covariates are correlated as specified (age vs creatinine)", "[population]") {
  const Population pop(PopulationConfig{}, {true, false, true});
  const int n = 20000;
  double sa = 0, sc = 0, saa = 0, scc = 0, sac = 0;
  for (int i = 0; i < n; ++i) {
    Stream rng(6, 0, StreamKind::population, static_cast<std::uint64_t>(i));
    Stream extras(6, 0, StreamKind::covariates, static_cast<std::uint64_t>(i));
    Covariates c;
    ExtraCovariates x;
    pop.draw(rng, c, &extras, &x);
    const double a = c.age, cr = x.labs[static_cast<std::size_t>(Lab::creatinine)];
    sa += a;
    sc += cr;
    saa += a * a;
    scc += cr * cr;
    sac += a * cr;
  }
  const double r = (sac / n - sa / n * sc / n) /
                   std::sqrt((saa / n - sa / n * sa / n) * (scc / n - sc / n * sc / n));
  // Latent correlation -0.45 (age clamping barely changes it); SE of r ~ (1 - r^2)/sqrt(n).
  check_within(r, -0.45, (1 - 0.45 * 0.45) / std::sqrt(n) + 0.005);
}

TEST_CASE("SPP deviations have the variance and OU correlation of the model", "[measurement]") {
  const Scenario s = scenario("[spp]\nsd_biological = 8.0\nsd_measurement = 4.0\nbiological_corr_months = 6.0\n");
  const Measurement m(s.spp, s.measurement, s.population, s.trial.months, s.screening.schedule());
  const int n = 40000;
  double s0 = 0, s6 = 0, s00 = 0, s66 = 0, s06 = 0;
  for (int i = 0; i < n; ++i) {
    Stream rng(9, 1, StreamKind::measurement, static_cast<std::uint64_t>(i));
    // Visits at months 6 and 12 (month 0's reading is the entry reading itself).
    const Deviations d = m.draw_deviations(rng);
    s0 += d.visit[1];
    s6 += d.visit[2];
    s00 += d.visit[1] * d.visit[1];
    s66 += d.visit[2] * d.visit[2];
    s06 += d.visit[1] * d.visit[2];
  }
  const double var_total = 64.0 + 16.0;
  check_within(s00 / n, var_total, var_total * std::sqrt(2.0 / n));
  check_within(s66 / n, var_total, var_total * std::sqrt(2.0 / n));
  const double cov = 64.0 * std::exp(-1.0);
  // SE of a sample covariance: sqrt((var^2 + cov^2)/n).
  check_within(s06 / n - s0 / n * s6 / n, cov, std::sqrt((var_total * var_total + cov * cov) / n));
}

TEST_CASE("screening excludes in funnel order and applies the cutoffs", "[screening]") {
  ScreeningConfig cfg;
  cfg.entry_max = 80.0;
  cfg.entry_min = 20.0;
  cfg.pre_baseline_loss = 0.0;
  const Screening scr(cfg);
  Stream rng(1, 1, StreamKind::population, 0);
  Covariates c;
  CHECK(scr.classify(c, 79.9, rng) == Status::randomized);
  CHECK(scr.classify(c, 80.0, rng) == Status::entry_above_max);
  CHECK(scr.classify(c, 19.9, rng) == Status::entry_below_min);
  CHECK(scr.classify(c, 20.0, rng) == Status::randomized);
  c.prior_mg = true;
  CHECK(scr.classify(c, 50.0, rng) == Status::prior_mg);
  cfg.pre_baseline_loss = 0.999999;
  c.prior_mg = false;
  CHECK(Screening(cfg).classify(c, 50.0, rng) == Status::lost_pre_baseline);
}

namespace {
TrialData trial_with(int n, const std::vector<bool>& diabetes = {}) {
  TrialData t;
  t.visits = 3;
  t.patients.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    t.patients[static_cast<std::size_t>(i)].cov.diabetes = diabetes.empty() ? (i % 3 == 0) : diabetes[static_cast<std::size_t>(i)];
    t.patients[static_cast<std::size_t>(i)].cov.male = (i % 5) < 2;
    t.randomized.push_back(static_cast<std::size_t>(i));
  }
  return t;
}
int treated(const TrialData& t, int stratum = -1) {
  int k = 0;
  for (const auto& p : t.patients) {
    if (stratum >= 0 && p.cov.diabetes != (stratum == 1)) continue;
    k += p.arm == Arm::treatment;
  }
  return k;
}
int count(const TrialData& t, int stratum) {
  int k = 0;
  for (const auto& p : t.patients) k += stratum < 0 || p.cov.diabetes == (stratum == 1);
  return k;
}
}  // namespace

TEST_CASE("permuted blocks balance every completed block", "[randomization]") {
  RandomizationConfig cfg;
  cfg.method = RandomizationMethod::block;
  cfg.block_sizes = {4, 6};
  const Randomizer rz(cfg);
  for (std::uint64_t r = 0; r < 200; ++r) {
    TrialData t = trial_with(60);
    Stream rng(3, r, StreamKind::randomization);
    rz.assign(t, rng);
    // Blocks of 4 and 6 have equal arms, so running imbalance never exceeds 3.
    int diff = 0, worst = 0;
    for (const auto& p : t.patients) {
      diff += p.arm == Arm::treatment ? 1 : -1;
      worst = std::max(worst, std::abs(diff));
    }
    REQUIRE(worst <= 3);
  }
}

TEST_CASE("stratified blocks balance within each diabetes stratum", "[randomization]") {
  RandomizationConfig cfg;  // stratified_block, size 4
  const Randomizer rz(cfg);
  for (std::uint64_t r = 0; r < 200; ++r) {
    TrialData t = trial_with(50);
    Stream rng(4, r, StreamKind::randomization);
    rz.assign(t, rng);
    for (int s = 0; s < 2; ++s) REQUIRE(std::abs(2 * treated(t, s) - count(t, s)) <= 2);
  }
}

TEST_CASE("block randomization follows an unequal allocation ratio exactly", "[randomization]") {
  RandomizationConfig cfg;
  cfg.method = RandomizationMethod::block;
  cfg.ratio_treatment = 2;
  cfg.ratio_control = 1;
  cfg.block_sizes = {3, 6};
  TrialData t = trial_with(60);
  Stream rng(5, 0, StreamKind::randomization);
  Randomizer(cfg).assign(t, rng);
  // 60 = whole blocks of 3 and 6 only if the last block closes at 60; check the closed part.
  CHECK(std::abs(treated(t) - 40) <= 2);
}

TEST_CASE("simple randomization allocates by the ratio on average", "[randomization]") {
  RandomizationConfig cfg;
  cfg.method = RandomizationMethod::simple;
  cfg.ratio_treatment = 1;
  cfg.ratio_control = 3;
  const Randomizer rz(cfg);
  int tr = 0;
  const int reps = 200, n = 100;
  for (std::uint64_t r = 0; r < reps; ++r) {
    TrialData t = trial_with(n);
    Stream rng(6, r, StreamKind::randomization);
    rz.assign(t, rng);
    tr += treated(t);
  }
  check_within(static_cast<double>(tr) / (reps * n), 0.25, std::sqrt(0.25 * 0.75 / (reps * n)));
}

TEST_CASE("minimization keeps marginal imbalance smaller than simple randomization", "[randomization]") {
  RandomizationConfig mini;
  mini.method = RandomizationMethod::minimization;
  mini.minimization_prob = 0.9;
  RandomizationConfig simple;
  simple.method = RandomizationMethod::simple;
  double imb_mini = 0, imb_simple = 0;
  for (std::uint64_t r = 0; r < 300; ++r) {
    for (int which = 0; which < 2; ++which) {
      TrialData t = trial_with(40);
      Stream rng(7, r, StreamKind::randomization);
      Randomizer(which == 0 ? mini : simple).assign(t, rng);
      const double imb = std::abs(2 * treated(t, 1) - count(t, 1)) + std::abs(2 * treated(t, 0) - count(t, 0));
      (which == 0 ? imb_mini : imb_simple) += imb;
    }
  }
  CHECK(imb_mini / 300 < 2.0);
  CHECK(imb_simple / 300 > 2 * imb_mini / 300);
}

TEST_CASE("MgO titration stays within the dose range and raises serum Mg", "[treatment]") {
  const TreatmentConfig cfg;
  const Treatment trt(cfg);
  const std::vector<double> months{0, 6, 12};
  double mg_t = 0, mg_c = 0;
  const int n = 4000;
  VisitTable table;
  table.reset(1, months.size());
  const VisitRow row = table.row(0);
  for (int i = 0; i < n; ++i) {
    Patient p;
    p.cov.mg = 2.5;
    p.arm = i % 2 ? Arm::treatment : Arm::control;
    Stream rng(8, 0, StreamKind::treatment, static_cast<std::uint64_t>(i));
    trt.apply(p, row, months, rng);
    CHECK(row.dose[0] == 0.0);
    if (p.arm == Arm::treatment) {
      REQUIRE(row.dose[1] >= cfg.min_dose_mg);
      REQUIRE(row.dose[1] <= cfg.max_dose_mg);
      REQUIRE(std::fmod(row.dose[1], cfg.dose_step_mg) == 0.0);
      mg_t += row.serum_mg[1];
    } else {
      REQUIRE(row.dose[1] == 0.0);
      mg_c += row.serum_mg[1];
    }
  }
  check_within(mg_c / (n / 2), 2.5, cfg.mg_measurement_sd / std::sqrt(n / 2));
  CHECK(mg_t / (n / 2) > 2.9);
  CHECK(mg_t / (n / 2) < 3.2);
}

const std::vector<double> kMonths{0, 6, 12};
const std::array<double, kMaxVisits> kNoReadings{};

TEST_CASE("non-informative dropout follows the exponential competing-risks law", "[dropout]") {
  DropoutConfig cfg;
  cfg.death_per_year = 0.2;
  cfg.transfer_per_year = 0.1;
  cfg.ae_per_year = 0.3;
  cfg.spp_hazard_ratio_per_10 = 1.0;
  const Dropout drop(cfg, 12.0, 0.0);
  const int n = 20000;
  int dropped = 0, deaths = 0, ae = 0;
  for (int i = 0; i < n; ++i) {
    Patient p;
    p.arm = Arm::treatment;
    Stream rng(10, 0, StreamKind::dropout, static_cast<std::uint64_t>(i));
    drop.follow(p, TruePath{60, 0, 0, 0}, kMonths, kNoReadings.data(), rng);
    if (p.dropout_reason != DropoutReason::none) {
      ++dropped;
      REQUIRE(p.dropout_month >= 0.0);
      REQUIRE(p.dropout_month <= 12.0);
    }
    deaths += p.dropout_reason == DropoutReason::death;
    ae += p.dropout_reason == DropoutReason::adverse_event;
  }
  const double p_drop = 1 - std::exp(-0.6);
  check_within(static_cast<double>(dropped) / n, p_drop, std::sqrt(p_drop * (1 - p_drop) / n));
  const double p_death = p_drop * 0.2 / 0.6;
  check_within(static_cast<double>(deaths) / n, p_death, std::sqrt(p_death * (1 - p_death) / n));
  const double p_ae = p_drop * 0.3 / 0.6;
  check_within(static_cast<double>(ae) / n, p_ae, std::sqrt(p_ae * (1 - p_ae) / n));
}

namespace {
// Share of 20000 control patients with the given path and readings who drop out within 12
// months, under death hazard 0.2/yr at SPP 60 and HR 1.5 per 10 mmHg (no other causes).
double dropout_share(bool on_observed, const TruePath& path, const std::array<double, kMaxVisits>& readings,
                     std::uint64_t seed) {
  DropoutConfig cfg;
  cfg.death_per_year = 0.2;
  cfg.transfer_per_year = 0.0;
  cfg.ae_per_year = 0.0;
  cfg.spp_hazard_ratio_per_10 = 1.5;
  cfg.reference_spp = 60.0;
  cfg.on_observed = on_observed;
  const Dropout drop(cfg, 12.0, 0.0);
  const int n = 20000;
  int dropped = 0;
  for (int i = 0; i < n; ++i) {
    Patient p;
    p.arm = Arm::control;
    Stream rng(seed, 0, StreamKind::dropout, static_cast<std::uint64_t>(i));
    drop.follow(p, path, kMonths, readings.data(), rng);
    dropped += p.dropout_reason != DropoutReason::none;
  }
  return static_cast<double>(dropped) / n;
}
}  // namespace

TEST_CASE("informative dropout multiplies the hazard per 10 mmHg lower true SPP", "[dropout]") {
  // 20 mmHg below the reference: hazard x2.25.
  const double p = 1 - std::exp(-0.2 * 2.25);
  check_within(dropout_share(false, TruePath{40, 0, 0, 0}, kNoReadings, 11), p, std::sqrt(p * (1 - p) / 20000));
}

TEST_CASE("dropout on observed SPP uses the last reading taken before each month", "[dropout]") {
  // Baseline reading 60 (x1), month-6 reading 40 (x2.25); the true SPP (80) is ignored.
  std::array<double, kMaxVisits> readings{};
  readings[0] = 60.0;
  readings[1] = 40.0;
  readings[2] = 40.0;
  const double p = 1 - std::exp(-0.2 * 0.5 - 0.2 * 2.25 * 0.5);
  check_within(dropout_share(true, TruePath{80, 0, 0, 0}, readings, 12), p, std::sqrt(p * (1 - p) / 20000));
}

TEST_CASE("visits after dropout are missing and the baseline is the entry reading", "[measurement]") {
  const Scenario s = scenario("[screening]\nentry_max = 80.0\n[dropout]\ndeath_per_year = 0.5\n");
  const TrialSimulator sim(s);
  Workspace ws;
  sim.simulate(20190401, 3, ws);
  int checked = 0;
  for (std::size_t r = 0; r < ws.trial.randomized.size(); ++r) {
    const Patient& p = ws.trial.randomized_patient(r);
    const ConstVisitRow row = ws.trial.table.row(r);
    REQUIRE(p.row == static_cast<std::int32_t>(r));
    REQUIRE(p.entry_spp < 80.0);
    REQUIRE(row.observed[0] == p.entry_spp);
    for (std::size_t k = 1; k < 3; ++k) REQUIRE((row.seen[k] != 0) == (s.trial.months[k] < p.dropout_month));
    ++checked;
  }
  CHECK(checked > 50);
}

TEST_CASE("the covariates models read do not depend on whether the others are drawn", "[population]") {
  // Age and sex are read by no model here: they come from the extras stream with the labs.
  const Population pop(PopulationConfig{}, {false, false, true});
  for (std::uint64_t i = 0; i < 200; ++i) {
    Stream a(7, 0, StreamKind::population, i), b(7, 0, StreamKind::population, i);
    Stream extras(7, 0, StreamKind::covariates, i);
    Covariates core, full;
    ExtraCovariates x;
    pop.draw(a, core);
    pop.draw(b, full, &extras, &x);
    REQUIRE(core.diabetes == full.diabetes);
    REQUIRE(core.prior_mg == full.prior_mg);
    REQUIRE(core.mg == full.mg);
    REQUIRE(a() == b());  // both streams left at the same point
    REQUIRE(std::isnan(core.age));
    REQUIRE(full.age >= 18.0);
    REQUIRE(x.vintage > 0);
  }
}

TEST_CASE("diabetes is the same patient's whatever other covariates a scenario draws", "[population]") {
  // Diabetes is the first latent normal of the population stream, so switching on age (an SPP
  // shift) or sex (minimization) keeps every patient's stratum: common random numbers.
  const Population only(PopulationConfig{}, {false, false, false}), all(PopulationConfig{}, {true, true, true});
  int differ = 0;
  for (std::uint64_t i = 0; i < 500; ++i) {
    Stream a(8, 0, StreamKind::population, i), b(8, 0, StreamKind::population, i);
    Covariates c1, c2;
    only.draw(a, c1);
    all.draw(b, c2);
    REQUIRE(c1.diabetes == c2.diabetes);
    differ += c1.mg != c2.mg;
  }
  CHECK(differ > 400);  // serum Mg is drawn only by the second
}
