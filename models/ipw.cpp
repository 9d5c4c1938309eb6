#include "models/ipw.hpp"
#include "sim/engine/lanes.hpp"

#include "models/small_cholesky.hpp"
#include "sim/engine/draws.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstddef>
#include <limits>
#include <vector>

namespace trialsim {
namespace {

constexpr int kStageColumns = 5;    // intercept, baseline, stratum, arm, last observed
constexpr int kOutcomeColumns = 4;  // intercept, arm, baseline, stratum
using StageSquare = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kStageColumns, kStageColumns>;
using StageVector = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kStageColumns, 1>;
using OutcomeSquare = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kOutcomeColumns, kOutcomeColumns>;
using OutcomeVector = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kOutcomeColumns, 1>;
using ArrayMap = Eigen::Map<Eigen::ArrayXd>;

// Per-thread buffers, reused from trial to trial: they grow to the largest trial the thread has
// analysed and are never shrunk, so a trial allocates nothing once they have.
struct Workspace {
  std::vector<double> p_complete;  // per patient
  std::vector<double> last;        // per patient: last SPP observed before the current stage
  std::vector<int> last_seen;      // per patient: last visit seen (0-based; -1: none)
  std::vector<double> treated, stratum;  // per patient: the arm and stratum as 0 or 1
  std::vector<std::uint32_t> at_risk;
  std::vector<double> cand;        // the stage's candidate columns over its at-risk patients, column-major
  std::vector<double> stay, eta, mu;
  std::vector<int> fixed;           // per at-risk patient: in the stage's fit (-1) or separated (limit 0 or 1)
  std::vector<double> sub, sub_stay;  // the stage's design and outcome without the separated patients
  std::vector<double> z, yc, wc;   // the outcome model's design (column-major), response, weights
};

Workspace& workspace() {
  thread_local Workspace ws;
  return ws;
}

template <class T>
T* sized(std::vector<T>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// One IRLS pass over the patients for a design of P columns: the weights w = mu (1 - mu) (at
// least machine epsilon), the working response w z = w eta + y - mu, and the lower triangle of
// X'WX (row by row) and X'Wz, summed four patients at a time in lanes (patient i in lane i mod
// 4, the lanes added pairwise at the end, so the bits do not depend on the vector width) and in
// registers (P is a compile-time constant, so the loops unroll).
template <int P>
[[gnu::always_inline]] inline void irls_sums_lanes(const double* x, std::size_t n, const double* y, const double* eta,
                                                   const double* mu, double* xtwx, double* xtwz) {
  constexpr auto kP = static_cast<std::size_t>(P);
  constexpr std::size_t kTriangle = kP * (kP + 1) / 2;
  Lanes a[kTriangle] = {}, b[kP] = {};
  const double eps = std::numeric_limits<double>::epsilon();
  const Lanes eps4{eps, eps, eps, eps};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    Lanes xi[kP];
    for (std::size_t c = 0; c < kP; ++c) xi[c] = load_lanes(x + c * n + i);
    const Lanes m = load_lanes(mu + i), ww = m * (1.0 - m);
    const Lanes w = ww > eps4 ? ww : eps4;
    const Lanes wz = w * load_lanes(eta + i) + (load_lanes(y + i) - m);
    std::size_t e = 0;
    for (std::size_t r = 0; r < kP; ++r) {
      const Lanes wx = w * xi[r];
      for (std::size_t c = 0; c <= r; ++c) a[e++] += wx * xi[c];
      b[r] += xi[r] * wz;
    }
  }
  double at[kTriangle][4], bt[kP][4];
  std::memcpy(at, a, sizeof at);
  std::memcpy(bt, b, sizeof bt);
  for (std::size_t j = 0; i + j < n; ++j) {
    const std::size_t k = i + j;
    double xi[kP];
    for (std::size_t c = 0; c < kP; ++c) xi[c] = x[c * n + k];
    const double ww = mu[k] * (1.0 - mu[k]);
    const double w = ww > eps ? ww : eps;
    const double wz = w * eta[k] + (y[k] - mu[k]);
    std::size_t e = 0;
    for (std::size_t r = 0; r < kP; ++r) {
      const double wx = w * xi[r];
      for (std::size_t c = 0; c <= r; ++c) at[e++][j] += wx * xi[c];
      bt[r][j] += xi[r] * wz;
    }
  }
  for (std::size_t e = 0; e < kTriangle; ++e) xtwx[e] = (at[e][0] + at[e][1]) + (at[e][2] + at[e][3]);
  for (std::size_t r = 0; r < kP; ++r) xtwz[r] = (bt[r][0] + bt[r][1]) + (bt[r][2] + bt[r][3]);
}

TRIALSIM_VECTOR_LOOPS void irls_sums(int p, const double* x, std::size_t n, const double* y, const double* eta,
                                     const double* mu, double* xtwx, double* xtwz) {
  switch (p) {
    case 1: irls_sums_lanes<1>(x, n, y, eta, mu, xtwx, xtwz); break;
    case 2: irls_sums_lanes<2>(x, n, y, eta, mu, xtwx, xtwz); break;
    case 3: irls_sums_lanes<3>(x, n, y, eta, mu, xtwx, xtwz); break;
    case 4: irls_sums_lanes<4>(x, n, y, eta, mu, xtwx, xtwz); break;
    default: irls_sums_lanes<5>(x, n, y, eta, mu, xtwx, xtwz); break;
  }
}

// mu = 1 / (1 + e^-eta) with eta clamped to [-kmax, kmax]; the exponential is draws::exp
// (vectorized where the CPU has AVX-512, the same bits anywhere). Column loops
// (TRIALSIM_VECTOR_LOOPS), the same IEEE operations per element on every path.
TRIALSIM_VECTOR_LOOPS void inverse_logit(const double* eta, std::size_t n, double kmax, double* mu) {
  TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) mu[i] = -std::min(std::max(eta[i], -kmax), kmax);
  draws::exp(mu, n, mu);
  TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) mu[i] = 1.0 / (1.0 + mu[i]);
}

