#include "models/dropout.hpp"


#include <algorithm>
#include <array>
#include <cmath>

namespace trialsim {

DropoutConfig DropoutConfig::read(ConfigReader& in, double reference_spp) {
  DropoutConfig c;
  c.death_per_year = in.number("dropout.death_per_year", c.death_per_year, Bounds::closed(0.0, 100.0));
  c.transfer_per_year = in.number("dropout.transfer_per_year", c.transfer_per_year, Bounds::closed(0.0, 100.0));
  c.ae_per_year = in.number("dropout.ae_per_year", c.ae_per_year, Bounds::closed(0.0, 100.0));
  c.treatment_transfer_per_year =
      in.number("dropout.treatment_transfer_per_year", c.treatment_transfer_per_year, Bounds::closed(0.0, 100.0));
  c.spp_hazard_ratio_per_10 =
      in.number("dropout.spp_hazard_ratio_per_10", c.spp_hazard_ratio_per_10, Bounds::closed(0.01, 100.0));
  c.reference_spp = reference_spp;
  c.on_observed = in.choice("dropout.hazard_depends_on", "true_spp", {"true_spp", "observed_spp"}) == "observed_spp";
  return c;
}

Dropout::Dropout(const DropoutConfig& cfg, double horizon_months, double effect_onset_months)
    : cfg_(cfg),
      log_hr_per_mmHg_(std::log(cfg.spp_hazard_ratio_per_10) / 10.0),
      death_rate_(cfg.death_per_year / 12.0),
      transfer_rate_(cfg.transfer_per_year / 12.0),
      spp_rate_(death_rate_ + transfer_rate_),
      treated_transfer_rate_(cfg.treatment_transfer_per_year / 12.0),
      treated_ae_rate_(cfg.ae_per_year / 12.0),
      horizon_(horizon_months),
      width_(horizon_months - std::floor(horizon_months)),
      onset_(effect_onset_months),
      whole_(static_cast<int>(horizon_months)),
      // Pieces whose middle is before the onset take the ramp (TruePath::effect_at).
      ramp_(effect_onset_months > 0.0
                ? std::clamp(static_cast<int>(std::ceil(effect_onset_months - 0.5)), 0, static_cast<int>(horizon_months))
                : 0) {
  const TruePath unit{0.0, 0.0, 1.0, onset_};
  frac_ramp_ = unit.effect_at(0.5);
  frac_after_ = unit.effect_at(ramp_ + 0.5);
  frac_part_ = unit.effect_at(whole_ + 0.5 * width_);
}

// Competing risks with piecewise-constant cause-specific hazards: one Exp(1) threshold is
// compared with the cumulative all-cause hazard; the interval where it is crossed gives the
// exact event time, and the cause is drawn in proportion to the cause-specific hazards there
// (Beyersmann, Latouche, Buchholz et al., Stat Med 2009). The cause's uniform is drawn only for
// a patient who drops out, after the threshold.
//
// The grid is monthly. With the hazard on the true SPP, each piece takes the true value at its
// middle. With the hazard on observed SPP, every visit month is also a break and each piece
// [a, b) takes the last reading taken at or before a: the hazard at time t depends only on
// readings that exist at t, so dropout is missing at random given the observed data for any
// visit schedule (Little & Rubin 2019, ch. 1 and 6), which the MMRM and imputation require.
namespace {

// The crossing of the Exp(1) threshold in a piece [start, start + width) with these
// cause-specific hazards per month, if any.
struct Hazards {
  double death, transfer, ae;
  double total() const { return death + transfer + ae; }
};

bool crosses(Patient& p, double start, double width, const Hazards& h, double threshold, double& cumulative,
             Stream& rng) {
  const double total = h.total();
  if (total > 0.0 && cumulative + total * width >= threshold) {
    p.dropout_month = start + (threshold - cumulative) / total;
    const double c = uniform01(rng) * total;
    p.dropout_reason = c < h.death                ? DropoutReason::death
                       : c < h.death + h.transfer ? DropoutReason::transfer
                                                  : DropoutReason::adverse_event;
    return true;
  }
  cumulative += total * width;
  return false;
}

// sum_{j < n} e^(step j) = (e^(step n) - 1) / (e^step - 1), n >= 1. Without individual slopes
// every patient of an arm has the same step, so the last two results are kept per thread (a
// pure function's memo: the value never depends on it).
double geometric_sum(double step, int n) {
  if (step == 0.0) return n;
  struct Memo {
    double step = 0.0;
    int n = 0;
    double sum = 0.0;
  };
  thread_local std::array<Memo, 2> memo{};
  thread_local std::size_t next = 0;
  for (const Memo& m : memo) {
    if (m.n == n && m.step == step) return m.sum;
  }
  const double sum = std::expm1(step * n) / std::expm1(step);
  memo[next] = {step, n, sum};
  next ^= 1;
  return sum;
}

}  // namespace

bool Dropout::run(Patient& p, const TruePath& path, int k0, int k1, double e0, double step, double fixed_rate,
                  double threshold, double& cumulative, Stream& rng) const {
  const int n = k1 - k0;
  if (n <= 0) return false;
  const bool capped = !(std::max(e0, e0 + (n - 1) * step) < 700.0);
  double m = 0.0;
  if (!capped) {
    m = std::exp(e0);
    const double total = spp_rate_ * m * geometric_sum(step, n) + fixed_rate * n;
    if (cumulative + total < threshold) {
      cumulative += total;
      return false;
    }
  }
  const bool treated = p.arm == Arm::treatment;
  const double transfer_fixed = treated ? treated_transfer_rate_ : 0.0, ae = treated ? treated_ae_rate_ : 0.0;
  const double factor = capped ? 0.0 : std::exp(step);
  // The running sum in a register: through the reference it would pass a store and a reload
  // per piece.
  double sum = cumulative;
  for (int k = k0; k < k1; ++k) {
    if (capped) m = std::exp(std::min(700.0, log_hr_per_mmHg_ * (cfg_.reference_spp - path.at(k + 0.5))));
    if (crosses(p, k, 1.0, {death_rate_ * m, transfer_rate_ * m + transfer_fixed, ae}, threshold, sum, rng)) {
      cumulative = sum;
      return true;
    }
    m *= factor;
  }
  cumulative = sum;
  return false;
}

void Dropout::follow(Patient& p, const TruePath& true_spp, const std::vector<double>& months, const double* readings,
                     Stream& rng) const {
  p.dropout_month = std::numeric_limits<double>::infinity();
  p.dropout_reason = DropoutReason::none;
  const bool treated = p.arm == Arm::treatment;
  const double transfer_fixed = treated ? treated_transfer_rate_ : 0.0, ae = treated ? treated_ae_rate_ : 0.0;
  const double fixed_rate = transfer_fixed + ae;
  // Nobody can leave: no draw.
  if (spp_rate_ + fixed_rate <= 0.0) return;
  const double threshold = standard_exponential(rng);
  // Capped so that an extreme SPP cannot overflow the hazards (e^700 ~ 1e304).
  auto multiplier = [&](double x) { return std::exp(std::min(700.0, log_hr_per_mmHg_ * (cfg_.reference_spp - x))); };
  auto hazards = [&](double m) { return Hazards{death_rate_ * m, transfer_rate_ * m + transfer_fixed, ae}; };
  double cumulative = 0.0;

  if (!cfg_.on_observed) {
    // Whole months first, then the part-month left before the horizon. The true SPP is linear
    // in time before the effect's onset and after it, so over the whole months on either side
    // the exponent is linear in the piece index and the multipliers are geometric, m0 f^j: a
    // run of n pieces adds (death + transfer) m0 (f^n - 1)/(f - 1) + (fixed hazards) n in closed
    // form. The cumulative hazard to the horizon is summed that way first, and most patients,
    // who stay below their threshold, need nothing more; for the others the runs are walked
    // piece by piece to the one where the threshold is crossed (the multiplier carried by the
    // factor f; relative error ~1e-15 per piece). True SPP at a piece's middle m is
    // TruePath::at(m) = level + slope m + effect effect_at(m)/effect.
    const bool ramps = true_spp.effect != 0.0 && onset_ > 0.0;
    const int ramp = ramps ? ramp_ : 0;
    auto exponent = [&](double mid, double frac) {
      return log_hr_per_mmHg_ * (cfg_.reference_spp - (true_spp.level + true_spp.slope * mid + true_spp.effect * frac));
    };
    const double step_ramp = ramps ? -log_hr_per_mmHg_ * (true_spp.slope + true_spp.effect / onset_) : 0.0;
    const double step_after = -log_hr_per_mmHg_ * true_spp.slope;
    const double e_ramp = ramp > 0 ? exponent(0.5, frac_ramp_) : 0.0;
    const double e_after = whole_ > ramp ? exponent(ramp + 0.5, frac_after_) : 0.0;
    double total = fixed_rate * horizon_;
    bool capped = false;
    if (spp_rate_ > 0.0) {
      auto add_run = [&](double e0, double step, int n) {
        if (n <= 0) return;
        capped = capped || !(std::max(e0, e0 + (n - 1) * step) < 700.0);
        if (!capped) total += spp_rate_ * std::exp(e0) * geometric_sum(step, n);
      };
      add_run(e_ramp, step_ramp, ramp);
      add_run(e_after, step_after, whole_ - ramp);
      if (width_ > 0) {
        const double e_part = exponent(whole_ + 0.5 * width_, frac_part_);
        capped = capped || !(e_part < 700.0);
        if (!capped) total += spp_rate_ * std::exp(e_part) * width_;
      }
    }
    if (!capped && total < threshold) return;
    if (run(p, true_spp, 0, ramp, e_ramp, step_ramp, fixed_rate, threshold, cumulative, rng) ||
        run(p, true_spp, ramp, whole_, e_after, step_after, fixed_rate, threshold, cumulative, rng)) {
      return;
    }
    if (width_ > 0) {
      crosses(p, whole_, width_, hazards(multiplier(true_spp.at(whole_ + 0.5 * width_))), threshold, cumulative, rng);
    }
    return;
  }

  // On the last observed reading: pieces also break at every visit.
  double last_reading = readings[0];
  std::size_t next_visit = 1;
  double start = 0.0;
  while (start < horizon_) {
    double end = std::min(std::floor(start) + 1.0, horizon_);
    // Readings taken at or before `start` are known over the whole piece.
    while (next_visit < months.size() && months[next_visit] <= start) {
      if (!std::isnan(readings[next_visit])) last_reading = readings[next_visit];
      ++next_visit;
    }
    if (next_visit < months.size()) end = std::min(end, months[next_visit]);
    if (crosses(p, start, end - start, hazards(multiplier(last_reading)), threshold, cumulative, rng)) return;
    start = end;
  }
}

}  // namespace trialsim
