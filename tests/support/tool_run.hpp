// Test support. Real third-party peers run as shell commands (curl, python3, ...): whether a
// program is installed, a command run bounded by timeout(1) with its output collected, and a
// temporary file to hand them.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace nbio_test {

inline bool have_program(const char* name) {
  return std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0;
}

struct tool_run {
  int status = -1;
  std::string output;  // stdout (stderr too when the command redirects it)
};

// Runs `command` through the shell, bounded by timeout(1), and collects its standard output.
inline tool_run run_tool(const std::string& command) {
  tool_run r;
  FILE* p = ::popen(("timeout 30 " + command).c_str(), "r");
  if (!p) return r;
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
    r.output.append(buf, n);
  r.status = ::pclose(p);
  return r;
}

// A temporary file holding `content`, removed with the object.
class temp_file {
 public:
  explicit temp_file(const std::string& content) {
    char name[] = "/tmp/nbio-test-XXXXXX";
    const int fd = ::mkstemp(name);
    if (fd >= 0) ::close(fd);
    path_ = name;
    std::ofstream(path_, std::ios::binary) << content;
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  ~temp_file() { std::remove(path_.c_str()); }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

}  // namespace nbio_test
