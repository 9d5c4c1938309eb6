#include "sim/present/cli.hpp"

#ifdef TRIALSIM_MPI
#include "sim/engine/engine.hpp"
#include "sim/engine/mpi_runner.hpp"
#include "sim/io/writers.hpp"

#include <cstdio>

int main(int argc, char** argv) {
  // Under mpirun (or srun) every rank runs the command; see sim/engine/mpi_runner.hpp.
  trialsim::mpi::Session session(argc, argv);
  if (session.size() > 1) {
    trialsim::set_range_runner(&trialsim::mpi::range_runner);
    trialsim::set_broadcaster(&trialsim::mpi::broadcaster);
    if (session.rank() != 0) {
      // Only rank 0 prints and writes files.
      trialsim::set_outputs_enabled(false);
      if (std::freopen("/dev/null", "w", stdout) == nullptr || std::freopen("/dev/null", "w", stderr) == nullptr) return 1;
    }
  }
  const int code = trialsim::cli_main(argc, argv);
  return session.finish(code);
}
#else
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  // Started by mpirun as one of several ranks, a build without MPI would run the whole command
  // in every rank, each writing the same files.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* size = std::getenv(v);
    if (size != nullptr && std::atoi(size) > 1) {
      const char* rank = std::getenv(v[1] == 'M' && v[2] == 'P' ? "OMPI_COMM_WORLD_RANK" : "PMI_RANK");
      if (rank != nullptr && std::atoi(rank) != 0) return 2;  // rank 0 says why, once
      std::fprintf(stderr, "trialsim: started as one of %s MPI ranks, but built without MPI; rebuild with "
                           "cmake -DTRIALSIM_MPI=ON (needs libopenmpi-dev), or run it without mpirun\n", size);
      return 2;
    }
  }
  return trialsim::cli_main(argc, argv);
}
#endif
