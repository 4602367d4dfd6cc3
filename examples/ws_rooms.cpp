// ws_rooms: a chat with rooms on topics, on ws://127.0.0.1:PORT/ws (PORT: the first argument,
// 8080). A connection starts in "lobby"; "/join ROOM" moves it, and any other text message goes
// to everyone in its room. Each connection's room is typed state in its own slot (conn_data).
#include <nbio/nbio.hpp>
namespace ws = nbio::websocket;
struct chat {
  struct conn_data {
    std::string room = "lobby";
  };
  ws::topics* rooms;
  void on_open(ws::connection& c) { rooms->subscribe(c, c.data<conn_data>().room); }
  void on_message(ws::connection& c, std::string_view text, bool) {
    std::string& room = c.data<conn_data>().room;
    if (!text.starts_with("/join ")) return rooms->publish(room, text);
    rooms->unsubscribe(c, room);
    room = text.substr(6);
    rooms->subscribe(c, room);
  }
};
int main(int argc, char** argv) {
  nbio::engine eng;
  ws::topics rooms(eng);
  ws::server server(eng, chat{&rooms});
  nbio::http::serve_mux mux;
  mux.handle("GET /ws", server.upgrade());
  nbio::http::server srv(eng, mux);
  srv.listen(std::string("127.0.0.1:") + (argc > 1 ? argv[1] : "8080"));
  eng.run();
}
