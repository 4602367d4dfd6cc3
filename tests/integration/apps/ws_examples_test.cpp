// The WebSocket examples end to end: ws_client against ws_echo (messages echoed, a bad path
// refused with exit 1), against ws_chat (the welcome, then its own message broadcast to its
// room, and a second member of the room hears it too), and against the short ones: ws_hello
// (the 15-line echo) and ws_rooms (the 30-line chat: a room's messages stay in the room).
// Loopback only; bounded.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <thread>

#include "support/child_process.hpp"
#include "support/raw_socket.hpp"
#include "support/spawn.hpp"
#include "support/tool_run.hpp"

namespace {

using namespace std::chrono_literals;
using namespace nbio_test;

std::string port_of(child_process& p) {
  auto line = p.read_line(10s);
  return line ? line->substr(line->rfind(':') + 1) : std::string();
}

void stop(child_process& p) {
  ::kill(p.pid(), SIGTERM);
  EXPECT_EQ(p.wait(10s), 0);
}

TEST(ws_examples, ws_client_gets_its_messages_back_from_ws_echo) {
  auto server = spawn({NBIO_TEST_WS_ECHO_BIN, "--port", "0", "--loops", "1"});
  const std::string port = port_of(server);
  ASSERT_FALSE(port.empty());
  tool_run ok = run_tool(std::string(NBIO_TEST_WS_CLIENT_BIN) + " ws://127.0.0.1:" + port +
                         "/ws -m hello -m 'two words' 2>/dev/null");
  EXPECT_EQ(ok.status, 0);
  EXPECT_EQ(ok.output, "hello\ntwo words\n");
  tool_run refused = run_tool(std::string(NBIO_TEST_WS_CLIENT_BIN) + " ws://127.0.0.1:" + port +
                              "/elsewhere -m x 2>&1");
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.output.find("101"), std::string::npos) << refused.output;
  stop(server);
}

TEST(ws_examples, ws_chat_broadcasts_to_the_room) {
  auto server = spawn({NBIO_TEST_WS_CHAT_BIN, "--port", "0", "--loops", "2"});
  const std::string port = port_of(server);
  ASSERT_FALSE(port.empty());
  const std::string url = " ws://127.0.0.1:" + port + "/ws";
  // A listener in room "r" waits for 3 messages: welcome, the join answer, the speaker's line.
  auto listener = spawn({NBIO_TEST_WS_CLIENT_BIN, "ws://127.0.0.1:" + port + "/ws", "-m", "/join r",
                         "--wait", "3", "--timeout-ms", "10000"});
  std::string heard;
  for (int i = 0; i < 3; ++i) {  // stdout and stderr share the pipe: read until joined
    auto line = listener.read_line(10s);
    ASSERT_TRUE(line);
    heard += *line + "\n";
    if (line->find("you are in r") != std::string::npos) break;
  }
  ASSERT_NE(heard.find("you are in r"), std::string::npos) << heard;
  tool_run speaker = run_tool(std::string(NBIO_TEST_WS_CLIENT_BIN) + url +
                              " -m '/join r' -m 'hi room' --wait 3 2>/dev/null");
  EXPECT_EQ(speaker.status, 0);
  EXPECT_NE(speaker.output.find(": hi room"), std::string::npos) << speaker.output;
  std::string rest;
  while (auto line = listener.read_line(10s))
    rest += *line + "\n";
  EXPECT_NE(rest.find(": hi room"), std::string::npos) << heard << rest;
  EXPECT_EQ(listener.wait(10s), 0);
  stop(server);
}

// ws_hello and ws_rooms take the port as their argument and print nothing: they get a free
// port, then ws_client tries until it connects (at most 5 s).
void wait_until_serving(const std::string& port) {
  for (int i = 0; i < 100; ++i) {
    if (run_tool(std::string(NBIO_TEST_WS_CLIENT_BIN) + " ws://127.0.0.1:" + port +
                 "/ws --timeout-ms 1000 2>/dev/null")
            .status == 0)
      break;
    std::this_thread::sleep_for(50ms);
  }
}

TEST(ws_examples, ws_hello_echoes_on_the_port_it_is_given) {
  const std::string port = std::to_string(unused_tcp_port());
  auto server = spawn({NBIO_TEST_WS_HELLO_BIN, port});
  wait_until_serving(port);
  tool_run ok = run_tool(std::string(NBIO_TEST_WS_CLIENT_BIN) + " ws://127.0.0.1:" + port +
                         "/ws -m hello -m 'two words' --binary 2>/dev/null");
  EXPECT_EQ(ok.status, 0);
  EXPECT_EQ(ok.output, "[binary, 5 bytes]\n[binary, 9 bytes]\n");
  ::kill(server.pid(), SIGTERM);  // no signal handling in 15 lines: it just ends
  server.wait(10s);
}

TEST(ws_examples, ws_rooms_keeps_a_rooms_messages_in_the_room) {
  const std::string port = std::to_string(unused_tcp_port());
  auto server = spawn({NBIO_TEST_WS_ROOMS_BIN, port});
  wait_until_serving(port);
  const std::string url = "ws://127.0.0.1:" + port + "/ws";
  // A lobby member: its own "here" comes back once it is subscribed; then it waits for one more.
  auto member =
      spawn({NBIO_TEST_WS_CLIENT_BIN, url, "-m", "here", "--wait", "2", "--timeout-ms", "10000"});
  std::string heard;
  for (int i = 0; i < 3 && heard.find("here\n") == std::string::npos; ++i)
    if (auto line = member.read_line(10s)) heard += *line + "\n";
  ASSERT_NE(heard.find("here\n"), std::string::npos) << heard;
  // Someone in room r talks first: only room r hears it (the member would get it first).
  tool_run away = run_tool(std::string(NBIO_TEST_WS_CLIENT_BIN) + " " + url +
                           " -m '/join r' -m 'in r' --wait 1 2>/dev/null");
  EXPECT_EQ(away.status, 0);
  EXPECT_EQ(away.output, "in r\n");
  tool_run speaker = run_tool(std::string(NBIO_TEST_WS_CLIENT_BIN) + " " + url +
                              " -m 'hi lobby' --wait 1 2>/dev/null");
  EXPECT_EQ(speaker.status, 0);
  EXPECT_EQ(speaker.output, "hi lobby\n");
  std::string rest;
  while (auto line = member.read_line(10s))
    rest += *line + "\n";
  EXPECT_NE(rest.find("hi lobby"), std::string::npos) << heard << rest;
  EXPECT_EQ(rest.find("in r"), std::string::npos) << heard << rest;
  EXPECT_EQ(member.wait(10s), 0);
  ::kill(server.pid(), SIGTERM);  // no signal handling in 15 lines: it just ends
  server.wait(10s);
}

}  // namespace
