#pragma once
// Figures of a run, a sweep or a sample-size search, rendered by Debian's gnuplot.
//
// Each figure is drawn from data files and a script written into a private temporary
// directory; gnuplot runs once per figure (argv, no shell) and writes an SVG and a PNG from
// the same script, so both show the same thing. Undefined (null) summary figures are left out
// of the data files, never written as NaN. Style: Okabe-Ito colours (safe for colour-blind
// readers) with distinct dash patterns and point shapes, legends outside the data area.
#include "sim/engine/summary.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

namespace trialsim {

struct Figure {
  std::string name;     // file stem, e.g. "power_curves"
  std::string title;    // one line
  std::string caption;  // 1-3 sentences saying how to read it, incl. what the bands are
  std::string svg;      // the rendered SVG text (standalone document)
  std::string png;      // the rendered PNG bytes
};

// Estimates of each method from the first trials of a run (kept in replicate order).
struct EstimateSamples {
  std::vector<std::pair<std::string, std::vector<double>>> by_method;  // method name -> estimates
  double true_effect = 0;
  std::uint64_t total_trials = 0;  // trials in the run (samples may be fewer: the first N)
};

// "consort" (mean patient flow), "estimates" (distribution of each method's estimate; left out
// when no method has two finite estimates in `samples`) and "rtm" (why the observed SPP
// changed, per arm; left out when no trial had completers). `summary` is SummaryAccumulator::to_json.
std::vector<Figure> run_figures(const nlohmann::json& summary, const EstimateSamples& samples);

// "power", "bias", "rtm_control" and "screening_burden" against the first axis of a sweep.json,
// one line per combination of the other axes (and per method while there is one axis).
std::vector<Figure> sweep_figures(const nlohmann::json& sweep);

// "samplesize": simulated power per n, the fitted curve and the chosen n.
std::vector<Figure> samplesize_figures(const nlohmann::json& samplesize);

// "calibration_change": each arm's mean change at a calibrated estimate, stacked from its parts
// (drift, regression to the mean, attrition, other, chance), with the observed change.
// `calibration` is CalibrationResult::to_json.
std::vector<Figure> calibrate_figures(const nlohmann::json& calibration);
// The analyses in `summary` in the scenario's order (scenario.analysis.methods), then any
// others; figures and reports list methods in this order.
std::vector<std::string> method_names(const nlohmann::json& summary);

// Text for XML or HTML: & < > " ' escaped.
std::string xml_escape(std::string_view s);

// Whether the number at a path of a scenario's JSON is above 0: a model part the scenario has
// (a rate, a probability). True where the key is absent (JSON written before it existed).
bool scenario_positive(const nlohmann::json& scenario, std::initializer_list<std::string_view> path);

// Writes DIR/<name>.svg and DIR/<name>.png for each figure, each atomically; creates DIR.
void write_figures(const std::vector<Figure>& figures, const std::string& dir);

// Every gnuplot call above throws InputError "--plots: gnuplot not found; install Debian's
// gnuplot-nox" when there is no gnuplot on PATH, and std::runtime_error with gnuplot's own
// message when it fails. Input that lacks what a figure needs throws InputError.

}  // namespace trialsim
