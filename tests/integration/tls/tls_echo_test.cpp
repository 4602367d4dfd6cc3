// Integration: TLS under the engine: our dialer's client context against our listener's server
// context, in every I/O mode, and certificates the client must refuse.
#include <gtest/gtest.h>

#include <string>

#include <nbio/tls/context.hpp>

#include "support/event_log.hpp"
#include "support/io_mode_name.hpp"
#include "support/test_certs.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

struct echo {
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
};

struct outcome {
  event_log<std::string> replies;
  event_log<std::error_code> failures;
  event_log<std::string> alpn;
};

// Sends `message` once the handshake is done; reports the echo.
struct round_trip {
  outcome* r;
  std::string message;
  using conn_data = std::string;
  void on_open(nbio::conn& c) {
    r->alpn.push(std::string(nbio::tls::alpn(c)));
    c.write(message);
  }
  void on_data(nbio::conn& c, std::string_view d) {
    auto& got = c.data<std::string>();
    got.append(d);
    if (got.size() >= message.size()) {
      r->replies.push(got);
      c.close();
    }
  }
  void on_close(nbio::conn& c, std::error_code ec) {
    if (c.data<std::string>().size() < message.size()) r->failures.push(ec);
  }
};

nbio::tls::server_options server_cfg(const cert_files& cert) {
  return {.cert = {cert.chain, cert.key}};
}

class tls_echo : public ::testing::TestWithParam<nbio::io_mode> {};

TEST_P(tls_echo, a_message_round_trips_through_the_handshake_and_back) {
  const test_pki& pki = test_pki::get();
  nbio::engine server(two_loops());
  auto& l = server.listen(
      "127.0.0.1:0", echo{},
      {.mode = GetParam(), .tls = nbio::tls::context::server(server_cfg(pki.server))});
  server.start();
  outcome r;
  nbio::engine client(two_loops());
  std::string message(100'000, 'x');
  for (std::size_t i = 0; i < message.size(); ++i)
    message[i] = static_cast<char>('a' + i % 26);
  auto& d = client.make_dialer(
      round_trip{&r, message},
      {.tls = nbio::tls::context::client({.ca_file = pki.ca, .alpn = {"http/1.1"}})});
  client.start();
  const std::string port = std::to_string(l.local_address().port());
  d.dial("127.0.0.1:" + port, [&](std::error_code ec, const std::string&) { r.failures.push(ec); });
  d.dial("localhost:" + port, [&](std::error_code ec, const std::string&) { r.failures.push(ec); });
  ASSERT_TRUE(wait_until([&] { return r.replies.size() + r.failures.size() >= 2; }))
      << "replies " << r.replies.size() << " failures " << r.failures.size() << " alpn "
      << r.alpn.size() << " server in/out " << server.stats().total.bytes_in << "/"
      << server.stats().total.bytes_out << " client in/out " << client.stats().total.bytes_in << "/"
      << client.stats().total.bytes_out << " online " << server.stats().total.online << "/"
      << client.stats().total.online;
  for (const auto& f : r.failures.snapshot())
    ADD_FAILURE() << f.message();
  for (const auto& got : r.replies.snapshot())
    EXPECT_EQ(got, message);
  for (const auto& a : r.alpn.snapshot())
    EXPECT_EQ(a, "http/1.1");
}

INSTANTIATE_TEST_SUITE_P(modes, tls_echo,
                         ::testing::Values(nbio::io_mode::nonblocking, nbio::io_mode::blocking,
                                           nbio::io_mode::mixed),
                         io_mode_name);

TEST(tls_client, refuses_expired_wrong_host_and_untrusted_certificates) {
  const test_pki& pki = test_pki::get();
  struct bad {
    const cert_files* cert;
    const char* expect;
  };
  for (const bad& b : {bad{&pki.expired, "expired"}, bad{&pki.wrong_host, "mismatch"},
                       bad{&pki.foreign, "unable to get local issuer"}}) {
    nbio::engine server(two_loops());
    auto& l = server.listen("127.0.0.1:0", echo{},
                            {.tls = nbio::tls::context::server(server_cfg(*b.cert))});
    server.start();
    outcome r;
    nbio::engine client(two_loops());
    auto& d = client.make_dialer(round_trip{&r, "hi"},
                                 {.tls = nbio::tls::context::client({.ca_file = pki.ca})});
    client.start();
    d.dial("localhost:" + std::to_string(l.local_address().port()),
           [&](std::error_code ec, const std::string&) { r.failures.push(ec); });
    ASSERT_TRUE(r.failures.wait_for_size(1, 10s)) << b.expect;
    const std::error_code ec = r.failures.snapshot()[0];
    EXPECT_TRUE(nbio::tls::is_verify_error(ec)) << ec.message();
    EXPECT_NE(ec.message().find(b.expect), std::string::npos) << ec.message();
    EXPECT_EQ(r.replies.size(), 0u);
  }
}

}  // namespace
