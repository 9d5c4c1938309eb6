#include "sim/present/plots.hpp"

#include "models/estimate.hpp"

#include "sim/io/config_reader.hpp"
#include "sim/io/scenario.hpp"
#include "sim/io/writers.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numbers>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>

extern char** environ;

namespace trialsim {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Reading summary values: anything absent, null or non-finite is "undefined" (nullopt), so that
// nothing undefined can reach a data file or a label.


const json& member(const json& j, const char* key) {
  static const json null_value;  // a constant, shared read-only: absent members read as null
  if (!j.is_object()) return null_value;
  const auto it = j.find(key);
  return it == j.end() ? null_value : *it;
}

// Fixed decimals, never "-0.00".
std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

std::string fixed_or_na(std::optional<double> v, int decimals) { return v ? fixed(*v, decimals) : "NA"; }

// A number for a data file: full precision, or gnuplot's missing-value marker.
std::string datum(std::optional<double> v) {
  if (!v) return "?";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", *v);
  return buf;
}

// A gnuplot double-quoted string. The terminals run noenhanced, so only the string syntax
// itself needs escaping; control characters other than newlines are dropped.
std::string gp(const std::string& s) {
  std::string q = "\"";
  for (const char c : s) {
    if (c == '\\' || c == '"') {
      q += '\\';
      q += c;
    } else if (c == '\n') {
      q += "\\n";
    } else if (static_cast<unsigned char>(c) >= 0x20) {
      q += c;
    }
  }
  return q + "\"";
}

// The last component of a dotted key: "screening.entry_max" -> "entry_max".
std::string short_key(const std::string& key) {
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// Axis label for a scenario key, with its unit where the key's name implies one; the outcome,
// its unit and the arms as the scenario labels them (the key itself as written).
std::string key_label(const std::string& key, const Labels& l) {
  const std::array<std::pair<std::string_view, std::string>, 6> named = {{
      {"trial.consented", "patients consented per trial"},
      {"screening.entry_max", "entry cutoff: " + l.outcome + " below (" + l.unit + ")"},
      {"screening.entry_min", "entry cutoff: " + l.outcome + " at least (" + l.unit + ")"},
      {"screening.entry_measurements", l.outcome + " readings averaged for entry"},
      {"measurement.readings_per_visit", l.outcome + " readings averaged per visit"},
      {"treatment.effect_mmHg", "true treatment effect (" + l.unit + ")"},
  }};
  for (const auto& [k, label] : named) {
    if (k == key) return label + "   [" + key + "]";
  }
  std::string unit;
  auto ends_with = [&](std::string_view suffix) {
    return key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with("_mmHg") || key.rfind("spp.", 0) == 0) unit = l.unit;
  if (key == "spp.biological_corr_months" || ends_with("_months")) unit = "months";
  if (ends_with("_per_year")) unit = key.rfind("spp.", 0) == 0 ? l.unit + " per year" : "per year";
  if (ends_with("_prob")) unit = "probability";
  if (ends_with("_mg") && key.rfind("treatment.", 0) == 0) unit = "mg/day";
  return unit.empty() ? key : key + " (" + unit + ")";
}

// ---------------------------------------------------------------------------------------------
// Style. Okabe & Ito's palette (2008), ordered so the first colours are the most distinct on
// white; yellow, the weakest on white, comes last. Point shapes and dash patterns differ too,
// so lines stay apart in greyscale and for every kind of colour vision.

constexpr std::array<const char*, 8> kColours = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                 "#E69F00", "#56B4E9", "#000000", "#F0E442"};
constexpr std::array<int, 8> kPoints = {7, 5, 9, 11, 13, 15, 6, 4};
constexpr std::array<int, 8> kDashes = {1, 2, 1, 4, 1, 2, 1, 4};
constexpr std::size_t kMaxSeries = kColours.size();
constexpr std::size_t kMaxPanels = 9;
// Above this many lines in a panel their ±1.96 MC SE bands would cover one another: they are
// left out (the caption says so, and sweep.csv has every MC SE).
constexpr std::size_t kMaxBands = 4;
constexpr const char* kTreatmentColour = "#D55E00";
constexpr const char* kControlColour = "#0072B2";

// Shared settings at the top of every figure's body. `fs` (the base font size) is set by the
// terminal section of the script, since SVG and PNG render the same point size differently.
std::string preamble() {
  std::string s =
      "reset\n"
      "set encoding utf8\n"
      "set datafile missing '?'\n"
      "set border 3 back lc rgb '#333333' lw 1\n"
      "set tics nomirror out scale 0.6 textcolor rgb '#222222'\n"
      "set style line 100 lc rgb '#e2e2e2' lw 1 dt 1\n"
      "set grid back ls 100, ls 100\n"
      "set style fill transparent solid 0.15 noborder\n"
      "set key noautotitle spacing 1.15 samplen 2.5\n"
      "set xlabel offset 0,0.2\n"
      "set ylabel offset 0.5,0\n";
  for (std::size_t i = 0; i < kColours.size(); ++i) {
    s += "set linetype " + std::to_string(i + 1) + " lc rgb '" + kColours[i] + "' lw 2 pt " +
         std::to_string(kPoints[i]) + " ps 1 dt " + std::to_string(kDashes[i]) + "\n";
  }
  return s;
}

std::string title_cmd(const std::string& title) {
  return "set title " + gp(title) + " font sprintf('DejaVu Sans Bold,%d', fs+1)\n";
}

// ---------------------------------------------------------------------------------------------
// Running gnuplot.

// A private directory (mkdtemp: mode 0700, unique name) removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "trialsim-plots-XXXXXX").string();
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {
      throw std::runtime_error("--plots: cannot create a temporary directory: " + std::string(std::strerror(errno)));
    }
    path_ = buf.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);  // best effort: a destructor must not throw
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  if (!out.flush()) throw OutputError("--plots: cannot write " + p.string() + ": " + std::strerror(errno));
}

std::string read_all(const fs::path& p) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (ec) return {};
  std::string s(static_cast<std::size_t>(size), '\0');
  std::ifstream in(p, std::ios::binary);
  if (!in.read(s.data(), static_cast<std::streamsize>(s.size()))) return {};
  return s;
}

