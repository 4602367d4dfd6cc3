// Test support. Runs a program (absolute path in argv[0]) as a child whose stdout and stderr
// both go to the parent's pipe (child_process::read_line reads them).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace nbio_test {

inline child_process spawn(std::vector<std::string> argv) {
  return child_process([argv = std::move(argv)](int, int to_parent) {
    ::dup2(to_parent, 1);
    ::dup2(to_parent, 2);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::perror("execv");
    return 127;
  });
}

}  // namespace nbio_test
