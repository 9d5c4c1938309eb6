#include "sim/design/validation.hpp"

#include "models/group_sequential.hpp"
#include "models/interim.hpp"
#include "sim/engine/engine.hpp"
#include "sim/io/scenario.hpp"

#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/non_central_t.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <boost/math/quadrature/gauss_kronrod.hpp>

#include <cmath>
#include <limits>
#include <sstream>

namespace trialsim {

double t_test_power(int per_arm, double delta, double sigma, double alpha) {
  const double df = 2.0 * per_arm - 2;
  const double ncp = delta / (sigma * std::sqrt(2.0 / per_arm));
  const double q = boost::math::quantile(boost::math::complement(boost::math::students_t(df), alpha / 2));
  const boost::math::non_central_t nct(df, ncp);
  return boost::math::cdf(boost::math::complement(nct, q)) + boost::math::cdf(nct, -q);
}

// One-sided: H0 effect <= margin rejected when t = (diff - margin) / SE > t_{1-alpha}(df); the
// statistic is noncentral t with ncp (delta - margin) / (sigma sqrt(2/n)) (Chow, Shao & Wang,
// Sample Size Calculations in Clinical Research, 2nd ed. 2008, sec. 3.2).
double one_sided_t_power(int per_arm, double delta, double margin, double sigma, double alpha) {
  const double df = 2.0 * per_arm - 2;
  const double ncp = (delta - margin) / (sigma * std::sqrt(2.0 / per_arm));
  const double q = boost::math::quantile(boost::math::complement(boost::math::students_t(df), alpha));
  return boost::math::cdf(boost::math::complement(boost::math::non_central_t(df, ncp), q));
}

double welch_power(int n1, int n2, double var1, double var2, double delta, double alpha) {
  // Mean difference D ~ N(delta, a + b), independent of the sample variances
  // S_i^2 = var_i U_i / k_i, U_i ~ chi2(k_i). Given them, Welch rejects when
  // |D| > t_{1 - alpha/2}(nu) sqrt(V) with V and nu its own estimates.
  const double a = var1 / n1, b = var2 / n2, sd = std::sqrt(a + b);
  const double k1 = n1 - 1.0, k2 = n2 - 1.0;
  const boost::math::chi_squared c1(k1), c2(k2);
  const boost::math::normal n01;
  using Quad = boost::math::quadrature::gauss_kronrod<double, 31>;
  auto outer = [&](double p1) {
    const double v1 = a * boost::math::quantile(c1, p1) / k1;
    auto inner = [&](double p2) {
      const double v2 = b * boost::math::quantile(c2, p2) / k2;
      const double v = v1 + v2;
      const double nu = v * v / (v1 * v1 / k1 + v2 * v2 / k2);
      const double q = boost::math::quantile(boost::math::complement(boost::math::students_t(nu), alpha / 2)) * std::sqrt(v);
      return boost::math::cdf(boost::math::complement(n01, (q - delta) / sd)) + boost::math::cdf(n01, (-q - delta) / sd);
    };
    return Quad::integrate(inner, 0.0, 1.0, 8, 1e-10);
  };
  return Quad::integrate(outer, 0.0, 1.0, 8, 1e-9);
}

double barnett_rtm(double mu, double sb2, double sw2, double cutoff, bool below) {
  const double s = std::sqrt(sb2 + sw2);
  const double z = (cutoff - mu) / s;
  const boost::math::normal n01;
  const double phi = boost::math::pdf(n01, z);
  return below ? sw2 / s * phi / boost::math::cdf(n01, z)
               : -sw2 / s * phi / boost::math::cdf(boost::math::complement(n01, z));
}

namespace {

Scenario scenario(const std::string& toml, const std::string& name) {
  ConfigReader in = ConfigReader::from_string(toml, "validation:" + name);
  return Scenario::read(in);
}

// Final SPP exactly normal, variance 100 + 36 + 25 = 161 (+ effect_sd^2 on MgO), n per arm,
// no cutoff, no dropout, no covariate shifts.
std::string plain(int per_arm, double effect, double effect_sd = 0.0, double diabetes_prob = 0.616,
                  double nonadherence = 0.0, const std::string& trial_keys = "") {
  std::ostringstream t;
  t << "[trial]\nconsented = " << 2 * per_arm << "\nmonths = [0, 12]\n" << trial_keys
    << "[population]\nprior_mg_prob = 0.0\ndiabetes_prob = " << diabetes_prob << "\n"
    << "[spp]\nsd_between = 10.0\nsd_biological = 6.0\nsd_measurement = 5.0\ndiabetes_shift = 0.0\n"
    << "age_shift_per_10y = 0.0\nsd_slope_per_year = 0.0\n"
    << "[screening]\npre_baseline_loss = 0.0\n"
    << "[randomization]\nmethod = \"block\"\nblock_sizes = [" << 2 * per_arm << "]\n"
    << "[treatment]\neffect_mmHg = " << effect << "\neffect_sd_mmHg = " << effect_sd
    << "\nnonadherence_prob = " << nonadherence << "\n"
    << "[dropout]\ndeath_per_year = 0.0\ntransfer_per_year = 0.0\nae_per_year = 0.0\n"
    << "[analysis]\nmethods = [\"completers_ttest\", \"completers_welch\", \"ancova\"]\n";
  return t.str();
}

// Baseline = one (or k) readings with T ~ N(60, 100), biological SD 8 (or sd_bio), noise SD 5.
std::string rtm_design(const std::string& screening, double sd_bio = 8.0, double sd_slope_per_year = 0.0) {
  std::ostringstream t;
  t << "[trial]\nconsented = 150\n[population]\nprior_mg_prob = 0.0\n"
    << "[spp]\nmean = 60.0\nsd_between = 10.0\nsd_biological = " << sd_bio
    << "\nsd_measurement = 5.0\ndiabetes_shift = 0.0\nage_shift_per_10y = 0.0\ndrift_per_year = 0.0\n"
    << "sd_slope_per_year = " << sd_slope_per_year << "\n[screening]\npre_baseline_loss = 0.0\n" << screening
    << "\n[dropout]\ndeath_per_year = 0.0\ntransfer_per_year = 0.0\nae_per_year = 0.0\n"
    << "[analysis]\nmethods = [\"completers_ttest\"]\n";
  return t.str();
}

// The seed trial's design with dropout of the given kind.
std::string dropout_design(const std::string& dropout, double effect, const std::string& trial = "",
                           const std::string& treatment = "") {
  std::ostringstream t;
  if (!trial.empty()) t << "[trial]\n" << trial << "\n";
  t << "[screening]\nentry_max = 80.0\npre_baseline_loss = 0.0777\n[treatment]\n" << treatment
    << (treatment.empty() ? "" : "\n") << "effect_mmHg = " << effect
    << "\n[dropout]\n" << dropout << "\n[analysis]\nmi_imputations = 10\n";
  return t.str();
}

// configs/null_trial.toml at 66 consented (about 59 randomized) with visits every 3 months: four
// post-baseline visits, MCAR dropout, no effect, only the MMRM with the df rule `mmrm_df`.
std::string small_mmrm_design(const std::string& mmrm_df) {
  std::ostringstream t;
  t << "[trial]\nconsented = 66\nmonths = [0, 3, 6, 9, 12]\n"
    << "[screening]\nentry_measurements = 1\nseparate_baseline = false\npre_baseline_loss = 0.0777\n"
    << "[treatment]\neffect_mmHg = 0.0\n"
    << "[dropout]\ndeath_per_year = 0.065\ntransfer_per_year = 0.025\nae_per_year = 0.19\nspp_hazard_ratio_per_10 = 1.0\n"
    << "[analysis]\nmethods = [\"mmrm\"]\nmmrm_df = \"" << mmrm_df << "\"\n";
  return t.str();
}

// The null scenario (configs/null_trial.toml: no cutoff, dropout unrelated to SPP, no effect)
// at 40 consented (about 35 randomized) with 4 post-baseline visits, analysed by mi_delta.
std::string small_mi_design() {
  return "[trial]\nconsented = 40\nmonths = [0, 3, 6, 9, 12]\n[dropout]\nspp_hazard_ratio_per_10 = 1.0\n"
         "[analysis]\nmethods = [\"mi_delta\"]\n";
}

// Group-sequential: per_arm patients per arm consented uniformly over 12 months, blocks of 4,
// no cutoff, no dropout, one follow-up visit at month 12 (final SPP variance 161), the
// completers t test at each look; `interim` is the [interim] section and `trial` more trial keys.
std::string sequential_design(int per_arm, double effect, const std::string& trial, const std::string& interim) {
  std::ostringstream t;
  t << "[trial]\nconsented = " << 2 * per_arm << "\nmonths = [0, 12]\naccrual_months = 12.0\n" << trial
    << "[population]\nprior_mg_prob = 0.0\n"
    << "[spp]\nsd_between = 10.0\nsd_biological = 6.0\nsd_measurement = 5.0\ndiabetes_shift = 0.0\n"
    << "age_shift_per_10y = 0.0\nsd_slope_per_year = 0.0\n"
    << "[screening]\npre_baseline_loss = 0.0\n"
    << "[randomization]\nmethod = \"block\"\nblock_sizes = [4]\n"
    << "[treatment]\neffect_mmHg = " << effect << "\n"
    << "[dropout]\ndeath_per_year = 0.0\ntransfer_per_year = 0.0\nae_per_year = 0.0\n"
    << "[analysis]\nmethods = [\"completers_ttest\"]\n"
    << "[interim]\n" << interim;
  return t.str();
}

class Suite {
 public:
  explicit Suite(const ValidationOptions& o) : o_(o) {}

