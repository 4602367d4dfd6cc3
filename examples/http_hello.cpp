// http_hello: an HTTP/1.1 server on nbio::http::server.
//
//   http_hello --host H --port P [--loops N] [--io-mode nonblocking|blocking|mixed] [--workers N]
//              [--read-header-timeout-ms MS] [--idle-timeout-ms MS] [--max-buffered-mib N]
//              [--tls-cert FILE --tls-key FILE]
//
// GET / answers 200 "hello\n"; POST /echo answers with the request body; GET /sleep/{ms}
// answers after sleeping on a worker pool; POST /upload streams its body (counted and
// checksummed as it arrives, never held whole, up to 1 GiB) and answers "N bytes, fnv1a X"
// once it is in; other paths 404, other methods 405 (a serve_mux with Go 1.22 patterns).
// Prints "listening on H:P" once it serves (P is the bound port when --port is 0); SIGINT or
// SIGTERM shuts down gracefully and prints the requests served (and the connections evicted
// past --max-buffered-mib, the budget for incomplete requests) on stderr. --workers N forks N
// processes on the same SO_REUSEPORT port (needs a fixed --port).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include <nbio/http/on_pool.hpp>
#include <nbio/http/serve_mux.hpp>
#include <nbio/http/server.hpp>
#include <nbio/nbio.hpp>

#include "backend_flag.hpp"
#include "tls_flags.hpp"

namespace {

// The routes: Go 1.22 patterns; anything else gets the mux's 404 or 405. GET /sleep/{ms}
// stands for a handler that blocks (a database call): it runs on the worker pool, so the loops
// keep serving everyone else meanwhile.
void add_routes(nbio::http::serve_mux& mux, nbio::thread_pool& pool) {
  mux.handle("GET /{$}",
             [](nbio::http::response_writer& w, nbio::http::request&) { w.write("hello\n"); });
  mux.handle("POST /echo", [](nbio::http::response_writer& w, nbio::http::request& r) {
    w.set_header("Content-Type", "application/octet-stream");
    w.write(r.body());
  });
  // A streamed body (server_options::stream_body picks this route): the handler runs at the
  // head, defers its answer and reads the body piece by piece.
  mux.handle("POST /upload", [](nbio::http::response_writer& w, nbio::http::request& r) {
    struct upload {
      nbio::http::deferred_response answer;
      std::uint64_t bytes = 0;
      std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a
    };
    auto u = std::make_shared<upload>(upload{w.defer()});
    r.on_body([u](std::string_view data, bool last, std::error_code ec) {
      for (unsigned char ch : data)
        u->hash = (u->hash ^ ch) * 0x100000001b3ull;
      u->bytes += data.size();
      if (!last || ec) return;  // on an error the client is gone or the connection closes
      char line[64];
      std::snprintf(line, sizeof(line), "%llu bytes, fnv1a %016llx\n",
                    static_cast<unsigned long long>(u->bytes),
                    static_cast<unsigned long long>(u->hash));
      u->answer.writer().write(line);
      u->answer.finish();
    });
  });
  mux.handle("GET /sleep/{ms}",
             nbio::http::on_pool(pool, [](nbio::http::response_writer& w, nbio::http::request& r) {
               const int ms = std::atoi(r.path_value("ms").c_str());
               std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp(ms, 0, 10'000)));
               w.write("slept " + std::to_string(ms) + " ms\n");
             }));
}

std::string host_port(const std::string& host, std::uint16_t port) {
  const bool bare_v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (bare_v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

int serve(const std::string& addr, const nbio::engine_options& config,
          const nbio::listen_options& options, const nbio::http::server_options& http, int index) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  nbio::engine eng(config);
  nbio::thread_pool pool(4);
  nbio::http::serve_mux mux;
  add_routes(mux, pool);
  nbio::http::server srv(eng, mux, http);
  std::string bound;
  try {
    bound = srv.listen(addr, options).local_address().to_string();
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "http_hello: %s\n", e.what());
    return 1;
  }
  eng.start();
  if (index <= 0) {
    std::printf("listening on %s\n", bound.c_str());
    std::fflush(stdout);
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  eng.shutdown(std::chrono::seconds(5));
  const nbio::http::server_stats stats = srv.stats();
  std::fprintf(stderr, "http_hello%s: %s: %llu requests served, %llu evicted over budget\n",
               index < 0 ? "" : (" worker " + std::to_string(index)).c_str(),
               strsignal(signal_number), static_cast<unsigned long long>(stats.requests_served),
               static_cast<unsigned long long>(stats.budget_evictions));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nbio HTTP hello server"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  nbio::engine_options config;
  nbio::listen_options options;
  std::string mode = "nonblocking";
  unsigned workers = 0;
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port; 0 picks a free one")->capture_default_str();
  app.add_option("--loops", config.loops, "event loop threads; 0 is one per core")
      ->capture_default_str();
  add_backend_flag(app, config);
  app.add_option("--io-mode", mode, "how connections are served (docs/io_modes.md)")
      ->check(CLI::IsMember({"nonblocking", "blocking", "mixed"}))
      ->capture_default_str();
  app.add_option("--workers", workers, "worker processes sharing the port (0: this process)")
      ->capture_default_str();
  nbio::http::server_options http;
  unsigned header_timeout_ms = 10'000, idle_timeout_ms = 60'000;
  app.add_option("--read-header-timeout-ms", header_timeout_ms,
                 "close a connection whose request head takes longer (slowloris)")
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", idle_timeout_ms, "close keep-alive connections idle longer")
      ->capture_default_str();
  std::size_t max_buffered_mib = http.max_buffered_bytes >> 20;
  app.add_option("--max-buffered-mib", max_buffered_mib,
                 "MiB all incomplete requests may hold together; 0: unlimited")
      ->capture_default_str();
  tls_flags tls;
  tls.add_server(app);
  CLI11_PARSE(app, argc, argv);
  options.tls = tls.server_context("http_hello", {"http/1.1"});
  if (workers > 0 && port == 0) {
    std::fprintf(stderr, "http_hello: --workers needs a fixed --port\n");
    return 2;
  }
  const std::map<std::string, nbio::io_mode> modes{{"nonblocking", nbio::io_mode::nonblocking},
                                                   {"blocking", nbio::io_mode::blocking},
                                                   {"mixed", nbio::io_mode::mixed}};
  options.mode = modes.at(mode);
  http.read_header_timeout = std::chrono::milliseconds(header_timeout_ms);
  http.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  http.max_buffered_bytes = max_buffered_mib << 20;
  http.stream_body = [](const nbio::http::request& r) { return r.path() == "/upload"; };

  // Blocked before any thread exists, so they stay pending for sigwait().
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string addr = host_port(host, port);
  if (workers == 0) return serve(addr, config, options, http, -1);
  const nbio::workers_result r = nbio::run_workers({.count = workers}, [&](unsigned index) {
    return serve(addr, config, options, http, static_cast<int>(index));
  });
  std::fprintf(stderr, "http_hello: %u workers started, %u restarted, %u crashed\n", r.started,
               r.restarted, r.crashed);
  return r.exit_code;
}
