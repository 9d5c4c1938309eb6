#pragma once
// What the executable was built from (cmake/build_info.cmake writes the definitions at every
// build): the commit, `git rev-parse --short=12 HEAD` with "-dirty" when tracked files had
// changes ("unknown" outside a git checkout), and CMAKE_BUILD_TYPE.

namespace trialsim {

const char* build_commit();
const char* build_type();

}  // namespace trialsim
