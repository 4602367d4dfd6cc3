// Integration: TLS interoperability with OpenSSL's own tools. `openssl s_client` against an nbio
// TLS echo listener (TLS 1.2 and 1.3, resumption, SNI, ALPN, close_notify), and nbio's client
// against `openssl s_server -rev` (verification, SNI, ALPN, session reuse across dials).
#include <gtest/gtest.h>

#include <string>

#include <nbio/tls/context.hpp>

#include "support/event_log.hpp"
#include "support/test_certs.hpp"
#include "support/test_server.hpp"
#include "support/tls_peer.hpp"
#include "support/tool_run.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

bool has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// An nbio TLS echo listener and what its connections showed.
struct echo_listener {
  event_log<tls_seen> opened;
  event_log<std::error_code> closed;
  std::shared_ptr<nbio::tls::context> tls;
  test_server server;

  explicit echo_listener(const nbio::tls::server_options& cfg)
      : tls(nbio::tls::context::server(cfg)),
        server(tls_echo_handler{&opened, &closed}, {.tls = tls}) {}
  std::uint16_t port() const { return server.address().port(); }
};

nbio::tls::server_options default_server() {
  const test_pki& pki = test_pki::get();
  return {.cert = {pki.server.chain, pki.server.key}};
}

// --- openssl s_client against nbio -------------------------------------------------------------

TEST(tls_openssl_client, tls12_and_tls13_echo_and_end_with_close_notify) {
  echo_listener l(default_server());
  struct run {
    const char* flag;
    const char* version;
    const char* close_line;  // the server closes with close() or close_after_flush()
  };
  for (const run& r :
       {run{"-tls1_2", "TLSv1.2", "close-now\n"}, run{"-tls1_3", "TLSv1.3", "close-flush\n"},
        run{"-tls1_2", "TLSv1.2", "close-flush\n"}, run{"-tls1_3", "TLSv1.3", "close-now\n"}}) {
    SCOPED_TRACE(std::string(r.version) + " " + r.close_line);
    const std::size_t before = l.opened.size();
    tls_peer p(s_client_args(l.port(), {r.flag, "-servername", "localhost", "-verify_hostname",
                                        "localhost", "-verify_return_error"}));
    ASSERT_TRUE(p.wait_for("Verify return code: 0 (ok)")) << p.output();
    EXPECT_TRUE(has(p.output(), std::string("New, ") + r.version)) << p.output();
    ASSERT_TRUE(p.send("hello nbio\n"));
    ASSERT_TRUE(p.wait_for("hello nbio")) << p.output();
    ASSERT_TRUE(p.send(r.close_line));
    // The server ends the stream: s_client reads the close_notify ("closed"), not a bare EOF.
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
    const std::string out = p.output();
    EXPECT_TRUE(has(out, "closed")) << out;
    EXPECT_FALSE(has(out, "unexpected eof")) << out;
    if (has(r.close_line, "flush")) {
      EXPECT_TRUE(has(out, "bye")) << out;
    }
    ASSERT_TRUE(l.opened.wait_for_size(before + 1, 10s));
    const tls_seen seen = l.opened.snapshot()[before];
    EXPECT_EQ(seen.version, r.version);
    EXPECT_EQ(seen.server_name, "localhost");
    EXPECT_FALSE(seen.resumed);
    EXPECT_FALSE(seen.has_peer_certificate);
    // TLS 1.3 connections leave OpenSSL after the handshake (server_options::handoff); the
    // details above outlive its SSL object.
    EXPECT_EQ(seen.handed_off, std::string(r.version) == "TLSv1.3");
  }
  EXPECT_TRUE(wait_until([&] { return l.tls->stats().handshakes == 4; }));
  EXPECT_EQ(l.tls->stats().failed, 0u);
  EXPECT_EQ(l.tls->stats().handed_off, 2u);
}

