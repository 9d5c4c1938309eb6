// The test suite's "fuzz corpus replay": feeds every file of the directories (or files) named on
// the command line to the fuzz target's entry point, tests/fuzz/fuzz_scenario.cpp, built with
// the project's compiler and settings. Fails if the entry point lets an exception out on any
// file; a crash or a sanitizer report (in the ASan build) ends the process, which fails too.
// Files whose names start with '.' (.gitkeep) are skipped.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> files;
  for (int a = 1; a < argc; ++a) {
    const fs::path p(argv[a]);
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else if (fs::is_directory(p, ec)) {
      for (const auto& e : fs::directory_iterator(p, ec)) {
        if (e.is_regular_file() && e.path().filename().string().front() != '.') files.push_back(e.path());
      }
    } else {
      std::fprintf(stderr, "%s: no such file or directory\n", argv[a]);
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  int failed = 0;
  for (const auto& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    std::string bytes(ec ? 0 : static_cast<std::size_t>(size), '\0');
    std::ifstream in(f, std::ios::binary);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (ec || !in) {
      std::fprintf(stderr, "%s: cannot read\n", f.c_str());
      ++failed;
      continue;
    }
    std::fprintf(stderr, "%s\n", f.c_str());  // the last line before a crash names its file
    try {
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "FAILED %s: the entry point threw: %s\n", f.c_str(), e.what());
      ++failed;
    } catch (...) {
      std::fprintf(stderr, "FAILED %s: the entry point threw a non-std exception\n", f.c_str());
      ++failed;
    }
  }
  std::fprintf(stderr, "%zu files replayed, %d failed\n", files.size(), failed);
  return failed == 0 && !files.empty() ? 0 : 1;
}
