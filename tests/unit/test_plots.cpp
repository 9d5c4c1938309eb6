#include "sim/io/config_reader.hpp"
#include "sim/present/plots.hpp"
#include "sim/present/report.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

using namespace trialsim;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

bool have_gnuplot() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  for (std::string d; std::getline(dirs, d, ':');) {
    if (!d.empty() && ::access((fs::path(d) / "gnuplot").c_str(), X_OK) == 0) return true;
  }
  return false;
}

#define REQUIRE_GNUPLOT()                                          \
  if (!have_gnuplot()) {                                           \
    WARN("gnuplot is not installed; skipping (apt-get install gnuplot-nox)"); \
    return;                                                        \
  }

// Restores an environment variable when the test ends, however it ends.
class EnvGuard {
 public:
  EnvGuard(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;
  ~EnvGuard() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("trialsim_test_plots_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

json est(std::optional<double> v, std::optional<double> se) {
  return {{"estimate", v ? json(*v) : json(nullptr)}, {"mcse", se ? json(*se) : json(nullptr)}};
}

json count(double mean, double sd, double lo, double hi) {
  return {{"estimate", mean}, {"mcse", sd / 30}, {"sd", sd}, {"min", lo}, {"max", hi}, {"trials", 1000}};
}

// A summary shaped like SummaryAccumulator::to_json, with power rising in `n`. With `holes`,
// some figures are undefined (null), as they are when no trial could estimate.
json synthetic_summary(double n, const std::vector<std::string>& methods, bool holes = false) {
  json analyses = json::object();
  for (std::size_t i = 0; i < methods.size(); ++i) {
    const double power = std::min(0.95, 0.1 + n / 250.0 + 0.03 * static_cast<double>(i));
    json a = {{"power", est(power, 0.01)},
              {"bias", est(0.1 * static_cast<double>(i) - 0.05, 0.04)},
              {"mean_estimate", est(8.0, 0.04)},
              {"emp_se", est(4.0, 0.03)},
              {"model_se", est(4.1, 0.01)},
              {"rmse", est(4.0, 0.03)},
              {"coverage", est(0.95, 0.005)},
              {"relative_se_error_pct", est(1.0, 1.0)},
              {"description", "method " + methods[i] + " & <friends>"},
              {"estimable", 1000},
              {"not_estimable", {{"total", 0}}}};
    if (holes && i == 0) {
      a["bias"] = est(std::nullopt, std::nullopt);
      a["power"] = est(power, std::nullopt);
      a["emp_se"] = est(std::nullopt, std::nullopt);
    }
    analyses[methods[i]] = a;
  }
  json rtm = json::object();
  for (const char* arm : {"treatment", "control"}) {
    rtm[arm] = {{"observed_change", {{"estimate", 9.8}, {"mcse", 0.06}}},
                {"drift", {{"estimate", 8.0}, {"mcse", 0.03}}},
                {"slope_selection", {{"estimate", holes ? json(nullptr) : json(-0.15)}, {"mcse", 0.04}}},
                {"treatment_effect", {{"estimate", std::string(arm) == "treatment" ? 8.0 : 0.0}, {"mcse", 0.0}}},
                {"regression_to_mean", {{"estimate", 1.5 - n / 1000}, {"mcse", holes ? json(nullptr) : json(0.03)}}},
                {"attrition", {{"estimate", 0.45}, {"mcse", 0.02}}}};
  }
  json funnel = {{"consented", count(n, 0, n, n)},
                 {"excluded_prior_mg", count(3, 1.7, 0, 9)},
                 {"lost_pre_baseline", count(8, 2.7, 1, 21)},
                 {"excluded_entry_above_max", count(9.3, 2.9, 1, 23)},
                 {"excluded_entry_below_min", count(0, 0, 0, 0)},
                 {"randomized", count(n * 0.8, 4, n * 0.7, n * 0.9)},
                 {"allocated", {{"treatment", count(n * 0.4, 2, 30, 50)}, {"control", count(n * 0.4, 2, 30, 50)}}},
                 {"completed", {{"treatment", count(32, 3, 21, 43)}, {"control", count(39, 2.7, 31, 47)}}}};
  for (const char* arm : {"treatment", "control"}) {
    funnel["withdrawn"][arm] = {{"total", count(10, 3, 2, 20)},
                                {"death", count(4, 2, 0, 11)},
                                {"transfer", count(1.5, 1, 0, 6)},
                                {"adverse_event", count(std::string(arm) == "treatment" ? 4.5 : 0, 2, 0, 12)}};
  }
  if (holes) funnel["randomized"]["sd"] = nullptr;
  return {{"trialsim_version", "0.1.0"},
          {"seed", 7},
          {"replicates", 1000},
          {"true_effect", 8.0},
          {"alpha", 0.05},
          {"scenario",
           {{"source", "configs/<script>alert(1)</script>.toml"},
            {"trial", {{"consented", n}, {"months", {0, 6, 12}}}},
            {"screening", {{"entry_max", 80.0}, {"entry_min", 20.0}}}}},
          {"analyses", analyses},
          {"funnel", funnel},
          {"rtm", rtm}};
}

// A sweep.json over the product of `axes` (first axis slowest), as `trialsim sweep` writes it.
json synthetic_sweep(const std::vector<std::pair<std::string, std::vector<std::string>>>& axes,
                     const std::vector<std::string>& methods, bool holes = false) {
  json axis_list = json::array();
  std::size_t total = 1;
  for (const auto& [key, values] : axes) {
    axis_list.push_back({{"key", key}, {"values", values}});
    total *= values.size();
  }
  json points = json::array();
  for (std::size_t p = 0; p < total; ++p) {
    json pa = json::object();
    std::size_t rest = p;
    double n = 60;
    for (std::size_t a = axes.size(); a-- > 0;) {
      const auto& values = axes[a].second;
      const std::size_t idx = rest % values.size();
      rest /= values.size();
      pa[axes[a].first] = values[idx];
      n += 20.0 * static_cast<double>(idx) * (a == 0 ? 1 : 0.5);
    }
    points.push_back({{"hash", "h" + std::to_string(p)},
                      {"axes", pa},
                      {"seed", 1},
                      {"summary", synthetic_summary(n, methods, holes && p % 2 == 1)}});
  }
  return {{"trialsim_version", "0.1.0"},
          {"scenario", "configs/seed_trial.toml"},
          {"axes", axis_list},
          {"seed", 1},
          {"replicates", 1000},
          {"common_random_numbers", true},
          {"points", points}};
}

std::uint32_t be32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The checks every figure must pass: a standalone SVG document that names its title, and a
// PNG whose header says 900 px wide and at least 560 px high.
void check_figure(const Figure& f) {
  INFO("figure " << f.name);
  CHECK(!f.title.empty());
  CHECK(!f.caption.empty());
  CHECK((f.svg.rfind("<?xml", 0) == 0 || f.svg.rfind("<svg", 0) == 0));
  CHECK(f.svg.find("<svg") != std::string::npos);
  CHECK(f.svg.find("</svg>") != std::string::npos);
  CHECK(f.svg.find(f.title) != std::string::npos);
  CHECK(lower(f.svg).find("nan") == std::string::npos);
  REQUIRE(f.png.size() > 24);
  CHECK(f.png.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0);
  CHECK(f.png.compare(12, 4, "IHDR") == 0);
  CHECK(be32(f.png, 16) == 900);
  CHECK(be32(f.png, 20) >= 560);
  CHECK(be32(f.png, 20) <= 1200);
}

std::vector<std::string> names_of(const std::vector<Figure>& figures) {
  std::vector<std::string> names;
  for (const Figure& f : figures) names.push_back(f.name);
  return names;
}

json samplesize_fixture() {
  std::ifstream in(std::string(TRIALSIM_SOURCE_DIR) + "/tests/unit/fixtures/samplesize.json");
  REQUIRE(in);
  return json::parse(in);
}

// Every URL in a report must be an SVG namespace declaration: the page fetches nothing.
void check_offline(const std::string& html) {
  for (const std::string scheme : {"http://", "https://"}) {
    for (auto at = html.find(scheme); at != std::string::npos; at = html.find(scheme, at + 1)) {
      const std::string url = html.substr(at, html.find_first_of("\"' >", at) - at);
      INFO("url " << url);
      CHECK((url == "http://www.w3.org/2000/svg" || url == "http://www.w3.org/1999/xlink"));
      const std::string before = html.substr(at >= 13 ? at - 13 : 0, std::min<std::size_t>(at, 13));
      CHECK((before.substr(before.size() - 7) == "xmlns=\"" || before == "xmlns:xlink=\""));
    }
  }
  CHECK(lower(html).find("<script") == std::string::npos);
  CHECK(lower(html).find("<link") == std::string::npos);
  CHECK(html.find("src=\"http") == std::string::npos);
}


}  // namespace

TEST_CASE("a sweep over one numeric axis gives the four figures, as SVG and PNG", "[plots]") {
  REQUIRE_GNUPLOT();
  const json sweep = synthetic_sweep({{"trial.consented", {"60", "80", "100", "120"}}}, {"ancova", "completers_ttest"});
  const auto figures = sweep_figures(sweep);
  CHECK(names_of(figures) == std::vector<std::string>{"power", "bias", "rtm_control", "screening_burden"});
  for (const Figure& f : figures) check_figure(f);
  // One axis: one line per method, and the legend names them as they are (underscores kept).
  CHECK(figures[0].svg.find("completers_ttest") != std::string::npos);
  CHECK(figures[0].svg.find("patients consented per trial") != std::string::npos);
  CHECK(figures[0].caption.find("One line per analysis method") != std::string::npos);
  CHECK(figures[0].caption.find("1.96 Monte Carlo SE") != std::string::npos);
  CHECK(be32(figures[0].png, 20) == 560);
}

TEST_CASE("a non-numeric first axis is drawn as categories, other axes as lines", "[plots]") {
  REQUIRE_GNUPLOT();
  const json sweep = synthetic_sweep({{"screening.entry_max", {"none", "60", "80"}}, {"screening.separate_baseline", {"true", "false"}}},
                                     {"ancova", "mmrm", "completers_ttest"});
  const auto figures = sweep_figures(sweep);
  REQUIRE(figures.size() == 4);
  for (const Figure& f : figures) check_figure(f);
  // The category names are the tic labels; series are labelled by the last key component.
  CHECK(figures[0].svg.find(">none</text>") != std::string::npos);
  CHECK(figures[0].svg.find("separate_baseline=true") != std::string::npos);
  CHECK(figures[0].svg.find("separate_baseline=false") != std::string::npos);
  CHECK(figures[0].caption.find("One panel per analysis method") != std::string::npos);
  // Three methods: one panel each, all titled.
  CHECK(figures[0].svg.find(">mmrm</text>") != std::string::npos);
  CHECK(figures[2].svg.find("separate_baseline=false") != std::string::npos);
}

TEST_CASE("a cutoff axis of numbers and none is in increasing order with none as the loosest", "[plots]") {
  REQUIRE_GNUPLOT();
  // Given out of order: drawn 60, 80, none for an upper cutoff; none, 40, 50 for a lower one.
  const json upper = synthetic_sweep({{"screening.entry_max", {"none", "80", "60"}}}, {"ancova"});
  const Figure up = sweep_figures(upper)[2];
  check_figure(up);
  const auto at = [&](const Figure& f, const std::string& label) { return f.svg.find(">" + label + "</text>"); };
  REQUIRE(at(up, "60") != std::string::npos);
  CHECK(at(up, "60") < at(up, "80"));
  CHECK(at(up, "80") < at(up, "none"));
  CHECK(up.caption.find("none (no upper limit) is placed as the loosest, last") != std::string::npos);
  const json lower = synthetic_sweep({{"screening.entry_min", {"50", "none", "40"}}}, {"ancova"});
  const Figure low = sweep_figures(lower)[2];
  check_figure(low);
  CHECK(at(low, "none") < at(low, "40"));
  CHECK(at(low, "40") < at(low, "50"));
  CHECK(low.caption.find("none (no lower limit) is placed as the loosest, first") != std::string::npos);
  // Words keep the order given, and the caption says so.
  const json words = synthetic_sweep({{"randomization.method", {"simple", "block"}}}, {"ancova"});
  const Figure w = sweep_figures(words)[2];
  CHECK(at(w, "simple") < at(w, "block"));
  CHECK(w.caption.find("keeps the order the values were given in") != std::string::npos);
}

TEST_CASE("power figures: a 0-1 axis and the 0.8 line, or type I error and alpha under the null", "[plots]") {
  REQUIRE_GNUPLOT();
  json sweep = synthetic_sweep({{"trial.consented", {"60", "80"}}}, {"ancova"});
  const Figure power = sweep_figures(sweep)[0];
  CHECK(power.title.rfind("Power against", 0) == 0);
  CHECK(power.svg.find("power 0.8") != std::string::npos);
  CHECK(power.caption.find("dashed: 0.8") != std::string::npos);
  for (json& p : sweep["points"]) {
    p["summary"]["true_effect"] = 0.0;
    p["summary"]["alpha"] = 0.05;
  }
  const Figure t1 = sweep_figures(sweep)[0];
  check_figure(t1);
  CHECK(t1.title.rfind("Type I error against", 0) == 0);
  CHECK(t1.svg.find("alpha 0.050") != std::string::npos);
  CHECK(t1.caption.find("every point's true effect lies in its null hypothesis") != std::string::npos);
  // One-sided: an effect below the margin is in the null too.
  for (json& p : sweep["points"]) {
    p["summary"]["true_effect"] = -5.0;
    p["summary"]["hypothesis"] = {{"sides", 1}, {"margin", -4.0}};
  }
  CHECK(sweep_figures(sweep)[0].title.rfind("Type I error", 0) == 0);
  for (json& p : sweep["points"]) p["summary"]["true_effect"] = -3.0;
  CHECK(sweep_figures(sweep)[0].title.rfind("Power", 0) == 0);
}

TEST_CASE("a figure whose lines move less than their Monte Carlo error says so", "[plots]") {
  REQUIRE_GNUPLOT();
  // The synthetic sweep's power rises with n far beyond its MC SE: no note.
  json sweep = synthetic_sweep({{"trial.consented", {"60", "80", "100"}}}, {"ancova"});
  const std::string note = "No line moves by more than its Monte Carlo error";
  CHECK(sweep_figures(sweep)[0].caption.find(note) == std::string::npos);
  // The same power at every point, within 0.01 (MC SE 0.02): the note.
  double shift = 0;
  for (json& p : sweep["points"]) {
    p["summary"]["analyses"]["ancova"]["power"] = {{"estimate", 0.05 + shift}, {"mcse", 0.02}};
    shift += 0.005;
  }
  const Figure flat = sweep_figures(sweep)[0];
  check_figure(flat);
  CHECK(flat.caption.find(note) != std::string::npos);
}

TEST_CASE("many methods and combinations are capped and the caption says so", "[plots]") {
  REQUIRE_GNUPLOT();
  std::vector<std::string> methods;
  for (int i = 0; i < 11; ++i) methods.push_back("m" + std::to_string(i));
  const json sweep = synthetic_sweep({{"trial.consented", {"60", "80"}}, {"spp.sd_measurement", {"1", "2", "3"}},
                                      {"measurement.readings_per_visit", {"1", "2", "3"}}},
                                     methods);
  const auto figures = sweep_figures(sweep);
  REQUIRE(figures.size() == 4);
  check_figure(figures[0]);
  CHECK(figures[0].caption.find("first 9 of 11 methods") != std::string::npos);
  CHECK(figures[0].caption.find("first 8 of 9 combinations") != std::string::npos);
  int panels = 0;
  for (const std::string& m : methods) panels += figures[0].svg.find(">" + m + "</text>") != std::string::npos;
  CHECK(panels == 9);
  CHECK(figures[0].svg.find("sd_measurement=1, readings_per_visit=2") != std::string::npos);
  // Eight lines in each method's panel: no bands, and the caption and legend say so.
  CHECK(figures[0].caption.find("bands are left out") != std::string::npos);
  CHECK(figures[0].svg.find("MC SE</text>") == std::string::npos);
  // The design figures are small multiples: a panel per value of the second axis, a line per
  // combination of the rest, with their bands (three lines).
  const Figure& burden = figures[3];
  CHECK(burden.caption.find("One panel per value of spp.sd_measurement; lines are the combinations of "
                            "measurement.readings_per_visit.") != std::string::npos);
  for (const char* title : {">sd_measurement=1</text>", ">sd_measurement=2</text>", ">sd_measurement=3</text>",
                            ">readings_per_visit=3</text>"}) {
    INFO(title);
    CHECK(burden.svg.find(title) != std::string::npos);
  }
  CHECK(burden.caption.find("bands are left out") == std::string::npos);
  CHECK(burden.svg.find("MC SE</text>") != std::string::npos);
}

TEST_CASE("undefined summary values never reach a figure as NaN", "[plots]") {
  REQUIRE_GNUPLOT();
  const json sweep = synthetic_sweep({{"trial.consented", {"60", "80", "100"}}}, {"ancova", "mmrm"}, true);
  for (const Figure& f : sweep_figures(sweep)) check_figure(f);
  EstimateSamples samples;
  samples.by_method = {{"ancova", {1.0, 2.0, std::nan(""), 3.5, 0.5}}, {"mmrm", {2.0, 2.0, 2.0}}};
  samples.true_effect = 2;
  samples.total_trials = 5;
  const auto run = run_figures(synthetic_summary(100, {"ancova", "mmrm"}, true), samples);
  for (const Figure& f : run) check_figure(f);
  const std::string html = run_report_html(synthetic_summary(100, {"ancova", "mmrm"}, true), run);
  CHECK(lower(html).find("nan") == std::string::npos);
  CHECK(html.find(">NA<") != std::string::npos);
}

TEST_CASE("run figures: patient flow, estimate distributions and the change decomposition", "[plots]") {
  REQUIRE_GNUPLOT();
  EstimateSamples samples;
  std::vector<double> a, b;
  for (int i = 0; i < 50; ++i) {
    a.push_back(8 + 4 * std::sin(i * 1.3));
    b.push_back(7 + 5 * std::cos(i * 0.7));
  }
  samples.by_method = {{"ancova", a}, {"completers_ttest", b}};
  samples.true_effect = 8;
  samples.total_trials = 1000;
  const json summary = synthetic_summary(106, {"ancova", "completers_ttest"});
  const auto figures = run_figures(summary, samples);
  CHECK(names_of(figures) == std::vector<std::string>{"consort", "estimates", "rtm"});
  for (const Figure& f : figures) check_figure(f);
  CHECK(figures[0].svg.find("Randomized: 84.8") != std::string::npos);
  CHECK(figures[0].svg.find("SD 2.9, range 1–23") != std::string::npos);
  // No one was excluded below the lower cutoff: the box is left out, and the caption says so.
  CHECK(figures[0].svg.find("Entry SPP < 20 mmHg") == std::string::npos);
  CHECK(figures[0].caption.find("entry SPP < 20 mmHg") != std::string::npos);
  CHECK(figures[0].svg.find("Prior Mg preparation") != std::string::npos);
  CHECK(figures[0].svg.find("adverse event 4.5") != std::string::npos);
  CHECK(figures[0].svg.find("Allocated to MgO") != std::string::npos);
  {
    // A trial without a lower cutoff, a prior-medication exclusion or adverse-event withdrawal,
    // with its own labels: those boxes and lines are neither drawn nor listed, and no seed-trial
    // name is left in any figure.
    json other = summary;
    other["scenario"]["screening"]["entry_min"] = nullptr;
    other["scenario"]["population"]["prior_mg_prob"] = 0.0;
    other["scenario"]["dropout"] = {{"death_per_year", 0.01}, {"transfer_per_year", 0.05}, {"ae_per_year", 0.0},
                                    {"treatment_transfer_per_year", 0.0}};
    other["scenario"]["labels"] = {{"outcome", "SBP"}, {"unit", "kPa"}, {"treatment", "drug"}, {"control", "placebo"}};
    const auto own = run_figures(other, samples);
    REQUIRE(own.size() == 3);
    for (const Figure& f : own) {
      check_figure(f);
      for (const char* word : {"SPP", "MgO", "mmHg", "Prior Mg", "adverse event", "entry_min"}) {
        INFO(f.name << ": " << word);
        CHECK(f.svg.find(word) == std::string::npos);
        CHECK(f.caption.find(word) == std::string::npos);
      }
    }
    CHECK(own[0].svg.find("Entry SBP ≥ 80 kPa") != std::string::npos);
    CHECK(own[0].svg.find("Allocated to drug") != std::string::npos);
    CHECK(own[1].svg.find("drug minus placebo (kPa)") != std::string::npos);
    CHECK(own[2].svg.find("Why the observed SBP changed") != std::string::npos);
    CHECK(own[2].svg.find("Placebo") != std::string::npos);
  }
  CHECK(figures[1].caption.find("first 50 of 1000") != std::string::npos);
  CHECK(figures[1].svg.find("bias -0.05 ± 0.04") != std::string::npos);
  CHECK(figures[2].svg.find("regression") != std::string::npos);

  // Without samples there is nothing to draw a distribution from.
  CHECK(names_of(run_figures(summary, EstimateSamples{})) == std::vector<std::string>{"consort", "rtm"});
}

TEST_CASE("sample-size figure marks the chosen n and its interval", "[plots]") {
  REQUIRE_GNUPLOT();
  const auto figures = samplesize_figures(samplesize_fixture());
  REQUIRE(figures.size() == 1);
  check_figure(figures[0]);
  CHECK(figures[0].name == "samplesize");
  CHECK(figures[0].svg.find("n = 118 (112–125)") != std::string::npos);
  CHECK(figures[0].svg.find("target power 0.80") != std::string::npos);
  CHECK(figures[0].caption.find("interval 112–125") != std::string::npos);

  json unreached = samplesize_fixture();
  unreached["result"] = nullptr;
  const auto f2 = samplesize_figures(unreached);
  check_figure(f2.at(0));
  CHECK(f2[0].caption.find("No n reached the target") != std::string::npos);
}

TEST_CASE("figures are written as DIR/<name>.svg and .png", "[plots]") {
  const auto dir = fresh_dir("write") / "nested" / "plots";
  const std::vector<Figure> figures = {{"one", "One", "c", "<svg/>", std::string("\x89PNG\0x", 6)}, {"two", "Two", "c", "<svg>2</svg>", "p2"}};
  write_figures(figures, dir.string());
  std::ifstream in(dir / "one.png", std::ios::binary);
  const std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(png == figures[0].png);
  CHECK(fs::exists(dir / "two.svg"));
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 4);  // no temporaries left
  CHECK_THROWS_AS(write_figures(figures, (dir / "one.png" / "sub").string()), InputError);
}

TEST_CASE("a missing gnuplot is bad input with one clear line", "[plots]") {
  const auto empty = fresh_dir("nogp");
  const EnvGuard path("PATH", empty.string());
  CHECK_THROWS_MATCHES(sweep_figures(synthetic_sweep({{"trial.consented", {"60", "80"}}}, {"ancova"})), InputError,
                       Catch::Message("--plots: gnuplot not found; install Debian's gnuplot-nox"));
}

TEST_CASE("a gnuplot failure carries gnuplot's message and leaves no temporary files", "[plots]") {
  const auto bin = fresh_dir("badgp");
  const auto tmp = fresh_dir("badgp_tmp");
  {
    std::ofstream fake(bin / "gnuplot");
    fake << "#!/bin/sh\necho '         line 3: unexpected thing' >&2\nexit 1\n";
  }
  fs::permissions(bin / "gnuplot", fs::perms::owner_all);
  const EnvGuard path("PATH", bin.string() + ":/usr/bin:/bin");
  const EnvGuard tmpdir("TMPDIR", tmp.string());
  try {
    (void)samplesize_figures(samplesize_fixture());
    FAIL("no exception");
  } catch (const InputError&) {
    FAIL("a gnuplot failure is not bad input");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("gnuplot failed on figure samplesize: line 3: unexpected thing") != std::string::npos);
  }
  CHECK(fs::is_empty(tmp));
}

