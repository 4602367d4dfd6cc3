// expect: a handler passed by reference must be std::ref\(h\), not std::cref\(h\)
#include <functional>
#include <nbio/nbio.hpp>
struct echo {
  void on_message(nbio::websocket::connection& ws, std::string_view d, bool b) { ws.send(d, b); }
};
int main() {
  nbio::engine eng;
  const echo h;
  nbio::websocket::server ws(eng, std::cref(h));
}
