#include "models/population.hpp"
#include "sim/engine/draws.hpp"

#include <Eigen/Cholesky>
#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace trialsim {
namespace {

// Marginals of the labs: pooled mean and SD of the two arms of the report's Table 1.
// Right-skewed values (PTH, CRP) are log-normal with that mean and SD; the rest normal.
struct LabMarginal {
  const char* name;
  double mean;
  double sd;
  bool lognormal;
};
constexpr std::array<LabMarginal, kLabs> kLabMarginals{{
    {"total_protein", 6.7, 0.55, false},
    {"albumin", 3.6, 0.3, false},
    {"creatinine", 10.2, 2.5, false},
    {"sodium", 139.5, 3.0, false},
    {"potassium", 4.95, 0.7, false},
    {"chloride", 101.0, 3.6, false},
    {"calcium", 8.65, 0.6, false},
    {"phosphate", 5.35, 1.4, false},
    {"magnesium", 2.5, 0.35, false},  // mean and SD replaced by population.mg_mean / mg_sd
    {"pth", 170.0, 99.0, true},
    {"hemoglobin", 11.05, 1.05, false},
    {"ldl", 93.0, 30.0, false},
    {"crp", 0.35, 0.45, true},
}};

// Indices into the latent vector.
constexpr std::size_t kAge = 0, kMale = 1, kVintage = 2, kDiabetes = 3;
constexpr std::size_t lab(Lab l) { return 4 + static_cast<std::size_t>(l); }

// Latent (Gaussian-copula) correlations. Table 1 gives no correlations, so these are chosen
// to be plausible for hemodialysis cohorts: creatinine falls with age and rises with muscle
// mass (male sex); albumin tracks total protein and falls with inflammation (CRP); PTH rises
// with vintage and phosphate; sodium and chloride move together; diabetics are older and
// have shorter vintage. Pairs not listed are independent.
struct Pair {
  std::size_t a, b;
  double r;
};
const std::array<Pair, 27> kPairs{{
    {kAge, kVintage, 0.10},
    {kAge, kDiabetes, 0.15},
    {kAge, lab(Lab::albumin), -0.25},
    {kAge, lab(Lab::creatinine), -0.45},
    {kAge, lab(Lab::phosphate), -0.20},
    {kAge, lab(Lab::crp), 0.10},
    {kMale, lab(Lab::creatinine), 0.35},
    {kMale, lab(Lab::hemoglobin), 0.10},
    {kVintage, lab(Lab::pth), 0.25},
    {kVintage, kDiabetes, -0.25},
    {kVintage, lab(Lab::phosphate), 0.10},
    {kDiabetes, lab(Lab::creatinine), -0.20},
    {kDiabetes, lab(Lab::albumin), -0.10},
    {lab(Lab::total_protein), lab(Lab::albumin), 0.60},
    {lab(Lab::albumin), lab(Lab::crp), -0.35},
    {lab(Lab::albumin), lab(Lab::creatinine), 0.35},
    {lab(Lab::albumin), lab(Lab::hemoglobin), 0.20},
    {lab(Lab::albumin), lab(Lab::phosphate), 0.15},
    {lab(Lab::creatinine), lab(Lab::phosphate), 0.35},
    {lab(Lab::creatinine), lab(Lab::potassium), 0.20},
    {lab(Lab::creatinine), lab(Lab::magnesium), 0.20},
    {lab(Lab::sodium), lab(Lab::chloride), 0.55},
    {lab(Lab::calcium), lab(Lab::phosphate), -0.10},
    {lab(Lab::calcium), lab(Lab::pth), -0.20},
    {lab(Lab::phosphate), lab(Lab::pth), 0.25},
    {lab(Lab::phosphate), lab(Lab::potassium), 0.25},
    {lab(Lab::phosphate), lab(Lab::magnesium), 0.20},
}};

// A log-normal with this mean and SD is exp(a + b z), z standard normal: {a, b}.
std::array<double, 2> lognormal_params(double mean, double sd) {
  const double s2 = std::log1p((sd * sd) / (mean * mean));
  return {std::log(mean) - 0.5 * s2, std::sqrt(s2)};
}

}  // namespace

