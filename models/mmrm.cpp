#include "models/mmrm.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Dense>

#include <array>
#include <cstdint>
#include <cmath>
#include <limits>
#include <numbers>

namespace trialsim {
namespace {

constexpr int kMaxJ = static_cast<int>(kMaxVisits);
using Small = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxJ, kMaxJ>;
using SmallVec = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxJ, 1>;

// The long-format design of the contributing patients, and the same data by missing-data
// pattern. Row r of patient i (visit v) has X = [e_v, arm_i e_v, base_i e_v, stratum_i]: the
// patient's covariate vector z_i = (1, arm, base[, stratum]) spread over visit v's columns
// col(a, v). So every sum over patients that the REML fit needs, sum_i X_i' M X_i,
// sum_i X_i' M y_i, sum_i X_i Phi X_i' for a pattern's m x m matrix M, is a function of the
// pattern's moments S = sum z z' and Syz = sum y z': each Fisher-scoring step costs one pass
// over at most 2^J - 1 patterns instead of over the patients (the residual moments of a pattern
// are still summed over its patients, for accuracy).
using SmallQ = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxJ, 4>;
using Mat4 = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, 4, 4>;

struct Pattern {
  int m = 0;
  std::array<int, kMaxJ> visit{};   // the visits seen, in order
  std::uint32_t mask = 0;
  double n = 0;                     // patients with this pattern
  Mat4 S;                           // sum z z'  (q x q)
  SmallQ Syz;                       // sum y z'  (m x q)
  // At the last evaluation: V^-1 of the pattern, log |V|, and the residual moments
  // R = sum r r' and Rz = sum r z' at its beta.
  Small W;
  double logdet = 0;
  Small R;
  SmallQ Rz;
};

struct Design {
  int J = 0, p = 0, K = 0, q = 0;   // q: covariates per row (3, or 4 with the stratum)
  Eigen::MatrixXd X;  // observations x p
  Eigen::VectorXd y;
  std::vector<int> offset, count;                    // per patient: first row, number of rows
  std::vector<std::array<int, kMaxJ>> visit;         // per patient: visit index of each row
  std::vector<std::pair<int, int>> elem;             // theta_k -> (a, b), a >= b
  std::vector<std::array<double, 4>> z;              // per patient: covariate vector
  std::vector<int> pattern_of;                       // per patient
  mutable std::vector<Pattern> patterns;
  int col(int a, int v) const { return a < 3 ? a * J + v : 3 * J; }
};

Eigen::MatrixXd sigma_of(const Eigen::VectorXd& theta, const Design& d) {
  Eigen::MatrixXd s(d.J, d.J);
  for (int k = 0; k < d.K; ++k) {
    const auto [a, b] = d.elem[static_cast<std::size_t>(k)];
    s(a, b) = s(b, a) = theta(k);
  }
  return s;
}

// Restriction of the symmetric unit matrix of theta_k to a pattern's visits; false when the
// pattern lacks one of its two visits (the restriction is zero and contributes nothing).
bool unit_restricted(const Design& d, int k, const Pattern& pt, Small& e) {
  const auto [a, b] = d.elem[static_cast<std::size_t>(k)];
  int pa = -1, pb = -1;
  for (int r = 0; r < pt.m; ++r) {
    if (pt.visit[static_cast<std::size_t>(r)] == a) pa = r;
    if (pt.visit[static_cast<std::size_t>(r)] == b) pb = r;
  }
  if (pa < 0 || pb < 0) return false;
  e = Small::Zero(pt.m, pt.m);
  e(pa, pb) = e(pb, pa) = 1.0;
  return true;
}

// out += sum over the pattern's patients of X_i' M X_i.
template <class M>
void add_xtmx(Eigen::MatrixXd& out, const Design& d, const Pattern& pt, const M& mat) {
  for (int r = 0; r < pt.m; ++r) {
    for (int c = 0; c < pt.m; ++c) {
      const double v = mat(r, c);
      if (v == 0.0) continue;
      const int vr = pt.visit[static_cast<std::size_t>(r)], vc = pt.visit[static_cast<std::size_t>(c)];
      for (int a = 0; a < d.q; ++a) {
        for (int b = 0; b < d.q; ++b) out(d.col(a, vr), d.col(b, vc)) += v * pt.S(a, b);
      }
    }
  }
}

// out += sum over the pattern's patients of X_i' t_i, given T = sum t_i z_i' (m x q).
template <class M>
void add_xt(Eigen::VectorXd& out, const Design& d, const Pattern& pt, const M& t) {
  for (int r = 0; r < pt.m; ++r) {
    for (int a = 0; a < d.q; ++a) out(d.col(a, pt.visit[static_cast<std::size_t>(r)])) += t(r, a);
  }
}

// sum over the pattern's patients of X_i Phi X_i' (m x m).
Small x_phi_xt(const Design& d, const Pattern& pt, const Eigen::MatrixXd& phi) {
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
SmallQ spread(const Design& d, const Pattern& pt, const Eigen::VectorXd& v) {
  SmallQ out(pt.m, d.q);
  for (int r = 0; r < pt.m; ++r) {
    for (int a = 0; a < d.q; ++a) out(r, a) = v(d.col(a, pt.visit[static_cast<std::size_t>(r)]));
  }
  return out;
}

struct Evaluation {
  bool ok = false;        // Sigma positive definite and X'V^-1X invertible
  bool singular_x = false;
  double loglik = 0;
  Eigen::VectorXd beta;
  Eigen::MatrixXd phi;    // (X' V^-1 X)^-1
  Eigen::VectorXd score;
  Eigen::MatrixXd info;   // expected REML information
  std::vector<Eigen::MatrixXd> B;  // X' V^-1 dV_k V^-1 X
};

// REML log-likelihood and, with `derivatives`, its score and expected information in theta
// (Harville, JASA 1977): s_k = -1/2 tr(P V_k) + 1/2 r'V^-1 V_k V^-1 r,
// I_kl = 1/2 tr(P V_k P V_l), P = V^-1 - V^-1 X Phi X' V^-1, with V block-diagonal; every
// patient sum taken by pattern (see Design). Leaves each pattern's W, R and Rz at theta.
Evaluation evaluate(const Design& d, const Eigen::VectorXd& theta, bool derivatives) {
  Evaluation ev;
  const Eigen::MatrixXd sigma = sigma_of(theta, d);
  Eigen::MatrixXd A = Eigen::MatrixXd::Zero(d.p, d.p);
  Eigen::VectorXd rhs = Eigen::VectorXd::Zero(d.p);
  double logdet_v = 0;
  for (Pattern& pt : d.patterns) {
    const int m = pt.m;
    Small v(m, m);
    for (int r = 0; r < m; ++r) {
      for (int c = 0; c < m; ++c) v(r, c) = sigma(pt.visit[static_cast<std::size_t>(r)], pt.visit[static_cast<std::size_t>(c)]);
    }
    const Eigen::LLT<Small> llt(v);
    if (llt.info() != Eigen::Success) return ev;
    pt.W = llt.solve(Small::Identity(m, m));
    pt.logdet = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
    logdet_v += pt.n * pt.logdet;
    add_xtmx(A, d, pt, pt.W);
    const SmallQ wyz = pt.W * pt.Syz;
    add_xt(rhs, d, pt, wyz);
  }
  const Eigen::LLT<Eigen::MatrixXd> a_llt(A);
  if (a_llt.info() != Eigen::Success) {
    ev.singular_x = true;
    return ev;
  }
  ev.phi = a_llt.solve(Eigen::MatrixXd::Identity(d.p, d.p));
  ev.beta = ev.phi * rhs;
  const double logdet_a = 2.0 * a_llt.matrixLLT().diagonal().array().log().sum();

  // Residual moments per pattern, summed over its patients (r_i = y_i - C z_i).
  std::vector<SmallQ> C(d.patterns.size());
  for (std::size_t t = 0; t < d.patterns.size(); ++t) {
    Pattern& pt = d.patterns[t];
    C[t] = spread(d, pt, ev.beta);
    pt.R = Small::Zero(pt.m, pt.m);
    pt.Rz = SmallQ::Zero(pt.m, d.q);
  }
  SmallVec r;
  for (std::size_t i = 0; i < d.pattern_of.size(); ++i) {
    const auto t = static_cast<std::size_t>(d.pattern_of[i]);
    Pattern& pt = d.patterns[t];
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, 1, 0, 4, 1>> zi(d.z[i].data(), d.q);
    r = d.y.segment(d.offset[i], pt.m) - C[t] * zi;
    pt.R.noalias() += r * r.transpose();
    pt.Rz.noalias() += r * zi.transpose();
  }

  double quad = 0;
  Eigen::VectorXd tr_wv = Eigen::VectorXd::Zero(d.K), quad_k = Eigen::VectorXd::Zero(d.K);
  Eigen::VectorXd tr_hwvw = Eigen::VectorXd::Zero(d.K);
  Eigen::MatrixXd t1 = Eigen::MatrixXd::Zero(d.K, d.K), t2 = Eigen::MatrixXd::Zero(d.K, d.K);
  if (derivatives) ev.B.assign(static_cast<std::size_t>(d.K), Eigen::MatrixXd::Zero(d.p, d.p));
  std::vector<Small> wv(static_cast<std::size_t>(d.K));
  std::vector<char> present(static_cast<std::size_t>(d.K));
  Small e;
  for (const Pattern& pt : d.patterns) {
    quad += (pt.W * pt.R).trace();
    if (!derivatives) continue;
    const Small h = x_phi_xt(d, pt, ev.phi);
    const Small u = pt.W * pt.R * pt.W;  // sum of u u', u = V^-1 r
    for (int k = 0; k < d.K; ++k) {
      const auto kk = static_cast<std::size_t>(k);
      present[kk] = unit_restricted(d, k, pt, e);
      if (!present[kk]) continue;
      wv[kk] = pt.W * e;
      const Small wvw = wv[kk] * pt.W;
      tr_wv(k) += pt.n * wv[kk].trace();
      quad_k(k) += (e * u).trace();
      tr_hwvw(k) += (h * wvw).trace();
      add_xtmx(ev.B[kk], d, pt, wvw);
      for (int l = 0; l <= k; ++l) {
        const auto ll = static_cast<std::size_t>(l);
        if (!present[ll]) continue;
        const Small vv = wv[kk] * wv[ll];
        t1(k, l) += pt.n * vv.trace();
        t2(k, l) += (h * vv * pt.W).trace();
      }
    }
  }
  const int nobs = static_cast<int>(d.y.size());
  ev.loglik = -0.5 * (logdet_v + logdet_a + quad + (nobs - d.p) * std::log(2.0 * std::numbers::pi));
  if (derivatives) {
    ev.score.resize(d.K);
    ev.info.resize(d.K, d.K);
    for (int k = 0; k < d.K; ++k) {
      ev.score(k) = -0.5 * (tr_wv(k) - tr_hwvw(k)) + 0.5 * quad_k(k);
      for (int l = 0; l <= k; ++l) {
        const double v = 0.5 * (t1(k, l) - 2.0 * t2(k, l) +
                                (ev.phi * ev.B[static_cast<std::size_t>(k)] * ev.phi * ev.B[static_cast<std::size_t>(l)]).trace());
        ev.info(k, l) = ev.info(l, k) = v;
      }
    }
  }
  ev.ok = true;
  return ev;
}

// M_kl = (V_k z)' P (V_l z) for a stacked vector z of patient blocks z_i, with V_k = dV / d theta_k
// and P = V^-1 - V^-1 X Phi X' V^-1: sum_i (E_ik z_i)' V_i^-1 (E_il z_i) - a_k' Phi a_l,
// a_k = sum_i X_i' V_i^-1 E_ik z_i, where E_ik is the unit matrix of theta_k restricted to patient
// i's visits. By pattern: sum_i z_i' E_k W E_l z_i = tr(E_k W E_l Z) with Z = sum z_i z_i', and
// a_k = sum X_i' (W E_k z_i) from T = sum z_i x_i' (x_i the covariate vector). Both
// small-sample rules need it:
//  * z = V^-1 r (= P y): the observed REML information is -I + M (d2 V = 0; Harville, JASA 1977);
//  * z = V^-1 X Phi c: c' Phi (Q_kl - P_k Phi P_l) Phi c = M_kl, the Kenward-Roger correction.
// zz[t], zx[t]: Z and T of pattern t. Uses the W of the REML estimate.
Eigen::MatrixXd quadratic_in_p(const Design& d, const std::vector<Small>& zz, const std::vector<SmallQ>& zx,
                               const Eigen::MatrixXd& phi) {
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(d.K, d.K);
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(d.p, d.K);
  std::vector<Small> ek(static_cast<std::size_t>(d.K));
  std::vector<char> present(static_cast<std::size_t>(d.K));
  for (std::size_t t = 0; t < d.patterns.size(); ++t) {
    const Pattern& pt = d.patterns[t];
    for (int k = 0; k < d.K; ++k) {
      const auto kk = static_cast<std::size_t>(k);
      present[kk] = unit_restricted(d, k, pt, ek[kk]);
      if (!present[kk]) continue;
      Eigen::VectorXd col = Eigen::VectorXd::Zero(d.p);
      const SmallQ wez = pt.W * ek[kk] * zx[t];
      add_xt(col, d, pt, wez);
      a.col(k) += col;
      for (int l = 0; l <= k; ++l) {
        const auto ll = static_cast<std::size_t>(l);
        if (!present[ll]) continue;
        m(k, l) += (ek[kk] * pt.W * ek[ll] * zz[t]).trace();
      }
    }
  }
  const Eigen::MatrixXd phi_a = phi * a;
  for (int k = 0; k < d.K; ++k) {
    for (int l = 0; l <= k; ++l) {
      m(k, l) -= a.col(k).dot(phi_a.col(l));
      m(l, k) = m(k, l);
    }
  }
  return m;
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
  Design d;
  d.J = data.visits;
  const auto J = static_cast<std::size_t>(d.J);
  // Contributing patients and whether the stratum varies among them.
  std::vector<std::size_t> who;
  bool stratum_varies = false;
  for (std::size_t i = 0; i < data.patients(); ++i) {
    bool any = false;
    for (std::size_t j = 0; j < J; ++j) any = any || data.seen[i * J + j] != 0;
    if (!any) continue;
    if (!who.empty()) stratum_varies = stratum_varies || data.stratum[i] != data.stratum[who.front()];
    who.push_back(i);
  }
  fit.patients = static_cast<int>(who.size());
  d.p = 3 * d.J + (stratum_varies ? 1 : 0);
  d.q = stratum_varies ? 4 : 3;
  d.K = d.J * (d.J + 1) / 2;
  for (int a = 0; a < d.J; ++a) {
    for (int b = 0; b <= a; ++b) d.elem.emplace_back(a, b);
  }
  int nobs = 0;
  for (const std::size_t i : who) {
    for (std::size_t j = 0; j < J; ++j) nobs += data.seen[i * J + j] != 0;
  }
  fit.observations = nobs;
  if (static_cast<int>(who.size()) <= d.p || nobs - d.p < d.K) {
    fit.status = NotEstimable::too_few_patients;
    fit.effect = not_estimable(fit.status);
    return fit;
  }
  d.X = Eigen::MatrixXd::Zero(nobs, d.p);
  d.y.resize(nobs);
  int row = 0;
  for (const std::size_t i : who) {
    d.offset.push_back(row);
    std::array<int, kMaxJ> visits{};
    int m = 0;
    for (std::size_t j = 0; j < J; ++j) {
      if (!data.seen[i * J + j]) continue;
      const int jj = static_cast<int>(j);
      d.X(row, jj) = 1.0;
      d.X(row, d.J + jj) = data.treated[i] != 0 ? 1.0 : 0.0;
      d.X(row, 2 * d.J + jj) = data.baseline[i];
      if (stratum_varies) d.X(row, 3 * d.J) = data.stratum[i] != 0 ? 1.0 : 0.0;
      d.y(row) = data.y[i * J + j];
      visits[static_cast<std::size_t>(m++)] = jj;
      ++row;
    }
    d.count.push_back(m);
    d.visit.push_back(visits);
    const std::array<double, 4> zi{1.0, data.treated[i] != 0 ? 1.0 : 0.0, data.baseline[i],
                                   stratum_varies && data.stratum[i] != 0 ? 1.0 : 0.0};
    d.z.push_back(zi);
    std::uint32_t mask = 0;
    for (int r = 0; r < m; ++r) mask |= 1u << visits[static_cast<std::size_t>(r)];
    std::size_t t = 0;
    while (t < d.patterns.size() && d.patterns[t].mask != mask) ++t;
    if (t == d.patterns.size()) {
      Pattern pt;
      pt.m = m;
      pt.visit = visits;
      pt.mask = mask;
      pt.S = Mat4::Zero(d.q, d.q);
      pt.Syz = SmallQ::Zero(m, d.q);
      d.patterns.push_back(pt);
    }
    Pattern& pt = d.patterns[t];
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, 1, 0, 4, 1>> zv(zi.data(), d.q);
    pt.n += 1;
    pt.S.noalias() += zv * zv.transpose();
    pt.Syz.noalias() += d.y.segment(d.offset.back(), m) * zv.transpose();
    d.pattern_of.push_back(static_cast<int>(t));
  }

  // Start from the OLS residual covariance over the pairs each patient was seen at.
  const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(d.X);
  if (qr.rank() < d.p) {
    fit.status = NotEstimable::rank_deficient;
    fit.effect = not_estimable(fit.status);
    return fit;
  }
  const Eigen::VectorXd r0 = d.y - d.X * qr.solve(d.y);
  Eigen::MatrixXd s0 = Eigen::MatrixXd::Zero(d.J, d.J), n0 = Eigen::MatrixXd::Zero(d.J, d.J);
  for (std::size_t i = 0; i < who.size(); ++i) {
    for (int a = 0; a < d.count[i]; ++a) {
      for (int b = 0; b < d.count[i]; ++b) {
        const int va = d.visit[i][static_cast<std::size_t>(a)], vb = d.visit[i][static_cast<std::size_t>(b)];
        s0(va, vb) += r0(d.offset[i] + a) * r0(d.offset[i] + b);
        n0(va, vb) += 1;
      }
    }
  }
  Eigen::VectorXd theta(d.K);
  for (int k = 0; k < d.K; ++k) {
    const auto [a, b] = d.elem[static_cast<std::size_t>(k)];
    if (n0(a, b) == 0) {  // two visits never seen together: their covariance is not identified
      fit.status = NotEstimable::rank_deficient;
      fit.effect = not_estimable(fit.status);
      return fit;
    }
    theta(k) = s0(a, b) / n0(a, b);
    if (a == b && !(theta(k) > 1e-12)) {
      fit.status = NotEstimable::no_variance;
      fit.effect = not_estimable(fit.status);
      return fit;
    }
  }
  if (sigma_of(theta, d).llt().info() != Eigen::Success) {
    for (int k = 0; k < d.K; ++k) {
      if (d.elem[static_cast<std::size_t>(k)].first != d.elem[static_cast<std::size_t>(k)].second) theta(k) = 0;
    }
  }

  // Fisher scoring with step halving (REML must not decrease, Sigma must stay positive definite).
  Evaluation ev = evaluate(d, theta, true);
  if (!ev.ok) {
    fit.status = ev.singular_x ? NotEstimable::rank_deficient : NotEstimable::not_converged;
    fit.effect = not_estimable(fit.status);
    return fit;
  }
  bool converged = false;
  for (fit.iterations = 1; fit.iterations <= 200; ++fit.iterations) {
    const Eigen::LDLT<Eigen::MatrixXd> info(ev.info);
    if (info.info() != Eigen::Success || info.rcond() < 1e-13) {
      fit.status = NotEstimable::rank_deficient;
      fit.effect = not_estimable(fit.status);
      return fit;
    }
    const Eigen::VectorXd delta = info.solve(ev.score);
    double step = 1.0;
    bool moved = false;
    Evaluation next;
    for (int halving = 0; halving < 40; ++halving, step *= 0.5) {
      const Eigen::VectorXd candidate = theta + step * delta;
      // The full step is nearly always taken, so evaluate it with derivatives at once.
      next = evaluate(d, candidate, halving == 0);
      if (next.ok && next.loglik >= ev.loglik - 1e-12 * std::abs(ev.loglik)) {
        theta = candidate;
        moved = true;
        break;
      }
    }
    const double change = (step * delta).cwiseAbs().maxCoeff();
    if (!moved) {
      converged = ev.score.cwiseAbs().maxCoeff() < 1e-6 * (1.0 + std::abs(ev.loglik));
      // The rejected candidates overwrote the patterns' W and residual moments; the inference
      // below reads theta's.
      if (converged) evaluate(d, theta, false);
      break;
    }
    ev = step == 1.0 ? std::move(next) : evaluate(d, theta, true);
    if (!ev.ok) break;
    if (change <= 1e-10 * (1.0 + theta.cwiseAbs().maxCoeff())) {
      converged = true;
      break;
    }
  }
  if (!converged || !ev.ok) {
    fit.status = NotEstimable::not_converged;
    fit.effect = not_estimable(fit.status);
    return fit;
  }

  fit.beta = ev.beta;
  fit.sigma = sigma_of(theta, d);
  fit.beta_cov = ev.phi;
  fit.reml_loglik = ev.loglik;
  const int c = d.J + d.J - 1;  // gamma_J: arm at the last visit
  const double var = ev.phi(c, c);
  if (!(var > 0)) {
    fit.status = NotEstimable::no_variance;
    fit.effect = not_estimable(fit.status);
    return fit;
  }
  fit.status = NotEstimable::none;
  // g_k = d(c'Phi c)/d theta_k = c' Phi B_k Phi c (dPhi = Phi B_k Phi); only g' W g is used.
  const Eigen::VectorXd phi_c = ev.phi.col(c);
  Eigen::VectorXd g(d.K);
  for (int k = 0; k < d.K; ++k) g(k) = phi_c.dot(ev.B[static_cast<std::size_t>(k)] * phi_c);
  const Eigen::LLT<Eigen::MatrixXd> expected(ev.info);
  if (expected.info() != Eigen::Success) {
    fit.effect = not_estimable(NotEstimable::rank_deficient);
    return fit;
  }
  auto satterthwaite_df = [&](double gwg) {
    return gwg > 0 ? 2.0 * var * var / gwg : std::numeric_limits<double>::infinity();
  };
  double se = std::sqrt(var), df = 0;
  switch (df_rule) {
    case MmrmDf::satterthwaite_expected: df = satterthwaite_df(g.dot(expected.solve(g))); break;
    case MmrmDf::kenward_roger: {
      // c' Phi_A c = c' Phi c + 2 sum_kl W_kl M_kl(V^-1 X Phi c), W = I^-1: tr(I^-1 M).
      std::vector<Small> zz(d.patterns.size());
      std::vector<SmallQ> zx(d.patterns.size());
      for (std::size_t t = 0; t < d.patterns.size(); ++t) {
        const Pattern& pt = d.patterns[t];
        const SmallQ g_p = pt.W * spread(d, pt, phi_c);  // z_i = W X_i Phi c = G z_i(cov)
        zx[t] = g_p * pt.S;
        zz[t] = zx[t] * g_p.transpose();
      }
      const double var_a = var + 2.0 * expected.solve(quadratic_in_p(d, zz, zx, ev.phi)).trace();
      se = std::sqrt(var_a);
      df = satterthwaite_df(g.dot(expected.solve(g)));
      break;
    }
    case MmrmDf::satterthwaite: {
      std::vector<Small> zz(d.patterns.size());
      std::vector<SmallQ> zx(d.patterns.size());
      for (std::size_t t = 0; t < d.patterns.size(); ++t) {
        const Pattern& pt = d.patterns[t];
        zz[t] = pt.W * pt.R * pt.W;  // z_i = W r_i
        zx[t] = pt.W * pt.Rz;
      }
      const Eigen::MatrixXd observed = quadratic_in_p(d, zz, zx, ev.phi) - ev.info;
      const Eigen::LLT<Eigen::MatrixXd> h(observed);
      if (h.info() != Eigen::Success) {
        fit.effect = not_estimable(NotEstimable::not_converged);
        return fit;
      }
      df = satterthwaite_df(g.dot(h.solve(g)));
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
