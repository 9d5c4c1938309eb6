#pragma once
// Consented patients: the covariates of the report's Table 1, drawn jointly.
#include "models/trial_data.hpp"
#include "sim/io/config_reader.hpp"
#include "sim/engine/draws.hpp"

#include <Eigen/Core>

#include <algorithm>
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
  // Whether the patients CSV shows the seed cohort's dialysis vintage and the labs of Table 1
  // (false: a trial without them; they feed no model either way).
  bool labs = true;

  static PopulationConfig read(ConfigReader& in);
};

inline constexpr std::size_t kCovariateDims = 4 + kLabs;  // age, male, vintage, diabetes, labs

// Which covariates a scenario's models read (beyond diabetes, the randomization stratum, which
// every analysis adjusts for): these are drawn for every consented patient; the others only for
// the patients CSV.
struct CovariateNeeds {
  bool age = false;   // SPP shifts with age, or minimization balances it
  bool male = false;  // minimization balances sex
  bool mg = false;    // serum Mg at consent varies (treatment's serum Mg readings start from it)
};

// The slots of a patient's population stream (sim/engine/rng.hpp): one per quantity drawn, so
// that each is the same patient's whatever else a scenario draws. Measurement (the SPP level and
// slope) and Screening (the loss before baseline) draw from this stream too.
namespace population_slot {
inline constexpr std::uint32_t diabetes = 0, age = 1, male = 2, mg = 3, prior_mg = 4;
inline constexpr std::uint32_t spp_level = 5, spp_slope = 6, pre_baseline_loss = 7;
inline constexpr std::uint32_t accrual = 8;  // the exponential spacing before the patient's consent
}  // namespace population_slot

class Population {
 public:
  Population(const PopulationConfig& cfg, CovariateNeeds needs);

  // Draws the covariates of consented patients 0 .. n - 1 of `t` (age, mg, male, diabetes,
  // prior_mg) from their population streams (`units`), jointly through a Gaussian copula. The
  // latent normal of each covariate a model reads and that can vary comes from its own slot
  // (population_slot); a covariate that cannot vary (SD 0, probability 0 or 1) costs no draw.
  // With `extras`, the rest (vintage, the other labs, and age or sex where no model reads them)
  // are drawn into t.extras from each patient's covariates stream given those, from the same
  // joint distribution; without it, vintage and labs are not drawn, age is its mean if it cannot
  // vary and NaN otherwise, and sex is false unless its probability is 1. Nothing drawn for the
  // models depends on `extras`.
  void draw(const UnitColumns& units, std::size_t n, TrialData& t, Scratch& scratch, bool extras = false) const;

  const PopulationConfig& config() const { return cfg_; }
  const CovariateNeeds& needs() const { return needs_; }
  // Name of each lab, for output columns.
  static std::string_view lab_name(std::size_t lab);

 private:
  static constexpr int kMaxCore = 4, kMaxExtra = static_cast<int>(kCovariateDims) - 1;
  double lab_value(std::size_t lab, double latent) const;
  // The core covariates at a latent value (set and set_column).
  double age_at(double latent) const { return std::clamp(cfg_.age_mean + cfg_.age_sd * latent, 18.0, 100.0); }
  bool male_at(double latent) const { return latent < male_threshold_; }
  bool diabetes_at(double latent) const { return latent < diabetes_threshold_; }
  // The covariate of latent dimension `dim` at latent value x, for patient i.
  void set(std::size_t dim, double latent, std::size_t i, TrialData& t, ExtraCovariates* x) const;
  void set_column(std::size_t dim, const double* latent, std::size_t n, TrialData& t) const;
  static void latent_row(const std::array<double, kMaxCore>& l, std::size_t r, const std::array<double*, kMaxCore>& z,
                         std::size_t n, double* sum);

  PopulationConfig cfg_;
  CovariateNeeds needs_;
  // Latent dimensions drawn from the population stream (core) and from the covariates stream
  // (extras), in order, and the slot of each core dimension.
  std::array<std::size_t, kMaxCore> core_{};
  std::array<std::uint32_t, kMaxCore> core_slot_{};
  std::array<std::size_t, kCovariateDims> extra_{};
  int n_core_ = 0, n_extra_ = 0;
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxCore, kMaxCore> core_chol_;
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxExtra, kMaxCore> extra_mean_;
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxExtra, kMaxExtra> extra_chol_;
  std::array<double, 2> lognormal_vintage_{};
  std::array<std::array<double, 2>, kLabs> lab_shape_{};  // {a, b}: mean + sd z, or exp(a + b z)
  double male_threshold_;
  double diabetes_threshold_;
  double age_default_ = 0;  // age when not drawn
  bool male_default_ = false, prior_mg_possible_ = false;
};

}  // namespace trialsim
