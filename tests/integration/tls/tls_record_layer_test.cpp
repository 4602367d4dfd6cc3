// Integration: nbio's TLS 1.3 record layer, which a server connection runs on after OpenSSL's
// handshake (the hand-off, src/tls/handoff.hpp), against real peers and hostile ones.
//
// Real peers: an OpenSSL client in this process (blocking socket, each cipher suite, key
// updates both ways across megabytes), `openssl s_client` with its k and K commands, Python's
// ssl and Node's tls. Hostile: a client that does its handshake with OpenSSL, then takes its own
// side over with the same record code (so it can seal any record it likes) and sends tampered,
// truncated, oversized, split and unexpected records, floods and alerts. Each must get its alert
// and a close, with nothing of the bad record delivered to the handler.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <nbio/tls/context.hpp>

#include "support/event_log.hpp"
#include "support/peer.hpp"
#include "support/test_certs.hpp"
#include "support/test_server.hpp"
#include "support/tls_peer.hpp"
#include "support/tool_run.hpp"
#include "support/wait.hpp"
#include "tls/handoff.hpp"
#include "tls/record.hpp"
#include "tls/record_stream.hpp"

namespace {

using namespace nbio_test;
using nbio::tls::detail::content;
using nbio::tls::detail::handoff_refusal;
using nbio::tls::detail::handoff_secrets;
using nbio::tls::detail::record_direction;
using nbio::tls::detail::record_error;
namespace record_stream = nbio::tls::detail::record_stream;

// --- the server ---------------------------------------------------------------------------------

// Echoes, counting what the handler was given, and logs each close's cause.
struct counting_echo {
  std::atomic<std::size_t>* delivered;
  event_log<std::error_code>* closed;
  void on_data(nbio::conn& c, std::string_view d) {
    delivered->fetch_add(d.size());
    c.write(d);
  }
  void on_close(nbio::conn&, std::error_code ec) { closed->push(ec); }
};

struct rig {
  std::atomic<std::size_t> delivered{0};
  event_log<std::error_code> closed;
  std::shared_ptr<nbio::tls::context> tls;
  test_server server;

  explicit rig(bool handoff = true)
      : tls(nbio::tls::context::server(
            {.cert = {test_pki::get().server.chain, test_pki::get().server.key},
             .handoff = handoff})),
        server(counting_echo{&delivered, &closed}, {.tls = tls}) {}
  std::uint16_t port() const { return server.address().port(); }
};

// Sets record_stream::records_per_key for one test.
class records_per_key_scope {
 public:
  explicit records_per_key_scope(std::uint64_t n) : saved_(record_stream::records_per_key) {
    record_stream::records_per_key = n;
  }
  ~records_per_key_scope() { record_stream::records_per_key = saved_; }

