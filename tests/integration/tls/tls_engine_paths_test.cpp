// Integration: the engine's connection paths with TLS underneath, on nbio's record layer (the
// server's TLS 1.3 connections after the hand-off) and, as `openssl`, with the hand-off off
// (OpenSSL's record layer, as TLS 1.2 and clients always have): send_file (read and
// encrypted record by record instead of sendfile) in order with writes around it, pause_read /
// resume_read in the middle of a stream, rebind onto another handler in the middle of a read,
// a handshake budget of one per loop turn under a burst of handshakes, and context::reload()
// while connections are live.
#include <gtest/gtest.h>

#include <fcntl.h>

#include <atomic>
#include <mutex>
#include <random>
#include <string>

#include <nbio/tls/context.hpp>

#include "support/event_log.hpp"
#include "support/io_mode_name.hpp"
#include "support/test_certs.hpp"
#include "support/test_server.hpp"
#include "support/tls_peer.hpp"
#include "support/tool_run.hpp"
#include "support/unique_fd.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

bool has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& ch : s)
    ch = static_cast<char>(rng() & 0xff);
  return s;
}

std::shared_ptr<nbio::tls::context> server_tls(bool handoff = true) {
  const test_pki& pki = test_pki::get();
  return nbio::tls::context::server(
      {.cert = {pki.server.chain, pki.server.key}, .handoff = handoff});
}

std::shared_ptr<nbio::tls::context> client_tls() {
  return nbio::tls::context::client({.ca_file = test_pki::get().ca});
}

// Where a dial from tls_dial() finds the listener.
std::string remote_of(const test_server& s) {
  return "localhost:" + std::to_string(s.address().port());
}

// Reports the first mismatch of a long byte string instead of printing megabytes.
std::string first_difference(const std::string& got, const std::string& want) {
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i])
    ++i;
  return "got " + std::to_string(got.size()) + " bytes, want " + std::to_string(want.size()) +
         ", first difference at " + std::to_string(i);
}

// The ways the listener serves its connections: event loops (edge- or level-triggered),
// blocking threads, mixed (the first connection on a thread); and event loops with the server's
// connections left on OpenSSL after the handshake (server_options::handoff off).
struct path_mode {
  nbio::io_mode io;
  nbio::trigger_mode trigger;
  const char* name;
  bool handoff = true;
};
constexpr path_mode edge{nbio::io_mode::nonblocking, nbio::trigger_mode::edge, "edge"};
constexpr path_mode level{nbio::io_mode::nonblocking, nbio::trigger_mode::level, "level"};
constexpr path_mode blocking{nbio::io_mode::blocking, nbio::trigger_mode::edge, "blocking"};
constexpr path_mode mixed{nbio::io_mode::mixed, nbio::trigger_mode::edge, "mixed"};
constexpr path_mode openssl{nbio::io_mode::nonblocking, nbio::trigger_mode::edge, "openssl", false};

void PrintTo(const path_mode& m, std::ostream* os) {
  *os << m.name;
}

class tls_paths : public ::testing::TestWithParam<path_mode> {
 protected:
  nbio::listen_options listen() const {
    nbio::listen_options o = listen_for(GetParam().io);
    o.tls = server_tls(GetParam().handoff);
    return o;
  }
  nbio::engine_options engine() const { return {.loops = 2, .trigger = GetParam().trigger}; }
};

// --- send_file ---------------------------------------------------------------------------------

