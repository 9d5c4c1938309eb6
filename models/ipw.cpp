#include "models/ipw.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace trialsim {
namespace {

// Logistic regression by IRLS (McCullagh & Nelder 1989, section 4.4), converged on the
// relative change in deviance as glm() does, but to 1e-10. As in R's binomial family the
// linear predictor is clamped (|eta| <= 36, where the probability is 1 to machine precision)
// so that quasi-separation, in which some probabilities tend to 1, still converges.
bool logistic(const Eigen::MatrixXd& X, const Eigen::VectorXd& y, Eigen::VectorXd& beta, Eigen::VectorXd& mu) {
  static constexpr double kEtaMax = 36.0;
  auto inv_logit = [](const Eigen::VectorXd& eta) -> Eigen::VectorXd {
    return (1.0 + (-eta.array().max(-kEtaMax).min(kEtaMax)).exp()).inverse().matrix();
  };
  beta = Eigen::VectorXd::Zero(X.cols());
  double deviance = std::numeric_limits<double>::infinity();
  // eta and mu carry over from one iteration's end to the next's start (at beta = 0 to begin).
  Eigen::VectorXd eta = Eigen::VectorXd::Zero(X.rows());
  mu = inv_logit(eta);
  Eigen::MatrixXd xw(X.rows(), X.cols());
  for (int it = 0; it < 100; ++it) {
    const Eigen::ArrayXd w = (mu.array() * (1.0 - mu.array())).max(std::numeric_limits<double>::epsilon());
    const Eigen::VectorXd wz = (w * eta.array() + (y - mu).array()).matrix();  // w z, z the working response
    xw = X.array().colwise() * w.sqrt();
    Eigen::MatrixXd xtwx = Eigen::MatrixXd::Zero(X.cols(), X.cols());
    xtwx.selfadjointView<Eigen::Lower>().rankUpdate(xw.transpose());
    const Eigen::LLT<Eigen::MatrixXd> llt(xtwx);
    if (llt.info() != Eigen::Success) return false;
    beta = llt.solve(X.transpose() * wz);
    eta.noalias() = X * beta;
    mu = inv_logit(eta);
    double dev = 0;
    for (Eigen::Index i = 0; i < mu.size(); ++i) dev -= 2.0 * (y(i) > 0 ? std::log(mu(i)) : std::log1p(-mu(i)));
    if (std::abs(dev - deviance) / (std::abs(dev) + 0.1) < 1e-10) return true;
    deviance = dev;
  }
  return false;
}

}  // namespace

