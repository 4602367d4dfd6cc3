// Integration: Node's ws library (npm, installed by scripts/deps.sh into build/node) against
// nbio: as a client of websocket::server (it offers permessage-deflate, which the server does
// not take yet, so the connection runs uncompressed) and as a server for websocket::client.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <string>

#include "nbio/websocket/client.hpp"
#include "support/child_process.hpp"
#include "support/event_log.hpp"
#include "support/peer.hpp"
#include "support/spawn.hpp"
#include "support/tool_run.hpp"
#include "support/ws_test_server.hpp"

namespace {

using namespace nbio_test;
using namespace nbio::websocket;
using namespace std::chrono_literals;

bool have_node_ws() {
  return ::access("/usr/bin/node", X_OK) == 0 &&
         ::access(NBIO_TEST_NODE_MODULES "/ws/package.json", R_OK) == 0;
}

std::string node() {
  return "env NODE_PATH=" NBIO_TEST_NODE_MODULES " /usr/bin/node ";
}

struct echo {
  event_log<int> closes;
  void on_message(connection& ws, std::string_view d, bool binary) { ws.send(d, binary); }
  void on_close(connection&, std::uint16_t code, std::string_view) { closes.push(code); }
};

class ws_node : public ::testing::TestWithParam<nbio::io_mode> {};

TEST_P(ws_node, node_ws_client_messages_echo_and_its_close_code_arrives) {
  if (!have_node_ws()) NBIO_PEER_MISSING("node or its ws module missing");
  echo e;
  ws_test_server server(e, GetParam());
  temp_file script(R"js(
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[2]);
const msgs = ['hello', Buffer.alloc(100000, 7), '\u00fc\u20ac\ud83d\ude00'.repeat(100), ''];
let i = 0;
const send = () => ws.send(msgs[i], { binary: Buffer.isBuffer(msgs[i]) });
ws.on('open', send);
ws.on('message', (data, isBinary) => {
  const want = msgs[i];
  const same = Buffer.isBuffer(want) ? isBinary && data.equals(want)
                                     : !isBinary && data.toString() === want;
  if (!same) { console.log('mismatch', i); process.exit(1); }
  if (++i < msgs.length) send(); else ws.close(4001, 'bye');
});
ws.on('close', (code) => { console.log('ok', code, ws.extensions === '' ? 'plain' : ws.extensions); process.exit(0); });
ws.on('error', (e) => { console.log('error', e.message); process.exit(1); });
setTimeout(() => { console.log('timeout'); process.exit(1); }, 10000);
)js");
  tool_run r = run_tool(node() + script.path() +
                        " ws://127.0.0.1:" + std::to_string(server.address().port()) + "/ws 2>&1");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "ok 4001 plain\n");
  ASSERT_TRUE(e.closes.wait_for_size(1, 5s));
  EXPECT_EQ(e.closes.snapshot()[0], 4001);
}

INSTANTIATE_TEST_SUITE_P(ws_node_loop, ws_node, ::testing::Values(nbio::io_mode::nonblocking),
                         io_mode_name);
INSTANTIATE_TEST_SUITE_P(ws_threading_node_blocking, ws_node,
                         ::testing::Values(nbio::io_mode::blocking), io_mode_name);

// Records what comes back to the client.
struct recorder {
  event_log<std::string> received;
  event_log<int> closes;
  void on_open(connection& ws) {
    ws.send("ping?");
    ws.send(std::string(50'000, 'z'), true);
  }
  void on_message(connection& ws, std::string_view d, bool binary) {
    received.push((binary ? "b:" : "t:") + std::string(d));
    if (received.size() == 2) ws.close(close_code::normal);
  }
  void on_close(connection&, std::uint16_t code, std::string_view) { closes.push(code); }
};

TEST(ws_node_server, nbio_client_messages_echo_from_a_node_ws_server) {
  if (!have_node_ws()) NBIO_PEER_MISSING("node or its ws module missing");
  temp_file script(R"js(
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('listening', () => console.log(wss.address().port));
wss.on('connection', (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
setTimeout(() => process.exit(0), 30000);
)js");
  auto srv =
      spawn({"/usr/bin/env", "NODE_PATH=" NBIO_TEST_NODE_MODULES, "/usr/bin/node", script.path()});
  const auto port = srv.read_line(10s);
  ASSERT_TRUE(port) << "the Node server did not start";
  recorder r;
  event_log<std::error_code> errors;  // before the engine: it stops first
  nbio::engine eng({.loops = 1});
  client cl(eng, std::ref(r));
  eng.start();
  cl.connect("ws://127.0.0.1:" + *port + "/", [&](std::error_code ec) { errors.push(ec); });
  EXPECT_TRUE(r.received.wait_for_size(2, 10s)) << "errors: " << errors.size();
  const auto got = r.received.snapshot();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "t:ping?");
  EXPECT_EQ(got[1], "b:" + std::string(50'000, 'z'));
  ASSERT_TRUE(r.closes.wait_for_size(1, 10s));
  EXPECT_EQ(r.closes.snapshot()[0], 1000);
  eng.stop();
  ::kill(srv.pid(), SIGTERM);
  srv.wait(10s);
}

}  // namespace
