#include "sim/io/config_reader.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace trialsim {
namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    parts.emplace_back(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string format_number(double v) {
  std::ostringstream os;
  os.precision(15);
  os << v;
  return os.str();
}

std::string bounds_text(const Bounds& b) {
  if (b.lo && b.hi) {
    return std::string("in ") + (b.lo_open ? "(" : "[") + format_number(*b.lo) + ", " + format_number(*b.hi) +
           (b.hi_open ? ")" : "]");
  }
  if (b.lo) return std::string(b.lo_open ? "> " : ">= ") + format_number(*b.lo);
  if (b.hi) return std::string(b.hi_open ? "< " : "<= ") + format_number(*b.hi);
  return "a finite number";
}

// The range and, where the limit is not the value's own domain, why it is there.
std::string bounds_message(const Bounds& b) { return bounds_text(b) + (b.note.empty() ? "" : " (" + b.note + ")"); }

bool within(double v, const Bounds& b) {
  if (!std::isfinite(v)) return false;
  if (b.lo && (b.lo_open ? !(v > *b.lo) : !(v >= *b.lo))) return false;
  if (b.hi && (b.hi_open ? !(v < *b.hi) : !(v <= *b.hi))) return false;
  return true;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0u : 1u)});
      diag = up;
    }
  }
  return row[b.size()];
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

}  // namespace

namespace {
// "a string \"x\"", "a number 1.5", or just "a table".
std::string what_is(const toml::node& n) {
  return n.is_table() ? std::string("a table") : std::string(type_name(n)) + " " + describe(n);
}
}  // namespace

std::string describe(const toml::node& node) {
  if (node.is_table()) return "a table";
  std::string s;
  if (const auto* f = node.as_floating_point()) {
    s = format_number(f->get());
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  } else if (const auto* str = node.as_string()) {
    s = "\"" + str->get() + "\"";
  } else if (const auto* arr = node.as_array()) {
    s = "[";
    for (std::size_t k = 0; k < arr->size(); ++k) s += (k ? ", " : "") + describe(*arr->get(k));
    s += "]";
  } else {
    std::ostringstream os;
    node.visit([&](const auto& v) {
      if constexpr (!toml::is_table<decltype(v)> && !toml::is_array<decltype(v)>) os << v;
    });
    s = os.str();
  }
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

namespace {

// Reads all of `fd` (at most `limit` bytes), or says why not.
std::string read_all(int fd, const std::string& name, const char* what, std::size_t limit) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw InputError(name + ": cannot read the " + what + ": " + std::strerror(errno));
    }
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > limit) {
      throw InputError(name + ": more than " + std::to_string(limit >> 20) + " MiB; a " + what + " is a short TOML text");
    }
  }
  return out;
}

}  // namespace

std::string read_input_text(const std::string& path, const char* what) {
  // A pipe, and standard input whatever it is (a pipe, or a file given with `< file`, whose
  // offset the first read leaves at its end), can be read only once: what it gave is kept for
  // the rest of the process, so commands that load the scenario many times (sweep, calibrate,
  // the check of the files it extends) see the same text.
  static std::mutex mu;
  static std::map<std::string, std::string> pipes;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (const auto it = pipes.find(path); it != pipes.end()) return it->second;
  }
  constexpr std::size_t kLimit = std::size_t{16} << 20;
  const std::string name = path == "-" ? "<stdin>" : path;
  struct stat st {};
  if (path == "-") {
    if (::fstat(STDIN_FILENO, &st) != 0) throw InputError("<stdin>: cannot read the " + std::string(what) + ": " + std::strerror(errno));
  } else if (::stat(path.c_str(), &st) != 0) {
    throw InputError(name + ": cannot open " + what + ": " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) throw InputError(name + ": is a directory; expected a " + std::string(what) + " (TOML)");
  const bool regular = S_ISREG(st.st_mode);
  if (!regular && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
    throw InputError(name + ": is not a regular file or a pipe; expected a " + std::string(what) + " (TOML)");
  }
  if (regular && static_cast<std::uint64_t>(st.st_size) > kLimit) {
    throw InputError(name + ": is " + std::to_string(st.st_size) + " bytes; a " + what + " is a short TOML text (at most 16 MiB)");
  }
  int fd = STDIN_FILENO;
  if (path != "-") {
    // A pipe is opened without waiting for a writer, then given 30 seconds to start.
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (regular ? 0 : O_NONBLOCK));
    if (fd < 0) throw InputError(name + ": cannot open " + what + ": " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() {
      if (fd != STDIN_FILENO) ::close(fd);
    }
  } closer{fd};
  if (S_ISCHR(st.st_mode) && ::isatty(fd) == 0) {
    throw InputError(name + ": is a device, not a " + std::string(what) + " (TOML)");
  }
  if (!regular) {
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, 30000);
    if (ready == 0) throw InputError(name + ": nothing was written to this pipe within 30 s (is its writer running?)");
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  std::string text = read_all(fd, name, what, kLimit);
  if (!regular || path == "-") {
    std::lock_guard<std::mutex> lock(mu);
    pipes.emplace(path, text);
  }
  return text;
}

