// Integration: HTTPS. nbio::http::client against nbio::http::server over TLS (keep-alive reuse,
// chunked uploads, a large response, certificates it must refuse, redirects between https://
// and http://, pools kept apart by scheme), curl against our HTTPS server (keep-alive across
// two URLs, a chunked upload, each on nbio's TLS record layer), nginx proxying to our HTTPS
// server, and Node's https server answering our client. Certificates come
// from the run-time test PKI (support/test_certs.hpp). Every wait is bounded.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nbio/http/client.hpp"
#include "nbio/http/request.hpp"
#include "nbio/http/response_writer.hpp"
#include "nbio/tls/context.hpp"
#include "support/child_process.hpp"
#include "support/http_test_server.hpp"
#include "support/nginx_server.hpp"
#include "support/payload.hpp"
#include "support/peer.hpp"
#include "support/spawn.hpp"
#include "support/test_certs.hpp"
#include "support/tool_run.hpp"

namespace {

using namespace nbio_test;
using nbio::http::client;
using nbio::http::client_options;
using nbio::http::client_request;
using nbio::http::client_response;

constexpr std::size_t big_size = 6u << 20;

const std::string& big_body() {
  static const std::string body = random_payload(big_size, 42);
  return body;
}

// The routes both servers (TLS and plain) answer:
//   /port        the client's port (one value per connection)
//   /echo        the body, with X-Framing (chunked or length)
//   /big         big_size bytes
//   /auth        the Authorization field it got ("-" without one)
//   /redirect    302 to the URL in `location` (set by the test)
struct routes {
  std::mutex m;
  std::string location;

