#pragma once
namespace trialsim {
// The command line. Returns the process exit code: 0 success, 2 bad input, 1 internal error,
// 130 interrupted.
int cli_main(int argc, char** argv);
}  // namespace trialsim
