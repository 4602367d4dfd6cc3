#include "load_client.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <mutex>
#include <nbio/nbio.hpp>
#include <string>
#include <thread>
#include <vector>

#include "load_mode.hpp"

namespace nbio_load {

namespace {

using steady = std::chrono::steady_clock;

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
          .count());
}

double seconds_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

// Written by one loop only (a relaxed load and store, no locked instruction), read by the run
// thread for the progress line; the histogram is read only after the loops are joined.
struct alignas(64) loop_tally {
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> replies{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> handshakes{0};  // --tls
  std::atomic<std::uint64_t> resumed{0};
  latency_histogram latency;
  // --ramp-first: the connections that carry messages, with their share, sent at the go.
  std::vector<std::pair<nbio::conn_handle, std::uint32_t>> waiting;

  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

// Shared by the handlers of one worker.
struct client_state {
  const load_mode* mode = nullptr;
  std::uint64_t connections = 0;
  std::uint64_t in_flight = 0;
  bool ramp_first = false;
  bool tls = false;
  // tls-handshake: every connection closes at its reply and the slot dials again, from the
  // connection's loop, with the same dialer, targets and error handler.
  bool reconnects = false;
  nbio::dialer* dialer = nullptr;
  const std::vector<std::string>* remotes = nullptr;
  const std::vector<std::string>* sources = nullptr;
  std::uint64_t first_connection = 0;
  std::atomic<std::uint64_t> dials{0};  // dials started (the global numbering's offset)
  nbio::dialer::error_handler on_dial_error;
  std::atomic<std::uint64_t> up{0};
  std::atomic<std::uint64_t> established{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> closed_early{0};
  std::atomic<std::uint64_t> open_order{0};  // numbers connections as they open
  // Messages that may still be sent; max() when --messages is not set.
  std::atomic<std::int64_t> budget{std::numeric_limits<std::int64_t>::max()};
  std::atomic<bool> draining{false};  // no new messages
  std::atomic<bool> stopping{false};  // closes from now on are ours
  std::deque<loop_tally> loops;       // deque: loop_tally holds atomics, never moves
  std::mutex error_mutex;
  std::string first_error;

  void note_error(std::string what) {
    std::lock_guard lock(error_mutex);
    if (first_error.empty()) first_error = std::move(what);
  }
  std::uint64_t sum(std::atomic<std::uint64_t> loop_tally::*field) const {
    std::uint64_t n = 0;
    for (const auto& l : loops)
      n += (l.*field).load(std::memory_order_relaxed);
    return n;
  }
};

void dial(client_state& s, int loop_index);

struct load_handler {
  struct conn_data {
    std::uint64_t mode_state = 0;  // the mode's parse state (load_mode::scan)
    std::uint64_t timed_ns = 0;    // when the timed request was sent
    std::uint32_t sent = 0;
    std::uint32_t received = 0;
    std::uint32_t timed_seq = 0;  // `sent` count of the timed request; 0: none timed
    bool opened = false;
  };
  static_assert(sizeof(conn_data) <= 32, "nbio-load keeps per-connection state small");

  client_state* s;

  void send(nbio::conn& c, conn_data& d) {
    if (s->draining.load(std::memory_order_relaxed)) return;
    if (s->budget.fetch_sub(1, std::memory_order_relaxed) <= 0) return;
    ++d.sent;
    if (d.timed_seq == 0) {
      d.timed_seq = d.sent;
      d.timed_ns = now_ns();
    }
    const std::string_view request = s->mode->request();
    auto& tally = s->loops[c.owner_loop().index()];
    loop_tally::add(tally.sent, 1);
    loop_tally::add(tally.bytes_out, request.size());
    if (auto ec = c.write(request)) c.close(ec);
  }

  void on_open(nbio::conn& c) {
    auto& d = c.data<conn_data>();
    d.opened = true;
    ++s->up;
    if (s->tls && !s->draining.load(std::memory_order_relaxed)) {
      auto& tally = s->loops[c.owner_loop().index()];
      loop_tally::add(tally.handshakes, 1);
      if (nbio::tls::resumed(c)) loop_tally::add(tally.resumed, 1);
    }
    if (s->reconnects) {
      ++s->established;
      return send(c, d);  // the one request (timed from the dial: see dial())
    }
    if (const std::string_view g = s->mode->greeting(); !g.empty()) {
      loop_tally::add(s->loops[c.owner_loop().index()].bytes_out, g.size());
      if (auto ec = c.write(g)) return c.close(ec);
    }
    if (s->mode->sends()) open_traffic(c);
    ++s->established;  // last: the run thread's settle check orders `waiting` before its read
  }

  void open_traffic(nbio::conn& c) {
    // A fixed share of the total in flight: the first (in_flight % connections) to open carry
    // one more.
    const std::uint64_t order = s->open_order.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t window =
        s->in_flight / s->connections + (order < s->in_flight % s->connections ? 1 : 0);
    if (s->ramp_first) {
      // Before ++established below, which the run thread reads before it reads `waiting`.
      if (window > 0)
        s->loops[c.owner_loop().index()].waiting.emplace_back(c.handle(),
                                                              static_cast<std::uint32_t>(window));
      return;
    }
    start_traffic(c, window);
  }

  void start_traffic(nbio::conn& c, std::uint64_t window) {
    auto& d = c.data<conn_data>();
    for (std::uint64_t i = 0; i < window && c.is_open(); ++i)
      send(c, d);
  }

  void protocol_error(nbio::conn& c, const char* what) {
    ++s->closed_early;
    std::string e(what);
    e += " from ";
    e += c.remote_address().to_string();
    s->note_error(std::move(e));
    c.close();
  }

  void on_data(nbio::conn& c, std::string_view bytes) {
    auto& d = c.data<conn_data>();
    auto& tally = s->loops[c.owner_loop().index()];
    loop_tally::add(tally.bytes_in, bytes.size());
    const reply_scan r = s->mode->scan(d.mode_state, bytes);
    if (r.error) return protocol_error(c, "unexpected bytes");
    if (r.replies > d.sent - d.received) return protocol_error(c, "reply without a request");
    loop_tally::add(tally.replies, r.replies);
    if (s->reconnects) {  // the one reply: the cycle is done, on_close dials again
      if (r.replies > 0) {
        ++d.received;
        tally.latency.record(now_ns() - d.timed_ns);
        c.close();
      }
      return;
    }
    for (std::uint32_t i = 0; i < r.replies && c.is_open(); ++i) {
      ++d.received;
      if (d.timed_seq == d.received) {
        tally.latency.record(now_ns() - d.timed_ns);
        d.timed_seq = 0;
      }
      send(c, d);
    }
  }

  void on_close(nbio::conn& c, std::error_code cause) {
    auto& d = c.data<conn_data>();
    if (!d.opened) return;
    --s->up;
    if (s->reconnects && !s->draining.load(std::memory_order_relaxed))
      dial(*s, static_cast<int>(c.owner_loop().index()));
    if (!s->stopping && cause != nbio::errc::local_close) {
      ++s->closed_early;
      std::string e("closed by ");
      e += c.remote_address().to_string();
      e += ": ";
      e += cause.message();
      s->note_error(std::move(e));
    }
  }
};

// tls-handshake: one more connect of a slot. The dial's time goes into conn_data (on_connect
// runs before on_open), so the latency recorded at the reply is the whole connection's: TCP
// connect, handshake, request and response.
void dial(client_state& s, int loop_index) {
  const std::uint64_t g = s.first_connection + s.dials.fetch_add(1, std::memory_order_relaxed);
  const std::size_t port = g % s.remotes->size();
  const std::size_t source = (g / s.remotes->size()) % s.sources->size();
  s.dialer->dial((*s.remotes)[port],
                 [t = now_ns()](nbio::conn& c) {
                   auto& d = c.data<load_handler::conn_data>();
                   d.timed_seq = 1;
                   d.timed_ns = t;
                 },
                 s.on_dial_error, (*s.sources)[source], loop_index);
}

void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

load_client::load_client(load_options options) : options_(std::move(options)) {}

load_result load_client::run(const progress_fn& on_progress,
                             const std::function<bool()>& stop_requested,
                             const std::function<bool()>& go_requested) {
  const load_options& o = options_;
  load_result result;
  result.connections = o.connections;
  if (o.connections == 0) return result;
  raise_fd_limit();

  const auto mode = make_load_mode(o);
  client_state s;
  s.mode = mode.get();
  s.connections = o.connections;
  s.in_flight = mode->sends() ? o.in_flight : 0;
  s.ramp_first = o.ramp_first;
  s.tls = o.tls;
  s.reconnects = o.reconnects();
  if (o.messages) s.budget = static_cast<std::int64_t>(o.messages);

  // HTTP and WebSocket offer ALPN "http/1.1" as a browser would; the others offer none.
  std::shared_ptr<nbio::tls::context> tls;
  if (o.tls) {
    std::vector<std::string> alpn;
    if (o.mode != "idle" && o.mode != "tcp-echo") alpn.emplace_back("http/1.1");
    tls = nbio::tls::context::client({.verify = !o.tls_insecure,
                                      .ca_file = o.tls_ca,
                                      .alpn = std::move(alpn),
                                      .session_reuse = o.tls_resume});
  }

  nbio::engine eng({.loops = o.loops,
                    .backend = o.backend == "io_uring" ? nbio::io_backend::io_uring
                               : o.backend == "auto"   ? nbio::io_backend::automatic
                                                       : nbio::io_backend::epoll,
                    .uring_buffers = o.uring_buffers});
  for (std::size_t i = 0; i < eng.loop_count(); ++i)
    s.loops.emplace_back();
  nbio::dialer& dialer = eng.make_dialer(
      load_handler{&s},
      {.connect_timeout = std::chrono::milliseconds(o.connect_timeout_ms), .conn = {}, .tls = tls});
  std::vector<std::string> remotes, sources;
  for (std::size_t p = 0; p < o.ports.size(); ++p)
    remotes.push_back(o.remote(p));
  for (unsigned k = 1; k <= std::max(1u, o.source_ips); ++k)
    sources.push_back(o.source(k));
  auto on_error = [&s](std::error_code ec, const std::string& to) {
    if (s.stopping) return;  // a dial the end of the run cut short (tls-handshake redials)
    ++s.failed;
    std::string e("connect ");
    e += to;
    e += ": ";
    e += ec.message();
    s.note_error(std::move(e));
    // tls-handshake: a failed connect or handshake ends the slot's cycle too; once the target
    // has answered at all, dial again (the failure is counted).
    if (s.reconnects && !s.draining.load(std::memory_order_relaxed) && s.established > 0)
      dial(s, -1);
  };
  s.dialer = &dialer;
  s.remotes = &remotes;
  s.sources = &sources;
  s.first_connection = o.first_connection;
  s.on_dial_error = on_error;

  bool ramped = false;  // --ramp-first: every connect settled, waiting for the go
  auto progress_now = [&] {
    load_progress p;
    p.up = s.up;
    p.established = s.established;
    p.failed = s.failed;
    p.errors = s.failed + s.closed_early;
    p.messages = s.sum(&loop_tally::replies);
    p.ramped = ramped;
    return p;
  };
  auto next_report = steady::now() + std::chrono::seconds(1);
  // The run thread only paces connects and watches the clock: 1 ms steps while it dials,
  // 10 ms otherwise (with 50 worker processes, 1 ms steps alone cost 50,000 wake-ups a second).
  bool dialing = true;
  auto tick = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(dialing ? 1 : 10));
    if (steady::now() < next_report) return;
    next_report += std::chrono::seconds(1);
    if (on_progress) on_progress(progress_now());
  };

  eng.start();
  const auto start = steady::now();
  // Without --ramp-first the duration counts from the first connect and bounds the connects too;
  // with it, the connects have --ramp-timeout and the duration counts from the go.
  auto traffic_start = start;
  auto time_is_up = [&] {
    if (stop_requested()) return true;
    if (o.ramp_first && !ramped) return seconds_since(start) >= o.ramp_timeout_s;
    return seconds_since(traffic_start) >= o.duration_s;
  };

  // Connect. A target that refuses the first connects (and accepts none) ends the run early
  // instead of trying every one of them.
  const std::uint64_t give_up_after = std::min<std::uint64_t>(o.connections, 16);
  std::uint64_t dialed = 0;
  bool unreachable = false;
  while (dialed < o.connections && !time_is_up()) {
    const std::uint64_t settled = s.established + s.failed;
    if (s.established == 0 && s.failed >= give_up_after) {
      unreachable = true;
      break;
    }
    std::uint64_t allowed = o.connections;
    if (o.connect_rate > 0)
      allowed = std::min<std::uint64_t>(
          allowed, static_cast<std::uint64_t>(seconds_since(start) * o.connect_rate) + 1);
    for (; dialed < allowed && dialed - settled < o.connect_window; ++dialed) {
      if (s.reconnects) {
        dial(s, -1);
        continue;
      }
      const std::uint64_t g = o.first_connection + dialed;
      const std::size_t port = g % remotes.size();
      const std::size_t source = (g / remotes.size()) % sources.size();
      dialer.dial(remotes[port], on_error, sources[source]);
    }
    tick();
  }
  dialing = false;
  while (s.established + s.failed < dialed && !stop_requested())
    tick();  // bounded by the connect timeout
  result.connect_seconds = seconds_since(start);

  if (o.ramp_first) {
    // Say so at once (the parent waits for every worker), then hold until the go.
    ramped = true;
    if (on_progress) on_progress(progress_now());
    while (!unreachable && s.up > 0 && !stop_requested() && go_requested && !go_requested())
      tick();
    traffic_start = steady::now();
    for (auto& l : s.loops)
      for (const auto& [handle, window] : l.waiting)
        handle.dispatch([&s, w = window](nbio::conn& c) { load_handler{&s}.start_traffic(c, w); });
  }

  // Traffic (or holding): until the duration passes, the messages are done or all is lost.
  auto done = [&] {
    if (unreachable || time_is_up()) return true;
    if (s.up == 0 && !s.reconnects) return true;  // tls-handshake: between a close and a dial
    return o.messages > 0 && s.sum(&loop_tally::replies) >= o.messages;
  };
  while (!done())
    tick();
  result.run_seconds = seconds_since(start);
  result.traffic_seconds = seconds_since(traffic_start);

  // Let the messages in flight come back, so the counts on both sides agree.
  s.draining = true;
  const auto drain_start = steady::now();
  while (s.up > 0 && s.sum(&loop_tally::sent) > s.sum(&loop_tally::replies) &&
         seconds_since(drain_start) < 2.0 && !stop_requested())
    tick();
  s.stopping = true;
  eng.stop();  // joins the loops: their tallies are final

  result.established = s.established;
  result.failed = s.failed;
  result.closed_early = s.closed_early;
  result.messages_sent = s.sum(&loop_tally::sent);
  result.messages = s.sum(&loop_tally::replies);
  result.bytes_out = s.sum(&loop_tally::bytes_out);
  result.bytes_in = s.sum(&loop_tally::bytes_in);
  result.handshakes = s.sum(&loop_tally::handshakes);
  result.resumed = s.sum(&loop_tally::resumed);
  for (const auto& l : s.loops)
    result.latency.merge(l.latency);
  result.first_error = s.first_error;
  return result;
}

}  // namespace nbio_load
