// expect: a connection handler needs at least one of on_open, on_data, on_close
// A WebSocket handler passed to the engine: none of its members is a connection handler's.
#include <nbio/nbio.hpp>
struct chat {
  void on_message(nbio::conn&, std::string_view, bool) {}
};
int main() {
  nbio::engine eng;
  eng.make_dialer(chat{});
}
