// Test support. What handlers saw, shared between loop threads and the test thread, and the
// echo handler most tests build on.
#pragma once

#include <atomic>
#include <string_view>
#include <system_error>

#include "nbio/engine/conn.hpp"
#include "support/event_log.hpp"

namespace nbio_test {

struct conn_events {
  event_log<nbio::conn_handle> opened;  // a handle per on_open
  event_log<std::error_code> closed;    // the first cause per on_close
  std::atomic<std::size_t> bytes_in{0};
  std::atomic<int> blocking_opened{0};
};

// Echoes every byte; records opens and closes in `events` when set.
struct echo_handler {
  conn_events* events = nullptr;

  void on_open(nbio::conn& c) {
    if (!events) return;
    if (c.is_blocking()) events->blocking_opened.fetch_add(1);
    events->opened.push(c.handle());
  }
  void on_data(nbio::conn& c, std::string_view d) {
    if (events) events->bytes_in.fetch_add(d.size());
    c.write(d);
  }
  void on_close(nbio::conn&, std::error_code cause) {
    if (events) events->closed.push(cause);
  }
};

}  // namespace nbio_test
