// http_proxy: an HTTP proxy for CONNECT tunnels (how browsers and curl reach https:// and any
// other TCP service through a proxy), built on response_writer::hijack and a dialer.
//
//   http_proxy --host H --port P [--loops N] [--connect-timeout-ms MS]
//              [--tls-cert FILE --tls-key FILE]
//   curl -p -x http://127.0.0.1:P http://127.0.0.1:8080/      # -p: tunnel through CONNECT
//   curl -p -x https://localhost:P --proxy-cacert ca.pem http://127.0.0.1:8080/  # with --tls-*
//
// --tls-cert/--tls-key make it an HTTPS proxy: clients reach the proxy itself through TLS (ALPN
// http/1.1), and the tunnel carries whatever they send inside it (the targets are dialed
// plain: a tunnelled https:// request brings its own TLS, end to end).
// CONNECT host:port takes the connection away from HTTP (hijack) and dials the target on the
// same loop. Once connected the proxy answers "200 Connection established" and the two
// connections forward each other's bytes; when the target cannot be reached the answer is 502
// (504 on a connect timeout). Bytes the client sends before the tunnel is up are kept and
// forwarded first. Either side closing closes the other once what it sent is flushed. A side
// whose peer does not read has its own reading paused past 1 MiB queued until the peer drains:
// a fast sender cannot make the proxy buffer without bound. That needs the event loops' write
// queues, so the proxy serves in non-blocking mode only (in blocking mode a write blocks the
// connection's own thread while the other side keeps reading into its task queue). Other
// methods get 405.
// Prints "listening on H:P"; SIGINT or SIGTERM stops it.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include <nbio/http/server.hpp>
#include <nbio/nbio.hpp>

#include "backend_flag.hpp"
#include "tls_flags.hpp"

namespace {

// One end of a tunnel: the client's hijacked connection or the dialed one to the target. Each
// holds a handle to the other (both ends live on the same loop, where dispatch() runs at once).
struct tunnel_end {
  struct conn_data {
    nbio::conn_handle peer;
    std::string* early = nullptr;  // client side: bytes that came before the target connected
    bool peer_paused = false;      // this end's queue is full: its peer stopped reading
  };
  static constexpr std::size_t high_water = 1u << 20;

  void on_data(nbio::conn& c, std::string_view d) {
    auto& st = c.data<conn_data>();
    if (!st.peer) {  // the target is not connected yet
      if (!st.early) st.early = new std::string;
      st.early->append(d);
      return;
    }
    // The peer writes, and pauses this end when its own queue passes the mark.
    st.peer.dispatch([bytes = std::string(d), from = c.handle()](nbio::conn& p) {
      p.write(bytes);
      auto& ps = p.data<conn_data>();
      if (!ps.peer_paused && p.queued_bytes() > high_water) {
        ps.peer_paused = true;
        from.dispatch([](nbio::conn& f) { f.pause_read(); });
      }
    });
  }
  void on_drained(nbio::conn& c) {
    auto& st = c.data<conn_data>();
    if (!st.peer_paused) return;
    st.peer_paused = false;
    st.peer.dispatch([](nbio::conn& p) { p.resume_read(); });
  }
  void on_close(nbio::conn& c, std::error_code) {
    auto& st = c.data<conn_data>();
    delete st.early;
    st.early = nullptr;
    if (st.peer) st.peer.close_after_flush();
  }
};

// CONNECT's answer once the target is (or is not) reached.
constexpr std::string_view established = "HTTP/1.1 200 Connection established\r\n\r\n";

std::string failure(std::error_code ec) {
  const bool timeout = ec == nbio::errc::connect_timeout;
  std::string body =
      (timeout ? "504 Gateway Timeout: " : "502 Bad Gateway: ") + ec.message() + "\n";
  return std::string("HTTP/1.1 ") + (timeout ? "504 Gateway Timeout" : "502 Bad Gateway") +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// The target answered: each end learns the other, the client hears 200, and what it sent early
// goes first.
void tunnel_up(nbio::conn& target, nbio::conn_handle client) {
  target.data<tunnel_end::conn_data>().peer = client;
  const std::error_code gone = client.dispatch([t = target.handle()](nbio::conn& cl) {
    auto& st = cl.data<tunnel_end::conn_data>();
    st.peer = t;
    cl.write(established);
    if (st.early) {
      t.write(*st.early);
      delete st.early;
      st.early = nullptr;
    }
    cl.resume_read();
  });
  if (gone) target.close();  // the client left while the target was being reached
}

struct proxy {
  nbio::upgrade_target* client_side;
  nbio::dialer* targets;

  void operator()(nbio::http::response_writer& w, nbio::http::request& r) const {
    if (r.method() != "CONNECT") {
      w.set_header("Allow", "CONNECT");
      w.write_header(405);
      w.write("405 Method Not Allowed: this proxy tunnels CONNECT host:port only\n");
      return;
    }
    const std::string target(r.target());  // authority-form: host:port (checked by the parser)
    nbio::dialer* dialer = targets;
    w.hijack(*client_side, [target, dialer](nbio::conn& c) {
      c.pause_read();  // until the tunnel is up; early bytes wait in the kernel or `early`
      const nbio::conn_handle client = c.handle();
      const int loop = static_cast<int>(c.owner_loop().index());
      dialer->dial(
          target, [client](nbio::conn& t) { tunnel_up(t, client); },
          [client](std::error_code ec, const std::string&) {
            client.dispatch([ec](nbio::conn& cl) {
              cl.write(failure(ec));
              cl.close_after_flush();
            });
          },
          {}, loop);
    });
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nbio CONNECT proxy"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  nbio::engine_options config;
  unsigned connect_timeout_ms = 10'000;
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port; 0 picks a free one")->capture_default_str();
  app.add_option("--loops", config.loops, "event loop threads; 0 is one per core")
      ->capture_default_str();
  add_backend_flag(app, config);
  app.add_option("--connect-timeout-ms", connect_timeout_ms, "give up on a target after this long")
      ->capture_default_str();
  tls_flags tls;
  tls.add_server(app);
  CLI11_PARSE(app, argc, argv);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  nbio::engine eng(config);
  // Tunnels idle for 5 minutes are closed, as nginx's proxy_timeout does by default (10 min).
  const nbio::conn_options tunnel_opts{.idle_timeout = std::chrono::minutes(5)};
  nbio::upgrade_target& client_side = eng.make_upgrade_target(tunnel_end{}, tunnel_opts);
  nbio::dialer& targets = eng.make_dialer(
      tunnel_end{},
      {.connect_timeout = std::chrono::milliseconds(connect_timeout_ms), .conn = tunnel_opts});
  // The handler carries the room a hijacked connection needs, so the listener reserves it.
  nbio::http::server srv(
      eng, nbio::http::handler(proxy{&client_side, &targets}, client_side.slot_bytes()));
  nbio::listen_options options;
  options.tls = tls.server_context("http_proxy", {"http/1.1"});
  std::string bound;
  try {
    const bool bare_v6 = host.find(':') != std::string::npos && host.front() != '[';
    bound = srv.listen((bare_v6 ? "[" + host + "]" : host) + ":" + std::to_string(port), options)
                .local_address()
                .to_string();
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "http_proxy: %s\n", e.what());
    return 1;
  }
  eng.start();
  std::printf("listening on %s\n", bound.c_str());
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  eng.stop();
  return 0;
}
