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

double lognormal_from(double mean, double sd, double z) {
  const double s2 = std::log1p((sd * sd) / (mean * mean));
  return std::exp(std::log(mean) - 0.5 * s2 + std::sqrt(s2) * z);
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
  Eigen::LLT<Eigen::Matrix<double, kCovariateDims, kCovariateDims>> llt(corr);
  if (llt.info() != Eigen::Success) throw std::logic_error("covariate correlation matrix is not positive definite");
  chol_ = llt.matrixL();
  const boost::math::normal std_normal;
  // P(latent < threshold) = probability; clamp away from 0/1 so quantile stays finite.
  auto threshold = [&](double p) {
    if (p <= 0.0) return -std::numeric_limits<double>::infinity();
    if (p >= 1.0) return std::numeric_limits<double>::infinity();
    return boost::math::quantile(std_normal, p);
  };
  male_threshold_ = threshold(cfg_.male_prob);
  diabetes_threshold_ = threshold(cfg_.diabetes_prob);
}

std::string_view Population::lab_name(std::size_t l) { return kLabMarginals.at(l).name; }

Covariates Population::draw(Stream& rng) const {
  boost::random::normal_distribution<double> normal;
  boost::random::uniform_01<double> unif;
  Eigen::Matrix<double, kCovariateDims, 1> z;
  for (Eigen::Index i = 0; i < z.size(); ++i) z(i) = normal(rng);
  const Eigen::Matrix<double, kCovariateDims, 1> x = chol_ * z;

  Covariates c;
  c.age = std::clamp(cfg_.age_mean + cfg_.age_sd * x(kAge), 18.0, 100.0);
  c.male = x(kMale) < male_threshold_;
  c.vintage = cfg_.vintage_sd > 0 ? lognormal_from(cfg_.vintage_mean, cfg_.vintage_sd, x(kVintage)) : cfg_.vintage_mean;
  c.diabetes = x(kDiabetes) < diabetes_threshold_;
  for (std::size_t l = 0; l < kLabs; ++l) {
    LabMarginal m = kLabMarginals[l];
    if (l == static_cast<std::size_t>(Lab::magnesium)) {
      m.mean = cfg_.mg_mean;
      m.sd = cfg_.mg_sd;
    }
    const double xl = x(static_cast<Eigen::Index>(lab(static_cast<Lab>(l))));
    c.labs[l] = m.lognormal ? lognormal_from(m.mean, m.sd, xl) : m.mean + m.sd * xl;
  }
  c.prior_mg = unif(rng) < cfg_.prior_mg_prob;
  return c;
}

}  // namespace trialsim
