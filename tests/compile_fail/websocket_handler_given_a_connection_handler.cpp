// expect: a WebSocket handler needs at least one of on_open, on_message, on_close, on_drained
// An engine handler (on_data on nbio::conn&) passed where WebSocket messages are expected.
#include <nbio/nbio.hpp>
struct echo {
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
};
int main() {
  nbio::engine eng;
  nbio::websocket::server ws(eng, echo{});
}
