// Worker processes (nbio::run_workers): a supervisor forked from the test runs two workers that
// each serve an echo listener on the same SO_REUSEPORT port, and workers that find another
// server (or another supervisor's workers) on their port get EADDRINUSE.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <system_error>

#include "nbio/engine/workers.hpp"
#include "nbio/nbio.hpp"
#include "support/child_process.hpp"
#include "support/raw_socket.hpp"

namespace {

using namespace nbio_test;

struct echo {
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
};

// A port that was free a moment ago (workers must share a fixed port, not 0).
std::uint16_t free_port() {
  nbio::engine probe({.loops = 1});
  return probe.listen("127.0.0.1:0", echo{}).local_address().port();
}

// Supervisor process: two workers; each reports "pid" on the pipe once it listens.
child_process start_supervisor(std::uint16_t port) {
  return child_process([port](int, int to_parent) {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, nullptr);
    nbio::workers_result r =
        nbio::run_workers({.count = 2, .stop_deadline = std::chrono::seconds(5), .report = false},
                          [port, to_parent](unsigned) {
                            nbio::engine eng({.loops = 1});
                            eng.listen("127.0.0.1:" + std::to_string(port), echo{});
                            eng.start();
                            write_line(to_parent, std::to_string(getpid()));
                            sigset_t s;
                            sigemptyset(&s);
                            sigaddset(&s, SIGTERM);
                            sigaddset(&s, SIGINT);
                            int sig = 0;
                            sigwait(&s, &sig);
                            return eng.shutdown(std::chrono::seconds(2)) ? 0 : 3;
                          });
    return r.restarted == 1 ? r.exit_code : 10 + static_cast<int>(r.restarted);
  });
}

bool echoes(std::uint16_t port) {
  auto addr = nbio::address::parse("127.0.0.1:" + std::to_string(port));
  unique_fd fd = connect_stream(*addr);
  if (fd.get() < 0 || !send_all(fd.get(), "ping")) return false;
  read_result r = recv_exact(fd.get(), 4);
  return r.data == "ping";
}

bool process_gone(pid_t pid) {
  return kill(pid, 0) != 0;
}

TEST(workers, crashed_worker_is_restarted_and_sigterm_stops_all_within_the_deadline) {
  const std::uint16_t port = free_port();
  child_process supervisor = start_supervisor(port);
  ASSERT_TRUE(supervisor.started());
  std::set<pid_t> pids;
  for (int i = 0; i < 2; ++i) {
    auto line = supervisor.read_line(10s);
    ASSERT_TRUE(line) << "worker " << i << " did not start";
    pids.insert(std::stoi(*line));
  }
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(echoes(port)) << "echo " << i;

  const pid_t victim = *pids.begin();
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  auto restarted = supervisor.read_line(10s);
  ASSERT_TRUE(restarted) << "the crashed worker was not restarted";
  const pid_t replacement = std::stoi(*restarted);
  EXPECT_FALSE(pids.contains(replacement));
  for (int i = 0; i < 20; ++i)
    EXPECT_TRUE(echoes(port)) << "echo after restart " << i;

  ASSERT_EQ(kill(supervisor.pid(), SIGTERM), 0);
  // The supervisor forwards SIGTERM, workers drain (2 s at most) and exit 0; the supervisor
  // returns exit_code 0 after exactly one restart.
  EXPECT_EQ(supervisor.wait(15s), 0);
  EXPECT_TRUE(process_gone(replacement));
  for (pid_t p : pids)
    EXPECT_TRUE(process_gone(p) || p == victim);
}

// Supervisor process: two workers that each try to listen on `port` once, report "listening",
// "in use" (EADDRINUSE) or the error on the pipe, and exit 0.
child_process start_probing_supervisor(std::uint16_t port) {
  return child_process([port](int, int to_parent) {
    nbio::workers_result r =
        nbio::run_workers({.count = 2, .report = false}, [port, to_parent](unsigned) {
          nbio::engine eng({.loops = 2});
          try {
            eng.listen("127.0.0.1:" + std::to_string(port), echo{});
            write_line(to_parent, "listening");
          } catch (const std::system_error& e) {
            write_line(to_parent, e.code() == std::errc::address_in_use ? "in use" : e.what());
          }
          return 0;
        });
    return r.exit_code;
  });
}

TEST(workers, workers_refuse_a_port_another_servers_reuseport_socket_listens_on) {
  unique_fd other(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(other.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::setsockopt(other.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  auto any = *nbio::address::parse("127.0.0.1:0");
  ASSERT_EQ(::bind(other.get(), any.data(), any.size()), 0);
  ASSERT_EQ(::listen(other.get(), 16), 0);
  child_process supervisor = start_probing_supervisor(local_address_of(other.get()).port());
  for (int i = 0; i < 2; ++i) {
    auto line = supervisor.read_line(10s);
    ASSERT_TRUE(line) << "worker " << i << " reported nothing";
    EXPECT_EQ(*line, "in use") << "worker " << i << " joined another server's port";
  }
  EXPECT_EQ(supervisor.wait(15s), 0);
}

TEST(workers, worker_failing_on_a_port_in_use_is_not_restarted_and_the_supervisor_fails) {
  const std::uint16_t port = free_port();
  child_process first = start_supervisor(port);
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(first.read_line(10s)) << "worker " << i << " of the first did not start";
  // Workers that exit 1 when their listen throws, as the examples' do.
  child_process second([port](int, int) {
    nbio::workers_result r = nbio::run_workers(
        {.count = 2, .stop_deadline = std::chrono::seconds(5), .report = false}, [port](unsigned) {
          nbio::engine eng({.loops = 1});
          eng.listen("127.0.0.1:" + std::to_string(port), echo{});
          return 0;
        });
    return r.restarted == 0 && r.exit_code == 1 ? 0 : 10 + static_cast<int>(r.restarted);
  });
  EXPECT_EQ(second.wait(15s), 0) << "10 + restarts: restarted on a port another server holds";
  ASSERT_EQ(kill(first.pid(), SIGTERM), 0);
  EXPECT_NE(first.wait(15s), -1);
}

TEST(workers, second_supervisor_on_the_port_of_running_workers_gets_eaddrinuse) {
  const std::uint16_t port = free_port();
  child_process first = start_supervisor(port);
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(first.read_line(10s)) << "worker " << i << " of the first did not start";
  child_process second = start_probing_supervisor(port);
  for (int i = 0; i < 2; ++i) {
    auto line = second.read_line(10s);
    ASSERT_TRUE(line) << "worker " << i << " of the second reported nothing";
    EXPECT_EQ(*line, "in use") << "worker " << i << " joined the first supervisor's workers";
  }
  EXPECT_EQ(second.wait(15s), 0);
  EXPECT_TRUE(echoes(port)) << "the first supervisor's workers stopped serving";
  ASSERT_EQ(kill(first.pid(), SIGTERM), 0);
  EXPECT_NE(first.wait(15s), -1);  // its own status counts its restarts (none here)
}

}  // namespace
