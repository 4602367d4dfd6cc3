// ws_hello: a WebSocket echo server on ws://127.0.0.1:PORT/ws (PORT: the first argument, 8080).
#include <nbio/nbio.hpp>
struct echo {
  void on_message(nbio::websocket::connection& c, std::string_view m, bool bin) { c.send(m, bin); }
};
int main(int argc, char** argv) {
  nbio::engine eng;
  nbio::websocket::server ws(eng, echo{});
  nbio::http::serve_mux mux;
  mux.handle("GET /ws", ws.upgrade());
  nbio::http::server srv(eng, mux);
  srv.listen(std::string("127.0.0.1:") + (argc > 1 ? argv[1] : "8080"));
  eng.run();
}