TEST(tls_openssl_client, tls12_reconnect_resumes_and_the_context_counts_it) {
  echo_listener l(default_server());
  tls_peer p(s_client_args(l.port(), {"-tls1_2", "-reconnect"}));
  // The first connection is new; s_client then reconnects five times with its session.
  ASSERT_TRUE(p.wait_for("Reused, TLSv1.2", 10s, 5)) << p.output();
  EXPECT_TRUE(has(p.output(), "New, TLSv1.2")) << p.output();
  p.close_stdin();
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_TRUE(wait_until([&] { return l.tls->stats().resumed == 5; }))
      << "resumed " << l.tls->stats().resumed;
  EXPECT_EQ(l.tls->stats().handshakes, 6u);
  EXPECT_EQ(l.tls->stats().failed, 0u);
}

TEST(tls_openssl_client, tls13_session_from_a_file_resumes) {
  echo_listener l(default_server());
  temp_file session("");
  {
    tls_peer first(s_client_args(l.port(), {"-tls1_3", "-sess_out", session.path()}));
    ASSERT_TRUE(first.wait_for("Verify return code: 0 (ok)")) << first.output();
    ASSERT_TRUE(first.send("hello one\n"));
    ASSERT_TRUE(first.wait_for("hello one")) << first.output();
    first.close_stdin();
    EXPECT_EQ(first.wait_exit(), 0) << first.output();
    // The ticket (NewSessionTicket, after the handshake) came before the echo; s_client's
    // report of it is buffered until it exits.
    EXPECT_TRUE(has(first.output(), "Post-Handshake New Session Ticket arrived")) << first.output();
  }
  tls_peer second(s_client_args(l.port(), {"-tls1_3", "-sess_in", session.path()}));
  ASSERT_TRUE(second.wait_for("Reused, TLSv1.3")) << second.output();
  ASSERT_TRUE(second.send("hello two\n"));
  ASSERT_TRUE(second.wait_for("hello two")) << second.output();
  second.close_stdin();
  EXPECT_EQ(second.wait_exit(), 0) << second.output();
  ASSERT_TRUE(l.opened.wait_for_size(2, 10s));
  EXPECT_FALSE(l.opened.snapshot()[0].resumed);
  EXPECT_TRUE(l.opened.snapshot()[1].resumed);
  EXPECT_EQ(l.tls->stats().resumed, 1u);
  EXPECT_EQ(l.tls->stats().handshakes, 2u);
}

