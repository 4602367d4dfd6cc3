// Integration: websocket::endpoint_options::max_buffered_bytes over real loopback sockets.
// Clients that send the first fragment of a message and stall make the server assemble it; past
// the budget the ones holding the most fail with 1008 (policy violation), the total stays near
// the budget, and the others' messages complete. Every wait is bounded.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nbio/websocket/frame.hpp"
#include "nbio/websocket/server.hpp"
#include "support/raw_socket.hpp"
#include "support/wait.hpp"
#include "support/ws_test_server.hpp"

namespace {

using namespace nbio_test;
using namespace nbio::websocket;

// Answers each message with its size.
struct size_handler {
  void on_message(connection& ws, std::string_view data, bool) {
    ws.send(std::to_string(data.size()), false);
  }
};

TEST(ws_buffer_budget, stalled_fragmented_messages_past_the_budget_fail_with_1008) {
  constexpr std::size_t budget = 256 * 1024;
  constexpr std::size_t clients = 24;
  constexpr std::size_t piece = 30 * 1024;
  size_handler h;
  endpoint_options o;
  o.max_buffered_bytes = budget;
  ws_test_server srv(h, nbio::io_mode::nonblocking, o);
  server& ws = srv.ws();

  std::vector<unique_fd> stalled;
  for (std::size_t i = 0; i < clients; ++i) {
    unique_fd fd = connect_stream(srv.address());
    ASSERT_TRUE(send_all(fd.get(), ws_upgrade_request));
    ASSERT_EQ(recv_exact(fd.get(), ws_switching.size()).data, ws_switching);
    ASSERT_TRUE(
        send_all(fd.get(), client_frame(opcode::binary, std::string(piece, 'm'), /*fin=*/false)));
    stalled.push_back(std::move(fd));
  }
  // Every fragment was taken: each is held whole (in a string at least that large) or its
  // connection was failed.
  ASSERT_TRUE(wait_until([&] {
    const auto s = ws.stats();
    return s.buffering_connections + s.budget_evictions == clients &&
           s.buffered_bytes >= s.buffering_connections * piece;
  })) << ws.stats().buffering_connections
      << " " << ws.stats().budget_evictions;
  const std::size_t bound = budget + 2 * piece;  // one message's growth past it at most
  EXPECT_LE(ws.stats().buffered_bytes, bound);

  // Each client ends its message: the failed ones have their close frame waiting (1008), the
  // others get the message's size back.
  std::size_t failed = 0, completed = 0;
  for (auto& fd : stalled)
    (void)send_all(fd.get(), client_frame(opcode::continuation, "x"));
  for (auto& fd : stalled) {
    const read_result head = recv_exact(fd.get(), 2);
    ASSERT_EQ(head.data.size(), 2u);
    const auto op = static_cast<opcode>(head.data[0] & 0x0f);
    const std::size_t len = static_cast<unsigned char>(head.data[1]) & 0x7f;
    ASSERT_LT(len, 126u);
    const std::string payload = recv_exact(fd.get(), len).data;
    if (op == opcode::close) {
      ++failed;
      ASSERT_GE(payload.size(), 2u);
      EXPECT_EQ(
          (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]),
          1008);
      EXPECT_TRUE(recv_until_eof(fd.get()).eof);
    } else {
      EXPECT_EQ(op, opcode::text);
      EXPECT_EQ(payload, std::to_string(piece + 1));
      ++completed;
    }
  }
  EXPECT_EQ(failed, ws.stats().budget_evictions);
  EXPECT_EQ(failed + completed, clients);
  EXPECT_LE(completed, bound / piece);
  EXPECT_GE(completed, budget / (2 * piece) - 1);
  EXPECT_TRUE(wait_until([&] { return ws.stats().buffered_bytes == 0; }))
      << ws.stats().buffered_bytes;
}

}  // namespace