// Runs `gnuplot script` (argv, searched on PATH, no shell) with stdin and stdout on /dev/null
// and returns its exit status; `err` receives its stderr.
int spawn_gnuplot(const fs::path& script, std::string& err) {
  int pipe_fd[2];
  if (::pipe2(pipe_fd, O_CLOEXEC) != 0) throw std::runtime_error("--plots: pipe: " + std::string(std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fd[1], 2);
  std::string prog = "gnuplot", arg = script.string();
  std::array<char*, 3> argv = {prog.data(), arg.data(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, prog.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fd[1]);
  if (rc != 0) {
    ::close(pipe_fd[0]);
    if (rc == ENOENT) throw InputError("--plots: gnuplot not found; install Debian's gnuplot-nox");
    throw std::runtime_error("--plots: cannot run gnuplot: " + std::string(std::strerror(rc)));
  }
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(pipe_fd[0], buf, sizeof buf);
    if (n > 0) {
      err.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(pipe_fd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("--plots: waiting for gnuplot: " + std::string(std::strerror(errno)));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// gnuplot's messages on one line: the last few non-empty lines, which name the failing command.
std::string one_line(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    const auto b = l.find_first_not_of(" \t^");
    if (b != std::string::npos) lines.push_back(l.substr(b));
  }
  std::string out;
  for (std::size_t i = lines.size() > 4 ? lines.size() - 4 : 0; i < lines.size(); ++i) out += (out.empty() ? "" : " | ") + lines[i];
  return out.empty() ? "no message" : out;
}


// One figure's worth of files in a private directory: data files, then the script, then
// gnuplot renders the same body twice, as SVG and as PNG.
class Plotter {
 public:
  // Writes a data file and returns its path as a gnuplot string.
  std::string data(const std::string& stem, const std::string& content) {
    const fs::path p = dir_.path() / (stem + ".dat");
    write_text(p, content);
    return gp(p.string());
  }

  Figure render(const std::string& name, const std::string& title, const std::string& caption,
                const std::string& body, int height = 560) {
    const fs::path base = dir_.path() / name;
    const std::string size = "size 900," + std::to_string(height);
    write_text(fs::path(base.string() + ".body.gp"), body);
    const std::string script =
        "set encoding utf8\n"
        "set terminal svg " + size + " fixed noenhanced font 'DejaVu Sans,14' background rgb 'white'\n"
        "set output " + gp(base.string() + ".svg") + "\n"
        "fs = 14\n"
        "load " + gp(base.string() + ".body.gp") + "\n"
        "unset output\n"
        "set terminal pngcairo " + size + " noenhanced font 'DejaVu Sans,12' background rgb 'white'\n"
        "set output " + gp(base.string() + ".png") + "\n"
        "fs = 12\n"
        "load " + gp(base.string() + ".body.gp") + "\n"
        "unset output\n";
    const fs::path script_path = base.string() + ".gp";
    write_text(script_path, script);
    std::string err;
    const int status = spawn_gnuplot(script_path, err);
    if (status != 0) throw std::runtime_error("--plots: gnuplot failed on figure " + name + ": " + one_line(err));
    Figure f{name, title, caption, read_all(base.string() + ".svg"), read_all(base.string() + ".png")};
    if (f.svg.empty() || f.png.empty()) {
      throw std::runtime_error("--plots: gnuplot wrote no output for figure " + name + ": " + one_line(err));
    }
    // The SVG's own title is what viewers and screen readers show for a standalone file.
    const std::string generic = "<title>Gnuplot</title>";
    if (const auto at = f.svg.find(generic); at != std::string::npos) {
      f.svg.replace(at, generic.size(), "<title>" + xml_escape(title) + "</title>");
    }
    return f;
  }

 private:
  TempDir dir_;
};

// ---------------------------------------------------------------------------------------------
// Line charts with Monte Carlo bands, shared by the sweep and sample-size figures.

struct SeriesPoint {
  double x;
  std::optional<double> y;
  std::optional<double> mcse;
};

struct Series {
  std::string label;  // empty: no legend entry
  std::vector<SeriesPoint> points;
};

struct Panel {
  std::string title;  // empty: none
  std::vector<Series> series;
};

struct XAxis {
  std::string label;
  bool categorical = false;
  std::vector<std::string> categories;  // tic labels at 0, 1, ... when categorical
};

struct ChartOptions {
  ChartOptions(std::string y, bool zero = false, bool prob = false)
      : ylabel(std::move(y)), zero_line(zero), probability(prob) {}
  std::string ylabel;
  bool zero_line = false;
  bool probability = false;  // clamp the band and the axis to [0, 1]
  bool unit_axis = false;    // a probability axis drawn over all of [0, 1]
  std::optional<double> reference;  // a dashed horizontal line (alpha, a target power) ...
  std::string reference_label;      // ... and its legend entry
};

// The band of one point: y ± 1.96 MC SE, clamped to [0, 1] for probabilities.
std::pair<double, double> band_of(const SeriesPoint& p, bool probability) {
  double lo = *p.y, hi = *p.y;
  if (p.mcse) {
    lo -= 1.96 * *p.mcse;
    hi += 1.96 * *p.mcse;
  }
  if (probability) {
    lo = std::max(lo, 0.0);
    hi = std::min(hi, 1.0);
  }
  return {lo, hi};
}

bool has_data(const Series& s) {
  return std::any_of(s.points.begin(), s.points.end(), [](const SeriesPoint& p) { return p.y.has_value(); });
}

// Data blocks (one per series that has a defined value), each row "x y lower upper"; an
// undefined y breaks the line rather than joining across it.
std::string series_blocks(const std::vector<Series>& series, bool probability, std::vector<std::size_t>& drawn) {
  std::string out;
  for (std::size_t i = 0; i < series.size(); ++i) {
    if (!has_data(series[i])) continue;
    std::vector<SeriesPoint> pts = series[i].points;
    std::stable_sort(pts.begin(), pts.end(), [](const SeriesPoint& a, const SeriesPoint& b) { return a.x < b.x; });
    for (const SeriesPoint& p : pts) {
      if (!p.y) {
        out += "\n";
        continue;
      }
      const auto [lo, hi] = band_of(p, probability);
      out += datum(p.x) + " " + datum(*p.y) + " " + datum(lo) + " " + datum(hi) + "\n";
    }
    out += "\n\n";
    drawn.push_back(i);
  }
  return out;
}

// One y range for every panel, so that panels compare at a glance: the bands, zero when a
// zero line is drawn, and 5% to spare; probabilities stay within [0, 1].
std::pair<double, double> y_range(const std::vector<Panel>& panels, const ChartOptions& o) {
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  for (const Panel& panel : panels) {
    for (const Series& s : panel.series) {
      for (const SeriesPoint& p : s.points) {
        if (!p.y) continue;
        const auto [a, b] = band_of(p, o.probability);
        lo = std::min(lo, a);
        hi = std::max(hi, b);
      }
    }
  }
  if (o.unit_axis || lo > hi) return {0, 1};
  if (o.reference) {
    lo = std::min(lo, *o.reference);
    hi = std::max(hi, *o.reference);
  }
  if (o.zero_line) {
    lo = std::min(lo, 0.0);
    hi = std::max(hi, 0.0);
  }
  const double pad = hi > lo ? 0.06 * (hi - lo) : std::max(0.05, 0.05 * std::fabs(hi));
  lo -= pad;
  hi += pad;
  if (o.probability) {
    lo = std::max(lo, 0.0);
    hi = std::min(hi, 1.0);
  }
  return {lo, hi};
}

std::pair<double, double> x_range(const XAxis& x, const std::vector<Panel>& panels) {
  if (x.categorical) return {-0.5, static_cast<double>(x.categories.size()) - 0.5};
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  for (const Panel& panel : panels) {
    for (const Series& s : panel.series) {
      for (const SeriesPoint& p : s.points) {
        lo = std::min(lo, p.x);
        hi = std::max(hi, p.x);
      }
    }
  }
  if (lo > hi) return {0, 1};
  const double pad = hi > lo ? 0.04 * (hi - lo) : std::max(1.0, 0.1 * std::fabs(hi));
  return {lo - pad, hi + pad};
}

// The plot command of one panel; a panel without data shows a note instead of failing.
std::string panel_plot(Plotter& plotter, const std::string& stem, const Panel& panel, const ChartOptions& o) {
  std::vector<std::size_t> drawn;
  const std::string blocks = series_blocks(panel.series, o.probability, drawn);
  if (drawn.empty()) {
    return "set label 99 'no defined values' at graph 0.5, graph 0.5 center textcolor rgb '#666666'\n"
           "plot -1e9 notitle\nunset label 99\n";
  }
  const std::string file = plotter.data(stem, blocks);
  // Bands first, so that every line is drawn over every band.
  std::vector<std::string> items;
  for (std::size_t k = 0; k < drawn.size() && drawn.size() <= kMaxBands; ++k) {
    items.push_back(file + " index " + std::to_string(k) + " using 1:3:4 with filledcurves lt " +
                    std::to_string(drawn[k] % kMaxSeries + 1) + " notitle");
  }
  if (o.zero_line) items.push_back("0 with lines lc rgb '#555555' lw 1 dt 3 notitle");
  if (o.reference) items.push_back(datum(*o.reference) + " with lines lc rgb '#222222' lw 1.5 dt 2 notitle");
  for (std::size_t k = 0; k < drawn.size(); ++k) {
    items.push_back(file + " index " + std::to_string(k) + " using 1:2 with linespoints lt " +
                    std::to_string(drawn[k] % kMaxSeries + 1) + " notitle");
  }
  std::string s = "plot ";
  for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", \\\n     " : "") + items[i];
  return s + "\n";
}

// Screen coordinate (0-1) of a pixel position.
std::string at_screen(double px, double total) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", std::clamp(px / total, 0.0, 1.0));
  return buf;
}

// Whether no line of any panel moves by more than its points' Monte Carlo error: the largest
// difference between two points of a series is within the 95% range of the difference of two
// independent estimates with their MC SEs (1.96 sqrt(2) times the larger SE), so a shape the
// axis shows is noise. Series of fewer than two points with an MC SE do not count.
bool within_noise(const std::vector<Panel>& panels) {
  bool any = false;
  for (const Panel& panel : panels) {
    for (const Series& s : panel.series) {
      double lo = HUGE_VAL, hi = -HUGE_VAL, se = 0;
      std::size_t n = 0;
      for (const SeriesPoint& p : s.points) {
        if (!p.y || !p.mcse) continue;
        lo = std::min(lo, *p.y);
        hi = std::max(hi, *p.y);
        se = std::max(se, *p.mcse);
        ++n;
      }
      if (n < 2) continue;
      any = true;
      if (hi - lo > 1.96 * std::sqrt(2.0) * se) return false;
    }
  }
  return any;
}

// A chart, or a grid of panels (one per method) on common axes. Layout is in pixels, so text
// keeps its size whatever the number of panels: the title on top, then the panels, a shared
// x label, and a legend band across the bottom instead of legends inside the data.
Figure chart_figure(Plotter& plotter, const std::string& name, const std::string& title, const std::string& given_caption,
                    const XAxis& x, const std::vector<Panel>& panels, const ChartOptions& o) {
  // Panels with more lines than kMaxBands are drawn without their bands.
  std::size_t banded = 0, unbanded = 0;
  for (const Panel& p : panels) {
    const auto lines = static_cast<std::size_t>(std::count_if(p.series.begin(), p.series.end(), has_data));
    (lines > kMaxBands ? unbanded : banded) += lines > 0 ? 1 : 0;
  }
  const std::string caption =
      given_caption +
      (unbanded > 0 ? " With more than " + std::to_string(kMaxBands) + " lines in a panel the bands are left out, so that the lines stay " +
                          "readable (every MC SE is in sweep.csv)."
                    : "") +
      (within_noise(panels) ? " No line moves by more than its Monte Carlo error: the differences between "
                              "points, however the axis draws them, are noise."
                            : "");
  const std::size_t n = panels.size();
  const std::size_t cols = n <= 3 ? n : (n == 4 ? 2 : 3);
  const std::size_t rows = (n + cols - 1) / cols;
  const bool multi = n > 1;
  const double W = 900;
  const double H = std::max(560.0, 80.0 + 260.0 * static_cast<double>(rows) + 120.0);

  // Legend entries: every series with data in some panel, labelled, in series order.
  std::vector<std::pair<std::size_t, std::string>> entries;
  std::size_t longest = 0;
  for (std::size_t i = 0; i < kMaxSeries; ++i) {
    for (const Panel& p : panels) {
      if (i < p.series.size() && !p.series[i].label.empty() && has_data(p.series[i])) {
        entries.emplace_back(i, p.series[i].label);
        longest = std::max(longest, p.series[i].label.size());
        break;
      }
    }
  }
  // gnuplot fits as many legend columns as its own text-width estimate allows (about 11.5 px a
  // character at these font sizes, plus the line sample); reserve rows for that many.
  const auto fit = static_cast<std::size_t>(864.0 / ((static_cast<double>(longest) + 7.5) * 11.5));
  const std::size_t key_cols = std::clamp<std::size_t>(fit, 1, 4);
  const std::size_t extra = 1 + (o.reference ? 1 : 0);  // the band, the reference line
  const std::size_t key_rows = entries.empty() ? 0 : (entries.size() + extra + key_cols - 1) / key_cols;
  const double key_h = entries.empty() ? 8 : 12 + 24 * static_cast<double>(key_rows);
  const double xlabel_h = 34, title_h = 44, left = 84, right = 22;
  const double grid_bottom = key_h + xlabel_h, grid_top = H - title_h;
  const double cell_w = (W - left - right) / static_cast<double>(cols);
  const double cell_h = (grid_top - grid_bottom) / static_cast<double>(rows);

  const auto [ylo, yhi] = y_range(panels, o);
  const auto [xlo, xhi] = x_range(x, panels);
  std::string body = preamble() + "set multiplot\n" +
                     "set label 1 " + gp(title) + " at screen 0.5, screen " + at_screen(H - 22, H) +
                     " center front font sprintf('DejaVu Sans Bold,%d', fs+1)\n" +
                     "set label 2 " + gp(x.label) + " at screen " + at_screen(left + (W - left - right) / 2, W) + ", screen " +
                     at_screen(key_h + 10, H) + " center front\n" +
                     "set label 3 " + gp(o.ylabel) + " at screen " + at_screen(18, W) + ", screen " +
                     at_screen((grid_bottom + grid_top) / 2, H) + " center rotate by 90 front\n" +
                     "set xrange [" + datum(xlo) + ":" + datum(xhi) + "]\nset yrange [" + datum(ylo) + ":" + datum(yhi) + "]\n" +
                     "unset key\n";
  if (x.categorical) {
    body += "set xtics (";
    for (std::size_t i = 0; i < x.categories.size(); ++i) body += (i ? ", " : "") + gp(x.categories[i]) + " " + std::to_string(i);
    body += ")\n";
  }
  if (o.probability) body += "set ytics format '%.2g'\n";
  for (std::size_t i = 0; i < n; ++i) {
    const double c = static_cast<double>(i % cols), r = static_cast<double>(i / cols);
    const double x0 = left + c * cell_w + (c > 0 ? 18 : 0), x1 = left + (c + 1) * cell_w - (c + 1 < static_cast<double>(cols) ? 18 : 0);
    const double y1 = grid_top - r * cell_h - (multi ? 34 : 4), y0 = grid_top - (r + 1) * cell_h + 30;
    body += "set lmargin at screen " + at_screen(x0, W) + "\nset rmargin at screen " + at_screen(x1, W) +
            "\nset bmargin at screen " + at_screen(y0, H) + "\nset tmargin at screen " + at_screen(y1, H) + "\n";
    body += multi ? "set title " + gp(panels[i].title) + " offset 0,-0.6\n" : "unset title\n";
    // Only the first column repeats the (common) y tic labels.
    body += c > 0 ? "set format y ''\n" : (o.probability ? "set format y '%.2g'\n" : "set format y '% h'\n");
    body += panel_plot(plotter, name + "_" + std::to_string(i), panels[i], o);
    if (i == 0) body += "unset label 1\nunset label 2\nunset label 3\n";
  }
  if (!entries.empty()) {
    body += "set lmargin at screen 0.02\nset rmargin at screen 0.98\nset bmargin at screen " + at_screen(2, H) +
            "\nset tmargin at screen " + at_screen(key_h, H) + "\n"
            "unset title\nunset border\nunset tics\nunset grid\nset xrange [0:1]\nset yrange [0:1]\n"
            "set key inside center center horizontal Left reverse maxcols " + std::to_string(key_cols) +
            " width 1 samplen 2.5\nplot -1 notitle";
    for (const auto& [i, label] : entries) {
      body += ", keyentry with linespoints lt " + std::to_string(i % kMaxSeries + 1) + " title " + gp(label);
    }
    if (banded > 0) body += ", keyentry with filledcurves lc rgb '#888888' title '±1.96 MC SE'";
    if (o.reference) body += ", keyentry with lines lc rgb '#222222' dt 2 lw 1.5 title " + gp(o.reference_label);
    body += "\n";
  }
  body += "unset multiplot\n";
  return plotter.render(name, title, caption, body, static_cast<int>(H));
}

// ---------------------------------------------------------------------------------------------
// Run figures.

struct Spread {
  std::optional<double> mean, sd, min, max;
};

Spread spread_of(const json& v) {
  return {json_number(v, {"estimate"}), json_number(v, {"sd"}), json_number(v, {"min"}), json_number(v, {"max"})};
}



// A box of the flow diagram: centre, size (canvas units, 0-100 both ways) and lines of text.
struct Box {
  double x, y, w, h;
  std::vector<std::string> lines;
  const char* fill;
};

std::string draw_box(const Box& b, int& object_id) {
  char buf[300];
  std::snprintf(buf, sizeof buf,
                "set object %d rect center %.2f,%.2f size %.2f,%.2f front fc rgb '%s' fs solid 1.0 border lc rgb '#555555' lw 1\n",
                object_id++, b.x, b.y, b.w, b.h, b.fill);
  std::string s = buf;
  // One label per line, centred on the box: gnuplot's own multi-line labels hang below their anchor.
  constexpr double line = 3.4;
  const double top = b.y + line * (static_cast<double>(b.lines.size()) - 1) / 2;
  for (std::size_t i = 0; i < b.lines.size(); ++i) {
    std::snprintf(buf, sizeof buf, " at %.2f,%.2f center front%s\n", b.x, top - line * static_cast<double>(i),
                  i == 0 ? " font sprintf('DejaVu Sans Bold,%d', fs)" : "");
    s += "set label " + std::to_string(object_id++) + " " + gp(b.lines[i]) + buf;
  }
  return s;
}

std::string arrow(double x1, double y1, double x2, double y2, bool head) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "set arrow from %.2f,%.2f to %.2f,%.2f %s lc rgb '#555555' lw 1.3 back\n", x1, y1, x2, y2,
                head ? "head filled size screen 0.010,25" : "nohead");
  return buf;
}

