#pragma once
// Output files. Every file is written to a temporary name beside its target and renamed into
// place only when complete, so an interrupted or failed run never leaves a half-written file.
#include "sim/io/scenario.hpp"
#include "sim/engine/trial.hpp"

#include <cstdio>
#include <string>

namespace trialsim {

// In a distributed run only the first process writes files: the others call
// set_outputs_enabled(false), after which every AtomicFile they open discards what is written.
void set_outputs_enabled(bool enabled);
bool outputs_enabled();
// Whether an output goes to standard output ("-", or the terminal's device): the command's
// table then stays off stdout, so the output is not mixed with it.
bool stdout_is_output();

class AtomicFile {
 public:
  // Creates a unique `<path>.tmp-XXXXXX` for writing (and a missing parent directory); throws
  // InputError if it cannot, or if `path` is a directory. "-" is standard output, and a device
  // or pipe (/dev/stdout, a FIFO) is written in place, never replaced.
  explicit AtomicFile(std::string path);
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
};

// One row per simulated trial: funnel counts, arm summaries and every analysis.
class TrialsCsv {
 public:
  TrialsCsv(const Scenario& s, const std::string& path);
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
