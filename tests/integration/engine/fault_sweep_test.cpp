// Integration: fault injection sweeps (built only with NBIO_FAULT_INJECTION, as the ASan tree
// of scripts/test.sh is; docs/fault_injection.md). Each case runs one kind of session (TCP echo,
// HTTP keep-alive, WebSocket echo, TLS echo: 3 connections, a few messages, one of them large
// enough to queue) once to count the calls of each kind it makes, then once per point (kind, N,
// errno): the Nth call of that kind, on whichever side and connection makes it, fails with that
// errno. At every point:
//   - the session ends (no hang) and no connection receives a byte other than its echo;
//   - the connections the fault did not hit finish their exchange, byte for byte;
//   - EAGAIN and EINTR (and any accept4 failure: the listener retries) are retried: the whole
//     session completes;
//   - any other errno closes at most the one connection it hit, and (TCP and TLS, whose handlers
//     on both sides see on_close's error_code) the errno is what a handler was told, unless the
//     fault hit a connection no handler had seen yet (an accepted socket's registration, a
//     server's TLS handshake: its peer sees the connection end).
// Crashes, leaks and sanitizer reports fail the run by themselves (ASan tree). EAGAIN is swept
// with level-triggered loops: under edge triggering the engine relies on the kernel's promise
// that EAGAIN means "an edge will come", which an injected EAGAIN does not keep. epoll_ctl is
// swept in both modes (level-triggered loops modify registrations).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nbio/http/serve_mux.hpp"
#include "nbio/http/server.hpp"
#include "nbio/tls/context.hpp"
#include "nbio/websocket/client.hpp"
#include "nbio/websocket/server.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/test_certs.hpp"
#include "support/tool_run.hpp"
#include "support/wait.hpp"
#include "sys/fault.hpp"

