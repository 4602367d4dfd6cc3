// Private. What a TLS connection owns: the state its transport slot points to.
//
// While OpenSSL runs the connection (the handshake, and for good on the OpenSSL path: TLS 1.2,
// a client, a server with the hand-off off or refused) that is its SSL object. After a TLS 1.3
// server's hand-off (handoff.hpp) the SSL is freed and the connection is this object alone:
// nbio's two record directions (record.hpp), the record being read when it came in pieces,
// and what the handshake established that the handler may still ask about (tls::alpn and the
// rest). An idle handed-off connection holds this object and nothing else: 216 bytes, from a
// pool of its own (operator new below) rather than the heap, where it would sit among the
// handshakes' short-lived allocations and keep glibc from handing their pages back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string_view>

#include "tls/record.hpp"

typedef struct ssl_st SSL;
typedef struct x509_st X509;

namespace nbio::tls::detail {

struct connection {
  enum flag : std::uint8_t {
    used = 1,            // a cipher context worked since the last sweep (record_stream.cpp)
    owe_key_update = 2,  // the peer asked for one: ours goes before our next data record
    close_sent = 4,      // our close_notify (or a fatal alert) is out: nothing more is sealed
    resumed = 8,         // the handshake resumed a session
    name_owned = 16,     // server_name is our own copy, not an interned one
    alpn_owned = 32,     // alpn is our own copy, not an interned one
  };

  SSL* ssl = nullptr;  // while OpenSSL runs the connection; null once handed off
  record_direction tx, rx;
  // A record that came in pieces, while it is incomplete: its first partial_have bytes, in a
  // buffer of partial_size (the header's 5 until its length is known, then the whole record).
  char* partial = nullptr;
  std::uint16_t partial_have = 0, partial_size = 0;
  // 1 + its index in this thread's list of connections holding cipher contexts; 0: not listed.
  std::uint32_t listed = 0;
  // A post-handshake message that came in pieces (a KeyUpdate is 5 bytes), so far.
  std::uint8_t message[4] = {};
  std::uint8_t message_have = 0;
  // Records in a row that carried no application data (KeyUpdates, empty records): bounded.
  std::uint8_t quiet_records = 0;
  std::uint8_t flags = 0;
  // From the handshake, for tls::alpn, server_name and peer_subject after the SSL is gone.
  const char* alpn = nullptr;         // interned, or owned (alpn_owned), or null
  const char* server_name = nullptr;  // interned, or owned (name_owned), or null
  X509* peer = nullptr;               // the verified client certificate (a reference), or null

  connection() = default;
  ~connection();
  // From the pool: mmapped chunks of 256 KiB carved into objects, freed ones reused (LIFO);
  // chunks stay for the process's life. One lock per connection opened or closed, none per I/O.
  static void* operator new(std::size_t size);
  static void* operator new(std::size_t size, const std::nothrow_t&) noexcept;
  static void operator delete(void* p) noexcept;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  bool handed_off() const noexcept { return ssl == nullptr; }
  // Keeps what the handshake established, then frees the SSL: the connection is nbio's now.
  // The record directions must be set (hand_off) first.
  void leave_openssl() noexcept;
};

// A name for as long as the process lives: the same pointer for the same text, from one of two
// tables: the ALPN protocols servers were configured with (interned when a context loads, so
// the protocol a server selects is always there), and the SNI names clients sent. Null when the
// table is full (256 names each: a handful in practice; past that, callers keep their own copy,
// so clients that send many names cannot crowd out the protocols).
enum class name_table : std::uint8_t { protocols, server_names };
const char* intern(name_table table, std::string_view name) noexcept;

}  // namespace nbio::tls::detail
