#include "models/mi_delta.hpp"

#include "models/analysis.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <boost/random/chi_squared_distribution.hpp>
#include <boost/random/normal_distribution.hpp>

#include <cmath>

namespace trialsim {

Estimate rubin_combine(const std::vector<double>& q, const std::vector<double>& u, double df_complete, double alpha) {
  Estimate e;
  const auto m = static_cast<double>(q.size());
  if (q.size() < 2) return e;
  double qbar = 0, ubar = 0;
  for (std::size_t k = 0; k < q.size(); ++k) {
    qbar += q[k] / m;
    ubar += u[k] / m;
  }
  double b = 0;
  for (const double v : q) b += (v - qbar) * (v - qbar) / (m - 1);
  const double t = ubar + (1 + 1 / m) * b;
  if (!(t > 0) || !std::isfinite(t)) {
    e.status = NotEstimable::no_variance;
    return e;
  }
  double df = df_complete;
  if (b > 0) {
    // Barnard & Rubin (1999): nu = 1 / (1/nu_old + 1/nu_obs).
    const double gamma = (1 + 1 / m) * b / t;
    const double nu_old = (m - 1) / (gamma * gamma);
    const double nu_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - gamma);
    df = 1.0 / (1.0 / nu_old + 1.0 / nu_obs);
  }
  return t_estimate(qbar, std::sqrt(t), df, alpha);
}

Estimate mi_delta(const RepeatedMeasures& d, const MiSettings& s, double alpha, Stream& rng) {
  // Imputation uses the fit only, not the effect's df, so the cheapest rule will do.
  return mi_delta(d, fit_mmrm(d, alpha, MmrmDf::satterthwaite_expected), s, alpha, rng);
}

Estimate mi_delta(const RepeatedMeasures& d, const MmrmFit& fit, const MiSettings& s, double alpha, Stream& rng) {
  if (fit.status != NotEstimable::none) return not_estimable(fit.status);
  const int J = d.visits;
  const auto q = fit.beta.size();
  const bool has_stratum = q == 3 * J + 1;
  const double nu = fit.patients - (has_stratum ? 4 : 3);
  if (!(nu > J + 1)) {
    return not_estimable(NotEstimable::too_few_patients);
  }
  const Eigen::LLT<Eigen::MatrixXd> beta_chol(fit.beta_cov);
  const Eigen::LLT<Eigen::MatrixXd> scale_chol((nu * fit.sigma).inverse());
  if (beta_chol.info() != Eigen::Success || scale_chol.info() != Eigen::Success) {
    return not_estimable(NotEstimable::rank_deficient);
  }
  const Eigen::MatrixXd beta_l = beta_chol.matrixL();
  const Eigen::MatrixXd scale_l = scale_chol.matrixL();

  boost::random::normal_distribution<double> normal;
  const std::size_t n = d.patients();
  const auto JJ = static_cast<std::size_t>(J);
  const std::size_t last = JJ - 1;
  std::vector<double> y(n), base(d.baseline);
  std::vector<std::int8_t> arm(d.treated), stratum(d.stratum);
  std::vector<double> estimates, variances;
  double df_complete = 0;
  for (int imp = 0; imp < s.imputations; ++imp) {
    // Sigma* = W^-1 with W ~ Wishart(nu, (nu Sigma_hat)^-1) by the Bartlett decomposition.
    Eigen::MatrixXd a = Eigen::MatrixXd::Zero(J, J);
    for (int i = 0; i < J; ++i) {
      boost::random::chi_squared_distribution<double> chi(nu - i);
      a(i, i) = std::sqrt(chi(rng));
      for (int j = 0; j < i; ++j) a(i, j) = normal(rng);
    }
    const Eigen::MatrixXd la = scale_l * a;
    const Eigen::MatrixXd sigma = (la * la.transpose()).inverse();
    Eigen::VectorXd z(q);
    for (Eigen::Index k = 0; k < q; ++k) z(k) = normal(rng);
    const Eigen::VectorXd beta = fit.beta + beta_l * z;

    for (std::size_t i = 0; i < n; ++i) {
      if (d.seen[i * JJ + last]) {
        y[i] = d.y[i * JJ + last];
        continue;
      }
      auto mean_at = [&](std::size_t j) {
        const auto jj = static_cast<Eigen::Index>(j);
        return beta(jj) + beta(J + jj) * (d.treated[i] != 0 ? 1.0 : 0.0) + beta(2 * J + jj) * d.baseline[i] +
               (has_stratum ? beta(3 * J) * (d.stratum[i] != 0 ? 1.0 : 0.0) : 0.0);
      };
      // Conditional normal of the last visit given the observed earlier ones.
      std::vector<Eigen::Index> obs;
      for (std::size_t j = 0; j < last; ++j) {
        if (d.seen[i * JJ + j]) obs.push_back(static_cast<Eigen::Index>(j));
      }
      const auto F = static_cast<Eigen::Index>(last);
      double cond_mean = mean_at(last), cond_var = sigma(F, F);
      if (!obs.empty()) {
        const auto k = static_cast<Eigen::Index>(obs.size());
        Eigen::MatrixXd soo(k, k);
        Eigen::VectorXd sfo(k), resid(k);
        for (Eigen::Index r = 0; r < k; ++r) {
          for (Eigen::Index c = 0; c < k; ++c) soo(r, c) = sigma(obs[static_cast<std::size_t>(r)], obs[static_cast<std::size_t>(c)]);
          sfo(r) = sigma(F, obs[static_cast<std::size_t>(r)]);
          const auto j = static_cast<std::size_t>(obs[static_cast<std::size_t>(r)]);
          resid(r) = d.y[i * JJ + j] - mean_at(j);
        }
        const Eigen::VectorXd w = soo.llt().solve(sfo);
        cond_mean += w.dot(resid);
        cond_var -= w.dot(sfo);
      }
      const bool shifted = s.delta_both_arms || d.treated[i] != 0;
      y[i] = cond_mean + std::sqrt(std::max(0.0, cond_var)) * normal(rng) + (shifted ? s.delta : 0.0);
    }
    const Estimate e = ancova(y, base, arm, stratum, alpha);
    if (!e.estimable()) return e;
    estimates.push_back(e.estimate);
    variances.push_back(e.se * e.se);
    df_complete = e.df;
  }
  return rubin_combine(estimates, variances, df_complete, alpha);
}

}  // namespace trialsim