IpwFit fit_ipw_ancova(const RepeatedMeasures& d, double alpha) {
  IpwFit fit;
  const std::size_t n = d.patients();
  const auto J = static_cast<std::size_t>(d.visits);
  auto seen = [&](std::size_t i, std::size_t j) { return d.seen[i * J + j] != 0; };
  auto seen_from = [&](std::size_t i, std::size_t j) {  // still in the trial at visit j
    for (std::size_t k = j; k < J; ++k) {
      if (seen(i, k)) return true;
    }
    return false;
  };
  std::size_t completers = 0;
  for (std::size_t i = 0; i < n; ++i) completers += seen(i, J - 1) ? 1u : 0u;
  if (completers < 5) {
    fit.effect = not_estimable(NotEstimable::too_few_patients);
    return fit;
  }

  std::vector<double> p_complete(n, 1.0);
  for (std::size_t s = 0; s < J; ++s) {
    std::vector<std::size_t> at_risk;
    for (std::size_t i = 0; i < n; ++i) {
      if (s == 0 || seen_from(i, s - 1)) at_risk.push_back(i);
    }
    std::array<std::vector<double>, 5> cand;
    std::vector<double> stay;
    for (const std::size_t i : at_risk) {
      double last = d.baseline[i];
      for (std::size_t k = 0; k < s; ++k) {
        if (seen(i, k)) last = d.y[i * J + k];
      }
      cand[0].push_back(1.0);
      cand[1].push_back(d.baseline[i]);
      cand[2].push_back(d.stratum[i] != 0 ? 1.0 : 0.0);
      cand[3].push_back(d.treated[i] != 0 ? 1.0 : 0.0);
      cand[4].push_back(last);
      stay.push_back(seen_from(i, s) ? 1.0 : 0.0);
    }
    Eigen::VectorXd coef = Eigen::VectorXd::Zero(5);
    const bool anyone_leaves = std::any_of(stay.begin(), stay.end(), [](double v) { return v == 0.0; });
    if (anyone_leaves) {
      std::vector<int> cols{0};
      for (int k = 1; k < 5; ++k) {
        const auto& c = cand[static_cast<std::size_t>(k)];
        if (k >= 4 && s == 0) continue;  // no post-baseline history yet
        if (std::all_of(c.begin(), c.end(), [&](double v) { return v == c.front(); })) continue;
        cols.push_back(k);
      }
      const auto nr = static_cast<Eigen::Index>(at_risk.size());
      const auto p = static_cast<Eigen::Index>(cols.size());
      Eigen::MatrixXd X(nr, p);
      Eigen::VectorXd y(nr);
      for (Eigen::Index r = 0; r < nr; ++r) {
        for (Eigen::Index c = 0; c < p; ++c) {
          X(r, c) = cand[static_cast<std::size_t>(cols[static_cast<std::size_t>(c)])][static_cast<std::size_t>(r)];
        }
        y(r) = stay[static_cast<std::size_t>(r)];
      }
      if (nr <= p || Eigen::ColPivHouseholderQR<Eigen::MatrixXd>(X).rank() < p) {
        fit.effect = not_estimable(NotEstimable::rank_deficient);
        return fit;
      }
      Eigen::VectorXd beta, mu;
      if (!logistic(X, y, beta, mu)) {
        fit.effect = not_estimable(NotEstimable::not_converged);
        return fit;
      }
      for (Eigen::Index c = 0; c < p; ++c) coef(cols[static_cast<std::size_t>(c)]) = beta(c);
      for (Eigen::Index r = 0; r < nr; ++r) p_complete[at_risk[static_cast<std::size_t>(r)]] *= mu(r);
    }
    fit.stage_coef.push_back(coef);
  }

  // Weighted ANCOVA on completers with the HC2 sandwich.
  bool stratum_varies = false, arm0 = false, arm1 = false;
  int first_stratum = -1;
  for (std::size_t i = 0; i < n; ++i) {
    if (!seen(i, J - 1)) continue;
    if (!(p_complete[i] > 1e-8)) {
      fit.effect = not_estimable(NotEstimable::not_converged);
      return fit;
    }
    if (first_stratum < 0) first_stratum = d.stratum[i];
    stratum_varies = stratum_varies || d.stratum[i] != first_stratum;
    (d.treated[i] ? arm1 : arm0) = true;
  }
  if (!arm0 || !arm1) {
    fit.effect = not_estimable(NotEstimable::too_few_patients);
    return fit;
  }
  const Eigen::Index q = stratum_varies ? 4 : 3;
  const auto nc = static_cast<Eigen::Index>(completers);
  if (nc <= q) {
    fit.effect = not_estimable(NotEstimable::too_few_patients);
    return fit;
  }
  Eigen::MatrixXd Z(nc, q);
  Eigen::VectorXd yc(nc), wc(nc);
  Eigen::Index r = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!seen(i, J - 1)) continue;
    Z(r, 0) = 1.0;
    Z(r, 1) = d.treated[i] != 0 ? 1.0 : 0.0;
    Z(r, 2) = d.baseline[i];
    if (stratum_varies) Z(r, 3) = d.stratum[i] != 0 ? 1.0 : 0.0;
    yc(r) = d.y[i * J + J - 1];
    wc(r) = 1.0 / p_complete[i];
    ++r;
  }
  const Eigen::MatrixXd ztwz = Z.transpose() * wc.asDiagonal() * Z;
  const Eigen::LDLT<Eigen::MatrixXd> ldlt(ztwz);
  if (ldlt.info() != Eigen::Success || ldlt.rcond() < 1e-14) {
    fit.effect = not_estimable(NotEstimable::rank_deficient);
    return fit;
  }
  const Eigen::VectorXd gamma = ldlt.solve(Z.transpose() * (wc.array() * yc.array()).matrix());
  const Eigen::VectorXd e = yc - Z * gamma;
  const Eigen::MatrixXd bread = ldlt.solve(Eigen::MatrixXd::Identity(q, q));
  // HC2: squared residuals divided by 1 - h, h = w z' (Z'WZ)^-1 z the weighted leverage.
  const Eigen::ArrayXd h = wc.array() * ((Z * bread).array() * Z.array()).rowwise().sum();
  if ((h >= 1.0 - 1e-12).any()) {
    fit.effect = not_estimable(NotEstimable::rank_deficient);
    return fit;
  }
  const Eigen::VectorXd u2 = (wc.array().square() * e.array().square() / (1.0 - h)).matrix();
  const Eigen::MatrixXd cov = bread * (Z.transpose() * u2.asDiagonal() * Z) * bread;
  fit.outcome_coef = Eigen::VectorXd::Zero(4);
  fit.outcome_coef.head(q) = gamma;
  fit.effect = t_estimate(gamma(1), std::sqrt(cov(1, 1)), static_cast<double>(nc - q), alpha);
  return fit;
}

}  // namespace trialsim
