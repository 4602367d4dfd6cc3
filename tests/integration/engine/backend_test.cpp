// Integration: the choice of back-end (engine_options::backend, NBIO_BACKEND), and the faults the
// io_uring back-end must survive: a reset mid-send, a close with a send in flight, thousands of
// connections sending at once into a ring of few buffers, writes from other threads racing
// close, and an engine stopped with operations in flight. The fault cases run on whatever
// back-end the environment picks: ctest runs them on epoll and again as io_uring/<case>.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "support/event_log.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;
using namespace std::chrono_literals;

// Whether this kernel gives the io_uring back-end what it needs (the answer `auto` acts on).
bool uring_available() {
  const char* saved = std::getenv("NBIO_BACKEND");
  const std::string keep = saved ? saved : "";
  ::unsetenv("NBIO_BACKEND");
  bool ok = true;
  try {
    nbio::engine e({.loops = 1, .backend = nbio::io_backend::io_uring});
  } catch (const std::system_error&) {
    ok = false;
  }
  if (saved) ::setenv("NBIO_BACKEND", keep.c_str(), 1);
  return ok;
}

// Runs fn in a child process (a seccomp filter cannot be taken off again); true if it exited 0.
template <class Fn>
bool in_child(Fn fn) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 1;
    try {
      rc = fn();
    } catch (...) {
      rc = 3;
    }
    ::_exit(rc);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A seccomp filter that makes io_uring_setup fail with EPERM, as a container runtime's does.
bool deny_io_uring_setup() {
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),  // seccomp_data.nr
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

TEST(backend_choice, explicit_io_uring_under_a_seccomp_filter_fails_at_construction_saying_why) {
  EXPECT_TRUE(in_child([] {
    ::unsetenv("NBIO_BACKEND");
    if (!deny_io_uring_setup()) return 10;
    try {
      nbio::engine e({.loops = 1, .backend = nbio::io_backend::io_uring});
      return 11;  // it must not start
    } catch (const std::system_error& e) {
      const std::string what = e.what();
      if (what.find("io_uring") == std::string::npos) return 12;
      if (what.find("EPERM") == std::string::npos &&
          what.find("not permitted") == std::string::npos)
        return 13;
    }
    // auto falls back to epoll, and the engine serves.
    nbio::engine e({.loops = 1, .backend = nbio::io_backend::automatic});
    return e.options().backend == nbio::io_backend::epoll ? 0 : 14;
  }));
}

TEST(backend_choice, nbio_backend_in_the_environment_overrides_the_configuration) {
  EXPECT_TRUE(in_child([] {
    ::setenv("NBIO_BACKEND", "epoll", 1);
    nbio::engine a({.loops = 1, .backend = nbio::io_backend::io_uring});
    if (a.options().backend != nbio::io_backend::epoll) return 20;
    ::setenv("NBIO_BACKEND", "kqueue", 1);
    try {
      nbio::engine b({.loops = 1});
      return 21;
    } catch (const std::invalid_argument&) {
    }
    return 0;
  }));
}

TEST(backend_choice, auto_picks_io_uring_where_the_kernel_offers_it) {
  const bool available = uring_available();
  EXPECT_TRUE(in_child([available] {
    ::unsetenv("NBIO_BACKEND");
    nbio::engine e({.loops = 1, .backend = nbio::io_backend::automatic});
    const auto want = available ? nbio::io_backend::io_uring : nbio::io_backend::epoll;
    return e.options().backend == want ? 0 : 30;
  }));
}

// --- faults ---------------------------------------------------------------------------------

struct echo {
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
};

// "W<KiB>": write that much; "C": write 4 MiB then close at once; anything else is echoed.
struct writer {
  event_log<std::error_code>* closed;
  void on_data(nbio::conn& c, std::string_view d) {
    if (d == "C") {
      c.write(pattern(0, 4u << 20));
      c.close();
      return;
    }
    if (d.size() > 1 && d[0] == 'W') {
      c.write(pattern(0, std::stoul(std::string(d.substr(1))) << 10));
      return;
    }
    c.write(d);
  }
  void on_close(nbio::conn&, std::error_code ec) { closed->push(ec); }
};

bool echo_once(int fd, std::string_view text) {
  return send_all(fd, text) && recv_exact(fd, text.size(), 10s).data == text;
}

TEST(backend_faults, a_peer_that_resets_mid_send_closes_its_connection_and_no_other) {
  event_log<std::error_code> closed;
  test_server server(writer{&closed}, {}, {.loops = 1});
  unique_fd other = connect_stream(server.address());
  ASSERT_TRUE(echo_once(other.get(), "before"));
  for (int i = 0; i < 20; ++i) {
    unique_fd fd = connect_small_rcvbuf(server.address(), 4096);
    ASSERT_TRUE(send_all(fd.get(), "W2048"));
    recv_for(fd.get(), 5ms);  // part of it, then a reset while the server still sends
    set_reset_on_close(fd.get());
  }
  ASSERT_TRUE(closed.wait_for_size(20, 10s));
  for (const auto& ec : closed.snapshot())
    EXPECT_TRUE(ec == std::errc::connection_reset || ec == std::errc::broken_pipe) << ec.message();
  EXPECT_TRUE(echo_once(other.get(), "after"));
  EXPECT_TRUE(wait_until([&] { return server.engine().stats().write_queued == 0; }));
}

