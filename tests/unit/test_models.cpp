#include "sim/io/scenario.hpp"
#include "sim/engine/draws.hpp"
#include "sim/engine/trial.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

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
// The keys of patients 0 .. n - 1 of replicate (seed, r).
UnitColumns keys(std::uint64_t seed, std::uint64_t r, std::size_t n) {
  UnitColumns u;
  u.resize(n);
  draws::unit_keys(TrialKey(seed, r), 0, n, u.key.data(), u.mask.data());
  return u;
}
// n consented patients' covariates from `pop`.
TrialData covariates(const Population& pop, std::uint64_t seed, std::size_t n, bool extras) {
  TrialData t;
  t.reset_consented(n, 3);
  Scratch scratch;
  pop.draw(keys(seed, 0, n), n, t, scratch, extras);
  return t;
}
}  // namespace

TEST_CASE("population marginals match the configured proportions and means", "[population]") {
  PopulationConfig cfg;
  cfg.diabetes_prob = 0.6;
  cfg.male_prob = 0.3;
  cfg.prior_mg_prob = 0.1;
  const Population pop(cfg, {true, false, true});
  const std::size_t n = 20000;
  const TrialData t = covariates(pop, 5, n, true);
  double diab = 0, male = 0, prior = 0, age = 0, vint = 0, mg = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const ExtraCovariates& x = t.extras[i];
    diab += t.diabetes[i];
    male += t.male[i];
    prior += t.prior_mg[i];
    age += t.age[i];
    vint += x.vintage;
    mg += t.mg[i];
    REQUIRE(x.labs[static_cast<std::size_t>(Lab::magnesium)] == t.mg[i]);
    REQUIRE(x.vintage > 0);
    REQUIRE(x.labs[static_cast<std::size_t>(Lab::crp)] > 0);
  }
  const double nn = static_cast<double>(n);
  check_within(diab / nn, 0.6, std::sqrt(0.6 * 0.4 / nn));
  check_within(male / nn, 0.3, std::sqrt(0.3 * 0.7 / nn));
  check_within(prior / nn, 0.1, std::sqrt(0.1 * 0.9 / nn));
  check_within(age / nn, cfg.age_mean, cfg.age_sd / std::sqrt(nn));
  check_within(vint / nn, cfg.vintage_mean, cfg.vintage_sd / std::sqrt(nn));
  check_within(mg / nn, cfg.mg_mean, cfg.mg_sd / std::sqrt(nn));
}

TEST_CASE("population covariates are correlated as specified (age vs creatinine)", "[population]") {
  const Population pop(PopulationConfig{}, {true, false, true});
  const std::size_t n = 20000;
  const TrialData t = covariates(pop, 6, n, true);
  double sa = 0, sc = 0, saa = 0, scc = 0, sac = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = t.age[i], cr = t.extras[i].labs[static_cast<std::size_t>(Lab::creatinine)];
    sa += a;
    sc += cr;
    saa += a * a;
    scc += cr * cr;
    sac += a * cr;
  }
  const double nn = static_cast<double>(n);
  const double r = (sac / nn - sa / nn * sc / nn) /
                   std::sqrt((saa / nn - sa / nn * sa / nn) * (scc / nn - sc / nn * sc / nn));
  // Latent correlation -0.45 (age clamping barely changes it); SE of r ~ (1 - r^2)/sqrt(n).
  check_within(r, -0.45, (1 - 0.45 * 0.45) / std::sqrt(nn) + 0.005);
}