std::string count_line(const std::string& label, const Spread& s) {
  return label + ": " + fixed_or_na(s.mean, 1);
}

std::string spread_line(const Spread& s) {
  return "SD " + fixed_or_na(s.sd, 1) + ", range " + fixed_or_na(s.min, 0) + "–" + fixed_or_na(s.max, 0);
}

Figure consort_figure(Plotter& plotter, const json& summary) {
  const json& f = member(summary, "funnel");
  if (!f.is_object() || !f.contains("consented") || !f.contains("randomized")) {
    throw InputError("--plots: the summary has no patient funnel (funnel.consented, funnel.randomized)");
  }
  const json& scenario = member(summary, "scenario");
  const auto entry_max = json_number(scenario, {"screening", "entry_max"});
  const auto entry_min = json_number(scenario, {"screening", "entry_min"});
  const auto months = member(member(scenario, "trial"), "months");
  const std::string last_month = months.is_array() && !months.empty() && months.back().is_number()
                                     ? fixed(months.back().get<double>(), 0)
                                     : "the last visit";
  const Labels labels = Labels::of_output(summary);
  const std::string max_text = entry_max ? fixed(*entry_max, 0) + " " + labels.unit : "entry_max";
  const std::string min_text = entry_min ? fixed(*entry_min, 0) + " " + labels.unit : "entry_min";
  // Steps the scenario does not have (no prior-medication exclusion, no cutoff on a side) are
  // neither drawn nor listed as empty.
  const bool has_entry_max = !scenario.is_object() || entry_max.has_value();
  const bool has_entry_min = !scenario.is_object() || entry_min.has_value();
  std::vector<std::pair<const char*, std::string>> exclusions;
  if (scenario_positive(scenario, {"population", "prior_mg_prob"})) exclusions.emplace_back("excluded_prior_mg", "Prior Mg preparation");
  exclusions.emplace_back("lost_pre_baseline", "Lost before baseline");
  if (has_entry_max) exclusions.emplace_back("excluded_entry_above_max", "Entry " + labels.outcome + " ≥ " + max_text);
  if (has_entry_min) exclusions.emplace_back("excluded_entry_below_min", "Entry " + labels.outcome + " < " + min_text);
  const bool death = scenario_positive(scenario, {"dropout", "death_per_year"});
  const bool transfer = scenario_positive(scenario, {"dropout", "transfer_per_year"}) ||
                        scenario_positive(scenario, {"dropout", "treatment_transfer_per_year"});
  const bool ae = scenario_positive(scenario, {"dropout", "ae_per_year"});

  constexpr const char* kTrunk = "#E4EEF6";
  constexpr const char* kExcluded = "#F2F2F2";
  std::vector<Box> boxes;
  std::string links;
  const double trunk_x = 50;
  const Box consented{trunk_x, 86, 30, 7.6, {count_line("Consented", spread_of(f["consented"])), spread_line(spread_of(f["consented"]))}, kTrunk};
  const Box randomized{trunk_x, 44.5, 30, 7.6, {count_line("Randomized", spread_of(f["randomized"])), spread_line(spread_of(f["randomized"]))}, kTrunk};
  boxes.push_back(consented);
  boxes.push_back(randomized);
  links += arrow(trunk_x, consented.y - consented.h / 2, trunk_x, randomized.y + randomized.h / 2, true);

  std::vector<std::string> skipped;
  double y = 76;
  for (const auto& [key, label] : exclusions) {
    const Spread s = spread_of(member(f, key));
    if (s.mean && *s.mean == 0) {
      skipped.push_back(label);
      continue;
    }
    const Box b{80.5, y, 35, 6.8, {count_line(label, s), spread_line(s)}, kExcluded};
    boxes.push_back(b);
    links += arrow(trunk_x, y, b.x - b.w / 2, y, true);
    y -= 8;
  }

  // Two arms side by side below randomization.
  const double split_y = 38.6;
  links += arrow(trunk_x, randomized.y - randomized.h / 2, trunk_x, split_y, false);
  links += arrow(25, split_y, 75, split_y, false);
  for (const auto& [arm, x] : std::array<std::pair<const char*, double>, 2>{{{"treatment", 25.0}, {"control", 75.0}}}) {
    const char* fill = std::string(arm) == "treatment" ? "#FBE6D9" : "#DCEAF5";
    const Spread alloc = spread_of(member(member(f, "allocated"), arm));
    const json& w = member(member(f, "withdrawn"), arm);
    const Spread wd = spread_of(member(w, "total"));
    const Spread done = spread_of(member(member(f, "completed"), arm));
    const Box a{x, 32, 44, 7.6, {count_line("Allocated to " + labels.arm(arm), alloc), spread_line(alloc)}, fill};
    std::string reasons;
    const auto reason = [&](bool on, const char* key, const char* name) {
      if (on) reasons += (reasons.empty() ? "" : " · ") + std::string(name) + " " + fixed_or_na(json_number(w, {key, "estimate"}), 1);
    };
    reason(death, "death", "death");
    reason(transfer, "transfer", "transfer");
    reason(ae, "adverse_event", "adverse event");
    std::vector<std::string> wlines{count_line("Withdrawn", wd), spread_line(wd)};
    if (!reasons.empty()) wlines.push_back(reasons);
    const Box wbox{x, 19.5, 44, 10.6, wlines, fill};
    const Box c{x, 6.6, 44, 7.6, {count_line("Completed (seen at month " + last_month + ")", done), spread_line(done)}, fill};
    links += arrow(x, split_y, x, a.y + a.h / 2, true);
    links += arrow(x, a.y - a.h / 2, x, wbox.y + wbox.h / 2, true);
    links += arrow(x, wbox.y - wbox.h / 2, x, c.y + c.h / 2, true);
    boxes.push_back(a);
    boxes.push_back(wbox);
    boxes.push_back(c);
  }

  const std::string title = "Patient flow: mean per simulated trial";
  std::string body = preamble() +
                     "set lmargin at screen 0\nset rmargin at screen 1\nset tmargin at screen 1\nset bmargin at screen 0\n"
                     "set xrange [0:100]\nset yrange [0:100]\nunset border\nunset tics\nunset grid\nunset key\n";
  int id = 1;
  for (const Box& b : boxes) body += draw_box(b, id);
  body += "set label " + std::to_string(id++) + " " + gp(title) + " at 50,96 center front font sprintf('DejaVu Sans Bold,%d', fs+1)\n";
  if (y < 76) body += "set label " + std::to_string(id++) + " 'Excluded before randomization' at 80.5,81.2 center front textcolor rgb '#444444'\n";
  body += links + "plot -1 notitle\n";

  const auto trials = json_number(summary, {"replicates"});
  std::string caption = "Mean number of patients per simulated trial at each step of screening, randomization and follow-up" +
                        (trials ? " over " + fixed(*trials, 0) + " trials" : std::string()) +
                        "; under each mean, its SD across trials and its range (fewest–most in any trial). "
                        "Withdrawals are split by reason (means).";
  if (!skipped.empty()) {
    caption += " Not drawn, because they excluded nobody in any trial: ";
    for (std::size_t i = 0; i < skipped.size(); ++i) {
      std::string label = skipped[i];
      if (label.rfind("Entry", 0) == 0 || label.rfind("Prior", 0) == 0 || label.rfind("Lost", 0) == 0) label[0] = static_cast<char>(label[0] - 'A' + 'a');
      caption += (i ? "; " : "") + label;
    }
    caption += ".";
  }
  return plotter.render("consort", title, caption, body);
}

