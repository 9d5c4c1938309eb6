#include "sim/present/report.hpp"

#include "sim/io/scenario.hpp"
#include "sim/io/writers.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string_view>

namespace trialsim {
namespace {

using nlohmann::json;

std::string esc(std::string_view s) { return xml_escape(s); }

std::string text(const json& j, std::initializer_list<std::string_view> path, const std::string& fallback) {
  const json* p = &j;
  for (const std::string_view k : path) {
    if (!p->is_object()) return fallback;
    const auto it = p->find(std::string(k));
    if (it == p->end()) return fallback;
    p = &*it;
  }
  if (p->is_string()) return p->get<std::string>();
  if (p->is_number_integer() || p->is_number_unsigned() || p->is_boolean()) return p->dump();
  if (p->is_number_float()) {
    const double v = p->get<double>();
    return std::isfinite(v) ? p->dump() : fallback;
  }
  return fallback;
}

std::string fixed(std::optional<double> v, int decimals) {
  if (!v) return "NA";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, *v);
  std::string s = buf;
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);  // no "-0.00"
  return s;
}

// "value (MCSE)" as the README's tables print it; the MC SE in a quieter style.
std::string with_mcse(std::optional<double> v, std::optional<double> mcse, int decimals) {
  if (!v) return "NA";
  std::string s = fixed(v, decimals);
  if (mcse) s += " <span class=\"se\">(" + fixed(mcse, decimals) + ")</span>";
  return s;
}

std::string estimate_cell(const json& analysis, const char* metric, int decimals) {
  return with_mcse(json_number(analysis, {metric, "estimate"}), json_number(analysis, {metric, "mcse"}), decimals);
}

