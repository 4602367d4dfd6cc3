// Integration: WebSocket over TLS (wss://). websocket::client against websocket::server (behind
// an http::server with a TLS listener) in the three I/O modes, certificates the client must
// refuse, Python's websockets as a WSS client of our server, and a Node wss server (ws over
// https.createServer) answering our client. Certificates come from the run-time test PKI
// (support/test_certs.hpp). Every wait is bounded.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nbio/http/serve_mux.hpp"
#include "nbio/http/server.hpp"
#include "nbio/tls/context.hpp"
#include "nbio/websocket/client.hpp"
#include "nbio/websocket/server.hpp"
#include "support/child_process.hpp"
#include "support/event_log.hpp"
#include "support/io_mode_name.hpp"
#include "support/peer.hpp"
#include "support/spawn.hpp"
#include "support/test_certs.hpp"
#include "support/tool_run.hpp"

namespace {

using namespace nbio_test;
using namespace nbio::websocket;
using namespace std::chrono_literals;

struct echo {
  event_log<int> closes;
  void on_message(connection& ws, std::string_view d, bool binary) { ws.send(d, binary); }
  void on_close(connection&, std::uint16_t code, std::string_view) { closes.push(code); }
};

std::shared_ptr<nbio::tls::context> server_context(const cert_files& cert) {
  return nbio::tls::context::server({.cert = {cert.chain, cert.key}, .alpn = {"http/1.1"}});
}

// A WSS server: websocket::server behind an http::server (GET /ws upgrades) whose listener
// runs TLS, on its own engine; started on construction, stopped on destruction.
class wss_server {
 public:
  template <class Handler>
  wss_server(Handler& h, nbio::io_mode mode, const cert_files& cert,
             std::string_view addr = "127.0.0.1:0",
             nbio::accept_strategy accept = nbio::accept_strategy::reuseport,
             endpoint_options options = {})
      : eng_({.loops = 2}), ws_(eng_, std::ref(h), options), ctx_(server_context(cert)) {
    mux_.handle("GET /ws", ws_.upgrade());
    http_ = std::make_unique<nbio::http::server>(eng_, mux_);
    nbio::listen_options lo = listen_for(mode);
    lo.accept = accept;
    lo.tls = ctx_;
    address_ = http_->listen(addr, lo).local_address();
    eng_.start();
  }
  ~wss_server() { eng_.stop(); }
  wss_server(const wss_server&) = delete;
  wss_server& operator=(const wss_server&) = delete;

  std::string url(std::string_view host = "localhost") const {
    return "wss://" + std::string(host) + ":" + std::to_string(address_.port()) + "/ws";
  }
  const nbio::tls::context& tls() const { return *ctx_; }

