// ws_client: a WebSocket client on websocket::client.
//
//   ws_client URL [-m MESSAGE]... [--binary] [--wait N] [--timeout-ms MS] [--protocol P]
//             [--tls-ca FILE | --tls-insecure]
//
// Connects to URL (ws://host[:port][/path], or wss:// through TLS: the server is verified
// against the system's trust store, or --tls-ca; --tls-insecure skips the verification, for
// testing), sends each MESSAGE, prints every message received
// on stdout (one per line; binary ones as their size), and closes with 1000 once N messages
// came back (N defaults to the number sent) or the timeout passed. Exit 0 when the expected
// messages arrived, 1 on a connection or handshake error (printed on stderr) or a timeout.
#include <CLI/CLI.hpp>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <nbio/nbio.hpp>
#include <nbio/websocket/client.hpp>

#include "tls_flags.hpp"

namespace {

namespace ws = nbio::websocket;

struct printer {
  std::vector<std::string> to_send;
  bool binary = false;
  std::size_t wait_for = 0;
  std::mutex mutex;
  std::condition_variable cv;
  std::size_t received = 0;
  bool closed = false;
  std::uint16_t close_code = 0;

  void on_open(ws::connection& c) {
    std::fprintf(stderr, "connected%s%.*s\n", c.subprotocol().empty() ? "" : ", subprotocol ",
                 static_cast<int>(c.subprotocol().size()), c.subprotocol().data());
    for (const auto& m : to_send)
      c.send(m, binary);
    if (wait_for == 0) c.close();
  }
  void on_message(ws::connection& c, std::string_view data, bool is_binary) {
    if (is_binary)
      std::printf("[binary, %zu bytes]\n", data.size());
    else
      std::printf("%.*s\n", static_cast<int>(data.size()), data.data());
    std::fflush(stdout);
    std::lock_guard lock(mutex);
    if (++received == wait_for) c.close();
  }
  void on_close(ws::connection&, std::uint16_t code, std::string_view reason) {
    std::fprintf(stderr, "closed: %u%s%.*s\n", code, reason.empty() ? "" : " ",
                 static_cast<int>(reason.size()), reason.data());
    std::lock_guard lock(mutex);
    closed = true;
    close_code = code;
    cv.notify_all();
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nbio WebSocket client"};
  std::string url;
  printer p;
  int wait_for = -1;
  unsigned timeout_ms = 10'000;
  ws::endpoint_options options;
  app.add_option("url", url, "ws://host[:port][/path] or wss://...")->required();
  app.add_option("-m,--message", p.to_send, "a message to send (repeatable)");
  app.add_flag("--binary", p.binary, "send the messages as binary");
  app.add_option("--wait", wait_for, "messages to wait for (default: as many as sent)");
  app.add_option("--timeout-ms", timeout_ms, "give up after this long")->capture_default_str();
  app.add_option("--protocol", options.subprotocols, "subprotocols to offer");
  tls_flags tls;
  tls.add_client(app);
  CLI11_PARSE(app, argc, argv);
  options.tls = tls.client_context("ws_client", {"http/1.1"});
  p.wait_for = wait_for >= 0 ? static_cast<std::size_t>(wait_for) : p.to_send.size();

  nbio::engine eng({.loops = 1});
  ws::client cl(eng, std::ref(p), options);  // p is read after the run
  eng.start();
  std::error_code failure;
  cl.connect(url, [&](std::error_code ec) {
    std::lock_guard lock(p.mutex);
    failure = ec;
    p.closed = true;
    p.cv.notify_all();
  });
  bool done;
  {
    std::unique_lock lock(p.mutex);
    done = p.cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return p.closed; });
  }
  eng.stop();
  if (failure) {
    std::fprintf(stderr, "ws_client: %s\n", failure.message().c_str());
    return 1;
  }
  if (!done || p.received < p.wait_for) {
    std::fprintf(stderr, "ws_client: %zu of %zu messages before the %u ms timeout\n", p.received,
                 p.wait_for, timeout_ms);
    return 1;
  }
  return 0;
}
