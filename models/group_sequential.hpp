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

// Probability of first crossing the efficacy boundary at each look (upper boundary only for
// sides = 1; either boundary for sides = 2) when the expected final z is `drift`.
std::vector<double> crossing_probabilities(const std::vector<double>& t, const std::vector<double>& bounds, int sides,
                                           double drift);

}  // namespace trialsim
