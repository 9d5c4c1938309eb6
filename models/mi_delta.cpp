#include "models/mi_delta.hpp"

#include "models/analysis.hpp"
#include "models/small_cholesky.hpp"
#include "models/trial_data.hpp"
#include "sim/engine/draws.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <boost/random/chi_squared_distribution.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

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

namespace {

// A patient's row: intercept, arm, baseline, [stratum], visits 1..J. The regression of visit j
// has the first c0 + j - 1 entries as predictors and the next as its response.
constexpr int kMaxColumns = 4 + static_cast<int>(kMaxVisits);
using Square = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxColumns, kMaxColumns>;
using Column = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxColumns, 1>;
using RowMap = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, 1>>;
// Entries in the lower triangle of a k x k matrix, row by row: those of the top-left j x j
// block, for any j <= k, come first.
constexpr std::size_t triangle(int k) { return static_cast<std::size_t>(k) * static_cast<std::size_t>(k + 1) / 2; }

// Weights that leave a regression (numerically) singular are drawn again.
constexpr int kMaxRedraws = 100;
// The data augmentation chain for intermittent gaps: steps before the first imputation and
// between imputations. Its rate of convergence is set by the fraction of information the gaps
// hold (Schafer 1997, ch. 3); at 40 consented, 4 visits and 20% of visits missed, results with
// 5 + 1 or 200 + 40 steps agree with these within Monte Carlo error.
constexpr int kBurnIn = 20;
constexpr int kStepsBetween = 5;

// The parameters of one visit's regression.
struct VisitFit {
  Column beta;
  double sigma = 0;
};

// Weighted least squares of one visit's regression from its cross-products.
struct Regression {
  SmallCholesky<kMaxColumns> chol;  // of X'WX
  std::array<double, kMaxColumns> beta{};
  double rss = 0;
  double df = 0;
};

// One per thread (thread_local in mi_delta), reset for each trial: its buffers keep their
// capacity from trial to trial, so a trial allocates nothing once they have grown to its size.
class Imputer {
 public:
  // Lays out the rows; status() says whether the regressions can be fitted to the trial.
  void reset(const RepeatedMeasures& d);
  NotEstimable status() const { return status_; }
  // Fills every missing visit for one imputation.
  NotEstimable impute(Stream& rng, bool first);
  // Without gaps, imputations are independent given their draws: prepare() makes the draws of
  // the next `count` (at most kBatch) imputations from rng, in the order impute() makes them,
  // and sums their cross-products in one pass; impute_prepared(b) then fills the visits of the
  // b-th of them, with the same result as impute(). A bootstrap draw that leaves a regression
  // singular is redrawn from where impute() would redraw it, and every imputation after it
  // is then made by impute() on rng.
  static constexpr std::size_t kBatch = 8;
  bool batches() const { return gappy_.empty(); }
  void prepare(Stream& rng, std::size_t count);
  NotEstimable impute_prepared(std::size_t b, Stream& rng);
  double last_visit(std::size_t i) const { return row(i)[c0_ + J_ - 1] + centre_; }
  bool imputed_last(std::size_t i) const { return last_seen_[i] < J_; }

 private:
  double* row(std::size_t i) { return z_.data() + i * static_cast<std::size_t>(cols_); }
  const double* row(std::size_t i) const { return z_.data() + i * static_cast<std::size_t>(cols_); }
  bool seen(std::size_t i, int j) const { return d_->seen[i * static_cast<std::size_t>(J_) + static_cast<std::size_t>(j)] != 0; }
  void outer_products(std::size_t i);
  template <int K>
  void outer_products_of(std::size_t begin, std::size_t end);
  void cross_products();
  NotEstimable regress(int j, Regression& r) const;
  NotEstimable weighted_fit();
  void draw_weights(Stream& rng, double* w);
  // draw_weights' values, each given to store(position in by_last_, weight).
  template <class Store>
  void draw_weights_into(Stream& rng, Store store);
  NotEstimable refit_with_redraws(Stream& rng, int first_attempt);
  void fill_after_last(const double* noise);
  void draw_after_last(Stream& rng);
  NotEstimable posterior_draw(Stream& rng);
  void fill_gaps(Stream& rng);

