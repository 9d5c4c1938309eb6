// Fuzz target: a scenario file, and the --set / --vary values given with it, loaded and validated
// the way `trialsim run FILE --set ...` and `trialsim sweep FILE --vary ...` do, up to the first
// simulated trial (which is never started). See tests/fuzz/README.md.
//
// The input is the scenario's text. Lines that start with "#set " or "#vary " (TOML comments, so
// the file parses the same with or without them) also give a --set KEY=VALUE or a --vary SPEC
// each, the rest of the line being the option's value as the shell would pass it.
//
// Bad input must end in InputError, which the CLI reports with exit code 2; InputError is caught
// here and ignored. Anything else (another exception, a crash, a sanitizer report, a leak, a
// hang) escapes and is a finding.
//
// Built with clang's libFuzzer by tests/fuzz/build.sh, and with GCC into the test suite's
// "fuzz corpus replay", which feeds it every file of tests/fuzz/corpus and tests/fuzz/crashes.
#include "sim/design/sweep.hpp"
#include "sim/engine/trial.hpp"
#include "sim/io/config_reader.hpp"
#include "sim/io/scenario.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using namespace trialsim;

// Enough options to combine overrides and axes; a bounded cost per input.
constexpr std::size_t kMaxSets = 16;
constexpr std::size_t kMaxVaries = 8;
// The sweep validates every point of its grid (up to 10 000); the fuzzer validates at most this
// many, chosen so that every value of every axis is among them while they fit.
constexpr std::size_t kMaxPoints = 8;

// TRIALSIM_FUZZ_VERBOSE=1: each input's caught InputErrors and validated scenarios on stderr, to
// see how far an input gets (e.g. a reproducer or a corpus file replayed alone).
bool verbose() {
  static const bool v = [] {
    const char* e = std::getenv("TRIALSIM_FUZZ_VERBOSE");
    return e != nullptr && *e != '\0' && *e != '0';
  }();
  return v;
}

void note(const char* what, const std::string& text) {
  if (verbose()) std::fprintf(stderr, "fuzz_scenario: %s: %s\n", what, text.c_str());
}

struct Options {
  std::vector<std::string> sets, varies;
};

// The "#set " and "#vary " lines. A value holding a NUL byte is skipped: no argv can carry it.
Options options_in(std::string_view text) {
  Options o;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    auto take = [&](std::string_view lead, std::vector<std::string>& into, std::size_t max) {
      if (line.substr(0, lead.size()) != lead || into.size() >= max) return;
      const std::string_view value = line.substr(lead.size());
      if (value.find('\0') == std::string_view::npos) into.emplace_back(value);
    };
    take("#set ", o.sets, kMaxSets);
    take("#vary ", o.varies, kMaxVaries);
  }
  return o;
}

// A directory of this process's own, holding the scenario files an input may extend (copies of
// configs/*.toml) and, for such an input, the input itself as fuzz.toml. Removed at exit.
class Workdir {
 public:
  static Workdir& get() {
    static Workdir w;
    return w;
  }
  bool ok() const { return !dir_.empty(); }
  // Writes `text` as the input file and returns its path.
  std::optional<std::string> write_input(std::string_view text) const {
    if (!ok()) return std::nullopt;
    const std::filesystem::path p = dir_ / "fuzz.toml";
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) return std::nullopt;
    return p.string();
  }
  ~Workdir() {
    std::error_code ec;
    if (ok()) std::filesystem::remove_all(dir_, ec);
  }
  Workdir(const Workdir&) = delete;
  Workdir& operator=(const Workdir&) = delete;

 private:
  Workdir() {
    std::error_code ec;
    std::string templ = (std::filesystem::temp_directory_path(ec) / "trialsim-fuzz-XXXXXX").string();
    if (ec || ::mkdtemp(templ.data()) == nullptr) return;
    dir_ = templ;
#ifdef TRIALSIM_SOURCE_DIR
    for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(TRIALSIM_SOURCE_DIR) / "configs", ec)) {
      if (e.path().extension() == ".toml") std::filesystem::copy_file(e.path(), dir_ / e.path().filename(), ec);
    }
#endif
  }
  std::filesystem::path dir_;
};

// A bare file name in the work directory: an input cannot reach the rest of the file system
// (a pipe or a terminal there would make it wait).
bool bare_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

// The input's text parsed as Scenario::load's first step, ConfigReader::from_file, parses a file:
// in memory (ConfigReader::from_string, which is what from_file does with the text it reads when
// there is no top-level `extends`), or, when the input extends a file by a bare name, written to
// the work directory and read from there by from_file itself, which follows `extends` (and
// rejects a cycle: extends = "fuzz.toml"). Throws InputError on bad text.
ConfigReader parse(std::string_view text) {
  ConfigReader in = ConfigReader::from_string(text, "fuzz.toml");
  const toml::node* ext = in.table().get("extends");
  if (ext != nullptr && ext->is_string() && bare_name(ext->as_string()->get())) {
    if (const auto path = Workdir::get().write_input(text)) return ConfigReader::from_file(*path);
  }
  return in;
}

