#include "sim/io/writers.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace trialsim {

namespace {
std::atomic<bool> g_outputs_enabled{true};
}  // namespace

void set_outputs_enabled(bool enabled) { g_outputs_enabled.store(enabled); }
bool outputs_enabled() { return g_outputs_enabled.load(); }

namespace {
std::atomic<bool> g_stdout_taken{false};
}  // namespace

bool stdout_is_output() { return g_stdout_taken.load(); }

namespace {
nlohmann::json& provenance_fields() {
  static nlohmann::json fields;  // set by the command line's thread before any output is opened
  return fields;
}
}  // namespace

void set_provenance(nlohmann::json fields) { provenance_fields() = std::move(fields); }
void add_provenance(const std::string& key, nlohmann::json value) { provenance_fields()[key] = std::move(value); }
const nlohmann::json& provenance() { return provenance_fields(); }
std::string provenance_path(const std::string& output) { return output + ".provenance.json"; }

AtomicFile::AtomicFile(std::string path, std::string kind) : AtomicFile(std::move(path)) {
  kind_ = std::move(kind);
  // Opened now, so that an unwritable sidecar fails before anything is simulated.
  if (!tmp_.empty() && provenance().is_object()) sidecar_ = std::make_unique<AtomicFile>(provenance_path(path_));
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw InputError("an output file name is empty");
  if (!outputs_enabled()) {
    // Another process of a distributed run writes this file; this one discards its copy.
    file_ = std::fopen("/dev/null", "wb");
    if (file_ == nullptr) throw std::runtime_error("/dev/null: cannot open: " + std::string(std::strerror(errno)));
    return;
  }
  if (path_ == "-") {  // standard output
    const int fd = ::dup(STDOUT_FILENO);
    file_ = fd >= 0 ? ::fdopen(fd, "wb") : nullptr;
    if (file_ == nullptr) throw InputError("-: cannot write to standard output: " + std::string(std::strerror(errno)));
    g_stdout_taken.store(true);
    return;
  }
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw InputError(path_ + ": is a directory; give a file name for this output");
    if (!S_ISREG(st.st_mode)) {
      // A device or a pipe (/dev/stdout, /dev/null, a FIFO): written into, never replaced.
      file_ = std::fopen(path_.c_str(), "wb");
      if (file_ == nullptr) throw InputError(path_ + ": cannot write output file: " + std::strerror(errno));
      struct stat out {};
      if (::fstat(STDOUT_FILENO, &out) == 0 && out.st_dev == st.st_dev && out.st_ino == st.st_ino) g_stdout_taken.store(true);
      return;
    }
  } else {
    // A missing parent directory is created, as for --plots.
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    std::error_code ec;
    if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
      std::filesystem::create_directories(parent, ec);
      if (ec) throw InputError(path_ + ": cannot create its directory " + parent.string() + ": " + ec.message());
    }
  }
  std::string name = path_ + ".tmp-XXXXXX";
  const int fd = ::mkstemp(name.data());
  if (fd < 0) throw InputError(path_ + ": cannot write output file: " + std::strerror(errno));
  tmp_ = name;
  ::fchmod(fd, 0644);  // mkstemp creates 0600; outputs are ordinary readable files
  file_ = ::fdopen(fd, "wb");
  if (file_ == nullptr) {
    ::close(fd);
    std::remove(tmp_.c_str());
    throw InputError(path_ + ": cannot write output file: " + std::strerror(errno));
  }
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_ && !tmp_.empty()) std::remove(tmp_.c_str());
}

void AtomicFile::write(const std::string& s) {
  if (std::fwrite(s.data(), 1, s.size(), file_) != s.size()) {
    throw OutputError(path_ + ": write failed: " + std::strerror(errno));
  }
}

void AtomicFile::commit() {
  if (sidecar_) {
    nlohmann::json p = provenance();
    p["output"] = path_;
    p["kind"] = kind_;
    sidecar_->write(p.dump(2) + "\n");
    sidecar_->commit();
  }
  const bool ok = std::fflush(file_) == 0 && std::ferror(file_) == 0;
  const int close_rc = std::fclose(file_);
  file_ = nullptr;
  if (!ok || close_rc != 0) throw OutputError(path_ + ": write failed: " + std::strerror(errno));
  if (tmp_.empty()) {  // discarded (see set_outputs_enabled), or written in place (stdout, a device)
    committed_ = true;
    return;
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    throw OutputError(path_ + ": cannot move output into place: " + std::strerror(errno));
  }
  committed_ = true;
}

