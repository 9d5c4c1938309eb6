#include "models/dropout.hpp"


#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

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
// a patient who drops out.
//
// The grid is monthly. With the hazard on the true SPP, each piece takes the true value at its
// middle. With the hazard on observed SPP, every visit month is also a break and each piece
// [a, b) takes the last reading taken at or before a: the hazard at time t depends only on
// readings that exist at t, so dropout is missing at random given the observed data for any
// visit schedule (Little & Rubin 2019, ch. 1 and 6), which the MMRM and imputation require.
namespace {

// Four rows as one value of GCC's generic vectors (one 256-bit register in the x86-64-v4 clone,
// two SSE2 ones in the portable clone): the same operations on each lane either way.
using Lanes = double __attribute__((vector_size(32)));
using Mask = long long __attribute__((vector_size(32)));
[[gnu::always_inline]] inline Lanes load8(const double* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
[[gnu::always_inline]] inline void store8(double* p, Lanes v) { std::memcpy(p, &v, sizeof v); }
[[gnu::always_inline]] inline Lanes splat(double x) { return Lanes{x, x, x, x}; }

// x[i] = e^x[i], computed once for each run of equal values (a column that takes one or two
// values, as the steps of a trial without individual slopes do, costs two exponentials).
void exp_of_few(double* x, std::size_t n) {
  std::size_t distinct = 0;
  for (std::size_t i = 1; i < n && distinct < 4; ++i) distinct += x[i] != x[i - 1];
  if (distinct >= 4) {
    draws::exp(x, n, x);
    return;
  }
  double last_in = 0, last_out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i == 0 || x[i] != last_in) {
      last_in = x[i];
      last_out = draws::exp(last_in);
    }
    x[i] = last_out;
  }
}

}  // namespace

// The cause of a dropout in a piece whose multiplier is m, from the patient's cause slot.
DropoutReason Dropout::cause(const UnitKey& unit, bool treated, double m) const {
  const double death = death_rate_ * m, transfer = transfer_rate_ * m + (treated ? treated_transfer_rate_ : 0.0);
  const double total = (death + transfer) + (treated ? treated_ae_rate_ : 0.0);
  Stream rng(unit, StreamKind::dropout, dropout_slot::cause);
  const double c = uniform01(rng) * total;
  return c < death ? DropoutReason::death : c < death + transfer ? DropoutReason::transfer : DropoutReason::adverse_event;
}

// The crossing of the threshold in a piece [start, start + width) with multiplier m, if any.
bool Dropout::crosses(Fate& f, const UnitKey& unit, bool treated, double start, double width, double m,
                      double threshold, double& cumulative) const {
  const double total = (death_rate_ * m + (transfer_rate_ * m + (treated ? treated_transfer_rate_ : 0.0))) +
                       (treated ? treated_ae_rate_ : 0.0);
  if (total > 0.0 && cumulative + total * width >= threshold) {
    f.month = start + (threshold - cumulative) / total;
    f.reason = cause(unit, treated, m);
    return true;
  }
  cumulative += total * width;
  return false;
}

// The walk for a patient whose hazard multiplier would pass e^700 somewhere: each piece's
// multiplier from its own exponent, capped there so that an extreme SPP cannot overflow the
// hazards (e^700 ~ 1e304).
Dropout::Fate Dropout::walk_capped(const UnitKey& unit, bool treated, const TruePath& path, double threshold) const {
  Fate f;
  double cumulative = 0.0;
  auto multiplier = [&](double mid) {
    return draws::exp(std::min(700.0, log_hr_per_mmHg_ * (cfg_.reference_spp - path.at(mid))));
  };
  for (int k = 0; k < whole_; ++k) {
    if (crosses(f, unit, treated, k, 1.0, multiplier(k + 0.5), threshold, cumulative)) return f;
  }
  if (width_ > 0) crosses(f, unit, treated, whole_, width_, multiplier(whole_ + 0.5 * width_), threshold, cumulative);
  return f;
}