// Gaussian kernel density on a grid, with Silverman's rule-of-thumb bandwidth
// (0.9 min(SD, IQR/1.34) n^-1/5; Silverman 1986, eq. 3.31).
double silverman_bandwidth(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  const double n = static_cast<double>(x.size());
  double mean = 0;
  for (const double v : x) mean += v;
  mean /= n;
  double ss = 0;
  for (const double v : x) ss += (v - mean) * (v - mean);
  const double sd = std::sqrt(ss / (n - 1));
  auto quantile = [&](double p) {
    const double h = p * (n - 1);
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, x.size() - 1);
    return x[lo] + (h - std::floor(h)) * (x[hi] - x[lo]);
  };
  const double iqr = quantile(0.75) - quantile(0.25);
  double spread = iqr > 0 ? std::min(sd, iqr / 1.34) : sd;
  // All estimates equal: a narrow bump around the value instead of a division by zero.
  if (!(spread > 0)) spread = 0.01 * std::max(1.0, std::fabs(mean));
  return 0.9 * spread * std::pow(n, -0.2);
}

std::optional<Figure> estimates_figure(Plotter& plotter, const json& summary, const EstimateSamples& samples) {
  struct Method {
    std::string name;
    std::vector<double> x;
    double bw;
  };
  std::vector<Method> methods;
  std::size_t used = 0;
  for (const auto& [name, values] : samples.by_method) {
    Method m{name, {}, 0};
    for (const double v : values) {
      if (std::isfinite(v)) m.x.push_back(v);
    }
    used = std::max(used, values.size());
    if (m.x.size() < 2) continue;
    m.bw = silverman_bandwidth(m.x);
    methods.push_back(std::move(m));
    if (methods.size() == kMaxSeries) break;
  }
  if (methods.empty()) return std::nullopt;

  double lo = samples.true_effect, hi = samples.true_effect;
  for (const Method& m : methods) {
    const auto [mn, mx] = std::minmax_element(m.x.begin(), m.x.end());
    lo = std::min(lo, *mn - 3 * m.bw);
    hi = std::max(hi, *mx + 3 * m.bw);
  }
  constexpr int kGrid = 240;
  std::string blocks;
  for (const Method& m : methods) {
    const double norm = 1.0 / (static_cast<double>(m.x.size()) * m.bw * std::sqrt(2 * std::numbers::pi));
    for (int g = 0; g <= kGrid; ++g) {
      const double at = lo + (hi - lo) * g / kGrid;
      double d = 0;
      for (const double v : m.x) {
        const double z = (at - v) / m.bw;
        d += std::exp(-0.5 * z * z);
      }
      blocks += datum(at) + " " + datum(d * norm) + "\n";
    }
    blocks += "\n\n";
  }
  const std::string file = plotter.data("estimates", blocks);

  const json& analyses = member(summary, "analyses");
  std::string plot = "plot ";
  for (std::size_t i = 0; i < methods.size(); ++i) {
    const json& a = member(analyses, methods[i].name.c_str());
    const std::string label = methods[i].name + " (bias " + fixed_or_na(json_number(a, {"bias", "estimate"}), 2) + " ± " +
                              fixed_or_na(json_number(a, {"bias", "mcse"}), 2) + ")";
    plot += (i ? ", " : "") + file + " index " + std::to_string(i) + " using 1:2 with lines lt " + std::to_string(i + 1) +
            " title " + gp(label);
  }
  const std::string te = datum(samples.true_effect);
  const std::string title = "Distribution of the estimated treatment effect";
  const Labels labels = Labels::of_output(summary);
  std::string body = preamble() + title_cmd(title) + "set xlabel " +
                     gp("estimated effect, " + labels.treatment + " minus " + labels.control + " (" + labels.unit + ")") +
                     "\nset ylabel " + gp("density (per " + labels.unit + ")") + "\n"
                     "set yrange [0:*]\nset offsets 0, 0, graph 0.08, 0\n"
                     "set key below center horizontal maxcols 2 Left reverse width 1\n"
                     "set bmargin " + std::to_string(4 + static_cast<double>((methods.size() + 1) / 2) * 1.3) + "\n"
                     "set arrow 1 from " + te + ", graph 0 to " + te + ", graph 1 nohead lc rgb '#222222' lw 1.5 dt 2 front\n"
                     "set label 1 " + gp(" true effect " + fixed(samples.true_effect, 1)) + " at " + te +
                     ", graph 0.97 left front textcolor rgb '#222222'\n" +
                     plot + "\n";

  std::size_t smallest = used;
  for (const Method& m : methods) smallest = std::min(smallest, m.x.size());
  std::string caption = "Kernel density (Gaussian kernel, Silverman's bandwidth) of each method's estimate over ";
  caption += samples.total_trials > used ? "the first " + std::to_string(used) + " of " + std::to_string(samples.total_trials) + " simulated trials"
                                         : "all " + std::to_string(used) + " simulated trials";
  caption += smallest < used ? ", leaving out trials where a method could not estimate. " : ". ";
  caption += "The dashed vertical line is the true effect; the legend gives each method's bias ± its Monte Carlo SE over all " +
             std::to_string(std::max<std::uint64_t>(samples.total_trials, used)) + " trials.";
  return plotter.render("estimates", title, caption, body);
}

