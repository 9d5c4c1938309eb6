#pragma once
// MPI scale-out (built with -DTRIALSIM_MPI=ON; Open MPI from Debian's libopenmpi-dev).
//
// Every process runs the same command (SPMD). Each simulation of a replicate range is a
// collective call: the first process (rank 0) hands out work units, nodes of the reduction tree
// (chunks of 1 024 replicates, or super-chunks of 65 536 while plenty remain), to whichever
// process asks next, itself included (a thread of its own computes while the main thread
// serves the others), and folds the returned nodes in replicate order. The result is therefore
// bit-identical to one process for any number of ranks and any assignment. Rank 0 then sends
// the folded tree to every rank, so all continue identically; only rank 0 writes files and
// prints. A failure on any rank reaches rank 0, which stops handing out work, reports it once,
// and makes every rank end with the same exit code.
#include "sim/engine/engine.hpp"

namespace trialsim::mpi {

// Starts MPI when this process was launched by an MPI starter (mpirun, srun: detected from the
// environment), and finalizes it on destruction. Without a starter nothing is initialized and
// the program runs as one process.
class Session {
 public:
  Session(int& argc, char**& argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  int rank() const { return rank_; }
  // Ends the command on every rank together; returns rank 0's exit code on every rank. Rank 0
  // answers any rank still waiting inside a collective (rank 0 failed before it) with failure.
  int finish(int code);
  int size() const { return size_; }

 private:
  bool initialized_ = false;
  int rank_ = 0, size_ = 1;
};

// The RangeRunner and Broadcaster of a distributed run (installed by main when size() > 1).
void range_runner(const Scenario& scenario, const EngineOptions& options, ReductionTree& tree, std::uint64_t end);
void broadcaster(std::vector<double>& values);

}  // namespace trialsim::mpi