Dropout::Fate Dropout::walk_observed(const UnitKey& unit, bool treated, const std::vector<double>& months,
                                     const double* readings, std::size_t stride, double threshold) const {
  Fate f;
  double cumulative = 0.0;
  // On the last observed reading: pieces also break at every visit.
  double last_reading = readings[0];
  std::size_t next_visit = 1;
  double start = 0.0;
  while (start < horizon_) {
    double end = std::min(std::floor(start) + 1.0, horizon_);
    // Readings taken at or before `start` are known over the whole piece.
    while (next_visit < months.size() && months[next_visit] <= start) {
      const double y = readings[next_visit * stride];
      if (!std::isnan(y)) last_reading = y;
      ++next_visit;
    }
    if (next_visit < months.size()) end = std::min(end, months[next_visit]);
    const double m = draws::exp(std::min(700.0, log_hr_per_mmHg_ * (cfg_.reference_spp - last_reading)));
    if (crosses(f, unit, treated, start, end - start, m, threshold, cumulative)) return f;
    start = end;
  }
  return f;
}

void Dropout::follow(const UnitColumns& units, TrialData& t, const std::vector<double>& months, Scratch& scratch) const {
  const std::size_t m = t.rows;
  std::fill_n(t.dropout_month.data(), m, std::numeric_limits<double>::infinity());
  std::fill_n(t.dropout_reason.data(), m, DropoutReason::none);
  const bool treated_can = treated_transfer_rate_ + treated_ae_rate_ > 0.0;
  // Nobody can leave: no draw.
  if (!(spp_rate_ > 0.0) && !treated_can) return;
  double* const threshold = scratch.col(0, m);
  draws::exponential(units, m, StreamKind::dropout, dropout_slot::threshold, threshold);
  if (cfg_.on_observed) {
    for (std::size_t r = 0; r < m; ++r) {
      const Fate f = walk_observed(units[r], t.arm[r] == Arm::treatment, months, t.observed.data() + r, m, threshold[r]);
      t.dropout_month[r] = f.month;
      t.dropout_reason[r] = f.reason;
    }
    return;
  }
  walk_true(units, t, threshold, scratch);
}

