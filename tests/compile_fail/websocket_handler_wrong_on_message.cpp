// expect: on_message must be callable as on_message\(nbio::websocket::connection&, std::string_v
// The binary flag left out: before the check, the message was never delivered.
#include <nbio/nbio.hpp>
struct echo {
  void on_message(nbio::websocket::connection& ws, std::string_view data) { ws.send(data); }
};
int main() {
  nbio::engine eng;
  nbio::websocket::server ws(eng, echo{});
}