  const RepeatedMeasures* d_ = nullptr;
  NotEstimable status_ = NotEstimable::none;
  int J_ = 0, c0_ = 0, cols_ = 0;
  double centre_ = 0;                  // subtracted from baseline and visits, for conditioning
  std::vector<double> z_;              // n x cols_, row-major: observed, then gap-filled and imputed
  std::vector<int> last_seen_;         // per patient: last visit seen (1-based; 0: none)
  std::vector<std::size_t> by_last_;   // every patient, by decreasing last_seen_
  std::vector<std::size_t> rank_;      // per patient: its position in by_last_
  std::vector<std::size_t> open_;      // the patients with visits after their last seen, in order
  std::vector<std::size_t> count_;     // per last_seen_ value: patients with it, then where they end in by_last_
  // Per patient seen at least once, the lower triangle of row x row' over the first
  // c0 + last_seen_ entries: fixed for the trial except where gaps are filled.
  std::vector<double> outer_;
  std::vector<std::size_t> outer_at_;  // per patient: where its triangle starts in outer_
  std::vector<std::size_t> gappy_;     // patients with a missed visit before their last seen
  std::vector<double> arm01_, stratum01_;  // per patient, 0 or 1 (RepeatedMeasures::binary_columns)
  std::array<std::vector<std::size_t>, 2> arm_;  // patients of each arm
  // In by_last_ order: each patient's Bayesian bootstrap weight (1: the trial), then the squares.
  std::vector<double> weights_;
  std::vector<double> n_at_;           // per visit: sum of the weights of the patients in it
  std::vector<Square> xtx_, xtx2_;     // per visit: cross-products with the weights, squared weights
  std::vector<VisitFit> fit_;
  Regression reg_;
  std::size_t after_last_ = 0;  // visits after the last seen, over every patient: the values imputed
  std::vector<double> draws_;   // a sequence of draws from the imputation stream
  // prepare()'s batch: per imputation, its weights as weights_ holds them and its normals; the
  // weights again patient by patient (kBatch w, then kBatch w^2); per visit j, the cross-products
  // of every imputation, xtx_'s lower triangle entry by entry (kBatch w, then kBatch w^2), and
  // n_at_ (batch_sums_ ends with the running sums); the stream just after each imputation's
  // first weights.
  std::vector<double> batch_weights_, batch_noise_, batch_by_patient_, batch_sums_, batch_n_at_;
  std::vector<Stream> batch_after_weights_;
  // The batch's fits (regress_batch): per visit j, beta (kMaxColumns x kBatch) and sigma
  // (kBatch), with its factor and inverse factor as scratch; per imputation, whether every
  // visit's regression could be fitted.
  std::vector<double> batch_beta_, batch_sigma_, batch_l_, batch_m_;
  std::array<double, kBatch> batch_ok_{};
  bool sequential_ = false;  // a redraw happened: the rest of the trial's imputations by impute()
};

void Imputer::reset(const RepeatedMeasures& d) {
  d_ = &d;
  J_ = d.visits;
  centre_ = 0;
  gappy_.clear();
  by_last_.clear();
  for (auto& a : arm_) a.clear();
  const std::size_t n = d.patients();
  if (J_ < 1 || J_ > static_cast<int>(kMaxVisits) || n == 0) {
    status_ = NotEstimable::too_few_patients;
    return;
  }
  bool stratum_varies = false;
  for (std::size_t i = 0; i < n; ++i) {
    stratum_varies = stratum_varies || d.stratum[i] != d.stratum[0];
    centre_ += d.baseline[i] / static_cast<double>(n);
  }
  c0_ = stratum_varies ? 4 : 3;
  cols_ = c0_ + J_;
  z_.assign(n * static_cast<std::size_t>(cols_), 0.0);
  last_seen_.assign(n, 0);
  d.binary_columns(arm01_, stratum01_);
  for (std::size_t i = 0; i < n; ++i) {
    double* z = row(i);
    z[0] = 1.0;
    z[1] = arm01_[i];
    z[2] = d.baseline[i] - centre_;
    if (stratum_varies) z[3] = stratum01_[i];
    // A gap starts as the last reading before it: the chain's starting point.
    double carried = z[2];
    for (int j = 0; j < J_; ++j) {
      if (seen(i, j)) {
        carried = d.y[i * static_cast<std::size_t>(J_) + static_cast<std::size_t>(j)] - centre_;
        last_seen_[i] = j + 1;
      }
      z[c0_ + j] = carried;
    }
    bool gap = false;
    for (int j = 0; j < last_seen_[i]; ++j) gap = gap || !seen(i, j);
    if (gap) gappy_.push_back(i);
    arm_[d.treated[i] != 0 ? 1 : 0].push_back(i);
  }
  after_last_ = 0;
  for (std::size_t i = 0; i < n; ++i) after_last_ += static_cast<std::size_t>(J_ - last_seen_[i]);
  // Patients by decreasing last_seen_, in their order within each value (a counting sort).
  count_.assign(static_cast<std::size_t>(J_) + 1, 0);
  for (std::size_t i = 0; i < n; ++i) ++count_[static_cast<std::size_t>(last_seen_[i])];
  std::size_t start = 0;
  for (int j = J_; j >= 0; --j) {
    const std::size_t c = count_[static_cast<std::size_t>(j)];
    count_[static_cast<std::size_t>(j)] = start;
    start += c;
  }
  by_last_.resize(n);
  rank_.resize(n);
  open_.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = count_[static_cast<std::size_t>(last_seen_[i])]++;
    by_last_[k] = i;
    rank_[i] = k;
    if (last_seen_[i] < J_) open_.push_back(i);
  }
  outer_at_.resize(n);
  std::size_t size = 0;
  for (const std::size_t i : by_last_) {
    outer_at_[i] = size;
    size += triangle(c0_ + last_seen_[i]);
  }
  outer_.resize(size);
  // A last-seen group at a time (by_last_ holds them in turn, count_[j] where group j ends), so
  // that the triangle's size is a constant of the loop; last seen 0 has no products.
  std::size_t begin = 0;
  for (int j = J_; j >= 1; --j) {
    const std::size_t end = count_[static_cast<std::size_t>(j)];
    switch (c0_ + j) {
      case 4: outer_products_of<4>(begin, end); break;
      case 5: outer_products_of<5>(begin, end); break;
      case 6: outer_products_of<6>(begin, end); break;
      case 7: outer_products_of<7>(begin, end); break;
      case 8: outer_products_of<8>(begin, end); break;
      default:
        for (std::size_t q = begin; q < end; ++q) outer_products(by_last_[q]);
    }
    begin = end;
  }
  xtx_.assign(static_cast<std::size_t>(J_), Square::Zero(cols_, cols_));
  xtx2_.assign(static_cast<std::size_t>(J_), Square::Zero(cols_, cols_));
  n_at_.assign(static_cast<std::size_t>(J_), 0.0);
  fit_.resize(static_cast<std::size_t>(J_));
  weights_.assign(2 * n, 1.0);
  cross_products();
  status_ = weighted_fit();
  sequential_ = false;
}

namespace {
// The lower triangle of z z' for z's first k entries, row by row, into a; inlined, so that a
// constant k unrolls.
[[gnu::always_inline]] inline void lower_outer(const double* z, int k, double* a) {
  for (int r = 0; r < k; ++r) {
    for (int c = 0; c <= r; ++c) *a++ = z[r] * z[c];
  }
}
}  // namespace

// outer_products for the patients by_last_[begin, end), whose c0 + last_seen_ is K.
template <int K>
void Imputer::outer_products_of(std::size_t begin, std::size_t end) {
  for (std::size_t q = begin; q < end; ++q) {
    const std::size_t i = by_last_[q];
    lower_outer(row(i), K, outer_.data() + outer_at_[i]);
  }
}