namespace {

// TOML 1.0 allows characters beyond ASCII only inside strings and comments. Debian's toml++
// 3.3.0 reaches __builtin_unreachable() (undefined behaviour) on some of them where it looks for
// whitespace (upstream tomlplusplus issues #190 and #295, fixed in 3.4), so such a character
// elsewhere is reported here, before the parser sees it: a lexer of just comments and the four
// kinds of string. A quote opens a string only where toml++ could begin one (a key or a value: at
// the start of a line or after `=`, `[`, `{`, `,` or `.`); elsewhere toml++ stops at the quote or
// reads on past it, so the lexer reads on past it too.
struct NonAscii {
  std::size_t line = 0, column = 0;
  std::uint32_t code_point = 0;
  std::size_t value_column = 0;  // > 0: in the run of a value that starts at this column
  std::size_t quote_column = 0;  // > 0: after a quote at this column that opens no string
};
std::optional<NonAscii> find_non_ascii_outside_strings(std::string_view text) {
  enum class State { normal, comment, basic, literal, multi_basic, multi_literal };
  State state = State::normal;
  std::size_t line = 1, column = 1;
  // The last byte outside strings and comments that is not a space or tab ('\n' at a line's
  // start), and the column of a quote on this line that opened no string.
  unsigned char previous = '\n';
  std::size_t stray_quote = 0;
  auto starts = [&](std::size_t i, std::string_view what) { return text.substr(i, what.size()) == what; };
  // The code point whose first byte is text[at] (a malformed sequence: that byte).
  auto non_ascii_at = [&](std::size_t at, std::size_t col) {
    const auto c0 = static_cast<unsigned char>(text[at]);
    std::uint32_t cp = c0;
    const std::size_t more = c0 >= 0xF0 ? 3 : c0 >= 0xE0 ? 2 : c0 >= 0xC0 ? 1 : 0;
    if (more > 0 && at + more < text.size()) {
      cp = c0 & (0x3Fu >> more);
      for (std::size_t k = 1; k <= more; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[at + k]) & 0x3Fu);
    }
    return std::optional<NonAscii>(NonAscii{line, col, cp, 0, stray_quote});
  };
  // A multi-line string closes at three quotes, and one or two more next to them are its last
  // characters (TOML 1.0: `"""a""""` is `a"`): the run of up to five quotes at text[i] is consumed.
  auto close_multi_line = [&](char quote, std::size_t& i) {
    std::size_t run = 3;
    while (run < 5 && i + run < text.size() && text[i + run] == quote) ++run;
    state = State::normal;
    previous = static_cast<unsigned char>(quote);
    i += run - 1;
    column += run - 1;
  };
  // A value that starts with a digit or a sign is scanned by toml++ through every character up to
  // a value terminator (whitespace, `,`, `]`, `}`, `#`), quotes included, and across the space
  // of a date-time written "1979-05-27 07:32:00": there it reads the digit after the space and
  // the character after that whatever they are (a terminator too), then on to the next
  // terminator. Each of those characters goes through the unsafe whitespace test. So where such
  // a value may start (at the text's start or after a terminator, `=`, `[` or `{`), the first
  // character beyond ASCII in its run is returned.
  auto terminates = [](unsigned char b) {
    return b == ' ' || (b >= '\t' && b <= '\r') || b == ']' || b == '}' || b == ',' || b == '#';
  };
  auto value_run = [&](std::size_t start) -> std::optional<std::size_t> {
    const auto c = static_cast<unsigned char>(text[start]);
    if (!((c >= '0' && c <= '9') || c == '+' || c == '-')) return std::nullopt;
    if (start > 0) {
      const auto before = static_cast<unsigned char>(text[start - 1]);
      if (!(terminates(before) || before == '=' || before == '[' || before == '{')) return std::nullopt;
    }
    for (std::size_t j = start; j < text.size(); ++j) {
      const auto b = static_cast<unsigned char>(text[j]);
      if (b >= 0x80) return j;
      if (!terminates(b)) continue;
      if (b == ' ' && j - start == 10 && j + 1 < text.size() && text[j + 1] >= '0' && text[j + 1] <= '9') {
        if (j + 2 < text.size() && static_cast<unsigned char>(text[j + 2]) >= 0x80) return j + 2;
        j += 2;
        continue;
      }
      return std::nullopt;
    }
    return std::nullopt;
  };
  // A byte-order mark may open the text.
  for (std::size_t i = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0; i < text.size(); ++i, ++column) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 0;
      if (state == State::comment || state == State::basic || state == State::literal) state = State::normal;
      if (state == State::normal) {
        previous = '\n';
        stray_quote = 0;
      }
      continue;
    }
    switch (state) {
      case State::normal:
        if (const auto run = value_run(i)) {
          auto at = non_ascii_at(*run, column + (*run - i));
          at->value_column = column;
          at->quote_column = 0;
          return at;
        }
        if (c == ' ' || c == '\t' || c == '\r') break;
        if ((c == '"' || c == '\'') && !(previous == '\n' || previous == '=' || previous == '[' || previous == '{' ||
                                         previous == ',' || previous == '.')) {
          // A quote where no key or value begins.
          stray_quote = column;
          previous = c;
          break;
        }
        previous = c;
        if (c == '#') {
          state = State::comment;
        } else if (starts(i, "\"\"\"")) {
          state = State::multi_basic;
          i += 2;
          column += 2;
        } else if (starts(i, "'''")) {
          state = State::multi_literal;
          i += 2;
          column += 2;
        } else if (c == '"') {
          state = State::basic;
        } else if (c == '\'') {
          state = State::literal;
        } else if (c >= 0x80) {
          return non_ascii_at(i, column);
        }
        break;
      case State::comment:
        break;
      case State::basic:
        if (c == '\\') {
          // toml++ reads the escaped character through the same unsafe whitespace test.
          if (i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80) return non_ascii_at(i + 1, column + 1);
          ++i;
          ++column;
        } else if (c == '"') {
          state = State::normal;
          previous = c;
        }
        break;
      case State::literal:
        if (c == '\'') {
          state = State::normal;
          previous = c;
        }
        break;
      case State::multi_basic:
        if (c == '\\') {
          // As above; and after a line-ending backslash toml++ tests every character up to the
          // next one that is not whitespace, which therefore must be ASCII.
          std::size_t j = i + 1, line_j = line, column_j = column + 1;
          while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n')) {
            if (text[j] == '\n') {
              ++line_j;
              column_j = 0;
            }
            ++j;
            ++column_j;
          }
          if (j < text.size() && static_cast<unsigned char>(text[j]) >= 0x80) {
            line = line_j;
            return non_ascii_at(j, column_j);
          }
          ++i;
          ++column;
        } else if (starts(i, "\"\"\"")) {
          close_multi_line('"', i);
        }
        break;
      case State::multi_literal:
        if (starts(i, "'''")) close_multi_line('\'', i);
        break;
    }
  }
  return std::nullopt;
}

