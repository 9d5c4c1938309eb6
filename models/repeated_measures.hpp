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