PopulationConfig PopulationConfig::read(ConfigReader& in) {
  PopulationConfig c;
  c.prior_mg_prob = in.number("population.prior_mg_prob", c.prior_mg_prob, Bounds{0.0, 1.0, false, true, {}, {}});
  c.age_mean = in.number("population.age_mean", c.age_mean, Bounds::closed(18.0, 100.0));
  c.age_sd = in.number("population.age_sd", c.age_sd, Bounds::closed(0.0, 100.0).because(Bounds::kScaleNote));
  c.male_prob = in.number("population.male_prob", c.male_prob, Bounds::probability());
  c.diabetes_prob = in.number("population.diabetes_prob", c.diabetes_prob, Bounds::probability());
  c.vintage_mean = in.number("population.vintage_mean_years", c.vintage_mean, Bounds{0.0, 100.0, true, false, {}, {}}.because(Bounds::kScaleNote));
  c.vintage_sd = in.number("population.vintage_sd_years", c.vintage_sd, Bounds::closed(0.0, 100.0).because(Bounds::kScaleNote));
  c.mg_mean = in.number("population.mg_mean", c.mg_mean, Bounds{0.0, 100.0, true, false, {}, {}}.because(Bounds::kScaleNote));
  c.mg_sd = in.number("population.mg_sd", c.mg_sd, Bounds::closed(0.0, 100.0).because(Bounds::kScaleNote));
  c.labs = in.boolean("population.labs", c.labs);
  return c;
}

Population::Population(const PopulationConfig& cfg, CovariateNeeds needs) : cfg_(cfg), needs_(needs) {
  Eigen::Matrix<double, kCovariateDims, kCovariateDims> corr;
  corr.setIdentity();
  for (const auto& p : kPairs) {
    corr(static_cast<Eigen::Index>(p.a), static_cast<Eigen::Index>(p.b)) = p.r;
    corr(static_cast<Eigen::Index>(p.b), static_cast<Eigen::Index>(p.a)) = p.r;
  }
  if (Eigen::LLT<Eigen::Matrix<double, kCovariateDims, kCovariateDims>>(corr).info() != Eigen::Success) {
    throw std::logic_error("covariate correlation matrix is not positive definite");
  }
  // The core: diabetes first, so its latent value is the first normal whatever follows; then
  // the covariates a model reads and that can vary.
  needs_.age = needs.age && cfg_.age_sd > 0;
  needs_.male = needs.male && cfg_.male_prob > 0 && cfg_.male_prob < 1;
  needs_.mg = needs.mg && cfg_.mg_sd > 0;
  auto add_core = [&](std::size_t dim, std::uint32_t slot) {
    core_[static_cast<std::size_t>(n_core_)] = dim;
    core_slot_[static_cast<std::size_t>(n_core_++)] = slot;
  };
  add_core(kDiabetes, population_slot::diabetes);
  if (needs_.age) add_core(kAge, population_slot::age);
  if (needs_.male) add_core(kMale, population_slot::male);
  if (needs_.mg) add_core(lab(Lab::magnesium), population_slot::mg);
  for (std::size_t i = 0; i < kCovariateDims; ++i) {
    if (std::find(core_.begin(), core_.begin() + n_core_, i) == core_.begin() + n_core_) extra_[static_cast<std::size_t>(n_extra_++)] = i;
  }
  // Split the latent vector into the core and the rest (extras), and write the joint normal as
  // core ~ N(0, S_cc), extras | core ~ N(A core, S_ee - A S_ce) with A = S_ec S_cc^-1 (the
  // conditional normal; e.g. Anderson 2003, sec. 2.5).
  const auto nc = static_cast<Eigen::Index>(n_core_), ne = static_cast<Eigen::Index>(n_extra_);
  Eigen::MatrixXd scc(nc, nc), sec(ne, nc), see(ne, ne);
  for (Eigen::Index a = 0; a < nc; ++a) {
    for (Eigen::Index b = 0; b < nc; ++b) scc(a, b) = corr(Eigen::Index(core_[std::size_t(a)]), Eigen::Index(core_[std::size_t(b)]));
  }
  for (Eigen::Index a = 0; a < ne; ++a) {
    for (Eigen::Index b = 0; b < nc; ++b) sec(a, b) = corr(Eigen::Index(extra_[std::size_t(a)]), Eigen::Index(core_[std::size_t(b)]));
    for (Eigen::Index b = 0; b < ne; ++b) see(a, b) = corr(Eigen::Index(extra_[std::size_t(a)]), Eigen::Index(extra_[std::size_t(b)]));
  }
  const Eigen::LLT<Eigen::MatrixXd> core(scc);
  core_chol_ = core.matrixL();
  extra_mean_ = core.solve(sec.transpose()).transpose();
  const Eigen::MatrixXd cond = see - extra_mean_ * sec.transpose();
  const Eigen::LLT<Eigen::MatrixXd> cond_llt(cond);
  if (cond_llt.info() != Eigen::Success) throw std::logic_error("conditional covariate covariance is not positive definite");
  extra_chol_ = cond_llt.matrixL();

  const boost::math::normal std_normal;
  // P(latent < threshold) = probability; clamp away from 0/1 so quantile stays finite.
  auto threshold = [&](double p) {
    if (p <= 0.0) return -std::numeric_limits<double>::infinity();
    if (p >= 1.0) return std::numeric_limits<double>::infinity();
    return boost::math::quantile(std_normal, p);
  };
  male_threshold_ = threshold(cfg_.male_prob);
  age_default_ = cfg_.age_sd > 0 ? std::numeric_limits<double>::quiet_NaN() : cfg_.age_mean;
  male_default_ = cfg_.male_prob >= 1.0;
  prior_mg_possible_ = cfg_.prior_mg_prob > 0;
  diabetes_threshold_ = threshold(cfg_.diabetes_prob);
  lognormal_vintage_ = lognormal_params(cfg_.vintage_mean, cfg_.vintage_sd);
  for (std::size_t l = 0; l < kLabs; ++l) {
    LabMarginal m = kLabMarginals[l];
    if (l == static_cast<std::size_t>(Lab::magnesium)) {
      m.mean = cfg_.mg_mean;
      m.sd = cfg_.mg_sd;
    }
    lab_shape_[l] = m.lognormal ? lognormal_params(m.mean, m.sd) : std::array<double, 2>{m.mean, m.sd};
  }
}

