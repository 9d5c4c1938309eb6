#pragma once
// Scenario and observed files a test writes: each under the system's temporary directory with a
// name of this process's own (ctest runs test cases as parallel processes), removed at exit.
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <unistd.h>

namespace trialsim::testing {

class TempFiles {
 public:
  explicit TempFiles(std::string prefix) : prefix_(std::move(prefix)) {}
  TempFiles(const TempFiles&) = delete;
  TempFiles& operator=(const TempFiles&) = delete;
  ~TempFiles() {
    std::error_code ec;
    for (const auto& p : paths_) std::filesystem::remove(p, ec);
  }
  // A new file holding `text`; returns its path.
  std::string make(const std::string& text, const std::string& extension = ".toml") {
    const auto path = std::filesystem::temp_directory_path() /
                      (prefix_ + "_" + std::to_string(::getpid()) + "_" + std::to_string(paths_.size()) + extension);
    paths_.push_back(path);
    std::ofstream(path) << text;
    return path.string();
  }

 private:
  std::string prefix_;
  std::vector<std::filesystem::path> paths_;
};

}  // namespace trialsim::testing
