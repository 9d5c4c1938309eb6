#pragma once
// The built-in validation suite: simulated operating characteristics against closed forms and
// against what theory says about bias, each judged by its z score in Monte Carlo SEs.
#include <cstdint>
#include <atomic>
#include <functional>
#include <string>
#include <vector>

namespace trialsim {

struct ValidationCase {
  std::string name;
  std::string source;      // where the reference comes from
  double reference = 0;    // closed-form value, or 0 for a sign rule
  double simulated = 0;
  double mcse = 0;
  double z = 0;            // (simulated - reference) / mcse
  bool sign_rule = false;  // pass when z < -4 (theory predicts a negative bias), else |z| <= 4
  bool pass = false;
};

struct ValidationOptions {
  std::uint64_t replicates = 4000;  // per scenario
  std::uint64_t seed = 20190401;
  int threads = 0;
  std::function<void(const ValidationCase&)> on_case;  // called as each case finishes
  const std::atomic<bool>* cancel = nullptr;          // when set, stops with Interrupted
};

std::vector<ValidationCase> run_validation(const ValidationOptions& options);

// Closed forms used by the suite.
// Two-sided two-sample Student t test, n per arm: noncentral t with 2n - 2 df.
double t_test_power(int per_arm, double delta, double sigma, double alpha);
// Welch's test under normality, exactly: the rejection probability integrated over the
// distributions of both sample variances (no noncentral-t approximation).
double welch_power(int n1, int n2, double var1, double var2, double delta, double alpha);
// Barnett, van der Pols & Dobson (Int J Epidemiol 2005): E[T - Y | selection] for
// Y = T + W, T ~ N(mu, sb2), W ~ N(0, sw2), selecting Y < c (below) or Y >= c.
double barnett_rtm(double mu, double sb2, double sw2, double cutoff, bool below);

}  // namespace trialsim
