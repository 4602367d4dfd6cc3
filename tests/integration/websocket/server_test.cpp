// Integration: websocket::server over real loopback sockets in the three I/O modes: the upgrade
// and its refusals, echo of whole, fragmented and early messages, ping/pong, the closing
// handshake, and protocol errors closed with their codes (1002, 1007, 1009); Python's
// websockets library (Debian python3-websockets) as a real client.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <string>

#include "nbio/http/serve_mux.hpp"
#include "nbio/http/server.hpp"
#include "nbio/websocket/frame.hpp"
#include "nbio/websocket/server.hpp"
#include "support/io_mode_name.hpp"
#include "support/peer.hpp"
#include "support/raw_socket.hpp"
#include "support/tool_run.hpp"
#include "support/wait.hpp"
#include "support/ws_test_server.hpp"

namespace {

using namespace nbio_test;
using namespace nbio::websocket;
using namespace std::chrono_literals;

struct echo_handler {
  std::atomic<int> opened{0};
  std::atomic<int> closed{0};
  std::atomic<int> last_close_code{0};
  void on_open(connection&) { opened.fetch_add(1); }
  void on_message(connection& ws, std::string_view data, bool binary) {
    if (data == "please close") {
      ws.close(close_code::going_away, "asked to");
      return;
    }
    ws.send(data, binary);
  }
  void on_close(connection&, std::uint16_t code, std::string_view) {
    last_close_code = code;
    closed.fetch_add(1);
  }
};

// The echo server of these tests.
class ws_server_rig {
 public:
  explicit ws_server_rig(nbio::io_mode mode, endpoint_options o = {}) : server_(echo_, mode, o) {}
  const nbio::address& address() const { return server_.address(); }
  echo_handler& events() { return echo_; }

 private:
  echo_handler echo_;
  ws_test_server server_;
};

constexpr std::string_view upgrade_request = ws_upgrade_request;
constexpr std::string_view switching = ws_switching;

std::string close_payload(std::uint16_t code) {
  return {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
}

class ws_server : public ::testing::TestWithParam<nbio::io_mode> {
 protected:
  // A client connection past the handshake.
  unique_fd open(ws_server_rig& rig, std::string_view early = {}) {
    unique_fd fd = connect_stream(rig.address());
    EXPECT_TRUE(send_all(fd.get(), std::string(upgrade_request) + std::string(early)));
    EXPECT_EQ(recv_exact(fd.get(), switching.size()).data, switching);
    return fd;
  }
};

TEST_P(ws_server, the_handshake_answers_the_rfc_example_and_messages_echo) {
  ws_server_rig rig(GetParam());
  unique_fd fd = open(rig);
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::text, "hello")));
  EXPECT_EQ(recv_exact(fd.get(), 7).data, server_frame(opcode::text, "hello"));
  const std::string big(70'000, 'b');
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::binary, big)));
  const std::string want = server_frame(opcode::binary, big);
  EXPECT_TRUE(recv_exact(fd.get(), want.size()).data == want);
  EXPECT_EQ(rig.events().opened.load(), 1);
}

TEST_P(ws_server, frames_sent_with_the_upgrade_request_are_read) {
  ws_server_rig rig(GetParam());
  unique_fd fd = open(rig, client_frame(opcode::text, "early"));
  EXPECT_EQ(recv_exact(fd.get(), 7).data, server_frame(opcode::text, "early"));
}

TEST_P(ws_server, a_fragmented_message_with_a_ping_inside_is_echoed_whole_after_the_pong) {
  ws_server_rig rig(GetParam());
  unique_fd fd = open(rig);
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::text, "frag", false)));
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::ping, "p")));
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::continuation, "ment", false)));
  // The last fragment byte by byte: headers and payload split across reads.
  for (char ch : client_frame(opcode::continuation, "ed", true))
    ASSERT_TRUE(send_all(fd.get(), std::string(1, ch)));
  const std::string want =
      server_frame(opcode::pong, "p") + server_frame(opcode::text, "fragmented");
  EXPECT_EQ(recv_exact(fd.get(), want.size()).data, want);
}

TEST_P(ws_server, the_closing_handshake_echoes_the_code_then_closes) {
  ws_server_rig rig(GetParam());
  unique_fd fd = open(rig);
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::close, close_payload(1000) + "done")));
  const read_result r = recv_until_eof(fd.get(), 5s);
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.data, server_frame(opcode::close, close_payload(1000)));
  ASSERT_TRUE(wait_until([&] { return rig.events().closed.load() == 1; }));
  EXPECT_EQ(rig.events().last_close_code.load(), 1000);
}