struct file_sender {
  int fd;
  std::uint64_t size;
  void on_open(nbio::conn& c) {
    EXPECT_FALSE(c.write("BEGIN\n"));
    EXPECT_FALSE(c.send_file(fd, 0, size));
    EXPECT_FALSE(c.write("MIDDLE\n"));
    EXPECT_FALSE(c.send_file(fd, 1000, 70'000));  // a piece from inside, not record-aligned
    EXPECT_FALSE(c.write("END\n"));
  }
};

TEST_P(tls_paths, send_file_then_writes_arrive_byte_exact_and_in_order) {
  const std::string content = random_bytes((3u << 20) + 12'345, 7);
  temp_file file(content);
  unique_fd fd(::open(file.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  test_server server(file_sender{fd.get(), content.size()}, listen(), engine());
  const std::string want =
      "BEGIN\n" + content + "MIDDLE\n" + content.substr(1000, 70'000) + "END\n";
  const dial_outcome o = tls_dial(client_tls(), remote_of(server), "", want.size(), 30s);
  EXPECT_TRUE(o.opened) << describe(o);
  EXPECT_TRUE(o.reply == want) << first_difference(o.reply, want);
}

// As file_sender, for a reader that does not read yet: the file waits in the write queue (in
// non-blocking mode) while the writes after it are made. Reports when its on_open is done (in
// blocking mode: when it starts, since its writes block until the reader reads).
struct queued_file_sender {
  int fd;
  std::uint64_t size;
  event_log<std::size_t>* queued;  // queued_bytes() after the writes (0 in blocking mode)
  bool close_after = false;        // then close_after_flush(): the close_notify goes last
  void on_open(nbio::conn& c) {
    if (c.is_blocking()) queued->push(0);
    EXPECT_FALSE(c.write("BEGIN\n"));
    EXPECT_FALSE(c.send_file(fd, 0, size));
    EXPECT_FALSE(c.write("MIDDLE\n"));
    EXPECT_FALSE(c.send_file(fd, 1000, 70'000));
    EXPECT_FALSE(c.write("END\n"));
    if (!c.is_blocking()) queued->push(c.queued_bytes());
    if (close_after) c.close_after_flush();
  }
};

// A TLS client that does not read until the test resumes it.
struct late_reader {
  struct shared {
    std::mutex mu;
    std::string got;
    event_log<nbio::conn_handle> opened;
    event_log<std::error_code> closed;
    std::size_t size() {
      std::lock_guard lock(mu);
      return got.size();
    }
  };
  shared* s;
  void on_open(nbio::conn& c) {
    c.pause_read();
    s->opened.push(c.handle());
  }
  void on_data(nbio::conn&, std::string_view d) {
    std::lock_guard lock(s->mu);
    s->got.append(d);
  }
  void on_close(nbio::conn&, std::error_code ec) { s->closed.push(ec); }
};

// Sends the file and the writes to a reader that starts late; true when all arrived in order.
void send_file_to_a_late_reader(const nbio::listen_options& options,
                                const nbio::engine_options& config, bool close_after) {
  const std::string content = random_bytes(8u << 20, 9);
  temp_file file(content);
  unique_fd fd(::open(file.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  event_log<std::size_t> queued;
  test_server server(queued_file_sender{fd.get(), content.size(), &queued, close_after}, options,
                     config);
  late_reader::shared got;
  nbio::engine client({.loops = 1});
  auto& d = client.make_dialer(late_reader{&got}, {.tls = client_tls()});
  client.start();
  d.dial(remote_of(server));
  ASSERT_TRUE(got.opened.wait_for_size(1, 10s));
  ASSERT_TRUE(queued.wait_for_size(1, 10s));
  if (options.mode == nbio::io_mode::nonblocking) {
    // 8 MiB do not fit in the socket buffers of a reader that does not read.
    EXPECT_GT(queued.snapshot()[0], 0u) << "the file did not wait in the queue";
  }
  EXPECT_FALSE(got.opened.snapshot()[0].dispatch([](nbio::conn& c) { c.resume_read(); }));
  const std::string want =
      "BEGIN\n" + content + "MIDDLE\n" + content.substr(1000, 70'000) + "END\n";
  if (close_after) {
    // Everything, then the close_notify: the end of the stream (errc::eof), not an error.
    ASSERT_TRUE(got.closed.wait_for_size(1, 30s));
    EXPECT_EQ(got.closed.snapshot()[0], nbio::errc::eof) << got.closed.snapshot()[0].message();
  } else {
    EXPECT_TRUE(
        wait_until([&] { return got.size() >= want.size() || got.closed.size() > 0; }, 30s));
    for (const auto& ec : got.closed.snapshot())
      ADD_FAILURE() << "the client's connection closed: " << ec.message();
  }
  std::lock_guard lock(got.mu);
  EXPECT_TRUE(got.got == want) << first_difference(got.got, want);
}

TEST_P(tls_paths, send_file_queued_behind_a_slow_reader_keeps_the_writes_after_it_in_order) {
  send_file_to_a_late_reader(listen(), engine(), false);
}

TEST_P(tls_paths, send_file_then_close_after_flush_ends_with_close_notify_after_the_file) {
  send_file_to_a_late_reader(listen(), engine(), true);
}

// --- pause_read / resume_read ------------------------------------------------------------------

// Echoes, pausing after every delivery and resuming from a task posted to the connection: each
// pause falls in the middle of a read (a read holds several TLS records).
struct pause_each_echo {
  std::atomic<int>* pauses;
  void on_data(nbio::conn& c, std::string_view d) {
    // Counted before the echo: once the client has the whole reply, every delivery is counted
    // (counting after the write let the test read 63 of 64 under ASan).
    pauses->fetch_add(1);
    c.write(d);
    c.pause_read();
    c.handle().post([](nbio::conn& pc) { pc.resume_read(); });
  }
};

TEST_P(tls_paths, pausing_after_every_delivery_loses_nothing) {
  std::atomic<int> pauses{0};
  test_server server(pause_each_echo{&pauses}, listen(), engine());
  const std::string payload = random_bytes(1u << 20, 11);
  const dial_outcome o = tls_dial(client_tls(), remote_of(server), payload, payload.size(), 30s);
  EXPECT_TRUE(o.reply == payload) << first_difference(o.reply, payload)
                                  << " (cause: " << o.cause.message() << ")";
  // A TLS record holds at most 16 KiB of plaintext: at least 64 deliveries, each paused.
  EXPECT_GE(pauses.load(), 64);
}

// Pauses once past `at` bytes and hands the connection to the test thread, which resumes it.
struct pause_once_echo {
  struct shared {
    std::atomic<std::size_t> received{0};
    event_log<nbio::conn_handle> paused;
  };
  shared* s;
  std::size_t at;
  using conn_data = bool;  // paused already
  void on_data(nbio::conn& c, std::string_view d) {
    c.write(d);
    const std::size_t total = s->received.fetch_add(d.size()) + d.size();
    if (total >= at && !c.data<bool>()) {
      c.data<bool>() = true;
      c.pause_read();
      s->paused.push(c.handle());
    }
  }
};

TEST_P(tls_paths, a_pause_mid_stream_holds_the_rest_until_resume) {
  pause_once_echo::shared s;
  test_server server(pause_once_echo{&s, 256u << 10}, listen(), engine());
  const std::string payload = random_bytes(1u << 20, 13);
  std::thread resumer([&] {
    if (!s.paused.wait_for_size(1, 20s)) return;
    // While paused, nothing more is delivered, whatever OpenSSL or the socket holds.
    const std::size_t at_pause = s.received.load();
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(s.received.load(), at_pause) << "delivered while paused";
    EXPECT_FALSE(s.paused.snapshot()[0].dispatch([](nbio::conn& c) {
      EXPECT_TRUE(c.read_paused());
      c.resume_read();
    }));
  });
  const dial_outcome o = tls_dial(client_tls(), remote_of(server), payload, payload.size(), 30s);
  resumer.join();
  EXPECT_TRUE(o.reply == payload) << first_difference(o.reply, payload);
  EXPECT_EQ(s.paused.size(), 1u);
}

// --- rebind ------------------------------------------------------------------------------------

// After the switch: announces itself, then echoes.
struct switched {
  void on_open(nbio::conn& c) { c.write("[switched]"); }
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
};

// Before the switch: echoes up to a "SWITCH\n" line, then moves the connection onto `to` with
// the rest of the read.
struct switching {
  std::atomic<nbio::upgrade_target*>* to;
  event_log<std::error_code>* rebinds;
  void on_data(nbio::conn& c, std::string_view d) {
    const auto at = d.find("SWITCH\n");
    if (at == std::string_view::npos) {
      c.write(d);
      return;
    }
    c.write(d.substr(0, at));
    rebinds->push(c.rebind(*to->load(), d.substr(at + 7)));
  }
};

TEST_P(tls_paths, rebind_mid_read_keeps_plaintext_flowing_to_the_new_handler) {
  std::atomic<nbio::upgrade_target*> to{nullptr};
  event_log<std::error_code> rebinds;
  nbio::engine eng(engine());
  to = &eng.make_upgrade_target(switched{});
  auto& l = eng.listen("127.0.0.1:0", switching{&to, &rebinds}, listen());
  eng.start();
  const std::string before(1000, 'b');
  const std::string after = random_bytes(512u << 10, 17);
  // One write: the switch line sits inside the first TLS record, the rest follows in the same
  // record and in many more.
  const std::string want = before + "[switched]" + after;
  const dial_outcome o =
      tls_dial(client_tls(), "localhost:" + std::to_string(l.local_address().port()),
               before + "SWITCH\n" + after, want.size(), 30s);
  EXPECT_TRUE(o.reply == want) << first_difference(o.reply, want);
  ASSERT_EQ(rebinds.size(), 1u);
  EXPECT_FALSE(rebinds.snapshot()[0]) << rebinds.snapshot()[0].message();
}

// --- shutdown_write (half-close) ----------------------------------------------------------------

// Answers "done" with a reply and its close_notify (shutdown_write), then reads on.
struct half_closing_server {
  event_log<std::string>* got;
  using conn_data = std::string;
  void on_data(nbio::conn& c, std::string_view d) {
    auto& all = c.data<std::string>();
    all.append(d);
    if (all == "done\n") {
      EXPECT_FALSE(c.write("reply\n"));
      c.shutdown_write();
    }
  }
  void on_close(nbio::conn& c, std::error_code ec) {
    got->push(c.data<std::string>() + "|" + (ec == nbio::errc::eof ? "eof" : ec.message()));
  }
};

// Sends "done"; at the server's close_notify sends "late" and ends its own side.
struct half_closing_client {
  event_log<std::string>* got;
  using conn_data = std::string;
  void on_open(nbio::conn& c) { c.write("done\n"); }
  void on_data(nbio::conn& c, std::string_view d) { c.data<std::string>().append(d); }
  void on_end(nbio::conn& c) {
    c.data<std::string>().append("<end>");
    EXPECT_FALSE(c.write("late\n"));
    c.shutdown_write();
  }
  void on_close(nbio::conn& c, std::error_code ec) {
    got->push(c.data<std::string>() + "|" + (ec == nbio::errc::eof ? "eof" : ec.message()));
  }
};

TEST_P(tls_paths, shutdown_write_sends_close_notify_and_the_other_direction_stays_open) {
  event_log<std::string> server_got, client_got;
  test_server server(half_closing_server{&server_got}, listen(), engine());
  nbio::engine client({.loops = 1});
  auto& d = client.make_dialer(half_closing_client{&client_got}, {.tls = client_tls()});
  client.start();
  d.dial(remote_of(server));
  ASSERT_TRUE(server_got.wait_for_size(1, 10s));
  ASSERT_TRUE(client_got.wait_for_size(1, 10s));
  // Each side read the other's bytes, then its close_notify as the end of the stream.
  EXPECT_EQ(client_got.snapshot()[0], "reply\n<end>|eof");
  EXPECT_EQ(server_got.snapshot()[0], "done\nlate\n|eof");
}

INSTANTIATE_TEST_SUITE_P(modes, tls_paths, ::testing::Values(edge, level, blocking, mixed, openssl),
                         [](const ::testing::TestParamInfo<path_mode>& info) {
                           return std::string(info.param.name);
                         });

// --- handshakes_per_turn -----------------------------------------------------------------------

struct counting_round_trip {
  event_log<std::string>* replies;
  event_log<std::error_code>* failures;
  using conn_data = std::string;
  void on_open(nbio::conn& c) { c.write("through the budget\n"); }
  void on_data(nbio::conn& c, std::string_view d) {
    auto& got = c.data<std::string>();
    got.append(d);
    if (got.size() >= 19) {
      replies->push(got);
      c.close();
    }
  }
  void on_close(nbio::conn& c, std::error_code ec) {
    if (c.data<std::string>().size() < 19) failures->push(ec);
  }
};

TEST(tls_handshake_budget, fifty_concurrent_handshakes_all_finish_at_one_per_turn) {
  auto tls = server_tls();
  test_server server(tls_echo_handler{}, {.tls = tls}, {.loops = 1, .handshakes_per_turn = 1});
  event_log<std::string> replies;
  event_log<std::error_code> failures;
  nbio::engine client(two_loops());
  auto& d = client.make_dialer(counting_round_trip{&replies, &failures}, {.tls = client_tls()});
  client.start();
  constexpr std::size_t n = 50;
  for (std::size_t i = 0; i < n; ++i)
    d.dial(remote_of(server), [&](std::error_code ec, const std::string&) { failures.push(ec); });
  EXPECT_TRUE(wait_until([&] { return replies.size() + failures.size() >= n; }, 30s))
      << replies.size() << " replies, " << failures.size() << " failures";
  for (const auto& ec : failures.snapshot())
    ADD_FAILURE() << ec.message();
  EXPECT_EQ(replies.size(), n);
  for (const auto& r : replies.snapshot())
    EXPECT_EQ(r, "through the budget\n");
  EXPECT_EQ(tls->stats().handshakes, n);
  EXPECT_EQ(tls->stats().failed, 0u);
}

// --- reload ------------------------------------------------------------------------------------

TEST(tls_reload, live_connections_keep_echoing_and_new_handshakes_get_the_new_certificate) {
  const test_pki& pki = test_pki::get();
  const cert_files& rsa = pki.server_rsa();
  auto tls = server_tls();  // ECDSA
  test_server server(tls_echo_handler{}, {.tls = tls});
  tls_witnesses live(server.address().port(), 3);
  ASSERT_TRUE(live.ok()) << live.describe();
  ASSERT_TRUE(live.echoing()) << live.describe();

  // TLS 1.2 without session reuse shows the certificate's key type in the cipher's name.
  auto full12 = nbio::tls::context::client(
      {.ca_file = pki.ca, .max_version = nbio::tls::version::tls1_2, .session_reuse = false});
  // Contexts that keep the session tickets they get before the reload.
  auto keep13 = client_tls();
  auto keep12 =
      nbio::tls::context::client({.ca_file = pki.ca, .max_version = nbio::tls::version::tls1_2});
  dial_outcome o = tls_dial(full12, remote_of(server), "a", 1);
  EXPECT_TRUE(has(o.seen.cipher, "ECDSA")) << o.seen.cipher << " " << describe(o);
  EXPECT_EQ(tls_dial(keep13, remote_of(server), "b", 1).reply, "b");
  EXPECT_EQ(tls_dial(keep12, remote_of(server), "c", 1).reply, "c");

  // A configuration that does not load throws and changes nothing.
  EXPECT_THROW(tls->reload({.cert = {pki.dir + "/missing.pem", pki.dir + "/missing.key"}}),
               std::system_error);
  o = tls_dial(full12, remote_of(server), "d", 1);
  EXPECT_TRUE(has(o.seen.cipher, "ECDSA")) << o.seen.cipher << " " << describe(o);

  tls->reload({.cert = {rsa.chain, rsa.key}});
  EXPECT_TRUE(live.echoing()) << live.describe();
  o = tls_dial(full12, remote_of(server), "e", 1);
  EXPECT_EQ(o.reply, "e") << describe(o);
  EXPECT_TRUE(has(o.seen.cipher, "ECDHE-RSA")) << o.seen.cipher;
  EXPECT_FALSE(o.seen.resumed);
  // Tickets issued before the reload still resume (the ticket keys carried over).
  o = tls_dial(keep13, remote_of(server), "f", 1);
  EXPECT_EQ(o.reply, "f") << describe(o);
  EXPECT_TRUE(o.seen.resumed) << "TLS 1.3 ticket from before the reload";
  o = tls_dial(keep12, remote_of(server), "g", 1);
  EXPECT_EQ(o.reply, "g") << describe(o);
  EXPECT_TRUE(o.seen.resumed) << "TLS 1.2 ticket from before the reload";
  EXPECT_TRUE(live.echoing()) << live.describe();
  EXPECT_EQ(tls->stats().failed, 0u);
}

TEST(tls_reload, openssl_s_client_sees_the_new_certificate_after_a_reload) {
  const test_pki& pki = test_pki::get();
  auto tls = server_tls();
  test_server server(tls_echo_handler{}, {.tls = tls});
  {
    tls_peer p(s_client_args(server.address().port(), {"-servername", "localhost"}));
    ASSERT_TRUE(p.wait_for("Verify return code: 0 (ok)")) << p.output();
    EXPECT_TRUE(has(p.output(), "Server public key is 256 bit")) << p.output();
    p.close_stdin();
    p.wait_exit();
  }
  // Reloaded onto the other certificate, with SNI and ALPN changed too.
  tls->reload({.cert = {pki.server_rsa().chain, pki.server_rsa().key},
               .sni = {{pki.other_host.chain, pki.other_host.key}},
               .alpn = {"h2"}});
  {
    tls_peer p(s_client_args(server.address().port(), {"-servername", "localhost", "-alpn", "h2"}));
    ASSERT_TRUE(p.wait_for("Verify return code: 0 (ok)")) << p.output();
    EXPECT_TRUE(has(p.output(), "Server public key is 2048 bit")) << p.output();
    EXPECT_TRUE(has(p.output(), "ALPN protocol: h2")) << p.output();
    p.close_stdin();
    p.wait_exit();
  }
  {
    tls_peer p(s_client_args(server.address().port(), {"-servername", "x.wild.test"}));
    ASSERT_TRUE(p.wait_for("Verify return code: 0 (ok)")) << p.output();
    EXPECT_TRUE(has(p.output(), "CN = other.test")) << p.output();
    p.close_stdin();
    p.wait_exit();
  }
}

}  // namespace