// Left out when neither arm has a part to show (no trial had completers).
std::optional<Figure> rtm_figure(Plotter& plotter, const json& summary) {
  const json& rtm = member(summary, "rtm");
  if (!rtm.is_object()) throw InputError("--plots: the summary has no change decomposition (rtm)");
  const std::array<std::pair<const char*, const char*>, 6> parts = {{
      {"observed_change", "observed\\nchange"},
      {"drift", "= secular\\ndrift"},
      {"slope_selection", "+ selection\\non slopes"},
      {"treatment_effect", "+ treatment\\neffect"},
      {"regression_to_mean", "+ regression\\nto the mean"},
      {"attrition", "+ attrition"},
  }};
  std::string rows, tics;
  bool any = false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    rows += std::to_string(i);
    for (const char* arm : {"treatment", "control"}) {
      const auto mean = json_number(rtm, {arm, parts[i].first, "estimate"});
      any = any || mean.has_value();
      const auto mcse = json_number(rtm, {arm, parts[i].first, "mcse"});
      rows += " " + datum(mean) + " " + (mean ? datum(1.96 * mcse.value_or(0)) : std::string("?"));
    }
    rows += "\n";
    tics += std::string(i ? ", " : "") + "\"" + parts[i].second + "\" " + std::to_string(i);
  }
  if (!any) return std::nullopt;
  const std::string file = plotter.data("rtm", rows);
  const Labels labels = Labels::of_output(summary);
  const std::string title = "Why the observed " + labels.outcome + " changed, per arm";
  const std::string body = preamble() + title_cmd(title) +
                           "set style data histograms\nset style histogram errorbars gap 1.2 lw 1.5\n"
                           "set style fill solid 0.85 border lc rgb '#333333'\nset boxwidth 0.95\n"
                           "set xtics (" + tics + ") scale 0\nset xrange [-0.6:5.6]\n"
                           "set ylabel " + gp("mean change from baseline (" + labels.unit + ")") + "\n"
                           "set xzeroaxis lt 1 lc rgb '#444444' lw 1\nset grid noxtics ytics\n"
                           "set autoscale yfix\nset offsets 0, 0, graph 0.06, graph 0.04\nset bmargin 4.5\n"
                           "set key outside right top vertical Left reverse\n"
                           "plot " + file + " using 2:3 title " + gp(Labels::capital(labels.treatment)) + " lc rgb '" +
                           kTreatmentColour + "' dt 1, " + file + " using 4:5 title " + gp(Labels::capital(labels.control)) +
                           " lc rgb '" + kControlColour + "' dt 1\n";
  const json& months = member(member(member(summary, "scenario"), "trial"), "months");
  const std::string last = months.is_array() && !months.empty() && months.back().is_number()
                               ? "month " + fixed(months.back().get<double>(), 0)
                               : "the last visit";
  const std::string caption =
      "Mean " + labels.outcome + " change per arm (completers at " + last + " minus all randomized at baseline), split into its parts: observed change = "
      "secular drift + selection on patients' own slopes + treatment effect + regression to the mean realized by " + last +
      " + attrition (completers vs all, on true level and fluctuations). Means over simulated trials; error bars are ±1.96 Monte Carlo SE.";
  return plotter.render("rtm", title, caption, body);
}

// ---------------------------------------------------------------------------------------------
// Sweep figures.

std::optional<double> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

struct SweepGrid {
  std::string x_key;
  XAxis x;
  std::vector<double> x_pos;  // position of each x value on the axis
  std::vector<std::string> other_keys;
  std::vector<std::vector<std::string>> other_values;  // each other axis's values
  std::vector<std::string> combo_labels;  // one per combination of the other axes, grid order
  struct Point {
    std::size_t xi, combo;
    const json* summary;
  };
  std::vector<Point> points;
  std::size_t combos_total = 0;
  std::vector<std::string> methods;  // in order of first appearance
  std::uint64_t replicates = 0;
  bool crn = true;
  std::string x_note;  // how a categorical x axis is ordered, for the captions
};

std::string axis_value(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

SweepGrid read_sweep(const json& sweep) {
  const json& axes = member(sweep, "axes");
  const json& points = member(sweep, "points");
  if (!axes.is_array() || axes.empty()) throw InputError("--plots: the sweep has no axes");
  if (!points.is_array() || points.empty()) throw InputError("--plots: the sweep has no points");
  std::vector<std::pair<std::string, std::vector<std::string>>> ax;
  for (const json& a : axes) {
    if (!a.is_object() || !member(a, "key").is_string() || !member(a, "values").is_array() || member(a, "values").empty()) {
      throw InputError("--plots: every sweep axis needs a key and a non-empty list of values");
    }
    std::vector<std::string> values;
    for (const json& v : a["values"]) values.push_back(axis_value(v));
    ax.emplace_back(a["key"].get<std::string>(), std::move(values));
  }
  SweepGrid g;
  g.x_key = ax[0].first;
  const auto& xv = ax[0].second;
  g.x.label = key_label(g.x_key, Labels::of_output(sweep));
  g.x.categorical = std::any_of(xv.begin(), xv.end(), [](const std::string& s) { return !parse_number(s); });
  for (std::size_t i = 0; i < xv.size(); ++i) g.x_pos.push_back(g.x.categorical ? static_cast<double>(i) : *parse_number(xv[i]));
  if (g.x.categorical) g.x.categories = xv;
  // Numbers and `none` (the key removed: no cutoff) on one axis: the numbers in increasing order
  // and none where it belongs, as the loosest cutoff, after the highest value of an upper
  // cutoff (a key ending in _max) and before the lowest of a lower one (_min); elsewhere last.
  const auto none = std::find(xv.begin(), xv.end(), "none");
  const bool numbers_and_none =
      g.x.categorical && none != xv.end() &&
      std::all_of(xv.begin(), xv.end(), [](const std::string& s) { return s == "none" || parse_number(s); });
  if (numbers_and_none) {
    const bool lower = g.x_key.size() > 4 && g.x_key.compare(g.x_key.size() - 4, 4, "_min") == 0;
    const double none_at = lower ? -HUGE_VAL : HUGE_VAL;
    std::vector<std::size_t> order(xv.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto value = [&](std::size_t i) { return xv[i] == "none" ? none_at : *parse_number(xv[i]); };
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return value(a) < value(b); });
    g.x.categories.clear();
    for (std::size_t rank = 0; rank < order.size(); ++rank) {
      g.x_pos[order[rank]] = static_cast<double>(rank);
      g.x.categories.push_back(xv[order[rank]]);
    }
    g.x_note = std::string(" On the x axis the values are in increasing order and none (no ") +
               (lower ? "lower" : "upper") + " limit) is placed as the loosest, " + (lower ? "first." : "last.");
  } else if (g.x.categorical) {
    g.x_note = " The x axis keeps the order the values were given in.";
  }

  // Combinations of the other axes, the last axis varying fastest.
  g.combos_total = 1;
  for (std::size_t a = 1; a < ax.size(); ++a) {
    g.other_keys.push_back(ax[a].first);
    g.other_values.push_back(ax[a].second);
    g.combos_total *= ax[a].second.size();
  }
  for (std::size_t c = 0; c < g.combos_total; ++c) {
    std::string label;
    std::size_t rest = c;
    std::vector<std::string> parts(ax.size());
    for (std::size_t a = ax.size(); a-- > 1;) {
      parts[a] = short_key(ax[a].first) + "=" + ax[a].second[rest % ax[a].second.size()];
      rest /= ax[a].second.size();
    }
    for (std::size_t a = 1; a < ax.size(); ++a) label += (a > 1 ? ", " : "") + parts[a];
    g.combo_labels.push_back(label);
  }

  for (const json& p : points) {
    const json& pa = member(p, "axes");
    const json& summary = member(p, "summary");
    if (!pa.is_object() || !summary.is_object()) throw InputError("--plots: every sweep point needs its axes and summary");
    std::size_t combo = 0, xi = 0;
    for (std::size_t a = 0; a < ax.size(); ++a) {
      const json& v = member(pa, ax[a].first.c_str());
      const auto it = std::find(ax[a].second.begin(), ax[a].second.end(), axis_value(v));
      if (v.is_null() || it == ax[a].second.end()) {
        throw InputError("--plots: sweep point " + axis_value(member(p, "hash")) + " has no listed value of axis " + ax[a].first);
      }
      const auto idx = static_cast<std::size_t>(it - ax[a].second.begin());
      if (a == 0) {
        xi = idx;
      } else {
        combo = combo * ax[a].second.size() + idx;
      }
    }
    g.points.push_back({xi, combo, &summary});
    for (const std::string& m : method_names(summary)) {
      if (std::find(g.methods.begin(), g.methods.end(), m) == g.methods.end()) g.methods.push_back(m);
    }
  }
  g.replicates = member(sweep, "replicates").is_number_unsigned() ? sweep["replicates"].get<std::uint64_t>() : 0;
  g.crn = !member(sweep, "common_random_numbers").is_boolean() || sweep["common_random_numbers"].get<bool>();
  return g;
}

using Metric = std::function<std::pair<std::optional<double>, std::optional<double>>(const json& summary)>;

// One series per combination of the other axes (at most kMaxSeries).
std::vector<Series> combo_series(const SweepGrid& g, const Metric& metric) {
  const std::size_t n = std::min(g.combos_total, kMaxSeries);
  std::vector<Series> out(n);
  for (std::size_t c = 0; c < n; ++c) out[c].label = g.combo_labels[c];
  for (const auto& p : g.points) {
    if (p.combo >= n) continue;
    const auto [y, mcse] = metric(*p.summary);
    out[p.combo].points.push_back({g.x_pos[p.xi], y, mcse});
  }
  return out;
}

Metric analysis_metric(const std::string& method, const char* name) {
  return [method, name](const json& s) {
    const json& a = member(member(s, "analyses"), method.c_str());
    return std::make_pair(json_number(a, {name, "estimate"}), json_number(a, {name, "mcse"}));
  };
}

std::string series_note(const SweepGrid& g) {
  if (g.other_keys.empty()) return "";
  std::string keys;
  for (std::size_t i = 0; i < g.other_keys.size(); ++i) keys += (i ? ", " : "") + g.other_keys[i];
  std::string s = " Lines are the combinations of " + keys + ".";
  if (g.combos_total > kMaxSeries) {
    s += " Only the first " + std::to_string(kMaxSeries) + " of " + std::to_string(g.combos_total) + " combinations are drawn (all are in sweep.csv).";
  }
  return s;
}

