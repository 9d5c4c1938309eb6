#include "sim/io/scenario.hpp"

#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace trialsim {

TrialConfig TrialConfig::read(ConfigReader& in) {
  TrialConfig c;
  c.consented = static_cast<int>(in.integer("trial.consented", c.consented, 2, 100000));
  c.alpha = in.number("trial.alpha", c.alpha, Bounds{1e-10, 1.0, false, true, {}, {}}.because("below 1e-10 the critical values leave double precision"));
  c.sides = static_cast<int>(in.integer("trial.sides", c.sides, 1, 2));
  c.margin = in.number("trial.margin", c.margin, Bounds::scale());
  if (c.sides == 1 && !(c.alpha < 0.5)) {
    in.fail("trial.alpha", "with trial.sides = 1 it is the one-sided level and must be below 0.5 (a two-sided " +
                               std::string("interval at 1 - 2 alpha reports its bound), got ") +
                               describe(toml::value<double>(c.alpha)) + "; lower trial.alpha or set trial.sides = 2");
  }
  if (const auto a = in.optional_number("trial.accrual_months", Bounds::closed(0.0, 600.0))) c.accrual_months = *a;
  c.accrual_rates = in.numbers("trial.accrual_rates", {}, Bounds{0.0, 1e6, true, false, {}, {}}, 0, 60);
  if (!c.accrual_rates.empty() && !c.has_accrual()) {
    in.fail("trial.accrual_rates", "applies only with trial.accrual_months (the accrual period the rates divide into equal pieces)");
  }
  c.months = in.numbers("trial.months", c.months, Bounds::closed(0.0, 240.0), 2, kMaxVisits);
  if (c.months.front() != 0.0) in.fail("trial.months", "the first visit must be month 0 (baseline), got " + describe(*in.table().at_path("trial.months").node()));
  for (std::size_t k = 1; k < c.months.size(); ++k) {
    if (!(c.months[k] > c.months[k - 1])) in.fail("trial.months", "visit months must be strictly increasing");
    if (month_label(c.months[k]) == month_label(c.months[k - 1])) {
      in.fail("trial.months", "months " + std::to_string(c.months[k - 1]) + " and " + std::to_string(c.months[k]) +
                                  " are too close to label apart; use values that differ in 6 significant digits");
    }
  }
  return c;
}

// Piecewise-constant intensity over equal pieces: invert its cumulative share.
double TrialConfig::accrual_month_at(double u) const {
  if (!has_accrual()) return 0.0;
  if (accrual_rates.empty()) return accrual_months * u;
  double total = 0;
  for (const double r : accrual_rates) total += r;
  const double piece = accrual_months / static_cast<double>(accrual_rates.size());
  double target = u * total, start = 0;
  for (const double r : accrual_rates) {
    if (target <= r || &r == &accrual_rates.back()) return std::min(accrual_months, start + piece * std::min(1.0, target / r));
    target -= r;
    start += piece;
  }
  return accrual_months;
}

Labels Labels::read(ConfigReader& in) {
  Labels l;
  l.outcome = in.label("labels.outcome", l.outcome);
  l.unit = in.label("labels.unit", l.unit);
  l.treatment = in.label("labels.treatment", l.treatment);
  l.control = in.label("labels.control", l.control);
  if (l.treatment == l.control) in.fail("labels.control", "the two arms need different labels, both are \"" + l.control + "\"");
  return l;
}

Labels Labels::from_json(const nlohmann::json& scenario) {
  Labels l;
  if (!scenario.is_object() || !scenario.contains("labels") || !scenario["labels"].is_object()) return l;
  const nlohmann::json& j = scenario["labels"];
  const auto take = [&j](const char* key, std::string& v) {
    if (j.contains(key) && j[key].is_string()) v = j[key].get<std::string>();
  };
  take("outcome", l.outcome);
  take("unit", l.unit);
  take("treatment", l.treatment);
  take("control", l.control);
  return l;
}

Labels Labels::of_output(const nlohmann::json& doc) {
  if (doc.is_object() && doc.contains("scenario") && doc["scenario"].is_object() && doc["scenario"].contains("labels")) {
    return from_json(doc["scenario"]);
  }
  return from_json(doc);
}

nlohmann::json Labels::to_json() const {
  return {{"outcome", outcome}, {"unit", unit}, {"treatment", treatment}, {"control", control}};
}

std::string Labels::arm(const std::string& key) const {
  if (key == "treatment") return treatment;
  if (key == "control") return control;
  return key;
}