namespace {

std::string cell(double v) {
  if (!std::isfinite(v)) return "";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}
std::string cell(const Value& v) { return v.defined ? cell(v.v) : ""; }

const char* status_name(NotEstimable s) {
  switch (s) {
    case NotEstimable::none: return "ok";
    case NotEstimable::too_few_patients: return "too_few_patients";
    case NotEstimable::no_variance: return "no_variance";
    case NotEstimable::rank_deficient: return "rank_deficient";
    case NotEstimable::not_converged: return "not_converged";
  }
  return "?";
}

const char* reason_name(DropoutReason r) {
  switch (r) {
    case DropoutReason::none: return "";
    case DropoutReason::death: return "death";
    case DropoutReason::transfer: return "transfer";
    case DropoutReason::adverse_event: return "adverse_event";
  }
  return "?";
}

const char* patient_status(Status s) {
  switch (s) {
    case Status::prior_mg: return "excluded_prior_mg";
    case Status::lost_pre_baseline: return "lost_pre_baseline";
    case Status::entry_above_max: return "excluded_entry_above_max";
    case Status::entry_below_min: return "excluded_entry_below_min";
    case Status::randomized: return "randomized";
  }
  return "?";
}

std::string month_suffix(double m) { return "_m" + month_label(m); }

}  // namespace

TrialsCsv::TrialsCsv(const Scenario& s, const std::string& path) : scenario_(s), file_(path, "trials CSV") { file_.write(header(s)); }

// Columns of model parts the scenario does not have (Scenario::has_*, withdrawal_possible,
// treatment.serum_mg) are left out.
std::string TrialsCsv::header(const Scenario& s) {
  std::string h = std::string("replicate,consented") + (s.has_prior_exclusion() ? ",excluded_prior_mg" : "") +
                  ",lost_pre_baseline" + (s.has_entry_max() ? ",excluded_entry_above_max" : "") +
                  (s.has_entry_min() ? ",excluded_entry_below_min" : "") + ",randomized";
  for (const char* arm : {"treatment", "control"}) {
    for (const char* col : {"allocated", "withdrawn", "completed", "baseline_mean", "baseline_sd", "final_mean",
                            "final_sd", "rtm_observed_change", "rtm_drift", "rtm_slope_selection",
                            "rtm_treatment_effect", "rtm_regression_to_mean", "rtm_attrition",
                            "rtm_regression_to_mean_total", "rtm_regression_to_mean_carried"}) {
      h += std::string(",") + col + "_" + arm;
    }
    for (std::size_t k = 1; k < s.trial.months.size(); ++k) {
      const std::string sfx = month_suffix(s.trial.months[k]) + "_" + arm;
      for (std::size_t reason = 1; reason < kDropoutReasons; ++reason) {
        if (s.withdrawal_possible(reason)) h += std::string(",withdrawn_") + reason_name(static_cast<DropoutReason>(reason)) + "_before" + sfx;
      }
      if (s.treatment.serum_mg) h += ",serum_mg_mean" + sfx + ",serum_mg_sd" + sfx + ",serum_mg_below_target" + sfx;
    }
  }
  for (const Method m : s.analysis.methods) {
    const std::string n(method_name(m));
    for (const char* col : {"status", "estimate", "se", "ci_low", "ci_high", "p", "df"}) h += "," + n + "_" + col;
  }
  // A group-sequential design: each look's timing and bounds, and per method where its test
  // ended the trial (the estimate columns above are at that look) and its z at each look.
  if (s.interim.enabled()) {
    for (std::size_t k = 0; k < s.interim.looks(); ++k) {
      const std::string l = "look" + std::to_string(k + 1) + "_";
      for (const char* col : {"held", "month", "fraction", "randomized", "consented", "efficacy_bound", "futility_bound"}) h += "," + l + col;
    }
    for (const Method m : s.analysis.methods) {
      const std::string n(method_name(m));
      h += "," + n + "_stop_look," + n + "_stop_reason," + n + "_rejected";
      for (std::size_t k = 0; k < s.interim.looks(); ++k) h += "," + n + "_z_look" + std::to_string(k + 1);
    }
  }
  return h + "\n";
}

void TrialsCsv::add(const ReplicateResult& r) { file_.write(row(scenario_, r)); }

