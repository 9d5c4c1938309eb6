#pragma once
// Group-sequential boundaries by the alpha-spending approach of Lan & DeMets (Biometrika 1983):
// at looks at information fractions t_1 < ... < t_K = 1 the efficacy boundary c_k on the z
// scale spends alpha(t_k) - alpha(t_{k-1}) of the type I error, computed by the recursive
// numerical integration of Armitage, McPherson & Rowe (JRSS A 1969) in the form of Jennison &
// Turnbull (Group Sequential Methods with Applications to Clinical Trials, 2000, ch. 19):
// the sub-density of Z_k on the continuation region, propagated look to look on their grid with
// Simpson's rule. Z_1, ..., Z_K have the canonical joint distribution Z_k ~ N(drift sqrt(t_k),
// 1), Cov(Z_j, Z_k) = sqrt(t_j / t_k) (J&T ch. 3), drift = theta sqrt(I_K).
//
// Spending functions, with alpha the design's level (one-sided, or two-sided for sides = 2):
// - O'Brien-Fleming type (Lan & DeMets 1983): alpha(t) = 2 (1 - Phi(Phi^-1(1 - alpha/2) / sqrt(t)));
// - Pocock type (Lan & DeMets 1983): alpha(t) = alpha log(1 + (e - 1) t);
// - Hwang, Shih & DeCani (Stat Med 1990): alpha(t) = alpha (1 - e^(-gamma t)) / (1 - e^(-gamma)),
//   alpha t for gamma = 0;
// - user-given cumulative alpha at each look (increasing, the last equal to alpha).
// With sides = 2 the boundaries are symmetric, +-c_k, each side spending the function at level
// alpha / 2 (so P(|Z_k| >= c_k, first) = 2 (alpha/2-spending increment)), as rpact's
// getDesignGroupSequential(sided = 2) does: for O'Brien-Fleming-type spending this is
// 4 (1 - Phi(Phi^-1(1 - alpha/4) / sqrt(t))) in all, not Lan & DeMets' two-sided form.
#include <string>
#include <vector>

namespace trialsim {

enum class SpendingType { obrien_fleming, pocock, hwang_shih_decani, user };

struct SpendingFunction {
  SpendingType type = SpendingType::obrien_fleming;
  double alpha = 0.025;
  double gamma = -4.0;              // hwang_shih_decani only
  std::vector<double> cumulative;   // user only: alpha spent by each look

  // Alpha spent by information fraction t in (0, 1] (look k of K for user spending), by a
  // one-sided design.
  double spent(double t, std::size_t look) const;
  // Alpha spent in all by a design with `sides` sides (two-sided: both sides at alpha / 2 each).
  double spent(double t, std::size_t look, int sides) const;
};

// The efficacy boundaries c_1..c_K (z scale) at information fractions t (increasing, ending at
// 1), one-sided (reject at Z_k >= c_k) or two-sided (|Z_k| >= c_k). A look that may spend
// nothing (alpha(t_k) = alpha(t_{k-1})) gets +infinity. Throws std::invalid_argument for
// fractions that are not increasing in (0, 1] with t_K = 1, or spending that decreases.
std::vector<double> efficacy_bounds(const std::vector<double>& t, const SpendingFunction& f, int sides);

// With futility bounds b_1..b_{K-1} of a one-sided design that bind (the trial stops when Z_k
// < b_k, and the type I error counts on it): the efficacy boundaries computed on the
// continuation region (b_k, c_k) (Jennison & Turnbull 2000, sec. 7.2; rpact's
// bindingFutility = TRUE). Null: the futility bounds do not bind (the boundaries are those
// without futility, and stopping for futility only lowers the type I error).
std::vector<double> efficacy_bounds(const std::vector<double>& t, const SpendingFunction& f, int sides,
                                    const std::vector<double>* binding_futility);

// Probability of first crossing the efficacy boundary at each look (upper boundary only for
// sides = 1; either boundary for sides = 2) when the expected final z is `drift`.
std::vector<double> crossing_probabilities(const std::vector<double>& t, const std::vector<double>& bounds, int sides,
                                           double drift);

// Probabilities of stopping at each look for efficacy (Z_k >= c_k; two-sided |Z_k| >= c_k) and,
// for a one-sided design with futility bounds b_1..b_{K-1} (empty: none), for futility (Z_k <
// b_k, the bound taken as min(b_k, c_k)), under a drift; the final look has no futility exit
// (a trial that reaches it and does not cross c_K ends without rejecting).
struct Stopping {
  std::vector<double> efficacy, futility;
};
Stopping stopping_probabilities(const std::vector<double>& t, const std::vector<double>& upper,
                                const std::vector<double>& futility, int sides, double drift);

// Futility bounds by beta spending for a one-sided design (Pampallona, Tsiatis & Kim, Biometrics
// 2001; rpact's typeBetaSpending): under the drift theta at which the design has power 1 - beta,
// look k's futility bound b_k spends beta(t_k) - beta(t_{k-1}) of the type II error (P_theta(no
// stop before k, Z_k < b_k)), beta_f being any of the spending functions above at level beta;
// theta is the drift at which b_K = c_K, so the last look decides either way. With binding
// futility the efficacy bounds are recomputed on the continuation regions as they form;
// otherwise they are those without futility.
struct BetaSpendingDesign {
  std::vector<double> upper;     // c_1..c_K
  std::vector<double> futility;  // b_1..b_{K-1}
  double drift = 0;              // theta sqrt(I_K): the drift with power 1 - beta
};
BetaSpendingDesign beta_spending_design(const std::vector<double>& t, const SpendingFunction& alpha_f,
                                        const SpendingFunction& beta_f, bool binding);
// The same bounds at fractions t for a given drift (a design's, at the information a trial
// actually has): each look's futility bound spends its share of beta under that drift.
BetaSpendingDesign beta_spending_at(const std::vector<double>& t, const SpendingFunction& alpha_f,
                                    const SpendingFunction& beta_f, bool binding, double drift);

}  // namespace trialsim
