#pragma once
// The Cholesky factorization A = L L' of a small symmetric positive definite matrix, written out
// for the analyses' per-trial systems (a regression's X'WX, a missing-data pattern's covariance,
// the MMRM's X'V^-1X: a few to a few dozen rows). At these sizes Eigen's LLT, whose solves with
// a matrix right-hand side go through its blocked triangular kernels, costs several times the
// arithmetic; here every operation is a plain loop over a fixed-capacity array, and nothing is
// allocated.
//
// The factorization is the row-by-row (Cholesky-Banachiewicz) algorithm; it fails where a pivot
// d_j = a_jj - sum_k<j l_jk^2 is not positive or not finite, and, with a relative tolerance tol,
// where d_j <= tol a_jj: full_rank_cholesky's rule (models/estimate.hpp) with tol = 1e-10.
#include <array>
#include <cmath>
#include <cstddef>

namespace trialsim {

template <int Capacity>
class SmallCholesky {
 public:
  // Factors the top-left p x p block of a (any type with a(i, j); only its lower triangle is
  // read); false when that block is not positive definite by the rule above.
  template <class M>
  bool compute(const M& a, int p, double tol = 0.0) {
    p_ = p;
    for (int j = 0; j < p; ++j) {
      double d = a(j, j);
      for (int k = 0; k < j; ++k) d -= l(j, k) * l(j, k);
      if (!(d > 0) || !(d > tol * a(j, j)) || !std::isfinite(d)) return false;
      const double ljj = std::sqrt(d);
      l(j, j) = ljj;
      inv_diag_[idx(j)] = 1.0 / ljj;
      for (int i = j + 1; i < p; ++i) {
        double s = a(i, j);
        for (int k = 0; k < j; ++k) s -= l(i, k) * l(j, k);
        l(i, j) = s * inv_diag_[idx(j)];
      }
    }
    return true;
  }
  int size() const { return p_; }
  // log |A| = 2 sum log l_jj.
  double log_determinant() const {
    double s = 0;
    for (int j = 0; j < p_; ++j) s += std::log(l(j, j));
    return 2.0 * s;
  }
  // x := A^-1 x (forward, then back substitution).
  void solve(double* x) const {
    forward(x);
    backward(x);
  }
  // x := L^-1 x.
  void forward(double* x) const {
    for (int i = 0; i < p_; ++i) {
      double s = x[i];
      for (int k = 0; k < i; ++k) s -= l(i, k) * x[k];
      x[i] = s * inv_diag_[idx(i)];
    }
  }
  // x := L'^-1 x.
  void backward(double* x) const {
    for (int i = p_ - 1; i >= 0; --i) {
      double s = x[i];
      for (int k = i + 1; k < p_; ++k) s -= l(k, i) * x[k];
      x[i] = s * inv_diag_[idx(i)];
    }
  }
  // out := A^-1 (p x p, both triangles), as M'M with M = L^-1.
  template <class Out>
  void inverse(Out& out) {
    invert_factor();
    for (int i = 0; i < p_; ++i) {
      for (int j = 0; j <= i; ++j) {
        double s = 0;
        for (int k = i; k < p_; ++k) s += m(k, i) * m(k, j);
        out(i, j) = s;
        out(j, i) = s;
      }
    }
  }
  // (L^-1)(i, j), i >= j, once inverse() or trace_solve() has formed L^-1.
  double inverse_factor(int i, int j) const { return m(i, j); }
  // tr(A^-1 B) for a symmetric B (its top-left p x p block; lower triangle read): with
  // M = L^-1, A^-1 = M'M and the trace is the sum over the rows m_k of M of m_k' B m_k.
  template <class M>
  double trace_solve(const M& b) {
    invert_factor();
    double trace = 0;
    for (int k = 0; k < p_; ++k) {
      for (int i = 0; i <= k; ++i) {
        double s = 0;
        for (int j = 0; j < i; ++j) s += b(i, j) * m(k, j);
        trace += m(k, i) * (2.0 * s + b(i, i) * m(k, i));
      }
    }
    return trace;
  }

 private:
  static constexpr std::size_t idx(int i) { return static_cast<std::size_t>(i); }
  static constexpr std::size_t at(int i, int j) { return idx(i) * static_cast<std::size_t>(Capacity) + idx(j); }
  double& l(int i, int j) { return l_[at(i, j)]; }
  double l(int i, int j) const { return l_[at(i, j)]; }
  double& m(int i, int j) { return m_[at(i, j)]; }
  double m(int i, int j) const { return m_[at(i, j)]; }
  // M = L^-1 (lower triangular), column by column by forward substitution.
  void invert_factor() {
    for (int j = 0; j < p_; ++j) {
      m(j, j) = inv_diag_[idx(j)];
      for (int i = j + 1; i < p_; ++i) {
        double s = 0;
        for (int k = j; k < i; ++k) s += l(i, k) * m(k, j);
        m(i, j) = -s * inv_diag_[idx(i)];
      }
    }
  }

  int p_ = 0;
  std::array<double, static_cast<std::size_t>(Capacity) * Capacity> l_;
  std::array<double, static_cast<std::size_t>(Capacity) * Capacity> m_;
  std::array<double, static_cast<std::size_t>(Capacity)> inv_diag_;
};

}  // namespace trialsim
