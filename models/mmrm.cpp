#include "models/mmrm.hpp"
#include "sim/engine/lanes.hpp"

#include "models/small_cholesky.hpp"
#include "sim/engine/draws.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Dense>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <limits>
#include <memory>
#include <numbers>
#include <utility>

namespace trialsim {
namespace {

constexpr int kMaxJ = kMmrmMaxVisits;
constexpr int kMaxP = kMmrmMaxFixed;
constexpr int kMaxK = kMaxJ * (kMaxJ + 1) / 2;  // unique elements of Sigma
using Small = MmrmVisitMatrix;
using SmallVec = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxJ, 1>;
using PMat = MmrmFixedMatrix;
using PVec = MmrmVector;
// K x K matrices exceed Eigen's limit for fixed capacities at 16 visits (136 x 136): they are
// dynamic, kept in the thread's Workspace, and only resized when K changes.
using KMat = Eigen::MatrixXd;
using KVec = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxK, 1>;

// The long-format design of the contributing patients, by missing-data pattern. Row r of
// patient i (visit v) has X = [e_v, arm_i e_v, base_i e_v, stratum_i]: the patient's covariate
// vector z_i = (1, arm, base[, stratum]) spread over visit v's columns col(a, v). So every sum
// over patients that the REML fit needs, sum_i X_i' M X_i, sum_i X_i' M y_i, sum_i X_i Phi X_i'
// for a pattern's m x m matrix M, is a function of the pattern's moments S = sum z z' and
// Syz = sum y z', and the residual moments are functions of the same moments about the
// pattern's means (residual_moments): each Fisher-scoring step costs one pass over at most
// min(n, 2^J - 1) patterns, never over the patients.
using SmallQ = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxJ, 4>;
using Mat4 = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, 4, 4>;
using Vec4 = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, 4, 1>;

// theta_k is Sigma(a, b), a >= b; restricted to a pattern it is the symmetric unit matrix
// E_k = sum over its terms (r, c) of e_r e_c': one term (r, r) on the diagonal, two off it.
// Every trace the fit needs with E_k is then a sum of one or two matrix entries:
// tr(M E_k) = sum M(c, r), tr(E_k M E_l N) = sum over (r, c) of E_k, (s, t) of E_l of
// M(c, s) N(t, r), and M E_k N = sum M.col(r) N.row(c) (rank at most 2).
struct Unit {
  int terms = 0;  // 0: the pattern lacks one of the two visits, and E_k restricted to it is zero
  std::array<std::pair<int, int>, 2> rc{};
};

struct Pattern {
  // User-provided, so that a new pattern (emplace_back) is not zero-filled first: every member
  // the fit reads is set where the pattern is laid out.
  Pattern() noexcept {}
  int m = 0;
  std::array<int, kMaxJ> visit{};   // the visits seen, in order
  std::uint32_t mask = 0;
  double n = 0;                     // patients with this pattern
  Mat4 S;                           // sum z z'  (q x q)
  SmallQ Syz;                       // sum y z'  (m x q)
  // The same moments about the pattern's means ybar and zbar, summed over its patients:
  // Syy = sum (y - ybar)(y - ybar)', Syz_c = sum (y - ybar)(z - zbar)', Szz = sum (z - zbar)(z - zbar)'.
  SmallVec ybar;
  Vec4 zbar;
  Small Syy;
  SmallQ Syz_c;
  Mat4 Szz;
  // At the last evaluation: V^-1 of the pattern, log |V|, the fitted means' spread C (X_i beta =
  // C z_i), and the residual moments R = sum r r' and Rz = sum r z' at its beta.
  Small W;
  double logdet = 0;
  SmallQ C;
  Small R;
  SmallQ Rz;
  // Scratch of the small-sample rules: Z = sum z_i z_i' and T = sum z_i x_i' for their z_i.
  Small Z;
  SmallQ T;
};

struct Design {
  int J = 0, p = 0, K = 0, q = 0;   // q: covariates per row (3, or 4 with the stratum)
  std::vector<double> y;                             // observations, patient by patient
  std::vector<int> offset;                           // per patient: first observation
  std::vector<std::array<double, 4>> z;              // per patient: covariate vector
  std::vector<int> pattern_of;                       // per patient
  std::vector<std::pair<int, int>> elem;             // theta_k -> (a, b), a >= b
  std::vector<Pattern> patterns;
  std::vector<Unit> units;                           // patterns x K: E_k restricted to pattern t
  int col(int a, int v) const { return a < 3 ? a * J + v : 3 * J; }
  const Unit& unit(std::size_t t, int k) const { return units[t * static_cast<std::size_t>(K) + static_cast<std::size_t>(k)]; }
};

struct Evaluation {
  bool ok = false;        // Sigma positive definite and X'V^-1X invertible
  bool singular_x = false;
  double loglik = 0;
  PVec beta;
  PMat phi;               // (X' V^-1 X)^-1
  KVec score;
  KMat info;              // expected REML information
  std::vector<PMat> B;    // X' V^-1 dV_k V^-1 X
};

// Cholesky factors of a pattern's V and of X'V^-1X, reused by every evaluation.
struct Factors {
  SmallCholesky<kMaxJ> v;
  SmallCholesky<kMaxP> a;
};

// Storage for the information's trace terms (evaluate): L^-1 of X'V^-1X column-major, the
// product B_k L^-T, and every G_k packed. Grown, never shrunk, so that a fit allocates only when
// it meets a larger design than any before on its thread.
struct GramStorage {
  std::vector<double> inv_factor, h, packed;
  std::size_t length = 0;  // of a packed column: p(p + 1)/2 rounded up to a multiple of 4
  std::size_t columns = 0;  // K rounded up to a multiple of 4
};

// A pattern's sums over its patients while they are read (fit_mmrm), at fixed strides: z
// padded to 4 covariates (the stratum's 0 when it does not vary), rows of kMaxJ visits.
struct RawMoments {
  double n = 0;
  double S[16] = {}, Szz[16] = {};
  double Syz[kMaxJ * 4] = {}, Syz_c[kMaxJ * 4] = {};
  double ybar[kMaxJ] = {};
  double zbar[4] = {};
  double Syy[kMaxJ * kMaxJ] = {};
};

// A thread's working storage, kept from one fit to the next (fit_mmrm).
struct Workspace {
  Factors factors;
  Design d;
  std::vector<RawMoments> raw;  // by pattern
  std::vector<double> arm, stratum;  // per patient, 0 or 1 (RepeatedMeasures::binary_columns)
  std::array<Evaluation, 2> ev;
  GramStorage gram;
  std::vector<PVec> a;      // quadratic_in_p's a_k
  KMat t1, t2, t3, m, observed, solved, inverse;
  Eigen::LDLT<KMat> fisher;
  Eigen::LLT<KMat> expected, hessian;
};

// g := the lower triangle of M B M', packed column by column (column j's rows j..p-1 in turn),
// with the entries off the diagonal times sqrt 2, for a lower triangular M (column-major `mc`)
// and a symmetric B (column-major, p x p); h is p x p scratch. H = B M' first (column j of H is
// the sum over l <= j of M(j, l) B(:, l)), then G = M H (G(:, j) the sum over l of H(l, j) M(:, l),
// rows i >= max(j, l) only). Every element is a sum in a fixed order, vectorized across elements.
TRIALSIM_VECTOR_LOOPS void packed_congruence(const double* mc, const double* b, int p, double* h, double* g) {
  const auto P = static_cast<std::size_t>(p);
  for (std::size_t j = 0; j < P; ++j) {
    double* const hj = h + j * P;
    std::fill_n(hj, P, 0.0);
    for (std::size_t l = 0; l <= j; ++l) {
      const double mjl = mc[l * P + j];
      const double* const bl = b + l * P;
      TRIALSIM_COLUMNS for (std::size_t i = 0; i < P; ++i) hj[i] += mjl * bl[i];
    }
  }
  const double root2 = std::numbers::sqrt2;
  double* out = g;
  for (std::size_t j = 0; j < P; ++j) {
    const std::size_t len = P - j;
    std::fill_n(out, len, 0.0);
    const double* const hj = h + j * P;
    for (std::size_t l = 0; l < P; ++l) {
      const double hlj = hj[l];
      const std::size_t start = std::max(j, l);
      const double* const ml = mc + l * P;
      TRIALSIM_COLUMNS for (std::size_t i = start; i < P; ++i) out[i - j] += hlj * ml[i];
    }
    TRIALSIM_COLUMNS for (std::size_t i = 1; i < len; ++i) out[i] *= root2;
    out += len;
  }
}

// out(k, l) = u_k . u_l for the columns u_k of `u` (each n long, n a multiple of 4; the block
// padded with zero columns to a multiple of 4), l <= k, mirrored into the upper triangle. Each dot
// product in four lanes (element i in lane i mod 4, the lanes added pairwise at the end), so the
// order of every sum is fixed by n alone and u_k . u_l has the same bits as u_l . u_k; two columns
// against four at a time, sharing their loads.
TRIALSIM_VECTOR_LOOPS void gram_lower(const double* u, std::size_t n, int K, KMat& out) {
  const auto k_all = static_cast<std::size_t>(K);
  for (std::size_t k0 = 0; k0 < k_all; k0 += 2) {
    const double* const a0 = u + k0 * n;
    const double* const a1 = a0 + n;
    for (std::size_t l0 = 0; l0 <= k0 + 1; l0 += 4) {
      const double* const v = u + l0 * n;
      Lanes s00{}, s01{}, s02{}, s03{}, s10{}, s11{}, s12{}, s13{};
      for (std::size_t i = 0; i < n; i += 4) {
        const Lanes x0 = load_lanes(a0 + i), x1 = load_lanes(a1 + i);
        const Lanes v0 = load_lanes(v + i), v1 = load_lanes(v + n + i), v2 = load_lanes(v + 2 * n + i),
                    v3 = load_lanes(v + 3 * n + i);
        s00 += x0 * v0;
        s01 += x0 * v1;
        s02 += x0 * v2;
        s03 += x0 * v3;
        s10 += x1 * v0;
        s11 += x1 * v1;
        s12 += x1 * v2;
        s13 += x1 * v3;
      }
      const std::array<std::array<double, 4>, 2> s{{{lane_sum(s00), lane_sum(s01), lane_sum(s02), lane_sum(s03)},
                                                    {lane_sum(s10), lane_sum(s11), lane_sum(s12), lane_sum(s13)}}};
      for (std::size_t a = 0; a < 2; ++a) {
        const std::size_t k = k0 + a;
        if (k >= k_all) continue;
        for (std::size_t b = 0; b < 4; ++b) {
          const std::size_t l = l0 + b;
          if (l > k) continue;
          out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(l)) = s[a][b];
          out(static_cast<Eigen::Index>(l), static_cast<Eigen::Index>(k)) = s[a][b];
        }
      }
    }
  }
}

Small sigma_of(const KVec& theta, const Design& d) {
  Small s(d.J, d.J);
  for (int k = 0; k < d.K; ++k) {
    const auto [a, b] = d.elem[static_cast<std::size_t>(k)];
    s(a, b) = s(b, a) = theta(k);
  }
  return s;
}

// tr(M E_k), for a pattern's unit of theta_k.
template <class M>
double trace_with(const M& mat, const Unit& u) {
  double s = 0;
  for (int i = 0; i < u.terms; ++i) s += mat(u.rc[static_cast<std::size_t>(i)].second, u.rc[static_cast<std::size_t>(i)].first);
  return s;
}

// tr(E_k M E_l N).
template <class M, class N>
double trace_between(const Unit& k, const M& mat, const Unit& l, const N& nat) {
  double s = 0;
  for (int i = 0; i < k.terms; ++i) {
    const auto [r, c] = k.rc[static_cast<std::size_t>(i)];
    for (int j = 0; j < l.terms; ++j) {
      const auto [sr, tc] = l.rc[static_cast<std::size_t>(j)];
      s += mat(c, sr) * nat(tc, r);
    }
  }
  return s;
}

// The lower triangle (row >= column) of out += sum over the pattern's patients of X_i' M X_i,
// for a symmetric M (every sum of this form is symmetric, and the Cholesky factorizations that
// read them use their lower triangles only). Columns are ordered by covariate a first
// (Design::col), so for each (a, v_r) the covariates b whose column lies on or left of the row's
// form a prefix.
template <class Out, class M>
void add_xtmx_lower(Out& out, const Design& d, const Pattern& pt, const M& mat) {
  for (int r = 0; r < pt.m; ++r) {
    for (int c = 0; c < pt.m; ++c) {
      const double v = mat(r, c);
      if (v == 0.0) continue;
      const int vr = pt.visit[static_cast<std::size_t>(r)], vc = pt.visit[static_cast<std::size_t>(c)];
      for (int a = 0; a < d.q; ++a) {
        const int row = d.col(a, vr);
        for (int b = 0; b < d.q && d.col(b, vc) <= row; ++b) out(row, d.col(b, vc)) += v * pt.S(a, b);
      }
    }
  }
}

// out += sum over the pattern's patients of X_i' t_i, given T = sum t_i z_i' (m x q).
template <class Out, class M>
void add_xt(Out& out, const Design& d, const Pattern& pt, const M& t) {
  for (int r = 0; r < pt.m; ++r) {
    for (int a = 0; a < d.q; ++a) out(d.col(a, pt.visit[static_cast<std::size_t>(r)])) += t(r, a);
  }
}

// sum over the pattern's patients of X_i Phi X_i' (m x m).
Small x_phi_xt(const Design& d, const Pattern& pt, const PMat& phi) {
  Small h(pt.m, pt.m);
  for (int r = 0; r < pt.m; ++r) {
    for (int c = 0; c <= r; ++c) {
      const int vr = pt.visit[static_cast<std::size_t>(r)], vc = pt.visit[static_cast<std::size_t>(c)];
      double s = 0;
      for (int a = 0; a < d.q; ++a) {
        for (int b = 0; b < d.q; ++b) s += pt.S(a, b) * phi(d.col(a, vr), d.col(b, vc));
      }
      h(r, c) = h(c, r) = s;
    }
  }
  return h;
}

// The m x q matrix D with X_i v = D z_i for every patient of the pattern: D(r, a) = v(col(a, v_r)).
SmallQ spread(const Design& d, const Pattern& pt, const PVec& v) {
  SmallQ out(pt.m, d.q);
  for (int r = 0; r < pt.m; ++r) {
    for (int a = 0; a < d.q; ++a) out(r, a) = v(d.col(a, pt.visit[static_cast<std::size_t>(r)]));
  }
  return out;
}

// Each pattern's C = spread(beta) and residual moments R = sum r r', Rz = sum r z' over its
// patients (r_i = y_i - C z_i), from the pattern's moments about its means (see Pattern): with
// d = ybar - C zbar, R = Syy - C Syz' - Syz C' + C Szz C' + n d d' and Rz = Syz - C Szz + n d zbar'.
// Centred moments keep the cancellation to that of the residuals themselves.
void residual_moments(Design& d, const PVec& beta) {
  for (Pattern& pt : d.patterns) {
    pt.C = spread(d, pt, beta);
    const SmallVec dev = pt.ybar - pt.C * pt.zbar;
    const SmallQ c_szz = pt.C * pt.Szz;
    const Small c_syz = pt.C * pt.Syz_c.transpose();
    pt.R = pt.Syy - c_syz - c_syz.transpose();
    pt.R.noalias() += c_szz * pt.C.transpose();
    pt.R.noalias() += pt.n * dev * dev.transpose();
    pt.Rz = pt.Syz_c - c_szz;
    pt.Rz.noalias() += pt.n * dev * pt.zbar.transpose();
  }
}

// REML log-likelihood and, with `derivatives`, its score and expected information in theta
// (Harville, JASA 1977): s_k = -1/2 tr(P V_k) + 1/2 r'V^-1 V_k V^-1 r,
// I_kl = 1/2 tr(P V_k P V_l), P = V^-1 - V^-1 X Phi X' V^-1, with V block-diagonal; every
// patient sum taken by pattern (see Design) and every trace with a unit matrix E_k in closed
// form (see Unit). Leaves each pattern's W, C, R and Rz at theta.
void quadratic_in_p(const Design& d, const PMat& phi, std::vector<PVec>& a, KMat& m);

// What an evaluation computes beyond the REML log-likelihood: nothing, the score with the
// average information, or the score with the expected information and the B_k.
enum class Derivatives { none, average, expected };

void evaluate(Design& d, const KVec& theta, Derivatives derivatives, Evaluation& ev, Workspace& ws) {
  Factors& f = ws.factors;
  ev.ok = false;
  ev.singular_x = false;
  const Small sigma = sigma_of(theta, d);
  PMat A = PMat::Zero(d.p, d.p);
  PVec rhs = PVec::Zero(d.p);
  double logdet_v = 0;
  for (Pattern& pt : d.patterns) {
    const int m = pt.m;
    Small v(m, m);
    for (int r = 0; r < m; ++r) {
      for (int c = 0; c < m; ++c) v(r, c) = sigma(pt.visit[static_cast<std::size_t>(r)], pt.visit[static_cast<std::size_t>(c)]);
    }
    if (!f.v.compute(v, m)) return;
    pt.W.resize(m, m);
    f.v.inverse(pt.W);
    pt.logdet = f.v.log_determinant();
    logdet_v += pt.n * pt.logdet;
    add_xtmx_lower(A, d, pt, pt.W);  // the Cholesky factorization below reads the lower triangle only
    const SmallQ wyz = pt.W * pt.Syz;
    add_xt(rhs, d, pt, wyz);
  }
  if (!f.a.compute(A, d.p)) {
    ev.singular_x = true;
    return;
  }
  ev.phi.resize(d.p, d.p);
  f.a.inverse(ev.phi);
  ev.beta.noalias() = ev.phi * rhs;
  const double logdet_a = f.a.log_determinant();
  residual_moments(d, ev.beta);

  double quad = 0;
  for (const Pattern& pt : d.patterns) quad += (pt.W * pt.R).trace();
  const double nobs = static_cast<double>(d.y.size());
  ev.loglik = -0.5 * (logdet_v + logdet_a + quad + (nobs - d.p) * std::log(2.0 * std::numbers::pi));
  ev.ok = true;
  if (derivatives == Derivatives::none) return;

  const auto K = static_cast<std::size_t>(d.K);
  KVec tr_wv = KVec::Zero(d.K), quad_k = KVec::Zero(d.K), tr_hwvw = KVec::Zero(d.K);
  if (derivatives == Derivatives::average) {
    // The score, and the average information AI_kl = 1/2 (Py)' V_k P V_l (Py) (Gilmour, Thompson
    // & Cullis, Biometrics 1995): the mean of the observed and expected information at y, the
    // same scoring limit (the score is exact) at a cost of O(K p^2) per step, where the expected
    // information's tr(Phi B_k Phi B_l) costs O(K p^3 + K^2 p^2). It is quadratic_in_p's M at
    // z = Py = V^-1 r.
    for (std::size_t t = 0; t < d.patterns.size(); ++t) {
      Pattern& pt = d.patterns[t];
      const Small g = pt.W * x_phi_xt(d, pt, ev.phi) * pt.W;
      pt.Z.noalias() = pt.W * pt.R * pt.W;
      pt.T.noalias() = pt.W * pt.Rz;
      for (int k = 0; k < d.K; ++k) {
        const Unit& ek = d.unit(t, k);
        if (ek.terms == 0) continue;
        tr_wv(k) += pt.n * trace_with(pt.W, ek);
        quad_k(k) += trace_with(pt.Z, ek);
        tr_hwvw(k) += trace_with(g, ek);
      }
    }
    quadratic_in_p(d, ev.phi, ws.a, ws.m);
    ev.score.resize(d.K);
    ev.info.resize(d.K, d.K);
    for (int k = 0; k < d.K; ++k) ev.score(k) = -0.5 * (tr_wv(k) - tr_hwvw(k)) + 0.5 * quad_k(k);
    ev.info = 0.5 * ws.m;
    return;
  }
  KMat &t1 = ws.t1, &t2 = ws.t2, &t3 = ws.t3;
  t1.setZero(d.K, d.K);
  t2.setZero(d.K, d.K);
  ev.B.resize(K);
  for (PMat& b : ev.B) b.setZero(d.p, d.p);
  for (std::size_t t = 0; t < d.patterns.size(); ++t) {
    const Pattern& pt = d.patterns[t];
    const Small g = pt.W * x_phi_xt(d, pt, ev.phi) * pt.W;  // W h W
    const Small u = pt.W * pt.R * pt.W;                       // sum of u u', u = V^-1 r
    Small wvw(pt.m, pt.m);
    for (int k = 0; k < d.K; ++k) {
      const Unit& ek = d.unit(t, k);
      if (ek.terms == 0) continue;
      tr_wv(k) += pt.n * trace_with(pt.W, ek);
      quad_k(k) += trace_with(u, ek);
      tr_hwvw(k) += trace_with(g, ek);
      wvw.setZero();
      for (int i = 0; i < ek.terms; ++i) {
        const auto [r, c] = ek.rc[static_cast<std::size_t>(i)];
        wvw.noalias() += pt.W.col(r) * pt.W.row(c);
      }
      add_xtmx_lower(ev.B[static_cast<std::size_t>(k)], d, pt, wvw);
      for (int l = 0; l <= k; ++l) {
        const Unit& el = d.unit(t, l);
        if (el.terms == 0) continue;
        t1(k, l) += pt.n * trace_between(ek, pt.W, el, pt.W);  // tr(W E_k W E_l)
        t2(k, l) += trace_between(ek, pt.W, el, g);           // tr(h W E_k W E_l W)
      }
    }
  }
  // B_k was summed in its lower triangle: mirror it.
  for (PMat& b : ev.B) {
    for (Eigen::Index c = 1; c < d.p; ++c) {
      for (Eigen::Index r = 0; r < c; ++r) b(r, c) = b(c, r);
    }
  }
  // tr(Phi B_k Phi B_l): with Phi = M'M (M = L^-1, X'V^-1X = L L'), it is the Frobenius product
  // <G_k, G_l> of the symmetric G_k = M B_k M'. With each G_k's lower triangle packed and its
  // off-diagonal entries times sqrt 2, every trace is the dot product of two packed columns and
  // all of them one Gram matrix: K congruences of O(p^3) and K^2/2 dot products of p^2/2, where
  // forming Phi B_k and summing (Phi B_k) o (Phi B_l)' costs the same p^2 per pair in strided
  // reads.
  GramStorage& gs = ws.gram;
  const auto P = static_cast<std::size_t>(d.p);
  gs.length = (P * (P + 1) / 2 + 3) / 4 * 4;
  gs.columns = (K + 3) / 4 * 4;
  if (gs.inv_factor.size() < P * P) gs.inv_factor.resize(P * P);
  if (gs.h.size() < P * P) gs.h.resize(P * P);
  if (gs.packed.size() < gs.length * gs.columns) gs.packed.resize(gs.length * gs.columns);
  for (std::size_t j = 0; j < P; ++j) {
    for (std::size_t i = 0; i < P; ++i) {
      gs.inv_factor[j * P + i] = i >= j ? f.a.inverse_factor(static_cast<int>(i), static_cast<int>(j)) : 0.0;
    }
  }
  std::fill_n(gs.packed.data(), gs.length * gs.columns, 0.0);
  for (std::size_t k = 0; k < K; ++k) {
    packed_congruence(gs.inv_factor.data(), ev.B[k].data(), d.p, gs.h.data(), gs.packed.data() + k * gs.length);
  }
  t3.resize(d.K, d.K);
  gram_lower(gs.packed.data(), gs.length, d.K, t3);
  ev.score.resize(d.K);
  ev.info.resize(d.K, d.K);
  for (int k = 0; k < d.K; ++k) {
    ev.score(k) = -0.5 * (tr_wv(k) - tr_hwvw(k)) + 0.5 * quad_k(k);
    for (int l = 0; l <= k; ++l) {
      const double v = 0.5 * (t1(k, l) - 2.0 * t2(k, l) + t3(k, l));
      ev.info(k, l) = ev.info(l, k) = v;
    }
  }
}

// M_kl = (V_k z)' P (V_l z) for a stacked vector z of patient blocks z_i, with V_k = dV / d theta_k
// and P = V^-1 - V^-1 X Phi X' V^-1: sum_i (E_ik z_i)' V_i^-1 (E_il z_i) - a_k' Phi a_l,
// a_k = sum_i X_i' V_i^-1 E_ik z_i, where E_ik is the unit matrix of theta_k restricted to patient
// i's visits. By pattern: sum_i z_i' E_k W E_l z_i = tr(E_k W E_l Z) with Z = sum z_i z_i', and
// a_k = sum X_i' (W E_k z_i) from T = sum z_i x_i' (x_i the covariate vector). Both
// small-sample rules need it:
//  * z = V^-1 r (= P y): the observed REML information is -I + M (d2 V = 0; Harville, JASA 1977);
//  * z = V^-1 X Phi c: c' Phi (Q_kl - P_k Phi P_l) Phi c = M_kl, the Kenward-Roger correction.
// Reads each pattern's Z and T, and the W of the REML estimate; writes M to `m`.
void quadratic_in_p(const Design& d, const PMat& phi, std::vector<PVec>& a, KMat& m) {
  const auto K = static_cast<std::size_t>(d.K);
  m.setZero(d.K, d.K);
  a.resize(K);
  for (PVec& v : a) v.setZero(d.p);
  for (std::size_t t = 0; t < d.patterns.size(); ++t) {
    const Pattern& pt = d.patterns[t];
    SmallQ wez(pt.m, d.q);
    for (int k = 0; k < d.K; ++k) {
      const Unit& ek = d.unit(t, k);
      if (ek.terms == 0) continue;
      wez.setZero();
      for (int i = 0; i < ek.terms; ++i) {
        const auto [r, c] = ek.rc[static_cast<std::size_t>(i)];
        wez.noalias() += pt.W.col(r) * pt.T.row(c);
      }
      add_xt(a[static_cast<std::size_t>(k)], d, pt, wez);
      for (int l = 0; l <= k; ++l) {
        const Unit& el = d.unit(t, l);
        if (el.terms == 0) continue;
        m(k, l) += trace_between(ek, pt.W, el, pt.Z);
      }
    }
  }
  PVec phi_a;
  for (int l = 0; l < d.K; ++l) {
    phi_a.noalias() = phi * a[static_cast<std::size_t>(l)];
    for (int k = l; k < d.K; ++k) {
      m(k, l) -= a[static_cast<std::size_t>(k)].dot(phi_a);
      m(l, k) = m(k, l);
    }
  }
}

// The reciprocal condition number of a symmetric matrix in the 1-norm, 1 / (|A|_1 |A^-1|_1),
// computed exactly from its factorization: the quantity LAPACK's and Eigen's rcond() estimate
// (Hager, SIAM J Sci Stat Comput 1984; Higham, ACM TOMS 1988), without their heap-allocated
// work vectors. `inverse` is the workspace A^-1 is written to.
double reciprocal_condition(const KMat& a, const Eigen::LDLT<KMat>& f, KMat& inverse) {
  const Eigen::Index n = a.rows();
  inverse.setIdentity(n, n);
  f.solveInPlace(inverse);
  double norm_a = 0, norm_inv = 0;
  for (Eigen::Index j = 0; j < n; ++j) {
    double sa = 0, si = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      sa += std::abs(a(i, j));
      si += std::abs(inverse(i, j));
    }
    norm_a = std::max(norm_a, sa);
    norm_inv = std::max(norm_inv, si);
  }
  return norm_a > 0 && norm_inv > 0 && std::isfinite(norm_inv) ? 1.0 / (norm_a * norm_inv) : 0.0;
}