const char* kStyle = R"(
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1d232b; font: 15px/1.5 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 28px 32px 48px; background: #fff; min-height: 100vh; box-shadow: 0 0 0 1px #e3e6ea; }
h1 { font-size: 26px; line-height: 1.25; margin: 0 0 6px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #0072B2; }
h3 { font-size: 16px; margin: 18px 0 6px; }
figure h3 { margin-top: 0; }
p { margin: 8px 0; }
.meta { color: #4a5562; margin: 0 0 8px; }
.meta span { white-space: nowrap; margin-right: 18px; }
.note { color: #4a5562; font-size: 13.5px; }
.result { background: #eef6f2; border-left: 4px solid #009E73; padding: 10px 14px; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.92em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 14px; margin: 6px 0 4px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e3e6ea; vertical-align: top; }
th { text-align: left; font-weight: 600; background: #f1f3f6; border-bottom: 1px solid #cfd5dc; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n { white-space: nowrap; }
tbody tr:hover { background: #fafbfc; }
td.method { min-width: 210px; }
td.sub { padding-left: 28px; color: #3b4652; }
td .desc { display: block; color: #5b6672; font-size: 12.5px; }
.se { color: #6b7682; font-size: 0.9em; }
table.methods th { vertical-align: bottom; }
table.stack .se { display: block; }
.scenario { display: flex; flex-wrap: wrap; gap: 0 28px; }
.scenario table { font-size: 12.5px; flex: 1 1 420px; }
.scenario td:first-child { color: #3b4652; white-space: nowrap; }
.scenario td:last-child { word-break: break-word; }
figure { margin: 26px 0 0; padding: 16px 18px 12px; border: 1px solid #e3e6ea; border-radius: 6px; }
figure svg, figure img { display: block; width: 100%; height: auto; max-width: 900px; margin: 0 auto; }
figcaption { color: #39434e; font-size: 14px; margin-top: 8px; max-width: 860px; }
footer { margin-top: 36px; color: #6b7682; font-size: 12.5px; }
)";

// Flattens nested objects into dotted keys; arrays and scalars become one line of text.
void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& rows) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), rows);
    return;
  }
  auto scalar = [](const json& v) -> std::string {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return "none";  // an optional key left unset (e.g. no entry cutoff)
    if (v.is_number_float() && !std::isfinite(v.get<double>())) return "NA";
    return v.dump();
  };
  if (j.is_array()) {
    std::string s = "[";
    for (std::size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + (j[i].is_structured() ? j[i].dump() : scalar(j[i]));
    rows.emplace_back(prefix, s + "]");
    return;
  }
  rows.emplace_back(prefix, scalar(j));
}

// Keys of model parts the scenario switches off (treatment.serum_mg = false: the dose and serum
// Mg keys and the consent Mg they start from; population.labs = false: dialysis vintage), which
// the tables leave out: they have no effect on that trial.
bool switched_off(const json& scenario, const std::string& key) {
  const auto flag = [&](const char* section, const char* name) {
    return scenario.contains(section) && scenario[section].is_object() && scenario[section].contains(name) &&
           scenario[section][name].is_boolean() && !scenario[section][name].get<bool>();
  };
  const auto starts = [&](std::string_view p) { return key.rfind(p, 0) == 0; };
  if (flag("treatment", "serum_mg")) {
    for (const char* k : {"treatment.start_dose_mg", "treatment.dose_step_mg", "treatment.min_dose_mg", "treatment.max_dose_mg",
                          "treatment.titration_months", "treatment.target_mg_", "treatment.mg_", "population.mg_"}) {
      if (starts(k)) return true;
    }
  }
  return flag("population", "labs") && starts("population.vintage_");
}

// `varied`: keys whose value differs across a sweep's grid, shown with their values instead.
std::string scenario_tables(const json& scenario, const std::vector<std::pair<std::string, std::string>>& varied = {}) {
  std::vector<std::pair<std::string, std::string>> rows;
  if (scenario.is_object()) flatten(scenario, "", rows);
  rows.erase(std::remove_if(rows.begin(), rows.end(), [&](const auto& r) { return switched_off(scenario, r.first); }), rows.end());
  for (auto& [key, value] : rows) {
    for (const auto& [k, values] : varied) {
      if (k == key) value = "varied: " + values;
    }
  }
  if (rows.empty()) return "<p class=\"note\">No resolved scenario in the input.</p>\n";
  // Two tables side by side (stacked on narrow screens) keep the long key list compact.
  const std::size_t half = (rows.size() + 1) / 2;
  std::string out = "<div class=\"scenario\">\n";
  for (std::size_t part = 0; part < 2; ++part) {
    out += "<table><thead><tr><th>key</th><th>value</th></tr></thead><tbody>\n";
    for (std::size_t i = part * half; i < std::min(rows.size(), (part + 1) * half); ++i) {
      out += "<tr><td><code>" + esc(rows[i].first) + "</code></td><td>" + esc(rows[i].second) + "</td></tr>\n";
    }
    out += "</tbody></table>\n";
  }
  return out + "</div>\n";
}

// Makes an SVG from gnuplot fit to sit inline in a page beside others: no XML prolog, and
// every id (with the references to it) prefixed so that figures cannot capture each other's
// markers and patterns.
std::string inline_svg(const std::string& svg, const std::string& prefix) {
  std::string s = svg;
  if (s.rfind("<?xml", 0) == 0) {
    const auto end = s.find("?>");
    s.erase(0, end == std::string::npos ? 0 : end + 2);
  }
  for (const std::string_view pattern : {"id='", "id=\"", "href='#", "href=\"#", "url(#"}) {
    std::string from(pattern), to = from + prefix;
    // gnuplot writes these only as attributes and url() references; a label containing the
    // same text would at worst read differently, never break the document.
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  }
  const auto start = s.find("<svg");
  return start == std::string::npos ? std::string() : s.substr(start);
}

std::string base64(const std::string& bytes) {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) v = (v << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) out += k <= n ? kDigits[(v >> (18 - 6 * k)) & 0x3f] : '=';
  }
  return out;
}

// An event-handler attribute such as ` onload=` (in lower case text).
bool has_event_attribute(const std::string& lower) {
  for (std::size_t at = lower.find(" on"); at != std::string::npos; at = lower.find(" on", at + 1)) {
    std::size_t k = at + 3;
    while (k < lower.size() && std::islower(static_cast<unsigned char>(lower[k]))) ++k;
    if (k > at + 3 && k < lower.size() && lower[k] == '=') return true;
  }
  return false;
}

// The figure as inline SVG; a figure whose SVG is missing or carries script is shown from its
// PNG instead, as a data: URI, so the page never runs or fetches anything.
std::string figure_image(const Figure& f, const std::string& prefix) {
  std::string lower = f.svg;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool unsafe = lower.find("<script") != std::string::npos || lower.find("<foreignobject") != std::string::npos ||
                      lower.find("javascript:") != std::string::npos || has_event_attribute(lower);
  std::string svg = unsafe ? std::string() : inline_svg(f.svg, prefix);
  if (!svg.empty()) return svg;
  if (f.png.empty()) return "<p class=\"note\">(no image)</p>";
  return "<img alt=\"" + esc(f.title) + "\" src=\"data:image/png;base64," + base64(f.png) + "\">";
}

std::string figures_section(const std::vector<Figure>& figures) {
  if (figures.empty()) return "";
  std::string out = "<section>\n<h2>Figures</h2>\n";
  for (std::size_t i = 0; i < figures.size(); ++i) {
    const Figure& f = figures[i];
    out += "<figure id=\"fig-" + esc(f.name) + "\">\n<h3>Figure " + std::to_string(i + 1) + ". " + esc(f.title) + "</h3>\n";
    out += figure_image(f, "f" + std::to_string(i + 1) + "-") + "\n";
    out += "<figcaption>" + esc(f.caption) + "</figcaption>\n</figure>\n";
  }
  return out + "</section>\n";
}

std::string page(const std::string& title, const std::string& meta, const std::string& content, const std::string& version) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<title>" + esc(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<main>\n"
         "<header>\n<h1>" + esc(title) + "</h1>\n<p class=\"meta\">" + meta + "</p>\n</header>\n" + content +
         "<footer>Made by trialsim " + esc(version) + ". Figures are Monte Carlo estimates; "
         "numbers in parentheses are their Monte Carlo standard errors; NA marks a figure that is undefined.</footer>\n"
         "</main>\n</body>\n</html>\n";
}

// Escaped, with a line-break opportunity after each underscore so long names can wrap in headers.
std::string breakable(const std::string& name) {
  std::string out;
  for (const char c : name) out += c == '_' ? std::string("_<wbr>") : esc(std::string(1, c));
  return out;
}

std::string meta_item(const std::string& label, const std::string& value) {
  return "<span>" + esc(label) + " <strong>" + esc(value) + "</strong></span>\n";  // a break opportunity between items
}


// Whether an optional key at a path is set (not null): absent paths count as set, for JSON
// written before the key existed.
bool present(const json& scenario, std::initializer_list<std::string_view> path) {
  const json* p = &scenario;
  for (const std::string_view k : path) {
    if (!p->is_object() || !p->contains(std::string(k))) return true;
    p = &(*p)[std::string(k)];
  }
  return !p->is_null();
}

constexpr std::array<const char*, 2> kArms = {"treatment", "control"};

std::string analyses_table(const json& summary) {
  const json none = json::object();
  const json& analyses = summary.is_object() && summary.contains("analyses") ? summary["analyses"] : none;
  std::string out =
      "<div class=\"scroll\"><table class=\"stack\">\n<thead><tr><th>method</th><th class=\"n\">power</th><th class=\"n\">bias</th>"
      "<th class=\"n\">emp SE</th><th class=\"n\">model SE</th><th class=\"n\">RMSE</th><th class=\"n\">coverage</th>"
      "<th class=\"n\">not estimable</th></tr></thead>\n<tbody>\n";
  for (const std::string& method : method_names(summary)) {
    const json& a = analyses[method];
    const std::string desc = text(a, {"description"}, "");
    out += "<tr><td class=\"method\"><code>" + esc(method) + "</code>" + (desc.empty() ? "" : "<span class=\"desc\">" + esc(desc) + "</span>") +
           "</td><td class=\"n\">" + estimate_cell(a, "power", 3) + "</td><td class=\"n\">" + estimate_cell(a, "bias", 2) +
           "</td><td class=\"n\">" + estimate_cell(a, "emp_se", 2) + "</td><td class=\"n\">" + estimate_cell(a, "model_se", 2) +
           "</td><td class=\"n\">" + estimate_cell(a, "rmse", 2) + "</td><td class=\"n\">" + estimate_cell(a, "coverage", 3) +
           "</td><td class=\"n\">" + fixed(json_number(a, {"not_estimable", "total"}), 0) + "</td></tr>\n";
  }
  return out + "</tbody></table></div>\n";
}

std::string funnel_row(const std::string& label, const json& v, bool sub = false) {
  return std::string(sub ? "<tr><td class=\"sub\">" : "<tr><td>") + esc(label) + "</td><td class=\"n\">" + with_mcse(json_number(v, {"estimate"}), json_number(v, {"mcse"}), 2) +
         "</td><td class=\"n\">" + fixed(json_number(v, {"sd"}), 2) + "</td><td class=\"n\">" + fixed(json_number(v, {"min"}), 0) + "–" +
         fixed(json_number(v, {"max"}), 0) + "</td></tr>\n";
}

// Rows of model parts the scenario does not have (no prior-medication exclusion, no entry
// cutoff on a side, a withdrawal reason at rate 0) are left out rather than shown as zeros.
std::string funnel_table(const json& summary) {
  const Labels labels = Labels::of_output(summary);
  const json empty = json::object();
  const json& sc = summary.contains("scenario") ? summary["scenario"] : empty;
  const json& f = summary.contains("funnel") ? summary["funnel"] : empty;
  auto at = [&](std::initializer_list<const char*> path) -> const json& {
    const json* p = &f;
    for (const char* k : path) {
      if (!p->is_object() || !p->contains(k)) return empty;
      p = &(*p)[k];
    }
    return *p;
  };
  std::string out =
      "<div class=\"scroll\"><table>\n<thead><tr><th>patients per trial</th><th class=\"n\">mean (MC SE)</th>"
      "<th class=\"n\">SD</th><th class=\"n\">range</th></tr></thead>\n<tbody>\n";
  out += funnel_row("consented", at({"consented"}));
  if (scenario_positive(sc, {"population", "prior_mg_prob"})) out += funnel_row("excluded: prior Mg preparation", at({"excluded_prior_mg"}));
  out += funnel_row("lost before baseline", at({"lost_pre_baseline"}));
  if (present(sc, {"screening", "entry_max"})) {
    out += funnel_row("excluded: entry " + labels.outcome + " ≥ entry_max", at({"excluded_entry_above_max"}));
  }
  if (present(sc, {"screening", "entry_min"})) {
    out += funnel_row("excluded: entry " + labels.outcome + " < entry_min", at({"excluded_entry_below_min"}));
  }
  out += funnel_row("randomized", at({"randomized"}));
  const bool death = scenario_positive(sc, {"dropout", "death_per_year"}), ae = scenario_positive(sc, {"dropout", "ae_per_year"});
  const bool transfer = scenario_positive(sc, {"dropout", "transfer_per_year"}) || scenario_positive(sc, {"dropout", "treatment_transfer_per_year"});
  for (const char* arm : kArms) {
    const std::string a = labels.arm(arm);
    out += funnel_row("allocated to " + a, at({"allocated", arm}));
    out += funnel_row("withdrawn, " + a, at({"withdrawn", arm, "total"}));
    if (death) out += funnel_row("death", at({"withdrawn", arm, "death"}), true);
    if (transfer) out += funnel_row("transfer", at({"withdrawn", arm, "transfer"}), true);
    if (ae) out += funnel_row("adverse event", at({"withdrawn", arm, "adverse_event"}), true);
    out += funnel_row("completed, " + a, at({"completed", arm}));
  }
  return out + "</tbody></table></div>\n";
}

std::string rtm_table(const json& summary) {
  const std::array<std::pair<const char*, const char*>, 8> parts = {{
      {"observed_change", "observed change"},
      {"drift", "= secular drift"},
      {"slope_selection", "+ selection on patients' own slopes"},
      {"treatment_effect", "+ treatment effect"},
      {"regression_to_mean", "+ regression to the mean, realized by the last visit"},
      {"attrition", "+ attrition (completers vs all)"},
      {"regression_to_mean_total", "(baseline selection error, all of it"},
      {"regression_to_mean_carried", "of which still carried at the last visit)"},
  }};
  const Labels labels = Labels::of_output(summary);
  std::string out = "<div class=\"scroll\"><table>\n<thead><tr><th>mean change, " + esc(labels.unit) + "</th>";
  for (const char* arm : kArms) out += "<th class=\"n\">" + esc(labels.arm(arm)) + "</th>";
  out += "</tr></thead>\n<tbody>\n";
  for (const auto& [key, label] : parts) {
    out += "<tr><td>" + esc(label) + "</td>";
    for (const char* arm : kArms) {
      out += "<td class=\"n\">" + with_mcse(json_number(summary, {"rtm", arm, key, "estimate"}), json_number(summary, {"rtm", arm, key, "mcse"}), 2) + "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</tbody></table></div>\n";
}

// A group-sequential design: each look's timing and bounds, then per method its stopping
// probabilities and the trial's expected length and size.
std::string interim_section(const json& summary) {
  const json& in = summary["interim"];
  const json& looks = in["looks"];
  const bool futility = in.contains("futility") && in["futility"].is_string() && in["futility"].get<std::string>() != "none";
  std::string design = text(in, {"efficacy"}, "?") + " alpha spending";
  if (futility) {
    const std::string rule = in["futility"].get<std::string>();
    design += rule == "z"                   ? ", futility bounds on z"
              : rule == "conditional_power" ? ", futility at conditional power (current trend) below " + text(in, {"futility_cp"}, "?")
                                            : ", futility by " + text(in, {"beta_spending"}, "?") + " beta spending (beta " + text(in, {"beta"}, "?") + ")";
    design += in.contains("binding") && in["binding"].is_boolean() && in["binding"].get<bool>() ? ", binding" : ", non-binding";
  }
  std::string out = "<section>\n<h2>Group-sequential design</h2>\n<p class=\"note\">" + esc(std::to_string(looks.size())) + " looks, " +
                    esc(design) + ". The analyses' power, bias and coverage above are the design's: each trial's estimate is the one at "
                    "the look that ended it (the naive estimate, biased after an early stop). Bounds on the z scale are recomputed in "
                    "every trial at the information it has; means over trials, Monte Carlo SE in parentheses.</p>\n";
  out += "<div class=\"scroll\"><table>\n<thead><tr><th>look</th><th class=\"n\">planned fraction</th><th class=\"n\">held</th>"
         "<th class=\"n\">information</th><th class=\"n\">calendar month</th><th class=\"n\">randomized</th>"
         "<th class=\"n\">efficacy bound</th>" + std::string(futility ? "<th class=\"n\">futility bound</th>" : "") + "</tr></thead>\n<tbody>\n";
  for (const json& l : looks) {
    auto cell = [&](const char* key, int d) { return with_mcse(json_number(l, {key, "estimate"}), json_number(l, {key, "mcse"}), d); };
    out += "<tr><td>" + text(l, {"look"}, "?") + "</td><td class=\"n\">" + fixed(json_number(l, {"planned_fraction"}), 3) +
           "</td><td class=\"n\">" + fixed(json_number(l, {"held", "estimate"}), 3) + "</td><td class=\"n\">" + cell("fraction", 3) +
           "</td><td class=\"n\">" + cell("calendar_month", 1) + "</td><td class=\"n\">" + cell("randomized", 1) +
           "</td><td class=\"n\">" + cell("efficacy_bound", 3) + "</td>" +
           (futility ? "<td class=\"n\">" + (l["futility_bound"].is_object() ? cell("futility_bound", 3) : std::string("–")) + "</td>" : "") + "</tr>\n";
  }
  out += "</tbody></table></div>\n";
  out += "<div class=\"scroll\"><table>\n<thead><tr><th>method</th><th>stops for</th>";
  for (const json& l : looks) out += "<th class=\"n\">look " + text(l, {"look"}, "?") + "</th>";
  out += "<th class=\"n\">power</th><th class=\"n\">randomized at end</th><th class=\"n\">month at end</th></tr></thead>\n<tbody>\n";
  for (const std::string& m : method_names(summary)) {
    if (!in["methods"].contains(m)) continue;
    const json& pm = in["methods"][m];
    for (int kind = 0; kind < (futility ? 2 : 1); ++kind) {
      const char* key = kind == 0 ? "stop_efficacy" : "stop_futility";
      out += "<tr><td class=\"method\">" + (kind == 0 ? "<code>" + esc(m) + "</code>" : std::string()) + "</td><td>" +
             (kind == 0 ? "efficacy" : "futility") + "</td>";
      for (std::size_t k = 0; k < looks.size(); ++k) {
        const bool none = kind == 1 && k + 1 == looks.size();
        out += "<td class=\"n\">" + (none ? std::string("–") : with_mcse(json_number(looks[k], {key, m, "estimate"}), json_number(looks[k], {key, m, "mcse"}), 3)) + "</td>";
      }
      if (kind == 0) {
        out += "<td class=\"n\">" + with_mcse(json_number(pm, {"power", "estimate"}), json_number(pm, {"power", "mcse"}), 3) + "</td><td class=\"n\">" +
               with_mcse(json_number(pm, {"randomized_at_end", "estimate"}), json_number(pm, {"randomized_at_end", "mcse"}), 1) + "</td><td class=\"n\">" +
               with_mcse(json_number(pm, {"calendar_month_at_end", "estimate"}), json_number(pm, {"calendar_month_at_end", "mcse"}), 1) + "</td>";
      } else {
        out += "<td></td><td></td><td></td>";
      }
      out += "</tr>\n";
    }
  }
  return out + "</tbody></table></div>\n</section>\n";
}

}  // namespace

std::string run_report_html(const nlohmann::json& summary, const std::vector<Figure>& figures) {
  const std::string version = text(summary, {"trialsim_version"}, "(unknown version)");
  const std::string source = text(summary, {"scenario", "source"}, "");
  const std::string title = "trialsim run" + (source.empty() ? std::string() : ": " + source);
  const Labels labels = Labels::of_output(summary);
  const std::string meta = meta_item("trialsim", version) + meta_item("seed", text(summary, {"seed"}, "NA")) +
                           meta_item("simulated trials", text(summary, {"replicates"}, "NA")) +
                           meta_item("true effect (" + labels.unit + ")", fixed(json_number(summary, {"true_effect"}), 2)) +
                           meta_item("alpha", text(summary, {"alpha"}, "NA")) +
                           meta_item("test", text(summary, {"hypothesis", "text"}, "two-sided, H0: effect = 0"));
  std::string content = "<section>\n<h2>Scenario</h2>\n" + scenario_tables(summary.contains("scenario") ? summary["scenario"] : json()) + "</section>\n";
  content += "<section>\n<h2>Analyses</h2>\n<p class=\"note\">Estimate = " + esc(labels.treatment) + " minus " +
             esc(labels.control) + " at the last visit. Power counts "
             "trials where a method could not estimate as not rejecting; the other measures are over the trials where it could.</p>\n" +
             analyses_table(summary) + "</section>\n";
  if (summary.contains("interim") && summary["interim"].is_object() && summary["interim"].contains("looks")) content += interim_section(summary);
  content += "<section>\n<h2>Patient flow</h2>\n" + funnel_table(summary) + "</section>\n";
  content += "<section>\n<h2>Why the observed " + esc(labels.outcome) + " changed</h2>\n<p class=\"note\">Completers at the last visit minus all "
             "randomized at baseline, per arm.</p>\n" + rtm_table(summary) + "</section>\n";
  content += figures_section(figures);
  return page(title, meta, content, version);
}

std::string sweep_report_html(const nlohmann::json& sweep, const std::vector<Figure>& figures) {
  const std::string version = text(sweep, {"trialsim_version"}, "(unknown version)");
  const std::string source = text(sweep, {"scenario"}, "");
  const Labels sweep_labels = Labels::of_output(sweep);
  const json empty = json::array();
  const json& axes = sweep.contains("axes") && sweep["axes"].is_array() ? sweep["axes"] : empty;
  const json& points = sweep.contains("points") && sweep["points"].is_array() ? sweep["points"] : empty;
  const std::string title = "trialsim sweep" + (source.empty() ? std::string() : ": " + source);
  const bool crn = !sweep.contains("common_random_numbers") || !sweep["common_random_numbers"].is_boolean() ||
                   sweep["common_random_numbers"].get<bool>();
  const std::string meta = meta_item("trialsim", version) + meta_item("seed", text(sweep, {"seed"}, "NA")) +
                           meta_item("trials per point", text(sweep, {"replicates"}, "NA")) +
                           meta_item("grid points", std::to_string(points.size())) +
                           meta_item("common random numbers", crn ? "yes" : "no");

  std::vector<std::string> keys;
  std::vector<std::pair<std::string, std::string>> varied;
  std::string content = "<section>\n<h2>Axes</h2>\n<ul>\n";
  for (const json& a : axes) {
    const std::string key = text(a, {"key"}, "?");
    keys.push_back(key);
    std::string values;
    if (a.contains("values") && a["values"].is_array()) {
      for (const json& v : a["values"]) values += (values.empty() ? "" : ", ") + (v.is_string() ? v.get<std::string>() : v.dump());
    }
    content += "<li><code>" + esc(key) + "</code>: " + esc(values) + "</li>\n";
    varied.emplace_back(key, values);
  }
  content += "</ul>\n</section>\n";

  const json first = points.empty() ? json() : (points[0].contains("summary") ? points[0]["summary"] : json());
  content += "<section>\n<h2>Scenario</h2>\n<p class=\"note\">As resolved at every grid point, but for the axes.</p>\n" +
             scenario_tables(first.is_object() && first.contains("scenario") ? first["scenario"] : json(), varied) +
             "</section>\n";

  // Methods in the scenario's order, then in order of first appearance over the points.
  std::vector<std::string> methods;
  for (const json& p : points) {
    if (!p.contains("summary")) continue;
    for (const std::string& m : method_names(p["summary"])) {
      if (std::find(methods.begin(), methods.end(), m) == methods.end()) methods.push_back(m);
    }
  }
  // Three tables rather than one wide one, so that every column fits on a page: the design's
  // figures, then power and bias with one column per method.
  auto short_key = [](const std::string& k) { return k.substr(k.rfind('.') == std::string::npos ? 0 : k.rfind('.') + 1); };
  std::string axis_head;
  for (const std::string& k : keys) axis_head += "<th title=\"" + esc(k) + "\"><code>" + breakable(short_key(k)) + "</code></th>";
  auto axis_cells = [&](const json& p) {
    std::string cells;
    for (const std::string& k : keys) cells += "<td>" + esc(text(p, {"axes", k}, "NA")) + "</td>";
    return cells;
  };
  std::string design;
  for (const json& p : points) {
    const json s = p.contains("summary") ? p["summary"] : json::object();
    const auto r = json_number(s, {"funnel", "randomized", "estimate"});
    const auto r_se = json_number(s, {"funnel", "randomized", "mcse"});
    const auto [burden, burden_se] = consented_per_randomized(s);
    design += "<tr>" + axis_cells(p) + "<td class=\"n\">" + with_mcse(r, r_se, 1) + "</td><td class=\"n\">" +
              with_mcse(burden, burden_se, 3) + "</td><td class=\"n\">" +
              with_mcse(json_number(s, {"rtm", "control", "regression_to_mean", "estimate"}), json_number(s, {"rtm", "control", "regression_to_mean", "mcse"}), 2) +
              "</td></tr>\n";
  }
  auto method_table = [&](const char* metric, int decimals) {
    std::string head = "<tr>" + axis_head;
    for (const std::string& m : methods) head += "<th class=\"n\"><code>" + breakable(m) + "</code></th>";
    std::string rows;
    for (const json& p : points) {
      rows += "<tr>" + axis_cells(p);
      for (const std::string& m : methods) {
        const json* a = nullptr;
        if (p.contains("summary") && p["summary"].contains("analyses") && p["summary"]["analyses"].contains(m)) a = &p["summary"]["analyses"][m];
        rows += "<td class=\"n\">" + (a ? estimate_cell(*a, metric, decimals) : std::string("NA")) + "</td>";
      }
      rows += "</tr>\n";
    }
    // Many methods: each MC SE goes under its value so the columns stay narrow.
    return std::string("<div class=\"scroll\"><table class=\"methods") + (methods.size() > 4 ? " stack" : "") + "\">\n<thead>" + head + "</tr></thead>\n<tbody>\n" + rows + "</tbody></table></div>\n";
  };
  content += "<section>\n<h2>Grid points</h2>\n<p class=\"note\">Means per trial; Monte Carlo SE in parentheses.</p>\n"
             "<div class=\"scroll\"><table>\n<thead><tr>" + axis_head +
             "<th class=\"n\">randomized</th><th class=\"n\">consented per randomized</th><th class=\"n\">regression to the mean, " +
             esc(sweep_labels.control) + " (" + esc(sweep_labels.unit) + ")</th></tr></thead>\n<tbody>\n" + design + "</tbody></table></div>\n" +
             "<h3>Power</h3>\n" + method_table("power", 3) + "<h3>Bias (" + esc(sweep_labels.unit) + ")</h3>\n" + method_table("bias", 2) +
             "</section>\n";
  content += figures_section(figures);
  return page(title, meta, content, version);
}

std::string calibrate_report_html(const nlohmann::json& calibration, const std::vector<Figure>& figures) {
  const json& c = calibration;
  const Labels labels = Labels::of_output(c);
  const std::string version = text(c, {"trialsim_version"}, "(unknown version)");
  const std::string title = "trialsim calibration: " + text(c, {"scenario"}, "scenario") + " to " + text(c, {"observed"}, "observed");
  const std::string meta = meta_item("trialsim", version) + meta_item("seed", text(c, {"seed"}, "NA")) +
                           meta_item("trials per evaluation", text(c, {"replicates_per_evaluation"}, "NA")) +
                           meta_item("evaluations", text(c, {"evaluations"}, "NA")) +
                           meta_item("objective", fixed(json_number(c, {"objective"}), 3));
  auto number = [](const json& j) { return j.is_number() ? std::optional<double>(j.get<double>()) : std::nullopt; };
  std::string content = "<section>\n<h2>Estimates</h2>\n<p class=\"note\">" + esc(text(c, {"method"}, "")) +
                        ". Intervals are 95% Wald intervals cut to the search range.</p>\n";
  if (c.contains("converged") && c["converged"].is_boolean() && !c["converged"].get<bool>()) {
    content += "<p class=\"result\">Nelder-Mead stopped at the evaluation limit before converging.</p>\n";
  }
  content += "<div class=\"scroll\"><table>\n<thead><tr><th>key</th><th class=\"n\">range</th><th class=\"n\">start</th>"
             "<th class=\"n\">estimate</th><th class=\"n\">SE</th><th class=\"n\">95% interval</th><th>identification</th></tr>"
             "</thead>\n<tbody>\n";
  if (c.contains("parameters") && c["parameters"].is_array()) {
    for (const json& p : c["parameters"]) {
      std::string flags;
      if (p.contains("flags") && p["flags"].is_array()) {
        for (const json& f : p["flags"]) flags += (flags.empty() ? "" : "; ") + esc(f.is_string() ? f.get<std::string>() : "");
      }
      const json& ci = p.contains("ci95") ? p["ci95"] : json();
      const std::string interval = ci.is_array() && ci.size() == 2 && ci[0].is_number() && ci[1].is_number()
                                       ? fixed(number(ci[0]), 3) + " to " + fixed(number(ci[1]), 3)
                                       : "NA";
      content += "<tr><td><code>" + esc(text(p, {"key"}, "")) + "</code></td><td class=\"n\">" + fixed(json_number(p, {"lo"}), 3) +
                 " to " + fixed(json_number(p, {"hi"}), 3) + "</td><td class=\"n\">" + fixed(json_number(p, {"start"}), 3) +
                 "</td><td class=\"n\"><strong>" + fixed(json_number(p, {"estimate"}), 3) + "</strong></td><td class=\"n\">" +
                 fixed(json_number(p, {"se"}), 3) + "</td><td class=\"n\">" + esc(interval) + "</td><td>" +
                 (flags.empty() ? "identified" : flags) + "</td></tr>\n";
    }
  }
  content += "</tbody></table></div>\n</section>\n";
  if (c.contains("change_parts") && c["change_parts"].is_array() && !c["change_parts"].empty()) {
    std::string rows;
    std::vector<std::string> names;
    for (const json& p : c["change_parts"]) {
      const std::string n = text(p, {"part"}, "");
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
    auto cell = [&](const std::string& arm, const std::string& part) {
      for (const json& p : c["change_parts"]) {
        if (text(p, {"arm"}, "") == arm && text(p, {"part"}, "") == part) {
          return with_mcse(json_number(p, {"estimate"}), json_number(p, {"se_from_parameters"}), 2);
        }
      }
      return std::string("NA");
    };
    for (const std::string& n : names) {
      rows += "<tr><td>" + esc(n) + "</td><td class=\"n\">" + cell("treatment", n) + "</td><td class=\"n\">" + cell("control", n) +
              "</td></tr>\n";
    }
    std::string accounts;
    if (c.contains("change_accounts") && c["change_accounts"].is_array()) {
      for (const json& a : c["change_accounts"]) {
        accounts += "<li>" + esc(labels.arm(text(a, {"arm"}, ""))) + ": observed change " + fixed(json_number(a, {"observed_change"}), 2) +
                    " = expected " + with_mcse(json_number(a, {"expected_change"}), json_number(a, {"expected_change_se_from_parameters"}), 2) +
                    " + chance " + fixed(json_number(a, {"chance"}), 2) + " (one trial's SD " + fixed(json_number(a, {"one_trial_sd"}), 2) +
                    "; z = " + fixed(json_number(a, {"chance_z"}), 2) +
                    " against that SD and the expectation's SE together)</li>\n";
      }
    }
    content += "<section>\n<h2>Where each arm's change came from</h2>\n<p class=\"note\">Means over simulated trials at the "
               "estimate, " + esc(labels.unit) + "; in parentheses the SE from the parameters' uncertainty (delta method).</p>\n"
               "<div class=\"scroll\"><table>\n<thead><tr><th>part</th><th class=\"n\">" + esc(labels.treatment) +
               "</th><th class=\"n\">" + esc(labels.control) + "</th></tr>"
               "</thead>\n<tbody>\n" + rows + "</tbody></table></div>\n<ul>\n" + accounts + "</ul>\n</section>\n";
  }
  std::string fit;
  if (c.contains("fit") && c["fit"].is_array()) {
    for (const json& f : c["fit"]) {
      const json& r = f.contains("simulated_range95") ? f["simulated_range95"] : json();
      const std::string range = r.is_array() && r.size() == 2 ? fixed(number(r[0]), 3) + " to " + fixed(number(r[1]), 3) : "NA";
      const bool outside = f.contains("outside_range") && f["outside_range"].is_boolean() && f["outside_range"].get<bool>();
      const bool unused = f.contains("used") && f["used"].is_boolean() && !f["used"].get<bool>();
      fit += std::string("<tr") + (outside ? " class=\"flag\"" : "") + "><td><code>" + esc(text(f, {"statistic"}, "")) + "</code><br>" +
             esc(text(f, {"description"}, "")) + "</td><td class=\"n\">" + fixed(json_number(f, {"observed"}), 3) + "</td><td class=\"n\">" +
             fixed(json_number(f, {"se"}), 3) + " (" + esc(text(f, {"se_source"}, "")) + ")</td><td class=\"n\">" +
             fixed(json_number(f, {"simulated_mean"}), 3) + "</td><td class=\"n\">" + esc(range) + "</td><td>" +
             (unused ? "not used (no variation in the simulation)" : outside ? "outside" : "") + "</td></tr>\n";
    }
  }
  content += "<section>\n<h2>Goodness of fit at the estimate</h2>\n<p class=\"note\">The simulated 95% range is one trial's "
             "(2.5th to 97.5th percentile over the simulated trials); an observation outside it is marked.</p>\n"
             "<div class=\"scroll\"><table>\n<thead><tr><th>statistic</th><th class=\"n\">observed</th><th class=\"n\">SE</th>"
             "<th class=\"n\">simulated mean</th><th class=\"n\">simulated 95% range</th><th></th></tr></thead>\n<tbody>\n" + fit +
             "</tbody></table></div>\n</section>\n";
  content += figures_section(figures);
  return page(title, meta, content, version);
}

std::string samplesize_report_html(const nlohmann::json& samplesize, const std::vector<Figure>& figures) {
  const json& ss = samplesize;
  const Labels labels = Labels::of_output(ss);
  const std::string version = text(ss, {"trialsim_version"}, "(unknown version)");
  const std::string method = text(ss, {"method"}, "NA");
  const std::string key = text(ss, {"key"}, "n");
  const std::string title = "trialsim sample size: " + method + ", " + key;
  std::vector<std::string> reps;  // trials per point, each distinct value once
  if (ss.contains("points") && ss["points"].is_array()) {
    for (const json& p : ss["points"]) {
      const std::string r = text(p, {"replicates"}, "NA");
      if (std::find(reps.begin(), reps.end(), r) == reps.end()) reps.push_back(r);
    }
  }
  std::string rep_text;
  for (const std::string& r : reps) rep_text += (rep_text.empty() ? "" : ", ") + r;
  const std::string meta = meta_item("trialsim", version) + meta_item("seed", text(ss, {"seed"}, "NA")) +
                           meta_item("trials per point", rep_text.empty() ? "NA" : rep_text) + meta_item("method", method) +
                           meta_item("target power", fixed(json_number(ss, {"target_power"}), 2));

  std::string result;
  const auto n = json_number(ss, {"result", "n"});
  if (n) {
    std::string interval;
    if (ss.contains("result") && ss["result"].contains("interval") && ss["result"]["interval"].is_array() &&
        ss["result"]["interval"].size() == 2) {
      const json& iv = ss["result"]["interval"];
      interval = " (interval " + fixed(iv[0].is_number() ? std::optional<double>(iv[0].get<double>()) : std::nullopt, 0) + "–" +
                 fixed(iv[1].is_number() ? std::optional<double>(iv[1].get<double>()) : std::nullopt, 0) + ")";
    }
    result = "With <code>" + esc(method) + "</code>, <code>" + esc(key) + "</code> = <strong>" + fixed(n, 0) + "</strong>" + esc(interval) +
             " gives power " + with_mcse(json_number(ss, {"result", "power"}), json_number(ss, {"result", "power_mcse"}), 3) + " against the target " +
             fixed(json_number(ss, {"target_power"}), 2) + ": on average " + fixed(json_number(ss, {"result", "randomized"}), 1) + " patients randomized, " +
             fixed(json_number(ss, {"result", "completed", "treatment"}), 1) + " " + esc(labels.treatment) + " and " +
             fixed(json_number(ss, {"result", "completed", "control"}), 1) + " " + esc(labels.control) + " completers per trial.";
  } else {
    result = "No value of <code>" + esc(key) + "</code> reached the target power " + fixed(json_number(ss, {"target_power"}), 2) + ".";
  }
  std::string content = "<section>\n<h2>Result</h2>\n<p class=\"result\">" + result + "</p>\n";
  if (ss.contains("fit") && ss["fit"].is_object()) {
    content += "<p class=\"note\">Fit: " + esc(text(ss, {"fit", "model"}, "NA")) + ", a = " + fixed(json_number(ss, {"fit", "a"}), 4) +
               ", b = " + fixed(json_number(ss, {"fit", "b"}), 4) + ", from " + esc(text(ss, {"fit", "points_used"}, "NA")) +
               " points.</p>\n";
  }
  content += "</section>\n";
  content += "<section>\n<h2>Scenario</h2>\n" + scenario_tables(ss.contains("scenario") ? ss["scenario"] : json()) + "</section>\n";
  std::string rows;
  if (ss.contains("points") && ss["points"].is_array()) {
    for (const json& p : ss["points"]) {
      rows += "<tr><td class=\"n\">" + fixed(json_number(p, {"n"}), 0) + "</td><td class=\"n\">" + fixed(json_number(p, {"replicates"}), 0) +
              "</td><td class=\"n\">" + with_mcse(json_number(p, {"power"}), json_number(p, {"power_mcse"}), 3) + "</td><td class=\"n\">" +
              fixed(json_number(p, {"randomized"}), 1) + "</td><td class=\"n\">" + fixed(json_number(p, {"completed", "treatment"}), 1) +
              "</td><td class=\"n\">" + fixed(json_number(p, {"completed", "control"}), 1) + "</td></tr>\n";
    }
  }
  content += "<section>\n<h2>Simulated points</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th class=\"n\">" + esc(key) +
             "</th><th class=\"n\">trials</th><th class=\"n\">power (MC SE)</th><th class=\"n\">randomized</th>"
             "<th class=\"n\">completed, " + esc(labels.treatment) + "</th><th class=\"n\">completed, " + esc(labels.control) +
             "</th></tr></thead>\n<tbody>\n" + rows +
             "</tbody></table></div>\n</section>\n";
  content += figures_section(figures);
  return page(title, meta, content, version);
}

void write_report(const std::string& html, const std::string& path) {
  AtomicFile out(path);
  out.write(html);
  out.commit();
}

}  // namespace trialsim
