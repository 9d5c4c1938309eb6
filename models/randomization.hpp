#pragma once
// Assigning arms to the patients who pass screening, in the order they enter.
#include "models/trial_data.hpp"
#include "sim/io/config_reader.hpp"
#include "sim/engine/rng.hpp"

#include <string>
#include <vector>

namespace trialsim {

enum class RandomizationMethod { simple, block, stratified_block, minimization };
enum class MinimizationFactor { diabetes, sex, age };

struct RandomizationConfig {
  RandomizationMethod method = RandomizationMethod::stratified_block;
  std::vector<int> block_sizes{4};
  int ratio_treatment = 1;
  int ratio_control = 1;
  std::vector<MinimizationFactor> factors{MinimizationFactor::diabetes, MinimizationFactor::sex};
  double minimization_prob = 0.8;
  double age_split = 67.0;  // minimization's age factor: older than this (population.age_mean)

  static RandomizationConfig read(ConfigReader& in, double age_mean);
  static std::string method_name(RandomizationMethod m);
};

class Randomizer {
 public:
  explicit Randomizer(const RandomizationConfig& cfg);

  // Sets trial.arm of every randomized row, in row order (and trial.treated), from the trial's
  // randomization stream (its unit key: the trial's own unit), read in sequence, with one
  // sequence per stratum for stratified blocks (slot = stratum).
  void assign(TrialData& trial, const UnitKey& unit, Scratch& scratch) const;

  const RandomizationConfig& config() const { return cfg_; }

 private:
  Arm draw_by_ratio(Stream& rng) const;
  void assign_blocks(TrialData& trial, const UnitKey& unit, bool stratified, Scratch& scratch) const;
  void assign_minimization(TrialData& trial, Stream& rng) const;
  RandomizationConfig cfg_;
  // Per block size (as in cfg_.block_sizes) of at most kMaxTabled patients: every order its
  // Fisher-Yates shuffle can leave, size arms each, indexed by the shuffle's draws in mixed
  // radix (assign_blocks); empty for larger blocks, which are shuffled in place.
  static constexpr int kMaxTabled = 6;
  std::vector<std::vector<Arm>> arrangements_;
};

}  // namespace trialsim
