// Test support. Tests parameterised over nbio::io_mode: readable names, and the listen options
// each mode is tested with.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "nbio/engine/config.hpp"

namespace nbio_test {

inline std::string io_mode_name(const ::testing::TestParamInfo<nbio::io_mode>& info) {
  switch (info.param) {
    case nbio::io_mode::nonblocking:
      return "nonblocking";
    case nbio::io_mode::blocking:
      return "blocking";
    case nbio::io_mode::mixed:
      return "mixed";
  }
  return "unknown";
}

// Blocking mode serves up to max_blocking_online connections on threads (256: every test
// connection); mixed mode puts the first connection on a thread and the rest on the loops, so
// two-connection tests see both.
inline nbio::listen_options listen_for(nbio::io_mode mode) {
  nbio::listen_options o;
  o.mode = mode;
  if (mode == nbio::io_mode::blocking) o.max_blocking_online = 256;
  if (mode == nbio::io_mode::mixed) o.max_blocking_online = 1;
  return o;
}

}  // namespace nbio_test
