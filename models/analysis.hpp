#pragma once
// Per-trial analyses of the treatment effect (MgO minus control) at the last visit.
#include "models/estimate.hpp"
#include "models/ipw.hpp"
#include "models/mi_delta.hpp"
#include "models/mmrm.hpp"
#include "models/trial_data.hpp"
#include "sim/io/config_reader.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <vector>

namespace trialsim {

enum class Method : std::uint8_t { completers_ttest, completers_welch, change_ttest, ancova, mmrm, ipw_ancova, mi_delta };
inline constexpr std::size_t kMethods = 7;

std::string_view method_name(Method m);
// The method of a name, if any.
std::optional<Method> method_from_name(std::string_view name);
// Every method's name, in enum order.
std::vector<std::string> all_method_names();

// Sufficient statistics of one arm's completers for the t tests and ANCOVA: the final value y,
// the baseline x and the stratum s (0/1), as sums of dy = y - y_1 and dx = x - x_1, shifted by
// the arm's first values so that the sums of squares lose nothing to cancellation (the shifted
// data algorithm; Chan, Golub & LeVeque, Am Stat 1983) and a constant arm has exactly zero
// variance.
struct ArmSums {
  std::size_t n = 0;    // completers
  std::size_t n_s = 0;  // of them in stratum 1
  double shift_y = 0, shift_x = 0;
  double y = 0, x = 0, yy = 0, xx = 0, xy = 0, dd = 0;  // sums of dy, dx, dy^2, dx^2, dx dy, (dy - dx)^2
  double sy = 0, sx = 0;                                // sums of s dy, s dx
  void add(double final_value, double baseline, bool stratum) {
    if (n == 0) {
      shift_y = final_value;
      shift_x = baseline;
    }
    const double dy = final_value - shift_y, dx = baseline - shift_x, dd_i = dy - dx;
    ++n;
    y += dy;
    x += dx;
    yy += dy * dy;
    xx += dx * dx;
    xy += dx * dy;
    dd += dd_i * dd_i;
    if (stratum) {
      ++n_s;
      sy += dy;
      sx += dx;
    }
  }
};

// The completers of both arms: [0] control, [1] treatment (arm_index).
struct CompleterSums {
  std::array<ArmSums, 2> arm;
  void clear() { arm = {}; }
};

// Two-sample Student t test with pooled variance (treatment minus control) on the final values,
// or on the change from baseline.
Estimate student_t(const ArmSums& treatment, const ArmSums& control, double alpha, bool change = false);
Estimate student_t(std::span<const double> treatment, std::span<const double> control, double alpha);
// Welch's t test with Welch-Satterthwaite degrees of freedom (Welch, Biometrika 1947).
Estimate welch_t(const ArmSums& treatment, const ArmSums& control, double alpha);
Estimate welch_t(std::span<const double> treatment, std::span<const double> control, double alpha);
// ANCOVA by least squares: y ~ 1 + arm + baseline [+ stratum]; effect = arm coefficient with
// its classical SE and t on n - p df. The stratum column is dropped when constant.
Estimate ancova(const ArmSums& treatment, const ArmSums& control, double alpha);
Estimate ancova(std::span<const double> y, std::span<const double> baseline, std::span<const std::int8_t> treated,
                std::span<const std::int8_t> stratum, double alpha);

struct AnalysisConfig {
  std::vector<Method> methods{Method::completers_ttest, Method::completers_welch, Method::change_ttest, Method::ancova,
                              Method::mmrm, Method::ipw_ancova, Method::mi_delta};
  double alpha = 0.05;  // of the two-sided intervals (Hypothesis::interval_alpha of trial.alpha)
  // Kenward-Roger by default: at small n the plug-in SE with Satterthwaite df rejects too often.
  MmrmDf mmrm_df = MmrmDf::kenward_roger;
  MiSettings mi;

  static AnalysisConfig read(ConfigReader& in, double alpha);
};

// What a method does, as the summary describes it (the MMRM's with its df rule).
std::string method_description(Method m, const AnalysisConfig& cfg);

// Reusable buffers so the per-trial analyses do not allocate.
struct AnalysisWorkspace {
  RepeatedMeasures visits;
  std::vector<double> due;        // per row: how many of its visits are due at an interim look
  std::vector<double> follow_up;  // per row: months since entry at the look
};

class Analysis {
 public:
  explicit Analysis(const AnalysisConfig& cfg) : cfg_(cfg) {}
  // Every configured method on one trial (other entries stay not estimable). Methods that
  // draw random numbers use their own analysis sub-stream of (seed, replicate), so adding a
  // method never changes another's results; the post-baseline table is built at most once
  // and shared by mmrm, ipw_ancova and mi_delta.
  // `completers`: the sums of the trial's completers (built by the caller's pass over them).
  std::array<Estimate, kMethods> estimate_all(const TrialData& trial, const CompleterSums& completers,
                                              AnalysisWorkspace& ws, std::uint64_t seed, std::uint64_t replicate) const;
  // The methods in `methods` on the data an interim look at calendar month `tau` sees: the
  // first `rows` randomized rows (those entered by then), the visit at month months[k] of row r
  // only where it is seen and due (entry[r] + months[k] <= tau). `look` (>= 1) gives the
  // random methods an analysis stream of their own for the look.
  std::array<Estimate, kMethods> estimate_look(const TrialData& trial, std::size_t rows, const double* entry,
                                               const std::vector<double>& months, double tau,
                                               const std::vector<Method>& methods, AnalysisWorkspace& ws,
                                               std::uint64_t seed, std::uint64_t replicate, std::uint64_t look) const;
  const AnalysisConfig& config() const { return cfg_; }

 private:
  std::array<Estimate, kMethods> estimate(const TrialData& trial, const CompleterSums& completers, std::size_t rows,
                                          const double* due, const std::vector<Method>& methods,
                                          AnalysisWorkspace& ws, std::uint64_t seed, std::uint64_t replicate,
                                          std::uint64_t look) const;
  AnalysisConfig cfg_;
};

}  // namespace trialsim