void check_ascii_outside_strings(std::string_view text, const std::string& source_name) {
  const auto at = find_non_ascii_outside_strings(text);
  if (!at) return;
  char code[16];
  std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(at->code_point));
  const std::string where = source_name + ":" + std::to_string(at->line) + ":" + std::to_string(at->column) +
                            ": TOML syntax error: the character " + code;
  if (at->quote_column > 0) {
    throw InputError(where + " after the quote at column " + std::to_string(at->quote_column) +
                     ", which opens no string there (a string starts a line or follows =, [, {, a comma or a dot)");
  }
  if (at->value_column > 0) {
    throw InputError(where + " runs on from the value that starts at column " + std::to_string(at->value_column) +
                     " (a value runs on to a space, a comma, a bracket or the end of the line, and a date-time such as "
                     "1979-05-27 07:32:00 past its space)");
  }
  throw InputError(where +
                   " outside a string or comment (keys, numbers and the rest of TOML's syntax are ASCII; put text in quotes)");
}

toml::table parse_located(std::string_view text, const std::string& source_name) {
  check_ascii_outside_strings(text, source_name);
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& pos = e.source().begin;
    throw InputError(source_name + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column) +
                     ": TOML syntax error: " + std::string(e.description()));
  }
}

// `over`'s keys replace `base`'s, section by section.
void merge_into(toml::table& base, toml::table&& over) {
  for (auto&& [k, node] : over) {
    toml::node* mine = base.get(k.str());
    if (mine != nullptr && mine->is_table() && node.is_table()) {
      merge_into(*mine->as_table(), std::move(*node.as_table()));
    } else {
      base.insert_or_assign(k.str(), std::move(node));
    }
  }
}

