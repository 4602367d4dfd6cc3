// Integration: faults against a TLS listener and certificates nbio's client must refuse. Every
// fault on the server side is followed by a check that the listener's other, established TLS
// connections still echo: one bad peer costs only its own connection.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <nbio/tls/context.hpp>

#include "support/event_log.hpp"
#include "support/raw_socket.hpp"
#include "support/test_certs.hpp"
#include "support/test_server.hpp"
#include "support/tls_peer.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

bool has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// A real ClientHello, as OpenSSL's client writes it (TLS 1.2 and 1.3 offered, SNI localhost).
std::string client_hello() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);  // WANT_READ, with the ClientHello written
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  std::string hello(data, static_cast<std::size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return hello;
}

// A TLS echo listener with a short handshake timeout and two witnesses connected to it.
class tls_faults : public ::testing::Test {
 protected:
  static nbio::tls::server_options config() {
    const test_pki& pki = test_pki::get();
    return {.cert = {pki.server.chain, pki.server.key}, .handshake_timeout = 250ms};
  }
  void SetUp() override {
    ASSERT_TRUE(w.ok()) << w.describe();
    ASSERT_TRUE(w.echoing()) << w.describe();
    ASSERT_TRUE(wait_until([&] { return tls->stats().handshakes == 2; }));
  }
  std::uint64_t failed() const { return tls->stats().failed; }
  // Server-side connections open now (the witnesses are two of them).
  std::uint64_t online() { return server.engine().stats().total.online; }

  event_log<std::error_code> closed;
  std::shared_ptr<nbio::tls::context> tls = nbio::tls::context::server(config());
  test_server server{tls_echo_handler{nullptr, &closed}, {.tls = tls}};
  tls_witnesses w{server.address().port(), 2};
};