  nbio::http::handler handler() {
    return [this](nbio::http::response_writer& w, nbio::http::request& r) {
      if (r.path() == "/port") {
        w.write(std::to_string(r.remote_address().port()));
      } else if (r.path() == "/echo") {
        w.set_header("X-Framing", r.header("Transfer-Encoding").empty() ? "length" : "chunked");
        w.write(r.body());
      } else if (r.path() == "/big") {
        w.write(big_body());
      } else if (r.path() == "/auth") {
        const std::string_view a = r.header("Authorization");
        w.write(a.empty() ? std::string("-") : std::string(a));
      } else if (r.path() == "/redirect") {
        std::lock_guard lock(m);
        w.set_header("Location", location);
        w.write_header(302);
      } else {
        w.write_header(404);
      }
    };
  }
};

std::shared_ptr<nbio::tls::context> server_context(const cert_files& cert) {
  return nbio::tls::context::server({.cert = {cert.chain, cert.key}, .alpn = {"http/1.1"}});
}

// An HTTPS server (our http::server with a TLS listener) on its own engine.
struct https_server {
  std::shared_ptr<nbio::tls::context> ctx;
  http_test_server srv;
  https_server(routes& r, const cert_files& cert)
      : ctx(server_context(cert)), srv(r.handler(), {}, {.tls = ctx}) {}
  std::string url(std::string_view path, std::string_view host = "localhost") const {
    return "https://" + std::string(host) + ":" + std::to_string(srv.address().port()) +
           std::string(path);
  }
};

// The client under test, trusting the test CA, on an engine of its own. The client goes first,
// then the engine.
struct client_rig {
  nbio::engine eng{{.loops = 2}};
  std::unique_ptr<client> cl;
  explicit client_rig(client_options cfg = {.request_timeout = 10s}, bool trust_test_ca = true) {
    if (trust_test_ca && !cfg.tls)
      cfg.tls = nbio::tls::context::client({.ca_file = test_pki::get().ca, .alpn = {"http/1.1"}});
    eng.start();
    cl = std::make_unique<client>(eng, std::move(cfg));
  }
  ~client_rig() {
    cl.reset();
    eng.stop();
  }
  client_response fetch(client_request req, std::error_code& ec) {
    return cl->fetch(std::move(req), ec);
  }
};

class https_client : public ::testing::Test {
 protected:
  routes routes_;
  https_server tls_{routes_, test_pki::get().server};
};

TEST_F(https_client, keep_alive_carries_several_requests_on_one_connection) {
  client_rig rig;
  std::vector<std::string> ports;
  for (int i = 0; i < 5; ++i) {
    std::error_code ec;
    client_response r = rig.fetch({.url = tls_.url("/port")}, ec);
    ASSERT_FALSE(ec) << i << ": " << ec.message();
    EXPECT_EQ(r.status, 200);
    ports.push_back(r.body);
  }
  for (const auto& p : ports)
    EXPECT_EQ(p, ports[0]);
  // One handshake for the five requests.
  EXPECT_EQ(tls_.ctx->stats().handshakes, 1u);
  // The IP address form works too (its certificate has IP:127.0.0.1): a second pool.
  std::error_code ec;
  client_response r = rig.fetch({.url = tls_.url("/port", "127.0.0.1")}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 200);
}

TEST_F(https_client, chunked_upload_and_large_bodies_cross_tls) {
  client_rig rig;
  std::string expected;
  int calls = 0;
  client_request req{.method = "PUT", .url = tls_.url("/echo")};
  req.body_source = [&](std::string& out) {
    if (calls < 10) {
      std::string p = random_payload(100'000, static_cast<std::uint64_t>(calls));
      expected += p;
      out += p;
    }
    return ++calls <= 10;
  };
  std::error_code ec;
  client_response r = rig.fetch(std::move(req), ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("X-Framing"), "chunked");
  EXPECT_EQ(r.body.size(), expected.size());
  EXPECT_TRUE(r.body == expected);

  const std::string body = random_payload(3u << 20, 7);
  r = rig.fetch({.method = "POST", .url = tls_.url("/echo"), .body = body}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.header("X-Framing"), "length");
  EXPECT_TRUE(r.body == body) << r.body.size();

  r = rig.fetch({.url = tls_.url("/big")}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), big_size);
  EXPECT_TRUE(r.body == big_body());
}

TEST_F(https_client, http_and_https_to_one_port_never_share_a_connection) {
  client_rig rig;
  std::error_code ec;
  client_response first = rig.fetch({.url = tls_.url("/port")}, ec);
  ASSERT_FALSE(ec) << ec.message();
  // Plain HTTP to the same host:port: a pool of its own, a fresh plain connection the TLS
  // server refuses. Sharing the idle TLS connection would have answered 200.
  client_response plain =
      rig.fetch({.url = "http://localhost:" + std::to_string(tls_.srv.address().port()) + "/port",
                 .timeout = 5s},
                ec);
  EXPECT_TRUE(ec) << "answered over TLS: " << plain.status << " " << plain.body;
  EXPECT_EQ(plain.status, 0);
  // The TLS connection is still there for https://.
  client_response again = rig.fetch({.url = tls_.url("/port")}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(again.body, first.body);
}

TEST(https_client_refuses, expired_wrong_host_and_untrusted_certificates_with_the_tls_cause) {
  const test_pki& pki = test_pki::get();
  struct bad {
    const cert_files* cert;
    const char* expect;
  };
  client_rig rig;
  for (const bad& b : {bad{&pki.expired, "expired"}, bad{&pki.wrong_host, "mismatch"},
                       bad{&pki.foreign, "unable to get local issuer"}}) {
    routes r;
    https_server srv(r, *b.cert);
    std::error_code ec;
    client_response resp = rig.fetch({.url = srv.url("/port")}, ec);
    ASSERT_TRUE(ec) << b.expect;
    EXPECT_EQ(ec.category(), nbio::tls::tls_category()) << ec.message();
    EXPECT_TRUE(nbio::tls::is_verify_error(ec)) << ec.message();
    EXPECT_NE(ec.message().find(b.expect), std::string::npos) << ec.message();
    EXPECT_EQ(resp.status, 0);
  }
}

TEST(https_client_refuses, the_default_context_trusts_the_system_store_not_the_test_ca) {
  routes r;
  https_server srv(r, test_pki::get().server);
  client_rig rig({.request_timeout = 10s}, false);  // client_options::tls null: the default
  std::error_code ec;
  rig.fetch({.url = srv.url("/port")}, ec);
  EXPECT_TRUE(nbio::tls::is_verify_error(ec)) << ec.message();
  EXPECT_NE(ec.message().find("unable to get local issuer"), std::string::npos) << ec.message();
}

// The default context's trust store is the system's: OpenSSL reads SSL_CERT_FILE in its place
// when the context is made (on the client's first https:// request), which lets the test CA
// stand in for it. That context offers ALPN http/1.1: a server that speaks only h2 refuses it.
TEST(https_client_default_context, verifies_with_the_system_store_and_offers_http_1_1) {
  const test_pki& pki = test_pki::get();
  routes r;
  https_server srv(r, pki.server);
  nbio::engine h2_eng({.loops = 1});
  nbio::http::server h2_only(h2_eng, r.handler());
  const std::uint16_t h2_port =
      h2_only
          .listen("127.0.0.1:0",
                  {.tls = nbio::tls::context::server(
                       {.cert = {pki.server.chain, pki.server.key}, .alpn = {"h2"}})})
          .local_address()
          .port();
  h2_eng.start();
  client_rig rig({.request_timeout = 10s}, false);
  ::setenv("SSL_CERT_FILE", pki.ca.c_str(), 1);
  std::error_code ec;
  client_response resp = rig.fetch({.url = srv.url("/port")}, ec);
  ::unsetenv("SSL_CERT_FILE");
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(resp.status, 200);
  rig.fetch({.url = "https://localhost:" + std::to_string(h2_port) + "/port"}, ec);
  EXPECT_EQ(ec.category(), nbio::tls::tls_category()) << ec.message();
  EXPECT_NE(ec.message().find("no application protocol"), std::string::npos) << ec.message();
  h2_eng.stop();
}

TEST_F(https_client, redirects_go_from_https_to_http_and_back) {
  routes plain_routes;
  http_test_server plain(plain_routes.handler());
  const std::string plain_base = "http://127.0.0.1:" + std::to_string(plain.address().port());
  client_rig rig;
  {
    std::lock_guard lock(routes_.m);
    routes_.location = plain_base + "/auth";
  }
  std::error_code ec;
  client_response r = rig.fetch(
      {.url = tls_.url("/redirect"), .headers = {{"Authorization", "Bearer secret"}}}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.url, plain_base + "/auth");
  EXPECT_EQ(r.body, "-");  // the credentials stayed with their origin
  // And back: http:// -> https://.
  {
    std::lock_guard lock(plain_routes.m);
    plain_routes.location = tls_.url("/port");
  }
  r = rig.fetch({.url = plain_base + "/redirect"}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.url, tls_.url("/port"));
  EXPECT_FALSE(r.body.empty());
  // A redirect to another scheme is refused as such.
  {
    std::lock_guard lock(routes_.m);
    routes_.location = "ftp://localhost/x";
  }
  r = rig.fetch({.url = tls_.url("/redirect")}, ec);
  EXPECT_EQ(ec, nbio::http::client_errc::unsupported_scheme) << ec.message();
}

TEST(https_client_urls, other_schemes_stay_unsupported) {
  client_rig rig;
  std::error_code ec;
  rig.fetch({.url = "ftp://127.0.0.1/"}, ec);
  EXPECT_EQ(ec, nbio::http::client_errc::unsupported_scheme);
  EXPECT_NE(ec.message().find("https://"), std::string::npos) << ec.message();
}

TEST(https_client_urls, https_without_a_port_dials_443) {
  routes r;
  nbio::engine eng({.loops = 1});
  nbio::http::server srv(eng, r.handler());
  try {
    // One socket, without SO_REUSEPORT: a concurrent test on 443 fails to bind instead of
    // sharing the port.
    srv.listen("127.0.0.1:443", {.accept = nbio::accept_strategy::acceptor,
                                 .tls = server_context(test_pki::get().server)});
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "cannot listen on 127.0.0.1:443 here: " << e.what();
  }
  eng.start();
  {
    client_rig rig;
    std::error_code ec;
    client_response resp = rig.fetch({.url = "https://localhost/port"}, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(resp.status, 200);
  }
  eng.stop();
}

// --- curl against our HTTPS server ------------------------------------------------------------

class https_curl : public https_client {
 protected:
  void SetUp() override {
    if (!have_program("curl")) NBIO_PEER_MISSING("curl not installed");
  }
  std::string curl() const { return "curl -sS --max-time 10 --cacert " + test_pki::get().ca; }
};

TEST_F(https_curl, two_urls_in_one_invocation_reuse_the_connection) {
  const tool_run r =
      run_tool(curl() + " -v " + tls_.url("/port") + " " + tls_.url("/port") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Re-using existing connection"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ALPN: server accepted http/1.1"), std::string::npos) << r.output;
  EXPECT_EQ(tls_.ctx->stats().handshakes, 1u);
}

TEST_F(https_curl, chunked_upload_is_echoed) {
  const std::string body = random_payload(1u << 20, 3);
  temp_file file(body);
  temp_file headers("");
  const tool_run r = run_tool(curl() + " -D " + headers.path() +
                              " -H 'Transfer-Encoding: chunked' --data-binary @" + file.path() +
                              " " + tls_.url("/echo"));
  ASSERT_EQ(r.status, 0) << r.output.substr(0, 200);
  EXPECT_EQ(r.output.size(), body.size());
  EXPECT_TRUE(r.output == body);
  const tool_run h = run_tool("cat " + headers.path());
  EXPECT_NE(h.output.find("X-Framing: chunked"), std::string::npos) << h.output;
}

TEST_F(https_curl, large_response_arrives_whole) {
  const tool_run r = run_tool(curl() + " " + tls_.url("/big"));
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.output.size(), big_size);
  EXPECT_TRUE(r.output == big_body());
  // curl's TLS 1.3 connection ran on nbio's record layer after the handshake.
  EXPECT_EQ(tls_.ctx->stats().handed_off, 1u);
}

// --- nginx as the client: a proxy in front of our HTTPS server ---------------------------------

TEST_F(https_client, nginx_proxies_to_it_over_tls_1_3_and_bodies_cross_both_ways) {
  const std::string upstream = "https://127.0.0.1:" + std::to_string(tls_.srv.address().port());
  nginx_server ngx("    location / {\n      proxy_pass " + upstream +
                   ";\n      proxy_http_version 1.1;\n      proxy_ssl_protocols TLSv1.3;\n"
                   "      proxy_ssl_server_name on;\n      proxy_ssl_name localhost;\n"
                   "      proxy_ssl_verify on;\n      proxy_ssl_trusted_certificate " +
                   test_pki::get().ca + ";\n      client_max_body_size 8m;\n    }");
  if (!ngx.available()) NBIO_PEER_MISSING("nginx");
  ASSERT_TRUE(ngx.start()) << ngx.error_log();
  client_rig rig;
  for (int i = 0; i < 3; ++i) {
    std::error_code ec;
    client_response r = rig.fetch({.url = ngx.url("/big")}, ec);
    ASSERT_FALSE(ec) << ec.message() << "\n" << ngx.error_log();
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.body == big_body()) << r.body.size();
  }
  const std::string up = random_payload(3u << 20, 9);
  std::error_code ec;
  client_response r = rig.fetch({.method = "POST", .url = ngx.url("/echo"), .body = up}, ec);
  ASSERT_FALSE(ec) << ec.message() << "\n" << ngx.error_log();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == up) << r.body.size();
  // nginx opens a connection per request (no upstream keepalive configured), resuming its
  // session: every one of them TLS 1.3 and handed off.
  const nbio::tls::context_stats s = tls_.ctx->stats();
  EXPECT_GE(s.handshakes, 4u);
  EXPECT_EQ(s.handed_off, s.handshakes);
}