// A scenario file, with the file named by its top-level `extends` key (relative to it) read
// first and overlaid; `chain` holds the files being read, to reject a cycle.
toml::table read_scenario_file(const std::string& path, std::vector<std::filesystem::path>& chain,
                               std::vector<std::string>* bases = nullptr) {
  const std::string text = read_input_text(path, "scenario file");
  toml::table t = parse_located(text, path == "-" ? "<stdin>" : path);
  const toml::node* ext = t.get("extends");
  if (ext == nullptr) return t;
  const auto line = std::to_string(ext->source().begin.line);
  if (!ext->is_string()) throw InputError(path + ":" + line + ": extends: expected the path of a scenario file, got " + describe(*ext));
  std::filesystem::path base = ext->as_string()->get();
  if (base.is_relative()) base = std::filesystem::path(path).parent_path() / base;
  const auto canon = file_identity(base.string(), true);
  if (std::find(chain.begin(), chain.end(), canon) != chain.end()) {
    throw InputError(path + ":" + line + ": extends: " + base.string() + " extends this file again (a cycle)");
  }
  if (!std::filesystem::exists(base)) throw InputError(path + ":" + line + ": extends: no such scenario file " + base.string());
  if (std::filesystem::is_directory(base)) {
    throw InputError(path + ":" + line + ": extends: " + base.string() + " is a directory; expected a scenario file");
  }
  chain.push_back(canon);
  if (bases != nullptr) bases->push_back(base.string());
  toml::table merged = read_scenario_file(base.string(), chain, bases);
  chain.pop_back();
  t.erase("extends");
  merge_into(merged, std::move(t));
  return merged;
}

}  // namespace

bool non_ascii_outside_toml_strings(std::string_view text) { return find_non_ascii_outside_strings(text).has_value(); }

std::filesystem::path file_identity(const std::string& path, bool input) {
  if (path == "-") return input ? "<stdin>" : "<stdout>";
  std::error_code ec;
  std::filesystem::path p = std::filesystem::weakly_canonical(path, ec);
  if (ec) p = std::filesystem::absolute(path, ec).lexically_normal();
  return p;
}

std::vector<std::string> extended_files(const std::string& path) {
  std::vector<std::filesystem::path> chain{file_identity(path, true)};
  std::vector<std::string> bases;
  read_scenario_file(path, chain, &bases);
  return bases;
}