TEST_CASE("SPP deviations have the variance and OU correlation of the model", "[measurement]") {
  const Scenario s = scenario("[spp]\nsd_biological = 8.0\nsd_measurement = 4.0\nbiological_corr_months = 6.0\n");
  const Measurement m(s.spp, s.measurement, s.population, s.trial.months, s.screening.schedule());
  const std::size_t n = 40000;
  const UnitColumns u = keys(9, 1, n);
  TrialData t;
  t.reset_consented(n, 3);
  Scratch scratch;
  std::vector<double> fluctuation(n);
  m.draw_entry(u, n, t, fluctuation.data(), scratch);
  t.reset_rows(n);
  m.draw_visits(u, t, fluctuation.data(), scratch);
  // Visits at months 6 and 12 (month 0's reading is the entry reading itself).
  const double* d6 = t.at(t.deviation, 1);
  const double* d12 = t.at(t.deviation, 2);
  double s0 = 0, s6 = 0, s00 = 0, s66 = 0, s06 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    s0 += d6[i];
    s6 += d12[i];
    s00 += d6[i] * d6[i];
    s66 += d12[i] * d12[i];
    s06 += d6[i] * d12[i];
  }
  const double nn = static_cast<double>(n);
  const double var_total = 64.0 + 16.0;
  check_within(s00 / nn, var_total, var_total * std::sqrt(2.0 / nn));
  check_within(s66 / nn, var_total, var_total * std::sqrt(2.0 / nn));
  const double cov = 64.0 * std::exp(-1.0);
  // SE of a sample covariance: sqrt((var^2 + cov^2)/n).
  check_within(s06 / nn - s0 / nn * s6 / nn, cov, std::sqrt((var_total * var_total + cov * cov) / nn));
}

TEST_CASE("screening excludes in funnel order and applies the cutoffs", "[screening]") {
  ScreeningConfig cfg;
  cfg.entry_max = 80.0;
  cfg.entry_min = 20.0;
  cfg.pre_baseline_loss = 0.1;
  const Screening scr(cfg);
  // classify(prior_mg, entry SPP, the loss draw)
  CHECK(scr.classify(false, 79.9, 0.5) == Status::randomized);
  CHECK(scr.classify(false, 80.0, 0.5) == Status::entry_above_max);
  CHECK(scr.classify(false, 19.9, 0.5) == Status::entry_below_min);
  CHECK(scr.classify(false, 20.0, 0.5) == Status::randomized);
  CHECK(scr.classify(true, 50.0, 0.05) == Status::prior_mg);
  CHECK(scr.classify(false, 50.0, 0.05) == Status::lost_pre_baseline);
  CHECK(scr.classify(false, 90.0, 0.05) == Status::lost_pre_baseline);
}

namespace {
// n randomized patients (row r is patient r), a third with diabetes, two in five male.
TrialData trial_with(std::size_t n) {
  TrialData t;
  t.reset_consented(n, 3);
  t.reset_rows(n);
  for (std::size_t i = 0; i < n; ++i) {
    t.diabetes[i] = i % 3 == 0;
    t.male[i] = (i % 5) < 2;
    t.age[i] = 67.0;
    t.status[i] = Status::randomized;
    t.patient[i] = static_cast<std::uint32_t>(i);
    t.row_diabetes[i] = t.diabetes[i];
  }
  return t;
}
int treated(const TrialData& t, int stratum = -1) {
  int k = 0;
  for (std::size_t r = 0; r < t.rows; ++r) {
    if (stratum >= 0 && (t.diabetes[t.patient[r]] != 0) != (stratum == 1)) continue;
    k += t.arm[r] == Arm::treatment;
  }
  return k;
}
int count(const TrialData& t, int stratum) {
  int k = 0;
  for (std::size_t r = 0; r < t.rows; ++r) k += stratum < 0 || (t.diabetes[t.patient[r]] != 0) == (stratum == 1);
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
    Scratch scratch;
    rz.assign(t, TrialKey(3, r).unit(0), scratch);
    // Blocks of 4 and 6 have equal arms, so running imbalance never exceeds 3.
    int diff = 0, worst = 0;
    for (std::size_t row = 0; row < t.rows; ++row) {
      diff += t.arm[row] == Arm::treatment ? 1 : -1;
      worst = std::max(worst, std::abs(diff));
    }
    REQUIRE(worst <= 3);
  }
}

