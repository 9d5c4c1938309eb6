#include "models/dropout.hpp"
#include "sim/engine/lanes.hpp"


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

// x[i] = e^x[i], with two exponentials where the column takes at most two values (the steps of
// a trial without individual slopes or effects take one value per arm), else the vector loop.
// Branch-free selects: the arms alternate at random, so a branch per row would mispredict.
TRIALSIM_VECTOR_LOOPS void exp_of_few(double* x, std::size_t n) {
  if (n == 0) return;
  const double a = x[0];
  double b = a;
  for (std::size_t i = 1; i < n; ++i) {
    if (x[i] != a) {
      b = x[i];
      break;
    }
  }
  std::size_t other = 0;
  TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) other += (x[i] != a) & (x[i] != b);
  if (other != 0 || std::isnan(a) || std::isnan(b)) {
    draws::exp(x, n, x);
    return;
  }
  const double ea = draws::exp(a), eb = draws::exp(b);
  TRIALSIM_COLUMNS for (std::size_t i = 0; i < n; ++i) x[i] = x[i] == a ? ea : eb;
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
// geometric, m0 f^k: a run of n pieces adds (death + transfer) m0 (f^n - 1)/(f - 1) + (fixed
// hazards) n. That closed form screens every row at once; only rows whose cumulative hazard to
// the horizon comes within a relative 1e-6 of their threshold are walked piece by piece, on the
// same multipliers (m0, then m0 f, m0 f^2, ...), to the piece where it is crossed. True SPP at a
// piece's middle m is TruePath::at(m) = level + slope m + effect effect_at(m)/effect.
TRIALSIM_VECTOR_LOOPS void Dropout::walk_true(const UnitColumns& units, TrialData& t, const double* threshold,
                                              Scratch& scratch) const {
  const std::size_t m = t.rows;
  // Per row: the first run (the ramp's, or the run after it where there is no ramp) and the
  // second (after the ramp, for rows that have both): the exponent at the first piece's middle,
  // the step, the number of pieces; and the part-month's exponent.
  double* const e1 = scratch.col(1, m);
  double* const s1 = scratch.col(2, m);
  double* const n1 = scratch.col(3, m);
  double* const e2 = scratch.col(4, m);
  double* const s2 = scratch.col(5, m);
  double* const n2 = scratch.col(6, m);
  double* const ep = scratch.col(7, m);
  double* const g1 = scratch.col(8, m);
  double* const g2 = scratch.col(9, m);
  double* const total = scratch.col(10, m);
  double* const x1 = scratch.col(11, m);
  double* const x2 = scratch.col(12, m);
  double* const f1 = scratch.col(13, m);
  double* const f2 = scratch.col(14, m);
  double* const capped = scratch.col(15, m);
  const double* const level = t.path_level.data();
  const double* const slope = t.path_slope.data();
  const double* const effect = t.effect.data();
  const double* const treated = t.treated.data();
  const double L = log_hr_per_mmHg_, ref = cfg_.reference_spp, onset = onset_;
  const double ramp_months = ramp_, whole = whole_, width = width_, mid_part = whole_ + 0.5 * width_;
  const double fr = frac_ramp_, fa = frac_after_, fp = frac_part_;
  // Sum of f^k, k < n: (f^n - 1)/(f - 1), or its series where the step s = ln f is so small that
  // the quotient would lose digits (within 1e-9 relative for |s| < 1e-5 and n <= 240).
  auto geometric = [](double step, double n, double fn, double f) {
    const double sn = step * (n - 1);
    return std::abs(step) < 1e-5 ? n * (1.0 + sn / 2.0 + step * sn * (2.0 * n - 1.0) / 6.0) : (fn - 1.0) / (f - 1.0);
  };
  const double rate = spp_rate_, fixed_treated = (treated_transfer_rate_ + treated_ae_rate_) * horizon_;
  // Whether every row of an arm has the same slope and effect (no individual slopes, effects or
  // non-adherence): then each arm's steps, run lengths and geometric sums are computed once, and
  // the rows differ only in their level. The same IEEE steps either way, so the same bits.
  std::array<std::size_t, 2> first_row{m, m};
  for (std::size_t r = 0; r < m && (first_row[0] == m || first_row[1] == m); ++r) {
    std::size_t& f = first_row[treated[r] != 0.0 ? 1 : 0];
    if (f == m) f = r;
  }
  std::array<double, 2> arm_slope{}, arm_effect{};
  for (std::size_t a = 0; a < 2; ++a) {
    if (first_row[a] < m) {
      arm_slope[a] = slope[first_row[a]];
      arm_effect[a] = effect[first_row[a]];
    }
  }
  std::size_t differ = 0;
  const double sl0 = arm_slope[0], sl1 = arm_slope[1], ef0 = arm_effect[0], ef1 = arm_effect[1];
  TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
    const bool tr = treated[r] != 0.0;
    const double sl = tr ? sl1 : sl0, ef = tr ? ef1 : ef0;
    differ += (slope[r] != sl) | (effect[r] != ef) ? 1 : 0;
  }
  const bool uniform = differ == 0;
  // An arm's runs: steps s1, s2 (ln of the multipliers' ratio), pieces n1, n2, e^s and the
  // geometric sums G = sum of f^k, k < n.
  struct ArmRuns {
    double s1 = 0, n1 = 0, f1 = 1, G1 = 0, s2 = 0, n2 = 0, f2 = 1, G2 = 0;
  };
  std::array<ArmRuns, 2> K{};
  bool two_runs = false;
  if (uniform) {
    for (std::size_t a = 0; a < 2; ++a) {
      if (first_row[a] == m) continue;
      const double sl = arm_slope[a], ef = arm_effect[a];
      const bool ramps = ef != 0.0 && onset > 0.0 && ramp_months > 0.0;
      const double ramp = ramps ? ramp_months : 0.0, after = whole - ramp;
      ArmRuns& k = K[a];
      k.s1 = ramps ? -L * (sl + ef / onset) : -L * sl;
      k.n1 = ramps ? ramp : after;
      k.s2 = -L * sl;
      k.n2 = ramps ? after : 0.0;
      k.f1 = draws::exp(k.s1);
      k.f2 = draws::exp(k.s2);
      k.G1 = k.n1 > 0 ? geometric(k.s1, k.n1, draws::exp(k.s1 * k.n1), k.f1) : 0.0;
      k.G2 = k.n2 > 0 ? geometric(k.s2, k.n2, draws::exp(k.s2 * k.n2), k.f2) : 0.0;
      two_runs = two_runs || k.n2 > 0;
    }
    const ArmRuns k0 = K[0], k1 = K[1];
    TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
      const double lv = level[r], sl = slope[r], ef = effect[r];
      const bool tr = treated[r] != 0.0;
      const bool ramps = ef != 0.0 && onset > 0.0 && ramp_months > 0.0;
      const double ramp = ramps ? ramp_months : 0.0;
      const double rn1 = tr ? k1.n1 : k0.n1, rs1 = tr ? k1.s1 : k0.s1, rn2 = tr ? k1.n2 : k0.n2,
                   rs2 = tr ? k1.s2 : k0.s2;
      const double e_ramp = L * (ref - (lv + sl * 0.5 + ef * fr));
      const double e_after = L * (ref - (lv + sl * (ramp + 0.5) + ef * fa));
      const double a1 = ramps ? e_ramp : e_after, a2 = e_after, ap = L * (ref - (lv + sl * mid_part + ef * fp));
      const bool over = (rn1 > 0 && !(std::max(a1, a1 + (rn1 - 1) * rs1) < 700.0)) ||
                        (rn2 > 0 && !(std::max(a2, a2 + (rn2 - 1) * rs2) < 700.0)) ||
                        (width > 0 && !(ap < 700.0));
      capped[r] = over ? 1.0 : 0.0;
      e1[r] = over ? 0.0 : a1;
      e2[r] = over ? 0.0 : a2;
      ep[r] = over ? 0.0 : ap;
    }
    draws::exp(e1, m, x1);
    if (two_runs) draws::exp(e2, m, x2);
    if (width_ > 0) draws::exp(ep, m, ep);
    TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
      const bool tr = treated[r] != 0.0;
      const double rn1 = tr ? k1.n1 : k0.n1, rn2 = tr ? k1.n2 : k0.n2, G1 = tr ? k1.G1 : k0.G1,
                   G2 = tr ? k1.G2 : k0.G2;
      const double a = rn1 > 0 ? rate * x1[r] * G1 : 0.0;
      const double b = rn2 > 0 ? rate * x2[r] * G2 : 0.0;
      const double c = width > 0 ? rate * ep[r] * width : 0.0;
      total[r] = ((treated[r] * fixed_treated + a) + b) + c;
    }
  } else {
    TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
      const double lv = level[r], sl = slope[r], ef = effect[r];
      const bool ramps = ef != 0.0 && onset > 0.0 && ramp_months > 0.0;
      const double ramp = ramps ? ramp_months : 0.0, after = whole - ramp;
      const double e_ramp = L * (ref - (lv + sl * 0.5 + ef * fr));
      const double e_after = L * (ref - (lv + sl * (ramp + 0.5) + ef * fa));
      const double s_ramp = -L * (sl + ef / onset), s_after = -L * sl;
      e1[r] = ramps ? e_ramp : e_after;
      s1[r] = ramps ? s_ramp : s_after;
      n1[r] = ramps ? ramp : after;
      e2[r] = e_after;
      s2[r] = s_after;
      n2[r] = ramps ? after : 0.0;
      ep[r] = L * (ref - (lv + sl * mid_part + ef * fp));
      // Whether a multiplier would pass e^700: such rows are walked on their own exponents.
      const bool over = (n1[r] > 0 && !(std::max(e1[r], e1[r] + (n1[r] - 1) * s1[r]) < 700.0)) ||
                        (n2[r] > 0 && !(std::max(e2[r], e2[r] + (n2[r] - 1) * s2[r]) < 700.0)) ||
                        (width > 0 && !(ep[r] < 700.0));
      capped[r] = over ? 1.0 : 0.0;
      e1[r] = over ? 0.0 : e1[r];
      e2[r] = over ? 0.0 : e2[r];
      ep[r] = over ? 0.0 : ep[r];
      s1[r] = over ? 0.0 : s1[r];
      s2[r] = over ? 0.0 : s2[r];
      g1[r] = s1[r] * n1[r];
      g2[r] = s2[r] * n2[r];
    }
    std::size_t second = 0;
    TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) second += n2[r] > 0;
    two_runs = second > 0;
    draws::exp(e1, m, x1);
    std::copy_n(s1, m, f1);
    exp_of_few(f1, m);
    exp_of_few(g1, m);
    if (two_runs) {
      draws::exp(e2, m, x2);
      std::copy_n(s2, m, f2);
      exp_of_few(f2, m);
      exp_of_few(g2, m);
    }
    if (width_ > 0) draws::exp(ep, m, ep);
    TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
      const double a = n1[r] > 0 ? rate * x1[r] * geometric(s1[r], n1[r], g1[r], f1[r]) : 0.0;
      const double b = n2[r] > 0 ? rate * x2[r] * geometric(s2[r], n2[r], g2[r], f2[r]) : 0.0;
      const double c = width > 0 ? rate * ep[r] * width : 0.0;
      total[r] = ((treated[r] * fixed_treated + a) + b) + c;
    }
  }
  // The rows to walk (capped, or within the screen's margin of their threshold): flagged in a
  // vector loop (g1 is free by now), then listed without a branch per row.
  double* const flag = g1;
  TRIALSIM_COLUMNS for (std::size_t r = 0; r < m; ++r) {
    flag[r] = capped[r] != 0.0 || !(total[r] * (1.0 + 1e-6) < threshold[r]) ? 1.0 : 0.0;
  }
  std::uint32_t* const walk_rows = room(scratch.rows, m);
  std::size_t walks = 0;
  for (std::size_t r = 0; r < m; ++r) {
    walk_rows[walks] = static_cast<std::uint32_t>(r);
    walks += static_cast<std::size_t>(flag[r]);
  }
  // The walk on the multipliers, four rows at a time in lanes, each lane the same IEEE steps as
  // one row walked alone: pieces k < n1 of run 1 (multiplier x1 f1^k), then run 2 from k = n1
  // (x2 f2^(k - n1)), then the part-month (ep). A piece's all-cause hazard is (death + transfer)
  // multiplier + the treatment arm's fixed rates; the walk stops at the first piece where the
  // cumulative hazard reaches the threshold. Capped rows are walked alone on their own exponents.
  constexpr std::size_t W = 4;  // rows per walk: the lanes of Lanes
  const double fixed_rate = treated_transfer_rate_ + treated_ae_rate_;
  const Lanes zero{}, rate_l = splat(rate), width_l = splat(width);
  std::array<std::size_t, W> lane_row{};
  std::size_t next = 0;
  while (next < walks) {
    // Up to four uncapped rows into lanes; lanes left over never cross (threshold infinite)
    // and count as done for the early stop.
    std::array<double, W> thr_a{}, fixed_a{}, x1_a{}, f1_a{}, x2_a{}, f2_a{}, ep_a{}, n1_a{};
    thr_a.fill(std::numeric_limits<double>::infinity());
    std::size_t used = 0;
    while (used < W && next < walks) {
      const std::size_t r = walk_rows[next++];
      const bool tr = treated[r] != 0.0;
      if (capped[r] != 0.0) {
        const Fate f = walk_capped(units[r], tr, t.path(r), threshold[r]);
        t.dropout_month[r] = f.month;
        t.dropout_reason[r] = f.reason;
        continue;
      }
      lane_row[used] = r;
      thr_a[used] = threshold[r];
      fixed_a[used] = tr ? fixed_rate : 0.0;
      x1_a[used] = x1[r];
      const ArmRuns& k = K[tr ? 1 : 0];
      f1_a[used] = uniform ? k.f1 : f1[r];
      x2_a[used] = two_runs ? x2[r] : 0.0;
      f2_a[used] = !two_runs ? 0.0 : uniform ? k.f2 : f2[r];
      ep_a[used] = width > 0 ? ep[r] : 0.0;
      n1_a[used] = uniform ? k.n1 : n1[r];
      ++used;
    }
    if (used == 0) continue;
    const Lanes thr = load_lanes(thr_a.data()), fixed = load_lanes(fixed_a.data()), f1l = load_lanes(f1_a.data()),
                x2l = load_lanes(x2_a.data()), f2l = load_lanes(f2_a.data()), n1l = load_lanes(n1_a.data());
    Lanes mult = load_lanes(x1_a.data()), cumulative = zero, start = zero, piece_at = zero, cum_at = zero,
          mult_at = zero;
    LaneMask hit = LaneMask{} != LaneMask{};
    const LaneMask done = LaneMask{0, 1, 2, 3} >= static_cast<long long>(used);
    for (int k = 0; k < whole_; ++k) {
      const Lanes kl = splat(k);
      mult = kl == n1l ? x2l : mult;
      const Lanes piece = rate_l * mult + fixed, reached = cumulative + piece;
      const LaneMask now = ~hit & (piece > zero) & (reached >= thr);
      start = now ? kl : start;
      piece_at = now ? piece : piece_at;
      cum_at = now ? cumulative : cum_at;
      mult_at = now ? mult : mult_at;
      hit |= now;
      cumulative += piece;
      mult *= kl < n1l ? f1l : f2l;
      if (all_lanes(hit | done)) break;
    }
    if (width_ > 0) {
      const Lanes ep_l = load_lanes(ep_a.data()), piece = rate_l * ep_l + fixed;
      const LaneMask now = ~hit & (piece > zero) & (cumulative + piece * width_l >= thr);
      start = now ? splat(whole_) : start;
      piece_at = now ? piece : piece_at;
      cum_at = now ? cumulative : cum_at;
      mult_at = now ? ep_l : mult_at;
      hit |= now;
    }
    for (std::size_t j = 0; j < used; ++j) {
      if (hit[j] == 0) continue;
      const std::size_t r = lane_row[j];
      t.dropout_month[r] = start[j] + (thr[j] - cum_at[j]) / piece_at[j];
      t.dropout_reason[r] = cause(units[r], treated[r] != 0.0, mult_at[j]);
    }
  }
}

}  // namespace trialsim