ConfigReader ConfigReader::from_file(const std::string& path) {
  std::vector<std::filesystem::path> chain{file_identity(path, true)};
  return ConfigReader(read_scenario_file(path, chain), path);
}

ConfigReader ConfigReader::from_string(std::string_view text, std::string source_name) {
  toml::table t = parse_located(text, source_name);
  return ConfigReader(std::move(t), std::move(source_name));
}

void ConfigReader::apply_override(const std::string& assignment, const std::string& option) {
  const std::size_t eq = assignment.find('=');
  const std::string where_text = option + " " + assignment;
  if (eq == std::string::npos || eq == 0) {
    throw InputError(where_text + ": expected KEY=VALUE with a dotted key path, e.g. --set trial.alpha=0.025");
  }
  std::string key = assignment.substr(0, eq);
  std::string value = assignment.substr(eq + 1);
  auto trim = [](std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    const auto e = s.find_last_not_of(" \t");
    s = b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  trim(key);
  trim(value);
  const auto parts = split_path(key);
  for (const auto& p : parts) {
    if (p.empty() || p.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != std::string::npos) {
      throw InputError(where_text + ": '" + key + "' is not a dotted key path like trial.alpha");
    }
  }
  if (value.empty()) throw InputError(where_text + ": " + key + ": missing value after '='");
  if (value.find_first_of("\r\n") != std::string::npos) {
    throw InputError(where_text + ": " + key + ": one value per --set; repeat --set for more keys");
  }
  if (value == "none") {
    toml::node* parent = &root_;
    for (std::size_t i = 0; i + 1 < parts.size() && parent != nullptr; ++i) {
      toml::table* t = parent->as_table();
      parent = t ? t->get(parts[i]) : nullptr;
    }
    if (parent != nullptr && parent->is_table()) parent->as_table()->erase(parts.back());
    overrides_.erase(key);
    removed_[key] = where_text;
    return;
  }
  removed_.erase(key);
  toml::table parsed;
  // A bare word is taken as a string: one that is not TOML, or has characters beyond ASCII
  // outside quotes (not TOML either, and unsafe for the parser: check_ascii_outside_strings).
  const std::string snippet = "v = " + value;
  if (non_ascii_outside_toml_strings(snippet)) {
    parsed = toml::table{{"v", value}};
  } else {
    try {
      parsed = toml::parse(std::string_view(snippet), std::string_view("--set"));
    } catch (const toml::parse_error&) {
      parsed = toml::table{{"v", value}};
    }
  }
  if (parsed.size() != 1 || parsed.get("v") == nullptr) {
    throw InputError(where_text + ": " + key + ": expected a single TOML value after '='");
  }
  if (parsed.get("v")->is_table()) {
    throw InputError(where_text + ": " + key + ": set keys one at a time, e.g. --set " + key + ".KEY=VALUE");
  }
  toml::table* t = &root_;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    toml::node* child = t->get(parts[i]);
    if (child == nullptr) {
      t->insert(parts[i], toml::table{});
      child = t->get(parts[i]);
    }
    if (!child->is_table()) {
      std::string prefix;
      for (std::size_t j = 0; j <= i; ++j) prefix += (j ? "." : "") + parts[j];
      throw InputError(where_text + ": " + prefix + " is " + describe(*child) + ", not a section");
    }
    t = child->as_table();
  }
  t->insert_or_assign(parts.back(), std::move(*parsed.get("v")));
  overrides_[key] = where_text;
}

const toml::node* ConfigReader::find(std::string_view path) const {
  const toml::node* n = &root_;
  for (const auto& part : split_path(path)) {
    const toml::table* t = n->as_table();
    if (t == nullptr) return nullptr;
    n = t->get(part);
    if (n == nullptr) return nullptr;
  }
  return n;
}

void ConfigReader::touch(std::string_view path, bool may_be_none) {
  asked_.emplace(path);
  if (may_be_none) return;
  if (const auto it = removed_.find(path); it != removed_.end()) {
    throw InputError(it->second + ": " + std::string(path) +
                     ": cannot be none (only optional keys such as screening.entry_max can be removed)");
  }
}

