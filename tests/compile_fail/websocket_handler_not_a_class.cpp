// expect: a WebSocket handler is a class with on_open, on_message, on_close or on_drained
#include <nbio/nbio.hpp>
void on_message(nbio::websocket::connection&, std::string_view, bool) {}
int main() {
  nbio::engine eng;
  nbio::websocket::server ws(eng, &on_message);
}
