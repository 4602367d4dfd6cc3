// Test support. Readable names for tests parameterised over nbio::io_mode.
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

}  // namespace nbio_test