std::string ConfigReader::where(std::string_view path) const {
  if (auto it = overrides_.find(path); it != overrides_.end()) return it->second;
  for (const auto& [key, text] : overrides_) {
    if (key.size() > path.size() && key.compare(0, path.size(), path) == 0 && key[path.size()] == '.') return text;
  }
  if (const toml::node* n = find(path)) {
    const auto& src = n->source();
    // A key may come from a file this one extends.
    if (src.begin.line > 0) return (src.path ? *src.path : source_) + ":" + std::to_string(src.begin.line);
  }
  return source_;
}

void ConfigReader::fail(std::string_view path, const std::string& message) const {
  throw InputError(where(path) + ": " + std::string(path) + ": " + message);
}

double ConfigReader::number(std::string_view path, double fallback, Bounds bounds) {
  const auto v = read_number(path, bounds, false);
  return v ? *v : fallback;
}

std::optional<double> ConfigReader::optional_number(std::string_view path, Bounds bounds) {
  return read_number(path, bounds, true);
}

std::optional<double> ConfigReader::read_number(std::string_view path, Bounds bounds, bool may_be_none) {
  touch(path, may_be_none);
  const toml::node* n = find(path);
  if (n == nullptr) return std::nullopt;
  double v = 0.0;
  if (auto i = n->as_integer()) {
    v = static_cast<double>(i->get());
  } else if (auto f = n->as_floating_point()) {
    v = f->get();
  } else {
    fail(path, std::string("expected a number, got ") + what_is(*n));
  }
  if (!within(v, bounds)) {
    std::string message = "must be " + bounds_message(bounds) + ", got " + describe(*n);
    if (!bounds.follows.empty()) {
      message += "; the limit follows " + bounds.follows + " (" +
                 (find(bounds.follows) != nullptr ? where(bounds.follows) : std::string("its default")) +
                 "): change either key";
    }
    fail(path, message);
  }
  return v;
}

