// expect: on_close must be callable as on_close\(nbio::websocket::connection&, std::uint16_t code
#include <nbio/nbio.hpp>
struct printer {
  void on_message(nbio::websocket::connection&, std::string_view, bool) {}
  void on_close(nbio::websocket::connection&, nbio::websocket::close_code) {}
};
int main() {
  nbio::engine eng;
  nbio::websocket::client cl(eng, printer{});
}
