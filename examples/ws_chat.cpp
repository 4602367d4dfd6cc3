// ws_chat: chat rooms on WebSocket pub/sub (websocket::topics).
//
//   ws_chat --host H --port P [--loops N] [--tls-cert FILE --tls-key FILE]
//
// A connection starts in room "lobby". "/join ROOM" moves it to ROOM; any other text message is
// published to everyone in its room (itself included) as "<id>: <text>". The message is framed
// once and written to every member by its own loop; a member that does not read falls behind
// by at most 256 KiB and then misses messages (slow_policy::drop). GET / answers a one-line
// page. --tls-cert/--tls-key serve WSS (wss://H:P/ws). Prints "listening on H:P"; SIGINT or
// SIGTERM stops it.
//
//   python3 -c "import asyncio, websockets
//   async def m():
//       async with websockets.connect('ws://127.0.0.1:P/ws') as ws:
//           await ws.send('hello'); print(await ws.recv())
//   asyncio.run(m())"
//
// With --tls-cert/--tls-key: websockets.connect('wss://localhost:P/ws', ssl=ctx), ctx being
// ssl.create_default_context(cafile='ca.pem').
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <string>

#include <nbio/nbio.hpp>

#include "backend_flag.hpp"
#include "tls_flags.hpp"

namespace {

namespace ws = nbio::websocket;

struct chat {
  // A member's room and name: typed state in the connection's own slot (no allocation).
  struct conn_data {
    std::string room = "lobby";
    std::string name;
  };
  ws::topics* rooms;
  std::atomic<std::uint64_t>* next_id;  // the handler is copied: shared state lives outside

  void on_open(ws::connection& c) {
    conn_data& m = c.data<conn_data>();
    m.name = "user" + std::to_string(next_id->fetch_add(1));
    rooms->subscribe(c, m.room);
    c.send("welcome " + m.name + ", you are in " + m.room);
  }
  void on_message(ws::connection& c, std::string_view text, bool binary) {
    conn_data& m = c.data<conn_data>();
    if (binary) return;
    if (text.starts_with("/join ") && text.size() > 6) {
      rooms->unsubscribe(c, m.room);
      m.room = std::string(text.substr(6));
      rooms->subscribe(c, m.room);
      c.send("you are in " + m.room);
      return;
    }
    std::string line = m.name;
    line += ": ";
    line += text;
    rooms->publish(m.room, line);
  }
  // No on_close: conn_data is destroyed by itself, and topics drop a closed connection at
  // their next publish.
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nbio WebSocket chat (pub/sub)"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  nbio::engine_options config;
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port; 0 picks a free one")->capture_default_str();
  app.add_option("--loops", config.loops, "event loop threads; 0 is one per core")
      ->capture_default_str();
  add_backend_flag(app, config);
  tls_flags tls;
  tls.add_server(app);
  CLI11_PARSE(app, argc, argv);
  std::shared_ptr<nbio::tls::context> tls_context = tls.server_context("ws_chat", {"http/1.1"});

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  nbio::engine eng(config);
  ws::topics rooms(eng, {.max_queued = 256 * 1024, .on_slow = ws::slow_policy::drop});
  std::atomic<std::uint64_t> next_id{1};
  ws::server endpoint(eng, chat{&rooms, &next_id});
  nbio::http::serve_mux mux;
  mux.handle("GET /ws", endpoint.upgrade());
  mux.handle("GET /{$}", [](nbio::http::response_writer& w, nbio::http::request&) {
    w.write("nbio ws_chat: connect a WebSocket to /ws\n");
  });
  nbio::http::server srv(eng, mux);
  nbio::listen_options options;
  options.tls = tls_context;
  std::string bound;
  try {
    const bool bare_v6 = host.find(':') != std::string::npos && host.front() != '[';
    bound = srv.listen((bare_v6 ? "[" + host + "]" : host) + ":" + std::to_string(port), options)
                .local_address()
                .to_string();
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "ws_chat: %s\n", e.what());
    return 1;
  }
  eng.start();
  std::printf("listening on %s\n", bound.c_str());
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  eng.stop();
  std::fprintf(stderr, "ws_chat: %llu messages delivered, %llu dropped\n",
               static_cast<unsigned long long>(rooms.delivered()),
               static_cast<unsigned long long>(rooms.dropped()));
  return 0;
}
