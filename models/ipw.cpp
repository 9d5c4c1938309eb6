#include "models/ipw.hpp"

#include <Eigen/Dense>
#include <boost/math/distributions/students_t.hpp>

#include <algorithm>
#include <array>
#include <cmath>

namespace trialsim {
namespace {

Estimate not_estimable(NotEstimable why) {
  Estimate e;
  e.status = why;
  return e;
}

bool varies(const std::vector<double>& v) {
  return std::any_of(v.begin(), v.end(), [&](double x) { return x != v.front(); });
}

}  // namespace

IpwFit fit_ipw_ancova(const IpwData& d, double alpha) {
  IpwFit fit;
  fit.logit_coef = Eigen::VectorXd::Zero(6);
  const std::size_t n = d.patients();
  std::size_t completers = 0;
  for (const auto c : d.completed) completers += c != 0 ? 1u : 0u;
  if (completers < 5) {
    fit.effect = not_estimable(NotEstimable::too_few_patients);
    return fit;
  }

  // With monotone dropout nobody unseen at every intermediate visit completes: the seen
  // indicator separates completion and its coefficient diverges. The maximum-likelihood limit
  // gives those patients P(complete) = 0, and as non-completers they carry no weight, so the
  // model is fitted among the patients seen at an intermediate visit, without the indicator.
  bool unseen_complete = false, any_unseen = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (d.seen_intermediate[i]) continue;
    any_unseen = true;
    unseen_complete = unseen_complete || d.completed[i] != 0;
  }
  const bool drop_unseen = any_unseen && !unseen_complete;
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < n; ++i) {
    if (!(drop_unseen && !d.seen_intermediate[i])) rows.push_back(i);
  }

  // Completion model columns; constant or redundant ones are left out.
  std::array<std::vector<double>, 6> cand;
  for (const std::size_t i : rows) {
    cand[0].push_back(1.0);
    cand[1].push_back(d.baseline[i]);
    cand[2].push_back(d.stratum[i] != 0 ? 1.0 : 0.0);
    cand[3].push_back(d.treated[i] != 0 ? 1.0 : 0.0);
    cand[4].push_back(d.last_observed[i]);
    cand[5].push_back(d.seen_intermediate[i] != 0 ? 1.0 : 0.0);
  }
  const bool any_intermediate = std::any_of(rows.begin(), rows.end(), [&](std::size_t i) { return d.seen_intermediate[i] != 0; });
  std::vector<int> cols{0};
  for (int k = 1; k < 6; ++k) {
    if (!varies(cand[static_cast<std::size_t>(k)])) continue;
    if (k == 4 && !any_intermediate) continue;  // last_observed is then the baseline itself
    cols.push_back(k);
  }
  std::vector<double> weight(n, 1.0);
  std::size_t completers_in_rows = 0;
  for (const std::size_t i : rows) completers_in_rows += d.completed[i] != 0 ? 1u : 0u;
  if (completers_in_rows < rows.size()) {
    const auto p = static_cast<Eigen::Index>(cols.size());
    const auto nr = static_cast<Eigen::Index>(rows.size());
    Eigen::MatrixXd X(nr, p);
    Eigen::VectorXd y(nr);
    for (Eigen::Index r = 0; r < nr; ++r) {
      for (Eigen::Index c = 0; c < p; ++c) {
        X(r, c) = cand[static_cast<std::size_t>(cols[static_cast<std::size_t>(c)])][static_cast<std::size_t>(r)];
      }
      y(r) = d.completed[rows[static_cast<std::size_t>(r)]] != 0 ? 1.0 : 0.0;
    }
    if (Eigen::ColPivHouseholderQR<Eigen::MatrixXd>(X).rank() < p) {
      fit.effect = not_estimable(NotEstimable::rank_deficient);
      return fit;
    }
    // IRLS for the logistic model (McCullagh & Nelder 1989, section 4.4), converged on the
    // relative change in deviance as glm() does, but to 1e-10. As in R's binomial family the
    // linear predictor is clamped (|eta| <= 36, where the probability is 1 to machine
    // precision), so that quasi-separation, in which some patients' probability of completing
    // tends to 1 and their weight to 1, still converges.
    static constexpr double kEtaMax = 36.0;
    auto inv_logit = [](const Eigen::VectorXd& eta) -> Eigen::VectorXd {
      return (1.0 + (-eta.array().max(-kEtaMax).min(kEtaMax)).exp()).inverse().matrix();
    };
    Eigen::VectorXd beta = Eigen::VectorXd::Zero(p);
    double deviance = std::numeric_limits<double>::infinity();
    bool converged = false;
    Eigen::VectorXd mu(nr);
    for (fit.iterations = 1; fit.iterations <= 100; ++fit.iterations) {
      const Eigen::VectorXd eta = X * beta;
      mu = inv_logit(eta);
      const Eigen::ArrayXd w = (mu.array() * (1.0 - mu.array())).max(std::numeric_limits<double>::epsilon());
      const Eigen::VectorXd z = eta.array() + (y - mu).array() / w;
      const Eigen::MatrixXd xtwx = X.transpose() * w.matrix().asDiagonal() * X;
      const Eigen::LLT<Eigen::MatrixXd> llt(xtwx);
      if (llt.info() != Eigen::Success) break;
      beta = llt.solve(X.transpose() * (w * z.array()).matrix());
      mu = inv_logit(X * beta);
      double dev = 0;
      for (Eigen::Index i = 0; i < mu.size(); ++i) dev -= 2.0 * (y(i) > 0 ? std::log(mu(i)) : std::log1p(-mu(i)));
      if (std::abs(dev - deviance) / (std::abs(dev) + 0.1) < 1e-10) {
        converged = true;
        break;
      }
      deviance = dev;
    }
    // Separation sends some completer's probability to 0 and its weight to infinity.
    double smallest = 1.0;
    for (Eigen::Index r = 0; r < nr; ++r) {
      if (y(r) > 0) smallest = std::min(smallest, mu(r));
    }
    if (!converged || !(smallest > 1e-8)) {
      fit.effect = not_estimable(NotEstimable::not_converged);
      return fit;
    }
    for (Eigen::Index c = 0; c < p; ++c) fit.logit_coef(cols[static_cast<std::size_t>(c)]) = beta(c);
    for (Eigen::Index r = 0; r < nr; ++r) weight[rows[static_cast<std::size_t>(r)]] = 1.0 / mu(r);
  }

  // Weighted ANCOVA on completers with the HC0 sandwich.
  bool stratum_varies = false, arm0 = false, arm1 = false;
  std::int8_t first_stratum = -1;
  for (std::size_t i = 0; i < n; ++i) {
    if (!d.completed[i]) continue;
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
    if (!d.completed[i]) continue;
    Z(r, 0) = 1.0;
    Z(r, 1) = d.treated[i] != 0 ? 1.0 : 0.0;
    Z(r, 2) = d.baseline[i];
    if (stratum_varies) Z(r, 3) = d.stratum[i] != 0 ? 1.0 : 0.0;
    yc(r) = d.final_value[i];
    wc(r) = weight[i];
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
  const Eigen::VectorXd we = (wc.array() * e.array()).matrix();
  const Eigen::MatrixXd meat = Z.transpose() * we.cwiseAbs2().asDiagonal() * Z;
  const Eigen::MatrixXd cov = bread * meat * bread;
  fit.outcome_coef = Eigen::VectorXd::Zero(4);
  fit.outcome_coef.head(q) = gamma;
  const double se = std::sqrt(cov(1, 1));
  if (!(se > 0.0) || !std::isfinite(se)) {
    fit.effect = not_estimable(NotEstimable::no_variance);
    return fit;
  }
  const double df = static_cast<double>(nc - q);
  const boost::math::students_t dist(df);
  const double qt = boost::math::quantile(boost::math::complement(dist, alpha / 2.0));
  fit.effect.status = NotEstimable::none;
  fit.effect.estimate = gamma(1);
  fit.effect.se = se;
  fit.effect.df = df;
  fit.effect.ci_low = gamma(1) - qt * se;
  fit.effect.ci_high = gamma(1) + qt * se;
  fit.effect.p = std::min(1.0, 2.0 * boost::math::cdf(boost::math::complement(dist, std::abs(gamma(1) / se))));
  return fit;
}

}  // namespace trialsim