 private:
  std::uint64_t saved_;
};

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{10, 0};  // every read is bounded
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// After a failed SSL call on a blocking socket: whether it only needs calling again (a signal
// interrupted the system call under it).
bool wants_retry(SSL* ssl, int r) {
  const int e = SSL_get_error(ssl, r);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
         (e == SSL_ERROR_SYSCALL && errno == EINTR);
}

// SSL_connect on a blocking socket, called again while a signal interrupts it; 1 on success.
int connect_retrying(SSL* ssl) {
  int r = 0;
  do {
    r = SSL_connect(ssl);
  } while (r != 1 && wants_retry(ssl, r));
  return r;
}

SSL_CTX* client_ctx(const char* suite) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_ciphersuites(ctx, suite);
  SSL_CTX_load_verify_locations(ctx, test_pki::get().ca.c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

constexpr std::uint8_t key_update_type = 24;
std::string key_update_message(bool requested) {
  return {static_cast<char>(key_update_type), 0, 0, 1, static_cast<char>(requested ? 1 : 0)};
}

// --- a client that takes its side over after the handshake --------------------------------------

// OpenSSL runs the handshake on a blocking socket; then the client hands itself off the same way
// the server does (its own KeyUpdate first) and seals and opens with nbio's record code: the
// records it sends are whatever a test makes of them.
class raw_client {
 public:
  explicit raw_client(std::uint16_t port, const char* suite = "TLS_AES_128_GCM_SHA256") {
    fd_ = connect_to(port);
    if (fd_ < 0) return;
    SSL_CTX* ctx = client_ctx(suite);
    SSL_CTX_set_keylog_callback(ctx, [](const SSL* ssl, const char* line) {
      static_cast<raw_client*>(SSL_get_app_data(ssl))->secrets_.take(line);
    });
    SSL* ssl = SSL_new(ctx);
    SSL_set_app_data(ssl, this);
    SSL_set_fd(ssl, fd_);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (connect_retrying(ssl) == 1) {
      const handoff_refusal r = nbio::tls::detail::hand_off(ssl, secrets_, tx_, rx_);
      ok_ = r == handoff_refusal::none;
      if (!ok_) error_ = nbio::tls::detail::describe(r);
    } else {
      char text[256];
      ERR_error_string_n(ERR_get_error(), text, sizeof text);
      error_ = std::string("handshake failed: ") + text;
    }
    SSL_free(ssl);  // the socket stays (SSL_set_fd's BIO does not close it)
    SSL_CTX_free(ctx);
  }
  ~raw_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  bool ok() const noexcept { return ok_; }

  // One record as this side's next, sealed (the key moves on after a KeyUpdate, as the peer's
  // will).
  std::string seal(content type, std::string_view plain) {
    std::string out;
    EXPECT_EQ(tx_.seal(type, plain, out), record_error::ok);
    if (type == content::handshake && plain.size() == 5 &&
        static_cast<std::uint8_t>(plain[0]) == key_update_type)
      tx_.update();
    return out;
  }
  std::string data(std::string_view plain) { return seal(content::application_data, plain); }
  // A record of `type`, then a data record (sealed in that order: each takes the next sequence
  // number, and a KeyUpdate changes the key of the second).
  std::string seal(content type, std::string_view plain, std::string_view then_data) {
    std::string out = seal(type, plain);
    out += data(then_data);
    return out;
  }
  record_direction& tx() noexcept { return tx_; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  void shut_write() { ::shutdown(fd_, SHUT_WR); }

  // Reads until `n` bytes of application data arrived (or an alert, the end, a timeout, an
  // error); returns them and consumes them.
  std::string read_data(std::size_t n) {
    while (data_.size() < n && pump()) {
    }
    std::string got = data_.substr(0, n);
    data_.erase(0, got.size());
    return got;
  }
  // Reads until the server ends the connection; true when it did (alert() says with what).
  bool read_to_end() {
    while (pump()) {
    }
    return ended_;
  }

  int alert() const noexcept { return alert_; }                 // the last one; -1: none
  int key_updates() const noexcept { return key_updates_; }     // the server's
  int tickets() const noexcept { return tickets_; }             // NewSessionTickets seen
  const std::string& error() const noexcept { return error_; }  // what this side refused

 private:
  // One read and the records it completed. False: no more will come.
  bool pump() {
    char buf[65536];
    ssize_t n;
    do {
      n = ::recv(fd_, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      ended_ = n == 0 || errno == ECONNRESET;
      if (!ended_) error_ = std::string("recv: ") + std::strerror(errno);
      return false;
    }
    in_.append(buf, static_cast<std::size_t>(n));
    for (;;) {
      std::size_t total = 0;
      if (nbio::tls::detail::record_size(in_, total) != record_error::ok) {
        error_ = "bad record header";
        return false;
      }
      if (total == 0 || in_.size() < total) return true;
      content type{};
      std::string_view body;
      if (rx_.open({in_.data(), total}, type, body) != record_error::ok) {
        error_ = "a record did not open";
        return false;
      }
      const std::string plain(body);
      in_.erase(0, total);
      if (type == content::application_data) {
        data_ += plain;
      } else if (type == content::alert && plain.size() == 2) {
        alert_ = static_cast<std::uint8_t>(plain[1]);
      } else if (type == content::handshake) {
        handshake(plain);
      } else {
        error_ = "unexpected record type";
        return false;
      }
    }
  }
  // The server's post-handshake messages (whole in their records: OpenSSL's and nbio's are).
  void handshake(std::string_view m) {
    while (m.size() >= 4) {
      const auto t = static_cast<std::uint8_t>(m[0]);
      const std::size_t len = static_cast<std::uint8_t>(m[1]) << 16 |
                              static_cast<std::uint8_t>(m[2]) << 8 |
                              static_cast<std::uint8_t>(m[3]);
      if (t == key_update_type) {
        rx_.update();
        ++key_updates_;
      } else if (t == 4) {
        ++tickets_;
      }
      m.remove_prefix(std::min(m.size(), 4 + len));
    }
  }

  int fd_ = -1;
  bool ok_ = false;
  bool ended_ = false;
  handoff_secrets secrets_;
  record_direction tx_, rx_;
  std::string in_, data_, error_;
  int alert_ = -1;
  int key_updates_ = 0;
  int tickets_ = 0;
};

// --- the hand-off, and the first records after it -----------------------------------------------

TEST(tls_record_layer, the_first_records_after_the_hand_off_open_on_both_sides) {
  rig r;
  for (const char* suite :
       {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
    SCOPED_TRACE(suite);
    raw_client cl(r.port(), suite);
    ASSERT_TRUE(cl.ok()) << cl.error();
    ASSERT_TRUE(cl.send(cl.data("ping")));
    EXPECT_EQ(cl.read_data(4), "ping") << cl.error();
    // What the server sent first, in order: its ticket under its first key, its KeyUpdate,
    // then the echo under the next key; the client's own KeyUpdate came through too.
    EXPECT_EQ(cl.tickets(), 1);
    EXPECT_EQ(cl.key_updates(), 1);
  }
  EXPECT_TRUE(wait_until([&] { return r.tls->stats().handed_off == 3; }))
      << r.tls->stats().handed_off;
}

TEST(tls_record_layer, handoff_off_keeps_the_connection_on_openssl) {
  rig r(false);
  raw_client cl(r.port());
  ASSERT_TRUE(cl.ok()) << cl.error();
  ASSERT_TRUE(cl.send(cl.data("ping")));
  EXPECT_EQ(cl.read_data(4), "ping") << cl.error();
  EXPECT_EQ(cl.key_updates(), 0);  // OpenSSL's record layer: no KeyUpdate of ours
  EXPECT_EQ(r.tls->stats().handed_off, 0u);
  EXPECT_EQ(r.tls->stats().handshakes, 1u);
}

// --- key updates --------------------------------------------------------------------------------

TEST(tls_record_layer, update_requested_is_answered_once_before_the_next_data) {
  rig r;
  raw_client cl(r.port());
  ASSERT_TRUE(cl.ok()) << cl.error();
  ASSERT_TRUE(cl.send(cl.seal(content::handshake, key_update_message(true), "a")));
  EXPECT_EQ(cl.read_data(1), "a") << cl.error();
  EXPECT_EQ(cl.key_updates(), 2);  // the hand-off's, then the answer
  // Ten requests before the server writes again cost one KeyUpdate (RFC 8446 §4.6.3).
  std::string burst;
  for (int i = 0; i < 10; ++i)
    burst += cl.seal(content::handshake, key_update_message(true));
  ASSERT_TRUE(cl.send(burst + cl.data("b")));
  EXPECT_EQ(cl.read_data(1), "b") << cl.error();
  EXPECT_EQ(cl.key_updates(), 3);
  // Not requested: the server's key stays.
  ASSERT_TRUE(cl.send(cl.seal(content::handshake, key_update_message(false), "c")));
  EXPECT_EQ(cl.read_data(1), "c") << cl.error();
  EXPECT_EQ(cl.key_updates(), 3);
  EXPECT_EQ(r.delivered.load(), 3u);
}

TEST(tls_record_layer, the_server_renews_its_key_after_records_per_key_records) {
  records_per_key_scope scope(8);
  rig r;
  raw_client cl(r.port());
  ASSERT_TRUE(cl.ok()) << cl.error();
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(cl.send(cl.data("m" + std::to_string(i % 10))));
    ASSERT_EQ(cl.read_data(2), "m" + std::to_string(i % 10)) << cl.error();
  }
  // Before the 9th, 17th, 25th and 33rd record: the hand-off's, then one per 8 records.
  EXPECT_EQ(cl.key_updates(), 1 + 4);
}

// A KeyUpdate may come in pieces, in records of its own type; padding is stripped.
TEST(tls_record_layer, a_split_key_update_and_padded_records_are_accepted) {
  rig r;
  raw_client cl(r.port());
  ASSERT_TRUE(cl.ok()) << cl.error();
  const std::string ku = key_update_message(true);
  std::string out;
  ASSERT_EQ(cl.tx().seal(content::handshake, ku.substr(0, 2), out), record_error::ok);
  ASSERT_EQ(cl.tx().seal(content::handshake, ku.substr(2), out), record_error::ok);
  cl.tx().update();
  // TLSInnerPlaintext "abc", type application_data, three bytes of zero padding: sealed as
  // content of type 0 after them, which the opener strips with the padding.
  out += cl.seal(static_cast<content>(0), std::string("abc\x17\0\0\0", 7));
  ASSERT_TRUE(cl.send(out));
  EXPECT_EQ(cl.read_data(3), "abc") << cl.error();
  EXPECT_EQ(cl.key_updates(), 2);
}

// --- records split at every byte ----------------------------------------------------------------

TEST(tls_record_layer, records_split_at_every_byte_arrive_whole) {
  rig r;
  raw_client cl(r.port());
  ASSERT_TRUE(cl.ok()) << cl.error();
  const std::string message = "split me anywhere, I still arrive whole";
  const std::size_t record_size = message.size() + nbio::tls::detail::record_overhead;
  for (std::size_t at = 1; at < record_size; ++at) {
    SCOPED_TRACE(at);
    const std::string rec = cl.data(message);
    ASSERT_EQ(rec.size(), record_size);
    ASSERT_TRUE(cl.send(rec.substr(0, at)));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // two reads on the server
    ASSERT_TRUE(cl.send(rec.substr(at)));
    ASSERT_EQ(cl.read_data(message.size()), message) << cl.error();
  }
  // Three records in one write, then one byte at a time.
  std::string three = cl.data("one");
  three += cl.data("two");
  three += cl.data("three");
  ASSERT_TRUE(cl.send(three));
  EXPECT_EQ(cl.read_data(11), "onetwothree");
  const std::string slow = cl.data("drip");
  for (char ch : slow) {
    ASSERT_TRUE(cl.send({&ch, 1}));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(cl.read_data(4), "drip");
}

// --- hostile records ----------------------------------------------------------------------------

struct hostile {
  const char* name;
  std::function<std::string(raw_client&)> bytes;  // sent after a good "ping"
  int alert;                                      // what the server sends; -1: none
  std::error_code cause;                          // the server's close cause
  std::size_t delivered = 4;                      // what its handler got in all
};

std::string flipped(std::string s, std::size_t at) {
  s[at] = static_cast<char>(s[at] ^ 0x01);
  return s;
}

std::vector<hostile> hostile_table() {
  using nbio::tls::reason_code;
  const std::string big_header = {23, 3, 3, static_cast<char>((16641 >> 8) & 0xff),
                                  static_cast<char>(16641 & 0xff)};
  return {
      {"a tampered tag", [](raw_client& c) { return flipped(c.data("evil"), 25); }, 20,
       reason_code(SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC)},
      {"a tampered ciphertext byte", [](raw_client& c) { return flipped(c.data("evil"), 6); }, 20,
       reason_code(SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC)},
      {"a tampered outer type",
       [](raw_client& c) {
         std::string s = c.data("evil");
         s[0] = 22;
         return s;
       },
       10, reason_code(SSL_R_UNEXPECTED_RECORD)},
      {"a tampered version", [](raw_client& c) { return flipped(c.data("evil"), 2); }, 50,
       reason_code(SSL_R_WRONG_VERSION_NUMBER)},
      {"a length past 2^14 + 256", [big_header](raw_client&) { return big_header; }, 22,
       reason_code(SSL_R_ENCRYPTED_LENGTH_TOO_LONG)},
      {"a shortened length",
       [](raw_client& c) {
         std::string s = c.data("evil");
         s[4] = static_cast<char>(s[4] - 1);
         s.pop_back();
         return s;
       },
       20, reason_code(SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC)},
      {"a record too short for its tag",
       [](raw_client&) {
         return std::string({23, 3, 3, 0, 10}) + std::string(10, 'x');
       },
       50, reason_code(SSL_R_BAD_PACKET)},
      {"a replayed record",
       [](raw_client& c) {
         const std::string s = c.data("once");
         return s + s;
       },
       20, reason_code(SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC), 8},
      {"an inner change_cipher_spec",
       [](raw_client& c) { return c.seal(content::change_cipher_spec, "\x01"); }, 10,
       reason_code(SSL_R_UNEXPECTED_RECORD)},
      {"an unknown inner type", [](raw_client& c) { return c.seal(content{99}, "x"); }, 10,
       reason_code(SSL_R_UNEXPECTED_RECORD)},
      {"all padding, no type", [](raw_client& c) { return c.seal(content{0}, ""); }, 10,
       reason_code(SSL_R_UNEXPECTED_RECORD)},
      {"a NewSessionTicket sent to the server",
       [](raw_client& c) {
         return c.seal(content::handshake, std::string("\x04\x00\x00\x01\x00", 5));
       },
       10, reason_code(SSL_R_UNEXPECTED_MESSAGE)},
      {"a Certificate nobody asked for",
       [](raw_client& c) {
         return c.seal(content::handshake, std::string("\x0b\x00\x00\x04\x00\x00\x00\x00", 8));
       },
       10, reason_code(SSL_R_UNEXPECTED_MESSAGE)},
      {"an empty handshake record", [](raw_client& c) { return c.seal(content::handshake, ""); },
       10, reason_code(SSL_R_UNEXPECTED_MESSAGE)},
      {"a KeyUpdate with data after it in its record",
       [](raw_client& c) { return c.seal(content::handshake, key_update_message(false) + "x"); },
       10, reason_code(SSL_R_NOT_ON_RECORD_BOUNDARY)},
      {"a KeyUpdate with request 2",
       [](raw_client& c) {
         return c.seal(content::handshake, std::string("\x18\x00\x00\x01\x02", 5));
       },
       47, reason_code(SSL_R_BAD_KEY_UPDATE)},
      {"a KeyUpdate of the wrong length",
       [](raw_client& c) {
         return c.seal(content::handshake, std::string("\x18\x00\x00\x02\x00\x00", 6));
       },
       50, reason_code(SSL_R_BAD_LENGTH)},
      {"a handshake message cut by a data record",
       [](raw_client& c) { return c.seal(content::handshake, std::string("\x18\x00", 2), "x"); },
       10, reason_code(SSL_R_UNEXPECTED_RECORD)},
      {"an alert of three bytes",
       [](raw_client& c) { return c.seal(content::alert, std::string("\x02\x28\x00", 3)); }, 50,
       reason_code(SSL_R_INVALID_ALERT)},
      {"a KeyUpdate flood",
       [](raw_client& c) {
         std::string s;
         for (int i = 0; i < 40; ++i)
           s += c.seal(content::handshake, key_update_message(true));
         return s;
       },
       10, reason_code(SSL_R_TOO_MANY_KEY_UPDATES)},
      {"a flood of empty records",
       [](raw_client& c) {
         std::string s;
         for (int i = 0; i < 40; ++i)
           s += c.data("");
         return s;
       },
       10, reason_code(SSL_R_RECORD_TOO_SMALL)},
      {"the peer's fatal alert (handshake_failure)",
       [](raw_client& c) { return c.seal(content::alert, std::string("\x02\x28", 2)); }, -1,
       reason_code(SSL_AD_REASON_OFFSET + 40)},
  };
}

TEST(tls_record_layer, hostile_records_get_their_alert_a_close_and_deliver_nothing) {
  for (const hostile& h : hostile_table()) {
    SCOPED_TRACE(h.name);
    rig r;
    raw_client cl(r.port());
    ASSERT_TRUE(cl.ok()) << cl.error();
    ASSERT_TRUE(cl.send(cl.data("ping")));
    ASSERT_EQ(cl.read_data(4), "ping") << cl.error();
    ASSERT_TRUE(cl.send(h.bytes(cl)));
    EXPECT_TRUE(cl.read_to_end()) << cl.error();
    EXPECT_EQ(cl.alert(), h.alert) << cl.error();
    ASSERT_TRUE(r.closed.wait_for_size(1, 10s));
    EXPECT_EQ(r.closed.snapshot()[0], h.cause) << r.closed.snapshot()[0].message();
    EXPECT_EQ(r.delivered.load(), h.delivered);
  }
}

TEST(tls_record_layer, a_record_cut_off_by_the_end_of_the_stream_delivers_nothing) {
  rig r;
  raw_client cl(r.port());
  ASSERT_TRUE(cl.ok()) << cl.error();
  const std::string rec = cl.data("never whole");
  ASSERT_TRUE(cl.send(rec.substr(0, rec.size() - 1)));
  cl.shut_write();
  EXPECT_TRUE(cl.read_to_end());
  ASSERT_TRUE(r.closed.wait_for_size(1, 10s));
  EXPECT_EQ(r.delivered.load(), 0u);
}

// --- the write queue's reject policy ------------------------------------------------------------

// A write rejected for the queue's room is rejected before anything is sealed: the sequence
// numbers stay where the peer expects them, and the next write opens (found in review: the
// check compared the plaintext's size, the ciphertext is larger).
struct rejected_then_small {
  event_log<std::error_code>* results;
  void on_open(nbio::conn& c) {
    results->push(c.write(std::string(19'990, 'x')));  // + 22 bytes of record: past 20,000
    results->push(c.write("hello"));
  }
};

TEST(tls_record_layer, a_write_rejected_for_the_queue_leaves_the_stream_intact) {
  event_log<std::error_code> results;
  auto tls = nbio::tls::context::server(
      {.cert = {test_pki::get().server.chain, test_pki::get().server.key}});
  nbio::listen_options o{.tls = tls};
  o.conn.max_write_queue = 20'000;
  o.conn.on_overflow = nbio::overflow_policy::reject;
  test_server server(rejected_then_small{&results}, o);
  raw_client cl(server.address().port());
  ASSERT_TRUE(cl.ok()) << cl.error();
  EXPECT_EQ(cl.read_data(5), "hello") << cl.error();
  ASSERT_TRUE(results.wait_for_size(2, 10s));
  EXPECT_EQ(results.snapshot()[0], nbio::errc::write_queue_overflow);
  EXPECT_FALSE(results.snapshot()[1]);
}

// --- what the handler can still ask after the hand-off ------------------------------------------

// tls::alpn and tls::server_name outlive the SSL object; clients sending many distinct SNI
// names cannot crowd the server's protocols out of the names kept (found in review: one shared
// table of 256 names filled with SNI left tls::alpn empty).
TEST(tls_record_layer, alpn_and_sni_outlive_openssl_past_three_hundred_distinct_names) {
  event_log<tls_seen> opened;
  auto tls = nbio::tls::context::server(
      {.cert = {test_pki::get().server.chain, test_pki::get().server.key},
       .alpn = {"h2", "http/1.1"}});
  test_server server(tls_echo_handler{&opened, nullptr}, {.tls = tls});
  SSL_CTX* ctx = client_ctx("TLS_AES_128_GCM_SHA256");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  // 300 names without ALPN (past the 256 the table keeps), then one offering h2.
  constexpr int count = 301;
  for (int i = 0; i < count; ++i) {
    const int fd = connect_to(server.address().port());
    ASSERT_GE(fd, 0);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    const std::string name = "host-" + std::to_string(i) + ".example";
    SSL_set_tlsext_host_name(ssl, name.c_str());
    static const unsigned char h2[] = "\x02h2";
    if (i == count - 1) SSL_set_alpn_protos(ssl, h2, sizeof h2 - 1);
    ASSERT_EQ(connect_retrying(ssl), 1) << i;
    ASSERT_TRUE(opened.wait_for_size(static_cast<std::size_t>(i) + 1, 10s)) << i;
    SSL_free(ssl);
    ::close(fd);
  }
  SSL_CTX_free(ctx);
  const std::vector<tls_seen> seen = opened.snapshot();
  for (int i = 0; i < count; ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(seen[i].handed_off);
    EXPECT_EQ(seen[i].alpn, i == count - 1 ? "h2" : "");
    EXPECT_EQ(seen[i].server_name, "host-" + std::to_string(i) + ".example");
    EXPECT_EQ(seen[i].cipher, "TLS_AES_128_GCM_SHA256");
    EXPECT_EQ(seen[i].version, "TLSv1.3");
  }
}

// --- closing ------------------------------------------------------------------------------------

TEST(tls_record_layer, close_notify_ends_the_stream_and_is_answered) {
  rig r;
  raw_client cl(r.port());
  ASSERT_TRUE(cl.ok()) << cl.error();
  std::string bye = cl.data("bye");
  bye += cl.seal(content::alert, std::string("\x01\x00", 2));
  ASSERT_TRUE(cl.send(bye));
  EXPECT_EQ(cl.read_data(3), "bye");
  EXPECT_TRUE(cl.read_to_end()) << cl.error();
  EXPECT_EQ(cl.alert(), 0);  // the server's close_notify
  ASSERT_TRUE(r.closed.wait_for_size(1, 10s));
  EXPECT_EQ(r.delivered.load(), 3u);
}

// --- idle connections ---------------------------------------------------------------------------

TEST(tls_record_layer, idle_connections_release_their_cipher_contexts_and_rebuild_them) {
  rig r;
  raw_client cl(r.port());
  ASSERT_TRUE(cl.ok()) << cl.error();
  ASSERT_TRUE(cl.send(cl.data("warm")));
  ASSERT_EQ(cl.read_data(4), "warm");
  const std::uint64_t before = record_stream::released.load();
  // Two sweeps (about a second apart) pass over an idle connection: the second releases it.
  EXPECT_TRUE(wait_until([&] { return record_stream::released.load() > before; }, 10s));
  ASSERT_TRUE(cl.send(cl.data("again")));
  EXPECT_EQ(cl.read_data(5), "again") << cl.error();
}

// --- real peers ---------------------------------------------------------------------------------

// OpenSSL's own client on a blocking socket, counting the KeyUpdates it receives.
int key_updates_seen = 0;
void count_key_updates(int write_p, int, int content_type, const void* buf, size_t len, SSL*,
                       void*) {
  if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
      static_cast<const unsigned char*>(buf)[0] == SSL3_MT_KEY_UPDATE)
    ++key_updates_seen;
}

TEST(tls_record_layer, an_openssl_client_echoes_megabytes_across_key_updates_in_every_suite) {
  records_per_key_scope scope(64);
  rig r;
  std::string payload(4u << 20, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>((i * 131 + i / 4099) & 0xff);
  for (const char* suite :
       {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
    SCOPED_TRACE(suite);
    key_updates_seen = 0;
    const int fd = connect_to(r.port());
    ASSERT_GE(fd, 0);
    SSL_CTX* ctx = client_ctx(suite);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    SSL_set_msg_callback(ssl, count_key_updates);
    ASSERT_EQ(connect_retrying(ssl), 1);
    std::string echoed;
    constexpr std::size_t chunk = 64 * 1024;
    for (std::size_t at = 0, round = 0; at < payload.size(); at += chunk, ++round) {
      // Every 8th chunk the client renews its key, every 16th asking for the server's too.
      if (round % 8 == 7) {
        const int type = round % 16 == 15 ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED;
        ASSERT_EQ(SSL_key_update(ssl, type), 1);
      }
      const std::string_view piece = std::string_view(payload).substr(at, chunk);
      int w = 0;
      do {
        w = SSL_write(ssl, piece.data(), static_cast<int>(piece.size()));
      } while (w <= 0 && wants_retry(ssl, w));
      ASSERT_EQ(w, static_cast<int>(piece.size()));
      const std::size_t want = echoed.size() + piece.size();
      char buf[16384];
      while (echoed.size() < want) {
        const int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0 && wants_retry(ssl, n)) continue;
        ASSERT_GT(n, 0) << SSL_get_error(ssl, n);
        echoed.append(buf, static_cast<std::size_t>(n));
      }
    }
    EXPECT_TRUE(echoed == payload);
    // The hand-off's KeyUpdate, one before each 64 records the server sealed after the first 64
    // (4 MiB in at least 256 records), and answers to the client's four requests (one may
    // coincide with a renewal).
    EXPECT_GE(key_updates_seen, 1 + 3 + 1);
    EXPECT_EQ(SSL_shutdown(ssl), 0);  // our close_notify out; now the server's
    int shut = 0;
    do {
      shut = SSL_shutdown(ssl);
    } while (shut < 0 && wants_retry(ssl, shut));
    EXPECT_EQ(shut, 1);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fd);
  }
  EXPECT_EQ(r.tls->stats().handed_off, 3u);
  EXPECT_EQ(r.delivered.load(), 3 * payload.size());
}

TEST(tls_record_layer, s_client_k_and_K_update_keys_midway_and_data_still_flows) {
  rig r;
  tls_peer p(s_client_args(r.port(), {"-tls1_3", "-verify_return_error"}));
  ASSERT_TRUE(p.wait_for("Verify return code: 0 (ok)")) << p.output();
  ASSERT_TRUE(p.send("first line\n"));
  ASSERT_TRUE(p.wait_for("first line")) << p.output();
  ASSERT_TRUE(p.send("k\n"));  // KeyUpdate, update_not_requested
  ASSERT_TRUE(p.wait_for("KEYUPDATE")) << p.output();
  ASSERT_TRUE(p.send("after little k\n"));
  ASSERT_TRUE(p.wait_for("after little k")) << p.output();
  ASSERT_TRUE(p.send("K\n"));  // KeyUpdate, update_requested: ours comes back before the echo
  ASSERT_TRUE(p.wait_for("KEYUPDATE", 10s, 2)) << p.output();
  ASSERT_TRUE(p.send("after big K\n"));
  ASSERT_TRUE(p.wait_for("after big K")) << p.output();
  // Then a few hundred kilobytes, many records each way (digits: s_client takes a read that
  // starts with a command letter, k among them, as that command).
  std::string lines;
  for (int i = 0; i < 300; ++i)
    lines += std::string(1000, static_cast<char>('0' + i % 10)) + "\n";
  ASSERT_TRUE(p.send(lines + "the end\n"));
  ASSERT_TRUE(p.wait_for("the end", 20s)) << p.output().size();
  p.close_stdin();
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_EQ(r.tls->stats().handed_off, 1u);
  const std::size_t sent = std::string("first line\nafter little k\nafter big K\n").size() +
                           lines.size() + std::string("the end\n").size();
  EXPECT_TRUE(wait_until([&] { return r.delivered.load() == sent; })) << r.delivered.load();
}

TEST(tls_record_layer, python_ssl_echoes_a_megabyte_and_closes_with_close_notify) {
  if (::access("/usr/bin/python3", X_OK) != 0) NBIO_PEER_MISSING("python3");
  rig r;
  temp_file script(
      "import socket, ssl, sys\n"
      "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
      "ctx.minimum_version = ssl.TLSVersion.TLSv1_3\n"
      "raw = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)\n"
      "s = ctx.wrap_socket(raw, server_hostname='localhost')\n"
      "data = bytes((i * 7 + i // 251) & 255 for i in range(1 << 20))\n"
      "got = bytearray()\n"
      "for at in range(0, len(data), 100000):\n"
      "    s.sendall(data[at:at + 100000])\n"
      "    want = min(len(data), at + 100000)\n"
      "    while len(got) < want:\n"
      "        got += s.recv(65536)\n"
      "assert bytes(got) == data\n"
      "version = s.version()\n"
      "s.unwrap()\n"
      "print(version, 'ok')\n");
  const tool_run t = run_tool("/usr/bin/python3 " + script.path() + " " + std::to_string(r.port()) +
                              " " + test_pki::get().ca + " 2>&1");
  EXPECT_EQ(t.status, 0) << t.output;
  EXPECT_EQ(t.output, "TLSv1.3 ok\n");
  EXPECT_EQ(r.tls->stats().handed_off, 1u);
}

TEST(tls_record_layer, node_tls_echoes_a_megabyte) {
  if (::access("/usr/bin/node", X_OK) != 0) NBIO_PEER_MISSING("node");
  rig r;
  temp_file script(
      "const tls = require('tls'), fs = require('fs');\n"
      "const data = Buffer.alloc(1 << 20);\n"
      "for (let i = 0; i < data.length; i++) data[i] = (i * 13 + (i >> 9)) & 255;\n"
      "const s = tls.connect({host: '127.0.0.1', port: +process.argv[2], servername: "
      "'localhost',\n"
      "  ca: fs.readFileSync(process.argv[3]), minVersion: 'TLSv1.3'}, () => s.end(data));\n"
      "const got = [];\n"
      "s.on('data', d => got.push(d));\n"
      "s.on('end', () => {\n"
      "  const all = Buffer.concat(got);\n"
      "  if (!all.equals(data)) { console.log('mismatch', all.length); process.exit(1); }\n"
      "  console.log(s.getProtocol(), 'ok');\n"
      "});\n"
      "s.on('error', e => { console.log('error', e.message); process.exit(1); });\n"
      "setTimeout(() => { console.log('timeout'); process.exit(1); }, 10000).unref();\n");
  // The handler echoes; when Node ends its side (close_notify, then FIN) the server closes
  // after what it echoed, with its own close_notify: Node's 'end'.
  const tool_run t = run_tool("/usr/bin/node " + script.path() + " " + std::to_string(r.port()) +
                              " " + test_pki::get().ca + " 2>&1");
  EXPECT_EQ(t.status, 0) << t.output;
  EXPECT_EQ(t.output, "TLSv1.3 ok\n");
  EXPECT_EQ(r.tls->stats().handed_off, 1u);
  EXPECT_EQ(r.delivered.load(), 1u << 20);
}

}  // namespace