// Patient i's row x row' (the lower triangle of the top-left c0 + last_seen_ block).
void Imputer::outer_products(std::size_t i) {
  if (last_seen_[i] == 0) return;
  lower_outer(row(i), c0_ + last_seen_[i], outer_.data() + outer_at_[i]);
}

namespace {

// y += P a and z += P b for a t x n block P (column-major, a patient per column): both sums in
// one pass over P, four columns at a time, so each product is loaded once for the two weights
// and each running sum is loaded and stored once per four patients.
//
// A column loop (TRIALSIM_VECTOR_LOOPS): vectorized over r only, each element's arithmetic the
// same expression in the same order on every path.
TRIALSIM_VECTOR_LOOPS void add_weighted(const double* p, std::size_t t, std::size_t n, const double* a, const double* b,
                  double* __restrict y, double* __restrict z) {
  std::size_t c = 0;
  for (; c + 4 <= n; c += 4) {
    const double* p0 = p + c * t;
    const double* p1 = p0 + t;
    const double* p2 = p1 + t;
    const double* p3 = p2 + t;
    const double a0 = a[c], a1 = a[c + 1], a2 = a[c + 2], a3 = a[c + 3];
    const double b0 = b[c], b1 = b[c + 1], b2 = b[c + 2], b3 = b[c + 3];
    for (std::size_t r = 0; r < t; ++r) {
      y[r] += (p0[r] * a0 + p1[r] * a1) + (p2[r] * a2 + p3[r] * a3);
      z[r] += (p0[r] * b0 + p1[r] * b1) + (p2[r] * b2 + p3[r] * b3);
    }
  }
  for (; c < n; ++c) {
    const double* pc = p + c * t;
    for (std::size_t r = 0; r < t; ++r) {
      y[r] += pc[r] * a[c];
      z[r] += pc[r] * b[c];
    }
  }
}

// Y += P W for a t x n block P (column-major, a patient per column, as add_weighted's) and an
// n x kBatchColumns block W (row-major, a patient per row): the cross-products of a batch of
// imputations at once, vectorized across them. Each element is add_weighted's expression in
// add_weighted's order (four patients at a time, added pairwise, then the rest one by one), so
// it has the bits add_weighted gives it imputation by imputation.
constexpr std::size_t kBatchColumns = 16;  // 2 x Imputer::kBatch: the weights, then their squares
TRIALSIM_VECTOR_LOOPS void add_weighted_batch(const double* p, std::size_t t, std::size_t n, const double* w,
                                              double* __restrict y) {
  constexpr std::size_t Q = kBatchColumns;
  std::size_t c = 0;
  for (; c + 4 <= n; c += 4) {
    const double* p0 = p + c * t;
    const double* p1 = p0 + t;
    const double* p2 = p1 + t;
    const double* p3 = p2 + t;
    const double* w0 = w + c * Q;
    const double* w1 = w0 + Q;
    const double* w2 = w1 + Q;
    const double* w3 = w2 + Q;
    for (std::size_t r = 0; r < t; ++r) {
      const double x0 = p0[r], x1 = p1[r], x2 = p2[r], x3 = p3[r];
      double* const yr = y + r * Q;
      for (std::size_t q = 0; q < Q; ++q) yr[q] += (x0 * w0[q] + x1 * w1[q]) + (x2 * w2[q] + x3 * w3[q]);
    }
  }
  for (; c < n; ++c) {
    const double* pc = p + c * t;
    const double* wc = w + c * Q;
    for (std::size_t r = 0; r < t; ++r) {
      const double x = pc[r];
      double* const yr = y + r * Q;
      for (std::size_t q = 0; q < Q; ++q) yr[q] += x * wc[q];
    }
  }
}

// One visit's regression for every imputation of a batch, lane b for imputation b, from the
// batch's cross-products s (add_weighted_batch's layout: lower-triangle entry e of X'WX at
// s[e * Q + b], of X'W^2X at s[e * Q + B + b]) and weight sums n_at: Imputer::regress's
// arithmetic, SmallCholesky's compute, trace_solve and solve with p predictors, in the same
// order lane by lane, so each lane has the bits regress gives that imputation. Writes beta
// (p x B, predictor by predictor), sigma = sqrt(RSS / df) and ok (1 where regress succeeds, 0
// where it would return a reason); l and minv are scratch of triangle(p) x B.
TRIALSIM_VECTOR_LOOPS void regress_batch(const double* s, const double* n_at, int p, double* l, double* minv,
                                         double* beta, double* sigma, double* ok) {
  constexpr std::size_t B = kBatchColumns / 2, Q = kBatchColumns;
  constexpr double tol = 1e-10, largest = std::numeric_limits<double>::max();
  const auto tri = [](int r, int c) { return static_cast<std::size_t>(r) * static_cast<std::size_t>(r + 1) / 2 + static_cast<std::size_t>(c); };
  const auto a = [&](int r, int c) { return s + tri(r, c) * Q; };          // X'WX(r, c), r >= c
  const auto a2 = [&](int r, int c) { return s + tri(r, c) * Q + B; };     // X'W^2X(r, c)
  const auto L = [&](int r, int c) { return l + tri(r, c) * B; };
  const auto M = [&](int r, int c) { return minv + tri(r, c) * B; };
  std::array<std::array<double, B>, kMaxColumns> inv{};
  std::array<double, B> good, d, t;
  for (std::size_t b = 0; b < B; ++b) good[b] = n_at[b] < p + 0.5 ? 0.0 : 1.0;
  // X'WX = L L' (SmallCholesky::compute with full_rank_cholesky's tolerance).
  for (int j = 0; j < p; ++j) {
    for (std::size_t b = 0; b < B; ++b) d[b] = a(j, j)[b];
    for (int k = 0; k < j; ++k) {
      for (std::size_t b = 0; b < B; ++b) d[b] -= L(j, k)[b] * L(j, k)[b];
    }
    for (std::size_t b = 0; b < B; ++b) {
      const bool pivot = d[b] > 0 && d[b] > tol * a(j, j)[b] && d[b] <= largest;
      good[b] = pivot ? good[b] : 0.0;
      const double ljj = std::sqrt(d[b]);
      L(j, j)[b] = ljj;
      inv[static_cast<std::size_t>(j)][b] = 1.0 / ljj;
    }
    for (int i = j + 1; i < p; ++i) {
      for (std::size_t b = 0; b < B; ++b) t[b] = a(i, j)[b];
      for (int k = 0; k < j; ++k) {
        for (std::size_t b = 0; b < B; ++b) t[b] -= L(i, k)[b] * L(j, k)[b];
      }
      for (std::size_t b = 0; b < B; ++b) L(i, j)[b] = t[b] * inv[static_cast<std::size_t>(j)][b];
    }
  }
  // df = n - tr((X'WX)^-1 X'W^2X) (SmallCholesky::trace_solve: M = L^-1, then the trace).
  for (int j = 0; j < p; ++j) {
    for (std::size_t b = 0; b < B; ++b) M(j, j)[b] = inv[static_cast<std::size_t>(j)][b];
    for (int i = j + 1; i < p; ++i) {
      for (std::size_t b = 0; b < B; ++b) t[b] = 0;
      for (int k = j; k < i; ++k) {
        for (std::size_t b = 0; b < B; ++b) t[b] += L(i, k)[b] * M(k, j)[b];
      }
      for (std::size_t b = 0; b < B; ++b) M(i, j)[b] = -t[b] * inv[static_cast<std::size_t>(i)][b];
    }
  }
  std::array<double, B> trace{};
  for (int k = 0; k < p; ++k) {
    for (int i = 0; i <= k; ++i) {
      for (std::size_t b = 0; b < B; ++b) t[b] = 0;
      for (int j = 0; j < i; ++j) {
        for (std::size_t b = 0; b < B; ++b) t[b] += a2(i, j)[b] * M(k, j)[b];
      }
      for (std::size_t b = 0; b < B; ++b) trace[b] += M(k, i)[b] * (2.0 * t[b] + a2(i, i)[b] * M(k, i)[b]);
    }
  }
  std::array<double, B> df;
  for (std::size_t b = 0; b < B; ++b) {
    df[b] = n_at[b] - trace[b];
    good[b] = df[b] > 0.5 ? good[b] : 0.0;
  }
  // beta = (X'WX)^-1 X'Wy (SmallCholesky::solve), the response's column being row p's entries.
  for (int i = 0; i < p; ++i) {
    double* const x = beta + static_cast<std::size_t>(i) * B;
    for (std::size_t b = 0; b < B; ++b) t[b] = a(p, i)[b];
    for (int k = 0; k < i; ++k) {
      for (std::size_t b = 0; b < B; ++b) t[b] -= L(i, k)[b] * beta[static_cast<std::size_t>(k) * B + b];
    }
    for (std::size_t b = 0; b < B; ++b) x[b] = t[b] * inv[static_cast<std::size_t>(i)][b];
  }
  for (int i = p - 1; i >= 0; --i) {
    double* const x = beta + static_cast<std::size_t>(i) * B;
    for (std::size_t b = 0; b < B; ++b) t[b] = x[b];
    for (int k = i + 1; k < p; ++k) {
      for (std::size_t b = 0; b < B; ++b) t[b] -= L(k, i)[b] * beta[static_cast<std::size_t>(k) * B + b];
    }
    for (std::size_t b = 0; b < B; ++b) x[b] = t[b] * inv[static_cast<std::size_t>(i)][b];
  }
  // RSS = y'Wy - b'X'Wy.
  std::array<double, B> xty{};
  for (int k = 0; k < p; ++k) {
    for (std::size_t b = 0; b < B; ++b) xty[b] += a(p, k)[b] * beta[static_cast<std::size_t>(k) * B + b];
  }
  for (std::size_t b = 0; b < B; ++b) {
    const double yy = a(p, p)[b], rss = yy - xty[b];
    good[b] = rss > 1e-12 * yy ? good[b] : 0.0;
    sigma[b] = std::sqrt(rss / df[b]);
    ok[b] = good[b];
  }
}

}  // namespace

