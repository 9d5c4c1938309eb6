#include "models/dropout.hpp"

#include <boost/random/exponential_distribution.hpp>
#include <boost/random/uniform_01.hpp>

#include <algorithm>
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

Dropout::Dropout(const DropoutConfig& cfg)
    : cfg_(cfg), log_hr_per_mmHg_(std::log(cfg.spp_hazard_ratio_per_10) / 10.0) {}

// Competing risks with piecewise-constant cause-specific hazards: one Exp(1) threshold is
// compared with the cumulative all-cause hazard; the interval where it is crossed gives the
// exact event time, and the cause is drawn in proportion to the cause-specific hazards there
// (Beyersmann, Latouche, Buchholz et al., Stat Med 2009).
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

bool crosses(Patient& p, double start, double width, const Hazards& h, double threshold, double cause_u,
             double& cumulative) {
  const double total = h.total();
  if (total > 0.0 && cumulative + total * width >= threshold) {
    p.dropout_month = start + (threshold - cumulative) / total;
    const double c = cause_u * total;
    p.dropout_reason = c < h.death                ? DropoutReason::death
                       : c < h.death + h.transfer ? DropoutReason::transfer
                                                  : DropoutReason::adverse_event;
    return true;
  }
  cumulative += total * width;
  return false;
}

}  // namespace

void Dropout::follow(Patient& p, double horizon_months, const TruePath& true_spp, const std::vector<double>& months,
                     const std::array<double, kMaxVisits>& readings, Stream& rng) const {
  boost::random::exponential_distribution<double> expo(1.0);
  boost::random::uniform_01<double> unif;
  const double threshold = expo(rng);
  const double cause_u = unif(rng);
  const bool treated = p.arm == Arm::treatment;
  const double death_rate = cfg_.death_per_year / 12.0, transfer_rate = cfg_.transfer_per_year / 12.0;
  const double transfer_fixed = treated ? cfg_.treatment_transfer_per_year / 12.0 : 0.0;
  const double ae = treated ? cfg_.ae_per_year / 12.0 : 0.0;
  // Capped so that an extreme SPP cannot overflow the hazards (e^700 ~ 1e304).
  auto multiplier = [&](double x) { return std::exp(std::min(700.0, log_hr_per_mmHg_ * (cfg_.reference_spp - x))); };
  auto hazards = [&](double m) { return Hazards{death_rate * m, transfer_rate * m + transfer_fixed, ae}; };
  double cumulative = 0.0;
  p.dropout_month = std::numeric_limits<double>::infinity();
  p.dropout_reason = DropoutReason::none;

  if (!cfg_.on_observed) {
    // Whole months first, then the part-month left before the horizon. The true SPP is linear
    // in time before the effect's onset and after it, so over the whole months on either side
    // the exponent is linear in the piece index: the multiplier is exp of the first piece's
    // exponent carried by a constant factor (two exps per run instead of one per month;
    // relative error ~1e-15 per piece).
    auto exponent = [&](double mid) { return log_hr_per_mmHg_ * (cfg_.reference_spp - true_spp.at(mid)); };
    auto run = [&](int k0, int k1) {
      if (k1 <= k0) return false;
      const double e0 = exponent(k0 + 0.5), e1 = exponent(k1 - 0.5);
      const bool capped = !(std::max(e0, e1) < 700.0);
      const double step = k1 - k0 > 1 ? (e1 - e0) / (k1 - 1 - k0) : 0.0;
      double m = capped ? 0.0 : std::exp(e0);
      const double factor = capped ? 0.0 : std::exp(step);
      for (int k = k0; k < k1; ++k) {
        if (capped) m = multiplier(true_spp.at(k + 0.5));
        if (crosses(p, k, 1.0, hazards(m), threshold, cause_u, cumulative)) return true;
        m *= factor;
      }
      return false;
    };
    const int whole = static_cast<int>(std::floor(horizon_months));
    const double onset = true_spp.onset_months;
    // Pieces whose middle is before the onset take the ramp (TruePath::effect_at).
    const int ramp = true_spp.effect == 0.0 || onset <= 0.0 ? 0 : std::clamp(static_cast<int>(std::ceil(onset - 0.5)), 0, whole);
    if (run(0, ramp) || run(ramp, whole)) return;
    const double width = horizon_months - whole;
    if (width > 0) crosses(p, whole, width, hazards(multiplier(true_spp.at(whole + 0.5 * width))), threshold, cause_u, cumulative);
    return;
  }

  // On the last observed reading: pieces also break at every visit.
  double last_reading = readings[0];
  std::size_t next_visit = 1;
  double start = 0.0;
  while (start < horizon_months) {
    double end = std::min(std::floor(start) + 1.0, horizon_months);
    // Readings taken at or before `start` are known over the whole piece.
    while (next_visit < months.size() && months[next_visit] <= start) {
      if (!std::isnan(readings[next_visit])) last_reading = readings[next_visit];
      ++next_visit;
    }
    if (next_visit < months.size()) end = std::min(end, months[next_visit]);
    if (crosses(p, start, end - start, hazards(multiplier(last_reading)), threshold, cause_u, cumulative)) return;
    start = end;
  }
}

}  // namespace trialsim
