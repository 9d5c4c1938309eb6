#pragma once
// Output files. Every file is written to a temporary name beside its target and renamed into
// place only when complete, so an interrupted or failed run never leaves a half-written file.
#include "sim/io/scenario.hpp"
#include "sim/engine/trial.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <string>

namespace trialsim {

// In a distributed run only the first process writes files: the others call
// set_outputs_enabled(false), after which every AtomicFile they open discards what is written.
void set_outputs_enabled(bool enabled);
bool outputs_enabled();
// Whether an output goes to standard output ("-", or the terminal's device): the command's
// table then stays off stdout, so the output is not mixed with it.
bool stdout_is_output();

// Provenance. The outputs stay byte-identical at any thread count, shard split or date (tests
// and merge rely on it), so what made them (version, commit, build, command line, working
// directory, start time, seed, replicates, threads, scenario, the --set and --vary keys) goes
// into a sidecar `<output>.provenance.json` beside each output a person asked for. The command
// line sets the run's fields once (set_provenance, add_provenance) before opening outputs;
// outputs opened with a kind get the sidecar, written just before the output itself is moved
// into place. Standard output and devices get none.
void set_provenance(nlohmann::json fields);
void add_provenance(const std::string& key, nlohmann::json value);
const nlohmann::json& provenance();
// The sidecar's name for an output.
std::string provenance_path(const std::string& output);

class AtomicFile {
 public:
  // Creates a unique `<path>.tmp-XXXXXX` for writing (and a missing parent directory); throws
  // InputError if it cannot, or if `path` is a directory. "-" is standard output, and a device
  // or pipe (/dev/stdout, a FIFO) is written in place, never replaced.
  explicit AtomicFile(std::string path);
  // An output a person asked for, described by `kind` (e.g. "summary JSON") in its provenance
  // sidecar (when provenance is set and the output is a regular file).
  AtomicFile(std::string path, std::string kind);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // removes the temporary file unless committed

  std::FILE* get() { return file_; }
  void write(const std::string& s);
  // Flushes, closes and renames into place; throws std::runtime_error on an I/O error.
  void commit();

 private:
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
  std::string kind_;
  std::unique_ptr<AtomicFile> sidecar_;
};

// One row per simulated trial: funnel counts, arm summaries and every analysis.
class TrialsCsv {
 public:
  TrialsCsv(const Scenario& s, const std::string& path);  // an output of kind "trials CSV"
  void add(const ReplicateResult& r);
  // The header line and one trial's row, each with its newline.
  static std::string header(const Scenario& s);
  static std::string row(const Scenario& s, const ReplicateResult& r);
  void commit() { file_.commit(); }

 private:
  const Scenario& scenario_;
  AtomicFile file_;
};

// The patient-level table of one trial: every consented patient with their fate. The caller
// commits the file.
void write_patients_csv(const Scenario& s, const TrialData& trial, AtomicFile& f);

// The randomized patients of one or more trials in long format, one row per patient and visit
// (`replicate,id,arm,stratum,age,male,diabetes,visit,month,true,observed,...`), ready for a
// repeated-measures fit (nlme::gls, mmrm) without reshaping; NA where R would otherwise read "".
// header() first, then rows() per trial.
struct PatientsLong {
  static std::string header(const Scenario& s);
  static std::string rows(const Scenario& s, std::uint64_t replicate, const TrialData& trial);
};

}  // namespace trialsim
