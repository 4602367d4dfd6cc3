// Test support for the TLS tests. A real TLS peer (openssl s_client / s_server) run as a child
// process with a pipe on its stdin and one collecting its stdout and stderr, for interactive
// use: write a line, wait until some text appears in what it printed, close its stdin, wait for
// its exit (posix_spawn: safe to start from a process whose engines run threads). And the
// nbio side: an echo handler that records each connection's TLS details, and tls_dial(), one
// dial through a client context with its outcome. Every wait has a deadline.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <nbio/engine/engine.hpp>
#include <nbio/tls/context.hpp>

#include "support/event_log.hpp"
#include "support/test_certs.hpp"
#include "support/wait.hpp"

extern char** environ;

namespace nbio_test {

using namespace std::chrono_literals;

class tls_peer {
 public:
  // Starts argv (argv[0] an absolute path).
  explicit tls_peer(std::vector<std::string> argv) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return;
    if (::pipe2(out, O_CLOEXEC) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(a.data());
    args.push_back(nullptr);
    pid_t pid = -1;
    if (::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) == 0) pid_ = pid;
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    to_child_ = in[1];
    from_child_ = out[0];
    reader_ = std::thread([this] { read_loop(); });
  }
  tls_peer(const tls_peer&) = delete;
  tls_peer& operator=(const tls_peer&) = delete;
  ~tls_peer() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    close_stdin();
    if (reader_.joinable()) reader_.join();
    if (from_child_ >= 0) ::close(from_child_);
  }

  bool started() const noexcept { return pid_ > 0; }
  pid_t pid() const noexcept { return pid_; }

  // Writes to the child's stdin (blocking; the child reads it).
  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::write(to_child_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  void close_stdin() {
    if (to_child_ >= 0) ::close(to_child_);
    to_child_ = -1;
  }

  // Everything it printed so far.
  std::string output() const {
    std::lock_guard lock(mu_);
    return out_;
  }
  // True once `text` appeared in its output `count` times (from the start); false when the
  // timeout passed first or its output ended without it.
  bool wait_for(std::string_view text, std::chrono::milliseconds timeout = 10s,
                std::size_t count = 1) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return occurrences(text) >= count || eof_; }) &&
           occurrences(text) >= count;
  }
  // Waits for its exit; returns its status (0..255), 128+signal, or -1 after killing it when
  // the timeout passed.
  int wait_exit(std::chrono::milliseconds timeout = 10s) {
    if (pid_ <= 0) return -1;
    if (reaped_) return status_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        reaped_ = true;
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        reaped_ = true;
        status_ = -1;
        break;
      }
      std::this_thread::sleep_for(2ms);
    }
    // Its output ends with it (unless a grandchild holds the pipe: bounded anyway).
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 2s, [&] { return eof_; });
    return status_;
  }

 private:
  std::size_t occurrences(std::string_view text) const {
    std::size_t n = 0;
    for (auto p = out_.find(text); p != std::string::npos; p = out_.find(text, p + text.size()))
      ++n;
    return n;
  }
  void read_loop() {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(from_child_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard lock(mu_);
      if (n <= 0) {
        eof_ = true;
        cv_.notify_all();
        return;
      }
      out_.append(buf, static_cast<std::size_t>(n));
      cv_.notify_all();
    }
  }

  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  bool reaped_ = false;
  int status_ = -1;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::string out_;
  bool eof_ = false;
  std::thread reader_;
};

inline constexpr const char* openssl_path = "/usr/bin/openssl";