TEST_P(ws_server, a_server_initiated_close_waits_for_the_peers_close) {
  ws_server_rig rig(GetParam());
  unique_fd fd = open(rig);
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::text, "please close")));
  std::string want = server_frame(opcode::close, close_payload(1001) + "asked to");
  EXPECT_EQ(recv_exact(fd.get(), want.size()).data, want);
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::text, "dropped")));  // while closing
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::close, close_payload(1001))));
  const read_result r = recv_until_eof(fd.get(), 5s);
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.data, "") << "a message was answered while closing";
}

TEST_P(ws_server, a_peer_that_never_closes_is_cut_off_by_the_close_timeout) {
  endpoint_options o;
  o.close_timeout = 300ms;
  ws_server_rig rig(GetParam(), o);
  unique_fd fd = open(rig);
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::text, "please close")));
  const read_result r = recv_until_eof(fd.get(), 5s);
  EXPECT_TRUE(r.eof) << "still open after the close timeout";
  ASSERT_TRUE(wait_until([&] { return rig.events().closed.load() == 1; }));
  EXPECT_EQ(rig.events().last_close_code.load(), 1006);
}

TEST_P(ws_server, a_peer_that_keeps_sending_but_never_closes_is_cut_off_too) {
  endpoint_options o;
  o.close_timeout = 400ms;
  ws_server_rig rig(GetParam(), o);
  unique_fd fd = open(rig);
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::text, "please close")));
  // A message every 100 ms: reads must not push the close deadline back.
  const auto until = std::chrono::steady_clock::now() + 3s;
  bool cut = false;
  while (std::chrono::steady_clock::now() < until && !cut) {
    cut = !send_all(fd.get(), client_frame(opcode::text, "more"), 200ms);
    const read_result r = recv_for(fd.get(), 100ms);
    cut = cut || r.eof || r.error != 0;
  }
  EXPECT_TRUE(cut) << "still open 3 s after a 400 ms close timeout";
}

TEST_P(ws_server, keepalive_pings_a_silent_peer_and_closes_one_that_does_not_answer) {
  endpoint_options o;
  o.ping_interval = 200ms;
  o.pong_timeout = 300ms;
  ws_server_rig rig(GetParam(), o);
  unique_fd fd = open(rig);
  const std::string ping = server_frame(opcode::ping, "");
  // Silent: a ping comes; answering it keeps the connection, twice over.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(recv_exact(fd.get(), ping.size(), 5s).data, ping) << i;
    ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::pong, "")));
  }
  // Messages still echo.
  ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::text, "alive")));
  EXPECT_EQ(recv_exact(fd.get(), 7).data, server_frame(opcode::text, "alive"));
  // Not answering: the next ping, then the close.
  EXPECT_EQ(recv_exact(fd.get(), ping.size(), 5s).data, ping);
  const read_result r = recv_until_eof(fd.get(), 5s);
  EXPECT_TRUE(r.eof) << "still open after a ping went unanswered";
  ASSERT_TRUE(wait_until([&] { return rig.events().closed.load() == 1; }));
  EXPECT_EQ(rig.events().last_close_code.load(), 1006);
}

struct protocol_error_case {
  const char* name;
  std::string frames;
  std::uint16_t code;
};

TEST_P(ws_server, protocol_errors_close_with_their_codes) {
  endpoint_options o;
  o.limits.max_message = 1000;
  const protocol_error_case cases[] = {
      {"unmasked client frame", client_frame(opcode::text, "x", true, false), 1002},
      {"reserved opcode", client_frame(static_cast<opcode>(3), "x"), 1002},
      {"continuation without a message", client_frame(opcode::continuation, "x"), 1002},
      {"invalid UTF-8",
       client_frame(opcode::text,
                    "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce"
                    "\xb5\xed\xa0\x80"),
       1007},
      {"message too big", client_frame(opcode::binary, std::string(1001, 'x')), 1009},
      {"fragmented ping", client_frame(opcode::ping, "x", false), 1002},
  };
  ws_server_rig rig(GetParam(), o);
  for (const auto& c : cases) {
    unique_fd fd = open(rig);
    ASSERT_TRUE(send_all(fd.get(), c.frames)) << c.name;
    const read_result r = recv_until_eof(fd.get(), 5s);
    EXPECT_TRUE(r.eof) << c.name;
    ASSERT_GE(r.data.size(), 4u) << c.name;
    EXPECT_EQ(static_cast<unsigned char>(r.data[0]), 0x88u) << c.name << ": not a close frame";
    const auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(r.data[2]) << 8) |
                                                 static_cast<unsigned char>(r.data[3]));
    EXPECT_EQ(code, c.code) << c.name;
  }
}