// xtx_[j-1] = sum of w x row x row' (xtx2_: w^2) over the patients seen at or after visit j,
// top-left c0 + j block, accumulated from the last visit down; w and w^2 from weights_.
void Imputer::cross_products() {
  // Lower triangles, row by row: the patients of each last-seen value hold their products in
  // one t x n block (a patient per column), so the group adds P w and P w^2 to the running sums
  // as two matrix-vector products.
  const std::size_t n = by_last_.size();
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, 2>> w(weights_.data(), static_cast<Eigen::Index>(n), 2);
  Eigen::Matrix<double, Eigen::Dynamic, 2, 0, triangle(kMaxColumns), 2> m(static_cast<Eigen::Index>(triangle(cols_)), 2);
  m.setZero();
  std::size_t next = 0;
  double total = 0;
  for (int j = J_; j >= 1; --j) {
    const int k = c0_ + j;
    const std::size_t t = triangle(k);
    const std::size_t end = count_[static_cast<std::size_t>(j)];
    if (end > next) {
      const auto cols = static_cast<Eigen::Index>(end - next);
      add_weighted(outer_.data() + outer_at_[by_last_[next]], t, end - next, weights_.data() + next,
                   weights_.data() + n + next, m.col(0).data(), m.col(1).data());
      total += w.col(0).segment(static_cast<Eigen::Index>(next), cols).sum();
      next = end;
    }
    const auto jj = static_cast<std::size_t>(j - 1);
    Square& x = xtx_[jj];
    Square& x2 = xtx2_[jj];
    Eigen::Index e = 0;
    for (int r = 0; r < k; ++r) {
      for (int c = 0; c <= r; ++c, ++e) {
        x(r, c) = x(c, r) = m(e, 0);
        x2(r, c) = x2(c, r) = m(e, 1);
      }
    }
    n_at_[jj] = total;
  }
}

