#include "models/randomization.hpp"


#include <algorithm>
#include <array>
#include <cmath>

namespace trialsim {

RandomizationConfig RandomizationConfig::read(ConfigReader& in, double age_mean) {
  RandomizationConfig c;
  c.age_split = age_mean;
  const std::string m = in.choice("randomization.method", "stratified_block",
                                  {"simple", "block", "stratified_block", "minimization"});
  c.method = m == "simple" ? RandomizationMethod::simple
             : m == "block" ? RandomizationMethod::block
             : m == "stratified_block" ? RandomizationMethod::stratified_block
                                       : RandomizationMethod::minimization;
  const auto ratio = in.integers("randomization.ratio", {1, 1}, 1, 10, 2, 2);
  c.ratio_treatment = static_cast<int>(ratio[0]);
  c.ratio_control = static_cast<int>(ratio[1]);
  const auto sizes = in.integers("randomization.block_sizes", {4}, 1, 100, 1, 10);
  c.block_sizes.clear();
  const int unit = c.ratio_treatment + c.ratio_control;
  for (const auto s : sizes) {
    if (s % unit != 0) {
      in.fail("randomization.block_sizes", "every block size must be a multiple of " + std::to_string(unit) +
                                               " (the sum of randomization.ratio), got " + std::to_string(s));
    }
    c.block_sizes.push_back(static_cast<int>(s));
  }
  const auto factors = in.choices("randomization.minimization_factors", {"diabetes", "sex"}, {"diabetes", "sex", "age"}, 1);
  c.factors.clear();
  for (const auto& f : factors) {
    c.factors.push_back(f == "diabetes" ? MinimizationFactor::diabetes
                        : f == "sex"    ? MinimizationFactor::sex
                                        : MinimizationFactor::age);
  }
  c.minimization_prob = in.number("randomization.minimization_prob", c.minimization_prob, Bounds::closed(0.5, 1.0));
  return c;
}

std::string RandomizationConfig::method_name(RandomizationMethod m) {
  switch (m) {
    case RandomizationMethod::simple: return "simple";
    case RandomizationMethod::block: return "block";
    case RandomizationMethod::stratified_block: return "stratified_block";
    case RandomizationMethod::minimization: return "minimization";
  }
  return "?";
}

Arm Randomizer::draw_by_ratio(Stream& rng) const {
  const auto total = static_cast<std::uint64_t>(cfg_.ratio_treatment + cfg_.ratio_control);
  return uniform_below(rng, total) < static_cast<std::uint64_t>(cfg_.ratio_treatment) ? Arm::treatment : Arm::control;
}

void Randomizer::assign(TrialData& trial, Stream& rng) const {
  switch (cfg_.method) {
    case RandomizationMethod::simple:
      for (std::size_t r = 0; r < trial.rows; ++r) trial.arm[r] = draw_by_ratio(rng);
      return;
    case RandomizationMethod::block: assign_blocks(trial, rng, false); return;
    case RandomizationMethod::stratified_block: assign_blocks(trial, rng, true); return;
    case RandomizationMethod::minimization: assign_minimization(trial, rng); return;
  }
}

// Permuted blocks (Matts & Lachin, Control Clin Trials 1988): each block holds the arms in the
// allocation ratio in random order; with several sizes listed, each block's size is drawn
// uniformly among them so the sequence is harder to predict. Stratified: one independent
// block sequence per diabetes stratum.
void Randomizer::assign_blocks(TrialData& trial, Stream& rng, bool stratified) const {
  // The remaining arms of the current block, per stratum, consumed from the back (block sizes
  // are at most 100: RandomizationConfig::read).
  struct Pending {
    std::array<Arm, 100> arms;
    std::size_t left = 0;
  };
  std::array<Pending, 2> pending;
  const int unit = cfg_.ratio_treatment + cfg_.ratio_control;
  for (std::size_t r = 0; r < trial.rows; ++r) {
    Pending& block = pending[stratified && trial.diabetes[trial.patient[r]] != 0 ? 1 : 0];
    if (block.left == 0) {
      // No draw when there is only one size to choose.
      const std::size_t which = cfg_.block_sizes.size() > 1 ? uniform_below(rng, cfg_.block_sizes.size()) : 0;
      const int reps = cfg_.block_sizes[which] / unit;
      const auto n_treatment = static_cast<std::size_t>(reps * cfg_.ratio_treatment);
      const auto size = static_cast<std::size_t>(reps * unit);
      for (std::size_t k = 0; k < size; ++k) block.arms[k] = k < n_treatment ? Arm::treatment : Arm::control;
      // Fisher-Yates shuffle.
      for (std::size_t k = size - 1; k > 0; --k) std::swap(block.arms[k], block.arms[uniform_below(rng, k + 1)]);
      block.left = size;
    }
    trial.arm[r] = block.arms[--block.left];
  }
}

// Pocock-Simon minimization (Pocock & Simon, Biometrics 1975) with the range measure of
// imbalance, counts scaled by the allocation ratio, and the preferred arm taken with
// probability minimization_prob (ties broken by the ratio).
void Randomizer::assign_minimization(TrialData& trial, Stream& rng) const {
  // counts[factor][level][arm]; at most three factors (diabetes, sex, age).
  std::array<std::array<std::array<double, 2>, 2>, 3> counts{};
  const std::array<double, 2> weight{1.0 / cfg_.ratio_control, 1.0 / cfg_.ratio_treatment};
  auto level = [&](std::size_t i, MinimizationFactor f) -> std::size_t {
    switch (f) {
      case MinimizationFactor::diabetes: return trial.diabetes[i] != 0 ? 1 : 0;
      case MinimizationFactor::sex: return trial.male[i] != 0 ? 1 : 0;
      case MinimizationFactor::age: return trial.age[i] > cfg_.age_split ? 1 : 0;
    }
    return 0;
  };
  for (std::size_t r = 0; r < trial.rows; ++r) {
    const std::size_t p = trial.patient[r];
    Arm& arm = trial.arm[r];
    std::array<double, 2> imbalance{0, 0};  // if assigned to control (0) / treatment (1)
    for (std::size_t a = 0; a < 2; ++a) {
      for (std::size_t f = 0; f < cfg_.factors.size(); ++f) {
        auto c = counts[f][level(p, cfg_.factors[f])];
        c[a] += 1;
        imbalance[a] += std::abs(c[1] * weight[1] - c[0] * weight[0]);
      }
    }
    const double u = uniform01(rng);
    if (imbalance[0] == imbalance[1]) {
      arm = draw_by_ratio(rng);
    } else {
      const Arm preferred = imbalance[1] < imbalance[0] ? Arm::treatment : Arm::control;
      const Arm other = preferred == Arm::treatment ? Arm::control : Arm::treatment;
      arm = u < cfg_.minimization_prob ? preferred : other;
    }
    for (std::size_t f = 0; f < cfg_.factors.size(); ++f) counts[f][level(p, cfg_.factors[f])][arm_index(arm)] += 1;
  }
}

}  // namespace trialsim