TEST_F(tls_faults, plaintext_http_is_refused_and_counted) {
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_all(fd.get(), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  // OpenSSL's reason is "http request": no TLS alert is sent for it, the connection just ends.
  const read_result r = recv_until_eof(fd.get(), 5s);
  EXPECT_FALSE(r.timed_out) << "the server kept a plaintext connection open";
  EXPECT_TRUE(r.eof || r.error == ECONNRESET) << r.error;
  EXPECT_FALSE(has(r.data, "HTTP/")) << r.data;
  EXPECT_TRUE(wait_until([&] { return failed() == 1; })) << "failed " << failed();
  EXPECT_TRUE(wait_until([&] { return online() == 2; })) << online();
  EXPECT_EQ(closed.size(), 0u) << "a failed handshake reached the handler's on_close";
  EXPECT_TRUE(w.echoing()) << w.describe();
}

TEST_F(tls_faults, garbage_after_a_client_hello_header_is_refused_with_an_alert) {
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(fd);
  // A handshake record holding a ClientHello of 508 bytes, its body random.
  std::string bytes = {'\x16', '\x03', '\x01', '\x02', '\x00', '\x01',
                       '\x00', '\x01', '\xfc', '\x03', '\x03'};
  std::mt19937 rng(42);
  while (bytes.size() < 5 + 512)
    bytes.push_back(static_cast<char>(rng() & 0xff));
  ASSERT_TRUE(send_all(fd.get(), bytes));
  const read_result r = recv_until_eof(fd.get(), 5s);
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(r.eof || r.error == ECONNRESET) << r.error;
  // A fatal alert record (content type 21) before the close.
  ASSERT_GE(r.data.size(), 7u);
  EXPECT_EQ(r.data[0], '\x15');
  EXPECT_EQ(r.data[5], '\x02') << "not a fatal alert";
  EXPECT_TRUE(wait_until([&] { return failed() == 1; })) << "failed " << failed();
  EXPECT_TRUE(wait_until([&] { return online() == 2; })) << online();
  EXPECT_TRUE(w.echoing()) << w.describe();
}

TEST_F(tls_faults, a_handshake_cut_off_midway_frees_its_connection) {
  const std::string hello = client_hello();
  ASSERT_GT(hello.size(), 100u);
  ASSERT_EQ(hello[0], '\x16');
  for (std::size_t cut : {std::size_t{3}, std::size_t{60}, hello.size() - 1, hello.size()}) {
    SCOPED_TRACE("cut after " + std::to_string(cut) + " of " + std::to_string(hello.size()));
    unique_fd fd = connect_stream(server.address());
    ASSERT_TRUE(fd);
    ASSERT_TRUE(send_all(fd.get(), hello.substr(0, cut)));
    fd.reset();
    EXPECT_TRUE(wait_until([&] { return online() == 2; })) << online();
  }
  EXPECT_EQ(closed.size(), 0u);
  EXPECT_EQ(tls->stats().handshakes, 2u);
  EXPECT_TRUE(w.echoing()) << w.describe();
}

TEST_F(tls_faults, a_cut_off_handshake_counts_as_failed) {
  const std::string hello = client_hello();
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(send_all(fd.get(), hello.substr(0, 60)));
  fd.reset();
  EXPECT_TRUE(wait_until([&] { return failed() == 1; })) << "failed " << failed();
}

TEST_F(tls_faults, a_client_that_never_finishes_is_closed_after_the_handshake_timeout) {
  const std::string hello = client_hello();
  // One sends nothing, one half a ClientHello, one a whole ClientHello and then nothing more.
  std::vector<unique_fd> fds;
  for (std::size_t n : {std::size_t{0}, hello.size() / 2, hello.size()}) {
    fds.push_back(connect_stream(server.address()));
    ASSERT_TRUE(fds.back());
    ASSERT_TRUE(send_all(fds.back().get(), hello.substr(0, n)));
  }
  for (auto& fd : fds) {
    const read_result r = recv_until_eof(fd.get(), 10s);
    EXPECT_FALSE(r.timed_out) << "still open after 10 s (handshake_timeout 250 ms)";
    EXPECT_TRUE(r.eof || r.error == ECONNRESET) << r.error;
  }
  EXPECT_TRUE(wait_until([&] { return online() == 2; })) << online();
  EXPECT_EQ(closed.size(), 0u) << "a timed-out handshake reached on_close";
  EXPECT_EQ(tls->stats().handshakes, 2u);
  EXPECT_TRUE(w.echoing()) << w.describe();
}

TEST_F(tls_faults, timed_out_handshakes_count_as_failed) {
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(fd);
  const read_result r = recv_until_eof(fd.get(), 10s);
  EXPECT_TRUE(r.eof);
  EXPECT_TRUE(wait_until([&] { return failed() == 1; })) << "failed " << failed();
}

TEST_F(tls_faults, tls12_renegotiation_is_refused) {
  tls_peer p(s_client_args(server.address().port(), {"-tls1_2"}));
  ASSERT_TRUE(p.wait_for("Verify return code: 0 (ok)")) << p.output();
  ASSERT_TRUE(p.send("before\n"));
  ASSERT_TRUE(p.wait_for("before")) << p.output();
  // "R" asks s_client to renegotiate: the server answers the new ClientHello with a
  // no_renegotiation warning, which s_client takes as fatal ("no renegotiation") and quits.
  ASSERT_TRUE(p.send("R\n"));
  ASSERT_TRUE(p.wait_for("RENEGOTIATING")) << p.output();
  EXPECT_NE(p.wait_exit(), -1) << p.output();
  EXPECT_TRUE(has(p.output(), "no renegotiation")) << p.output();
  // No second handshake happened on the server.
  EXPECT_EQ(tls->stats().handshakes, 3u);
  EXPECT_TRUE(wait_until([&] { return online() == 2; })) << online();
  EXPECT_TRUE(w.echoing()) << w.describe();
}

TEST_F(tls_faults, a_client_that_only_speaks_tls12_against_a_tls13_only_server) {
  const test_pki& pki = test_pki::get();
  auto strict = nbio::tls::context::server(
      {.cert = {pki.server.chain, pki.server.key}, .min_version = nbio::tls::version::tls1_3});
  test_server s13(tls_echo_handler{}, {.tls = strict});
  auto old =
      nbio::tls::context::client({.ca_file = pki.ca, .max_version = nbio::tls::version::tls1_2});
  const dial_outcome o = tls_dial(old, "localhost:" + std::to_string(s13.address().port()), "x", 1);
  EXPECT_TRUE(o.refused) << describe(o);
  EXPECT_FALSE(o.opened);
  EXPECT_EQ(o.cause.category(), nbio::tls::tls_category()) << describe(o);
  EXPECT_TRUE(has(o.cause.message(), "protocol version")) << describe(o);
  EXPECT_TRUE(wait_until([&] { return strict->stats().failed == 1; }));
  EXPECT_TRUE(w.echoing()) << w.describe();
}

// --- certificates nbio's client refuses --------------------------------------------------------

TEST(tls_client_names, an_ip_address_dial_needs_the_ip_in_the_certificate) {
  const test_pki& pki = test_pki::get();
  // other.test / *.wild.test: no IP subjectAltName.
  test_server other(
      tls_echo_handler{},
      {.tls = nbio::tls::context::server({.cert = {pki.other_host.chain, pki.other_host.key}})});
  const std::string port = std::to_string(other.address().port());
  const dial_outcome o =
      tls_dial(nbio::tls::context::client({.ca_file = pki.ca}), "127.0.0.1:" + port, "x", 1);
  EXPECT_TRUE(o.refused) << describe(o);
  EXPECT_TRUE(nbio::tls::is_verify_error(o.cause)) << describe(o);
  EXPECT_TRUE(has(o.cause.message(), "IP address mismatch")) << describe(o);
  // The server certificate lists 127.0.0.1 and ::1: both dials pass.
  test_server good(
      tls_echo_handler{},
      {.tls = nbio::tls::context::server({.cert = {pki.server.chain, pki.server.key}})},
      two_loops(), "[::1]:0");
  const dial_outcome v6 = tls_dial(nbio::tls::context::client({.ca_file = pki.ca}),
                                   "[::1]:" + std::to_string(good.address().port()), "six", 3);
  EXPECT_EQ(v6.reply, "six") << describe(v6);
}

TEST(tls_client_names, server_name_overrides_the_dialed_host) {
  const test_pki& pki = test_pki::get();
  test_server other(
      tls_echo_handler{},
      {.tls = nbio::tls::context::server({.cert = {pki.other_host.chain, pki.other_host.key}})});
  const std::string port = std::to_string(other.address().port());
  struct name_case {
    const char* server_name;
    const char* remote_host;
    const char* refusal;  // null: accepted
  };
  for (const name_case& c : {name_case{"other.test", "127.0.0.1", nullptr},
                             name_case{"a.wild.test", "localhost", nullptr},
                             name_case{"wrong.test", "127.0.0.1", "hostname mismatch"},
                             name_case{"b.a.wild.test", "127.0.0.1", "hostname mismatch"},
                             name_case{"", "localhost", "hostname mismatch"}}) {
    SCOPED_TRACE(std::string("server_name '") + c.server_name + "' dialing " + c.remote_host);
    auto cli = nbio::tls::context::client({.ca_file = pki.ca, .server_name = c.server_name});
    const dial_outcome o = tls_dial(cli, std::string(c.remote_host) + ":" + port, "hello", 5);
    if (!c.refusal) {
      EXPECT_EQ(o.reply, "hello") << describe(o);
      EXPECT_TRUE(has(o.seen.subject, "CN=other.test")) << o.seen.subject;
    } else {
      EXPECT_TRUE(o.refused) << describe(o);
      EXPECT_TRUE(nbio::tls::is_verify_error(o.cause)) << describe(o);
      EXPECT_TRUE(has(o.cause.message(), c.refusal)) << describe(o);
    }
  }
}

TEST(tls_client_names, verify_false_accepts_any_certificate) {
  const test_pki& pki = test_pki::get();
  test_server bad(
      tls_echo_handler{},
      {.tls = nbio::tls::context::server({.cert = {pki.expired.chain, pki.expired.key}})});
  auto lax = nbio::tls::context::client({.verify = false});
  const dial_outcome o =
      tls_dial(lax, "127.0.0.1:" + std::to_string(bad.address().port()), "ok", 2);
  EXPECT_EQ(o.reply, "ok") << describe(o);
}

TEST(tls_client_handshake, a_server_that_never_answers_ends_the_dial_with_handshake_timeout) {
  // A TCP listener that never accepts: the kernel completes the connection, nobody speaks TLS.
  unique_fd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(l);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(l.get(), 16), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(l.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  auto cli =
      nbio::tls::context::client({.ca_file = test_pki::get().ca, .handshake_timeout = 250ms});
  const dial_outcome o =
      tls_dial(cli, "127.0.0.1:" + std::to_string(ntohs(a.sin_port)), "x", 1, 10s);
  EXPECT_TRUE(o.done) << describe(o);
  EXPECT_TRUE(o.refused) << describe(o);
  EXPECT_FALSE(o.opened);
  EXPECT_EQ(o.cause, nbio::errc::handshake_timeout) << describe(o);
}

}  // namespace