// Visit j's weighted least squares from its cross-products: beta = A^-1 b with A = X'WX, and
// the residual df that makes RSS / df unbiased for sigma^2 under the weights,
// E[r'Wr] = sigma^2 (tr W - tr(A^-1 X'W^2X)), which is n - p when every weight is 1.
NotEstimable Imputer::regress(int j, Regression& r) const {
  const auto jj = static_cast<std::size_t>(j - 1);
  const Square& c = xtx_[jj];
  const int p = c0_ + j - 1;
  if (n_at_[jj] < p + 0.5) return NotEstimable::too_few_patients;
  // full_rank_cholesky's rule (models/estimate.hpp).
  if (!r.chol.compute(c, p, 1e-10)) return NotEstimable::rank_deficient;
  r.df = n_at_[jj] - r.chol.trace_solve(xtx2_[jj]);
  if (!(r.df > 0.5)) return NotEstimable::too_few_patients;
  double xty = 0;
  for (int k = 0; k < p; ++k) r.beta[static_cast<std::size_t>(k)] = c(k, p);
  r.chol.solve(r.beta.data());
  for (int k = 0; k < p; ++k) xty += c(k, p) * r.beta[static_cast<std::size_t>(k)];
  r.rss = c(p, p) - xty;
  if (!(r.rss > 1e-12 * c(p, p))) return NotEstimable::no_variance;
  return NotEstimable::none;
}

NotEstimable Imputer::weighted_fit() {
  for (int j = 1; j <= J_; ++j) {
    if (const NotEstimable why = regress(j, reg_); why != NotEstimable::none) return why;
    VisitFit& f = fit_[static_cast<std::size_t>(j - 1)];
    f.beta = Eigen::Map<const Column>(reg_.beta.data(), c0_ + j - 1);
    f.sigma = std::sqrt(reg_.rss / reg_.df);
  }
  return NotEstimable::none;
}

// P-step of the chain: each regression's parameters from their posterior under the prior
// 1/sigma^2 given the gap-filled data, sigma^2 ~ RSS / chi^2(n - p), beta ~ N(beta_hat,
// sigma^2 (X'X)^-1) (Schafer 1997, ch. 6).
NotEstimable Imputer::posterior_draw(Stream& rng) {
  std::array<double, kMaxColumns> e{};
  for (int j = 1; j <= J_; ++j) {
    if (const NotEstimable why = regress(j, reg_); why != NotEstimable::none) return why;
    VisitFit& f = fit_[static_cast<std::size_t>(j - 1)];
    boost::random::chi_squared_distribution<double> chi(reg_.df);
    f.sigma = std::sqrt(reg_.rss / chi(rng));
    const int p = c0_ + j - 1;
    for (int k = 0; k < p; ++k) e[static_cast<std::size_t>(k)] = standard_normal(rng);
    reg_.chol.backward(e.data());  // X'X = L L': beta_hat + sigma L'^-1 e has covariance sigma^2 (X'X)^-1
    f.beta.resize(p);
    for (int k = 0; k < p; ++k) f.beta(k) = reg_.beta[static_cast<std::size_t>(k)] + f.sigma * e[static_cast<std::size_t>(k)];
  }
  return NotEstimable::none;
}

// I-step of the chain: each gap patient's gaps from their normal distribution given the
// patient's observed visits up to the last seen, under fit_. The regressions imply
// y = mu + T e with T = (I - G)^-1, G their coefficients on earlier visits, e ~ N(0, diag sigma^2).
void Imputer::fill_gaps(Stream& rng) {
  Square g = Square::Zero(J_, J_);
  for (int j = 1; j < J_; ++j) g.row(j).head(j) = fit_[static_cast<std::size_t>(j)].beta.segment(c0_, j).transpose();
  const Square i_minus_g = Square::Identity(J_, J_) - g;
  Square t = i_minus_g.triangularView<Eigen::Lower>().solve(Square::Identity(J_, J_));
  Column sd(J_);
  for (int j = 0; j < J_; ++j) sd(j) = fit_[static_cast<std::size_t>(j)].sigma;
  t = t * sd.asDiagonal();
  const Square sigma = t * t.transpose();

  Column mu(J_), r, mean, w;
  Square s_oo, s_go, cov;
  std::array<int, kMaxVisits> obs{}, gap{};
  for (const std::size_t i : gappy_) {
    double* z = row(i);
    const RowMap x(z, c0_);
    for (int j = 0; j < J_; ++j) {
      mu(j) = fit_[static_cast<std::size_t>(j)].beta.head(c0_).dot(x);
      for (int k = 0; k < j; ++k) mu(j) += g(j, k) * mu(k);
    }
    int no = 0, ng = 0;
    for (int j = 0; j < last_seen_[i]; ++j) {
      if (seen(i, j)) {
        obs[static_cast<std::size_t>(no++)] = j;
      } else {
        gap[static_cast<std::size_t>(ng++)] = j;
      }
    }
    s_oo.resize(no, no);
    s_go.resize(ng, no);
    cov.resize(ng, ng);
    r.resize(no);
    mean.resize(ng);
    w.resize(ng);
    for (int a = 0; a < no; ++a) {
      const int va = obs[static_cast<std::size_t>(a)];
      r(a) = z[c0_ + va] - mu(va);
      for (int b = 0; b < no; ++b) s_oo(a, b) = sigma(va, obs[static_cast<std::size_t>(b)]);
      for (int b = 0; b < ng; ++b) s_go(b, a) = sigma(gap[static_cast<std::size_t>(b)], va);
    }
    for (int a = 0; a < ng; ++a) {
      const int va = gap[static_cast<std::size_t>(a)];
      mean(a) = mu(va);
      for (int b = 0; b < ng; ++b) cov(a, b) = sigma(va, gap[static_cast<std::size_t>(b)]);
    }
    const Eigen::LLT<Square> oo(s_oo);
    const Square k = oo.solve(s_go.transpose());  // S_oo^-1 S_og
    mean.noalias() += k.transpose() * r;
    cov.noalias() -= s_go * k;
    const Eigen::LLT<Square> chol(cov);
    for (int a = 0; a < ng; ++a) w(a) = standard_normal(rng);
    mean.noalias() += chol.matrixL() * w;
    for (int a = 0; a < ng; ++a) z[c0_ + gap[static_cast<std::size_t>(a)]] = mean(a);
    outer_products(i);
  }
}