// eta = X beta for p columns of x (n entries each, column c at x + c n), each entry summed over
// the columns in order.
TRIALSIM_VECTOR_LOOPS void linear_predictor(const double* x, std::size_t n, int p, const double* beta, double* eta) {
  const double b0 = beta[0];
  TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) eta[i] = x[i] * b0;
  for (int c = 1; c < p; ++c) {
    const double* xc = x + static_cast<std::size_t>(c) * n;
    const double b = beta[c];
    TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) eta[i] += xc[i] * b;
  }
}

// Logistic regression by IRLS (McCullagh & Nelder 1989, section 4.4), converged on the
// relative change in deviance as glm() does, but to 1e-10, the change taken as the step's Newton
// decrement (below). As in R's binomial family the
// linear predictor is clamped (|eta| <= 36, where the probability is 1 to machine precision)
// so that quasi-separation, in which some probabilities tend to 1, still converges.
// x: p columns of nr entries each, column c at x + c nr; the fitted probabilities are left in ws.mu.
bool logistic(const double* x, Eigen::Index nr, Eigen::Index p, const double* y, StageVector& beta, Workspace& ws) {
  static constexpr double kEtaMax = 36.0;
  // Below this Newton decrement per patient the iterates are near the optimum (six orders of
  // magnitude above the 1e-10 relative tolerance for any deviance up to 2 log 2 per patient).
  static constexpr double kDecrementPerPatient = 1e-4;
  const auto n = static_cast<std::size_t>(nr);
  double* eta = sized(ws.eta, n);
  double* mu = sized(ws.mu, n);
  ArrayMap eta_a(eta, nr), mu_a(mu, nr);
  const Eigen::Map<const Eigen::ArrayXd> y_a(y, nr);
  // With e = exp(-eta) (eta clamped), mu = 1 / (1 + e) (inverse_logit), and
  // log(1 - mu) = log(e mu) = log(mu) - eta: one logarithm per patient.
  auto deviance_now = [&] {
    return -2.0 * (mu_a.log() - (1.0 - y_a) * eta_a.max(-kEtaMax).min(kEtaMax)).sum();
  };
  beta.setZero(p);
  // |deviance| + 0.1 at the first iterate near the optimum: the scale of the relative test. Near
  // the optimum the deviance changes by less than 1e-4 per patient, so one evaluation serves.
  double scale = 0;
  bool near = false;  // whether the previous iterate was near the optimum
  // eta and mu carry over from one iteration's end to the next's start. The start is the
  // intercept-only fit, the log odds of the share who stay (the first column is the intercept),
  // where the intercept's score is already zero: about one Newton step nearer the optimum than
  // beta = 0. Where everyone stays or everyone leaves, beta = 0.
  double stays = 0;
  for (std::size_t i = 0; i < n; ++i) stays += y[i];
  const double share = stays / static_cast<double>(n);
  if (share > 0.0 && share < 1.0) beta(0) = std::log(share / (1.0 - share));
  eta_a.setConstant(beta(0));
  inverse_logit(eta, n, kEtaMax, mu);
  SmallCholesky<kStageColumns> chol;
  double lower[kStageColumns * (kStageColumns + 1) / 2];
  double rhs[kStageColumns];
  // X'WX from its lower triangle, row by row as irls_sums leaves it.
  const auto xtwx = [&](int a, int b) { return lower[a * (a + 1) / 2 + b]; };
  for (int it = 0; it < 100; ++it) {
    irls_sums(static_cast<int>(p), x, n, y, eta, mu, lower, rhs);
    if (!chol.compute(xtwx, static_cast<int>(p))) return false;
    chol.solve(rhs);
    // The Newton decrement of this step, d'(X'WX)d with d the change in beta: the deviance falls
    // by this much to second order (Boyd & Vandenberghe 2004, sec. 9.5.1), the third-order term
    // being of the order of its 3/2 power, negligible at the tolerance. So the test on the change
    // in deviance between two iterates near the optimum is taken on the decrement, and the
    // deviance (a logarithm per patient) is evaluated once, for the scale.
    double step[kStageColumns];
    double decrement = 0;
    for (int a = 0; a < static_cast<int>(p); ++a) {
      step[a] = rhs[a] - beta(a);
      decrement += xtwx(a, a) * step[a] * step[a];
      for (int b = 0; b < a; ++b) decrement += 2.0 * xtwx(a, b) * step[a] * step[b];
    }
    beta = Eigen::Map<const StageVector>(rhs, p);
    linear_predictor(x, n, static_cast<int>(p), rhs, eta);
    inverse_logit(eta, n, kEtaMax, mu);
    if (decrement > kDecrementPerPatient * static_cast<double>(n)) {
      near = false;
      continue;
    }
    if (near && decrement / scale < 1e-10) return true;
    if (!(scale > 0)) scale = std::abs(deviance_now()) + 0.1;
    near = true;
  }
  return false;
}