// Scenario::load(FILE, sets, varies) given FILE's parse: the overrides applied in order, then every
// section read and checked. The sweep loads the file once per grid point; the parse is the same
// each time, so it is done once per input and copied.
Scenario load(const ConfigReader& parsed, const std::vector<std::string>& sets, const std::vector<std::string>& varies) {
  ConfigReader in = parsed;
  for (const auto& o : sets) in.apply_override(o);
  for (const auto& v : varies) in.apply_override(v, "--vary");
  return Scenario::read(in);
}

// What `run` builds from a valid scenario before its first trial, and the resolved scenario as
// the JSON summary (and a sweep point's identity) prints it.
// `all_covariates`: also the simulator of `run --replicate R --patients-csv`.
void build(const Scenario& s, bool all_covariates) {
  const TrialSimulator sim(s);
  if (all_covariates) {
    const TrialSimulator with_all_covariates(s, true);
  }
  const std::string resolved = s.to_json().dump();
  if (resolved.empty()) std::abort();
}

// The grid points validated: every value of every axis with the other axes at their first value,
// and the last point (every axis at its last value), thinned evenly to kMaxPoints.
std::vector<std::size_t> chosen_points(const std::vector<SweepAxis>& axes, std::size_t total) {
  std::vector<std::size_t> idx;
  std::size_t stride = 1;  // the last axis varies fastest (as in run_sweep)
  for (std::size_t a = axes.size(); a-- > 0;) {
    for (std::size_t k = 0; k < axes[a].values.size(); ++k) idx.push_back(k * stride);
    stride *= axes[a].values.size();
  }
  idx.push_back(total - 1);
  std::sort(idx.begin(), idx.end());
  idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
  if (idx.size() <= kMaxPoints) return idx;
  std::vector<std::size_t> thin;
  for (std::size_t j = 0; j < kMaxPoints; ++j) thin.push_back(idx[j * (idx.size() - 1) / (kMaxPoints - 1)]);
  thin.erase(std::unique(thin.begin(), thin.end()), thin.end());
  return thin;
}

// `trialsim sweep FILE --set ... --vary ...` up to its first simulation: the axes parsed (the
// command line's first, then the file's sweep.vary), checked, and grid points resolved and
// validated as run_sweep does. `base` is Scenario::load(FILE, sets), which run_sweep loads first.
// Each check below that fails is one the product reports as an InputError.
void sweep(const ConfigReader& parsed, const Options& o, const Scenario& base) {
  std::vector<SweepAxis> cli_axes;
  for (const auto& v : o.varies) cli_axes.push_back(parse_axis(v, "--vary"));
  std::vector<SweepAxis> axes;
  for (const auto& spec : base.sweep_vary) axes.push_back(parse_axis(spec, base.source + ": sweep.vary"));
  axes.insert(axes.end(), cli_axes.begin(), cli_axes.end());
  if (axes.empty()) return;  // "nothing to sweep"
  note("sweep", std::to_string(axes.size()) + " axes");
  for (std::size_t a = 0; a < axes.size(); ++a) {
    if (axes[a].values.empty()) std::abort();  // parse_axis never returns an axis without values
    for (std::size_t b = 0; b < a; ++b) {
      if (axes[a].key == axes[b].key) return;  // "the key is varied twice"
    }
  }
  std::size_t total = 1;
  for (const auto& ax : axes) {
    total *= ax.values.size();
    if (total > 10000) return;  // "the grid has more than 10000 points"
  }
  for (const std::size_t i : chosen_points(axes, total)) {
    std::vector<std::string> varies(axes.size());
    std::size_t rest = i;
    for (std::size_t a = axes.size(); a-- > 0;) {
      varies[a] = axes[a].key + "=" + axes[a].values[rest % axes[a].values.size()];
      rest /= axes[a].values.size();
    }
    build(load(parsed, o.sets, varies), false);
    note("sweep: valid point", i == 0 ? "first" : std::to_string(i));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const Options o = options_in(text);
  std::optional<ConfigReader> parsed;
  try {
    parsed.emplace(parse(text));
  } catch (const InputError& e) {
    note("input error", e.what());
    return 0;
  }
  std::optional<Scenario> base;
  try {
    base.emplace(load(*parsed, o.sets, {}));  // run: Scenario::load(FILE, sets)
    build(*base, true);
    note("run", "valid scenario");
  } catch (const InputError& e) {
    note("run: input error", e.what());
  }
  if (base) {
    try {
      sweep(*parsed, o, *base);
    } catch (const InputError& e) {
      note("sweep: input error", e.what());
    }
  }
  return 0;
}