// --- Node's https server answering our client --------------------------------------------------

bool have_node() {
  return ::access("/usr/bin/node", X_OK) == 0;
}

TEST(https_node_server, nbio_client_requests_are_answered_over_one_tls_connection) {
  if (!have_node()) NBIO_PEER_MISSING("node not installed");
  const test_pki& pki = test_pki::get();
  temp_file script(R"js(
const https = require('https');
const fs = require('fs');
const srv = https.createServer({ cert: fs.readFileSync(process.argv[2]),
                                 key: fs.readFileSync(process.argv[3]),
                                 ALPNProtocols: ['http/1.1'] }, (req, res) => {
  const parts = [];
  req.on('data', (d) => parts.push(d));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    res.setHeader('X-Port', String(req.socket.remotePort));
    res.setHeader('X-Alpn', String(req.socket.alpnProtocol));
    res.setHeader('X-Servername', String(req.socket.servername));
    if (req.url === '/big') return res.end(Buffer.alloc(2 << 20, 'n'));
    res.end(req.method + ' ' + req.url + ' ' + body.length + ' ' +
            (req.headers['transfer-encoding'] || 'length'));
  });
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
setTimeout(() => process.exit(0), 30000);
)js");
  auto node = spawn({"/usr/bin/node", script.path(), pki.server.chain, pki.server.key});
  const auto port = node.read_line(10s);
  ASSERT_TRUE(port) << "the Node server did not start";
  const std::string base = "https://localhost:" + *port;
  {
    client_rig rig;
    std::error_code ec;
    client_response r = rig.fetch({.url = base + "/a"}, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "GET /a 0 length");
    EXPECT_EQ(r.header("X-Alpn"), "http/1.1");
    EXPECT_EQ(r.header("X-Servername"), "localhost");
    const std::string first_port(r.header("X-Port"));

    r = rig.fetch({.method = "POST", .url = base + "/b", .body = std::string(300'000, 'p')}, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(r.body, "POST /b 300000 length");
    EXPECT_EQ(r.header("X-Port"), first_port);

    int calls = 0;
    client_request chunked{.method = "PUT", .url = base + "/c"};
    chunked.body_source = [&](std::string& out) {
      out.append(50'000, 'c');
      return ++calls < 4;
    };
    r = rig.fetch(std::move(chunked), ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(r.body, "PUT /c 200000 chunked");
    EXPECT_EQ(r.header("X-Port"), first_port);

    r = rig.fetch({.url = base + "/big"}, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(r.body, std::string(2u << 20, 'n'));
    EXPECT_EQ(r.header("X-Port"), first_port);
  }
  ::kill(node.pid(), SIGTERM);
  node.wait(10s);
}

}  // namespace
