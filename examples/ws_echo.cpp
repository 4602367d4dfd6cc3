// ws_echo: a WebSocket echo server on nbio::websocket::server (RFC 6455).
//
//   ws_echo --host H --port P [--path /ws] [--loops N] [--io-mode M] [--workers N]
//           [--max-message BYTES] [--deflate [--deflate-memory shared|dedicated|sliding]
//           [--max-dedicated N] [--deflate-threshold BYTES]] [--tls-cert FILE --tls-key FILE]
//           [--write-budget BYTES] [--join-existing]
//
// --deflate accepts permessage-deflate offers (docs/websocket.md: the memory policies).
// --tls-cert/--tls-key serve WSS (wss://H:P/ws, ALPN http/1.1).
// Every message comes back with its opcode (text or binary). GET / answers a one-line page so a
// plain HTTP probe sees the server. Prints "listening on H:P" once it serves (P is the bound
// port when --port is 0); SIGINT or SIGTERM stops it and prints the connections upgraded (and
// those the write budget closed) on stderr. --workers N forks N processes on the same
// SO_REUSEPORT port (needs a fixed --port). A port another server already listens on is refused
// ("Address already in use", exit 1) unless --join-existing asks to share it (a blue/green start
// beside the old server). --write-budget bounds the bytes queued for all clients together
// (engine_options::max_write_queue_total): past it the clients that read least are closed (1006).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include <nbio/nbio.hpp>

#include "backend_flag.hpp"
#include "tls_flags.hpp"

namespace {

struct echo {
  std::atomic<std::uint64_t>* opened;  // the handler is copied: counters live outside it
  void on_open(nbio::websocket::connection&) { opened->fetch_add(1, std::memory_order_relaxed); }
  void on_message(nbio::websocket::connection& ws, std::string_view data, bool binary) {
    ws.send(data, binary);
  }
};

int serve(const std::string& addr, const std::string& path, const nbio::engine_options& config,
          nbio::listen_options options, const nbio::websocket::endpoint_options& ws_options,
          int index) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  nbio::engine eng(config);
  std::atomic<std::uint64_t> opened{0};
  nbio::websocket::server ws(eng, echo{&opened}, ws_options);
  nbio::http::serve_mux mux;
  mux.handle("GET " + path, ws.upgrade());
  mux.handle("GET /{$}", [](nbio::http::response_writer& w, nbio::http::request&) {
    w.write("nbio ws_echo: WebSocket echo\n");
  });
  nbio::http::server srv(eng, mux);
  std::string bound;
  try {
    bound = srv.listen(addr, options).local_address().to_string();
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "ws_echo: %s\n", e.what());
    return 1;
  }
  eng.start();
  if (index <= 0) {
    std::printf("listening on %s\n", bound.c_str());
    std::fflush(stdout);
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  eng.stop();
  const std::string who = index < 0 ? "ws_echo" : "ws_echo worker " + std::to_string(index);
  // Two lines: scripts read the number before "connections upgraded" as the line's third last.
  std::fprintf(stderr, "%s: %s: %llu connections upgraded\n", who.c_str(), strsignal(signal_number),
               static_cast<unsigned long long>(opened.load()));
  std::fprintf(stderr, "%s: %llu connections closed by the write budget\n", who.c_str(),
               static_cast<unsigned long long>(eng.stats().total.write_budget_closes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nbio WebSocket echo server"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string path = "/ws";
  nbio::engine_options config;
  std::string mode = "nonblocking";
  unsigned workers = 0;
  std::uint64_t max_message = 16u << 20;
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port; 0 picks a free one")->capture_default_str();
  app.add_option("--path", path, "the WebSocket route")->capture_default_str();
  app.add_option("--loops", config.loops, "event loop threads; 0 is one per core")
      ->capture_default_str();
  add_backend_flag(app, config);
  app.add_option("--io-mode", mode, "how connections are served (docs/io_modes.md)")
      ->check(CLI::IsMember({"nonblocking", "blocking", "mixed"}))
      ->capture_default_str();
  app.add_option("--workers", workers, "worker processes sharing the port (0: this process)")
      ->capture_default_str();
  app.add_option("--max-message", max_message, "largest message accepted (1009 past it)")
      ->capture_default_str();
  app.add_option("--write-budget", config.max_write_queue_total,
                 "bytes queued for all clients together (0: no limit)")
      ->capture_default_str();
  bool join_existing = false;
  app.add_flag("--join-existing", join_existing, "share the port with a server already on it");
  nbio::websocket::endpoint_options ws_options;
  app.add_option("--max-write-queue", ws_options.max_write_queue,
                 "bytes queued for one client (closed past it)")
      ->capture_default_str();
  nbio::websocket::deflate_options& deflate = ws_options.deflate;
  std::string memory = "shared";
  app.add_flag("--deflate", deflate.enabled, "accept permessage-deflate (RFC 7692)");
  app.add_option("--deflate-memory", memory, "zlib streams: per thread, per connection, or both")
      ->check(CLI::IsMember({"shared", "dedicated", "sliding"}))
      ->capture_default_str();
  app.add_option("--max-dedicated", deflate.max_dedicated,
                 "sliding: connections with their own streams")
      ->capture_default_str();
  app.add_option("--deflate-threshold", deflate.threshold, "smaller messages go uncompressed")
      ->capture_default_str();
  tls_flags tls;
  tls.add_server(app);
  CLI11_PARSE(app, argc, argv);
  ws_options.limits.max_message = max_message;
  deflate.memory = memory == "shared"      ? nbio::websocket::deflate_memory::shared
                   : memory == "dedicated" ? nbio::websocket::deflate_memory::dedicated
                                           : nbio::websocket::deflate_memory::sliding;
  if (workers > 0 && port == 0) {
    std::fprintf(stderr, "ws_echo: --workers needs a fixed --port\n");
    return 2;
  }
  const std::map<std::string, nbio::io_mode> modes{{"nonblocking", nbio::io_mode::nonblocking},
                                                   {"blocking", nbio::io_mode::blocking},
                                                   {"mixed", nbio::io_mode::mixed}};
  nbio::listen_options options;
  options.mode = modes.at(mode);
  options.join_existing = join_existing;
  if (options.mode == nbio::io_mode::blocking) options.max_blocking_online = 256;
  options.tls = tls.server_context("ws_echo", {"http/1.1"});

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const bool bare_v6 = host.find(':') != std::string::npos && host.front() != '[';
  const std::string addr = (bare_v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  if (workers == 0) return serve(addr, path, config, options, ws_options, -1);
  const nbio::workers_result r = nbio::run_workers({.count = workers}, [&](unsigned index) {
    return serve(addr, path, config, options, ws_options, static_cast<int>(index));
  });
  std::fprintf(stderr, "ws_echo: %u workers started, %u restarted, %u crashed\n", r.started,
               r.restarted, r.crashed);
  return r.exit_code;
}