std::string Labels::capital(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

bool Scenario::withdrawal_possible(std::size_t reason) const {
  switch (reason) {
    case 1: return dropout.death_per_year > 0;
    case 2: return dropout.transfer_per_year > 0 || dropout.treatment_transfer_per_year > 0;
    case 3: return dropout.ae_per_year > 0;
    default: return true;
  }
}

std::string Scenario::hypothesis_text() const {
  const auto g = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  if (trial.sides == 2) return "two-sided, H0: effect = " + g(trial.margin) + " " + labels.unit + ", alpha " + g(trial.alpha);
  const std::string kind = trial.margin < 0 ? " (non-inferiority)" : trial.margin == 0 ? " (superiority)" : "";
  return "one-sided, H0: effect <= " + g(trial.margin) + " " + labels.unit + kind + ", alpha " + g(trial.alpha);
}

Scenario Scenario::load(const std::string& path, const std::vector<std::string>& overrides,
                        const std::vector<std::string>& varies) {
  ConfigReader in = ConfigReader::from_file(path);
  for (const auto& o : overrides) in.apply_override(o);
  for (const auto& v : varies) in.apply_override(v, "--vary");
  return read(in);
}

Scenario Scenario::read(ConfigReader& in) {
  Scenario s;
  s.source = in.source_name();
  s.labels = Labels::read(in);
  s.trial = TrialConfig::read(in);
  s.population = PopulationConfig::read(in);
  s.spp = SppConfig::read(in);
  s.screening = ScreeningConfig::read(in);
  s.measurement = MeasurementConfig::read(in);
  s.randomization = RandomizationConfig::read(in, s.population.age_mean);
  s.treatment = TreatmentConfig::read(in, s.trial.last_month());
  s.dropout = DropoutConfig::read(in, s.spp.mean);
  s.analysis = AnalysisConfig::read(in, s.trial.hypothesis().interval_alpha(s.trial.alpha));
  // The planned share of primary visits by a calendar month: consent times have the accrual's
  // distribution, the primary visit comes trial.months.back() later (dropout aside).
  const auto share = [&](double month) {
    const double by = month - s.trial.last_month();
    if (by <= 0.0) return 0.0;
    if (by >= s.trial.accrual_months) return 1.0;
    double lo = 0.0, hi = 1.0;  // accrual_month_at is increasing: bisect for its inverse
    for (int i = 0; i < 100; ++i) {
      const double mid = 0.5 * (lo + hi);
      (s.trial.accrual_month_at(mid) <= by ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
  };
  s.interim = InterimConfig::read(in, s.trial.alpha, s.trial.sides, s.trial.margin, s.trial.has_accrual(), share);
  s.sweep_vary = in.strings("sweep.vary", {});
  s.sweep_crn = in.boolean("sweep.common_random_numbers", true);
  in.check_no_unknown_keys();

  // Designs nobody (or almost nobody) can enter are errors, not trials full of "not estimable".
  const double kept = (1.0 - s.population.prior_mg_prob) * (1.0 - s.screening.pre_baseline_loss);
  const double pass = entry_pass_probability(s);
  const double expected = s.trial.consented * kept * pass;
  if (expected < 2.0) {
    std::ostringstream msg;
    msg.precision(3);
    const bool cutoff = pass < 0.999;
    const std::string key = !cutoff ? "trial.consented"
                            : (s.screening.entry_max ? "screening.entry_max" : "screening.entry_min");
    msg << (cutoff ? "nobody can pass this cutoff: " : "too few patients reach randomization: ") << "about " << expected
        << " of " << s.trial.consented << " consented patients would be randomized per trial (P(entry passes) = " << pass
        << "); need at least 2";
    in.fail(key, msg.str());
  }
  return s;
}

std::string month_label(double month) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", month);
  return buf;
}

double entry_pass_probability(const Scenario& s) {
  const auto& spp = s.spp;
  const auto& pop = s.population;
  const auto sched = s.screening.schedule();
  // Variance of the mean of k entry readings: between-patient part, OU part averaged over the
  // reading times, and reading noise / k.
  const double p = pop.diabetes_prob;
  double var = spp.sd_between * spp.sd_between + spp.diabetes_shift * spp.diabetes_shift * p * (1 - p) +
               std::pow(spp.age_shift_per_10y * pop.age_sd / 10.0, 2);
  const int k = sched.readings;
  double ou = 0;
  for (int i = 0; i < k; ++i) {
    for (int j = 0; j < k; ++j) {
      ou += std::exp(-std::abs(sched.time(i) - sched.time(j)) / spp.biological_corr_months);
    }
  }
  var += spp.sd_biological * spp.sd_biological * ou / (k * k);
  var += spp.sd_measurement * spp.sd_measurement / k;
  double t_mean = 0;
  for (int j = 0; j < k; ++j) t_mean += sched.time(j) / k;
  var += std::pow(spp.sd_slope_per_year / 12.0 * t_mean, 2);
  const double mean = spp.mean + spp.drift_per_year / 12.0 * t_mean;
  const double sd = std::sqrt(var);
  auto cdf = [&](double x) {
    if (sd <= 0) return x > mean ? 1.0 : 0.0;
    return boost::math::cdf(boost::math::normal(mean, sd), x);
  };
  const double hi = s.screening.entry_max ? cdf(*s.screening.entry_max) : 1.0;
  const double lo = s.screening.entry_min ? cdf(*s.screening.entry_min) : 0.0;
  return std::max(0.0, hi - lo);
}

nlohmann::json Scenario::to_json() const {
  using nlohmann::json;
  auto opt = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  json methods = json::array();
  for (const Method m : analysis.methods) methods.push_back(std::string(method_name(m)));
  json factors = json::array();
  for (const auto f : randomization.factors) {
    factors.push_back(f == MinimizationFactor::diabetes ? "diabetes" : f == MinimizationFactor::sex ? "sex" : "age");
  }
  json out{
      {"source", source},
      {"labels", labels.to_json()},
      {"trial",
       {{"consented", trial.consented},
        {"alpha", trial.alpha},
        {"sides", trial.sides},
        {"margin", trial.margin},
        {"accrual_months", trial.accrual_months},
        {"accrual_rates", trial.accrual_rates},
        {"months", trial.months}}},
      {"population",
       {{"prior_mg_prob", population.prior_mg_prob},
        {"age_mean", population.age_mean},
        {"age_sd", population.age_sd},
        {"male_prob", population.male_prob},
        {"diabetes_prob", population.diabetes_prob},
        {"vintage_mean_years", population.vintage_mean},
        {"vintage_sd_years", population.vintage_sd},
        {"mg_mean", population.mg_mean},
        {"mg_sd", population.mg_sd},
        {"labs", population.labs}}},
      {"spp",
       {{"mean", spp.mean},
        {"sd_between", spp.sd_between},
        {"sd_biological", spp.sd_biological},
        {"biological_corr_months", spp.biological_corr_months},
        {"sd_measurement", spp.sd_measurement},
        {"drift_per_year", spp.drift_per_year},
        {"sd_slope_per_year", spp.sd_slope_per_year},
        {"diabetes_shift", spp.diabetes_shift},
        {"age_shift_per_10y", spp.age_shift_per_10y}}},
      {"screening",
       {{"entry_max", opt(screening.entry_max)},
        {"entry_min", opt(screening.entry_min)},
        {"entry_measurements", screening.entry_measurements},
        {"separate_baseline", screening.separate_baseline},
        {"pre_baseline_loss", screening.pre_baseline_loss},
        {"entry_lead_months", screening.entry_lead_months},
        {"entry_interval_months", screening.entry_interval_months}}},
      {"measurement",
       {{"readings_per_visit", measurement.readings_per_visit}, {"missed_visit_prob", measurement.missed_visit_prob}}},
      {"randomization",
       {{"method", RandomizationConfig::method_name(randomization.method)},
        {"ratio", {randomization.ratio_treatment, randomization.ratio_control}},
        {"block_sizes", randomization.block_sizes},
        {"minimization_factors", factors},
        {"minimization_prob", randomization.minimization_prob}}},
      {"treatment",
       {{"effect_mmHg", treatment.effect_mmHg},
        {"effect_sd_mmHg", treatment.effect_sd_mmHg},
        {"effect_onset_months", treatment.effect_onset_months},
        {"start_dose_mg", treatment.start_dose_mg},
        {"dose_step_mg", treatment.dose_step_mg},
        {"min_dose_mg", treatment.min_dose_mg},
        {"max_dose_mg", treatment.max_dose_mg},
        {"titration_months", treatment.titration_months},
        {"target_mg_low", treatment.target_mg_low},
        {"target_mg_high", treatment.target_mg_high},
        {"mg_response_per_100mg", treatment.mg_response_per_100mg},
        {"mg_response_sd", treatment.mg_response_sd},
        {"mg_measurement_sd", treatment.mg_measurement_sd},
        {"nonadherence_prob", treatment.nonadherence_prob},
        {"serum_mg", treatment.serum_mg}}},
      {"dropout",
       {{"death_per_year", dropout.death_per_year},
        {"transfer_per_year", dropout.transfer_per_year},
        {"ae_per_year", dropout.ae_per_year},
        {"treatment_transfer_per_year", dropout.treatment_transfer_per_year},
        {"spp_hazard_ratio_per_10", dropout.spp_hazard_ratio_per_10},
        {"hazard_depends_on", dropout.on_observed ? "observed_spp" : "true_spp"}}},
      {"analysis",
       {{"methods", methods},
        {"mmrm_df", std::string(mmrm_df_name(analysis.mmrm_df))},
        {"mi_imputations", analysis.mi.imputations},
        {"mnar_delta_mmHg", analysis.mi.delta},
        {"mnar_delta_arms", analysis.mi.delta_both_arms ? "both" : "treatment"}}},
  };
  if (interim.enabled()) out["interim"] = interim.to_json();
  return out;
}

}  // namespace trialsim