std::string band_note(const SweepGrid& g) {
  std::string s = " Shaded bands are ±1.96 Monte Carlo SE";
  if (g.replicates > 0) s += " (" + std::to_string(g.replicates) + " trials per point)";
  s += ".";
  if (g.crn) s += " With common random numbers the points share their simulated patients, so differences between points are more precise than the bands suggest.";
  return s;
}

Figure method_figure(Plotter& plotter, const SweepGrid& g, const char* metric, const std::string& name,
                     const std::string& title, const std::string& what, const ChartOptions& o) {
  std::vector<Panel> panels;
  std::string lines;
  if (g.other_keys.empty()) {
    Panel p;
    for (std::size_t m = 0; m < g.methods.size() && m < kMaxSeries; ++m) {
      Series s = combo_series(g, analysis_metric(g.methods[m], metric))[0];
      s.label = g.methods[m];
      p.series.push_back(std::move(s));
    }
    panels.push_back(std::move(p));
    lines = " One line per analysis method.";
    if (g.methods.size() > kMaxSeries) lines += " Only the first " + std::to_string(kMaxSeries) + " of " + std::to_string(g.methods.size()) + " methods are drawn.";
  } else {
    for (std::size_t m = 0; m < g.methods.size() && m < kMaxPanels; ++m) {
      panels.push_back({g.methods[m], combo_series(g, analysis_metric(g.methods[m], metric))});
    }
    lines = " One panel per analysis method." + series_note(g);
    if (g.methods.size() > kMaxPanels) lines += " Only the first " + std::to_string(kMaxPanels) + " of " + std::to_string(g.methods.size()) + " methods are drawn.";
  }
  if (panels.empty()) panels.push_back({});
  const std::string caption = what + " against " + g.x_key + "." + g.x_note + lines + band_note(g);
  return chart_figure(plotter, name, title, caption, g.x, panels, o);
}

