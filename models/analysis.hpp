#pragma once
// Per-trial analyses of the treatment effect (MgO minus control) at the last visit.
#include "models/estimate.hpp"
#include "models/ipw.hpp"
#include "models/mi_delta.hpp"
#include "models/mmrm.hpp"
#include "models/trial_data.hpp"
#include "sim/config_reader.hpp"

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

// Two-sample Student t test with pooled variance (treatment minus control).
Estimate student_t(std::span<const double> treatment, std::span<const double> control, double alpha);
// Welch's t test with Welch-Satterthwaite degrees of freedom (Welch, Biometrika 1947).
Estimate welch_t(std::span<const double> treatment, std::span<const double> control, double alpha);
// ANCOVA by least squares: y ~ 1 + arm + baseline [+ stratum]; effect = arm coefficient with
// its classical SE and t on n - p df. The stratum column is dropped when constant.
Estimate ancova(std::span<const double> y, std::span<const double> baseline, std::span<const std::int8_t> treated,
                std::span<const std::int8_t> stratum, double alpha);

struct AnalysisConfig {
  std::vector<Method> methods{Method::completers_ttest, Method::completers_welch, Method::change_ttest, Method::ancova,
                              Method::mmrm, Method::ipw_ancova, Method::mi_delta};
  double alpha = 0.05;
  // Kenward-Roger by default: at small n the plug-in SE with Satterthwaite df rejects too often.
  MmrmDf mmrm_df = MmrmDf::kenward_roger;
  MiSettings mi;

  static AnalysisConfig read(ConfigReader& in, double alpha);
};

// What a method does, as the summary describes it (the MMRM's with its df rule).
std::string method_description(Method m, const AnalysisConfig& cfg);

// Reusable buffers so the per-trial analyses do not allocate.
struct AnalysisWorkspace {
  std::vector<double> a, b, y, base;
  std::vector<std::int8_t> arm, stratum;
  RepeatedMeasures visits;
};

class Analysis {
 public:
  explicit Analysis(const AnalysisConfig& cfg) : cfg_(cfg) {}
  // Every configured method on one trial (other entries stay not estimable). Methods that
  // draw random numbers use their own analysis sub-stream of (seed, replicate), so adding a
  // method never changes another's results; the post-baseline table is built at most once
  // and shared by mmrm, ipw_ancova and mi_delta.
  std::array<Estimate, kMethods> estimate_all(const TrialData& trial, AnalysisWorkspace& ws, std::uint64_t seed,
                                              std::uint64_t replicate) const;
  const AnalysisConfig& config() const { return cfg_; }

 private:
  // The completers analyses: t tests and ANCOVA on patients seen at the last visit.
  Estimate completers(Method m, const TrialData& trial, AnalysisWorkspace& ws) const;
  AnalysisConfig cfg_;
};

}  // namespace trialsim
