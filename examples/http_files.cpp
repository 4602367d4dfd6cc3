// http_files: a static file server on nbio::http::file_server.
//
//   http_files --host H --port P --root DIR [--prefix /static/] [--list] [--cache-control V]
//              [--loops N] [--io-mode nonblocking|blocking|mixed]
//              [--tls-cert FILE --tls-key FILE]
//
// Serves the files under DIR at --prefix (default "/"): GET and HEAD, conditional requests,
// single ranges, index.html for directories (--list: a listing when there is none). Paths
// outside the prefix get 404, other methods 405 (a serve_mux with one Go 1.22 pattern).
// --tls-cert/--tls-key serve HTTPS (ALPN http/1.1). Prints "listening on H:P" once it serves (P
// is the bound port when --port is 0); SIGINT or SIGTERM shuts down gracefully.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

#include <nbio/http/file_server.hpp>
#include <nbio/http/serve_mux.hpp>
#include <nbio/http/server.hpp>
#include <nbio/nbio.hpp>

#include "backend_flag.hpp"
#include "tls_flags.hpp"

int main(int argc, char** argv) {
  CLI::App app{"nbio static file server"};
  std::string host = "127.0.0.1", root, prefix = "/", mode = "nonblocking";
  std::uint16_t port = 0;
  nbio::engine_options config;
  nbio::http::file_server_options files;
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port; 0 picks a free one")->capture_default_str();
  app.add_option("--root", root, "the directory to serve")->required();
  app.add_option("--prefix", prefix, "the URL path the files appear under")->capture_default_str();
  app.add_flag("--list", files.list_directories, "list directories that have no index.html");
  app.add_option("--cache-control", files.cache_control, "Cache-Control of file responses");
  app.add_option("--loops", config.loops, "event loop threads; 0 is one per core")
      ->capture_default_str();
  add_backend_flag(app, config);
  app.add_option("--io-mode", mode, "how connections are served (docs/io_modes.md)")
      ->check(CLI::IsMember({"nonblocking", "blocking", "mixed"}))
      ->capture_default_str();
  tls_flags tls;
  tls.add_server(app);
  CLI11_PARSE(app, argc, argv);
  if (prefix.empty() || prefix.front() != '/') prefix.insert(0, "/");
  if (prefix.back() != '/') prefix += '/';
  files.strip_prefix = prefix;
  const std::map<std::string, nbio::io_mode> modes{{"nonblocking", nbio::io_mode::nonblocking},
                                                   {"blocking", nbio::io_mode::blocking},
                                                   {"mixed", nbio::io_mode::mixed}};
  nbio::listen_options options;
  options.mode = modes.at(mode);
  options.tls = tls.server_context("http_files", {"http/1.1"});

  // Blocked before any thread exists, so they stay pending for sigwait().
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  nbio::engine eng(config);
  nbio::http::serve_mux mux;
  std::string bound;
  try {
    mux.handle("GET " + prefix, nbio::http::file_server(root, files));
    nbio::http::server srv(eng, mux);
    const bool bare_v6 = host.find(':') != std::string::npos && host.front() != '[';
    const std::string addr = (bare_v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    bound = srv.listen(addr, options).local_address().to_string();
    eng.start();
    std::printf("listening on %s\n", bound.c_str());
    std::fflush(stdout);
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    eng.shutdown(std::chrono::seconds(5));
    std::fprintf(stderr, "http_files: %s: %llu requests served\n", strsignal(signal_number),
                 static_cast<unsigned long long>(srv.requests_served()));
  } catch (const std::exception& e) {  // a bad --root or --prefix, or the address in use
    std::fprintf(stderr, "http_files: %s\n", e.what());
    return 1;
  }
  return 0;
}
