// Conformance. One Autobahn case on one connection, in either role (AUTOBAHN_CATALOG.md
// section 3): the part the fuzzing client (autobahn_fuzzer.hpp, testing a server) and the
// fuzzing server (autobahn_fuzzing_server.hpp, testing a client) share. The opening handshake is
// the role's own; from the open on, the session plays the case's actions (frames queued and
// written together, "sync" frames written alone, "chop" frames written K bytes per send(), waits
// honoured), decodes what the testee sends by hand (no nbio code on the checking side, so a bug
// in the frame parser cannot hide itself) while its own writes are in progress, records the
// events, runs the fuzzer's timers and hands what happened to the judge (autobahn_judge.hpp).
//
//   case_session s(fuzzer_role::client, json_case, {});
//   s.attach(connect_stream(server));
//   s.write_now(upgrade_request);
//   if (auto head = s.read_head(5s); head && valid(*head)) return s.run({.extensions = ""});
//   return s.not_opened("no 101");
//
// Roles differ only where RFC 6455 makes them differ: a client masks its frames with a fresh
// random key each and a server must not, so a frame masked the wrong way is a violation; after
// the closing handshake a server closes TCP at once, while a client gives the server
// server_drop_timeout to do it. Single-threaded: a non-blocking socket and poll().
//
// 12.x/13.x: when the handshake agreed on permessage-deflate, the session echoes the case's
// corpus messages compressed (autobahn_deflate.hpp) and checks each echo's type and bytes;
// otherwise the case is UNIMPLEMENTED and closed at once, as Autobahn does.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "autobahn_case.hpp"
#include "autobahn_deflate.hpp"
#include "autobahn_judge.hpp"
#include "support/unique_fd.hpp"

#include <openssl/ssl.h>

namespace nbio_test::autobahn {

struct session_options {
  // After the fuzzer sent a close frame: how long it waits for the testee's (then drops TCP).
  std::chrono::milliseconds close_handshake_timeout{1000};
  // Client role, after the closing handshake: how long it waits for the server to close TCP
  // (else the case's close verdict is FAILED BY CLIENT, or UNCLEAN where a clean close is
  // required).
  std::chrono::milliseconds server_drop_timeout{1000};
  // killAfter / closeAfter delays above this are cut to it (9.x allows 10-1000 s: a testee
  // that never answers would hold the suite for minutes). Only a failing case reaches them.
  std::chrono::milliseconds max_timer{20'000};
  // 12.x/13.x with permessage-deflate agreed: messages echoed per case (the catalog's COUNT is
  // 1,000; up to 128 KiB each, that is minutes of zlib per case).
  int max_deflate_messages = 10;
  // Over TLS: the session's side of it (a client SSL_CTX for the fuzzing client, a server one
  // for the fuzzing server; owned by the caller). Null: plain TCP. The handshake runs in
  // attach(); reads and writes then go through OpenSSL, so the testee is played exactly as over
  // TCP, its TLS layer underneath.
  SSL_CTX* tls = nullptr;
};

// ASCII lower case.
std::string lower(std::string_view s);
// A header's value in an HTTP head ("" when absent), surrounding blanks trimmed.
std::string header_value(std::string_view head, std::string_view name);

// What the opening handshake agreed on.
struct negotiated {
  std::string extensions;  // the Sec-WebSocket-Extensions in force ("" for none)
  std::string offer;       // what the client offered, for the report ("" for nothing)
};

class case_session {
 public:
  using clock_type = std::chrono::steady_clock;

  // `c` (one element of the file's "cases") outlives the session. The case's duration counts
  // from here.
  case_session(fuzzer_role role, const nlohmann::json& c, const session_options& o);
  ~case_session() {
    if (ssl_) SSL_free(ssl_);
  }
  case_session(const case_session&) = delete;
  case_session& operator=(const case_session&) = delete;

  // The connection, connected (made non-blocking, TCP_NODELAY, here).
  void attach(unique_fd fd);
  // Writes all of `bytes`, reading what arrives meanwhile (so neither side waits on a full
  // socket buffer).
  void write_now(std::string_view bytes);
  // The HTTP head that arrives first (up to and including the CRLF of its last field; the bytes
  // after the blank line stay for the frames). nullopt when TCP closed or `timeout` passed.
  std::optional<std::string> read_head(std::chrono::milliseconds timeout);

