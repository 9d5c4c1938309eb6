#pragma once
// Typed, located access to a scenario's TOML table.
//
// Every read records the key path it asked for, present or not, so that after all models have
// read their sections `check_no_unknown_keys` can reject anything nobody asked for (a typo must
// not fall back to a default). Every error is one line that names where the value came from
// (`file:line` or `--set key=value`), the key path, the value found and what was expected.
#include <toml++/toml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace trialsim {

// Bad user input. The message is complete and fits on one line; main maps it to exit code 2.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An output that could not be written once the work was done (a full disk, a device that
// refuses the bytes, a rename that fails): exit code 3, and no partial file under the final name.
class OutputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Bounds {
  std::optional<double> lo;
  std::optional<double> hi;
  bool lo_open = false;  // true: value must be > lo rather than >= lo
  bool hi_open = false;  // true: value must be < hi rather than <= hi

  static Bounds at_least(double v) { return {v, std::nullopt, false, false, {}, {}}; }
  static Bounds above(double v) { return {v, std::nullopt, true, false, {}, {}}; }
  static Bounds closed(double a, double b) { return {a, b, false, false, {}, {}}; }
  static Bounds probability() { return closed(0.0, 1.0); }
  static Bounds open(double a, double b) { return {a, b, true, true, {}, {}}; }
  static Bounds any() { return {}; }
  // A value on the outcome's scale (a level, SD, effect, shift or cutoff; mmHg for SPP) or a
  // rate of it per year: at most kScaleLimit in magnitude, so that everything derived from it
  // (sums of squares over 10^5 patients, hazard exponents, confidence limits) stays finite.
  static Bounds scale() { return closed(-kScaleLimit, kScaleLimit).because(kScaleNote); }
  static Bounds scale_sd() { return closed(0.0, kScaleLimit).because(kScaleNote); }
  static constexpr double kScaleLimit = 1e6;
  static constexpr const char* kScaleNote = "a limit that keeps every derived figure finite";

  // The key a limit is derived from (e.g. the last month of trial.months): a value out of
  // range then names it and where it was set, since either key may be the one to change.
  std::string follows = {};
  Bounds following(std::string key) const {
    Bounds b = *this;
    b.follows = std::move(key);
    return b;
  }
  // Why the limit is there, when it is not the value's own domain: shown after the range.
  std::string note = {};
  Bounds because(std::string why) const {
    Bounds b = *this;
    b.note = std::move(why);
    return b;
  }
};

// The text of an input file (`what` names it in messages, e.g. "scenario file"): a regular
// file, a pipe (FIFO, /dev/stdin, a shell's <(...)), or "-" for standard input; at most
// 16 MiB. A directory, a device or a pipe nobody writes to within 30 s is refused with an
// InputError saying so. A pipe is read once; later calls return the same text.
std::string read_input_text(const std::string& path, const char* what);

// A path for comparing files (a cycle of `extends`, two outputs naming one file): canonical
// where possible, else absolute (a pipe such as /dev/fd/63 has none); "-" is standard input
// for an input and standard output for an output.
std::filesystem::path file_identity(const std::string& path, bool input = false);

// The files a scenario file extends: the one its `extends` names, then that file's, and so on
// (each path as written, relative to the current directory). Reading them fails as from_file
// does.
std::vector<std::string> extended_files(const std::string& path);

// Whether `text` holds a character beyond ASCII outside TOML strings and comments: not TOML 1.0,
// and text Debian's toml++ 3.3 must not be given (config_reader.cpp, check_ascii_outside_strings).
bool non_ascii_outside_toml_strings(std::string_view text);

// The candidate nearest to `word` in edit distance (Levenshtein) when it is a near miss (at most
// max(2, |word| / 5) edits), else empty: the "did you mean" of keys, commands and options.
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

class ConfigReader {
 public:
  // Parses `path` (throws InputError with file:line:column on a syntax error).
  static ConfigReader from_file(const std::string& path);
  static ConfigReader from_string(std::string_view text, std::string source_name);

  // Applies one `--set key.path=value` override. The value is parsed as a TOML value; a bare
  // word that is not valid TOML (`--set randomization.method=block`) is taken as a string.
  // The word `none` removes the key, which only optional keys accept (`--set
  // screening.entry_max=none`: no upper entry cutoff); any other key read after that is an error.
  void apply_override(const std::string& assignment, const std::string& option = "--set");

  double number(std::string_view path, double fallback, Bounds bounds);
  std::optional<double> optional_number(std::string_view path, Bounds bounds);
  std::int64_t integer(std::string_view path, std::int64_t fallback, std::int64_t lo, std::int64_t hi);
  bool boolean(std::string_view path, bool fallback);
  std::string choice(std::string_view path, std::string fallback, const std::vector<std::string>& allowed);
  std::vector<double> numbers(std::string_view path, std::vector<double> fallback, Bounds bounds,
                              std::size_t min_len, std::size_t max_len);
  std::vector<std::int64_t> integers(std::string_view path, std::vector<std::int64_t> fallback,
                                     std::int64_t lo, std::int64_t hi, std::size_t min_len,
                                     std::size_t max_len);
  std::vector<std::string> strings(std::string_view path, std::vector<std::string> fallback);
  // A name shown to people (tables, figures, reports): 1 to 40 characters of printable text,
  // without leading or trailing spaces.
  std::string label(std::string_view path, std::string fallback);
  std::vector<std::string> choices(std::string_view path, std::vector<std::string> fallback,
                                   const std::vector<std::string>& allowed, std::size_t min_len);

  // Where a key's value came from, e.g. "configs/seed_trial.toml:14" or "--set trial.alpha=2";
  // for an absent key, the file name.
  std::string where(std::string_view path) const;
  // Throws InputError "<where>: <path>: <message>".
  [[noreturn]] void fail(std::string_view path, const std::string& message) const;

  // Throws InputError for the first key (in file order) that no reader asked for.
  void check_no_unknown_keys() const;

  const std::string& source_name() const { return source_; }
  const toml::table& table() const { return root_; }

 private:
  ConfigReader(toml::table root, std::string source) : root_(std::move(root)), source_(std::move(source)) {}
  const toml::node* find(std::string_view path) const;
  void touch(std::string_view path, bool may_be_none = false);
  std::optional<double> read_number(std::string_view path, Bounds bounds, bool may_be_none);
  std::string suggest(const std::string& unknown) const;

  toml::table root_;
  std::string source_;
  std::map<std::string, std::string, std::less<>> overrides_;  // key path -> "--set k=v" text
  std::set<std::string, std::less<>> asked_;
  std::map<std::string, std::string, std::less<>> removed_;  // key path -> "--set k=none" text
};

// Renders a TOML node as the user wrote it, for "got ..." in messages.
std::string describe(const toml::node& node);

}  // namespace trialsim