TEST(tls_openssl_client, sni_picks_the_certificate_by_name) {
  const test_pki& pki = test_pki::get();
  nbio::tls::server_options cfg = default_server();
  cfg.sni = {{pki.other_host.chain, pki.other_host.key}};
  echo_listener l(cfg);
  struct sni_case {
    std::vector<std::string> args;
    const char* subject;      // what s_client prints of the certificate it got
    const char* server_name;  // what the server saw
  };
  const std::vector<sni_case> cases = {
      {{"-servername", "other.test", "-verify_hostname", "other.test"},
       "CN = other.test",
       "other.test"},
      {{"-servername", "a.wild.test", "-verify_hostname", "a.wild.test"},
       "CN = other.test",
       "a.wild.test"},
      {{"-noservername"}, "CN = localhost", ""},
      {{"-servername", "unknown.test"}, "CN = localhost", "unknown.test"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const sni_case& c = cases[i];
    SCOPED_TRACE(c.subject + std::string(" for '") + c.server_name + "'");
    std::vector<std::string> argv = s_client_args(l.port(), {"-verify_return_error"});
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    tls_peer p(argv);
    ASSERT_TRUE(p.wait_for("Verify return code: 0 (ok)")) << p.output();
    EXPECT_TRUE(has(p.output(), std::string("subject=O = nbio tests, ") + c.subject)) << p.output();
    p.close_stdin();
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
    ASSERT_TRUE(l.opened.wait_for_size(i + 1, 10s));
    EXPECT_EQ(l.opened.snapshot()[i].server_name, c.server_name);
  }
  EXPECT_EQ(l.tls->stats().failed, 0u);
}

TEST(tls_openssl_client, alpn_answers_http11_and_refuses_a_client_offering_only_h2) {
  echo_listener l(default_server());  // ALPN: {"http/1.1"}, the default
  {
    tls_peer p(s_client_args(l.port(), {"-alpn", "h2,http/1.1"}));
    ASSERT_TRUE(p.wait_for("ALPN protocol: http/1.1")) << p.output();
    p.close_stdin();
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
    ASSERT_TRUE(l.opened.wait_for_size(1, 10s));
    EXPECT_EQ(l.opened.snapshot()[0].alpn, "http/1.1");
  }
  {
    tls_peer p(s_client_args(l.port(), {"-alpn", "h2"}));
    EXPECT_NE(p.wait_exit(), 0) << p.output();
    EXPECT_TRUE(has(p.output(), "no application protocol")) << p.output();
    EXPECT_TRUE(wait_until([&] { return l.tls->stats().failed == 1; }))
        << "failed " << l.tls->stats().failed;
    EXPECT_EQ(l.opened.size(), 1u) << "a refused handshake reached the handler";
  }
  {
    // No ALPN offered at all: the handshake goes on without it.
    tls_peer p(s_client_args(l.port()));
    ASSERT_TRUE(p.wait_for("No ALPN negotiated")) << p.output();
    p.close_stdin();
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
    ASSERT_TRUE(l.opened.wait_for_size(2, 10s));
    EXPECT_EQ(l.opened.snapshot()[1].alpn, "");
  }
}

// --- nbio's client against openssl s_server ----------------------------------------------------

TEST(tls_openssl_server, verifies_against_the_ca_and_round_trips) {
  const test_pki& pki = test_pki::get();
  s_server_peer s(pki.server);
  ASSERT_NE(s.port(), 0) << s.peer().output();
  const std::string port = std::to_string(s.port());
  auto cli = nbio::tls::context::client({.ca_file = pki.ca});
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    SCOPED_TRACE(host);
    const dial_outcome o = tls_dial(cli, host + ":" + port, "hello nbio\n", 11);
    EXPECT_TRUE(o.opened) << describe(o);
    EXPECT_EQ(o.reply, "oibn olleh\n") << describe(o);
  }
  // The server's CA is not the one this client trusts.
  auto stranger = nbio::tls::context::client({.ca_file = pki.foreign_ca});
  const dial_outcome o = tls_dial(stranger, "localhost:" + port, "hello\n", 6);
  EXPECT_TRUE(o.refused) << describe(o);
  EXPECT_FALSE(o.opened) << describe(o);
  EXPECT_TRUE(nbio::tls::is_verify_error(o.cause)) << describe(o);
  EXPECT_TRUE(has(o.cause.message(), "unable to get local issuer certificate")) << describe(o);
}

TEST(tls_openssl_server, sends_sni_and_gets_the_certificate_for_the_name) {
  const test_pki& pki = test_pki::get();
  s_server_peer s(pki.server, {"-servername", "other.test", "-cert2", pki.other_host.chain, "-key2",
                               pki.other_host.key});
  ASSERT_NE(s.port(), 0) << s.peer().output();
  const std::string port = std::to_string(s.port());
  // The name comes from the context: dialing the IP, the client still asks for other.test and
  // checks the certificate against it, which only the second certificate passes.
  auto named = nbio::tls::context::client({.ca_file = pki.ca, .server_name = "other.test"});
  dial_outcome o = tls_dial(named, "127.0.0.1:" + port, "abc\n", 4);
  EXPECT_TRUE(o.opened) << describe(o);
  EXPECT_EQ(o.reply, "cba\n") << describe(o);
  EXPECT_TRUE(has(o.seen.subject, "CN=other.test")) << o.seen.subject;
  // The name comes from dial()'s remote: localhost gets the default certificate.
  auto plain = nbio::tls::context::client({.ca_file = pki.ca});
  o = tls_dial(plain, "localhost:" + port, "abc\n", 4);
  EXPECT_TRUE(o.opened) << describe(o);
  EXPECT_EQ(o.reply, "cba\n") << describe(o);
  EXPECT_TRUE(has(o.seen.subject, "CN=localhost")) << o.seen.subject;
  // A name neither certificate has: s_server serves the default one, which fails the check.
  auto wrong = nbio::tls::context::client({.ca_file = pki.ca, .server_name = "third.test"});
  o = tls_dial(wrong, "127.0.0.1:" + port, "abc\n", 4);
  EXPECT_TRUE(o.refused) << describe(o);
  EXPECT_TRUE(nbio::tls::is_verify_error(o.cause)) << describe(o);
}