// The lower triangle of X'X for P columns of x (n x P, column-major): every sum in one pass over
// the rows, each still added in row order (the same bits as one sum at a time), so that the sums
// run side by side instead of each waiting on its own previous addition.
template <std::size_t P>
void cross_lower(const double* x, std::size_t n, StageSquare& xtx) {
  double s[P][P] = {};
  const double* c[P];
  for (std::size_t a = 0; a < P; ++a) c[a] = x + a * n;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t a = 0; a < P; ++a) {
      for (std::size_t b = 0; b <= a; ++b) s[a][b] += c[a][i] * c[b][i];
    }
  }
  for (std::size_t a = 0; a < P; ++a) {
    for (std::size_t b = 0; b <= a; ++b) xtx(static_cast<Eigen::Index>(a), static_cast<Eigen::Index>(b)) = s[a][b];
  }
}

// Whether the columns of x (nr x p, column-major) are linearly independent: every pivot of the
// Cholesky factorization of X'X stays above 1e-10 of its diagonal entry (a column (nearly) in
// the span of the earlier ones leaves a (nearly) zero pivot).
bool full_rank(const double* x, Eigen::Index nr, Eigen::Index p) {
  StageSquare xtx(p, p);
  const auto n = static_cast<std::size_t>(nr);
  switch (p) {
    case 1: cross_lower<1>(x, n, xtx); break;
    case 2: cross_lower<2>(x, n, xtx); break;
    case 3: cross_lower<3>(x, n, xtx); break;
    case 4: cross_lower<4>(x, n, xtx); break;
    default: cross_lower<5>(x, n, xtx); break;
  }
  return full_rank_cholesky(Eigen::LLT<StageSquare>(xtx), xtx);
}

