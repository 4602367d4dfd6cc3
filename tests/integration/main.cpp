// Integration tests' main: lifts the open-files limit (1,000-connection tests hold both ends
// in this process), then runs GoogleTest. SIGPIPE keeps its default action on purpose: the
// engine must never raise it (MSG_NOSIGNAL), and a test that does dies visibly.
#include <gtest/gtest.h>

#include "support/fd_limit.hpp"

int main(int argc, char** argv) {
  nbio_test::raise_fd_limit();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