// One imputation's Bayesian bootstrap weights, Dirichlet(1, ..., 1) within each arm (scaled to
// the arm's size) so that the allocation stays the trial's, from rng into w in weights_'s
// layout (w by position in by_last_, then w^2).
void Imputer::draw_weights(Stream& rng, double* w) {
  const std::size_t n = by_last_.size();
  draw_weights_into(rng, [w, n](std::size_t at, double v) {
    w[at] = v;
    w[n + at] = v * v;
  });
}

template <class Store>
void Imputer::draw_weights_into(Stream& rng, Store store) {
  for (const auto& patients : arm_) {
    // The arm's exponentials in one sequence draw: the values standard_exponential gives in turn.
    double* const e = room(draws_, patients.size());
    draws::exponential_sequence(rng, patients.size(), e);
    double total = 0;
    for (std::size_t k = 0; k < patients.size(); ++k) total += e[k];
    const double scale = static_cast<double>(patients.size()) / total;
    for (std::size_t k = 0; k < patients.size(); ++k) store(rank_[patients[k]], e[k] * scale);
  }
}

// The regressions refitted under bootstrap weights, drawn again while a draw leaves one singular.
NotEstimable Imputer::refit_with_redraws(Stream& rng, int first_attempt) {
  NotEstimable why = NotEstimable::rank_deficient;
  for (int attempt = first_attempt; attempt < kMaxRedraws && why != NotEstimable::none; ++attempt) {
    draw_weights(rng, weights_.data());
    cross_products();
    why = weighted_fit();
  }
  return why;
}

// Each patient's visits after the last seen, in order, from fit_ and one normal each.
void Imputer::fill_after_last(const double* noise) {
  std::size_t next = 0;
  for (const std::size_t i : open_) {
    double* z = row(i);
    for (int j = last_seen_[i] + 1; j <= J_; ++j) {
      const VisitFit& v = fit_[static_cast<std::size_t>(j - 1)];
      const int p = c0_ + j - 1;
      z[p] = v.beta.dot(RowMap(z, p)) + v.sigma * noise[next++];
    }
  }
}

// The same, the normals drawn from rng in one sequence.
void Imputer::draw_after_last(Stream& rng) {
  double* const noise = room(draws_, after_last_);
  draws::normal_sequence(rng, after_last_, noise);
  fill_after_last(noise);
}

NotEstimable Imputer::impute(Stream& rng, bool first) {
  // Intermittent gaps: advance the chain on the trial's own data.
  if (!gappy_.empty()) {
    std::fill(weights_.begin(), weights_.end(), 1.0);
    for (int step = 0, steps = first ? kBurnIn : kStepsBetween; step < steps; ++step) {
      cross_products();
      if (const NotEstimable why = posterior_draw(rng); why != NotEstimable::none) return why;
      fill_gaps(rng);
    }
  }
  if (const NotEstimable why = refit_with_redraws(rng, 0); why != NotEstimable::none) return why;
  draw_after_last(rng);
  return NotEstimable::none;
}

void Imputer::prepare(Stream& rng, std::size_t count) {
  static_assert(kBatchColumns == 2 * kBatch, "a batch's columns: its weights, then their squares");
  if (sequential_) return;
  const std::size_t n = by_last_.size(), B = kBatch, Q = kBatchColumns;
  // The draws, in impute()'s order: each imputation's weights, then its normals. The weights go
  // straight into their places patient by patient (row k: the batch's weights, then their
  // squares; a batch of fewer than kBatch has zero weights after its last), and into weights_'s
  // layout (2n apart, so that each imputation's column has weights_'s alignment) for the sums of
  // weights, which are taken as cross_products() takes them.
  double* const weights = room(batch_weights_, count * 2 * n);
  double* const noise = room(batch_noise_, count * after_last_);
  double* const by_patient = room(batch_by_patient_, n * Q);
  if (count < B) {
    for (std::size_t k = 0; k < n; ++k) {
      for (std::size_t b = count; b < B; ++b) by_patient[k * Q + b] = by_patient[k * Q + B + b] = 0.0;
    }
  }
  batch_after_weights_.clear();
  for (std::size_t b = 0; b < count; ++b) {
    double* const w = weights + b * 2 * n;
    draw_weights_into(rng, [w, by_patient, b](std::size_t at, double v) {
      w[at] = v;
      by_patient[at * Q + b] = v;
      by_patient[at * Q + B + b] = v * v;
    });
    batch_after_weights_.push_back(rng);
    draws::normal_sequence(rng, after_last_, noise + b * after_last_);
  }
  // cross_products() for every imputation at once: the running sums (the last block of
  // batch_sums_) from the last visit down, and after each visit their top-left block as that
  // visit's cross-products (batch_sums_ from visit j's offset: triangle(c0 + j) entries).
  const std::size_t T = triangle(cols_);
  std::size_t at_end = 0;
  for (int j = 1; j <= J_; ++j) at_end += triangle(c0_ + j) * Q;
  double* const sums = room(batch_sums_, at_end + T * Q);
  double* const running = sums + at_end;
  std::fill_n(running, T * Q, 0.0);
  double* const n_at = room(batch_n_at_, static_cast<std::size_t>(J_) * B);
  std::array<double, kBatch> total{};
  std::size_t next = 0, offset = at_end;
  for (int j = J_; j >= 1; --j) {
    const std::size_t t = triangle(c0_ + j);
    const std::size_t end = count_[static_cast<std::size_t>(j)];
    if (end > next) {
      const auto cols = static_cast<Eigen::Index>(end - next);
      add_weighted_batch(outer_.data() + outer_at_[by_last_[next]], t, end - next, by_patient + next * Q, running);
      for (std::size_t b = 0; b < count; ++b) {
        // n_at_'s sum as cross_products() takes it, on the same layout.
        const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, 2>> w(weights + b * 2 * n, static_cast<Eigen::Index>(n), 2);
        total[b] += w.col(0).segment(static_cast<Eigen::Index>(next), cols).sum();
      }
      next = end;
    }
    offset -= t * Q;
    std::copy_n(running, t * Q, sums + offset);
    for (std::size_t b = 0; b < B; ++b) n_at[static_cast<std::size_t>(j - 1) * B + b] = total[b];
  }
  // weighted_fit() for every imputation at once.
  const std::size_t K = static_cast<std::size_t>(kMaxColumns);
  double* const beta = room(batch_beta_, static_cast<std::size_t>(J_) * K * B);
  double* const sigma = room(batch_sigma_, static_cast<std::size_t>(J_) * B);
  double* const l = room(batch_l_, triangle(kMaxColumns) * B);
  double* const m = room(batch_m_, triangle(kMaxColumns) * B);
  batch_ok_.fill(1.0);
  const double* at = sums;
  for (int j = 1; j <= J_; ++j) {
    const auto jj = static_cast<std::size_t>(j - 1);
    std::array<double, kBatch> ok{};
    regress_batch(at, n_at + jj * B, c0_ + j - 1, l, m, beta + jj * K * B, sigma + jj * B, ok.data());
    for (std::size_t b = 0; b < B; ++b) batch_ok_[b] = ok[b] != 0.0 ? batch_ok_[b] : 0.0;
    at += triangle(c0_ + j) * Q;
  }
}