// Z'WZ (both triangles) and Z'Wy for the outcome model's Q columns of z (m x Q, column-major),
// weights w and response y, in one pass as cross_lower: each sum in completer order.
template <std::size_t Q>
void weighted_moments(const double* z, std::size_t m, const double* w, const double* y, OutcomeSquare& ztwz,
                      OutcomeVector& ztwy) {
  double s[Q][Q] = {}, t[Q] = {};
  const double* c[Q];
  for (std::size_t a = 0; a < Q; ++a) c[a] = z + a * m;
  for (std::size_t k = 0; k < m; ++k) {
    for (std::size_t a = 0; a < Q; ++a) {
      for (std::size_t b = 0; b <= a; ++b) s[a][b] += c[a][k] * w[k] * c[b][k];
      t[a] += c[a][k] * (w[k] * y[k]);
    }
  }
  for (std::size_t a = 0; a < Q; ++a) {
    const auto ai = static_cast<Eigen::Index>(a);
    for (std::size_t b = 0; b <= a; ++b) ztwz(ai, static_cast<Eigen::Index>(b)) = ztwz(static_cast<Eigen::Index>(b), ai) = s[a][b];
    ztwy(ai) = t[a];
  }
}

// The HC2 meat of the outcome model's Q columns of z (m x Q, column-major): the lower triangle of
// sum_k z_k u_k^2 z_k' with u_k^2 = w_k^2 e_k^2 / (1 - h_k), e_k the residual at gamma and
// h_k = w_k z_k' bread z_k the weighted leverage (MacKinnon & White, J Econometrics 1985), each
// sum in completer order. False where a leverage reaches 1.
template <std::size_t Q>
bool hc2_meat(const double* z, std::size_t m, const double* yc, const double* wc, const OutcomeVector& gamma,
              const OutcomeSquare& bread, OutcomeSquare& meat) {
  double g[Q], br[Q][Q], s[Q][Q] = {};
  const double* c[Q];
  for (std::size_t a = 0; a < Q; ++a) {
    const auto ai = static_cast<Eigen::Index>(a);
    c[a] = z + a * m;
    g[a] = gamma(ai);
    for (std::size_t b = 0; b < Q; ++b) br[a][b] = bread(ai, static_cast<Eigen::Index>(b));
  }
  for (std::size_t k = 0; k < m; ++k) {
    double zk[Q];
    double e = yc[k];
    for (std::size_t a = 0; a < Q; ++a) {
      zk[a] = c[a][k];
      e -= zk[a] * g[a];
    }
    double h = 0;
    for (std::size_t a = 0; a < Q; ++a) {
      double zb = 0;
      for (std::size_t b = 0; b < Q; ++b) zb += zk[b] * br[b][a];
      h += zb * zk[a];
    }
    h *= wc[k];
    if (h >= 1.0 - 1e-12) return false;
    const double u2 = wc[k] * wc[k] * (e * e) / (1.0 - h);
    for (std::size_t a = 0; a < Q; ++a) {
      for (std::size_t b = 0; b <= a; ++b) s[a][b] += zk[a] * u2 * zk[b];
    }
  }
  for (std::size_t a = 0; a < Q; ++a) {
    for (std::size_t b = 0; b <= a; ++b) meat(static_cast<Eigen::Index>(a), static_cast<Eigen::Index>(b)) = s[a][b];
  }
  return true;
}