std::int64_t ConfigReader::integer(std::string_view path, std::int64_t fallback, std::int64_t lo, std::int64_t hi) {
  touch(path);
  const toml::node* n = find(path);
  if (n == nullptr) return fallback;
  const auto* i = n->as_integer();
  if (i == nullptr) fail(path, std::string("expected an integer, got ") + what_is(*n));
  const std::int64_t v = i->get();
  if (v < lo || v > hi) {
    fail(path, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
  }
  return v;
}

bool ConfigReader::boolean(std::string_view path, bool fallback) {
  touch(path);
  const toml::node* n = find(path);
  if (n == nullptr) return fallback;
  const auto* b = n->as_boolean();
  if (b == nullptr) fail(path, std::string("expected true or false, got ") + what_is(*n));
  return b->get();
}

namespace {
std::string one_of(const std::vector<std::string>& allowed) {
  std::string s;
  for (std::size_t i = 0; i < allowed.size(); ++i) s += (i ? ", " : "") + allowed[i];
  return s;
}
}  // namespace

std::string ConfigReader::choice(std::string_view path, std::string fallback, const std::vector<std::string>& allowed) {
  touch(path);
  const toml::node* n = find(path);
  if (n == nullptr) return fallback;
  const auto* s = n->as_string();
  if (s == nullptr) fail(path, std::string("expected a string, one of ") + one_of(allowed) + "; got " + describe(*n));
  if (std::find(allowed.begin(), allowed.end(), s->get()) == allowed.end()) {
    fail(path, "must be one of " + one_of(allowed) + ", got \"" + s->get() + "\"");
  }
  return s->get();
}

std::vector<double> ConfigReader::numbers(std::string_view path, std::vector<double> fallback, Bounds bounds,
                                          std::size_t min_len, std::size_t max_len) {
  touch(path);
  const toml::node* n = find(path);
  if (n == nullptr) return fallback;
  const auto* a = n->as_array();
  if (a == nullptr) fail(path, std::string("expected an array of numbers, got ") + what_is(*n));
  if (a->size() < min_len || a->size() > max_len) {
    fail(path, "expected " + std::to_string(min_len) + " to " + std::to_string(max_len) + " numbers, got " +
                   std::to_string(a->size()) + " in " + describe(*n));
  }
  std::vector<double> out;
  for (std::size_t k = 0; k < a->size(); ++k) {
    const toml::node& e = *a->get(k);
    double v = 0.0;
    if (auto i = e.as_integer()) {
      v = static_cast<double>(i->get());
    } else if (auto f = e.as_floating_point()) {
      v = f->get();
    } else {
      fail(path, "element " + std::to_string(k + 1) + ": expected a number, got " + describe(e));
    }
    if (!within(v, bounds)) {
      fail(path, "element " + std::to_string(k + 1) + " must be " + bounds_message(bounds) + ", got " + describe(e));
    }
    out.push_back(v);
  }
  return out;
}

std::vector<std::int64_t> ConfigReader::integers(std::string_view path, std::vector<std::int64_t> fallback,
                                                 std::int64_t lo, std::int64_t hi, std::size_t min_len,
                                                 std::size_t max_len) {
  touch(path);
  const toml::node* n = find(path);
  if (n == nullptr) return fallback;
  const auto* a = n->as_array();
  if (a == nullptr) fail(path, std::string("expected an array of integers, got ") + what_is(*n));
  if (a->size() < min_len || a->size() > max_len) {
    fail(path, "expected " + std::to_string(min_len) + " to " + std::to_string(max_len) + " integers, got " +
                   std::to_string(a->size()) + " in " + describe(*n));
  }
  std::vector<std::int64_t> out;
  for (std::size_t k = 0; k < a->size(); ++k) {
    const toml::node& e = *a->get(k);
    const auto* i = e.as_integer();
    if (i == nullptr) fail(path, "element " + std::to_string(k + 1) + ": expected an integer, got " + describe(e));
    if (i->get() < lo || i->get() > hi) {
      fail(path, "element " + std::to_string(k + 1) + " must be in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], got " + describe(e));
    }
    out.push_back(i->get());
  }
  return out;
}

std::vector<std::string> ConfigReader::strings(std::string_view path, std::vector<std::string> fallback) {
  touch(path);
  const toml::node* n = find(path);
  if (n == nullptr) return fallback;
  const auto* a = n->as_array();
  if (a == nullptr) fail(path, std::string("expected an array of strings, got ") + what_is(*n));
  std::vector<std::string> out;
  for (std::size_t k = 0; k < a->size(); ++k) {
    const auto* s = a->get(k)->as_string();
    if (s == nullptr) fail(path, "element " + std::to_string(k + 1) + ": expected a string, got " + describe(*a->get(k)));
    out.push_back(s->get());
  }
  return out;
}

std::string ConfigReader::label(std::string_view path, std::string fallback) {
  touch(path);
  const toml::node* n = find(path);
  if (n == nullptr) return fallback;
  const auto* s = n->as_string();
  if (s == nullptr) fail(path, "expected a string (a name shown in tables and figures), got " + describe(*n));
  const std::string& v = s->get();
  constexpr std::size_t kMaxLabel = 40;
  std::size_t chars = 0;  // UTF-8 code points
  for (const char c : v) chars += (static_cast<unsigned char>(c) & 0xc0) != 0x80 ? 1 : 0;
  if (v.empty() || chars > kMaxLabel) {
    fail(path, "expected 1 to " + std::to_string(kMaxLabel) + " characters, got " + std::to_string(chars) + " in " + describe(*n));
  }
  for (const char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) fail(path, "a label is one line of printable text; got a control character in " + describe(*n));
  }
  if (v.front() == ' ' || v.back() == ' ') fail(path, "a label has no leading or trailing spaces, got " + describe(*n));
  return v;
}

