#pragma once
// Mergeable accumulators for Monte Carlo summaries. Memory is constant in the number of
// replicates; merging in a fixed order makes results independent of the thread count.
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

namespace trialsim {

// Running mean and sum of squared deviations: Welford's update (Technometrics 1962) and the
// pairwise merge of Chan, Golub & LeVeque (Am Stat 1983).
class Moments {
 public:
  void add(double x) {
    ++n_;
    const double d = x - mean_;
    mean_ += d / static_cast<double>(n_);
    m2_ += d * (x - mean_);
    // As fmin/fmax (a NaN never replaces a number), without the library calls.
    if (x < min_) min_ = x;
    if (x > max_) max_ = x;
  }
  void merge(const Moments& o);

  std::uint64_t n() const { return n_; }
  double mean() const { return mean_; }
  double variance() const { return n_ > 1 ? m2_ / static_cast<double>(n_ - 1) : 0.0; }
  double sd() const { return std::sqrt(variance()); }
  // Monte Carlo SE of the mean: sd / sqrt(n); NaN (undefined, written as null) for n < 2.
  double mcse() const {
    return n_ > 1 ? sd() / std::sqrt(static_cast<double>(n_)) : std::numeric_limits<double>::quiet_NaN();
  }
  double min() const { return min_; }
  double max() const { return max_; }

  // The exact state, for moving a partial summary between processes (n is exact below 2^53).
  static constexpr std::size_t kStateSize = 5;
  std::array<double, kStateSize> state() const { return {static_cast<double>(n_), mean_, m2_, min_, max_}; }
  static Moments from_state(const double* s) {
    Moments m;
    m.n_ = static_cast<std::uint64_t>(s[0]);
    m.mean_ = s[1];
    m.m2_ = s[2];
    m.min_ = s[3];
    m.max_ = s[4];
    return m;
  }

 private:
  std::uint64_t n_ = 0;
  double mean_ = 0;
  double m2_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

}  // namespace trialsim
