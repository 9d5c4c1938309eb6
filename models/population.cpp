#include "models/population.hpp"

#include <Eigen/Cholesky>
#include <boost/math/distributions/normal.hpp>
#include <boost/random/normal_distribution.hpp>
#include <boost/random/uniform_01.hpp>

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
// Positions in the core vector (Population::kCoreIndex).
constexpr Eigen::Index kCoreAge = 0, kCoreMale = 1, kCoreDiabetes = 2, kCoreMg = 3;

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
  c.prior_mg_prob = in.number("population.prior_mg_prob", c.prior_mg_prob, {0.0, 1.0, false, true});
  c.age_mean = in.number("population.age_mean", c.age_mean, Bounds::closed(18.0, 100.0));
  c.age_sd = in.number("population.age_sd", c.age_sd, Bounds::at_least(0.0));
  c.male_prob = in.number("population.male_prob", c.male_prob, Bounds::probability());
  c.diabetes_prob = in.number("population.diabetes_prob", c.diabetes_prob, Bounds::probability());
  c.vintage_mean = in.number("population.vintage_mean_years", c.vintage_mean, Bounds::above(0.0));
  c.vintage_sd = in.number("population.vintage_sd_years", c.vintage_sd, Bounds::at_least(0.0));
  c.mg_mean = in.number("population.mg_mean", c.mg_mean, Bounds::above(0.0));
  c.mg_sd = in.number("population.mg_sd", c.mg_sd, Bounds::at_least(0.0));
  return c;
}

Population::Population(const PopulationConfig& cfg) : cfg_(cfg) {
  Eigen::Matrix<double, kCovariateDims, kCovariateDims> corr;
  corr.setIdentity();
  for (const auto& p : kPairs) {
    corr(static_cast<Eigen::Index>(p.a), static_cast<Eigen::Index>(p.b)) = p.r;
    corr(static_cast<Eigen::Index>(p.b), static_cast<Eigen::Index>(p.a)) = p.r;
  }
  if (Eigen::LLT<Eigen::Matrix<double, kCovariateDims, kCovariateDims>>(corr).info() != Eigen::Success) {
    throw std::logic_error("covariate correlation matrix is not positive definite");
  }
  // Split the latent vector into the part the models read (core) and the rest (extras), and
  // write the joint normal as core ~ N(0, S_cc), extras | core ~ N(A core, S_ee - A S_ce) with
  // A = S_ec S_cc^-1 (the conditional normal; e.g. Anderson 2003, sec. 2.5).
  std::array<std::size_t, kExtraDims> extra{};
  for (std::size_t i = 0, e = 0; i < kCovariateDims; ++i) {
    if (std::find(kCoreIndex.begin(), kCoreIndex.end(), i) == kCoreIndex.end()) extra[e++] = i;
  }
  extra_index_ = extra;
  Eigen::Matrix<double, kCoreDims, kCoreDims> scc;
  Eigen::Matrix<double, kExtraDims, kCoreDims> sec;
  Eigen::Matrix<double, kExtraDims, kExtraDims> see;
  for (std::size_t a = 0; a < kCoreDims; ++a) {
    for (std::size_t b = 0; b < kCoreDims; ++b) scc(Eigen::Index(a), Eigen::Index(b)) = corr(Eigen::Index(kCoreIndex[a]), Eigen::Index(kCoreIndex[b]));
  }
  for (std::size_t a = 0; a < kExtraDims; ++a) {
    for (std::size_t b = 0; b < kCoreDims; ++b) sec(Eigen::Index(a), Eigen::Index(b)) = corr(Eigen::Index(extra[a]), Eigen::Index(kCoreIndex[b]));
    for (std::size_t b = 0; b < kExtraDims; ++b) see(Eigen::Index(a), Eigen::Index(b)) = corr(Eigen::Index(extra[a]), Eigen::Index(extra[b]));
  }
  const Eigen::LLT<Eigen::Matrix<double, kCoreDims, kCoreDims>> core(scc);
  core_chol_ = core.matrixL();
  extra_mean_ = core.solve(sec.transpose()).transpose();
  const Eigen::Matrix<double, kExtraDims, kExtraDims> cond = see - extra_mean_ * sec.transpose();
  const Eigen::LLT<Eigen::Matrix<double, kExtraDims, kExtraDims>> cond_llt(cond);
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

Covariates Population::draw(Stream& rng, Stream* extras) const {
  boost::random::normal_distribution<double> normal;
  Eigen::Matrix<double, kCoreDims, 1> z, x;
  for (Eigen::Index i = 0; i < z.size(); ++i) z(i) = normal(rng);
  // x = L z, L lower triangular 4 x 4 (by hand: Eigen's general kernel costs more than the sum).
  for (Eigen::Index r = 0; r < z.size(); ++r) {
    double s = 0;
    for (Eigen::Index c = 0; c <= r; ++c) s += core_chol_(r, c) * z(c);
    x(r) = s;
  }

  Covariates c;
  c.age = std::clamp(cfg_.age_mean + cfg_.age_sd * x(kCoreAge), 18.0, 100.0);
  c.male = x(kCoreMale) < male_threshold_;
  c.diabetes = x(kCoreDiabetes) < diabetes_threshold_;
  constexpr auto mg = static_cast<std::size_t>(Lab::magnesium);
  c.labs[mg] = lab_value(mg, x(kCoreMg));
  // Drawn only where it can happen, so a scenario without the exclusion spends nothing on it.
  if (cfg_.prior_mg_prob > 0) c.prior_mg = boost::random::uniform_01<double>()(rng) < cfg_.prior_mg_prob;
  if (extras == nullptr) {
    c.vintage = std::numeric_limits<double>::quiet_NaN();
    for (std::size_t l = 0; l < kLabs; ++l) {
      if (l != mg) c.labs[l] = std::numeric_limits<double>::quiet_NaN();
    }
    return c;
  }
  Eigen::Matrix<double, kExtraDims, 1> ze;
  for (Eigen::Index i = 0; i < ze.size(); ++i) ze(i) = normal(*extras);
  const Eigen::Matrix<double, kExtraDims, 1> xe = extra_mean_ * x + extra_chol_.triangularView<Eigen::Lower>() * ze;
  for (std::size_t e = 0; e < kExtraDims; ++e) {
    const std::size_t dim = extra_index_[e];
    const double v = xe(static_cast<Eigen::Index>(e));
    if (dim == kVintage) {
      c.vintage = cfg_.vintage_sd > 0 ? std::exp(lognormal_vintage_[0] + lognormal_vintage_[1] * v) : cfg_.vintage_mean;
    } else {
      c.labs[dim - 4] = lab_value(dim - 4, v);
    }
  }
  return c;
}

}  // namespace trialsim