TEST(backend_faults, close_with_a_send_in_flight_frees_the_queue_once_the_kernel_lets_go) {
  event_log<std::error_code> closed;
  test_server server(writer{&closed}, {}, {.loops = 1});
  std::vector<unique_fd> hogs;
  for (int i = 0; i < 50; ++i) {
    hogs.push_back(connect_small_rcvbuf(server.address(), 4096));
    ASSERT_TRUE(send_all(hogs.back().get(), "C"));
  }
  ASSERT_TRUE(closed.wait_for_size(50, 10s));
  // Every queue returns to the pool (the kernel's send of each finished or was cancelled).
  EXPECT_TRUE(wait_until([&] { return server.engine().stats().write_queued == 0; }))
      << server.engine().stats().write_queued;
  for (auto& h : hogs) {
    const read_result r = recv_until_eof(h.get(), 10s);
    EXPECT_TRUE(r.eof || r.error == ECONNRESET) << "the peer never saw the close";
  }
  unique_fd after = connect_stream(server.address());
  EXPECT_TRUE(echo_once(after.get(), "still serving"));
}

// 10,000 clients, in a child process (its own descriptors), each send 64 bytes at once and check
// their echo; the server's ring holds 64 buffers of 1 KiB, so receives run out of buffers and
// are armed again, and no byte may be lost or go to the wrong connection.
TEST(heavy_backend_faults, ten_thousand_connections_sending_at_once_into_a_small_buffer_ring) {
  constexpr int n = 10'000;
  test_server server(echo{}, {.backlog = 16384},
                     {.loops = 1, .uring_buffers = 64, .uring_buffer_size = 1024});
  const nbio::address addr = server.address();
  EXPECT_TRUE(in_child([addr] {
    std::vector<unique_fd> fds;
    fds.reserve(n);
    for (int i = 0; i < n; ++i) {
      fds.push_back(connect_stream(addr));
      if (fds.back().get() < 0) return 40;
    }
    for (int i = 0; i < n; ++i) {
      const std::string msg = pattern(static_cast<std::size_t>(i) * 64, 64);
      if (!send_all(fds[i].get(), msg)) return 41;
    }
    for (int i = 0; i < n; ++i) {
      const std::string msg = pattern(static_cast<std::size_t>(i) * 64, 64);
      if (recv_exact(fds[i].get(), 64, 30s).data != msg) return 42;
    }
    return 0;
  }));
  EXPECT_TRUE(wait_until([&] { return server.engine().stats().total.online == 0; }, 30s));
}

// Handles write from four threads while the server closes connections under them: no write may
// touch a reused slot, and every connection ends.
TEST(threading_backend_faults, writes_from_other_threads_racing_close) {
  struct keep {
    std::vector<nbio::conn_handle>* handles;
    std::mutex* mu;
    void on_open(nbio::conn& c) {
      std::lock_guard lock(*mu);
      handles->push_back(c.handle());
    }
    void on_data(nbio::conn& c, std::string_view) { c.close(); }
  };
  std::vector<nbio::conn_handle> handles;
  std::mutex mu;
  test_server server(keep{&handles, &mu}, {}, {.loops = 2});
  std::vector<unique_fd> clients;
  for (int i = 0; i < 200; ++i)
    clients.push_back(connect_stream(server.address()));
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard lock(mu);
    return handles.size() == clients.size();
  }));
  std::atomic<bool> go{true};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&] {
      std::vector<nbio::conn_handle> mine;
      {
        std::lock_guard lock(mu);
        mine = handles;
      }
      while (go.load())
        for (auto& h : mine)
          (void)h.write("0123456789abcdef");
    });
  for (auto& c : clients) {  // each byte makes the server close that connection
    ASSERT_TRUE(send_all(c.get(), "x"));
    std::this_thread::sleep_for(100us);
  }
  EXPECT_TRUE(wait_until([&] { return server.engine().stats().total.online == 0; }, 20s));
  go = false;
  for (auto& w : writers)
    w.join();
  // online reaches 0 in the reap just before the slots' generations move on: wait for those.
  EXPECT_TRUE(wait_until([&] {
    for (auto& h : handles)
      if (h.alive()) return false;
    return true;
  }));
  for (auto& h : handles)
    EXPECT_EQ(h.write("late"), nbio::errc::not_connected);
}

// stop() with receives armed, sends in flight to peers that do not read and accepts pending:
// it returns, and the engine's destructor frees everything (ASan checks the rest).
TEST(threading_backend_faults, engine_stop_with_operations_in_flight) {
  event_log<std::error_code> closed;
  std::vector<unique_fd> hogs, idle;
  {
    test_server server(writer{&closed}, {}, {.loops = 2});
    for (int i = 0; i < 20; ++i) {
      hogs.push_back(connect_small_rcvbuf(server.address(), 4096));
      ASSERT_TRUE(send_all(hogs.back().get(), "W4096"));
      idle.push_back(connect_stream(server.address()));
    }
    ASSERT_TRUE(wait_until([&] { return server.engine().stats().total.online == 40; }));
    ASSERT_TRUE(wait_until([&] { return server.engine().stats().write_queued > (10u << 20); }))
        << server.engine().stats().write_queued;
    server.engine().stop();
    EXPECT_EQ(server.engine().stats().total.online, 0u);
  }
  EXPECT_EQ(closed.size(), 40u);
  for (auto& fd : idle) {
    const read_result r = recv_until_eof(fd.get(), 10s);
    EXPECT_TRUE(r.eof || r.error == ECONNRESET);
  }
}

}  // namespace