// The true SPP is linear in time before the effect's onset and after it, so over the whole
// months on either side the exponent is linear in the piece index and the multipliers are
// geometric, m0 f^k: every row's walk runs on multiplications, four rows at a time, the pieces
// in order. True SPP at a piece's middle m is TruePath::at(m) = level + slope m +
// effect effect_at(m)/effect.
TRIALSIM_VECTOR_LOOPS void Dropout::walk_true(const UnitColumns& units, TrialData& t, const double* threshold,
                                              Scratch& scratch) const {
  const std::size_t m = t.rows, padded = (m + 3) / 4 * 4;
  // The exponents of the multiplier at the middle of the first piece of the ramp run, of the run
  // after it and of the part-month, the runs' steps, and the ramp's length, per row.
  double* const e_ramp = scratch.col(1, padded);
  double* const e_after = scratch.col(2, padded);
  double* const e_part = scratch.col(3, padded);
  double* const s_ramp = scratch.col(4, padded);
  double* const s_after = scratch.col(5, padded);
  double* const n_ramp = scratch.col(6, padded);
  double* const fixed = scratch.col(7, padded);
  double* const thr = scratch.col(8, padded);
  double* const month = scratch.col(9, padded);
  double* const at = scratch.col(10, padded);  // multiplier of the piece crossed; 0: capped, walked alone
  const double* const level = t.path_level.data();
  const double* const slope = t.path_slope.data();
  const double* const effect = t.effect.data();
  const Arm* const arm = t.arm.data();
  const double L = log_hr_per_mmHg_, ref = cfg_.reference_spp, onset = onset_;
  const double ramp_months = ramp_, whole = whole_, width = width_, mid_part = whole_ + 0.5 * width_;
  const double fr = frac_ramp_, fa = frac_after_, fp = frac_part_;
  const double fixed_treated = treated_transfer_rate_ + treated_ae_rate_;
  TRIALSIM_COLUMNS for (std::size_t r = 0; r < padded; ++r) {
    // Rows past the last are padding, with a threshold no hazard reaches.
    const bool real = r < m;
    const double lv = real ? level[r] : ref, sl = real ? slope[r] : 0.0, ef = real ? effect[r] : 0.0;
    const bool ramps = ef != 0.0 && onset > 0.0;
    const double ramp = ramps ? ramp_months : 0.0;
    n_ramp[r] = ramp;
    e_ramp[r] = L * (ref - (lv + sl * 0.5 + ef * fr));
    e_after[r] = L * (ref - (lv + sl * (ramp + 0.5) + ef * fa));
    e_part[r] = L * (ref - (lv + sl * mid_part + ef * fp));
    s_ramp[r] = ramps ? -L * (sl + ef / onset) : 0.0;
    s_after[r] = -L * sl;
    fixed[r] = real && arm[r] == Arm::treatment ? fixed_treated : 0.0;
    thr[r] = real ? threshold[r] : std::numeric_limits<double>::infinity();
    // Whether a multiplier would pass e^700: such rows are walked alone (capped).
    const double after = whole - ramp;
    const bool capped = (ramp > 0 && !(std::max(e_ramp[r], e_ramp[r] + (ramp - 1) * s_ramp[r]) < 700.0)) ||
                        (after > 0 && !(std::max(e_after[r], e_after[r] + (after - 1) * s_after[r]) < 700.0)) ||
                        (width > 0 && !(e_part[r] < 700.0));
    at[r] = capped ? 0.0 : 1.0;
    e_ramp[r] = capped ? 0.0 : e_ramp[r];
    e_after[r] = capped ? 0.0 : e_after[r];
    e_part[r] = capped ? 0.0 : e_part[r];
  }
  draws::exp(e_ramp, padded, e_ramp);
  draws::exp(e_after, padded, e_after);
  if (width_ > 0) draws::exp(e_part, padded, e_part);
  // The steps are the same for every row of an arm unless patients have slopes of their own or
  // effects of their own size.
  exp_of_few(s_ramp, padded);
  exp_of_few(s_after, padded);
  const Lanes dr = splat(death_rate_), tr = splat(transfer_rate_), tt = splat(treated_transfer_rate_);
  for (std::size_t c = 0; c < padded; c += 4) {
    const Lanes ramp = load8(n_ramp + c), f_ramp = load8(s_ramp + c), f_after = load8(s_after + c);
    const Lanes fix = load8(fixed + c), th = load8(thr + c), live = load8(at + c);
    // The fixed hazards split into transfer and adverse events, as the cause draw needs them.
    const Mask treated = fix != 0.0;
    const Lanes tt_r = treated ? tt : splat(0.0), ae_r = fix - tt_r;
    Lanes run_ramp = load8(e_ramp + c), run_after = load8(e_after + c);
    // Where the threshold is crossed: the piece's start, the hazard before it and the piece's
    // hazard rate and multiplier (the month is worked out once, after the walk).
    Lanes cum = splat(0.0), hit_start = splat(std::numeric_limits<double>::infinity()), hit_cum = splat(0.0),
          hit_total = splat(1.0), hit_m = splat(0.0);
    Mask done = live == 0.0;  // capped rows take no part here
    for (int k = 0; k < whole_; ++k) {
      const Mask in_ramp = splat(k) < ramp;
      const Lanes mult = in_ramp ? run_ramp : run_after;
      const Lanes total = (dr * mult + (tr * mult + tt_r)) + ae_r;
      const Lanes next = cum + total;
      const Mask hit = (done == 0) & (total > 0.0) & (next >= th);
      hit_start = hit ? splat(k) : hit_start;
      hit_cum = hit ? cum : hit_cum;
      hit_total = hit ? total : hit_total;
      hit_m = hit ? mult : hit_m;
      done |= hit;
      cum = next;
      run_ramp = run_ramp * f_ramp;
      run_after = in_ramp ? run_after : run_after * f_after;
    }
    if (width_ > 0) {
      const Lanes mult = load8(e_part + c);
      const Lanes total = (dr * mult + (tr * mult + tt_r)) + ae_r;
      const Mask hit = (done == 0) & (total > 0.0) & (cum + total * width >= th);
      hit_start = hit ? splat(whole) : hit_start;
      hit_cum = hit ? cum : hit_cum;
      hit_total = hit ? total : hit_total;
      hit_m = hit ? mult : hit_m;
    }
    store8(month + c, hit_start + (th - hit_cum) / hit_total);
    store8(at + c, live == 0.0 ? splat(0.0) : hit_m + splat(1.0));
  }
  for (std::size_t r = 0; r < m; ++r) {
    const bool treated = arm[r] == Arm::treatment;
    if (at[r] == 0.0) {
      const Fate f = walk_capped(units[r], treated, t.path(r), threshold[r]);
      t.dropout_month[r] = f.month;
      t.dropout_reason[r] = f.reason;
    } else if (month[r] < std::numeric_limits<double>::infinity()) {
      t.dropout_month[r] = month[r];
      t.dropout_reason[r] = cause(units[r], treated, at[r] - 1.0);
    }
  }
}

}  // namespace trialsim
