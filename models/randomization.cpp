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

namespace {

// A permuted block: the arms in the allocation ratio, treatment first, then the Fisher-Yates
// shuffle, k = size - 1 down to 1 swapping position k with j(k) in [0, k].
template <class Draw>
void shuffled_block(Arm* block, std::size_t size, std::size_t n_treatment, Draw j) {
  for (std::size_t k = 0; k < size; ++k) block[k] = k < n_treatment ? Arm::treatment : Arm::control;
  for (std::size_t k = size - 1; k > 0; --k) std::swap(block[k], block[j(k)]);
}

}  // namespace

// A block's shuffle, k = size - 1 down to 1, swaps position k with j_k = uniform_below(k + 1),
// so its outcome is a function of the draws alone: code = ((j_{size-1} (size - 1) + j_{size-2})
// (size - 2) + ...) 2 + j_1, one of size! values. For small blocks every outcome is laid out once
// here, by the same swaps on the block's starting order (treatment first), and a block is then
// one table row: the same draws from the stream, the same arms.
Randomizer::Randomizer(const RandomizationConfig& cfg) : cfg_(cfg) {
  const int unit_size = cfg_.ratio_treatment + cfg_.ratio_control;
  for (const int size : cfg_.block_sizes) {
    std::vector<Arm>& table = arrangements_.emplace_back();
    if (size > kMaxTabled) continue;
    const auto n_treatment = static_cast<std::size_t>(size / unit_size * cfg_.ratio_treatment);
    std::size_t outcomes = 1;
    for (int k = 2; k <= size; ++k) outcomes *= static_cast<std::size_t>(k);
    table.resize(outcomes * static_cast<std::size_t>(size));
    for (std::size_t code = 0; code < outcomes; ++code) {
      // The draws from the code: j_1 is its last digit (radix 2), j_{size-1} its first.
      std::array<std::size_t, kMaxTabled> j{};
      std::size_t rest = code;
      for (int k = 1; k < size; ++k) {
        j[static_cast<std::size_t>(k)] = rest % static_cast<std::size_t>(k + 1);
        rest /= static_cast<std::size_t>(k + 1);
      }
      shuffled_block(table.data() + code * static_cast<std::size_t>(size), static_cast<std::size_t>(size), n_treatment,
                     [&](std::size_t k) { return j[k]; });
    }
  }
}

Arm Randomizer::draw_by_ratio(Stream& rng) const {
  const auto total = static_cast<std::uint64_t>(cfg_.ratio_treatment + cfg_.ratio_control);
  return uniform_below(rng, total) < static_cast<std::uint64_t>(cfg_.ratio_treatment) ? Arm::treatment : Arm::control;
}

void Randomizer::assign(TrialData& trial, const UnitKey& unit, Scratch& scratch) const {
  switch (cfg_.method) {
    case RandomizationMethod::simple: {
      Stream rng(unit, StreamKind::randomization);
      for (std::size_t r = 0; r < trial.rows; ++r) trial.arm[r] = draw_by_ratio(rng);
      break;
    }
    case RandomizationMethod::block: assign_blocks(trial, unit, false, scratch); break;
    case RandomizationMethod::stratified_block: assign_blocks(trial, unit, true, scratch); break;
    case RandomizationMethod::minimization: {
      Stream rng(unit, StreamKind::randomization);
      assign_minimization(trial, rng);
      break;
    }
  }
  trial.arms_changed();
}

// Permuted blocks (Matts & Lachin, Control Clin Trials 1988): each block holds the arms in the
// allocation ratio in random order; with several sizes listed, each block's size is drawn
// uniformly among them so the sequence is harder to predict. Stratified: one independent
// block sequence per diabetes stratum, each from its own slot of the trial's randomization
// stream, so that one stratum's sequence does not depend on how many patients the other has.
// The sequences are made first, as long as the stratum needs, and dealt out in row order.
void Randomizer::assign_blocks(TrialData& trial, const UnitKey& unit, bool stratified, Scratch& scratch) const {
  const std::size_t m = trial.rows;
  const double* const diabetes = trial.row_diabetes.data();
  std::array<std::size_t, 2> need{m, 0};
  if (stratified) {
    std::size_t with = 0;
    for (std::size_t r = 0; r < m; ++r) with += diabetes[r] != 0.0;
    need = {m - with, with};
  }
  const int unit_size = cfg_.ratio_treatment + cfg_.ratio_control;
  // Both sequences in one buffer, stratum 1's from `offset`. Block sizes are at most 100
  // (RandomizationConfig::read): room for the last block's overshoot.
  const std::size_t offset = need[0] + 100;
  Arm* const buffer = room(scratch.arms, offset + need[1] + 100);
  const std::array<Arm*, 2> seq{buffer, buffer + offset};
  for (std::size_t s = 0; s < 2; ++s) {
    Arm* const out = seq[s];
    Stream rng(unit, StreamKind::randomization, static_cast<std::uint32_t>(s));
    for (std::size_t filled = 0; filled < need[s];) {
      // No draw when there is only one size to choose.
      const std::size_t which = cfg_.block_sizes.size() > 1 ? uniform_below(rng, cfg_.block_sizes.size()) : 0;
      const int reps = cfg_.block_sizes[which] / unit_size;
      const auto n_treatment = static_cast<std::size_t>(reps * cfg_.ratio_treatment);
      const auto size = static_cast<std::size_t>(reps * unit_size);
      Arm* const block = out + filled;
      const std::vector<Arm>& table = arrangements_[which];
      if (!table.empty()) {
        // The shuffle's draws as a code into the table of its outcomes (see the constructor).
        std::size_t code = 0;
        for (std::size_t k = size - 1; k > 0; --k) code = code * (k + 1) + uniform_below(rng, k + 1);
        // A block of a tabled size copied at a size known to the compiler (std::copy_n at a
        // run-time size is a call to memmove for a few bytes).
        const Arm* const row = table.data() + code * size;
        switch (size) {
          case 2: std::copy_n(row, 2, block); break;
          case 3: std::copy_n(row, 3, block); break;
          case 4: std::copy_n(row, 4, block); break;
          case 5: std::copy_n(row, 5, block); break;
          case 6: std::copy_n(row, 6, block); break;
          default: std::copy_n(row, size, block);
        }
      } else {
        shuffled_block(block, size, n_treatment, [&](std::size_t k) { return uniform_below(rng, k + 1); });
      }
      filled += size;
    }
  }
  // Each row takes the next arm of its stratum's sequence: the index in the buffer is
  // next0 + s (offset + next1 - next0) for stratum s, arithmetic rather than a select (which the
  // compiler makes a branch, and the strata alternate at random), the counters in registers.
  Arm* const arm = trial.arm.data();
  std::size_t next0 = 0, next1 = 0;
  for (std::size_t r = 0; r < m; ++r) {
    const std::size_t s = stratified && diabetes[r] != 0.0;
    arm[r] = buffer[next0 + s * (offset + next1 - next0)];
    next1 += s;
    next0 += 1 - s;
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