Workspace& workspace() {
  thread_local std::unique_ptr<Workspace> ws;
  if (!ws) ws = std::make_unique<Workspace>();
  return *ws;
}

}  // namespace

std::string_view mmrm_df_name(MmrmDf df) {
  switch (df) {
    case MmrmDf::kenward_roger: return "kenward_roger";
    case MmrmDf::satterthwaite: return "satterthwaite";
    case MmrmDf::satterthwaite_expected: return "satterthwaite_expected";
  }
  return "?";
}

std::optional<MmrmDf> mmrm_df_from_name(std::string_view name) {
  for (const MmrmDf df : {MmrmDf::kenward_roger, MmrmDf::satterthwaite, MmrmDf::satterthwaite_expected}) {
    if (name == mmrm_df_name(df)) return df;
  }
  return std::nullopt;
}

std::vector<std::string> all_mmrm_df_names() {
  std::vector<std::string> all;
  for (const MmrmDf df : {MmrmDf::kenward_roger, MmrmDf::satterthwaite, MmrmDf::satterthwaite_expected}) {
    all.emplace_back(mmrm_df_name(df));
  }
  return all;
}

MmrmFit fit_mmrm(const RepeatedMeasures& data, double alpha, MmrmDf df_rule) {
  MmrmFit fit;
  auto fail = [&fit](NotEstimable why) {
    fit.status = why;
    fit.effect = not_estimable(why);
    return fit;
  };
  Workspace& ws = workspace();
  Design& d = ws.d;
  d.J = data.visits;
  const auto J = static_cast<std::size_t>(d.J);
  // Contributing patients, whether the stratum varies among them, and their observations.
  bool stratum_varies = false;
  int first = -1, contributing = 0, nobs = 0;
  for (std::size_t i = 0; i < data.patients(); ++i) {
    int seen = 0;
    for (std::size_t j = 0; j < J; ++j) seen += data.seen[i * J + j] != 0;
    if (seen == 0) continue;
    if (first < 0) first = static_cast<int>(i);
    stratum_varies = stratum_varies || data.stratum[i] != data.stratum[static_cast<std::size_t>(first)];
    ++contributing;
    nobs += seen;
  }
  fit.patients = contributing;
  fit.observations = nobs;
  d.p = 3 * d.J + (stratum_varies ? 1 : 0);
  d.q = stratum_varies ? 4 : 3;
  d.K = d.J * (d.J + 1) / 2;
  if (contributing <= d.p || nobs - d.p < d.K) return fail(NotEstimable::too_few_patients);
  d.elem.clear();
  for (int a = 0; a < d.J; ++a) {
    for (int b = 0; b <= a; ++b) d.elem.emplace_back(a, b);
  }
  d.y.clear();
  d.offset.clear();
  d.z.clear();
  d.pattern_of.clear();
  d.patterns.clear();
  data.binary_columns(ws.arm, ws.stratum);
  const double stratum_on = stratum_varies ? 1.0 : 0.0;
  for (std::size_t i = 0; i < data.patients(); ++i) {
    std::array<int, kMaxJ> visits{};
    int m = 0;
    std::uint32_t mask = 0;
    const auto offset = static_cast<int>(d.y.size());
    for (std::size_t j = 0; j < J; ++j) {
      if (!data.seen[i * J + j]) continue;
      d.y.push_back(data.y[i * J + j]);
      visits[static_cast<std::size_t>(m++)] = static_cast<int>(j);
      mask |= 1u << j;
    }
    if (m == 0) continue;
    d.offset.push_back(offset);
    const std::array<double, 4> zi{1.0, ws.arm[i], data.baseline[i], stratum_on * ws.stratum[i]};
    d.z.push_back(zi);
    std::size_t t = 0;
    while (t < d.patterns.size() && d.patterns[t].mask != mask) ++t;
    if (t == d.patterns.size()) {
      Pattern& pt = d.patterns.emplace_back();
      pt.m = m;
      pt.visit = visits;
      pt.mask = mask;
      if (ws.raw.size() < d.patterns.size()) ws.raw.resize(d.patterns.size());
      ws.raw[t] = RawMoments{};
    }
    RawMoments& raw = ws.raw[t];
    const double* const yi = d.y.data() + offset;
    const double* const z4 = zi.data();
    raw.n += 1;
    // S and Szz (below) are symmetric: their lower triangles are summed and mirrored when the
    // pattern's matrices are filled (z_a z_b and z_b z_a are the same product).
    for (int a = 0; a < 4; ++a) {
      for (int b = 0; b <= a; ++b) raw.S[a * 4 + b] += z4[a] * z4[b];
    }
    for (int r = 0; r < m; ++r) {
      for (int a = 0; a < 4; ++a) raw.Syz[r * 4 + a] += yi[r] * z4[a];
    }
    d.pattern_of.push_back(static_cast<int>(t));
  }
  // Moments about each pattern's means (a second pass over its patients), in plain arrays of
  // fixed strides (a pattern's moments are a few numbers each, where dynamic-size products cost
  // more than the arithmetic).
  for (std::size_t i = 0; i < d.pattern_of.size(); ++i) {
    const auto t = static_cast<std::size_t>(d.pattern_of[i]);
    RawMoments& raw = ws.raw[t];
    const double* const yi = d.y.data() + d.offset[i];
    for (int r = 0; r < d.patterns[t].m; ++r) raw.ybar[r] += yi[r];
    const double* const zi = d.z[i].data();
    for (int a = 0; a < 4; ++a) raw.zbar[a] += zi[a];
  }
  for (std::size_t t = 0; t < d.patterns.size(); ++t) {
    RawMoments& raw = ws.raw[t];
    for (int r = 0; r < d.patterns[t].m; ++r) raw.ybar[r] /= raw.n;
    for (int a = 0; a < 4; ++a) raw.zbar[a] /= raw.n;
  }
  for (std::size_t i = 0; i < d.pattern_of.size(); ++i) {
    const auto t = static_cast<std::size_t>(d.pattern_of[i]);
    RawMoments& raw = ws.raw[t];
    const int m = d.patterns[t].m;
    const double* const yi = d.y.data() + d.offset[i];
    const double* const zi = d.z[i].data();
    double yc[kMaxJ], zc[4];
    for (int r = 0; r < m; ++r) yc[r] = yi[r] - raw.ybar[r];
    for (int a = 0; a < 4; ++a) zc[a] = zi[a] - raw.zbar[a];
    for (int r = 0; r < m; ++r) {
      for (int c = 0; c < m; ++c) raw.Syy[r * kMaxJ + c] += yc[r] * yc[c];
      for (int a = 0; a < 4; ++a) raw.Syz_c[r * 4 + a] += yc[r] * zc[a];
    }
    for (int a = 0; a < 4; ++a) {
      for (int b = 0; b <= a; ++b) raw.Szz[a * 4 + b] += zc[a] * zc[b];
    }
  }
  for (std::size_t t = 0; t < d.patterns.size(); ++t) {
    Pattern& pt = d.patterns[t];
    const RawMoments& raw = ws.raw[t];
    const int m = pt.m, q = d.q;
    pt.n = raw.n;
    pt.S.resize(q, q);
    pt.Szz.resize(q, q);
    pt.Syz.resize(m, q);
    pt.Syz_c.resize(m, q);
    pt.ybar.resize(m);
    pt.zbar.resize(q);
    pt.Syy.resize(m, m);
    for (int a = 0; a < q; ++a) {
      pt.zbar(a) = raw.zbar[a];
      for (int b = 0; b < q; ++b) {
        const int hi = std::max(a, b), lo = std::min(a, b);
        pt.S(a, b) = raw.S[hi * 4 + lo];
        pt.Szz(a, b) = raw.Szz[hi * 4 + lo];
      }
    }
    for (int r = 0; r < m; ++r) {
      pt.ybar(r) = raw.ybar[r];
      for (int a = 0; a < q; ++a) {
        pt.Syz(r, a) = raw.Syz[r * 4 + a];
        pt.Syz_c(r, a) = raw.Syz_c[r * 4 + a];
      }
      for (int c = 0; c < m; ++c) pt.Syy(r, c) = raw.Syy[r * kMaxJ + c];
    }
  }
  // Each theta_k's unit matrix restricted to each pattern, and the pairs of visits ever seen
  // together: a pair never seen together has a covariance the data do not identify.
  d.units.assign(d.patterns.size() * static_cast<std::size_t>(d.K), Unit{});
  for (std::size_t t = 0; t < d.patterns.size(); ++t) {
    const Pattern& pt = d.patterns[t];
    std::array<int, kMaxJ> pos;
    pos.fill(-1);
    for (int r = 0; r < pt.m; ++r) pos[static_cast<std::size_t>(pt.visit[static_cast<std::size_t>(r)])] = r;
    for (int k = 0; k < d.K; ++k) {
      const auto [a, b] = d.elem[static_cast<std::size_t>(k)];
      const int pa = pos[static_cast<std::size_t>(a)], pb = pos[static_cast<std::size_t>(b)];
      if (pa < 0 || pb < 0) continue;
      Unit& u = d.units[t * static_cast<std::size_t>(d.K) + static_cast<std::size_t>(k)];
      u.rc[0] = {pa, pb};
      u.terms = 1;
      if (pa != pb) {
        u.rc[1] = {pb, pa};
        u.terms = 2;
      }
    }
  }

  // Start from the OLS fit: its normal equations from the patterns' moments (the identity as
  // V), its residual covariance over the pairs each patient was seen at.
  PMat xtx = PMat::Zero(d.p, d.p);
  PVec xty = PVec::Zero(d.p);
  for (const Pattern& pt : d.patterns) {
    add_xtmx_lower(xtx, d, pt, Small::Identity(pt.m, pt.m));  // LLT and its rank check read no more
    add_xt(xty, d, pt, pt.Syz);
  }
  const Eigen::LLT<PMat> xtx_llt(xtx);
  if (!full_rank_cholesky(xtx_llt, xtx)) return fail(NotEstimable::rank_deficient);
  const PVec ols = xtx_llt.solve(xty);
  residual_moments(d, ols);
  Small s0 = Small::Zero(d.J, d.J), n0 = Small::Zero(d.J, d.J);
  for (const Pattern& pt : d.patterns) {
    for (int r = 0; r < pt.m; ++r) {
      for (int c = 0; c < pt.m; ++c) {
        const int vr = pt.visit[static_cast<std::size_t>(r)], vc = pt.visit[static_cast<std::size_t>(c)];
        s0(vr, vc) += pt.R(r, c);
        n0(vr, vc) += pt.n;
      }
    }
  }
  KVec theta(d.K);
  for (int k = 0; k < d.K; ++k) {
    const auto [a, b] = d.elem[static_cast<std::size_t>(k)];
    if (n0(a, b) == 0) return fail(NotEstimable::rank_deficient);  // two visits never seen together
    // Divided by the count less the covariates per visit, REML's degrees of freedom for each
    // visit's residuals. With no visit missing and no stratum term (the same regressors at every
    // visit, where GLS is OLS: Zellner, JASA 1962) this is the REML estimate itself; otherwise a
    // nearer start than the count alone (on the seed trial 6.2 scoring steps per fit instead of
    // 6.6).
    theta(k) = s0(a, b) / (n0(a, b) > d.q + 1 ? n0(a, b) - d.q : n0(a, b));
    if (a == b && !(theta(k) > 1e-12)) return fail(NotEstimable::no_variance);
  }
  if (sigma_of(theta, d).llt().info() != Eigen::Success) {
    for (int k = 0; k < d.K; ++k) {
      if (d.elem[static_cast<std::size_t>(k)].first != d.elem[static_cast<std::size_t>(k)].second) theta(k) = 0;
    }
  }

  // Fisher scoring with step halving (REML must not decrease, Sigma must stay positive definite).
  // ws.ev[cur] holds the evaluation at theta, ws.ev[1 - cur] the candidate's.
  int cur = 0;
  // Scoring steps on the average information (evaluate), and the expected information once, at
  // the estimate, for the small-sample rules and the B_k they read. Where the average information
  // is not safely invertible a step falls back on the expected information.
  auto eval = [&](const KVec& at, Derivatives derivatives, Evaluation& into) { evaluate(d, at, derivatives, into, ws); };
  // A step needs a factorization with no pivot below 1e-13 of the largest (O(K^3 / 3)); the
  // estimate's expected information the exact reciprocal condition number (O(K^3) more).
  auto factors = [&](const KMat& info) {
    ws.fisher.compute(info);
    if (ws.fisher.info() != Eigen::Success) return false;
    const auto pivots = ws.fisher.vectorD().cwiseAbs();
    return pivots.minCoeff() >= 1e-13 * pivots.maxCoeff() && std::isfinite(pivots.maxCoeff());
  };
  auto invertible = [&](const KMat& info) {
    return factors(info) && reciprocal_condition(info, ws.fisher, ws.inverse) >= 1e-13;
  };
  eval(theta, Derivatives::average, ws.ev[0]);
  if (!ws.ev[0].ok) return fail(ws.ev[0].singular_x ? NotEstimable::rank_deficient : NotEstimable::not_converged);
  bool converged = false;
  KVec delta, candidate;
  // The scoring's stopping rule: a step no larger than 1e-10 of the parameters' scale.
  auto small_step = [](double change, const KVec& at) { return change <= 1e-10 * (1.0 + at.cwiseAbs().maxCoeff()); };
  for (fit.iterations = 1; fit.iterations <= 200; ++fit.iterations) {
    Evaluation& ev = ws.ev[static_cast<std::size_t>(cur)];
    Evaluation& next = ws.ev[static_cast<std::size_t>(1 - cur)];
    if (!factors(ev.info)) {
      eval(theta, Derivatives::expected, ev);
      if (!invertible(ev.info)) return fail(NotEstimable::rank_deficient);
    }
    delta = ws.fisher.solve(ev.score);
    // A full step already within the tolerance ends the scoring without evaluating its end point:
    // the evaluation would only confirm that so small a step does not lower the REML, and the
    // expected information is evaluated there next in any case. The same estimate as taking the
    // step, evaluating it and stopping on its size.
    candidate = theta + delta;
    if (small_step(delta.cwiseAbs().maxCoeff(), candidate)) {
      theta = candidate;
      converged = true;
      break;
    }
    double step = 1.0;
    bool moved = false;
    for (int halving = 0; halving < 40; ++halving, step *= 0.5) {
      candidate = theta + step * delta;
      // The full step is nearly always taken, so evaluate it with derivatives at once.
      eval(candidate, halving == 0 ? Derivatives::average : Derivatives::none, next);
      if (next.ok && next.loglik >= ev.loglik - 1e-12 * std::abs(ev.loglik)) {
        theta = candidate;
        moved = true;
        break;
      }
    }
    const double change = (step * delta).cwiseAbs().maxCoeff();
    if (!moved) {
      converged = ev.score.cwiseAbs().maxCoeff() < 1e-6 * (1.0 + std::abs(ev.loglik));
      break;
    }
    if (step != 1.0) eval(theta, Derivatives::average, next);
    cur = 1 - cur;
    if (!next.ok) break;
    if (small_step(change, theta)) {
      converged = true;
      break;
    }
  }
  if (!converged) return fail(NotEstimable::not_converged);
  // At the estimate (this also restores the patterns' W and residual moments that rejected
  // candidates overwrote): the expected information and the B_k.
  Evaluation& ev = ws.ev[static_cast<std::size_t>(cur)];
  eval(theta, Derivatives::expected, ev);
  if (!ev.ok) return fail(NotEstimable::not_converged);
  if (!invertible(ev.info)) return fail(NotEstimable::rank_deficient);

  fit.beta = ev.beta;
  fit.sigma = sigma_of(theta, d);
  fit.beta_cov = ev.phi;
  fit.reml_loglik = ev.loglik;
  const int c = d.J + d.J - 1;  // gamma_J: arm at the last visit
  const double var = ev.phi(c, c);
  if (!(var > 0)) return fail(NotEstimable::no_variance);
  fit.status = NotEstimable::none;
  // g_k = d(c'Phi c)/d theta_k = c' Phi B_k Phi c (dPhi = Phi B_k Phi); only g' W g is used.
  const PVec phi_c = ev.phi.col(c);
  KVec g(d.K);
  PVec b_phi_c;
  for (int k = 0; k < d.K; ++k) {
    b_phi_c.noalias() = ev.B[static_cast<std::size_t>(k)] * phi_c;
    g(k) = phi_c.dot(b_phi_c);
  }
  ws.expected.compute(ev.info);
  if (ws.expected.info() != Eigen::Success) {
    fit.effect = not_estimable(NotEstimable::rank_deficient);
    return fit;
  }
  auto satterthwaite_df = [&](double gwg) {
    return gwg > 0 ? 2.0 * var * var / gwg : std::numeric_limits<double>::infinity();
  };
  KVec solved;
  double se = std::sqrt(var), df = 0;
  switch (df_rule) {
    case MmrmDf::satterthwaite_expected:
      solved = ws.expected.solve(g);
      df = satterthwaite_df(g.dot(solved));
      break;
    case MmrmDf::kenward_roger: {
      // c' Phi_A c = c' Phi c + 2 sum_kl W_kl M_kl(V^-1 X Phi c), W = I^-1: tr(I^-1 M).
      for (Pattern& pt : d.patterns) {
        const SmallQ g_p = pt.W * spread(d, pt, phi_c);  // z_i = W X_i Phi c = G z_i(cov)
        pt.T.noalias() = g_p * pt.S;
        pt.Z.noalias() = pt.T * g_p.transpose();
      }
      quadratic_in_p(d, ev.phi, ws.a, ws.m);
      ws.solved = ws.expected.solve(ws.m);
      const double var_a = var + 2.0 * ws.solved.trace();
      se = std::sqrt(var_a);
      solved = ws.expected.solve(g);
      df = satterthwaite_df(g.dot(solved));
      break;
    }
    case MmrmDf::satterthwaite: {
      for (Pattern& pt : d.patterns) {
        pt.Z.noalias() = pt.W * pt.R * pt.W;  // z_i = W r_i
        pt.T.noalias() = pt.W * pt.Rz;
      }
      quadratic_in_p(d, ev.phi, ws.a, ws.m);
      ws.observed = ws.m - ev.info;
      ws.hessian.compute(ws.observed);
      if (ws.hessian.info() != Eigen::Success) {
        fit.effect = not_estimable(NotEstimable::not_converged);
        return fit;
      }
      solved = ws.hessian.solve(g);
      df = satterthwaite_df(g.dot(solved));
      break;
    }
  }
  if (!(df > 0)) {
    fit.effect = not_estimable(NotEstimable::no_variance);
    return fit;
  }
  fit.effect = t_estimate(ev.beta(c), se, df, alpha);
  return fit;
}

}  // namespace trialsim