TEST_CASE("permuted blocks are the Fisher-Yates shuffles of the randomization stream", "[randomization]") {
  // Blocks of up to six patients come from a table of their shuffles' outcomes, larger ones are
  // shuffled in place: both must give the arms of the shuffle itself, draw for draw.
  for (const std::vector<int>& sizes : {std::vector<int>{4}, std::vector<int>{2, 6}, std::vector<int>{4, 8}}) {
    RandomizationConfig cfg;
    cfg.method = RandomizationMethod::block;
    cfg.block_sizes = sizes;
    const Randomizer rz(cfg);
    for (std::uint64_t r = 0; r < 100; ++r) {
      TrialData t = trial_with(45);
      Scratch scratch;
      const UnitKey unit = TrialKey(8, r).unit(0);
      rz.assign(t, unit, scratch);
      Stream rng(unit, StreamKind::randomization, 0);
      std::vector<Arm> want;
      while (want.size() < t.rows) {
        const std::size_t which = sizes.size() > 1 ? uniform_below(rng, sizes.size()) : 0;
        const auto size = static_cast<std::size_t>(sizes[which]);
        std::vector<Arm> block(size, Arm::control);
        std::fill_n(block.begin(), size / 2, Arm::treatment);
        for (std::size_t k = size - 1; k > 0; --k) std::swap(block[k], block[uniform_below(rng, k + 1)]);
        want.insert(want.end(), block.begin(), block.end());
      }
      for (std::size_t row = 0; row < t.rows; ++row) {
        INFO("sizes " << sizes[0] << ", replicate " << r << ", row " << row);
        REQUIRE(t.arm[row] == want[row]);
      }
    }
  }
}

TEST_CASE("stratified blocks balance within each diabetes stratum", "[randomization]") {
  RandomizationConfig cfg;  // stratified_block, size 4
  const Randomizer rz(cfg);
  for (std::uint64_t r = 0; r < 200; ++r) {
    TrialData t = trial_with(50);
    Scratch scratch;
    rz.assign(t, TrialKey(4, r).unit(0), scratch);
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
  Scratch scratch;
  Randomizer(cfg).assign(t, TrialKey(5, 0).unit(0), scratch);
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
    Scratch scratch;
    rz.assign(t, TrialKey(6, r).unit(0), scratch);
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
      Scratch scratch;
      Randomizer(which == 0 ? mini : simple).assign(t, TrialKey(7, r).unit(0), scratch);
      const double imb = std::abs(2 * treated(t, 1) - count(t, 1)) + std::abs(2 * treated(t, 0) - count(t, 0));
      (which == 0 ? imb_mini : imb_simple) += imb;
    }
  }
  CHECK(imb_mini / 300 < 2.0);
  CHECK(imb_simple / 300 > 2 * imb_mini / 300);
}

TEST_CASE("MgO titration stays within the dose range and raises serum Mg", "[treatment]") {
  const TreatmentConfig cfg;
  const Treatment trt(cfg, 2.5, 0.3);
  const std::vector<double> months{0, 6, 12};
  const std::size_t n = 4000;
  TrialData t = trial_with(n);
  for (std::size_t r = 0; r < n; ++r) {
    t.mg[r] = 2.5;
    t.arm[r] = r % 2 ? Arm::treatment : Arm::control;
  }
  t.arms_changed();
  Scratch scratch;
  trt.apply(keys(8, 0, n), t, months, scratch);
  double mg_t = 0, mg_c = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const double dose0 = t.at(t.dose, 0)[r], dose1 = t.at(t.dose, 1)[r], mg1 = t.at(t.serum_mg, 1)[r];
    CHECK(dose0 == 0.0);
    if (t.arm[r] == Arm::treatment) {
      REQUIRE(dose1 >= cfg.min_dose_mg);
      REQUIRE(dose1 <= cfg.max_dose_mg);
      REQUIRE(std::fmod(dose1, cfg.dose_step_mg) == 0.0);
      mg_t += mg1;
    } else {
      REQUIRE(dose1 == 0.0);
      mg_c += mg1;
    }
  }
  const double half = static_cast<double>(n / 2);
  check_within(mg_c / half, 2.5, cfg.mg_measurement_sd / std::sqrt(half));
  CHECK(mg_t / half > 2.9);
  CHECK(mg_t / half < 3.2);
}

const std::vector<double> kMonths{0, 6, 12};