TEST_CASE("temporary files are removed after rendering", "[plots]") {
  REQUIRE_GNUPLOT();
  const auto tmp = fresh_dir("tmpclean");
  const EnvGuard tmpdir("TMPDIR", tmp.string());
  (void)samplesize_figures(samplesize_fixture());
  CHECK(fs::is_empty(tmp));
}

TEST_CASE("input without what a figure needs is bad input", "[plots]") {
  CHECK_THROWS_AS(sweep_figures(json::object()), InputError);
  CHECK_THROWS_AS(sweep_figures(json{{"axes", json::array({{{"key", "a"}, {"values", {"1"}}}})}, {"points", json::array()}}), InputError);
  CHECK_THROWS_AS(samplesize_figures(json{{"points", json::array()}}), InputError);
  json bad = synthetic_sweep({{"trial.consented", {"60", "80"}}}, {"ancova"});
  bad["points"][0]["axes"]["trial.consented"] = "70";
  CHECK_THROWS_AS(sweep_figures(bad), InputError);
}

TEST_CASE("reports are self-contained pages with every figure and escaped text", "[plots][report]") {
  REQUIRE_GNUPLOT();
  json summary = synthetic_summary(106, {"ancova", "completers_ttest"});
  summary["scenario"]["screening"]["entry_min"] = nullptr;  // shown as none
  EstimateSamples samples;
  samples.by_method = {{"ancova", {7.0, 8.0, 9.5, 8.2}}};
  samples.total_trials = 1000;
  samples.true_effect = 8;
  const json sweep = synthetic_sweep({{"trial.consented", {"60", "80"}}, {"screening.entry_max", {"none", "80"}}}, {"ancova"});
  json ss = samplesize_fixture();
  ss["scenario"]["source"] = "<script>alert(1)</script>";

  const std::vector<std::pair<std::string, std::vector<Figure>>> pages = {
      {run_report_html(summary, run_figures(summary, samples)), run_figures(summary, samples)},
      {sweep_report_html(sweep, sweep_figures(sweep)), sweep_figures(sweep)},
      {samplesize_report_html(ss, samplesize_figures(ss)), samplesize_figures(ss)},
  };
  for (const auto& [html, figures] : pages) {
    CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(html.find("</html>") != std::string::npos);
    check_offline(html);
    for (const Figure& f : figures) {
      CHECK(html.find(xml_escape(f.title)) != std::string::npos);
      CHECK(html.find(xml_escape(f.caption)) != std::string::npos);
    }
    // Each figure is inlined once, without its XML prolog, with ids of its own.
    CHECK(html.find("<?xml") == std::string::npos);
    std::size_t svgs = 0;
    for (auto at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) ++svgs;
    CHECK(svgs == figures.size());
    CHECK(html.find("id='f1-gpPt0'") != std::string::npos);
    CHECK(lower(html).find("nan") == std::string::npos);
  }
  CHECK(pages[0].first.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(pages[0].first.find("method ancova &amp; &lt;friends&gt;") != std::string::npos);
  CHECK(pages[0].first.find("<td><code>trial.months</code></td><td>[0, 6, 12]</td>") != std::string::npos);
  CHECK(pages[0].first.find("<td><code>screening.entry_min</code></td><td>none</td>") != std::string::npos);
  CHECK(pages[1].first.find("<code>screening.entry_max</code>: none, 80") != std::string::npos);
  CHECK(pages[2].first.find("&lt;script&gt;") != std::string::npos);
  CHECK(pages[2].first.find("<strong>118</strong>") != std::string::npos);
}

TEST_CASE("methods are listed in the scenario's order", "[plots][report]") {
  json summary = synthetic_summary(106, {"ancova", "completers_ttest", "mmrm"});
  summary["scenario"]["analysis"]["methods"] = {"mmrm", "completers_ttest", "ancova"};
  CHECK(method_names(summary) == std::vector<std::string>{"mmrm", "completers_ttest", "ancova"});
  summary["scenario"]["analysis"]["methods"] = {"mmrm"};
  CHECK(method_names(summary) == std::vector<std::string>{"mmrm", "ancova", "completers_ttest"});
  const std::string html = run_report_html(summary, {});
  CHECK(html.find("<code>mmrm</code>") < html.find("<code>ancova</code>"));
  CHECK(method_names(json::object()).empty());
}

TEST_CASE("a figure whose SVG carries script is shown from its PNG", "[plots][report]") {
  const Figure bad{"x", "X <1>", "caption", "<svg onload=\"alert(1)\"><script>alert(2)</script></svg>", std::string("\x89PNG\r\n", 6)};
  const std::string html = run_report_html(json::object(), {bad});
  check_offline(html);
  CHECK(html.find("alert") == std::string::npos);
  CHECK(html.find("<img alt=\"X &lt;1&gt;\" src=\"data:image/png;base64,iVBORw0K\">") != std::string::npos);
}

// Not part of the suite: renders the figures and reports of real runs for a person to look at.
//   TRIALSIM_RENDER_DIR=out [TRIALSIM_RENDER_RUN=run.json TRIALSIM_RENDER_TRIALS=trials.csv]
//   [TRIALSIM_RENDER_SWEEP=sweep.json] [TRIALSIM_RENDER_SAMPLESIZE=samplesize.json] trialsim_tests "[.render]"
TEST_CASE("render figures and reports for inspection", "[.render]") {
  const char* out = std::getenv("TRIALSIM_RENDER_DIR");
  if (!out) {
    WARN("set TRIALSIM_RENDER_DIR");
    return;
  }
  auto load = [](const char* env) -> std::optional<json> {
    const char* p = std::getenv(env);
    if (!p) return std::nullopt;
    std::ifstream in(p);
    return json::parse(in);
  };
  auto save = [&](const std::string& name, const std::string& html) {
    std::ofstream(fs::path(out) / name) << html;
  };
  fs::create_directories(out);
  if (const auto run = load("TRIALSIM_RENDER_RUN")) {
    EstimateSamples samples;
    samples.true_effect = (*run)["true_effect"].get<double>();
    samples.total_trials = (*run)["replicates"].get<std::uint64_t>();
    if (const char* csv = std::getenv("TRIALSIM_RENDER_TRIALS")) {
      // The trials CSV has a <method>_estimate column per method, empty when not estimable.
      std::ifstream in(csv);
      std::string line;
      std::getline(in, line);
      std::vector<std::string> header;
      std::istringstream h(line);
      for (std::string c; std::getline(h, c, ',');) header.push_back(c);
      std::vector<std::size_t> cols;
      for (std::size_t i = 0; i < header.size(); ++i) {
        const std::string suffix = "_estimate";
        if (header[i].size() > suffix.size() && header[i].compare(header[i].size() - suffix.size(), suffix.size(), suffix) == 0) {
          cols.push_back(i);
          samples.by_method.push_back({header[i].substr(0, header[i].size() - suffix.size()), {}});
        }
      }
      while (std::getline(in, line)) {
        std::vector<std::string> cells;
        std::istringstream r(line);
        for (std::string c; std::getline(r, c, ',');) cells.push_back(c);
        for (std::size_t k = 0; k < cols.size(); ++k) {
          if (cols[k] < cells.size() && !cells[cols[k]].empty()) samples.by_method[k].second.push_back(std::stod(cells[cols[k]]));
        }
      }
    }
    const auto figures = run_figures(*run, samples);
    write_figures(figures, (fs::path(out) / "run").string());
    save("run.html", run_report_html(*run, figures));
  }
  if (const auto sweep = load("TRIALSIM_RENDER_SWEEP")) {
    const auto figures = sweep_figures(*sweep);
    write_figures(figures, (fs::path(out) / "sweep").string());
    save("sweep.html", sweep_report_html(*sweep, figures));
  }
  const auto ss = load("TRIALSIM_RENDER_SAMPLESIZE");
  const json samplesize = ss ? *ss : samplesize_fixture();
  const auto figures = samplesize_figures(samplesize);
  write_figures(figures, (fs::path(out) / "samplesize").string());
  save("samplesize.html", samplesize_report_html(samplesize, figures));
}
