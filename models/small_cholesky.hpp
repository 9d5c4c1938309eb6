#pragma once
// The Cholesky factorization A = L L' of a small symmetric positive definite matrix, written out
// for the analyses' per-trial systems (a regression's X'WX, a missing-data pattern's covariance,
// the MMRM's X'V^-1X: a few to a few dozen rows). At these sizes Eigen's LLT, whose solves with
// a matrix right-hand side go through its blocked triangular kernels, costs several times the
// arithmetic; here every operation is a plain loop over a fixed-capacity array, and nothing is
// allocated.
//
// Every loop runs to the matrix's size; sizes up to kUnrolled are also compiled with the size as a
// constant (the same operations in the same order, so the same bits), which unrolls the short
// loops these systems have and lets their independent products overlap.
//
// The factorization is the row-by-row (Cholesky-Banachiewicz) algorithm; it fails where a pivot
// d_j = a_jj - sum_k<j l_jk^2 is not positive or not finite, and, with a relative tolerance tol,
// where d_j <= tol a_jj: full_rank_cholesky's rule (models/estimate.hpp) with tol = 1e-10.
#include <array>
#include <cmath>
#include <cstddef>
#include <type_traits>

namespace trialsim {

template <int Capacity>
class SmallCholesky {
 public:
  // Factors the top-left p x p block of a (any type with a(i, j); only its lower triangle is
  // read); false when that block is not positive definite by the rule above.
  template <class M>
  bool compute(const M& a, int p, double tol = 0.0) {
    p_ = p;
    return sized([&](auto n) { return compute_n<n()>(a, tol); });
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
    sized([&](auto n) {
      forward_n<n()>(x);
      backward_n<n()>(x);
    });
  }
  // x := L^-1 x.
  void forward(double* x) const {
    sized([&](auto n) { forward_n<n()>(x); });
  }
  // x := L'^-1 x.
  void backward(double* x) const {
    sized([&](auto n) { backward_n<n()>(x); });
  }
  // out := A^-1 (p x p, both triangles), as M'M with M = L^-1.
  template <class Out>
  void inverse(Out& out) {
    sized([&](auto n) { inverse_n<n()>(out); });
  }
  // (L^-1)(i, j), i >= j, once inverse() or trace_solve() has formed L^-1.
  double inverse_factor(int i, int j) const { return m(i, j); }
  // tr(A^-1 B) for a symmetric B (its top-left p x p block; lower triangle read): with
  // M = L^-1, A^-1 = M'M and the trace is the sum over the rows m_k of M of m_k' B m_k.
  template <class M>
  double trace_solve(const M& b) {
    return sized([&](auto n) { return trace_solve_n<n()>(b); });
  }

 private:
  static constexpr int kUnrolled = 8;
  // f(size) with the size as a constant up to kUnrolled, else f(0) (the size read at run time).
  template <class F>
  decltype(auto) sized(F f) const {
    switch (p_) {
      case 1: return f(std::integral_constant<int, 1>{});
      case 2: return f(std::integral_constant<int, 2>{});
      case 3: return f(std::integral_constant<int, 3>{});
      case 4: return f(std::integral_constant<int, 4>{});
      case 5: return f(std::integral_constant<int, 5>{});
      case 6: return f(std::integral_constant<int, 6>{});
      case 7: return f(std::integral_constant<int, 7>{});
      case kUnrolled: return f(std::integral_constant<int, kUnrolled>{});
      default: return f(std::integral_constant<int, 0>{});
    }
  }
  template <int N>
  int dim() const {
    return N > 0 && N <= Capacity ? N : p_;
  }

  template <int N, class M>
  bool compute_n(const M& a, double tol) {
    const int p = dim<N>();
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
  template <int N>
  void forward_n(double* x) const {
    const int p = dim<N>();
    for (int i = 0; i < p; ++i) {
      double s = x[i];
      for (int k = 0; k < i; ++k) s -= l(i, k) * x[k];
      x[i] = s * inv_diag_[idx(i)];
    }
  }
  template <int N>
  void backward_n(double* x) const {
    const int p = dim<N>();
    for (int i = p - 1; i >= 0; --i) {
      double s = x[i];
      for (int k = i + 1; k < p; ++k) s -= l(k, i) * x[k];
      x[i] = s * inv_diag_[idx(i)];
    }
  }
  template <int N, class Out>
  void inverse_n(Out& out) {
    const int p = dim<N>();
    invert_factor<N>();
    for (int i = 0; i < p; ++i) {
      for (int j = 0; j <= i; ++j) {
        double s = 0;
        for (int k = i; k < p; ++k) s += m(k, i) * m(k, j);
        out(i, j) = s;
        out(j, i) = s;
      }
    }
  }
  template <int N, class M>
  double trace_solve_n(const M& b) {
    const int p = dim<N>();
    invert_factor<N>();
    double trace = 0;
    for (int k = 0; k < p; ++k) {
      for (int i = 0; i <= k; ++i) {
        double s = 0;
        for (int j = 0; j < i; ++j) s += b(i, j) * m(k, j);
        trace += m(k, i) * (2.0 * s + b(i, i) * m(k, i));
      }
    }
    return trace;
  }

  static constexpr std::size_t idx(int i) { return static_cast<std::size_t>(i); }
  static constexpr std::size_t at(int i, int j) { return idx(i) * static_cast<std::size_t>(Capacity) + idx(j); }
  double& l(int i, int j) { return l_[at(i, j)]; }
  double l(int i, int j) const { return l_[at(i, j)]; }
  double& m(int i, int j) { return m_[at(i, j)]; }
  double m(int i, int j) const { return m_[at(i, j)]; }
  // M = L^-1 (lower triangular), column by column by forward substitution.
  template <int N>
  void invert_factor() {
    const int p = dim<N>();
    for (int j = 0; j < p; ++j) {
      m(j, j) = inv_diag_[idx(j)];
      for (int i = j + 1; i < p; ++i) {
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