namespace {
// n patients of one arm on one true path (and, for dropout on observed SPP, with the same
// readings at months 0, 6 and 12), followed by `drop`: the rows' fates.
TrialData followed(const Dropout& drop, Arm arm, const TruePath& path, const std::array<double, 3>& readings,
                   std::uint64_t seed, std::size_t n = 20000) {
  TrialData t = trial_with(n);
  t.onset_months = path.onset_months;
  for (std::size_t r = 0; r < n; ++r) {
    t.arm[r] = arm;
    t.path_level[r] = path.level;
    t.path_slope[r] = path.slope;
    t.effect[r] = path.effect;
    for (std::size_t k = 0; k < 3; ++k) t.at(t.observed, k)[r] = readings[k];
  }
  t.arms_changed();
  Scratch scratch;
  drop.follow(keys(seed, 0, n), t, kMonths, scratch);
  return t;
}
}  // namespace

TEST_CASE("non-informative dropout follows the exponential competing-risks law", "[dropout]") {
  DropoutConfig cfg;
  cfg.death_per_year = 0.2;
  cfg.transfer_per_year = 0.1;
  cfg.ae_per_year = 0.3;
  cfg.spp_hazard_ratio_per_10 = 1.0;
  const Dropout drop(cfg, 12.0, 0.0);
  const std::size_t n = 20000;
  const TrialData t = followed(drop, Arm::treatment, TruePath{60, 0, 0, 0}, {}, 10, n);
  int dropped = 0, deaths = 0, ae = 0;
  for (std::size_t r = 0; r < n; ++r) {
    if (t.dropout_reason[r] != DropoutReason::none) {
      ++dropped;
      REQUIRE(t.dropout_month[r] >= 0.0);
      REQUIRE(t.dropout_month[r] <= 12.0);
    } else {
      REQUIRE(std::isinf(t.dropout_month[r]));
    }
    deaths += t.dropout_reason[r] == DropoutReason::death;
    ae += t.dropout_reason[r] == DropoutReason::adverse_event;
  }
  const double nn = static_cast<double>(n);
  const double p_drop = 1 - std::exp(-0.6);
  check_within(dropped / nn, p_drop, std::sqrt(p_drop * (1 - p_drop) / nn));
  const double p_death = p_drop * 0.2 / 0.6;
  check_within(deaths / nn, p_death, std::sqrt(p_death * (1 - p_death) / nn));
  const double p_ae = p_drop * 0.3 / 0.6;
  check_within(ae / nn, p_ae, std::sqrt(p_ae * (1 - p_ae) / nn));
}

TEST_CASE("dropout times follow the exponential law within the year", "[dropout]") {
  // Constant hazard 0.6/year: P(drop before month 6) = 1 - e^-0.3.
  DropoutConfig cfg;
  cfg.death_per_year = 0.6;
  cfg.transfer_per_year = 0.0;
  cfg.ae_per_year = 0.0;
  cfg.spp_hazard_ratio_per_10 = 1.0;
  const Dropout drop(cfg, 12.0, 0.0);
  const std::size_t n = 20000;
  const TrialData t = followed(drop, Arm::control, TruePath{60, 0, 0, 0}, {}, 13, n);
  int early = 0;
  for (std::size_t r = 0; r < n; ++r) early += t.dropout_month[r] < 6.0;
  const double p = 1 - std::exp(-0.3), nn = static_cast<double>(n);
  check_within(early / nn, p, std::sqrt(p * (1 - p) / nn));
}

namespace {
// Share of 20000 control patients with the given path and readings who drop out within 12
// months, under death hazard 0.2/yr at SPP 60 and HR 1.5 per 10 mmHg (no other causes).
double dropout_share(bool on_observed, const TruePath& path, const std::array<double, 3>& readings,
                     std::uint64_t seed) {
  DropoutConfig cfg;
  cfg.death_per_year = 0.2;
  cfg.transfer_per_year = 0.0;
  cfg.ae_per_year = 0.0;
  cfg.spp_hazard_ratio_per_10 = 1.5;
  cfg.reference_spp = 60.0;
  cfg.on_observed = on_observed;
  const Dropout drop(cfg, 12.0, path.onset_months);
  const TrialData t = followed(drop, Arm::control, path, readings, seed);
  int dropped = 0;
  for (std::size_t r = 0; r < t.rows; ++r) dropped += t.dropout_reason[r] != DropoutReason::none;
  return static_cast<double>(dropped) / static_cast<double>(t.rows);
}
}  // namespace