namespace {

using namespace nbio_test;
namespace fault = nbio::detail::fault;
using fault::kind;

constexpr int clients = 3;
// A point that hangs is a failure; past this many the sweep stops (each costs the bound).
constexpr int max_hangs = 3;
constexpr auto session_bound = 5s;

// Loopback takes a megabyte in one send (the send buffer grows to megabytes at connect), so nothing
// would ever be queued. So the connections get a small send buffer, and a server connection
// stops reading once the first message came (hold) until its client has written the large one
// (release), which therefore meets full buffers: the write queue, and its allocations, take
// part in the session.
void small_send_buffer(nbio::conn& c) {
  const int size = 16 << 10;
  ::setsockopt(c.native_handle(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

class gate {
 public:
  void hold(nbio::conn& server_side) {
    server_side.pause_read();
    std::lock_guard lock(mu_);
    held_.push_back({server_side.remote_address().port(), server_side.handle()});
  }
  // On the client's side, after the large write, and on close (a held server connection
  // would otherwise wait for the end of the engine).
  void release(nbio::conn& client_side) {
    const std::uint16_t port = client_side.local_address().port();
    std::lock_guard lock(mu_);
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      if (it->first != port) continue;
      it->second.post([](nbio::conn& c) { c.resume_read(); });
      held_.erase(it);
      return;
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::uint16_t, nbio::conn_handle>> held_;
};

// What one session's handlers saw (loop threads write, the test thread reads).
struct outcome {
  std::mutex mu;
  int completed = 0;  // client connections that finished their exchange, byte for byte
  int wrong = 0;      // client connections that received bytes other than the expected ones
  int ended = 0;      // client connections that completed or failed (on_close or dial error)
  int server_opened = 0;
  int server_closed = 0;
  std::vector<std::error_code> causes;  // every error a handler was told, both sides
  gate held;

  void client_end(bool done, bool bad, std::error_code cause) {
    std::lock_guard lock(mu);
    ++ended;
    if (done) ++completed;
    if (bad) ++wrong;
    if (cause) causes.push_back(cause);
  }
  void server_open() {
    std::lock_guard lock(mu);
    ++server_opened;
  }
  void server_close(std::error_code cause) {
    std::lock_guard lock(mu);
    ++server_closed;
    if (cause) causes.push_back(cause);
  }
};

struct result {
  bool ended = false;
  int completed = 0, wrong = 0, server_opened = 0;
  int client_ended = 0, server_closed = 0;
  std::vector<std::error_code> causes;
  std::array<std::uint64_t, fault::kind_count> calls{};
  bool fired = false;
};

// Waits for the session to end (every client connection, and every server connection a
// handler saw open when `track_server`), then takes the counters and disarms: the teardown
// that follows is not part of the session.
result finish(outcome& o, bool track_server) {
  result r;
  r.ended = wait_until(
      [&] {
        std::lock_guard lock(o.mu);
        return o.ended == clients && (!track_server || o.server_closed == o.server_opened);
      },
      session_bound);
  for (int k = 0; k < fault::kind_count; ++k)
    r.calls[static_cast<std::size_t>(k)] = fault::calls(static_cast<kind>(k));
  r.fired = fault::fired();
  fault::disarm();
  std::lock_guard lock(o.mu);
  r.completed = o.completed;
  r.wrong = o.wrong;
  r.server_opened = o.server_opened;
  r.client_ended = o.ended;
  r.server_closed = o.server_closed;
  r.causes = o.causes;
  return r;
}

// --- an exchange driven by an engine-level client: TCP echo, TLS echo, raw HTTP ------------

enum class verdict { more, ok, wrong };

// Requests sent one at a time: the next once the answer to the one before checked ok.
struct exchange {
  std::vector<std::string> requests;
  std::function<verdict(std::size_t step, std::string_view got)> check;
};

struct exchange_client {
  outcome* o;
  const exchange* x;
  struct state {
    std::size_t step = 0;
    std::string got;
    bool done = false;
    bool wrong = false;
  };
  using conn_data = state;
  void on_open(nbio::conn& c) {
    small_send_buffer(c);
    c.write(x->requests[0]);
  }
  void on_data(nbio::conn& c, std::string_view d) {
    state& s = c.data<state>();
    if (s.done || s.wrong) return;
    s.got.append(d);
    switch (x->check(s.step, s.got)) {
      case verdict::more:
        return;
      case verdict::wrong:
        s.wrong = true;
        c.close();
        return;
      case verdict::ok:
        break;
    }
    s.got.clear();
    if (++s.step == x->requests.size()) {
      s.done = true;
      c.close();
      return;
    }
    c.write(x->requests[s.step]);
    if (s.step == 1) o->held.release(c);
  }
  void on_close(nbio::conn& c, std::error_code ec) {
    o->held.release(c);
    const state& s = c.data<state>();
    o->client_end(s.done, s.wrong, ec);
  }
};

void dial_clients(nbio::dialer& d, std::uint16_t port, outcome& o) {
  for (int i = 0; i < clients; ++i)
    d.dial("127.0.0.1:" + std::to_string(port),
           [&o](std::error_code ec, const std::string&) { o.client_end(false, false, ec); });
}

// Echo: each answer is the request, whole.
exchange echo_exchange(std::size_t large) {
  exchange x;
  x.requests = {"hello", random_payload(large, 1), "bye"};
  x.check = [reqs = x.requests](std::size_t step, std::string_view got) {
    const std::string& want = reqs[step];
    if (got.size() > want.size() || want.compare(0, got.size(), got) != 0) return verdict::wrong;
    return got.size() == want.size() ? verdict::ok : verdict::more;
  };
  return x;
}

struct echo_server {
  outcome* o;
  using conn_data = bool;  // held once
  void on_open(nbio::conn& c) {
    small_send_buffer(c);
    o->server_open();
  }
  void on_data(nbio::conn& c, std::string_view d) {
    if (!c.data<bool>()) {
      c.data<bool>() = true;
      o->held.hold(c);
    }
    c.write(d);
  }
  void on_close(nbio::conn&, std::error_code ec) { o->server_close(ec); }
};

struct tls_pair {
  std::shared_ptr<nbio::transport> server, client;
};

result run_echo(nbio::trigger_mode trigger, const std::function<void()>& start, const exchange& x,
                const tls_pair& tls, nbio::io_mode mode = nbio::io_mode::nonblocking) {
  outcome o;
  nbio::engine server({.loops = 2, .trigger = trigger});
  auto& l = server.listen("127.0.0.1:0", echo_server{&o}, {.mode = mode, .tls = tls.server});
  server.start();
  nbio::engine client({.loops = 2, .trigger = trigger});
  auto& d = client.make_dialer(exchange_client{&o, &x}, {.tls = tls.client});
  client.start();
  start();
  dial_clients(d, l.local_address().port(), o);
  result r = finish(o, true);
  client.stop();
  server.stop();
  return r;
}

// --- HTTP keep-alive: nbio's server, a raw client ---------------------------------------------

// Three requests on one connection: an echoed POST, a file (sendfile), an echoed POST. The
// answer's body must be exactly the expected one and nothing may follow it.
exchange http_exchange(const std::string& file_body) {
  exchange x;
  x.requests = {"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
                "GET /file HTTP/1.1\r\nHost: t\r\n\r\n",
                "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nbye"};
  std::vector<std::string> bodies = {"hello", file_body, "bye"};
  x.check = [bodies](std::size_t step, std::string_view got) {
    const std::size_t head_end = got.find("\r\n\r\n");
    if (head_end == std::string_view::npos) return verdict::more;
    std::string head(got.substr(0, head_end));
    if (head.rfind("HTTP/1.1 200 ", 0) != 0) return verdict::wrong;
    for (char& ch : head)
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const std::size_t cl = head.find("\r\ncontent-length:");
    if (cl == std::string::npos) return verdict::wrong;
    const std::size_t length = std::strtoul(head.c_str() + cl + 17, nullptr, 10);
    const std::string_view body = got.substr(head_end + 4);
    const std::string& want = bodies[step];
    if (length != want.size() || body.size() > want.size() ||
        want.compare(0, body.size(), body) != 0)
      return verdict::wrong;
    return body.size() == want.size() ? verdict::ok : verdict::more;
  };
  return x;
}

result run_http(nbio::trigger_mode trigger, const std::function<void()>& start, const exchange& x,
                int file_fd, std::uint64_t file_size) {
  outcome o;
  nbio::engine server({.loops = 2, .trigger = trigger});
  nbio::http::serve_mux mux;
  mux.handle("POST /echo", [](nbio::http::response_writer& w, const nbio::http::request& r) {
    w.write(r.body());
  });
  mux.handle("GET /file", [&](nbio::http::response_writer& w, const nbio::http::request&) {
    w.send_file(file_fd, 0, file_size);
  });
  nbio::http::server http(server, mux.as_handler());
  auto& l = http.listen("127.0.0.1:0");
  server.start();
  nbio::engine client({.loops = 2, .trigger = trigger});
  auto& d = client.make_dialer(exchange_client{&o, &x});
  client.start();
  start();
  dial_clients(d, l.local_address().port(), o);
  result r = finish(o, false);  // the HTTP handler API has no on_close
  client.stop();
  server.stop();
  return r;
}

// --- WebSocket echo: nbio's server and client ---------------------------------------------------

struct ws_echo {
  using conn_data = bool;  // held once
  outcome* o = nullptr;
  void on_message(nbio::websocket::connection& ws, std::string_view d, bool binary) {
    if (!ws.data<bool>()) {
      ws.data<bool>() = true;
      o->held.hold(ws.raw());
    }
    ws.send(d, binary);
  }
};

// Sends each message once the echo of the one before came back, then closes (1000).
struct ws_client {
  outcome* o = nullptr;
  std::vector<std::string> messages;
  struct conn_data {
    std::size_t step = 0;
    bool done = false;
    bool wrong = false;
  };
  void on_open(nbio::websocket::connection& ws) {
    small_send_buffer(ws.raw());
    ws.send(messages[0], true);
  }
  void on_message(nbio::websocket::connection& ws, std::string_view d, bool) {
    auto& s = ws.data<conn_data>();
    if (s.done || s.wrong) return;
    if (d != messages[s.step]) {
      s.wrong = true;
      ws.close(nbio::websocket::close_code::normal);
      return;
    }
    if (++s.step == messages.size()) {
      s.done = true;
      ws.close(nbio::websocket::close_code::normal);
      return;
    }
    ws.send(messages[s.step], true);
    if (s.step == 1) o->held.release(ws.raw());
  }
  void on_close(nbio::websocket::connection& ws, std::uint16_t code, std::string_view) {
    o->held.release(ws.raw());
    const conn_data& s = ws.data<conn_data>();
    // The handler API reports 1006 (no close frame came), not the errno: count it as a cause.
    o->client_end(
        s.done, s.wrong,
        code == 1006 ? std::make_error_code(std::errc::connection_aborted) : std::error_code());
  }
};

result run_ws(nbio::trigger_mode trigger, const std::function<void()>& start) {
  outcome o;
  ws_echo server_handler;
  server_handler.o = &o;
  ws_client client_handler;
  client_handler.o = &o;
  client_handler.messages = {"hello", random_payload(100'000, 2), "bye"};
  nbio::engine server({.loops = 2, .trigger = trigger});
  nbio::websocket::server ws(server, std::ref(server_handler));
  nbio::http::serve_mux mux;
  mux.handle("GET /ws", ws.upgrade());
  nbio::http::server http(server, mux);
  auto& l = http.listen("127.0.0.1:0");
  server.start();
  nbio::engine client({.loops = 2, .trigger = trigger});
  nbio::websocket::client cl(client, std::ref(client_handler));
  client.start();
  start();
  const std::string url = "ws://127.0.0.1:" + std::to_string(l.local_address().port()) + "/ws";
  for (int i = 0; i < clients; ++i)
    cl.connect(url, [&o](std::error_code ec) { o.client_end(false, false, ec); });
  result r = finish(o, false);
  client.stop();
  server.stop();
  return r;
}

// --- the sweep --------------------------------------------------------------------------------

using session = std::function<result(nbio::trigger_mode, const std::function<void()>&)>;

struct plan {
  kind k;
  std::vector<int> errs;
};
// The errnos each call can give (accept4(2), recv(2), send(2), epoll_ctl(2), sendfile(2)) that
// the engine must survive; the pool's "malloc failed" is ENOMEM.
const std::vector<plan>& plans() {
  static const std::vector<plan> p = {
      {kind::accept, {EMFILE, ENFILE, ENOBUFS, ENOMEM, EINTR, EAGAIN}},
      {kind::read, {ECONNRESET, ENOMEM, EINTR, EAGAIN}},
      {kind::write, {EPIPE, ECONNRESET, ENOBUFS, EINTR, EAGAIN}},
      {kind::epoll_ctl, {ENOMEM, ENOSPC}},
      {kind::sendfile, {EPIPE, ENOMEM, EINTR, EAGAIN}},
      {kind::alloc, {ENOMEM}},
  };
  return p;
}

std::vector<nbio::trigger_mode> modes_for(kind k, int err) {
  if (err == EAGAIN) return {nbio::trigger_mode::level};
  if (k == kind::epoll_ctl) return {nbio::trigger_mode::edge, nbio::trigger_mode::level};
  return {nbio::trigger_mode::edge};
}

bool retried(kind k, int err) {
  return err == EAGAIN || err == EINTR || k == kind::accept;
}

const char* mode_name(nbio::trigger_mode m) {
  return m == nbio::trigger_mode::edge ? "edge" : "level";
}

struct tally {
  std::size_t points = 0, fired = 0, completed = 0, reported = 0, unseen = 0, peer_only = 0;
  std::vector<std::string> failures;
};

bool reported(const result& r, int err) {
  for (const auto& ec : r.causes)
    if (ec == std::error_code(err, std::generic_category())) return true;
  return false;
}

// `strict`: handlers on both sides see error codes (TCP, TLS): a connection that failed must
// have told one of them the injected errno.
void check(const result& r, kind k, std::uint64_t n, int err, nbio::trigger_mode m, bool strict,
           tally& t) {
  char where[96];
  std::snprintf(where, sizeof where, "%s #%llu %s (%s-triggered)", fault::name(k),
                static_cast<unsigned long long>(n), std::strerror(err), mode_name(m));
  auto fail = [&](const std::string& what) {
    t.failures.push_back(std::string(where) + ": " + what);
  };
  ++t.points;
  if (!r.ended)
    return fail("the session did not end (hang): " + std::to_string(r.client_ended) +
                " client connections ended, " + std::to_string(r.completed) + " completed; " +
                std::to_string(r.server_closed) + " of " + std::to_string(r.server_opened) +
                " server connections closed");
  if (r.wrong) return fail(std::to_string(r.wrong) + " connection(s) received wrong bytes");
  const int failed = clients - r.completed;
  const bool seen = reported(r, err);
  if (!r.fired || retried(k, err)) {
    if (r.fired) ++t.fired;
    if (failed) return fail(std::to_string(failed) + " connection(s) failed where all complete");
    ++t.completed;
    return;
  }
  ++t.fired;
  if (failed > 1) return fail(std::to_string(failed) + " connections failed: one fault, one conn");
  if (seen)
    ++t.reported;
  else if (failed == 0)
    ++t.unseen;  // hit a best-effort write (TLS close_notify) or a connection already done
  else
    ++t.peer_only;
  if (strict && failed == 1 && !seen && r.server_opened == clients)
    fail("the failed connection's handlers were not told the errno");
}

void sweep(const char* label, const session& run, bool strict) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  tally t;
  int hangs = 0;
  // NBIO_FAULT_SWEEP_VERBOSE=1 names each point before it runs (to find the one that crashes).
  const char* v = std::getenv("NBIO_FAULT_SWEEP_VERBOSE");
  const bool verbose = v && *v == '1';
  for (nbio::trigger_mode m : {nbio::trigger_mode::edge, nbio::trigger_mode::level}) {
    const result base = run(m, [] { fault::reset(); });
    ASSERT_TRUE(base.ended && base.completed == clients && !base.wrong)
        << label << ": the session fails without a fault (" << mode_name(m) << ")";
    std::printf("fault sweep %s: calls of a session, %s-triggered:", label, mode_name(m));
    for (int k = 0; k < fault::kind_count; ++k)
      std::printf(" %s %llu", fault::name(static_cast<kind>(k)),
                  static_cast<unsigned long long>(base.calls[static_cast<std::size_t>(k)]));
    std::printf("\n");
    for (const plan& p : plans()) {
      const std::uint64_t count = base.calls[static_cast<std::size_t>(p.k)];
      for (int err : p.errs) {
        const auto modes = modes_for(p.k, err);
        if (std::find(modes.begin(), modes.end(), m) == modes.end()) continue;
        for (std::uint64_t n = 1; n <= count && hangs < max_hangs; ++n) {
          if (verbose)
            std::fprintf(stderr, "%s: %s #%llu %s (%s)\n", label, fault::name(p.k),
                         static_cast<unsigned long long>(n), std::strerror(err), mode_name(m));
          const result r = run(m, [&] { fault::arm(p.k, n, err); });
          if (!r.ended) ++hangs;
          check(r, p.k, n, err, m, strict, t);
        }
      }
    }
  }
  const double secs = std::chrono::duration<double>(clock::now() - t0).count();
  std::printf(
      "fault sweep %s: %zu points (kind x N x errno), %zu fired: %zu retried and completed, %zu "
      "errno told to a handler, %zu closed with the peer's view only, %zu without visible effect; "
      "%zu failed; %.1f s\n",
      label, t.points, t.fired, t.completed, t.reported, t.peer_only, t.unseen, t.failures.size(),
      secs);
  for (std::size_t i = 0; i < t.failures.size() && i < 30; ++i)
    ADD_FAILURE() << label << ": " << t.failures[i];
  EXPECT_TRUE(t.failures.empty()) << t.failures.size() << " failing points";
  EXPECT_LT(hangs, max_hangs) << "sweep stopped early after " << hangs << " hangs";
}

// Two faults in a row, which the sweep (one fault per session) cannot reach: an accept out of
// descriptors pauses the listener (it leaves the poller), then the registration that resumes it
// fails as well. The listener must try again on the next accept_retry, not stay deaf for good.
TEST(fault_sweep, a_listener_whose_resume_fails_resumes_on_the_next_retry) {
  struct echo {
    void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
  };
  // epoll's resume (an epoll_ctl that fails): on epoll whatever the run's NBIO_BACKEND. The
  // io_uring back-end re-arms its multishot accept instead, with no call that can fail here.
  ::unsetenv("NBIO_BACKEND");
  nbio::engine eng({.loops = 1, .accept_retry = 20ms});
  auto& l = eng.listen("127.0.0.1:0", echo{});
  eng.start();
  fault::reset();
  fault::arm(kind::accept, 1, EMFILE);
  auto fd = connect_stream(l.local_address());
  ASSERT_TRUE(fd) << std::strerror(errno);
  // The pause's epoll_ctl(DEL) is the first epoll_ctl after the arm (counters restart there);
  // the next one is the resume's epoll_ctl(ADD), and that one fails.
  ASSERT_TRUE(wait_until([] { return fault::fired() && fault::calls(kind::epoll_ctl) >= 1; }));
  fault::arm(kind::epoll_ctl, 1, ENOMEM);
  ASSERT_TRUE(wait_until([] { return fault::fired(); }));
  fault::disarm();
  ASSERT_TRUE(send_all(fd.get(), "still listening"));
  const read_result r = recv_exact(fd.get(), 15, 5s);
  EXPECT_EQ(r.data, "still listening") << "timed out: " << r.timed_out;
  eng.stop();
  fault::reset();
}

TEST(fault_sweep, tcp_echo_survives_every_failed_call) {
  const exchange x = echo_exchange(120'000);
  sweep(
      "tcp_echo",
      [&](nbio::trigger_mode m, const std::function<void()>& start) {
        return run_echo(m, start, x, {});
      },
      true);
}

// The server's connections on threads of their own (blocking_runner): its reads, direct writes
// and blocking waits meet the same faults.
TEST(fault_sweep, tcp_echo_with_a_blocking_mode_server_survives_every_failed_call) {
  const exchange x = echo_exchange(120'000);
  sweep(
      "tcp_echo_blocking",
      [&](nbio::trigger_mode m, const std::function<void()>& start) {
        return run_echo(m, start, x, {}, nbio::io_mode::blocking);
      },
      true);
}

TEST(fault_sweep, tls_echo_survives_every_failed_call) {
  const test_pki& pki = test_pki::get();
  const tls_pair tls{nbio::tls::context::server({.cert = {pki.server.chain, pki.server.key}}),
                     nbio::tls::context::client({.ca_file = pki.ca})};
  const exchange x = echo_exchange(100'000);
  sweep(
      "tls_echo",
      [&](nbio::trigger_mode m, const std::function<void()>& start) {
        return run_echo(m, start, x, tls);
      },
      true);
}

TEST(fault_sweep, http_keep_alive_survives_every_failed_call) {
  const std::string body = random_payload(200'000, 3);
  temp_file file(body);
  const int fd = ::open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const exchange x = http_exchange(body);
  sweep(
      "http_keep_alive",
      [&](nbio::trigger_mode m, const std::function<void()>& start) {
        return run_http(m, start, x, fd, body.size());
      },
      false);
  ::close(fd);
}

TEST(fault_sweep, websocket_echo_survives_every_failed_call) {
  sweep("websocket_echo", run_ws, false);
}

}  // namespace