  // Runs the case on the opened connection, until it ends, and judges it.
  verdict run(const negotiated& n);
  // Judges a case whose opening handshake did not complete (`why` goes into the reason).
  verdict not_opened(std::string_view why);

 private:
  enum class state { open, closing, closed };
  enum class timer_kind { kill, close_after, close_handshake, server_drop };

  // --- the connection ---
  void read_available();
  void queue(std::string_view bytes) { out_ += bytes; }
  void flush();
  void drop();
  // Runs the connection until `until`, its end or (stop_unless_open) the end of OPEN.
  void service(clock_type::time_point until, bool stop_unless_open);
  // Server role: the closing handshake is done; the server closes TCP first (RFC 6455 7.1.1).
  void close_tcp_as_server();

  // --- frames ---
  bool masks() const { return role_ == fuzzer_role::client; }
  std::string frame(std::uint8_t opcode, std::string_view payload, bool fin, int rsv);
  std::uint32_t new_key() { return static_cast<std::uint32_t>(rng_()); }
  static void mask(std::string& data, std::uint32_t key, std::uint64_t offset);
  void parse_input();
  void on_message(std::string payload, bool binary);
  void on_control(std::uint8_t opcode, std::string payload);
  void violation(std::string why);
  void send_close(std::optional<std::uint16_t> code, std::string_view reason);
  void finish_when_done();
  void add_timer(double seconds, timer_kind kind);
  // "the server sent ..." / "the client sent ...".
  std::string testee_sent(std::string_view what) const;

  // --- the case ---
  void start_deflate_echo(const deflate_params& p);
  void send_next_deflate();
  void run_actions();
  void send_message(const nlohmann::json& a);
  verdict finish();

  fuzzer_role role_;
  const nlohmann::json& case_;
  session_options opts_;
  std::mt19937 rng_;
  std::string id_;
  std::string group_;
  clock_type::time_point start_;

  unique_fd fd_;
  SSL* ssl_ = nullptr;  // over TLS (opts_.tls)
  // Closes the socket (a TLS session says close_notify first).
  void release_socket();
  // recv/send, or SSL_read/SSL_write over TLS: > 0 bytes, 0 end of stream, < 0 with errno
  // (EAGAIN: wait for readiness).
  ssize_t receive(char* buf, std::size_t len);
  ssize_t transmit(std::string_view bytes);
  state state_ = state::closed;
  std::string in_;   // bytes received, not parsed yet
  std::string out_;  // frames queued by non-sync actions
  observation obs_;
  bool tcp_closed_ = false;
  bool reset_ = false;  // the connection ended with ECONNRESET

  // The testee's message being assembled.
  bool in_message_ = false;
  bool message_binary_ = false;
  std::string message_;

  struct timer {
    clock_type::time_point at;
    timer_kind kind;
  };
  std::vector<timer> timers_;

  // 9.x: checked in code (catalog group notes).
  bool limits_case_ = false;
  bool limits_binary_ = false;
  std::size_t limits_len_ = 0;
  std::string limits_payload_;  // what was sent (the content is checked too)
  bool roundtrip_ = false;      // 9.7/9.8: the message is sent COUNT times, one at a time
  int roundtrip_left_ = 0;

  // 12.x/13.x with permessage-deflate agreed (catalog group notes).
  std::unique_ptr<deflate_codec> deflate_;
  bool message_compressed_ = false;  // the testee's message being assembled had RSV1
  bool deflate_case_ = false;
  std::string corpus_;
  bool corpus_text_ = false;
  std::size_t corpus_pos_ = 0;
  std::size_t deflate_len_ = 0;
  std::size_t autofrag_ = 0;
  int deflate_left_ = 0;
  std::string deflate_sent_;  // the message whose echo is awaited

  // 6.4.3/6.4.4: one frame written in parts.
  std::uint32_t stream_key_ = 0;
  std::uint64_t stream_offset_ = 0;
};

}  // namespace nbio_test::autobahn
