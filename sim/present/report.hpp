#pragma once
// Self-contained HTML reports: one page with the run's, sweep's or sample-size search's tables
// and figures. Nothing is fetched when the page is opened (inline CSS, inline SVG, no scripts
// or fonts), so the file can be mailed or archived as it is. All text is HTML-escaped.
#include "sim/present/plots.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace trialsim {

// `summary` is SummaryAccumulator::to_json; `figures` as from run_figures (any may be left out).
std::string run_report_html(const nlohmann::json& summary, const std::vector<Figure>& figures);
// `sweep` is a sweep's sweep.json.
std::string sweep_report_html(const nlohmann::json& sweep, const std::vector<Figure>& figures);
// `samplesize` is the sample-size search's JSON (see samplesize_figures).
std::string samplesize_report_html(const nlohmann::json& samplesize, const std::vector<Figure>& figures);

// `calibration` is CalibrationResult::to_json: estimates, identification, fit table and the
// decomposition of each arm's change.
std::string calibrate_report_html(const nlohmann::json& calibration, const std::vector<Figure>& figures);
// Writes a page to `path` atomically (AtomicFile).
void write_report(const std::string& html, const std::string& path);

}  // namespace trialsim