 private:
  nbio::engine eng_;
  server ws_;
  std::shared_ptr<nbio::tls::context> ctx_;
  nbio::http::serve_mux mux_;
  std::unique_ptr<nbio::http::server> http_;
  nbio::address address_;
};

// The client side: sends `messages` on open, records what comes back, closes once
// `close_after` messages came (0: as many as it sent).
struct recorder {
  std::vector<std::pair<std::string, bool>> messages;
  std::size_t close_after = 0;
  std::atomic<bool> deflate{false};
  event_log<std::string> received;
  event_log<int> closes;
  void on_open(connection& ws) {
    deflate = ws.permessage_deflate();
    for (const auto& [m, binary] : messages)
      ws.send(m, binary);
  }
  void on_message(connection& ws, std::string_view d, bool binary) {
    received.push((binary ? "b:" : "t:") + std::string(d));
    if (received.size() == (close_after ? close_after : messages.size()))
      ws.close(close_code::normal, "done");
  }
  void on_close(connection&, std::uint16_t code, std::string_view) { closes.push(code); }
};

// Our client, trusting the test CA unless `o` brings its own context.
struct client_rig {
  static endpoint_options trusting(endpoint_options o) {
    if (!o.tls)
      o.tls = nbio::tls::context::client({.ca_file = test_pki::get().ca, .alpn = {"http/1.1"}});
    return o;
  }
  template <class Handler>
  explicit client_rig(Handler& h, endpoint_options o = {})
      : eng({.loops = 2}), cl(eng, std::ref(h), trusting(std::move(o))) {
    eng.start();
  }
  ~client_rig() { eng.stop(); }
  nbio::engine eng;
  client cl;
};

class wss : public ::testing::TestWithParam<nbio::io_mode> {};

TEST_P(wss, nbio_client_messages_echo_from_nbio_server_and_the_close_completes) {
  echo e;
  wss_server server(e, GetParam(), test_pki::get().server);
  recorder r;
  r.messages = {{"hello", false}, {std::string(200'000, 'x'), true}, {"", false}};
  event_log<std::error_code> errors;  // before the rig: the engine stops first
  {
    client_rig rig(r);
    rig.cl.connect(server.url(), [&](std::error_code ec) { errors.push(ec); });
    ASSERT_TRUE(r.received.wait_for_size(3, 10s)) << "errors: " << errors.size();
    ASSERT_TRUE(r.closes.wait_for_size(1, 10s));
  }
  const auto got = r.received.snapshot();
  EXPECT_EQ(got[0], "t:hello");
  EXPECT_EQ(got[1], "b:" + std::string(200'000, 'x'));
  EXPECT_EQ(got[2], "t:");
  EXPECT_EQ(r.closes.snapshot()[0], 1000);
  ASSERT_TRUE(e.closes.wait_for_size(1, 5s));
  EXPECT_EQ(e.closes.snapshot()[0], 1000);
  EXPECT_EQ(errors.size(), 0u);
  EXPECT_EQ(server.tls().stats().handshakes, 1u);
}

INSTANTIATE_TEST_SUITE_P(modes, wss,
                         ::testing::Values(nbio::io_mode::nonblocking, nbio::io_mode::blocking,
                                           nbio::io_mode::mixed),
                         io_mode_name);

TEST(wss_client, permessage_deflate_runs_inside_tls) {
  echo e;
  endpoint_options so;
  so.deflate.enabled = true;
  wss_server server(e, nbio::io_mode::nonblocking, test_pki::get().server, "127.0.0.1:0",
                    nbio::accept_strategy::reuseport, so);
  recorder r;
  std::string text;
  for (int i = 0; i < 5000; ++i)
    text += "line " + std::to_string(i) + " of a compressible message\n";
  r.messages = {{text, false}, {std::string(300'000, 'q'), true}};
  event_log<std::error_code> errors;
  endpoint_options co;
  co.deflate.enabled = true;
  {
    client_rig rig(r, co);
    rig.cl.connect(server.url(), [&](std::error_code ec) { errors.push(ec); });
    ASSERT_TRUE(r.received.wait_for_size(2, 10s)) << "errors: " << errors.size();
    ASSERT_TRUE(r.closes.wait_for_size(1, 10s));
  }
  EXPECT_TRUE(r.deflate.load());
  const auto got = r.received.snapshot();
  EXPECT_TRUE(got[0] == "t:" + text);
  EXPECT_TRUE(got[1] == "b:" + std::string(300'000, 'q'));
  EXPECT_EQ(r.closes.snapshot()[0], 1000);
}

TEST(wss_client, refuses_expired_and_wrong_host_certificates_with_the_tls_cause) {
  const test_pki& pki = test_pki::get();
  struct bad {
    const cert_files* cert;
    const char* expect;
  };
  for (const bad& b : {bad{&pki.expired, "expired"}, bad{&pki.wrong_host, "mismatch"}}) {
    echo e;
    wss_server server(e, nbio::io_mode::nonblocking, *b.cert);
    recorder r;
    r.messages = {{"hello", false}};
    event_log<std::error_code> errors;
    client_rig rig(r);
    rig.cl.connect(server.url(), [&](std::error_code ec) { errors.push(ec); });
    ASSERT_TRUE(errors.wait_for_size(1, 10s)) << b.expect;
    const std::error_code ec = errors.snapshot()[0];
    EXPECT_EQ(ec.category(), nbio::tls::tls_category()) << ec.message();
    EXPECT_TRUE(nbio::tls::is_verify_error(ec)) << ec.message();
    EXPECT_NE(ec.message().find(b.expect), std::string::npos) << ec.message();
    EXPECT_EQ(r.received.size(), 0u);
    EXPECT_EQ(r.closes.size(), 0u);
  }
}

TEST(wss_client, the_default_context_trusts_the_system_store_not_the_test_ca) {
  echo e;
  wss_server server(e, nbio::io_mode::nonblocking, test_pki::get().server);
  recorder r;
  event_log<std::error_code> errors;
  nbio::engine eng({.loops = 1});
  client cl(eng, std::ref(r));  // endpoint_options::tls null: the default context
  eng.start();
  cl.connect(server.url(), [&](std::error_code ec) { errors.push(ec); });
  ASSERT_TRUE(errors.wait_for_size(1, 10s));
  const std::error_code ec = errors.snapshot()[0];
  EXPECT_TRUE(nbio::tls::is_verify_error(ec)) << ec.message();
  EXPECT_NE(ec.message().find("unable to get local issuer"), std::string::npos) << ec.message();
  eng.stop();
}

// OpenSSL reads SSL_CERT_FILE for the system store when the default context is made (on the
// client's first wss:// connect): the test CA stands in for the system's.
TEST(wss_client, the_default_context_verifies_with_the_system_store) {
  echo e;
  wss_server server(e, nbio::io_mode::nonblocking, test_pki::get().server);
  recorder r;
  r.messages = {{"trusted", false}};
  event_log<std::error_code> errors;
  nbio::engine eng({.loops = 1});
  client cl(eng, std::ref(r));  // endpoint_options::tls null: the default context
  eng.start();
  ::setenv("SSL_CERT_FILE", test_pki::get().ca.c_str(), 1);
  cl.connect(server.url(), [&](std::error_code ec) { errors.push(ec); });
  const bool got = r.received.wait_for_size(1, 10s);
  ::unsetenv("SSL_CERT_FILE");
  EXPECT_TRUE(got) << "errors: " << errors.size()
                   << (errors.size() ? " " + errors.snapshot()[0].message() : "");
  EXPECT_TRUE(r.closes.wait_for_size(1, 10s));
  eng.stop();
}

TEST(wss_client, wss_without_a_port_dials_443) {
  echo e;
  std::unique_ptr<wss_server> server;
  try {
    // One socket, without SO_REUSEPORT: a concurrent test on 443 fails to bind instead of
    // sharing the port.
    server = std::make_unique<wss_server>(e, nbio::io_mode::nonblocking, test_pki::get().server,
                                          "127.0.0.1:443", nbio::accept_strategy::acceptor);
  } catch (const std::system_error& ex) {
    GTEST_SKIP() << "cannot listen on 127.0.0.1:443 here: " << ex.what();
  }
  recorder r;
  r.messages = {{"four four three", false}};
  event_log<std::error_code> errors;
  {
    client_rig rig(r);
    rig.cl.connect("wss://localhost/ws", [&](std::error_code ec) { errors.push(ec); });
    ASSERT_TRUE(r.received.wait_for_size(1, 10s)) << "errors: " << errors.size();
    ASSERT_TRUE(r.closes.wait_for_size(1, 10s));
  }
  EXPECT_EQ(r.received.snapshot()[0], "t:four four three");
}

// --- Python's websockets as a WSS client of our server ----------------------------------------

TEST(wss_python, websockets_client_echoes_over_tls) {
  const char* python = "/usr/bin/python3";
  if (::access(python, X_OK) != 0 ||
      run_tool(std::string(python) + " -c 'import websockets' 2>&1").status != 0)
    NBIO_PEER_MISSING("python3-websockets not installed");
  echo e;
  wss_server server(e, nbio::io_mode::nonblocking, test_pki::get().server);
  temp_file script(
      "import asyncio, ssl, sys, websockets\n"
      "async def main():\n"
      "    ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
      "    ctx.set_alpn_protocols(['http/1.1'])\n"
      "    async with websockets.connect(sys.argv[1], ssl=ctx, max_size=None) as ws:\n"
      "        await ws.send('hello')\n"
      "        assert await ws.recv() == 'hello'\n"
      "        big = bytes(range(256)) * 1000\n"
      "        await ws.send(big)\n"
      "        assert await ws.recv() == big\n"
      "        pong = await ws.ping(b'p')\n"
      "        await asyncio.wait_for(pong, 5)\n"
      "        print(ws.transport.get_extra_info('ssl_object').selected_alpn_protocol())\n"
      "        await ws.close(code=4000, reason='bye')\n"
      "    print('ok')\n"
      "asyncio.run(asyncio.wait_for(main(), 10))\n");
  const tool_run r = run_tool(std::string(python) + " " + script.path() + " " + server.url() + " " +
                              test_pki::get().ca + " 2>&1");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "http/1.1\nok\n");
  ASSERT_TRUE(e.closes.wait_for_size(1, 5s));
  EXPECT_EQ(e.closes.snapshot()[0], 4000);
}

// --- A Node wss server answering our client ---------------------------------------------------

bool have_node_ws() {
  return ::access("/usr/bin/node", X_OK) == 0 &&
         ::access(NBIO_TEST_NODE_MODULES "/ws/package.json", R_OK) == 0;
}

TEST(wss_node_server, nbio_client_messages_echo_from_a_node_wss_server) {
  if (!have_node_ws()) NBIO_PEER_MISSING("node or its ws module missing");
  const test_pki& pki = test_pki::get();
  // The first message says what the server saw of the handshake: Host, SNI, ALPN.
  temp_file script(R"js(
const https = require('https');
const fs = require('fs');
const { WebSocketServer } = require('ws');
const srv = https.createServer({ cert: fs.readFileSync(process.argv[2]),
                                 key: fs.readFileSync(process.argv[3]),
                                 ALPNProtocols: ['http/1.1'] });
const wss = new WebSocketServer({ server: srv, perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  ws.send('host=' + req.headers.host + ' sni=' + req.socket.servername +
          ' alpn=' + req.socket.alpnProtocol);
  ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }));
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
setTimeout(() => process.exit(0), 30000);
)js");
  auto srv = spawn({"/usr/bin/env", "NODE_PATH=" NBIO_TEST_NODE_MODULES, "/usr/bin/node",
                    script.path(), pki.server.chain, pki.server.key});
  const auto port = srv.read_line(10s);
  ASSERT_TRUE(port) << "the Node server did not start";
  recorder r;
  r.messages = {{"ping?", false}, {std::string(100'000, 'z'), true}};
  r.close_after = 3;  // the greeting and the two echoes
  event_log<std::error_code> errors;
  {
    client_rig rig(r);
    rig.cl.connect("wss://localhost:" + *port + "/chat",
                   [&](std::error_code ec) { errors.push(ec); });
    ASSERT_TRUE(r.received.wait_for_size(3, 10s)) << "errors: " << errors.size();
    ASSERT_TRUE(r.closes.wait_for_size(1, 10s));
  }
  const auto got = r.received.snapshot();
  EXPECT_EQ(got[0], "t:host=localhost:" + *port + " sni=localhost alpn=http/1.1");
  EXPECT_EQ(got[1], "t:ping?");
  EXPECT_EQ(got[2], "b:" + std::string(100'000, 'z'));
  EXPECT_EQ(r.closes.snapshot()[0], 1000);
  EXPECT_EQ(errors.size(), 0u);
  ::kill(srv.pid(), SIGTERM);
  srv.wait(10s);
}

}  // namespace
