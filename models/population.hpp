#pragma once
// Consented patients: the covariates of the report's Table 1, drawn jointly.
#include "models/trial_data.hpp"
#include "sim/config_reader.hpp"
#include "sim/rng.hpp"

#include <Eigen/Core>

#include <array>
#include <string_view>

namespace trialsim {

struct PopulationConfig {
  double prior_mg_prob = 3.0 / 106.0;
  double age_mean = 67.0;
  double age_sd = 13.5;
  double male_prob = 54.0 / 86.0;
  double diabetes_prob = 53.0 / 86.0;
  double vintage_mean = 7.35;
  double vintage_sd = 6.2;
  double mg_mean = 2.5;
  double mg_sd = 0.30;

  static PopulationConfig read(ConfigReader& in);
};

inline constexpr std::size_t kCovariateDims = 4 + kLabs;  // age, male, vintage, diabetes, labs

class Population {
 public:
  explicit Population(const PopulationConfig& cfg);

  // Draws one consented patient's covariates. The ones a model reads (age, sex, diabetes,
  // serum Mg, prior Mg use) come from `rng`; vintage and the other labs of Table 1, which only
  // the patients CSV shows, come from `extras` given those (the same joint distribution) when
  // it is given, and are NaN otherwise. What `rng` yields never depends on `extras`.
  Covariates draw(Stream& rng, Stream* extras = nullptr) const;

  const PopulationConfig& config() const { return cfg_; }
  // Name of each lab, for output columns.
  static std::string_view lab_name(std::size_t lab);

 private:
  // The latent dimensions of age, male, diabetes and serum Mg.
  static constexpr std::size_t kCoreDims = 4, kExtraDims = kCovariateDims - kCoreDims;
  static constexpr std::array<std::size_t, kCoreDims> kCoreIndex{0, 1, 3, 4 + static_cast<std::size_t>(Lab::magnesium)};
  double lab_value(std::size_t lab, double latent) const;

  PopulationConfig cfg_;
  Eigen::Matrix<double, kCoreDims, kCoreDims> core_chol_;
  Eigen::Matrix<double, kExtraDims, kCoreDims> extra_mean_;
  Eigen::Matrix<double, kExtraDims, kExtraDims> extra_chol_;
  std::array<std::size_t, kExtraDims> extra_index_{};
  std::array<double, 2> lognormal_vintage_{};
  std::array<std::array<double, 2>, kLabs> lab_shape_{};  // {a, b}: mean + sd z, or exp(a + b z)
  double male_threshold_;
  double diabetes_threshold_;
};

}  // namespace trialsim
