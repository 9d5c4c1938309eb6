#include "sim/engine/accumulators.hpp"

namespace trialsim {

void Moments::merge(const Moments& o) {
  if (o.n_ == 0) return;
  if (n_ == 0) {
    *this = o;
    return;
  }
  const double n = static_cast<double>(n_ + o.n_);
  const double d = o.mean_ - mean_;
  mean_ += d * static_cast<double>(o.n_) / n;
  m2_ += o.m2_ + d * d * static_cast<double>(n_) * static_cast<double>(o.n_) / n;
  n_ += o.n_;
  min_ = std::fmin(min_, o.min_);
  max_ = std::fmax(max_, o.max_);
}

}  // namespace trialsim
