// udp_echo: a UDP echo server on engine::udp_bind, the plain datagram API.
//
//   udp_echo --host H --port P
//
// Prints "listening on H:P" on stdout (P is the bound port when --port is 0), sends every
// datagram back to its sender, and stops on SIGINT or SIGTERM with a count on stderr.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>

#include <nbio/nbio.hpp>

namespace {

struct echo_handler {
  std::uint64_t* echoed;  // touched on the socket's loop thread only; read after stop()
  void on_datagram(nbio::udp_socket& s, std::string_view payload, const nbio::address& from) {
    if (!s.send_to(from, payload)) ++*echoed;  // a full socket buffer drops it, as UDP does
  }
};

std::string host_port(const std::string& host, std::uint16_t port) {
  const bool bare_v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (bare_v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nbio UDP echo server"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  app.add_option("--host", host, "address to bind (numeric IPv4 or IPv6)")->capture_default_str();
  app.add_option("--port", port, "port; 0 picks a free one")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Blocked before the loop thread starts, so it inherits the mask and sigwait() gets them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::uint64_t echoed = 0;
  nbio::engine eng({.loops = 1});  // udp_bind puts the socket on one loop
  std::string bound;
  try {
    bound = eng.udp_bind(host_port(host, port), echo_handler{&echoed}).local_address().to_string();
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "udp_echo: %s\n", e.what());
    return 1;
  }
  eng.start();
  std::printf("listening on %s\n", bound.c_str());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  eng.stop();  // joins the loop thread: `echoed` is final now
  std::fprintf(stderr, "udp_echo: %llu datagrams echoed\n",
               static_cast<unsigned long long>(echoed));
  return 0;
}
