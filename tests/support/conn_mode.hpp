// Test support. The ways a connection can be served, for suites parameterised over them: the
// event loop with edge- or level-triggered epoll, and blocking mode (a thread per connection).
//
// Instantiate the loop modes under a plain prefix and blocking mode under "threading_blocking"
// so that the blocking runs carry the threading label (tests/cmake/discover_gtest.cmake):
//   INSTANTIATE_TEST_SUITE_P(loop, suite, ::testing::Values(edge_mode, level_mode), ...);
//   INSTANTIATE_TEST_SUITE_P(threading_blocking, suite, ::testing::Values(blocking_mode), ...);
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "nbio/engine/config.hpp"

namespace nbio_test {

struct conn_mode {
  nbio::io_mode io;
  nbio::trigger_mode trigger;
  const char* name;

  nbio::engine_options engine() const { return {.loops = 2, .trigger = trigger}; }
  nbio::listen_options listen(nbio::conn_options conn = {}) const {
    nbio::listen_options o;
    o.mode = io;
    o.conn = conn;
    return o;
  }
};

inline constexpr conn_mode edge_mode{nbio::io_mode::nonblocking, nbio::trigger_mode::edge, "edge"};
inline constexpr conn_mode level_mode{nbio::io_mode::nonblocking, nbio::trigger_mode::level,
                                      "level"};
inline constexpr conn_mode blocking_mode{nbio::io_mode::blocking, nbio::trigger_mode::edge,
                                         "blocking"};

inline std::string conn_mode_name(const ::testing::TestParamInfo<conn_mode>& info) {
  return info.param.name;
}

}  // namespace nbio_test