std::string_view Population::lab_name(std::size_t l) { return kLabMarginals.at(l).name; }

double Population::lab_value(std::size_t l, double x) const {
  const auto& [a, b] = lab_shape_[l];
  return kLabMarginals[l].lognormal ? std::exp(a + b * x) : a + b * x;
}

// The covariate of latent dimension `dim` at latent value x.
void Population::set(std::size_t dim, double x, std::size_t i, TrialData& t, ExtraCovariates* e) const {
  switch (dim) {
    case kAge: t.age[i] = age_at(x); return;
    case kMale: t.male[i] = male_at(x); return;
    case kDiabetes: t.diabetes[i] = diabetes_at(x); return;
    case kVintage:
      if (e != nullptr) {
        e->vintage = cfg_.vintage_sd > 0 ? std::exp(lognormal_vintage_[0] + lognormal_vintage_[1] * x) : cfg_.vintage_mean;
      }
      return;
    default: {
      const std::size_t l = dim - 4;
      const double v = lab_value(l, x);
      if (l == static_cast<std::size_t>(Lab::magnesium)) t.mg[i] = v;
      if (e != nullptr) e->labs[l] = v;
    }
  }
}

// Row r of x = L z over n patients, column by column into `sum` and then over z[r]: each
// element's sum in the order k = 0..r from 0, as one patient at a time adds it, in vector loops.
TRIALSIM_VECTOR_LOOPS void Population::latent_row(const std::array<double, kMaxCore>& l, std::size_t r,
                                                  const std::array<double*, kMaxCore>& z, std::size_t n, double* sum) {
  std::fill_n(sum, n, 0.0);
  for (std::size_t k = 0; k <= r; ++k) {
    const double lk = l[k];
    const double* const zk = z[k];
    TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) sum[i] += lk * zk[i];
  }
  std::copy_n(sum, n, z[r]);
}

