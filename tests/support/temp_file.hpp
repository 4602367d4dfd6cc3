// Test support. A temporary file with given content (for send_file), removed with the object.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace nbio_test {

class temp_file {
 public:
  explicit temp_file(const std::string& content) {
    char name[] = "/tmp/nbio_test_file_XXXXXX";
    fd_ = ::mkstemp(name);
    path_ = name;
    EXPECT_GE(fd_, 0);
    EXPECT_EQ(::write(fd_, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  }
  ~temp_file() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace nbio_test
