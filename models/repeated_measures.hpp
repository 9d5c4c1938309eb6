#pragma once
// A trial's post-baseline SPP in wide form, the input of the analyses that use every visit.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace trialsim {

// One row per randomized patient; J post-baseline visits, the last being the endpoint.
struct RepeatedMeasures {
  int visits = 0;  // J
  std::vector<std::int8_t> treated, stratum;
  std::vector<double> baseline;
  std::vector<double> y;            // n x J, row-major; ignored where !seen
  std::vector<std::uint8_t> seen;   // n x J
  // At an interim look, per patient: 1 if the last visit is missing only because it is not yet
  // due (administrative censoring, missing completely at random), not because the patient
  // withdrew; empty when every missing value is the patient's own (the final analysis).
  std::vector<std::uint8_t> pending;
  std::size_t patients() const { return baseline.size(); }
  // The arm and stratum of every patient as 0 or 1, converted in one loop without branches (the
  // analyses read them as design columns, and a branch per patient on them, which fall at random,
  // would mispredict half the time). The outputs grow to patients() and are never shrunk.
  void binary_columns(std::vector<double>& arm, std::vector<double>& strat) const {
    const std::size_t n = patients();
    if (arm.size() < n) arm.resize(n);
    if (strat.size() < n) strat.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      arm[i] = static_cast<double>(treated[i] != 0);
      strat[i] = static_cast<double>(stratum[i] != 0);
    }
  }
  void clear(int j) {
    visits = j;
    treated.clear();
    stratum.clear();
    baseline.clear();
    y.clear();
    seen.clear();
    pending.clear();
  }
};

}  // namespace trialsim