NotEstimable Imputer::impute_prepared(std::size_t b, Stream& rng) {
  if (sequential_) return impute(rng, false);
  if (batch_ok_[b] != 0.0) {
    // This imputation's fits, as weighted_fit() leaves them.
    const std::size_t B = kBatch, K = static_cast<std::size_t>(kMaxColumns);
    for (int j = 1; j <= J_; ++j) {
      const auto jj = static_cast<std::size_t>(j - 1);
      const int p = c0_ + j - 1;
      VisitFit& f = fit_[jj];
      f.beta.resize(p);
      const double* const beta = batch_beta_.data() + jj * K * B + b;
      for (int k = 0; k < p; ++k) f.beta(k) = beta[static_cast<std::size_t>(k) * B];
      f.sigma = batch_sigma_[jj * B + b];
    }
    fill_after_last(batch_noise_.data() + b * after_last_);
    return NotEstimable::none;
  }
  // The draw left a regression singular: redrawn from the stream where impute() redraws it,
  // and impute() makes the rest of the trial's imputations from there.
  sequential_ = true;
  rng = batch_after_weights_[b];
  if (const NotEstimable why = refit_with_redraws(rng, 1); why != NotEstimable::none) return why;
  draw_after_last(rng);
  return NotEstimable::none;
}

// ANCOVA last ~ arm + baseline [+ stratum] over every randomized patient, as ancova() in
// models/analysis.cpp, for completed data sets that share one design and differ only in the
// imputed patients' outcomes: X'X is factored once per trial, the observed patients' part of
// X'y and y'y is summed once, and each imputation adds its imputed patients to those sums and
// solves the normal equations (the outcome centred on the observed mean, so that the residual
// sum of squares y'y - b'X'y loses no more than a digit to cancellation). One per thread, reset
// for each trial, its buffers reused as the Imputer's are.
class CompletedAncova {
 public:
  static constexpr int kMaxP = 4;

  void reset(const RepeatedMeasures& d) {
    status_ = NotEstimable::too_few_patients;
    n_ = d.patients();
    bool stratum_varies = false;
    std::size_t treated = 0;
    double base_mean = 0;
    for (std::size_t i = 0; i < n_; ++i) {
      stratum_varies = stratum_varies || d.stratum[i] != d.stratum[0];
      treated += d.treated[i] != 0 ? 1u : 0u;
      base_mean += d.baseline[i] / static_cast<double>(n_);
    }
    p_ = stratum_varies ? 4 : 3;
    const auto p = static_cast<std::size_t>(p_);
    if (treated == 0 || treated == n_ || n_ <= p) return;
    x_.resize(n_ * p);
    d.binary_columns(arm01_, stratum01_);
    for (std::size_t i = 0; i < n_; ++i) {
      double* x = x_.data() + i * p;
      x[0] = 1.0;
      x[1] = arm01_[i];
      x[2] = d.baseline[i] - base_mean;
      if (stratum_varies) x[3] = stratum01_[i];
    }
    const std::array<double, kMaxP * kMaxP> xtx = p == 4 ? cross_products<4>() : cross_products<3>();
    const auto lower = [&](int r, int c) { return xtx[static_cast<std::size_t>(r * kMaxP + c)]; };
    // full_rank_cholesky's rule (models/estimate.hpp).
    if (!chol_.compute(lower, p_, 1e-10)) {
      status_ = NotEstimable::rank_deficient;
      return;
    }
    std::array<double, kMaxP> e1{};
    e1[1] = 1.0;
    chol_.solve(e1.data());
    var_factor_ = e1[1];  // (X'X)^-1 at the arm coefficient
    df_ = static_cast<double>(n_ - p);
    status_ = NotEstimable::none;
  }
  NotEstimable status() const { return status_; }
  double df() const { return df_; }
  // The observed outcomes: y[i] for every patient whose outcome is not imputed.
  void observe(const double* y, const std::vector<bool>& imputed) {
    const auto p = static_cast<std::size_t>(p_);
    std::size_t count = 0;
    centre_ = 0;
    for (std::size_t i = 0; i < n_; ++i) {
      if (imputed[i]) continue;
      centre_ += y[i];
      ++count;
    }
    if (count > 0) centre_ /= static_cast<double>(count);
    base_xty_.fill(0.0);
    base_yy_ = base_y_ = 0;
    for (std::size_t i = 0; i < n_; ++i) {
      if (imputed[i]) continue;
      add(base_xty_.data(), base_yy_, base_y_, x_.data() + i * p, p, y[i] - centre_);
    }
  }
  // The arm coefficient and its variance when the imputed patients' outcomes are y[i] (the
  // observed ones as given to observe()); false on an exact fit.
  bool fit(const double* y, const std::vector<std::size_t>& imputed, double& estimate, double& variance) const {
    const auto p = static_cast<std::size_t>(p_);
    std::array<double, kMaxP> xty = base_xty_;
    double yy = base_yy_, sum = base_y_;
    if (p == 4) {
      add_imputed<4>(xty, yy, sum, y, imputed);
    } else {
      add_imputed<3>(xty, yy, sum, y, imputed);
    }
    std::array<double, kMaxP> beta = xty;
    chol_.solve(beta.data());
    double fitted = 0;
    for (std::size_t k = 0; k < p; ++k) fitted += beta[k] * xty[k];
    const double rss = yy - fitted;
    const double tss = yy - sum * sum / static_cast<double>(n_);
    if (!(rss > 1e-12 * tss)) return false;
    estimate = beta[1];
    variance = rss / df_ * var_factor_;
    return true;
  }