Figure design_figure(Plotter& plotter, const SweepGrid& g, const Metric& metric, const std::string& name,
                     const std::string& title, const std::string& what, const ChartOptions& o) {
  if (g.other_keys.size() >= 2 && g.combos_total > kMaxBands) {
    // Small multiples: a panel per value of the second axis, lines for the combinations of
    // the others, rather than every combination on one chart.
    const std::size_t first = g.other_values[0].size(), per = g.combos_total / first;
    const std::size_t lines = std::min(per, kMaxSeries);
    std::vector<std::string> labels(lines);
    for (std::size_t c = 0; c < lines; ++c) {
      std::size_t rest = c;
      std::vector<std::string> parts(g.other_keys.size());
      for (std::size_t a = g.other_keys.size(); a-- > 1;) {
        parts[a] = short_key(g.other_keys[a]) + "=" + g.other_values[a][rest % g.other_values[a].size()];
        rest /= g.other_values[a].size();
      }
      for (std::size_t a = 1; a < parts.size(); ++a) labels[c] += (a > 1 ? ", " : "") + parts[a];
    }
    std::vector<Panel> panels;
    for (std::size_t v = 0; v < first && v < kMaxPanels; ++v) {
      Panel p{short_key(g.other_keys[0]) + "=" + g.other_values[0][v], std::vector<Series>(lines)};
      for (std::size_t c = 0; c < lines; ++c) p.series[c].label = labels[c];
      for (const auto& pt : g.points) {
        if (pt.combo / per != v || pt.combo % per >= lines) continue;
        const auto [y, mcse] = metric(*pt.summary);
        p.series[pt.combo % per].points.push_back({g.x_pos[pt.xi], y, mcse});
      }
      panels.push_back(std::move(p));
    }
    std::string rest_keys;
    for (std::size_t a = 1; a < g.other_keys.size(); ++a) rest_keys += (a > 1 ? ", " : "") + g.other_keys[a];
    std::string note = " One panel per value of " + g.other_keys[0] + "; lines are the combinations of " + rest_keys + ".";
    if (first > kMaxPanels) note += " Only the first " + std::to_string(kMaxPanels) + " of " + std::to_string(first) + " panels are drawn.";
    if (per > kMaxSeries) note += " Only the first " + std::to_string(kMaxSeries) + " of " + std::to_string(per) + " lines are drawn.";
    if (first > kMaxPanels || per > kMaxSeries) note += " All points are in sweep.csv.";
    return chart_figure(plotter, name, title, what + " against " + g.x_key + "." + g.x_note + note + band_note(g), g.x, panels, o);
  }
  Panel p{"", combo_series(g, metric)};
  if (g.other_keys.empty()) p.series[0].label.clear();
  return chart_figure(plotter, name, title, what + " against " + g.x_key + "." + g.x_note + series_note(g) + band_note(g),
                      g.x, {p}, o);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

// A group-sequential design (the summary's `interim`): left, the efficacy (and futility)
// bounds on the z scale at each look's mean information, with each method's z among the trials
// still running there (mean ± 1 SD across trials); right, the probability of stopping at each
// look, for efficacy above the axis and for futility below it. Left out without a design.
std::optional<Figure> interim_figure(Plotter& plotter, const json& summary) {
  const json& in = member(summary, "interim");
  if (!in.is_object() || !member(in, "looks").is_array() || in["looks"].empty()) return std::nullopt;
  const json& looks = in["looks"];
  const bool two_sided = json_number(in, {"sides"}).value_or(2) == 2;
  const bool futility = member(in, "futility").is_string() && in["futility"].get<std::string>() != "none";
  std::vector<std::string> methods;
  for (const std::string& m : method_names(summary)) {
    if (member(member(looks[0], "stop_efficacy"), m.c_str()).is_object()) methods.push_back(m);
    if (methods.size() == kMaxSeries) break;
  }
  if (methods.empty()) return std::nullopt;
  const std::size_t K = looks.size(), M = methods.size();
  // Bounds: "x upper lower" per look held in some trial.
  std::string bounds, zs, stops;
  for (std::size_t k = 0; k < K; ++k) {
    const json& l = looks[k];
    const auto x = json_number(l, {"fraction", "estimate"});
    if (!x) continue;
    bounds += datum(x) + " " + datum(json_number(l, {"efficacy_bound", "estimate"})) + " " +
              datum(futility ? json_number(l, {"futility_bound", "estimate"}) : std::nullopt) + "\n";
  }
  // Each method's z, its points spread a little apart so that the bars do not cover each other.
  for (std::size_t i = 0; i < M; ++i) {
    for (std::size_t k = 0; k < K; ++k) {
      const json& l = looks[k];
      const auto x = json_number(l, {"fraction", "estimate"});
      const auto z = json_number(l, {"z", methods[i].c_str(), "estimate"});
      if (!x || !z) continue;
      const double shift = (static_cast<double>(i) - 0.5 * static_cast<double>(M - 1)) * 0.012;
      zs += datum(*x + shift) + " " + datum(z) + " " + datum(json_number(l, {"z", methods[i].c_str(), "sd"}).value_or(0)) + "\n";
    }
    zs += "\n\n";
  }
  // Stopping probabilities: one row per look, per method efficacy then futility (as negative).
  for (std::size_t k = 0; k < K; ++k) {
    stops += std::to_string(k + 1);
    for (const std::string& m : methods) {
      stops += " " + datum(json_number(looks[k], {"stop_efficacy", m.c_str(), "estimate"}));
      const auto f = json_number(looks[k], {"stop_futility", m.c_str(), "estimate"});
      stops += " " + datum(f ? std::optional<double>(-*f) : std::nullopt);
    }
    stops += "\n";
  }
  const std::string bf = plotter.data("interim_bounds", bounds), zf = plotter.data("interim_z", zs),
                    sf = plotter.data("interim_stops", stops);
  const std::string title = "Group-sequential design: bounds, z at each look, and where trials stop";
  std::string body = preamble() + "set multiplot title " + gp(title) + " font sprintf('DejaVu Sans Bold,%d', fs+1)\n" +
                     "set size 0.5,0.78\nset origin 0,0.16\n"
                     "set xlabel 'information fraction'\nset ylabel 'z'\nset xrange [0:1.05]\nset title ''\n"
                     "set xzeroaxis lt 1 lc rgb '#888888' lw 1\nunset key\n";
  std::string plot = "set title " + gp("bounds and each method's z (mean ± 1 SD)") + "\nplot " + bf +
                     " using 1:2 with linespoints lc rgb '#222222' lw 2 dt 1 pt 7 ps 0.8";
  if (two_sided) plot += ", " + bf + " using 1:(-$2) with linespoints lc rgb '#222222' lw 2 dt 1 pt 7 ps 0.8";
  if (futility) plot += ", " + bf + " using 1:3 with linespoints lc rgb '#777777' lw 2 dt 2 pt 5 ps 0.8";
  for (std::size_t i = 0; i < M; ++i) {
    plot += ", " + zf + " index " + std::to_string(i) + " using 1:2:3 with yerrorbars lt " + std::to_string(i + 1) + " lw 1.5";
  }
  body += plot + "\n";
  // Right panel: bars per look, a cluster per look with one bar per method.
  body += "set size 0.5,0.78\nset origin 0.5,0.16\nset title " + gp("where trials stop") + "\nset xlabel 'look'\n"
          "set ylabel " + gp(futility ? "P(stop): efficacy up, futility down" : "P(stop for efficacy)") + "\n"
          "set xrange [0.5:" + std::to_string(K) + ".5]\nset xtics 1\nset style fill solid 0.8 border lc rgb '#333333'\n" +
          (futility ? std::string("set yrange [*:*]\n") : std::string("set yrange [0:*]\n")) +
          "set offsets 0, 0, graph 0.05, graph 0.05\n";
  const double width = 0.8 / static_cast<double>(M);
  std::string bars = "plot ";
  for (std::size_t i = 0; i < M; ++i) {
    const std::string x = "($1 - 0.4 + " + datum(width * (static_cast<double>(i) + 0.5)) + ")";
    const std::string col = std::to_string(2 + 2 * i);
    bars += (i ? ", " : "") + sf + " using " + x + ":" + col + ":(" + datum(width * 0.9) + ") with boxes lt " +
            std::to_string(i + 1) + " lc " + std::to_string(i + 1) + " dt 1";
    if (futility) {
      bars += ", " + sf + " using " + x + ":" + std::to_string(3 + 2 * i) + ":(" + datum(width * 0.9) +
              ") with boxes fs pattern 4 lt " + std::to_string(i + 1) + " lc " + std::to_string(i + 1) + " dt 1";
    }
  }
  body += bars + "\n";
  // The legend across the bottom.
  body += "set size 1,0.16\nset origin 0,0\nunset title\nunset xlabel\nunset ylabel\nunset border\nunset tics\nunset grid\nunset xzeroaxis\n"
          "set xrange [0:1]\nset yrange [0:1]\nset key center center horizontal maxcols 4 Left reverse\nplot ";
  for (std::size_t i = 0; i < M; ++i) {
    body += (i ? ", " : "") + std::string("NaN with linespoints lt ") + std::to_string(i + 1) + " title " + gp(methods[i]);
  }
  body += ", NaN with linespoints lc rgb '#222222' lw 2 dt 1 pt 7 title 'efficacy bound'";
  if (futility) body += ", NaN with linespoints lc rgb '#777777' lw 2 dt 2 pt 5 title 'futility bound'";
  body += "\nunset multiplot\n";
  std::string caption =
      "Left: the efficacy bound" + std::string(two_sided ? "s (±, two-sided)" : "") + (futility ? " and the futility bound" : "") +
      " on the z scale at each look's mean information fraction (recomputed in each trial at its own information), and each "
      "method's z among the trials still running at that look: mean ± 1 SD across trials, so the bars show the spread of the "
      "simulated z paths, not Monte Carlo error. Right: the probability that a method's test stops the trial at each look" +
      (futility ? ", for efficacy (solid, up) and for futility (hatched, down)" : std::string(" for efficacy")) +
      "; the last look's bar is the rejection at the final analysis.";
  return plotter.render("interim", title, caption, body, 600);
}

std::vector<Figure> run_figures(const nlohmann::json& summary, const EstimateSamples& samples) {
  Plotter plotter;
  std::vector<Figure> out;
  out.push_back(consort_figure(plotter, summary));
  if (auto f = estimates_figure(plotter, summary, samples)) out.push_back(std::move(*f));
  if (auto f = rtm_figure(plotter, summary)) out.push_back(std::move(*f));
  if (auto f = interim_figure(plotter, summary)) out.push_back(std::move(*f));
  return out;
}

std::vector<Figure> sweep_figures(const nlohmann::json& sweep) {
  const SweepGrid g = read_sweep(sweep);
  const Labels labels = Labels::of_output(sweep);
  const std::string unit = labels.unit, control = labels.control;
  Plotter plotter;
  std::vector<Figure> out;
  // Where every point's true effect lies in its null hypothesis the rejection rate is the type
  // I error, drawn against alpha; else power, on a 0-1 axis against the usual 0.8 target.
  bool all_null = true, same_alpha = true;
  std::optional<double> alpha;
  for (const SweepGrid::Point& p : g.points) {
    const json& s = *p.summary;
    const double effect = json_number(s, {"true_effect"}).value_or(std::nan(""));
    const Hypothesis h{json_number(s, {"hypothesis", "sides"}).value_or(2.0) == 1.0 ? 1 : 2,
                       json_number(s, {"hypothesis", "margin"}).value_or(0.0)};
    all_null = all_null && h.null_holds(effect);
    const auto a = json_number(s, {"alpha"});
    if (!a || (alpha && *alpha != *a)) same_alpha = false;
    if (a && !alpha) alpha = a;
  }
  if (all_null) {
    ChartOptions t1{"type I error (share of trials rejecting H0)", false, true};
    std::string note = "every point's true effect lies in its null hypothesis";
    if (same_alpha && alpha) {
      t1.reference = *alpha;
      t1.reference_label = "alpha " + fixed(*alpha, 3);
      note += "; dashed: alpha";
    }
    out.push_back(method_figure(plotter, g, "power", "power", "Type I error against " + short_key(g.x_key),
                                "Type I error of each analysis (share of simulated trials rejecting H0; " + note + ")", t1));
  } else {
    ChartOptions power{"power (share of trials rejecting H0)", false, true};
    power.unit_axis = true;
    power.reference = 0.8;
    power.reference_label = "power 0.8";
    out.push_back(method_figure(plotter, g, "power", "power", "Power against " + short_key(g.x_key),
                                "Power of each analysis (share of simulated trials rejecting H0 at the scenario's alpha; "
                                "dashed: 0.8, the usual target)", power));
  }
  ChartOptions bias{"bias of the estimate (" + unit + ")", true, false};
  out.push_back(method_figure(plotter, g, "bias", "bias", "Bias against " + short_key(g.x_key),
                              "Bias of each analysis's estimate (mean estimate minus the true effect, " + unit + "; dotted line at zero)", bias));
  const Metric rtm = [](const json& s) {
    return std::make_pair(json_number(s, {"rtm", "control", "regression_to_mean", "estimate"}),
                          json_number(s, {"rtm", "control", "regression_to_mean", "mcse"}));
  };
  out.push_back(design_figure(plotter, g, rtm, "rtm_control", "Regression to the mean in the " + control + " arm",
                              "Mean " + labels.outcome + " change in the " + control + " arm that is regression to the mean (" + unit +
                                  "; the entry selection's share of the observed rise)",
                              {"regression to the mean, " + control + " (" + unit + ")", true, false}));
  out.push_back(design_figure(plotter, g, consented_per_randomized, "screening_burden", "Patients consented per patient randomized",
                              "Screening burden: mean patients consented divided by mean patients randomized per trial",
                              {"consented per randomized patient", false, false}));
  return out;
}

std::vector<Figure> calibrate_figures(const nlohmann::json& calibration) {
  const Labels labels = Labels::of_output(calibration);
  const json& accounts = member(calibration, "change_accounts");
  const json& parts = member(calibration, "change_parts");
  if (!accounts.is_array() || accounts.empty() || !parts.is_array()) {
    throw InputError("--plots: the calibration has no change decomposition (the observed file needs baseline_mean and "
                     "final_mean of an arm)");
  }
  Plotter plotter;
  // Segments stacked from 0 in this order, each from the running sum to the running sum plus
  // its mean (a negative part goes down); chance (observed - expected) last, so the stack ends
  // at the observed change.
  const std::array<std::pair<const char*, const char*>, 4> segments = {{
      {"drift", "secular drift"},
      {"regression_to_mean", "regression to the mean"},
      {"attrition", "attrition"},
      {"other", "slope selection + treatment effect"},
  }};
  const std::array<const char*, 4> colours = {"#0072B2", "#E69F00", "#009E73", "#CC79A7"};
  std::array<std::string, 4> rows;
  std::string observed_rows, expected_rows, chance_rows, tics;
  double lo = 0, hi = 0;
  for (std::size_t i = 0; i < accounts.size(); ++i) {
    const json& a = accounts[i];
    // A string member, or "" (get_ref: no conversion, no copy of a missing member).
    auto str = [](const json& j, const char* key) -> std::string {
      const json& m = member(j, key);
      return m.is_string() ? m.get_ref<const std::string&>() : std::string();
    };
    const std::string arm = str(a, "arm");
    auto part = [&](const char* name) {
      double sum = 0;
      for (const json& p : parts) {
        if (str(p, "arm") != arm) continue;
        const std::string n = str(p, "part");
        const bool other = std::string(name) == "other" && (n == "slope_selection" || n == "treatment_effect");
        if (n == name || other) sum += json_number(p, {"estimate"}).value_or(0.0);
      }
      return sum;
    };
    const double x = static_cast<double>(i);
    double cum = 0;
    for (std::size_t k = 0; k < segments.size(); ++k) {
      const double v = part(segments[k].first);
      rows[k] += datum(x - 0.12) + " " + datum(cum) + " " + datum(cum + v) + "\n";
      cum += v;
      lo = std::min(lo, cum);
      hi = std::max(hi, cum);
    }
    const auto observed = json_number(a, {"observed_change"});
    const auto expected = json_number(a, {"expected_change"});
    const auto se = json_number(a, {"expected_change_se_from_parameters"});
    // Chance: a narrow bar beside the stack, from the expected change to the observed one.
    chance_rows += datum(x + 0.25) + " " + datum(expected) + " " + datum(observed) + "\n";
    observed_rows += datum(x + 0.25) + " " + datum(observed) + "\n";
    if (observed) {
      lo = std::min(lo, *observed);
      hi = std::max(hi, *observed);
    }
    expected_rows += datum(x + 0.4) + " " + datum(expected) + " " + datum(se ? std::optional<double>(1.96 * *se) : std::nullopt) + "\n";
    if (expected && se) {
      lo = std::min(lo, *expected - 1.96 * *se);
      hi = std::max(hi, *expected + 1.96 * *se);
    }
    tics += std::string(i ? ", " : "") + gp(labels.arm(arm)) + " " + std::to_string(i);
  }
  std::string plot = "plot ";
  for (std::size_t k = 0; k < segments.size(); ++k) {
    const std::string file = plotter.data(std::string("seg_") + segments[k].first, rows[k]);
    plot += file + " using 1:(($2+$3)/2):($1-0.2):($1+0.2):2:3 with boxxyerror fs solid 0.85 border lc rgb '#333333' "
                   "dt 1 fc rgb '" + colours[k] + "' title " + gp(segments[k].second) + ", ";
  }
  plot += plotter.data("chance", chance_rows) +
          " using 1:(($2+$3)/2):($1-0.05):($1+0.05):2:3 with boxxyerror fs pattern 4 border lc rgb '#555555' dt 1 "
          "fc rgb '#777777' title 'chance = observed - expected', " +
          plotter.data("expected", expected_rows) +
          " using 1:2:3 with yerrorbars lc rgb '#000000' lw 1.5 dt 1 pt 2 ps 1.5 title 'expected change ± 1.96 SE (parameters)', " +
          plotter.data("observed", observed_rows) + " using 1:2 with points lc rgb '#000000' pt 7 ps 1.6 title 'observed change'\n";
  const std::string title = "Where each arm's change came from (calibrated model)";
  const std::string body = preamble() + title_cmd(title) + "set xtics (" + tics + ") scale 0\n" +
                           "set xrange [-0.7:" + datum(static_cast<double>(accounts.size()) - 0.3) + "]\n" +
                           "set yrange [" + datum(std::min(0.0, lo) - 1.0) + ":" + datum(hi + 1.0) + "]\n"
                           "set ylabel " + gp("change from baseline to the last visit (" + labels.unit + ")") + "\n"
                           "set xzeroaxis lt 1 lc rgb '#444444' lw 1\nset grid noxtics ytics\n"
                           "set key outside below center horizontal maxrows 4 Left reverse width 2\n" + plot;
  const std::string caption =
      "Each bar stacks the parts of an arm's mean change from baseline (all randomized) to the last visit (completers) in the "
      "calibrated model, each part starting where the previous one ended: secular drift, regression to the mean, attrition, "
      "and selection on slopes plus the treatment effect; their sum is the expected change (cross, with ±1.96 SE from the "
      "parameters' uncertainty). The hatched bar beside it, chance, runs from the expected change to the observed one (dot).";
  std::vector<Figure> out;
  out.push_back(plotter.render("calibration_change", title, caption, body));
  return out;
}

std::vector<Figure> samplesize_figures(const nlohmann::json& samplesize) {
  const json& points = member(samplesize, "points");
  if (!points.is_array() || points.empty()) throw InputError("--plots: the sample-size result has no points");
  const std::string method = member(samplesize, "method").is_string() ? samplesize["method"].get<std::string>() : "the analysis";
  const std::string key = member(samplesize, "key").is_string() ? samplesize["key"].get<std::string>() : "n";
  const auto target = json_number(samplesize, {"target_power"});
  Plotter plotter;

  // The y axis covers the points' bars, the curve's band and the target, within [0, 1].
  double ylo = target.value_or(1.0), yhi = target.value_or(0.0);
  auto cover = [&](double lo, double hi) {
    ylo = std::min(ylo, lo);
    yhi = std::max(yhi, hi);
  };
  std::string pts;
  for (const json& p : points) {
    const auto n = json_number(p, {"n"});
    const auto power = json_number(p, {"power"});
    if (!n || !power) continue;
    const double half = 1.96 * json_number(p, {"power_mcse"}).value_or(0);
    pts += datum(n) + " " + datum(power) + " " + datum(half) + "\n";
    cover(*power - half, *power + half);
  }
  std::string curve;
  for (const json& c : member(samplesize, "curve")) {
    const auto n = json_number(c, {"n"});
    const auto power = json_number(c, {"power"});
    if (!n || !power) continue;
    const double lo = json_number(c, {"lower"}).value_or(*power), hi = json_number(c, {"upper"}).value_or(*power);
    curve += datum(n) + " " + datum(power) + " " + datum(lo) + " " + datum(hi) + "\n";
    cover(lo, hi);
  }
  const json& result = member(samplesize, "result");
  const auto rn = json_number(result, {"n"});
  const json& interval = member(result, "interval");
  std::optional<double> i_lo, i_hi;
  if (interval.is_array() && interval.size() == 2 && interval[0].is_number() && interval[1].is_number()) {
    i_lo = interval[0].get<double>();
    i_hi = interval[1].get<double>();
  }

  const std::string title = "Sample size: power of " + method + " against " + short_key(key);
  std::string body = preamble() + title_cmd(title) + "set xlabel " + gp(key_label(key, Labels::of_output(samplesize))) + "\n" +
                     "set ylabel 'power (share of trials rejecting H0)'\n"
                     "set yrange [" + datum(ylo < yhi ? std::max(0.0, ylo - 0.04 * (yhi - ylo)) : 0.0) + ":" +
                     datum(ylo < yhi ? std::min(1.0, yhi + 0.04 * (yhi - ylo)) : 1.0) + "]\n"
                     "set offsets graph 0.03, graph 0.03, 0, 0\n"
                     "set key outside bottom center horizontal Left reverse width 1\nset bmargin 7.5\n";
  if (rn) {
    if (i_lo && i_hi) {
      body += "set object 1 rect from " + datum(i_lo) + ", graph 0 to " + datum(i_hi) +
              ", graph 1 back fc rgb '#009E73' fs transparent solid 0.15 noborder\n";
    }
    body += "set arrow 1 from " + datum(rn) + ", graph 0 to " + datum(rn) + ", graph 1 nohead lc rgb '#009E73' lw 2 back\n";
    std::string label = " n = " + fixed(*rn, 0);
    if (i_lo && i_hi) label += " (" + fixed(*i_lo, 0) + "–" + fixed(*i_hi, 0) + ")";
    body += "set label 1 " + gp(label) + " at " + datum(i_hi ? i_hi : rn) + ", graph 0.06 left front textcolor rgb '#006B4F'\n";
  }
  std::string plot = "plot ";
  std::string sep;
  if (curve.empty() && pts.empty()) {
    plot += "-1 notitle";
    sep = ", ";
  }
  if (!curve.empty()) {
    const std::string f = plotter.data("curve", curve);
    plot += f + " using 1:3:4 with filledcurves lc rgb '#0072B2' title 'pointwise 95% fit band', " + f +
            " using 1:2 with lines lc rgb '#0072B2' lw 2 dt 1 title 'fitted curve'";
    sep = ", ";
  }
  if (!pts.empty()) {
    const std::string f = plotter.data("points", pts);
    plot += sep + f + " using 1:2:3 with yerrorbars lc rgb '#D55E00' pt 7 ps 1 lw 1.5 dt 1 title 'simulated power ±1.96 MC SE'";
    sep = ", ";
  }
  if (target) {
    // An arrow spans the whole axis; a function would stop at the outermost points.
    body += "set arrow 2 from graph 0, first " + datum(target) + " to graph 1, first " + datum(target) +
            " nohead lc rgb '#222222' dt 2 lw 1.5 back\n";
    plot += sep + "keyentry with lines lc rgb '#222222' dt 2 lw 1.5 title " + gp("target power " + fixed(*target, 2));
    sep = ", ";
  }
  if (rn) plot += ", keyentry with lines lc rgb '#009E73' lw 2 dt 1 title 'chosen n and its interval'";
  body += plot + "\n";

  std::string caption =
      "Dots: simulated power of " + method + " at each value of " + key + ", with ±1.96 Monte Carlo SE bars. Line and band: the fitted "
      "model (" + (member(member(samplesize, "fit"), "model").is_string() ? samplesize["fit"]["model"].get<std::string>() : std::string("fit")) +
      ") and its pointwise 95% band; the interval for n is where that band crosses the target.";
  if (target) caption += " Dashed: the target power " + fixed(*target, 2) + ".";
  if (rn) {
    caption += " Green: the chosen n = " + fixed(*rn, 0);
    if (i_lo && i_hi) caption += ", shaded over its interval " + fixed(*i_lo, 0) + "–" + fixed(*i_hi, 0);
    caption += ".";
  } else {
    caption += " No n reached the target, so none is marked.";
  }
  std::vector<Figure> out;
  out.push_back(plotter.render("samplesize", title, caption, body));
  return out;
}

std::vector<std::string> method_names(const nlohmann::json& summary) {
  std::vector<std::string> out;
  const json& analyses = member(summary, "analyses");
  if (!analyses.is_object()) return out;
  const json& configured = member(member(member(summary, "scenario"), "analysis"), "methods");
  if (configured.is_array()) {
    for (const json& m : configured) {
      if (m.is_string() && analyses.contains(m.get<std::string>()) &&
          std::find(out.begin(), out.end(), m.get<std::string>()) == out.end()) {
        out.push_back(m.get<std::string>());
      }
    }
  }
  for (auto it = analyses.begin(); it != analyses.end(); ++it) {
    if (std::find(out.begin(), out.end(), it.key()) == out.end()) out.push_back(it.key());
  }
  return out;
}

void write_figures(const std::vector<Figure>& figures, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw InputError(dir + ": cannot create the plots directory: " + (ec ? ec.message() : "not a directory"));
  }
  for (const Figure& f : figures) {
    for (const auto& [ext, content] : {std::pair<const char*, const std::string*>{".svg", &f.svg}, {".png", &f.png}}) {
      AtomicFile out((fs::path(dir) / (f.name + ext)).string());
      out.write(*content);
      out.commit();
    }
  }
}

bool scenario_positive(const nlohmann::json& scenario, std::initializer_list<std::string_view> path) {
  const std::optional<double> v = json_number(scenario, path);
  return !v || *v > 0;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace trialsim