// set() of a core dimension for patients 0 .. n - 1 without the extras: its switch taken once,
// each case a vector loop.
TRIALSIM_VECTOR_LOOPS void Population::set_column(std::size_t dim, const double* x, std::size_t n, TrialData& t) const {
  switch (dim) {
    case kAge: {
      double* const age = t.age.data();
      TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) age[i] = age_at(x[i]);
      return;
    }
    case kMale: {
      std::uint8_t* const male = t.male.data();
      TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) male[i] = male_at(x[i]);
      return;
    }
    case kDiabetes: {
      std::uint8_t* const diabetes = t.diabetes.data();
      TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) diabetes[i] = diabetes_at(x[i]);
      return;
    }
    default:
      // Of the labs and vintage only magnesium is kept outside the extras.
      if (dim == lab(Lab::magnesium)) {
        double* const mg = t.mg.data();
        const std::size_t l = dim - 4;
        TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) mg[i] = lab_value(l, x[i]);
      }
  }
}

void Population::draw(const UnitColumns& units, std::size_t n, TrialData& t, Scratch& scratch, bool extras) const {
  // What is not drawn: constants where a covariate cannot vary, unknown where it can.
  std::fill_n(t.age.data(), n, age_default_);
  std::fill_n(t.male.data(), n, static_cast<std::uint8_t>(male_default_));
  std::fill_n(t.mg.data(), n, cfg_.mg_mean);
  // Drawn only where it can happen, so a scenario without the exclusion spends nothing on it.
  if (prior_mg_possible_) {
    double* const u = scratch.col(0, n);
    draws::uniform(units, n, StreamKind::population, population_slot::prior_mg, u);
    for (std::size_t i = 0; i < n; ++i) t.prior_mg[i] = u[i] < cfg_.prior_mg_prob;
  } else {
    std::fill_n(t.prior_mg.data(), n, std::uint8_t{0});
  }
  // The core's latent normals z, one slot each, and x = L z (L lower triangular with L(0, 0) = 1:
  // diabetes, first, is its own normal whatever follows).
  std::array<double*, kMaxCore> z{};
  for (int c = 0; c < n_core_; ++c) {
    const auto cc = static_cast<std::size_t>(c);
    z[cc] = scratch.col(1 + cc, n);
    draws::normal(units, n, StreamKind::population, core_slot_[cc], z[cc]);
  }
  if (n_core_ == 1 && !extras) {
    // Diabetes alone (the common case).
    const double* const zd = z[0];
    for (std::size_t i = 0; i < n; ++i) t.diabetes[i] = zd[i] < diabetes_threshold_;
    return;
  }
  // Each row of x = L z in place, from the last (which reads every z) to the first.
  double* const sum = scratch.col(1 + kMaxCore, n);
  for (int r = n_core_ - 1; r >= 0; --r) {
    std::array<double, kMaxCore> l{};
    for (int k = 0; k <= r; ++k) l[static_cast<std::size_t>(k)] = core_chol_(r, k);
    latent_row(l, static_cast<std::size_t>(r), z, n, sum);
  }
  for (int c = 0; c < n_core_; ++c) {
    const auto cc = static_cast<std::size_t>(c);
    set_column(core_[cc], z[cc], n, t);
  }
  if (!extras) return;

  room(t.extras, n);
  for (std::size_t i = 0; i < n; ++i) {
    Stream rng(units[i], StreamKind::covariates);
    ExtraCovariates& e = t.extras[i];
    Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxCore, 1> xc(n_core_);
    for (int c = 0; c < n_core_; ++c) xc(c) = z[static_cast<std::size_t>(c)][i];
    Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxExtra, 1> ze(n_extra_);
    for (Eigen::Index k = 0; k < ze.size(); ++k) ze(k) = standard_normal(rng);
    const Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxExtra, 1> xe =
        extra_mean_ * xc + extra_chol_.triangularView<Eigen::Lower>() * ze;
    for (int k = 0; k < n_extra_; ++k) set(extra_[static_cast<std::size_t>(k)], xe(k), i, t, &e);
    // Table 1's magnesium column repeats the core value.
    e.labs[static_cast<std::size_t>(Lab::magnesium)] = t.mg[i];
  }
}

}  // namespace trialsim