TEST_CASE("informative dropout multiplies the hazard per 10 mmHg lower true SPP", "[dropout]") {
  // 20 mmHg below the reference: hazard x2.25.
  const double p = 1 - std::exp(-0.2 * 2.25);
  check_within(dropout_share(false, TruePath{40, 0, 0, 0}, {}, 11), p, std::sqrt(p * (1 - p) / 20000));
}

TEST_CASE("informative dropout follows a sloping true SPP month by month", "[dropout]") {
  // True SPP falls from 60 by 2 mmHg a month: the hazard at month k's middle is
  // 0.2/12 * 1.5^((2 (k + 0.5))/10); the months' sum is the cumulative hazard.
  double h = 0;
  for (int k = 0; k < 12; ++k) h += 0.2 / 12 * std::pow(1.5, 2.0 * (k + 0.5) / 10.0);
  const double p = 1 - std::exp(-h);
  check_within(dropout_share(false, TruePath{60, -2, 0, 0}, {}, 14), p, std::sqrt(p * (1 - p) / 20000));
}

TEST_CASE("dropout on true SPP matches a month-by-month walk of every row", "[dropout]") {
  // The screen, the geometric multipliers and the four-lane walk against the definition: each
  // piece's hazard from e^(L (reference - true SPP at its middle)), capped at e^700, the
  // threshold and the cause from the patient's own slots. Rows differ in arm, level, slope and
  // effect (or, in the second section, only in level: one slope and effect per arm); the effect
  // ramps to month 4; the horizon 12.5 leaves a part-month; a few rows are so low that their
  // multiplier would pass e^700.
  const bool per_arm = GENERATE(false, true);
  DropoutConfig cfg;
  cfg.death_per_year = 0.5;
  cfg.transfer_per_year = 0.2;
  cfg.ae_per_year = 0.3;
  cfg.treatment_transfer_per_year = 0.1;
  cfg.spp_hazard_ratio_per_10 = 3.0;
  cfg.reference_spp = 60.0;
  const double horizon = 12.5, onset = 4.0;
  const Dropout drop(cfg, horizon, onset);
  const std::size_t n = 6001;
  TrialData t = trial_with(n);
  t.onset_months = onset;
  for (std::size_t r = 0; r < n; ++r) {
    const bool tr = r % 2 == 1;
    t.arm[r] = tr ? Arm::treatment : Arm::control;
    t.path_level[r] = r % 97 == 5 ? -8000.0 : 60.0 + 30.0 * std::sin(0.37 * static_cast<double>(r));
    t.path_slope[r] = per_arm ? (tr ? -0.7 : 0.4) : 0.5 * (static_cast<double>(r % 7) - 3.0);
    t.effect[r] = !tr ? 0.0 : per_arm ? 6.0 : 4.0 * static_cast<double>(r % 3);
  }
  t.arms_changed();
  const UnitColumns units = keys(77, 0, n);
  Scratch scratch;
  drop.follow(units, t, {0.0, 6.0, horizon}, scratch);
  const double L = std::log(cfg.spp_hazard_ratio_per_10) / 10.0;
  int dropped = 0, capped = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const bool tr = t.arm[r] == Arm::treatment;
    Stream thr_rng(units[r], StreamKind::dropout, dropout_slot::threshold);
    const double threshold = standard_exponential(thr_rng);
    const TruePath path = t.path(r);
    double cumulative = 0.0, month = std::numeric_limits<double>::infinity();
    DropoutReason reason = DropoutReason::none;
    for (int k = 0; k < 13 && reason == DropoutReason::none; ++k) {
      const double start = k, width = std::min(1.0, horizon - start), mid = start + width / 2;
      const double e = L * (cfg.reference_spp - path.at(mid));
      capped += k == 0 && e > 700.0;
      const double m = std::exp(std::min(700.0, e));
      const double death = cfg.death_per_year / 12 * m;
      const double transfer = cfg.transfer_per_year / 12 * m + (tr ? cfg.treatment_transfer_per_year / 12 : 0.0);
      const double total = death + transfer + (tr ? cfg.ae_per_year / 12 : 0.0);
      if (cumulative + total * width >= threshold) {
        month = start + (threshold - cumulative) / total;
        Stream cause_rng(units[r], StreamKind::dropout, dropout_slot::cause);
        const double c = uniform01(cause_rng) * total;
        reason = c < death ? DropoutReason::death : c < death + transfer ? DropoutReason::transfer
                                                                           : DropoutReason::adverse_event;
      }
      cumulative += total * width;
    }
    INFO((per_arm ? "per-arm paths, " : "") << "row " << r << ": level " << path.level << ", slope " << path.slope << ", effect " << path.effect);
    REQUIRE(t.dropout_reason[r] == reason);
    if (reason == DropoutReason::none) {
      REQUIRE(std::isinf(t.dropout_month[r]));
    } else {
      REQUIRE(std::abs(t.dropout_month[r] - month) <= 1e-9 * (1.0 + month));
      ++dropped;
    }
  }
  // Both outcomes and the capped walk were exercised.
  REQUIRE(capped >= 50);
  REQUIRE(dropped > 1000);
  REQUIRE(dropped < 5000);
}