// `openssl s_client` to 127.0.0.1:port, trusting the test CA, with `extra` options.
inline std::vector<std::string> s_client_args(std::uint16_t port,
                                              std::initializer_list<std::string> extra = {}) {
  std::vector<std::string> a = {openssl_path, "s_client",
                                "-connect",   "127.0.0.1:" + std::to_string(port),
                                "-CAfile",    test_pki::get().ca};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// `openssl s_server -rev` (each line comes back reversed) on a port of its choosing; port() is
// that port once it printed it ("ACCEPT 127.0.0.1:PORT"), 0 when it did not.
class s_server_peer {
 public:
  s_server_peer(const cert_files& cert, std::initializer_list<std::string> extra = {})
      : peer_(args(cert, extra)) {
    if (!peer_.wait_for("ACCEPT 127.0.0.1:", 10s)) return;
    // The line may still be arriving: wait for its end.
    if (!wait_until([&] { return peer_.output().find('\n', at()) != std::string::npos; }, 10s))
      return;
    const std::string out = peer_.output();
    port_ = static_cast<std::uint16_t>(std::stoi(out.substr(at())));
  }
  std::uint16_t port() const noexcept { return port_; }
  tls_peer& peer() noexcept { return peer_; }

 private:
  static std::vector<std::string> args(const cert_files& cert,
                                       std::initializer_list<std::string> extra) {
    std::vector<std::string> a = {openssl_path, "s_server", "-accept", "127.0.0.1:0", "-cert",
                                  cert.chain,   "-key",     cert.key,  "-rev"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::size_t at() const {
    static constexpr std::string_view tag = "ACCEPT 127.0.0.1:";
    return peer_.output().find(tag) + tag.size();
  }
  tls_peer peer_;
  std::uint16_t port_ = 0;
};

// What a TLS connection showed in on_open.
struct tls_seen {
  std::string alpn;
  std::string server_name;
  std::string version;
  std::string cipher;
  std::string subject;  // the peer certificate's
  bool has_peer_certificate = false;
  bool resumed = false;
  bool handed_off = false;  // on nbio's record layer since the handshake
};

inline tls_seen seen_of(const nbio::conn& c) {
  return {std::string(nbio::tls::alpn(c)),
          std::string(nbio::tls::server_name(c)),
          std::string(nbio::tls::protocol_version(c)),
          std::string(nbio::tls::cipher(c)),
          nbio::tls::peer_subject(c),
          nbio::tls::has_peer_certificate(c),
          nbio::tls::resumed(c),
          nbio::tls::handed_off(c)};
}

// A TLS echo server's handler: records each connection's TLS details in on_open (when
// `opened` is set) and its close cause; a line "close-now" makes it close() (close_notify, then
// the socket), "close-flush" makes it answer "bye" and close_after_flush().
struct tls_echo_handler {
  event_log<tls_seen>* opened = nullptr;
  event_log<std::error_code>* closed = nullptr;
  void on_open(nbio::conn& c) {
    if (opened) opened->push(seen_of(c));
  }
  void on_data(nbio::conn& c, std::string_view d) {
    if (d.find("close-now") != std::string_view::npos) return c.close();
    if (d.find("close-flush") != std::string_view::npos) {
      c.write("bye\n");
      return c.close_after_flush();
    }
    c.write(d);
  }
  void on_close(nbio::conn&, std::error_code ec) {
    if (closed) closed->push(ec);
  }
};

// How one dial of tls_dial() went.
struct dial_outcome {
  bool opened = false;    // the handshake finished: on_open ran
  bool refused = false;   // the dial's on_error ran (connect or handshake failed)
  std::error_code cause;  // on_error's, or on_close's when the reply stayed short
  std::string reply;      // what came back
  tls_seen seen;          // TLS details in on_open
  bool done = false;
};

namespace tls_dial_detail {
struct state {
  std::mutex mu;
  std::condition_variable cv;
  dial_outcome out;
  std::string message;
  std::size_t expect = 0;
  void finish(std::error_code ec, bool refused) {
    std::lock_guard lock(mu);
    if (out.done) return;
    if (refused || out.reply.size() < expect) out.cause = ec;
    out.refused = refused;
    out.done = true;
    cv.notify_all();
  }
};
struct handler {
  state* s;
  void on_open(nbio::conn& c) {
    {
      std::lock_guard lock(s->mu);
      s->out.opened = true;
      s->out.seen = seen_of(c);
    }
    if (s->expect == 0) return c.close();
    c.write(s->message);
  }
  void on_data(nbio::conn& c, std::string_view d) {
    bool enough;
    {
      std::lock_guard lock(s->mu);
      s->out.reply.append(d);
      enough = s->out.reply.size() >= s->expect;
    }
    if (enough) c.close();
  }
  void on_close(nbio::conn&, std::error_code ec) { s->finish(ec, false); }
};
}  // namespace tls_dial_detail

// Dials `remote` through `tls` from an engine of its own, sends `message` once the handshake
// is done and waits for `expect` bytes back (0: closes as soon as it is open), the close, or a
// refused dial, within `timeout`. The context's sessions outlive the engine.
inline dial_outcome tls_dial(const std::shared_ptr<nbio::tls::context>& tls,
                             const std::string& remote, std::string message, std::size_t expect,
                             std::chrono::milliseconds timeout = 10s) {
  tls_dial_detail::state s;
  s.message = std::move(message);
  s.expect = expect;
  {
    nbio::engine eng({.loops = 1});
    auto& d = eng.make_dialer(tls_dial_detail::handler{&s}, {.tls = tls});
    eng.start();
    d.dial(remote, [&s](std::error_code ec, const std::string&) { s.finish(ec, true); });
    std::unique_lock lock(s.mu);
    s.cv.wait_for(lock, timeout, [&] { return s.out.done; });
  }
  std::lock_guard lock(s.mu);
  return s.out;
}

// Established TLS connections from nbio's client (its own engine) to an echo listener on
// localhost:port, kept open across whatever a test does to that listener: echoing() sends each
// a fresh line and waits for it to come back.
class tls_witnesses {
 public:
  tls_witnesses(std::uint16_t port, int count)
      : eng_({.loops = 1}),
        dialer_(&eng_.make_dialer(
            handler{this}, {.tls = nbio::tls::context::client({.ca_file = test_pki::get().ca})})) {
    eng_.start();
    for (int i = 0; i < count; ++i)
      dialer_->dial("localhost:" + std::to_string(port),
                    [this](std::error_code ec, const std::string&) { errors_.push(ec); });
    ok_ = wait_until([&] { return opened() == static_cast<std::size_t>(count); });
  }
  bool ok() const { return ok_; }

  // True when every witness echoed a new line (and none closed).
  bool echoing() {
    const std::string line = "witness " + std::to_string(++round_) + "\n";
    std::vector<nbio::conn_handle> hs;
    {
      std::lock_guard lock(mu_);
      hs = handles_;
    }
    for (auto& h : hs)
      if (h.write(line)) return false;
    return wait_until([&] {
      std::lock_guard lock(mu_);
      for (const std::string& g : got_)
        if (!g.ends_with(line)) return false;
      return closed_ == 0;
    });
  }
  std::string describe() {
    std::lock_guard lock(mu_);
    std::string s = "opened " + std::to_string(handles_.size()) + " closed " +
                    std::to_string(closed_) + " dial errors " + std::to_string(errors_.size());
    for (const std::string& g : got_)
      s += " | " + g.substr(g.size() > 40 ? g.size() - 40 : 0);
    return s;
  }

 private:
  struct handler {
    tls_witnesses* w;
    using conn_data = std::size_t;
    void on_open(nbio::conn& c) {
      std::lock_guard lock(w->mu_);
      c.data<std::size_t>() = w->handles_.size();
      w->handles_.push_back(c.handle());
      w->got_.emplace_back();
    }
    void on_data(nbio::conn& c, std::string_view d) {
      std::lock_guard lock(w->mu_);
      w->got_[c.data<std::size_t>()].append(d);
    }
    void on_close(nbio::conn&, std::error_code) {
      std::lock_guard lock(w->mu_);
      ++w->closed_;
    }
  };
  std::size_t opened() {
    std::lock_guard lock(mu_);
    return handles_.size();
  }

  std::mutex mu_;
  std::vector<nbio::conn_handle> handles_;
  std::vector<std::string> got_;
  int closed_ = 0;
  int round_ = 0;
  bool ok_ = false;
  event_log<std::error_code> errors_;
  nbio::engine eng_;  // last: stopped (its handlers done) before the state above goes
  nbio::dialer* dialer_;
};

inline std::string describe(const dial_outcome& o) {
  return std::string("opened ") + (o.opened ? "yes" : "no") + ", refused " +
         (o.refused ? "yes" : "no") + ", done " + (o.done ? "yes" : "no") + ", cause '" +
         (o.cause ? o.cause.message() : std::string("none")) + "', reply '" +
         o.reply.substr(0, 80) + "'";
}

}  // namespace nbio_test