TEST(tls_openssl_server, offers_alpn_and_reads_the_servers_choice) {
  const test_pki& pki = test_pki::get();
  s_server_peer s(pki.server, {"-alpn", "x-other,http/1.1"});
  ASSERT_NE(s.port(), 0) << s.peer().output();
  const std::string remote = "localhost:" + std::to_string(s.port());
  auto both = nbio::tls::context::client({.ca_file = pki.ca, .alpn = {"h2", "http/1.1"}});
  dial_outcome o = tls_dial(both, remote, "x\n", 2);
  EXPECT_TRUE(o.opened) << describe(o);
  EXPECT_EQ(o.seen.alpn, "http/1.1");
  // Nothing in common: s_server (OpenSSL 3) refuses with no_application_protocol, and the dial
  // fails with that alert as its cause.
  auto h2 = nbio::tls::context::client({.ca_file = pki.ca, .alpn = {"h2"}});
  o = tls_dial(h2, remote, "x\n", 2);
  EXPECT_TRUE(o.refused) << describe(o);
  EXPECT_EQ(o.cause.category(), nbio::tls::tls_category()) << describe(o);
  EXPECT_TRUE(has(o.cause.message(), "no application protocol")) << describe(o);
  EXPECT_EQ(h2->stats().failed, 1u);
  // No ALPN offered: none negotiated.
  auto none = nbio::tls::context::client({.ca_file = pki.ca});
  o = tls_dial(none, remote, "x\n", 2);
  EXPECT_TRUE(o.opened) << describe(o);
  EXPECT_EQ(o.seen.alpn, "");
}

TEST(tls_openssl_server, the_second_dial_of_a_context_resumes_its_session) {
  const test_pki& pki = test_pki::get();
  s_server_peer s(pki.server);
  ASSERT_NE(s.port(), 0) << s.peer().output();
  const std::string remote = "localhost:" + std::to_string(s.port());
  for (auto v : {nbio::tls::version::tls1_2, nbio::tls::version::tls1_3}) {
    const bool v12 = v == nbio::tls::version::tls1_2;
    SCOPED_TRACE(v12 ? "TLS 1.2" : "TLS 1.3");
    auto cli = nbio::tls::context::client({.ca_file = pki.ca, .max_version = v});
    const dial_outcome first = tls_dial(cli, remote, "one\n", 4);
    EXPECT_EQ(first.reply, "eno\n") << describe(first);
    EXPECT_FALSE(first.seen.resumed);
    EXPECT_EQ(first.seen.version, v12 ? "TLSv1.2" : "TLSv1.3");
    const dial_outcome second = tls_dial(cli, remote, "two\n", 4);
    EXPECT_EQ(second.reply, "owt\n") << describe(second);
    EXPECT_TRUE(second.seen.resumed) << describe(second);
    EXPECT_TRUE(wait_until([&] { return cli->stats().resumed == 1; }));
    EXPECT_EQ(cli->stats().handshakes, 2u);
    // A context that does not keep sessions never resumes.
    auto fresh =
        nbio::tls::context::client({.ca_file = pki.ca, .max_version = v, .session_reuse = false});
    EXPECT_FALSE(tls_dial(fresh, remote, "a\n", 2).seen.resumed);
    EXPECT_FALSE(tls_dial(fresh, remote, "b\n", 2).seen.resumed);
  }
}

}  // namespace
