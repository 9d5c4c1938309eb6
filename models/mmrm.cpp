#include "models/mmrm.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Dense>

#include <array>
#include <cmath>
#include <limits>
#include <numbers>

namespace trialsim {
namespace {

constexpr int kMaxJ = static_cast<int>(kMaxVisits);
using Small = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxJ, kMaxJ>;
using SmallVec = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxJ, 1>;

// The long-format design of the contributing patients.
struct Design {
  int J = 0, p = 0, K = 0;
  Eigen::MatrixXd X;  // observations x p
  Eigen::VectorXd y;
  std::vector<int> offset, count;                    // per patient: first row, number of rows
  std::vector<std::array<int, kMaxJ>> visit;         // per patient: visit index of each row
  std::vector<std::pair<int, int>> elem;             // theta_k -> (a, b), a >= b
  // Each row of X has at most 4 non-zeros (visit, arm x visit, baseline x visit, stratum);
  // products with X use them directly rather than dense algebra on tiny matrices.
  std::vector<std::array<int, 4>> nz_col;
  std::vector<std::array<double, 4>> nz_val;
  std::vector<int> nz_count;
  std::vector<int> w_offset;                         // per patient: start of V_i^-1 in the buffer
  mutable std::vector<double> w_buffer;              // every V_i^-1, packed, reused across evaluations
};

Eigen::MatrixXd sigma_of(const Eigen::VectorXd& theta, const Design& d) {
  Eigen::MatrixXd s(d.J, d.J);
  for (int k = 0; k < d.K; ++k) {
    const auto [a, b] = d.elem[static_cast<std::size_t>(k)];
    s(a, b) = s(b, a) = theta(k);
  }
  return s;
}

// Restriction of the symmetric unit matrix of theta_k to a patient's visits; false when the
// patient lacks one of its two visits (the restriction is zero and contributes nothing).
bool unit_restricted(const Design& d, int k, std::size_t i, Small& e) {
  const auto [a, b] = d.elem[static_cast<std::size_t>(k)];
  const int m = d.count[i];
  int pa = -1, pb = -1;
  for (int r = 0; r < m; ++r) {
    if (d.visit[i][static_cast<std::size_t>(r)] == a) pa = r;
    if (d.visit[i][static_cast<std::size_t>(r)] == b) pb = r;
  }
  if (pa < 0 || pb < 0) return false;
  e = Small::Zero(m, m);
  e(pa, pb) = e(pb, pa) = 1.0;
  return true;
}

// out += X_i' M X_i for patient i (M is m x m).
template <class M>
void add_xtmx(Eigen::MatrixXd& out, const Design& d, std::size_t i, const M& mat) {
  const int off = d.offset[i], m = d.count[i];
  for (int r = 0; r < m; ++r) {
    const auto rr = static_cast<std::size_t>(off + r);
    for (int c = 0; c < m; ++c) {
      const double v = mat(r, c);
      if (v == 0.0) continue;
      const auto cc = static_cast<std::size_t>(off + c);
      for (int a = 0; a < d.nz_count[rr]; ++a) {
        const double va = v * d.nz_val[rr][static_cast<std::size_t>(a)];
        for (int b = 0; b < d.nz_count[cc]; ++b) {
          out(d.nz_col[rr][static_cast<std::size_t>(a)], d.nz_col[cc][static_cast<std::size_t>(b)]) +=
              va * d.nz_val[cc][static_cast<std::size_t>(b)];
        }
      }
    }
  }
}

// X_i Phi X_i' (m x m).
Small x_phi_xt(const Design& d, std::size_t i, const Eigen::MatrixXd& phi) {
  const int off = d.offset[i], m = d.count[i];
  Small h(m, m);
  for (int r = 0; r < m; ++r) {
    const auto rr = static_cast<std::size_t>(off + r);
    for (int c = 0; c <= r; ++c) {
      const auto cc = static_cast<std::size_t>(off + c);
      double s = 0;
      for (int a = 0; a < d.nz_count[rr]; ++a) {
        for (int b = 0; b < d.nz_count[cc]; ++b) {
          s += d.nz_val[rr][static_cast<std::size_t>(a)] *
               phi(d.nz_col[rr][static_cast<std::size_t>(a)], d.nz_col[cc][static_cast<std::size_t>(b)]) *
               d.nz_val[cc][static_cast<std::size_t>(b)];
        }
      }
      h(r, c) = h(c, r) = s;
    }
  }
  return h;
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
// I_kl = 1/2 tr(P V_k P V_l), P = V^-1 - V^-1 X Phi X' V^-1, with V block-diagonal.
Evaluation evaluate(const Design& d, const Eigen::VectorXd& theta, bool derivatives) {
  Evaluation ev;
  const Eigen::MatrixXd sigma = sigma_of(theta, d);
  const std::size_t n = d.offset.size();
  auto W = [&](std::size_t i) {
    return Eigen::Map<Eigen::MatrixXd>(d.w_buffer.data() + d.w_offset[i], d.count[i], d.count[i]);
  };
  Eigen::MatrixXd A = Eigen::MatrixXd::Zero(d.p, d.p);
  Eigen::VectorXd rhs = Eigen::VectorXd::Zero(d.p);
  double logdet_v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const int m = d.count[i];
    Small v(m, m);
    for (int r = 0; r < m; ++r) {
      for (int c = 0; c < m; ++c) v(r, c) = sigma(d.visit[i][static_cast<std::size_t>(r)], d.visit[i][static_cast<std::size_t>(c)]);
    }
    const Eigen::LLT<Small> llt(v);
    if (llt.info() != Eigen::Success) return ev;
    W(i) = llt.solve(Small::Identity(m, m));
    logdet_v += 2.0 * llt.matrixLLT().diagonal().array().log().sum();
    const SmallVec wy = W(i) * d.y.segment(d.offset[i], m);
    add_xtmx(A, d, i, W(i));
    for (int r = 0; r < m; ++r) {
      const auto rr = static_cast<std::size_t>(d.offset[i] + r);
      for (int a = 0; a < d.nz_count[rr]; ++a) rhs(d.nz_col[rr][static_cast<std::size_t>(a)]) += d.nz_val[rr][static_cast<std::size_t>(a)] * wy(r);
    }
  }
  const Eigen::LLT<Eigen::MatrixXd> a_llt(A);
  if (a_llt.info() != Eigen::Success) {
    ev.singular_x = true;
    return ev;
  }
  ev.phi = a_llt.solve(Eigen::MatrixXd::Identity(d.p, d.p));
  ev.beta = ev.phi * rhs;
  const double logdet_a = 2.0 * a_llt.matrixLLT().diagonal().array().log().sum();
  const Eigen::VectorXd resid = d.y - d.X * ev.beta;

  double quad = 0;
  Eigen::VectorXd tr_wv = Eigen::VectorXd::Zero(d.K), quad_k = Eigen::VectorXd::Zero(d.K);
  Eigen::VectorXd tr_hwvw = Eigen::VectorXd::Zero(d.K);
  Eigen::MatrixXd t1 = Eigen::MatrixXd::Zero(d.K, d.K), t2 = Eigen::MatrixXd::Zero(d.K, d.K);
  if (derivatives) ev.B.assign(static_cast<std::size_t>(d.K), Eigen::MatrixXd::Zero(d.p, d.p));
  std::vector<Small> wv(static_cast<std::size_t>(d.K));
  std::vector<char> present(static_cast<std::size_t>(d.K));
  Small e;
  for (std::size_t i = 0; i < n; ++i) {
    const int m = d.count[i];
    const Small Wi = W(i);
    const SmallVec u = Wi.lazyProduct(resid.segment(d.offset[i], m));
    quad += resid.segment(d.offset[i], m).dot(u);
    if (!derivatives) continue;
    const Small h = x_phi_xt(d, i, ev.phi);
    for (int k = 0; k < d.K; ++k) {
      const auto kk = static_cast<std::size_t>(k);
      present[kk] = unit_restricted(d, k, i, e);
      if (!present[kk]) continue;
      wv[kk] = Wi.lazyProduct(e);
      const Small wvw = wv[kk].lazyProduct(Wi);
      tr_wv(k) += wv[kk].trace();
      quad_k(k) += u.dot(e.lazyProduct(u));
      tr_hwvw(k) += h.lazyProduct(wvw).trace();
      add_xtmx(ev.B[kk], d, i, wvw);
      for (int l = 0; l <= k; ++l) {
        const auto ll = static_cast<std::size_t>(l);
        if (!present[ll]) continue;
        const Small vv = wv[kk].lazyProduct(wv[ll]);
        t1(k, l) += vv.trace();
        t2(k, l) += h.lazyProduct(vv.lazyProduct(Wi)).trace();
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
// i's visits (E z has at most two non-zeros). Both small-sample rules need it:
//  * z = V^-1 r (= P y): the observed REML information is -I + M (d2 V = 0; Harville, JASA 1977);
//  * z = V^-1 X Phi c: c' Phi (Q_kl - P_k Phi P_l) Phi c = M_kl, the Kenward-Roger correction.
// Uses the V_i^-1 in d.w_buffer, which must be those of the REML estimate.
Eigen::MatrixXd quadratic_in_p(const Design& d, const Eigen::VectorXd& z, const Eigen::MatrixXd& phi) {
  const std::size_t n = d.offset.size();
  const auto K = static_cast<std::size_t>(d.K);
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(d.K, d.K);
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(d.p, d.K);
  // Per patient: s_k = E_ik z_i and t_k = V_i^-1 s_k in the first rows of column k of each.
  Eigen::MatrixXd sk(kMaxJ, d.K), tk(kMaxJ, d.K);
  std::array<int, kMaxJ> row_of{};
  std::vector<char> present(K);
  for (std::size_t i = 0; i < n; ++i) {
    const int cnt = d.count[i], off = d.offset[i];
    const Eigen::Map<const Eigen::MatrixXd> Wi(d.w_buffer.data() + d.w_offset[i], cnt, cnt);
    row_of.fill(-1);
    for (int r = 0; r < cnt; ++r) row_of[static_cast<std::size_t>(d.visit[i][static_cast<std::size_t>(r)])] = r;
    sk.topRows(cnt).setZero();
    for (std::size_t k = 0; k < K; ++k) {
      const auto [va, vb] = d.elem[k];
      const int pa = row_of[static_cast<std::size_t>(va)], pb = row_of[static_cast<std::size_t>(vb)];
      present[k] = pa >= 0 && pb >= 0;
      if (!present[k]) continue;
      const auto kk = static_cast<Eigen::Index>(k);
      sk(pa, kk) = z(off + pb);
      sk(pb, kk) = z(off + pa);
      tk.col(kk).head(cnt).noalias() = Wi * sk.col(kk).head(cnt);
      for (int r = 0; r < cnt; ++r) {
        const auto rr = static_cast<std::size_t>(off + r);
        for (int c = 0; c < d.nz_count[rr]; ++c) {
          a(d.nz_col[rr][static_cast<std::size_t>(c)], kk) += d.nz_val[rr][static_cast<std::size_t>(c)] * tk(r, kk);
        }
      }
    }
    for (std::size_t k = 0; k < K; ++k) {
      if (!present[k]) continue;
      for (std::size_t l = 0; l <= k; ++l) {
        if (!present[l]) continue;
        const auto kk = static_cast<Eigen::Index>(k), ll = static_cast<Eigen::Index>(l);
        m(kk, ll) += sk.col(kk).head(cnt).dot(tk.col(ll).head(cnt));
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
      std::array<int, 4> cols{jj, d.J + jj, 2 * d.J + jj, 3 * d.J};
      std::array<double, 4> vals{1.0, d.X(row, d.J + jj), data.baseline[i], stratum_varies ? d.X(row, 3 * d.J) : 0.0};
      d.nz_col.push_back(cols);
      d.nz_val.push_back(vals);
      d.nz_count.push_back(stratum_varies ? 4 : 3);
      d.y(row) = data.y[i * J + j];
      visits[static_cast<std::size_t>(m++)] = jj;
      ++row;
    }
    d.count.push_back(m);
    d.visit.push_back(visits);
    d.w_offset.push_back(static_cast<int>(d.w_buffer.size()));
    d.w_buffer.resize(d.w_buffer.size() + static_cast<std::size_t>(m * m));
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
      // The rejected candidates overwrote the V_i^-1 buffer; the inference below reads theta's.
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
      Eigen::VectorXd z(d.y.size());
      for (std::size_t i = 0; i < who.size(); ++i) {
        const int m = d.count[i], off = d.offset[i];
        const Eigen::Map<const Eigen::MatrixXd> Wi(d.w_buffer.data() + d.w_offset[i], m, m);
        z.segment(off, m).noalias() = Wi * (d.X.middleRows(off, m) * phi_c);
      }
      const double var_a = var + 2.0 * expected.solve(quadratic_in_p(d, z, ev.phi)).trace();
      se = std::sqrt(var_a);
      df = satterthwaite_df(g.dot(expected.solve(g)));
      break;
    }
    case MmrmDf::satterthwaite: {
      Eigen::VectorXd u(d.y.size());
      const Eigen::VectorXd resid = d.y - d.X * ev.beta;
      for (std::size_t i = 0; i < who.size(); ++i) {
        const int m = d.count[i], off = d.offset[i];
        const Eigen::Map<const Eigen::MatrixXd> Wi(d.w_buffer.data() + d.w_offset[i], m, m);
        u.segment(off, m).noalias() = Wi * resid.segment(off, m);
      }
      const Eigen::MatrixXd observed = quadratic_in_p(d, u, ev.phi) - ev.info;
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
