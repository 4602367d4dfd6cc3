// Test support. What a test does when a third-party peer it plays against is missing: curl,
// wrk, slowhttptest, nginx, node and its ws module, Python's websockets, Chromium, openssl and
// gnuplot, every one of which scripts/deps.sh installs.
//
//   if (!have_program("curl")) NBIO_PEER_MISSING("curl");
//
// On a developer's machine the test skips (and scripts/test.sh counts it as skipped, never as
// passed). On CI (CI=true) it fails: there a missing peer means a missing install step, and a
// skip would hide it. Skips whose reason holds on CI too (the open-files limit, port 443 taken)
// use GTEST_SKIP directly and say why.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace nbio::test {

// True when the suite runs on CI (the CI environment variable is "true", as CI runners set it).
inline bool on_ci() noexcept {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

}  // namespace nbio::test

// Ends the current test (a void function): a failure on CI, a skip elsewhere. `what` names the
// peer and may stream more (`python << " not installed"`).
#define NBIO_PEER_MISSING(what)                                                        \
  do {                                                                                 \
    if (::nbio::test::on_ci())                                                         \
      GTEST_FAIL() << what << " (a peer scripts/deps.sh installs; CI=true: a missing " \
                   << "peer is a missing install step)";                               \
    else                                                                               \
      GTEST_SKIP() << what << " (a peer scripts/deps.sh installs)";                    \
  } while (0)