 private:
  // X'X's lower triangle (row r, column c <= r at r kMaxP + c), each entry summed in patient
  // order, for P columns: a compile-time count, so that the sums stay in registers.
  template <std::size_t P>
  std::array<double, kMaxP * kMaxP> cross_products() const {
    double s[P][P] = {};
    for (std::size_t i = 0; i < n_; ++i) {
      const double* x = x_.data() + i * P;
      for (std::size_t r = 0; r < P; ++r) {
        for (std::size_t c = 0; c <= r; ++c) s[r][c] += x[r] * x[c];
      }
    }
    std::array<double, kMaxP * kMaxP> xtx{};
    for (std::size_t r = 0; r < P; ++r) {
      for (std::size_t c = 0; c <= r; ++c) xtx[r * kMaxP + c] = s[r][c];
    }
    return xtx;
  }
  // add() for every imputed patient in turn, with P columns known at compile time (the sums in
  // local registers).
  template <std::size_t P>
  void add_imputed(std::array<double, kMaxP>& xty, double& yy, double& sum, const double* y,
                   const std::vector<std::size_t>& imputed) const {
    double a[P];
    for (std::size_t k = 0; k < P; ++k) a[k] = xty[k];
    double s2 = yy, s1 = sum;
    for (const std::size_t i : imputed) add(a, s2, s1, x_.data() + i * P, P, y[i] - centre_);
    for (std::size_t k = 0; k < P; ++k) xty[k] = a[k];
    yy = s2;
    sum = s1;
  }
  // One patient's terms of X'y, y'y and the sum of y; inlined, so that a constant p unrolls.
  [[gnu::always_inline]] static void add(double* xty, double& yy, double& sum, const double* x, std::size_t p, double y) {
    for (std::size_t k = 0; k < p; ++k) xty[k] += x[k] * y;
    yy += y * y;
    sum += y;
  }

  NotEstimable status_ = NotEstimable::too_few_patients;
  std::size_t n_ = 0;
  int p_ = 0;
  std::vector<double> x_;  // the design, patient by patient, p_ entries each
  std::vector<double> arm01_, stratum01_;  // per patient, 0 or 1 (RepeatedMeasures::binary_columns)
  SmallCholesky<kMaxP> chol_;
  std::array<double, kMaxP> base_xty_{};
  double base_yy_ = 0, base_y_ = 0, centre_ = 0;
  double var_factor_ = 0, df_ = 0;
};

}  // namespace

Estimate mi_delta(const RepeatedMeasures& d, const MiSettings& s, double alpha, Stream& rng) {
  thread_local CompletedAncova ancova;
  thread_local Imputer imputer;
  thread_local std::vector<double> estimates, variances, y;
  thread_local std::vector<bool> imputed;
  thread_local std::vector<std::size_t> imputed_list;
  ancova.reset(d);
  if (ancova.status() != NotEstimable::none) return not_estimable(ancova.status());
  imputer.reset(d);
  if (imputer.status() != NotEstimable::none) return not_estimable(imputer.status());
  estimates.assign(static_cast<std::size_t>(s.imputations), 0.0);
  variances.assign(estimates.size(), 0.0);
  const std::size_t n = d.patients();
  y.resize(n);
  imputed.assign(n, false);
  imputed_list.clear();
  for (std::size_t i = 0; i < n; ++i) {
    if (imputer.imputed_last(i)) {
      imputed[i] = true;
      imputed_list.push_back(i);
    } else {
      y[i] = imputer.last_visit(i);  // observed: the same in every completed data set
    }
  }
  ancova.observe(y.data(), imputed);
  const std::size_t count = estimates.size();
  for (std::size_t m = 0; m < count; ++m) {
    NotEstimable why = NotEstimable::none;
    if (s.batched && imputer.batches()) {
      const std::size_t b = m % Imputer::kBatch;
      if (b == 0) imputer.prepare(rng, std::min(Imputer::kBatch, count - m));
      why = imputer.impute_prepared(b, rng);
    } else {
      why = imputer.impute(rng, m == 0);
    }
    if (why != NotEstimable::none) return not_estimable(why);
    for (const std::size_t i : imputed_list) {
      // The MNAR shift is for patients who withdrew, not for those whose last visit an
      // interim look comes too early to see (missing completely at random).
      const bool pending = !d.pending.empty() && d.pending[i] != 0;
      const bool shifted = (s.delta_both_arms || d.treated[i] != 0) && !pending;
      y[i] = imputer.last_visit(i) + (shifted ? s.delta : 0.0);
    }
    if (!ancova.fit(y.data(), imputed_list, estimates[m], variances[m])) return not_estimable(NotEstimable::no_variance);
  }
  return rubin_combine(estimates, variances, ancova.df(), alpha);
}

}  // namespace trialsim