std::vector<std::string> ConfigReader::choices(std::string_view path, std::vector<std::string> fallback,
                                               const std::vector<std::string>& allowed, std::size_t min_len) {
  touch(path);
  const toml::node* n = find(path);
  if (n == nullptr) return fallback;
  const auto* a = n->as_array();
  if (a == nullptr) fail(path, std::string("expected an array of strings, got ") + what_is(*n));
  if (a->size() < min_len) fail(path, "expected at least " + std::to_string(min_len) + " of " + one_of(allowed) + ", got []");
  std::vector<std::string> out;
  for (std::size_t k = 0; k < a->size(); ++k) {
    const toml::node& e = *a->get(k);
    const auto* s = e.as_string();
    if (s == nullptr) fail(path, "element " + std::to_string(k + 1) + ": expected a string, got " + describe(e));
    if (std::find(allowed.begin(), allowed.end(), s->get()) == allowed.end()) {
      fail(path, "element " + std::to_string(k + 1) + " must be one of " + one_of(allowed) + ", got \"" + s->get() + "\"");
    }
    if (std::find(out.begin(), out.end(), s->get()) != out.end()) {
      fail(path, "\"" + s->get() + "\" is listed twice");
    }
    out.push_back(s->get());
  }
  return out;
}

std::string nearest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::numeric_limits<std::size_t>::max();
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best_d <= std::max<std::size_t>(2, word.size() / 5) ? best : std::string();
}

std::string ConfigReader::suggest(const std::string& unknown) const {
  std::string best;
  std::size_t best_d = std::numeric_limits<std::size_t>::max();
  for (const auto& k : asked_) {
    const std::size_t d = edit_distance(unknown, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  // Suggest only near misses: a few edits, or the right leaf name in the wrong section.
  const auto leaf = [](const std::string& s) { return s.substr(s.rfind('.') + 1); };
  if (unknown.find('.') == std::string::npos) {  // a section: compare with section names
    std::string best_section;
    std::size_t best_sd = std::numeric_limits<std::size_t>::max();
    for (const auto& k : asked_) {
      const std::string section = k.substr(0, k.find('.'));
      const std::size_t d = edit_distance(unknown, section);
      if (d < best_sd) {
        best_sd = d;
        best_section = section;
      }
    }
    if (best_sd <= 2) return "[" + best_section + "]";
  }
  if (best_d <= std::max<std::size_t>(2, unknown.size() / 5)) return best;
  for (const auto& k : asked_) {
    if (leaf(k) == leaf(unknown)) return k;
  }
  return {};
}

void ConfigReader::check_no_unknown_keys() const {
  struct Unknown {
    std::size_t line;
    std::string path;
  };
  std::vector<Unknown> found;
  auto walk = [&](auto&& self, const toml::table& t, const std::string& prefix) -> void {
    for (const auto& [k, node] : t) {
      const std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      if (asked_.count(path)) continue;
      if (const toml::table* sub = node.as_table()) {
        const std::string dotted = path + ".";
        const auto it = asked_.lower_bound(dotted);
        if (it != asked_.end() && it->compare(0, dotted.size(), dotted) == 0) {
          self(self, *sub, path);
          continue;
        }
      }
      found.push_back({node.source().begin.line, path});
    }
  };
  walk(walk, root_, "");
  for (const auto& [path, text] : removed_) {
    if (asked_.count(path) == 0) {
      const std::string hint = suggest(path);
      throw InputError(text + ": " + path + ": unknown key" +
                       (hint.empty() ? std::string(" (see README, 'Scenario keys')") : "; did you mean " + hint + "?"));
    }
  }
  if (found.empty()) return;
  const auto first = std::min_element(found.begin(), found.end(), [](const Unknown& a, const Unknown& b) {
    return a.line != b.line ? a.line < b.line : a.path < b.path;
  });
  const std::string hint = suggest(first->path);
  const bool is_section = find(first->path) != nullptr && find(first->path)->is_table();
  throw InputError(where(first->path) + ": " + first->path + ": unknown " + (is_section ? "section" : "key") +
                   (hint.empty() ? std::string(" (see README, 'Scenario keys')") : "; did you mean " + hint + "?"));
}

}  // namespace trialsim
