// ws_echo under clients that send and never read (issue 13): 200 clients each send 8 MiB of
// 64 KiB binary messages, ws_echo echoes them, nothing reads the echoes. Without a bound on the
// sum of the write queues the server held 755 MB (4 MiB per connection); with the engine's
// write budget its resident memory grows by at most the budget + 25%, and a client that reads
// keeps getting its echoes meanwhile. Heavy: ~1 GB through loopback and a few hundred MB of
// kernel socket memory at the peak.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "support/raw_socket.hpp"
#include "support/spawn.hpp"

namespace {

using namespace std::chrono_literals;
using namespace nbio_test;

constexpr std::size_t budget = 256u << 20;  // the default
constexpr int hogs = 200;
constexpr std::size_t message = 64u << 10;
constexpr std::size_t messages_per_hog = 192;  // 12 MiB: well past what the kernel buffers take

// A field of /proc/<pid>/status in KiB (VmRSS: now, VmHWM: the peak), -1 when unreadable.
long status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

// A client frame (FIN, binary) with the mask key 0: masked as RFC 6455 requires, and the
// payload unchanged, so one frame buffer serves every client.
std::string client_frame(std::string_view payload) {
  std::string f;
  f.push_back(static_cast<char>(0x82));
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      f.push_back(static_cast<char>((payload.size() >> shift) & 0xff));
  }
  f.append(4, '\0');
  f.append(payload);
  return f;
}

// A WebSocket connection to ws_echo's /ws after a 101, or an invalid fd.
unique_fd ws_connect(const nbio::address& to, int rcvbuf) {
  unique_fd fd = rcvbuf ? connect_small_rcvbuf(to, rcvbuf) : connect_stream(to);
  if (!fd) return fd;
  const std::string upgrade =
      "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (!send_all(fd.get(), upgrade)) return {};
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos) {
    read_result r = recv_exact(fd.get(), 1, 10s);
    if (r.data.empty()) return {};
    head += r.data;
  }
  if (head.rfind("HTTP/1.1 101", 0) != 0) return {};
  return fd;
}

// On its own thread: sends small messages and checks each echo until destroyed.
struct echo_client {
  std::atomic<bool> stop{false};
  std::atomic<int> echoed{0};
  std::atomic<int> failed{0};
  std::thread thread;

  explicit echo_client(int fd) : thread([this, fd] { run(fd); }) {}
  ~echo_client() { finish(); }
  void finish() {
    stop = true;
    if (thread.joinable()) thread.join();
  }

 private:
  void run(int fd) {
    for (int i = 0; !stop.load(); ++i) {
      const std::string text = "echo " + std::to_string(i);
      if (!send_all(fd, client_frame(text))) {
        ++failed;
        return;
      }
      read_result r = recv_exact(fd, 2 + text.size(), 10s);
      if (r.data.size() != 2 + text.size() || r.data.substr(2) != text) {
        ++failed;
        return;
      }
      ++echoed;
      std::this_thread::sleep_for(5ms);
    }
  }
};

TEST(heavy_ws_echo_write_budget, clients_that_never_read_hold_at_most_the_budget) {
  // Each connection may queue all it is sent (16 MiB > 8 MiB): then only the budget bounds the
  // sum, and it must close some. With the default 4 MiB cap the per-connection closes could
  // keep the sum under the budget on their own when the clients' floods did not overlap.
  auto server = spawn({NBIO_TEST_WS_ECHO_BIN, "--port", "0", "--loops", "2", "--write-budget",
                       std::to_string(budget), "--max-write-queue", std::to_string(16u << 20)});
  auto line = server.read_line(10s);
  ASSERT_TRUE(line) << "ws_echo did not start";
  const auto addr = nbio::address::parse("127.0.0.1:" + line->substr(line->rfind(':') + 1));
  ASSERT_TRUE(addr) << *line;

  unique_fd reader = ws_connect(*addr, 0);
  ASSERT_TRUE(reader);
  echo_client echoes(reader.get());
  const long base_kib = status_kib(server.pid(), "VmRSS");
  ASSERT_GT(base_kib, 0);

  // Small receive buffers: the echoes pile up in the server's queues rather than in the
  // kernel's buffers of 200 sockets.
  std::vector<unique_fd> fds;
  for (int i = 0; i < hogs; ++i) {
    fds.push_back(ws_connect(*addr, 16384));
    ASSERT_TRUE(fds.back()) << "client " << i;
    set_nonblocking(fds.back().get());
  }
  const std::string frame = client_frame(std::string(message, 'x'));
  const std::size_t total = frame.size() * messages_per_hog;
  std::vector<std::size_t> sent(hogs, 0);
  std::vector<bool> done(hogs, false);
  int reset = 0, finished = 0;
  const auto deadline = std::chrono::steady_clock::now() + 150s;
  while (reset + finished < hogs && std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> waiting;
    for (int i = 0; i < hogs; ++i) {
      if (done[i]) continue;
      // Send until the kernel is full, this client's 8 MiB are out, or the server closed it.
      for (;;) {
        const std::size_t at = sent[i] % frame.size();
        const ssize_t n = ::send(fds[i].get(), frame.data() + at, frame.size() - at, MSG_NOSIGNAL);
        if (n > 0) {
          sent[i] += static_cast<std::size_t>(n);
          if (sent[i] < total) continue;
          ++finished;  // sent everything; it stays open and still never reads
          done[i] = true;
        } else if (errno == EAGAIN) {
          waiting.push_back({fds[i].get(), POLLOUT, 0});
        } else {  // EPIPE, ECONNRESET: the server closed it
          ++reset;
          done[i] = true;
          fds[i].reset();
        }
        break;
      }
    }
    if (!waiting.empty()) ::poll(waiting.data(), waiting.size(), 100);
  }
  EXPECT_EQ(reset + finished, hogs) << "the flood did not end within the deadline";
  const long peak_kib = status_kib(server.pid(), "VmHWM");
  echoes.finish();

  const long growth_kib = peak_kib - base_kib;
  std::printf(
      "ws_echo: RSS %ld KiB at the start, peak %ld KiB (+%ld KiB); budget %zu KiB; "
      "%d clients reset while sending, %d sent everything; %d echoes\n",
      base_kib, peak_kib, growth_kib, budget >> 10, reset, finished, echoes.echoed.load());
  EXPECT_LE(growth_kib, static_cast<long>((budget >> 10) * 5 / 4))
      << "the server's memory grew past the write budget + 25%";
  EXPECT_EQ(echoes.failed.load(), 0) << "the reading client lost its echoes";
  EXPECT_GT(echoes.echoed.load(), 0);

  // ws_echo counts the connections the budget closed as it stops.
  ::kill(server.pid(), SIGTERM);
  long budget_closes = -1;
  while (auto out = server.read_line(10s)) {
    const auto at = out->find(" connections closed by the write budget");
    if (at != std::string::npos) {
      budget_closes = std::stol(out->substr(out->rfind(' ', at - 1) + 1));
      break;
    }
  }
  EXPECT_GT(budget_closes, 0) << "the write budget closed nothing: the flood never reached it";
  EXPECT_EQ(server.wait(10s), 0);
}

}  // namespace