TEST_P(ws_server, bad_handshakes_get_400_or_426) {
  ws_server_rig rig(GetParam());
  const std::pair<std::string, std::string> cases[] = {
      {"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "HTTP/1.1 400"},
      {"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n",
       "HTTP/1.1 400"},
      {"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
       "HTTP/1.1 426"},
  };
  for (const auto& [request, status] : cases) {
    unique_fd fd = connect_stream(rig.address());
    ASSERT_TRUE(send_all(fd.get(), request));
    const read_result r = recv_for(fd.get(), 300ms);
    EXPECT_TRUE(r.data.starts_with(status)) << r.data;
  }
}

// A route that wraps upgrade() keeps the room an upgrade needs only if the wrapper passes the
// upgrade's takeover_bytes on. One that drops them gets a 500 (hijack throws a logic_error
// naming them: the listener reserved nothing), not a connection closed without an answer; one
// that passes them upgrades.
TEST_P(ws_server, a_wrapped_upgrade_route_without_its_takeover_bytes_answers_500) {
  echo_handler h;
  nbio::engine eng({.loops = 1});
  nbio::websocket::server ws(eng, std::ref(h));
  const nbio::http::handler up = ws.upgrade();
  auto wrapper = [up](nbio::http::response_writer& w, nbio::http::request& r) { up(w, r); };
  nbio::http::serve_mux dropped, kept;
  dropped.handle("GET /ws", wrapper);
  kept.handle("GET /ws", nbio::http::handler(wrapper, up.takeover_bytes()));
  EXPECT_GT(up.takeover_bytes(), 0u);
  EXPECT_EQ(dropped.takeover_bytes(), 0u);
  EXPECT_EQ(kept.takeover_bytes(), up.takeover_bytes());
  nbio::http::server without(eng, dropped), with(eng, kept);
  const nbio::address a = without.listen("127.0.0.1:0", listen_for(GetParam())).local_address();
  const nbio::address b = with.listen("127.0.0.1:0", listen_for(GetParam())).local_address();
  eng.start();
  {
    unique_fd fd = connect_stream(a);
    ASSERT_TRUE(send_all(fd.get(), upgrade_request));
    const read_result r = recv_for(fd.get(), 500ms);
    EXPECT_TRUE(r.data.starts_with("HTTP/1.1 500")) << r.data;
  }
  {
    unique_fd fd = connect_stream(b);
    ASSERT_TRUE(send_all(fd.get(), upgrade_request));
    EXPECT_EQ(recv_exact(fd.get(), switching.size()).data, switching);
    ASSERT_TRUE(send_all(fd.get(), client_frame(opcode::text, "hello")));
    EXPECT_EQ(recv_exact(fd.get(), 7).data, server_frame(opcode::text, "hello"));
  }
  eng.stop();
}

TEST_P(ws_server, python_websockets_client_echoes_text_binary_and_pings) {
  const char* python = "/usr/bin/python3";
  if (::access(python, X_OK) != 0 ||
      run_tool(std::string(python) + " -c 'import websockets' 2>&1").status != 0)
    NBIO_PEER_MISSING("python3-websockets not installed");
  ws_server_rig rig(GetParam());
  const std::string script =
      "import asyncio, os, sys, websockets\n"
      "async def main(port):\n"
      "    async with websockets.connect(f\"ws://127.0.0.1:{port}/ws\", max_size=None,\n"
      "                                  compression=None) as ws:\n"
      "        for m in [\"hello\", \"\", \"\\u00fc\\u20ac\\U0001F600\" * 100, "
      "os.urandom(100000),\n"
      "                  \"x\" * 70000]:\n"
      "            await ws.send(m)\n"
      "            assert await ws.recv() == m\n"
      "        await asyncio.wait_for(await ws.ping(b\"abc\"), 5)\n"
      "        await ws.close(code=4000)\n"
      "        print(\"ok\", ws.close_code)\n"
      "asyncio.run(main(int(sys.argv[1])))\n";
  temp_file file(script);
  tool_run r = run_tool(std::string(python) + " " + file.path() + " " +
                        std::to_string(rig.address().port()) + " 2>&1");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "ok 4000\n");
  ASSERT_TRUE(wait_until([&] { return rig.events().closed.load() == 1; }));
  EXPECT_EQ(rig.events().last_close_code.load(), 4000);
}

INSTANTIATE_TEST_SUITE_P(ws_loop, ws_server, ::testing::Values(nbio::io_mode::nonblocking),
                         io_mode_name);
INSTANTIATE_TEST_SUITE_P(ws_threading_blocking, ws_server,
                         ::testing::Values(nbio::io_mode::blocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(ws_threading_mixed, ws_server, ::testing::Values(nbio::io_mode::mixed),
                         io_mode_name);

}  // namespace
