#include "sim/present/cli.hpp"

int main(int argc, char** argv) { return trialsim::cli_main(argc, argv); }