std::string TrialsCsv::row(const Scenario& s, const ReplicateResult& r) {
  std::string row = std::to_string(r.replicate) + "," + std::to_string(r.consented) +
                    (s.has_prior_exclusion() ? "," + std::to_string(r.prior_mg) : "") + "," + std::to_string(r.lost_pre_baseline) +
                    (s.has_entry_max() ? "," + std::to_string(r.entry_above_max) : "") +
                    (s.has_entry_min() ? "," + std::to_string(r.entry_below_min) : "") + "," + std::to_string(r.randomized);
  for (const Arm arm : {Arm::treatment, Arm::control}) {
    const ArmResult& a = r.arms[arm_index(arm)];
    row += "," + std::to_string(a.randomized) + "," + std::to_string(a.withdrawn[0]) + "," + std::to_string(a.completed);
    for (const Value* v : {&a.baseline_mean, &a.baseline_sd, &a.final_mean, &a.final_sd, &a.rtm.observed_change,
                           &a.rtm.drift, &a.rtm.slope_selection, &a.rtm.treatment_effect, &a.rtm.regression_to_mean,
                           &a.rtm.attrition, &a.rtm.regression_to_mean_total, &a.rtm.regression_to_mean_carried}) {
      row += "," + cell(*v);
    }
    for (std::size_t k = 1; k < s.trial.months.size(); ++k) {
      for (std::size_t reason = 1; reason < kDropoutReasons; ++reason) {
        if (s.withdrawal_possible(reason)) row += "," + std::to_string(a.withdrawn_before_visit[k][reason]);
      }
      if (s.treatment.serum_mg) row += "," + cell(a.mg_mean[k]) + "," + cell(a.mg_sd[k]) + "," + cell(a.mg_below_target[k]);
    }
  }
  for (const Method m : s.analysis.methods) {
    const Estimate& e = r.estimates[static_cast<std::size_t>(m)];
    row += std::string(",") + status_name(e.status);
    if (e.estimable()) {
      for (double v : {e.estimate, e.se, e.ci_low, e.ci_high, e.p(s.trial.hypothesis()), e.df}) row += "," + cell(v);
    } else {
      row += ",,,,,,";
    }
  }
  if (s.interim.enabled()) {
    const InterimResult& in = r.interim;
    const auto finite = [](double v) { return std::isfinite(v) ? cell(v) : std::string(); };
    for (std::size_t k = 0; k < s.interim.looks(); ++k) {
      row += std::string(",") + (in.held[k] ? "1" : "0");
      for (const double v : {in.month[k], in.fraction[k], in.randomized[k], in.consented[k], in.upper[k], in.lower[k]}) {
        row += "," + (in.held[k] ? finite(v) : std::string());
      }
    }
    for (const Method m : s.analysis.methods) {
      const auto i = static_cast<std::size_t>(m);
      const char* reason = in.reason[i] == InterimStop::efficacy ? "efficacy" : in.reason[i] == InterimStop::futility ? "futility" : "none";
      row += "," + std::to_string(in.stop_look[i] + 1) + "," + reason + "," + (in.reason[i] == InterimStop::efficacy ? "1" : "0");
      for (std::size_t k = 0; k < s.interim.looks(); ++k) row += "," + finite(in.z[i][k]);
    }
  }
  return row + "\n";
}

std::string PatientsLong::header(const Scenario& s) {
  return std::string("replicate,id,arm,stratum,age,male,diabetes,visit,month,true,observed") +
         (s.treatment.serum_mg ? ",serum_mg,dose_mg" : "") + ",adherent,dropout_month,dropout_reason\n";
}

std::string PatientsLong::rows(const Scenario& s, std::uint64_t replicate, const TrialData& trial) {
  const auto na = [](double v) { return std::isfinite(v) ? cell(v) : std::string("NA"); };
  const auto& months = s.trial.months;
  const bool mg = s.treatment.serum_mg;
  std::string out;
  std::size_t r = 0;  // rows are in consent order
  for (std::size_t i = 0; i < trial.consented; ++i) {
    if (trial.status[i] != Status::randomized) continue;
    const Arm arm = trial.arm[r];
    const bool treated = arm == Arm::treatment;
    const bool diabetes = trial.diabetes[i] != 0;
    const std::string lead = std::to_string(replicate) + "," + std::to_string(i + 1) + "," + (treated ? "treatment" : "control") +
                             "," + (diabetes ? "diabetes" : "no_diabetes") + "," + na(trial.age[i]) + "," +
                             (trial.male[i] != 0 ? "1" : "0") + "," + (diabetes ? "1" : "0") + ",";
    const bool left = std::isfinite(trial.dropout_month[r]);
    const std::string tail = std::string(",") + (treated ? (trial.adherent[r] != 0 ? "1" : "0") : "NA") + "," +
                             (left ? cell(trial.dropout_month[r]) : "NA") + "," +
                             (left ? std::string(reason_name(trial.dropout_reason[r])) : "NA") + "\n";
    for (std::size_t k = 0; k < months.size(); ++k) {
      const bool seen = trial.seen_at(r, k);
      const std::size_t c = k * trial.rows + r;
      out += lead + std::to_string(k) + "," + cell(months[k]) + "," + na(trial.path(r).at(months[k])) + "," +
             (seen ? na(trial.observed[c]) : "NA");
      if (mg) out += "," + (seen ? na(trial.serum_mg[c]) : "NA") + "," + (seen ? na(trial.dose[c]) : "NA");
      out += tail;
    }
    ++r;
  }
  return out;
}