// The analysis; with `fit`, also its coefficients.
Estimate ipw(const RepeatedMeasures& d, double alpha, IpwFit* fit) {
  Workspace& ws = workspace();
  const std::size_t n = d.patients();
  const auto J = static_cast<std::size_t>(d.visits);
  auto seen = [&](std::size_t i, std::size_t j) { return d.seen[i * J + j] != 0; };
  int* last_seen = sized(ws.last_seen, n);
  std::size_t completers = 0;
  for (std::size_t i = 0; i < n; ++i) {
    int last_j = -1;
    for (std::size_t j = 0; j < J; ++j) last_j = seen(i, j) ? static_cast<int>(j) : last_j;
    last_seen[i] = last_j;
    completers += seen(i, J - 1) ? 1u : 0u;
  }
  if (completers < 5) return not_estimable(NotEstimable::too_few_patients);
  d.binary_columns(ws.treated, ws.stratum);
  const double* const treated = ws.treated.data();
  const double* const stratum = ws.stratum.data();
  // Still in the trial at visit j: seen at visit j or later.
  auto seen_from = [&](std::size_t i, std::size_t j) { return last_seen[i] >= static_cast<int>(j); };

  double* p_complete = sized(ws.p_complete, n);
  double* last = sized(ws.last, n);
  std::fill(p_complete, p_complete + n, 1.0);
  for (std::size_t i = 0; i < n; ++i) last[i] = d.baseline[i];
  // The lists of patients below: each patient is written at the next free entry and kept by
  // advancing past it, so entries after the last one listed are scratch.
  std::uint32_t* const at_risk_rows = sized(ws.at_risk, n);
  for (std::size_t s = 0; s < J; ++s) {
    // The patients still in the trial at the stage's start, listed without a branch per patient.
    std::size_t nr = 0;
    for (std::size_t i = 0; i < n; ++i) {
      at_risk_rows[nr] = static_cast<std::uint32_t>(i);
      nr += static_cast<std::size_t>(s == 0 || seen_from(i, s - 1));
    }
    const std::uint32_t* const at_risk = at_risk_rows;
    double* cand = sized(ws.cand, static_cast<std::size_t>(kStageColumns) * nr);
    double* stay = sized(ws.stay, nr);
    std::size_t leaves = 0;
    for (std::size_t r = 0; r < nr; ++r) {
      const std::size_t i = at_risk[r];
      cand[r] = 1.0;
      cand[nr + r] = d.baseline[i];
      cand[2 * nr + r] = stratum[i];
      cand[3 * nr + r] = treated[i];
      cand[4 * nr + r] = last[i];
      const bool stays = seen_from(i, s);
      stay[r] = static_cast<double>(stays);
      leaves += static_cast<std::size_t>(!stays);
    }
    const bool anyone_leaves = leaves > 0;
    StageVector coef = StageVector::Zero(kStageColumns);
    if (anyone_leaves) {
      // Quasi-complete separation by a binary covariate (Albert & Anderson, Biometrika 1984):
      // where every at-risk patient of one level of stratum or arm stays (or every one leaves),
      // the MLE lies at infinity. The likelihood's supremum gives those patients probability 1
      // (or 0) and fits the model without that column to the others, which is where IRLS heads
      // while it walks the coefficient out by about one unit per iteration until the
      // probabilities saturate (some 25 iterations instead of 6). The limit is taken at once,
      // level by level until no binary column separates the patients left; when the patients
      // left cannot support their model, the whole stage is fitted by IRLS as before.
      int* fixed = sized(ws.fixed, nr);  // per at-risk patient: -1 in the fit, else its limit 0 or 1
      std::fill(fixed, fixed + nr, -1);
      std::size_t active = nr, active_stays = 0;
      for (std::size_t r = 0; r < nr; ++r) active_stays += stay[r] > 0 ? 1u : 0u;
      double separated[kStageColumns] = {0, 0, 0, 0, 0};
      for (bool changed = true; changed && active_stays > 0 && active_stays < active;) {
        changed = false;
        // Per binary column (stratum, arm): the patients still in the fit at level 1 and those of
        // them who stay, counted in one pass without a branch (the levels fall at random, so a
        // branch on them would miss half the time). The columns hold exactly 0 or 1, so level 0's
        // counts are the rest of active and active_stays.
        std::size_t ones[2] = {0, 0}, ones_stay[2] = {0, 0};
        const double* const c2 = cand + 2 * nr;
        const double* const c3 = cand + 3 * nr;
        for (std::size_t r = 0; r < nr; ++r) {
          const std::size_t act = static_cast<std::size_t>(fixed[r] < 0), st = act & static_cast<std::size_t>(stay[r] > 0);
          const std::size_t a = static_cast<std::size_t>(c2[r] == 1.0), b = static_cast<std::size_t>(c3[r] == 1.0);
          ones[0] += act & a;
          ones[1] += act & b;
          ones_stay[0] += st & a;
          ones_stay[1] += st & b;
        }
        // The first level, in the order stratum 0, 1, arm 0, 1, that separates: fixed at its limit.
        for (int k = 2; k <= 3 && !changed; ++k) {
          const double* c = cand + static_cast<std::size_t>(k) * nr;
          for (int level = 0; level <= 1 && !changed; ++level) {
            const std::size_t n_in = level == 1 ? ones[k - 2] : active - ones[k - 2];
            const std::size_t n_stays = level == 1 ? ones_stay[k - 2] : active_stays - ones_stay[k - 2];
            if (n_in == 0 || n_in == active || (n_stays != 0 && n_stays != n_in)) continue;
            const int limit = n_stays == n_in ? 1 : 0;
            // A select rather than a branch: the levels fall at random.
            for (std::size_t r = 0; r < nr; ++r) fixed[r] = fixed[r] < 0 && c[r] == level ? limit : fixed[r];
            active -= n_in;
            active_stays -= n_stays;
            // The coefficient's limit: level 1 pushed towards its outcome, level 0 away from it.
            separated[k] = (limit == 1) == (level == 1) ? std::numeric_limits<double>::infinity()
                                                         : -std::numeric_limits<double>::infinity();
            changed = true;
          }
        }
      }
      // The rows of the fit: the patients not separated, with the stage's candidate columns.
      const bool reduced = active < nr;
      double* x = cand;
      double* y = stay;
      std::size_t nf = nr;
      if (reduced) {
        nf = active;
        x = sized(ws.sub, static_cast<std::size_t>(kStageColumns) * nf);
        y = sized(ws.sub_stay, nf);
        std::size_t f = 0;
        for (std::size_t r = 0; r < nr; ++r) {
          if (fixed[r] >= 0) continue;
          for (std::size_t k = 0; k < static_cast<std::size_t>(kStageColumns); ++k) x[k * nf + f] = cand[k * nr + r];
          y[f++] = stay[r];
        }
      }
      // The design's columns moved to the front of x, in order.
      auto select = [&](double* xs, std::size_t rows, int* cols) {
        Eigen::Index p = 1;
        for (int k = 1; k < kStageColumns; ++k) {
          if (k >= 4 && s == 0) continue;  // no post-baseline history yet
          const double* c = xs + static_cast<std::size_t>(k) * rows;
          if (std::all_of(c, c + rows, [&](double v) { return v == c[0]; })) continue;
          if (p != k) std::copy(c, c + rows, xs + static_cast<std::size_t>(p) * rows);
          cols[p++] = k;
        }
        return p;
      };
      int cols[kStageColumns] = {0};
      StageVector beta;
      // With separated patients: everyone left stays (or everyone leaves), so no model; or the
      // model on those left, if they can support it.
      const bool model_left = active_stays > 0 && active_stays < active;
      bool done = false;
      if (reduced && !model_left) {
        done = true;
      } else if (reduced) {
        const Eigen::Index p = select(x, nf, cols);
        if (static_cast<Eigen::Index>(nf) > p && full_rank(x, static_cast<Eigen::Index>(nf), p)) {
          if (!logistic(x, static_cast<Eigen::Index>(nf), p, y, beta, ws)) return not_estimable(NotEstimable::not_converged);
          for (Eigen::Index c = 0; c < p; ++c) coef(cols[c]) = beta(c);
          done = true;
        }
      }
      if (done) {
        const double left = active_stays == active ? 1.0 : 0.0;  // the probability when no model is fitted
        for (std::size_t r = 0, f = 0; r < nr; ++r) {
          p_complete[at_risk[r]] *= fixed[r] >= 0 ? fixed[r] : model_left ? ws.mu[f++] : left;
        }
        for (int k = 2; k <= 3; ++k) {
          if (separated[k] != 0) coef(k) = separated[k];
        }
      } else {
        // No separation, or the patients left cannot support the model: the whole stage.
        const Eigen::Index p = select(cand, nr, cols);
        const auto nri = static_cast<Eigen::Index>(nr);
        if (nri <= p || !full_rank(cand, nri, p)) return not_estimable(NotEstimable::rank_deficient);
        if (!logistic(cand, nri, p, stay, beta, ws)) return not_estimable(NotEstimable::not_converged);
        for (Eigen::Index c = 0; c < p; ++c) coef(cols[c]) = beta(c);
        for (std::size_t r = 0; r < nr; ++r) p_complete[at_risk[r]] *= ws.mu[r];
      }
    }
    if (fit != nullptr) fit->stage_coef.emplace_back(coef);
    // The history the next stage conditions on (none after the last).
    if (s + 1 < J) {
      for (std::size_t i = 0; i < n; ++i) last[i] = seen(i, s) ? d.y[i * J + s] : last[i];
    }
  }

  // Weighted ANCOVA on completers with the HC2 sandwich.
  // The completers, listed without a branch per patient (the stages' list is free by now).
  std::uint32_t* const completer_rows = at_risk_rows;
  std::size_t listed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    completer_rows[listed] = static_cast<std::uint32_t>(i);
    listed += static_cast<std::size_t>(seen(i, J - 1));
  }
  bool stratum_varies = false, arm0 = false, arm1 = false;
  int first_stratum = -1;
  for (std::size_t c = 0; c < listed; ++c) {
    const std::size_t i = completer_rows[c];
    if (!(p_complete[i] > 1e-8)) return not_estimable(NotEstimable::not_converged);
    if (first_stratum < 0) first_stratum = d.stratum[i];
    stratum_varies = stratum_varies || d.stratum[i] != first_stratum;
    arm1 = arm1 || treated[i] != 0.0;
    arm0 = arm0 || treated[i] == 0.0;
  }
  if (!arm0 || !arm1) return not_estimable(NotEstimable::too_few_patients);
  const Eigen::Index q = stratum_varies ? 4 : 3;
  const auto nc = static_cast<Eigen::Index>(completers);
  if (nc <= q) return not_estimable(NotEstimable::too_few_patients);
  const std::size_t m = completers;
  double* z = sized(ws.z, static_cast<std::size_t>(kOutcomeColumns) * m);  // column-major, column c at z + c m
  double* yc = sized(ws.yc, m);
  double* wc = sized(ws.wc, m);
  for (std::size_t r = 0; r < m; ++r) {
    const std::size_t i = completer_rows[r];
    z[r] = 1.0;
    z[m + r] = treated[i];
    z[2 * m + r] = d.baseline[i];
    z[3 * m + r] = stratum[i];
    yc[r] = d.y[i * J + J - 1];
    wc[r] = 1.0 / p_complete[i];
  }
  OutcomeSquare ztwz(q, q);
  OutcomeVector ztwy(q);
  if (q == 4) {
    weighted_moments<4>(z, m, wc, yc, ztwz, ztwy);
  } else {
    weighted_moments<3>(z, m, wc, yc, ztwz, ztwy);
  }
  const Eigen::LDLT<OutcomeSquare> ldlt(ztwz);
  if (ldlt.info() != Eigen::Success || ldlt.rcond() < 1e-14) return not_estimable(NotEstimable::rank_deficient);
  const OutcomeVector gamma = ldlt.solve(ztwy);
  const OutcomeSquare bread = ldlt.solve(OutcomeSquare::Identity(q, q));
  // HC2: squared residuals divided by 1 - h, h = w z' (Z'WZ)^-1 z the weighted leverage.
  OutcomeSquare meat = OutcomeSquare::Zero(q, q);
  const bool leverage_ok = q == 4 ? hc2_meat<4>(z, m, yc, wc, gamma, bread, meat) : hc2_meat<3>(z, m, yc, wc, gamma, bread, meat);
  if (!leverage_ok) return not_estimable(NotEstimable::rank_deficient);
  // cov(1, 1) of bread meat bread.
  double var = 0;
  for (Eigen::Index a = 0; a < q; ++a) {
    double bm = 0;
    for (Eigen::Index b = 0; b < q; ++b) bm += bread(1, b) * (b <= a ? meat(a, b) : meat(b, a));
    var += bm * bread(a, 1);
  }
  if (fit != nullptr) {
    fit->outcome_coef = Eigen::VectorXd::Zero(kOutcomeColumns);
    fit->outcome_coef.head(q) = gamma;
  }
  return t_estimate(gamma(1), std::sqrt(var), static_cast<double>(nc - q), alpha);
}

}  // namespace

IpwFit fit_ipw_ancova(const RepeatedMeasures& d, double alpha) {
  IpwFit fit;
  fit.effect = ipw(d, alpha, &fit);
  return fit;
}

Estimate ipw_ancova(const RepeatedMeasures& d, double alpha) { return ipw(d, alpha, nullptr); }

}  // namespace trialsim
