// Integration: websocket::client over real loopback sockets: against nbio's own server (whose
// 1002 for unmasked frames proves the client masks), against Python's websockets server, and
// against servers that answer the handshake wrongly or not at all.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "nbio/websocket/client.hpp"
#include "support/child_process.hpp"
#include "support/event_log.hpp"
#include "support/peer.hpp"
#include "support/raw_socket.hpp"
#include "support/spawn.hpp"
#include "support/test_server.hpp"
#include "support/tool_run.hpp"
#include "support/wait.hpp"
#include "support/ws_test_server.hpp"

namespace {

using namespace nbio_test;
using namespace nbio::websocket;
using namespace std::chrono_literals;

// Echoes on the server side.
struct echo {
  void on_message(connection& ws, std::string_view d, bool binary) { ws.send(d, binary); }
};

// The client side: sends `messages` on open, records what comes back, closes after the last.
struct recorder {
  std::vector<std::pair<std::string, bool>> messages;
  event_log<std::string> received;
  event_log<int> closes;
  std::mutex mutex;
  std::string protocol;
  void on_open(connection& ws) {
    {
      std::lock_guard lock(mutex);
      protocol = std::string(ws.subprotocol());
    }
    for (const auto& [m, binary] : messages)
      ws.send(m, binary);
  }
  void on_message(connection& ws, std::string_view d, bool binary) {
    received.push((binary ? "b:" : "t:") + std::string(d));
    if (received.size() == messages.size()) ws.close(close_code::normal, "done");
  }
  void on_close(connection&, std::uint16_t code, std::string_view) { closes.push(code); }
};

struct client_rig {
  explicit client_rig(recorder& r, endpoint_options o = {})
      : eng({.loops = 2}), cl(eng, std::ref(r), o) {
    eng.start();
  }
  ~client_rig() { eng.stop(); }
  nbio::engine eng;
  client cl;
};

std::string ws_url(const nbio::address& a, std::string_view path = "/ws") {
  return "ws://127.0.0.1:" + std::to_string(a.port()) + std::string(path);
}

TEST(ws_threading_client, messages_echo_from_nbios_server_and_the_close_completes) {
  echo e;
  ws_test_server server(e, nbio::io_mode::nonblocking);
  recorder r;
  r.messages = {{"hello", false}, {std::string(100'000, 'x'), true}, {"", false}};
  event_log<std::error_code> errors;  // before the rig: the engine stops first
  client_rig rig(r);
  rig.cl.connect(ws_url(server.address()), [&](std::error_code ec) { errors.push(ec); });
  ASSERT_TRUE(r.received.wait_for_size(3, 10s)) << "errors: " << errors.size();
  const auto got = r.received.snapshot();
  EXPECT_EQ(got[0], "t:hello");
  EXPECT_EQ(got[1], "b:" + std::string(100'000, 'x'));
  EXPECT_EQ(got[2], "t:");
  ASSERT_TRUE(r.closes.wait_for_size(1, 10s));
  EXPECT_EQ(r.closes.snapshot()[0], 1000) << "the server's echo of our close";
  EXPECT_EQ(errors.size(), 0u);
}

TEST(ws_threading_client, a_subprotocol_is_offered_and_the_servers_choice_kept) {
  echo e;
  endpoint_options so;
  so.subprotocols = "chat";
  ws_test_server server(e, nbio::io_mode::nonblocking, so);
  recorder r;
  r.messages = {{"x", false}};
  endpoint_options co;
  co.subprotocols = "superchat, chat";
  client_rig rig(r, co);
  rig.cl.connect(ws_url(server.address()));
  ASSERT_TRUE(r.received.wait_for_size(1, 10s));
  std::lock_guard lock(r.mutex);
  EXPECT_EQ(r.protocol, "chat");
}

TEST(ws_threading_client, python_websockets_server_echoes_our_masked_frames) {
  const char* python = "/usr/bin/python3";
  if (::access(python, X_OK) != 0 ||
      run_tool(std::string(python) + " -c 'import websockets' 2>&1").status != 0)
    NBIO_PEER_MISSING("python3-websockets not installed");
  temp_file script(
      "import asyncio, websockets\n"
      "async def echo(ws):\n"
      "    async for m in ws:\n"
      "        await ws.send(m)\n"
      "async def main():\n"
      "    async with websockets.serve(echo, \"127.0.0.1\", 0, max_size=None,\n"
      "                                compression=None) as s:\n"
      "        print(s.sockets[0].getsockname()[1], flush=True)\n"
      "        await asyncio.sleep(30)\n"
      "asyncio.run(main())\n");
  auto py = spawn({python, script.path()});
  const auto port = py.read_line(10s);
  ASSERT_TRUE(port) << "the Python server did not start";
  recorder r;
  r.messages = {{"grüße", false}, {std::string(70'000, 'y'), true}};
  event_log<std::error_code> errors;  // before the rig: the engine stops first
  client_rig rig(r);
  rig.cl.connect("ws://127.0.0.1:" + *port + "/", [&](std::error_code ec) { errors.push(ec); });
  EXPECT_TRUE(r.received.wait_for_size(2, 10s)) << "errors: " << errors.size();
  const auto got = r.received.snapshot();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "t:grüße");
  EXPECT_EQ(got[1], "b:" + std::string(70'000, 'y'));
  EXPECT_TRUE(r.closes.wait_for_size(1, 10s));
  ::kill(py.pid(), SIGTERM);
  py.wait(10s);
}

// A TCP server that answers anything with `answer` (and then keeps quiet).
struct canned {
  std::string answer;
  void on_data(nbio::conn& c, std::string_view) {
    if (!answer.empty()) c.write(answer);
  }
};

TEST(ws_threading_client, bad_handshakes_fail_with_their_reason_and_the_handler_hears_nothing) {
  const std::pair<std::string, std::error_code> cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", errc::handshake_status},
      {"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", errc::handshake_fields},
      {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
       errc::handshake_accept},
      {"garbage\r\n\r\n", nbio::http::errc::bad_status_line},
      {"", errc::handshake_timeout},  // never answers
  };
  for (const auto& [answer, want] : cases) {
    test_server server(canned{answer});
    recorder r;
    endpoint_options o;
    o.handshake_timeout = 300ms;
    event_log<std::error_code> errors;  // before the rig: the engine stops first
    client_rig rig(r, o);
    rig.cl.connect(ws_url(server.address()), [&](std::error_code ec) { errors.push(ec); });
    ASSERT_TRUE(errors.wait_for_size(1, 10s)) << answer;
    EXPECT_EQ(errors.snapshot()[0], want) << answer << " -> " << errors.snapshot()[0].message();
    EXPECT_EQ(r.closes.size(), 0u);
  }
}

TEST(ws_threading_client, bad_urls_and_refused_connections_fail) {
  recorder r;
  event_log<std::error_code> errors, refused;  // before the rig: the engine stops first
  client_rig rig(r);
  for (const char* url : {"http://127.0.0.1:1/", "ws://", "ws://a b/", "https://127.0.0.1/"})
    rig.cl.connect(url, [&](std::error_code ec) { errors.push(ec); });
  ASSERT_TRUE(errors.wait_for_size(4, 5s));
  for (const auto& ec : errors.snapshot())
    EXPECT_EQ(ec, errc::bad_url);
  rig.cl.connect("ws://127.0.0.1:" + std::to_string(unused_tcp_port()) + "/",
                 [&](std::error_code ec) { refused.push(ec); });
  ASSERT_TRUE(refused.wait_for_size(1, 10s));
  EXPECT_EQ(refused.snapshot()[0], std::errc::connection_refused);
}

}  // namespace