TEST_CASE("dropout on observed SPP uses the last reading taken before each month", "[dropout]") {
  // Baseline reading 60 (x1), month-6 reading 40 (x2.25); the true SPP (80) is ignored.
  const double p = 1 - std::exp(-0.2 * 0.5 - 0.2 * 2.25 * 0.5);
  check_within(dropout_share(true, TruePath{80, 0, 0, 0}, {60.0, 40.0, 40.0}, 12), p, std::sqrt(p * (1 - p) / 20000));
}

TEST_CASE("visits after dropout are missing and the baseline is the entry reading", "[measurement]") {
  const Scenario s = scenario("[screening]\nentry_max = 80.0\n[dropout]\ndeath_per_year = 0.5\n");
  const TrialSimulator sim(s);
  Workspace ws;
  sim.simulate(20190401, 3, ws);
  const TrialData& t = ws.trial;
  int checked = 0;
  for (std::size_t r = 0; r < t.rows; ++r) {
    const std::size_t i = t.patient[r];
    REQUIRE(t.status[i] == Status::randomized);
    REQUIRE(t.entry_spp[i] < 80.0);
    REQUIRE(t.observed_at(r, 0) == t.entry_spp[i]);
    for (std::size_t k = 1; k < 3; ++k) REQUIRE(t.seen_at(r, k) == (s.trial.months[k] < t.dropout_month[r]));
    ++checked;
  }
  CHECK(checked > 50);
}

TEST_CASE("the covariates models read do not depend on whether the others are drawn", "[population]") {
  // Age and sex are read by no model here: they come from the extras stream with the labs.
  const Population pop(PopulationConfig{}, {false, false, true});
  const std::size_t n = 200;
  const TrialData core = covariates(pop, 7, n, false), full = covariates(pop, 7, n, true);
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(core.diabetes[i] == full.diabetes[i]);
    REQUIRE(core.prior_mg[i] == full.prior_mg[i]);
    REQUIRE(core.mg[i] == full.mg[i]);
    REQUIRE(std::isnan(core.age[i]));
    REQUIRE(full.age[i] >= 18.0);
    REQUIRE(full.extras[i].vintage > 0);
  }
}

TEST_CASE("diabetes is the same patient's whatever other covariates a scenario draws", "[population]") {
  // Each covariate's latent normal has its own slot of the population stream, and diabetes comes
  // first in the copula, so switching on age (an SPP shift) or sex (minimization) keeps every
  // patient's stratum: common random numbers.
  const Population only(PopulationConfig{}, {false, false, false}), all(PopulationConfig{}, {true, true, true});
  const std::size_t n = 500;
  const TrialData a = covariates(only, 8, n, false), b = covariates(all, 8, n, false);
  int differ = 0;
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(a.diabetes[i] == b.diabetes[i]);
    differ += a.mg[i] != b.mg[i];
  }
  CHECK(differ > 400);  // serum Mg is drawn only by the second
}