  SummaryAccumulator simulate(const Scenario& s) const {
    EngineOptions e;
    e.replicates = o_.replicates;
    e.seed = o_.seed;
    e.threads = o_.threads;
    e.cancel = o_.cancel;
    return run_replicates(s, e);
  }

  void add(std::string name, std::string source, double reference, double simulated, double mcse, bool sign_rule = false) {
    ValidationCase c{std::move(name), std::move(source), reference, simulated, mcse, 0, sign_rule, false};
    c.z = mcse > 0 ? (simulated - reference) / mcse : (simulated == reference ? 0.0 : std::numeric_limits<double>::infinity());
    c.pass = sign_rule ? c.z < -4.0 : std::abs(c.z) <= 4.0;
    if (o_.on_case) o_.on_case(c);
    cases_.push_back(std::move(c));
  }
  double n() const { return static_cast<double>(o_.replicates); }
  std::vector<ValidationCase> take() { return std::move(cases_); }

 private:
  const ValidationOptions& o_;
  std::vector<ValidationCase> cases_;
};

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

std::vector<ValidationCase> run_validation(const ValidationOptions& options) {
  Suite suite(options);
  const double sigma2 = 161.0;
  const double alpha = 0.05;

  // Student t power, both rejection tails.
  for (const auto& [per_arm, effect] : std::vector<std::pair<int, double>>{{20, 10.0}, {50, 5.0}, {30, -8.0}, {40, -4.0}}) {
    const auto sum = suite.simulate(scenario(plain(per_arm, effect), "power"));
    const Performance p = performance(sum.method(Method::completers_ttest), sum.replicates(), effect);
    const double exact = t_test_power(per_arm, effect, std::sqrt(sigma2), alpha);
    suite.add("Student t power, " + std::to_string(per_arm) + "/arm, effect " + num(effect), "noncentral t", exact, p.power,
              std::sqrt(exact * (1 - exact) / suite.n()));
  }
  // One-sided tests (trial.sides = 1): superiority and non-inferiority power against the
  // noncentral t, a true effect on the non-inferiority margin (rejected at rate alpha exactly),
  // and the one-sided confidence bound's coverage.
  for (const auto& [per_arm, effect, margin] :
       std::vector<std::tuple<int, double, double>>{{30, 6.0, 0.0}, {40, 0.0, -6.0}, {40, -6.0, -6.0}}) {
    const std::string keys = "sides = 1\nmargin = " + num(margin) + "\n";
    const auto sum = suite.simulate(scenario(plain(per_arm, effect, 0.0, 0.616, 0.0, keys), "one-sided"));
    const Performance p = performance(sum.method(Method::completers_ttest), sum.replicates(), effect);
    const double exact = one_sided_t_power(per_arm, effect, margin, std::sqrt(sigma2), alpha);
    const std::string name = effect == margin ? "one-sided t, effect at the margin " + num(margin) + ", " +
                                                    std::to_string(per_arm) + "/arm"
                                              : "one-sided t power, " + std::to_string(per_arm) + "/arm, effect " +
                                                    num(effect) + ", margin " + num(margin);
    suite.add(name, effect == margin ? "alpha" : "noncentral t", exact, p.power, std::sqrt(exact * (1 - exact) / suite.n()));
    if (effect == margin) {
      suite.add("one-sided CI coverage, " + std::to_string(per_arm) + "/arm", "1 - alpha", 1 - alpha, p.coverage,
                std::sqrt(alpha * (1 - alpha) / static_cast<double>(p.estimable)));
    }
  }
  // Welch power with unequal variances (heterogeneous effect on MgO).
  for (const auto& [per_arm, effect, tau] : std::vector<std::tuple<int, double, double>>{{30, 8.0, 12.0}, {20, -10.0, 15.0}}) {
    const auto sum = suite.simulate(scenario(plain(per_arm, effect, tau), "welch"));
    const Performance p = performance(sum.method(Method::completers_welch), sum.replicates(), effect);
    const double exact = welch_power(per_arm, per_arm, sigma2 + tau * tau, sigma2, effect, alpha);
    suite.add("Welch power, " + std::to_string(per_arm) + "/arm, effect " + num(effect) + ", SD ratio " +
                  num(std::sqrt((sigma2 + tau * tau) / sigma2)).substr(0, 4),
              "exact integral", exact, p.power, std::sqrt(exact * (1 - exact) / suite.n()));
  }
  // ANCOVA variance 2 sigma^2 (1 - rho^2)/n (1 + 1/(2n - 4)), baseline the only covariate.
  {
    const int n = 40;
    const auto sum = suite.simulate(scenario(plain(n, 0.0, 0.0, 0.0), "ancova"));
    const Performance p = performance(sum.method(Method::ancova), sum.replicates(), 0.0);
    const double rho = (100.0 + 36.0 * std::exp(-2.0)) / sigma2;
    const double var = 2.0 * sigma2 * (1 - rho * rho) / n * (1 + 1.0 / (2.0 * n - 4));
    suite.add("ANCOVA model SE, 40/arm, rho " + num(rho).substr(0, 5), "2s2(1-r2)/n(1+1/(2n-4))", std::sqrt(var),
              p.model_se, p.model_se_mcse);
    suite.add("ANCOVA empirical SE, 40/arm", "2s2(1-r2)/n(1+1/(2n-4))", std::sqrt(var), p.emp_se, p.emp_se_mcse);
  }
  // Non-adherence: 30% of MgO patients take nothing and gain nothing, so the randomized
  // comparison estimates the ITT effect 6, and the adherent gain 6 / 0.7.
  {
    const auto sum = suite.simulate(scenario(plain(40, 6.0, 0.0, 0.616, 0.3), "adherence"));
    const Performance p = performance(sum.method(Method::completers_ttest), sum.replicates(), 6.0);
    suite.add("ITT effect with 30% non-adherence, t test mean", "effect x adherence", 6.0, p.mean_estimate, p.bias_mcse);
    const Moments& e = sum.arm(Arm::treatment).treatment_effect;
    suite.add("true ITT effect with 30% non-adherence, MgO arm", "effect x adherence", 6.0, e.mean(), e.mcse());
  }
  // Regression to the mean in the control arm's baseline.
  auto rtm_case = [&](const std::string& name, const std::string& screening, double expected, double sd_bio = 8.0) {
    const auto sum = suite.simulate(scenario(rtm_design(screening, sd_bio), "rtm"));
    const Moments& m = sum.arm(Arm::control).regression_to_mean_total;
    suite.add(name, "Barnett et al. 2005", expected, m.mean(), m.mcse());
  };
  const double sb2 = 100.0, su2 = 64.0, se2 = 25.0;
  rtm_case("RTM, one reading < 60", "entry_max = 60.0", barnett_rtm(60, sb2, su2 + se2, 60, true));
  rtm_case("RTM, one reading < 75", "entry_max = 75.0", barnett_rtm(60, sb2, su2 + se2, 75, true));
  rtm_case("RTM, one reading >= 70", "entry_min = 70.0", barnett_rtm(60, sb2, su2 + se2, 70, false));
  rtm_case("RTM, mean of 3 readings at one visit < 65", "entry_max = 65.0\nentry_measurements = 3",
           barnett_rtm(60, sb2, su2 + se2 / 3, 65, true));
  const double rho3 = std::exp(-3.0 / 6.0);
  rtm_case("RTM, mean of 2 readings 3 months apart < 65",
           "entry_max = 65.0\nentry_measurements = 2\nentry_interval_months = 3.0",
           barnett_rtm(60, sb2, su2 * (2 + 2 * rho3) / 4 + se2 / 2, 65, true));
  rtm_case("RTM, separate baseline, compound symmetry", "entry_max = 60.0\nseparate_baseline = true", 0.0, 0.0);
  // What the last visit (month 12) has realized of it: the deviation D = U + e there keeps
  // cov(D_12, Y_entry) = su2 exp(-12/6) of the entry's, so E[D_12 | entry] is that share of
  // E[D_0 | entry] (bivariate normal regression) and realized = total (1 - su2 rho / (su2 + se2)).
  {
    const auto sum = suite.simulate(scenario(rtm_design("entry_max = 75.0"), "rtm-realized"));
    const double total = barnett_rtm(60, sb2, su2 + se2, 75, true);
    const double carried = total * su2 * std::exp(-12.0 / 6.0) / (su2 + se2);
    const ArmAccumulator& c = sum.arm(Arm::control);
    suite.add("RTM realized by month 12, one reading < 75", "Barnett 2005 x OU decay", total - carried,
              c.regression_to_mean.mean(), c.regression_to_mean.mcse());
    suite.add("RTM still carried at month 12, one reading < 75", "Barnett 2005 x OU decay", carried,
              c.regression_to_mean_carried.mean(), c.regression_to_mean_carried.mcse());
  }
  // Selection on own slopes: one entry reading 6 months before month 0, slope SD 1 mmHg/month.
  // E[slope | Y < c] = cov(slope, Y) / var(Y) E[Y - mu | Y < c] with cov = -6 mmHg/month x month,
  // carried over the 18 months from entry to the last visit.
  {
    const auto sum = suite.simulate(scenario(rtm_design("entry_max = 60.0\nentry_lead_months = 6.0", 8.0, 12.0), "slopes"));
    const double var_y = sb2 + 36.0 + su2 + se2;
    const double z = 0.0;  // cutoff at the mean
    const boost::math::normal n01;
    const double mean_y_sel = -std::sqrt(var_y) * boost::math::pdf(n01, z) / boost::math::cdf(n01, z);
    const double expected = -6.0 / var_y * mean_y_sel * 18.0;
    const Moments& m = sum.arm(Arm::control).slope_selection;
    suite.add("selection on own slopes, reading 6 months before < 60", "bivariate normal", expected, m.mean(), m.mcse());
  }

  // Every method under MCAR dropout, no effect: type I error and coverage.
  {
    const auto sum = suite.simulate(scenario(
        dropout_design("death_per_year = 0.1\ntransfer_per_year = 0.05\nae_per_year = 0.2\nspp_hazard_ratio_per_10 = 1.0", 0.0),
        "mcar"));
    const double se_alpha = std::sqrt(alpha * (1 - alpha) / suite.n());
    for (std::size_t m = 0; m < kMethods; ++m) {
      const Performance p = performance(sum.method(static_cast<Method>(m)), sum.replicates(), 0.0);
      suite.add("type I error, MCAR dropout: " + std::string(method_name(static_cast<Method>(m))), "alpha", alpha, p.power,
                se_alpha);
    }
    for (std::size_t m = 0; m < kMethods; ++m) {
      const Performance p = performance(sum.method(static_cast<Method>(m)), sum.replicates(), 0.0);
      suite.add("CI coverage, MCAR dropout: " + std::string(method_name(static_cast<Method>(m))), "1 - alpha", 1 - alpha,
                p.coverage, std::sqrt(alpha * (1 - alpha) / static_cast<double>(p.estimable)));
    }
    // Completers are a random subset of the randomized: no attrition, in either arm.
    for (const Arm arm : {Arm::treatment, Arm::control}) {
      const Moments& m = sum.arm(arm).attrition;
      suite.add(std::string("attrition 0, MCAR dropout, ") + (arm == Arm::treatment ? "treatment" : "control"),
                "random subset", 0.0, m.mean(), m.mcse());
    }
  }
  // The MMRM at small n (about 59 randomized, 4 post-baseline visits): the plug-in SE ignores
  // that the 10 covariance parameters are estimated (over 160 000 trials Satterthwaite's type I
  // error is 0.0508, MC SE 0.0006); Kenward-Roger's adjusted SE and df hold the nominal level.
  {
    const auto sum = suite.simulate(scenario(small_mmrm_design("kenward_roger"), "small_mmrm"));
    const Performance p = performance(sum.method(Method::mmrm), sum.replicates(), 0.0);
    suite.add("type I error, 59 randomized, 4 visits: mmrm, Kenward-Roger", "alpha", alpha, p.power,
              std::sqrt(alpha * (1 - alpha) / suite.n()));
    suite.add("CI coverage, 59 randomized, 4 visits: mmrm, Kenward-Roger", "1 - alpha", 1 - alpha, p.coverage,
              std::sqrt(alpha * (1 - alpha) / static_cast<double>(p.estimable)));
  }
  // Informative dropout of low-SPP patients (0.6/year at the mean SPP, x2.5 per 10 mmHg lower;
  // 300 consented, so that the sign cases hold with a wide margin at 2 000 trials) and an effect of
  // 8: MgO keeps more of its patients, so completers analyses understate the effect; under MAR (dropout on the last
  // observed reading) the MMRM and imputation are unbiased.
  {
    const auto mnar = suite.simulate(scenario(
        dropout_design("death_per_year = 0.6\ntransfer_per_year = 0.0\nae_per_year = 0.0\nspp_hazard_ratio_per_10 = 2.5", 8.0,
                       "consented = 300"),
        "mnar"));
    const Performance c = performance(mnar.method(Method::completers_ttest), mnar.replicates(), 8.0);
    suite.add("bias < 0, completers t test, dropout on true SPP", "theory: attenuation", 0.0, c.bias, c.bias_mcse, true);
    const auto mar = suite.simulate(scenario(
        dropout_design("death_per_year = 0.6\ntransfer_per_year = 0.0\nae_per_year = 0.0\nspp_hazard_ratio_per_10 = 2.5\n"
                       "hazard_depends_on = \"observed_spp\"",
                       8.0, "consented = 300"),
        "mar"));
    const Performance cm = performance(mar.method(Method::completers_ttest), mar.replicates(), 8.0);
    suite.add("bias < 0, completers t test, dropout on observed SPP", "theory: attenuation", 0.0, cm.bias, cm.bias_mcse, true);
    for (const Method m : {Method::mmrm, Method::mi_delta}) {
      const Performance p = performance(mar.method(m), mar.replicates(), 8.0);
      suite.add("bias 0, " + std::string(method_name(m)) + ", dropout on observed SPP (MAR)", "theory: valid under MAR", 0.0,
                p.bias, p.bias_mcse);
    }
    // Visits off the monthly grid: the hazard may use a reading only once it is taken.
    for (const auto& [label, months, last] : std::vector<std::tuple<std::string, std::string, double>>{
             {"half-month visits", "[0, 0.5, 1.5, 2.5, 3.5]", 3.5}, {"irregular visits", "[0, 0.3, 1.2, 2.4, 3.1]", 3.1}}) {
      const std::string design = dropout_design(
          "death_per_year = 1.5\ntransfer_per_year = 0.0\nae_per_year = 0.0\nspp_hazard_ratio_per_10 = 2.5\n"
          "hazard_depends_on = \"observed_spp\"",
          8.0, "consented = 300\nmonths = " + months, "effect_onset_months = " + num(last));
      const auto sum = suite.simulate(scenario(design, "mar-schedule"));
      for (const Method m : {Method::mmrm, Method::mi_delta}) {
        const Performance p = performance(sum.method(m), sum.replicates(), 8.0);
        suite.add("bias 0, " + std::string(method_name(m)) + ", MAR, " + label,
                  "theory: valid under MAR", 0.0, p.bias, p.bias_mcse);
      }
    }
  }
  // Multiple imputation in a small trial with several visits, where parameter draws that
  // misstate their uncertainty show in Rubin's variance: size and model SE against empirical SE.
  {
    const auto sum = suite.simulate(scenario(small_mi_design(), "mi_small"));
    const Performance p = performance(sum.method(Method::mi_delta), sum.replicates(), 0.0);
    suite.add("type I error, mi_delta, 40 consented, 4 post-baseline visits", "alpha", alpha, p.power,
              std::sqrt(alpha * (1 - alpha) / suite.n()));
    suite.add("model SE / empirical SE - 1 (%), mi_delta, 40 consented, 4 post-baseline visits", "Rubin's rules", 0.0,
              p.relative_se_error, p.relative_se_error_mcse);
  }
  // Group-sequential designs against the exact recursive integration (models/group_sequential,
  // itself checked against rpact): without cutoff or dropout each look's z is the canonical
  // process at the trial's information fractions (those of 1000/arm: 667/2000, 1334/2000, 1),
  // so the simulated probabilities of stopping at each look, for efficacy and for futility, and
  // the type I error are the design's. The integration assumes a known variance; the t tests
  // estimate it, which at 50 per arm costs about 0.01 of power at a first look (it is 0.001 at
  // 1000 per arm, below these cases' Monte Carlo error).
  {
    const int per_arm = 1000;
    const double drift_per_mmHg = 1.0 / std::sqrt(2.0 * sigma2 / per_arm);
    struct Design {
      std::string label, trial, interim;
      double effect;
    };
    const std::vector<Design> designs{
        {"O'Brien-Fleming, 3 looks, two-sided, null", "", "fractions = [0.333, 0.667, 1]\nefficacy = \"obf\"\n", 0.0},
        {"Pocock, 3 looks, two-sided, null", "", "fractions = [0.333, 0.667, 1]\nefficacy = \"pocock\"\n", 0.0},
        {"Hwang-Shih-DeCani -4, 3 looks, two-sided, null", "", "fractions = [0.333, 0.667, 1]\nefficacy = \"hsd\"\nhsd_gamma = -4.0\n", 0.0},
        {"O'Brien-Fleming, 3 looks, two-sided, effect 1.6", "", "fractions = [0.333, 0.667, 1]\nefficacy = \"obf\"\n", 1.6},
        {"O'Brien-Fleming + beta-spending futility, one-sided, effect 1.6", "sides = 1\nalpha = 0.025\n",
         "fractions = [0.333, 0.667, 1]\nefficacy = \"obf\"\nfutility = \"beta_spending\"\n", 1.6},
        {"O'Brien-Fleming + conditional-power futility, one-sided, effect 1.6", "sides = 1\nalpha = 0.025\n",
         "fractions = [0.5, 1]\nefficacy = \"obf\"\nfutility = \"conditional_power\"\nfutility_cp = 0.2\n", 1.6},
        {"Pocock + z futility (binding), one-sided, null", "sides = 1\nalpha = 0.025\n",
         "fractions = [0.5, 1]\nefficacy = \"pocock\"\nfutility = \"z\"\nfutility_z = [0.0]\nbinding = true\n", 0.0},
    };
    for (const Design& d : designs) {
      const Scenario s = scenario(sequential_design(per_arm, d.effect, d.trial, d.interim), "sequential");
      const auto sum = suite.simulate(s);
      const InterimDesign design(s.interim, static_cast<std::size_t>(s.trial.consented));
      const LookBounds& b = design.for_completers(static_cast<std::size_t>(s.trial.consented));
      const std::vector<double> lower(b.lower.begin(), b.lower.end() - 1);
      const Stopping exact = stopping_probabilities(b.t, b.upper, s.interim.futility == FutilityRule::none ? std::vector<double>{} : lower,
                                                    s.interim.sides, d.effect * drift_per_mmHg);
      const auto i = static_cast<std::size_t>(Method::completers_ttest);
      const InterimAccumulator& a = sum.interim();
      double power = 0;
      // exact.* by held look h, the accumulators by planned look b.looks[h].
      for (std::size_t h = 0; h < b.t.size(); ++h) {
        const std::size_t k = b.looks[h];
        power += exact.efficacy[h];
        auto binomial = [&](double p) { return std::sqrt(std::max(p * (1 - p), 1e-12) / suite.n()); };
        suite.add(d.label + ": stop for efficacy at look " + std::to_string(k + 1), "recursive integration",
                  exact.efficacy[h], a.stop_efficacy[i][k].mean(), binomial(exact.efficacy[h]));
        if (s.interim.futility != FutilityRule::none && h + 1 < b.t.size()) {
          suite.add(d.label + ": stop for futility at look " + std::to_string(k + 1), "recursive integration",
                    exact.futility[h], a.stop_futility[i][k].mean(), binomial(exact.futility[h]));
        }
      }
      const Performance p = performance(sum.method(Method::completers_ttest), sum.replicates(), d.effect);
      suite.add(d.label + (d.effect == 0.0 ? ": type I error" : ": power"), "recursive integration", power, p.power,
                std::sqrt(power * (1 - power) / suite.n()));
    }
    // Methods that use partial follow-up (MMRM, imputation) have more information at a look
    // than the completers' share the bounds assume, so their designs can only be conservative:
    // their type I error with MCAR dropout, 4 post-baseline visits and 3 looks is at most alpha.
    const Scenario mcar = scenario(
        "[trial]\nmonths = [0, 3, 6, 9, 12]\naccrual_months = 24.0\n[treatment]\neffect_mmHg = 0.0\n"
        "[dropout]\nspp_hazard_ratio_per_10 = 1.0\n[analysis]\nmethods = [\"mmrm\", \"mi_delta\"]\nmi_imputations = 10\n"
        "[interim]\nfractions = [0.4, 0.7, 1]\n",
        "sequential-mcar");
    const auto sum = suite.simulate(mcar);
    for (const Method m : {Method::mmrm, Method::mi_delta}) {
      const Performance p = performance(sum.method(m), sum.replicates(), 0.0);
      suite.add("O'Brien-Fleming, 3 looks, MCAR dropout, 4 visits: type I error, " + std::string(method_name(m)), "alpha", alpha,
                p.power, std::sqrt(alpha * (1 - alpha) / suite.n()));
    }
  }
  return suite.take();
}

}  // namespace trialsim