void write_patients_csv(const Scenario& s, const TrialData& trial, AtomicFile& f) {
  const auto& months = s.trial.months;
  // Parts the scenario does not have (population.labs, treatment.serum_mg, a prior-medication
  // exclusion) have no columns.
  const bool labs = s.population.labs, mg = s.treatment.serum_mg, prior = s.has_prior_exclusion();
  std::string h = std::string("id,status,arm,stratum,age,male") + (labs ? ",vintage_years" : "") + ",diabetes" +
                  (prior ? ",prior_mg" : "");
  if (labs) {
    for (std::size_t l = 0; l < kLabs; ++l) h += "," + std::string(Population::lab_name(l));
  }
  h += ",entry_spp";
  for (const double m : months) {
    const std::string sfx = month_suffix(m);
    h += ",true_spp" + sfx + ",observed_spp" + sfx + (mg ? ",serum_mg" + sfx + ",dose_mg" + sfx : std::string());
  }
  h += ",adherent,dropout_month,dropout_reason\n";
  f.write(h);
  std::size_t r = 0;  // rows are in consent order
  for (std::size_t i = 0; i < trial.consented; ++i) {
    const Status status = trial.status[i];
    const bool rand = status == Status::randomized;
    const Arm arm = rand ? trial.arm[r] : Arm::none;
    // Vintage and the labs are drawn only when this table is asked for (TrialSimulator's
    // all_covariates); a table of a trial simulated without them shows them empty.
    const ExtraCovariates* x = i < trial.extras.size() ? &trial.extras[i] : nullptr;
    const bool diabetes = trial.diabetes[i] != 0;
    std::string row = std::to_string(i + 1) + "," + patient_status(status) + "," +
                      (rand ? (arm == Arm::treatment ? "treatment" : "control") : "") + "," +
                      (diabetes ? "diabetes" : "no_diabetes") + "," + cell(trial.age[i]) + "," +
                      (trial.male[i] != 0 ? "1" : "0") + (labs ? "," + (x ? cell(x->vintage) : std::string()) : "") +
                      "," + (diabetes ? "1" : "0") + (prior ? std::string(",") + (trial.prior_mg[i] != 0 ? "1" : "0") : "");
    for (std::size_t l = 0; l < kLabs && labs; ++l) {
      const double v = l == static_cast<std::size_t>(Lab::magnesium) ? trial.mg[i] : x ? x->labs[l] : std::numeric_limits<double>::quiet_NaN();
      row += "," + cell(v);
    }
    // The entry reading is taken only for patients who reach it.
    const bool entered = status != Status::prior_mg && status != Status::lost_pre_baseline;
    row += "," + (entered ? cell(trial.entry_spp[i]) : std::string());
    for (std::size_t k = 0; k < months.size(); ++k) {
      if (!rand) {
        row += mg ? ",,,," : ",,";
        continue;
      }
      const bool seen = trial.seen_at(r, k);
      const std::size_t c = k * trial.rows + r;
      row += "," + cell(trial.path(r).at(months[k])) + "," + (seen ? cell(trial.observed[c]) : "");
      if (mg) row += "," + (seen ? cell(trial.serum_mg[c]) : "") + "," + (seen ? cell(trial.dose[c]) : "");
    }
    row += std::string(",") + (rand && arm == Arm::treatment ? (trial.adherent[r] != 0 ? "1" : "0") : "");
    const bool left = rand && std::isfinite(trial.dropout_month[r]);
    row += "," + (left ? cell(trial.dropout_month[r]) : std::string()) + "," +
           reason_name(rand ? trial.dropout_reason[r] : DropoutReason::none) + "\n";
    f.write(row);
    if (rand) ++r;
  }
}

}  // namespace trialsim
