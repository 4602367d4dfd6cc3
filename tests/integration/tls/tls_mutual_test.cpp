// Integration: mutual TLS. A listener that requires (or only asks for) a client certificate
// verified against the test CA, and nbio's client with and without one.
//
// Where the refusal surfaces on the client depends on the version: in TLS 1.2 the server's
// alert comes inside the handshake (the dial's on_error); in TLS 1.3 the client's handshake is
// done once it sent its Finished, so on_open runs and the alert that follows closes the
// connection (on_close) with the same kind of cause.
#include <gtest/gtest.h>

#include <string>

#include <nbio/tls/context.hpp>

#include "support/event_log.hpp"
#include "support/test_certs.hpp"
#include "support/test_server.hpp"
#include "support/tls_peer.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

bool has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

struct mtls_listener {
  event_log<tls_seen> opened;
  std::shared_ptr<nbio::tls::context> tls;
  test_server server;

  explicit mtls_listener(nbio::tls::client_auth mode)
      : tls(nbio::tls::context::server(config(mode))),
        server(tls_echo_handler{&opened, nullptr}, {.tls = tls}) {}
  std::string remote() const { return "localhost:" + std::to_string(server.address().port()); }

  static nbio::tls::server_options config(nbio::tls::client_auth mode) {
    const test_pki& pki = test_pki::get();
    return {.cert = {pki.server.chain, pki.server.key},
            .verify_client = mode,
            .client_ca_file = pki.ca};
  }
};

std::shared_ptr<nbio::tls::context> client(const cert_files* cert,
                                           nbio::tls::version max = nbio::tls::version::tls1_3) {
  const test_pki& pki = test_pki::get();
  nbio::tls::client_options cfg{.ca_file = pki.ca, .max_version = max};
  if (cert) cfg.cert = {cert->chain, cert->key};
  return nbio::tls::context::client(cfg);
}

TEST(tls_mutual, required_accepts_a_client_certificate_and_shows_its_subject) {
  mtls_listener l(nbio::tls::client_auth::required);
  for (auto v : {nbio::tls::version::tls1_2, nbio::tls::version::tls1_3}) {
    const std::size_t before = l.opened.size();
    const dial_outcome o = tls_dial(client(&test_pki::get().client, v), l.remote(), "ping\n", 5);
    EXPECT_EQ(o.reply, "ping\n") << describe(o);
    ASSERT_TRUE(l.opened.wait_for_size(before + 1, 10s));
    const tls_seen seen = l.opened.snapshot()[before];
    EXPECT_TRUE(seen.has_peer_certificate);
    EXPECT_TRUE(has(seen.subject, "CN=nbio test client")) << seen.subject;
    EXPECT_TRUE(has(seen.subject, "O=nbio tests")) << seen.subject;
    // The client sees the server's certificate.
    EXPECT_TRUE(has(o.seen.subject, "CN=localhost")) << o.seen.subject;
  }
  EXPECT_EQ(l.tls->stats().failed, 0u);
  EXPECT_EQ(l.tls->stats().handshakes, 2u);
}

TEST(tls_mutual, required_refuses_a_client_without_a_certificate) {
  mtls_listener l(nbio::tls::client_auth::required);
  struct run {
    nbio::tls::version v;
    const char* cause;  // the alert the client gets, in OpenSSL's words
  };
  std::uint64_t failed = 0;
  for (const run& r : {run{nbio::tls::version::tls1_2, "handshake failure"},
                       run{nbio::tls::version::tls1_3, "certificate required"}}) {
    SCOPED_TRACE(r.cause);
    // The client writes nothing and waits for a reply: in TLS 1.3 a write right after its
    // handshake may meet the server's close first (EPIPE) and end with that instead.
    const dial_outcome o = tls_dial(client(nullptr, r.v), l.remote(), "", 1);
    EXPECT_TRUE(o.done) << describe(o);
    EXPECT_EQ(o.reply, "") << describe(o);
    EXPECT_EQ(o.cause.category(), nbio::tls::tls_category()) << describe(o);
    EXPECT_TRUE(has(o.cause.message(), r.cause)) << describe(o);
    if (r.v == nbio::tls::version::tls1_2) {
      EXPECT_TRUE(o.refused) << describe(o);
    }
    ++failed;
    EXPECT_TRUE(wait_until([&] { return l.tls->stats().failed == failed; }))
        << "failed " << l.tls->stats().failed;
  }
  EXPECT_EQ(l.opened.size(), 0u) << "a refused client reached the handler";
  EXPECT_EQ(l.tls->stats().handshakes, 0u);
}

TEST(tls_mutual, required_refuses_a_certificate_from_an_unknown_ca) {
  mtls_listener l(nbio::tls::client_auth::required);
  for (auto v : {nbio::tls::version::tls1_2, nbio::tls::version::tls1_3}) {
    // The server's own certificate from a CA the listener does not trust for clients.
    const dial_outcome o = tls_dial(client(&test_pki::get().foreign, v), l.remote(), "", 1);
    EXPECT_EQ(o.reply, "") << describe(o);
    EXPECT_TRUE(has(o.cause.message(), "unknown ca")) << describe(o);
  }
  EXPECT_TRUE(wait_until([&] { return l.tls->stats().failed == 2; }))
      << "failed " << l.tls->stats().failed;
  EXPECT_EQ(l.opened.size(), 0u);
}

TEST(tls_mutual, optional_accepts_clients_with_and_without_a_certificate) {
  mtls_listener l(nbio::tls::client_auth::optional);
  dial_outcome with = tls_dial(client(&test_pki::get().client), l.remote(), "one\n", 4);
  EXPECT_EQ(with.reply, "one\n") << describe(with);
  ASSERT_TRUE(l.opened.wait_for_size(1, 10s));
  dial_outcome without = tls_dial(client(nullptr), l.remote(), "two\n", 4);
  EXPECT_EQ(without.reply, "two\n") << describe(without);
  ASSERT_TRUE(l.opened.wait_for_size(2, 10s));
  const auto seen = l.opened.snapshot();
  EXPECT_TRUE(seen[0].has_peer_certificate);
  EXPECT_TRUE(has(seen[0].subject, "CN=nbio test client")) << seen[0].subject;
  EXPECT_FALSE(seen[1].has_peer_certificate);
  EXPECT_EQ(seen[1].subject, "");
  EXPECT_EQ(l.tls->stats().failed, 0u);
}

TEST(tls_mutual, a_listener_without_client_auth_never_sees_a_client_certificate) {
  const test_pki& pki = test_pki::get();
  event_log<tls_seen> opened;
  test_server server(
      tls_echo_handler{&opened, nullptr},
      {.tls = nbio::tls::context::server({.cert = {pki.server.chain, pki.server.key}})});
  const dial_outcome o = tls_dial(client(&pki.client),
                                  "localhost:" + std::to_string(server.address().port()), "x\n", 2);
  EXPECT_EQ(o.reply, "x\n") << describe(o);
  ASSERT_TRUE(opened.wait_for_size(1, 10s));
  EXPECT_FALSE(opened.snapshot()[0].has_peer_certificate);
}

}  // namespace
