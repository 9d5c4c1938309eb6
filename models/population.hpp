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

  // Draws one consented patient's covariates from its own stream.
  Covariates draw(Stream& rng) const;

  const PopulationConfig& config() const { return cfg_; }
  // Name of each lab, for output columns.
  static std::string_view lab_name(std::size_t lab);

 private:
  PopulationConfig cfg_;
  Eigen::Matrix<double, kCovariateDims, kCovariateDims> chol_;
  double male_threshold_;
  double diabetes_threshold_;
};

}  // namespace trialsim
