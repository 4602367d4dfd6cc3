// Private. The seam between the engine and a transport (TLS): the hooks the engine calls on a
// transport's connections, and the engine functions a transport calls back.
//
// The engine cannot name the TLS layer (layers depend downward), so the TLS layer registers its
// hooks here once (set_transport_ops) and the engine calls them through one table: one
// indirect call per read or write of a TLS connection, beside the cipher's own work.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "nbio/engine/conn.hpp"
#include "nbio/engine/transport.hpp"

namespace nbio::detail {

struct dial_state;

// The last 16 bytes of a transport connection's slot.
struct transport_slot {
  void* state = nullptr;  // the transport's own (an SSL*)
  // Before the handshake is done: the dial_state of a dialed connection (its on_connect and
  // on_error wait for the handshake). After: input the handler left unread when it paused or
  // rebound mid-batch (a std::string, replayed first), or null.
  void* aux = nullptr;
};
inline constexpr std::size_t transport_slot_size = 16;
static_assert(sizeof(transport_slot) == transport_slot_size);

struct transport_ops {
  // A connection's socket is connected: make its state, and for a client start the handshake
  // (its first flight goes out through raw_write). `server_name` is the dial's host (client).
  void* (*open)(transport& t, conn& c, bool server, std::string_view server_name,
                std::error_code& ec);
  // Bytes read from the socket: the handshake, then plaintext to deliver(). Returns how many
  // bytes it consumed: all of them unless the connection stopped reading (paused, closed,
  // rebound onto a handler that paused) with some left. The bytes are the caller's buffer: the
  // transport may decrypt in place what it consumes (never what it leaves).
  std::size_t (*input)(conn& c, void* state, std::span<char> bytes);
  // Whether the transport holds input already read from the socket but not yet delivered.
  bool (*pending)(void* state);
  // Plaintext from the handler: out through raw_write.
  std::error_code (*write)(conn& c, void* state, std::string_view plain);
  // Tells the peer the stream ends (TLS close_notify), through raw_write, or when `best_effort`
  // straight to the socket with nothing queued and errors ignored (the connection is closing).
  void (*close_notify)(conn& c, void* state, bool best_effort);
  void (*free)(void* state);
  // On a loop's thread, a while after transport_conn::sweep_later: lets go of what this
  // thread's idle connections hold (TLS: their cipher contexts). True: call again later.
  bool (*sweep)();
  // The transport's error category (close causes of category 3).
  const std::error_category* category;
  // The most bytes `plain` bytes of plaintext can take once sealed (TLS: record headers, tags,
  // a KeyUpdate): what overflow_policy::reject compares with the write queue's room.
  std::size_t (*sealed_size)(std::size_t plain);
};

// Once, by the transport layer, before any connection uses it.
void set_transport_ops(const transport_ops* ops) noexcept;
const transport_ops& transport_hooks() noexcept;

// Engine functions for the transport, on the connection's own thread. They are members of a
// struct that conn befriends.
struct transport_conn {
  static transport_slot& slot(conn& c) noexcept;
  // A transport connection's socket is connected: its handshake starts; the handler's on_open
  // waits for it (established). False: it failed (the connection is closing).
  static bool open(conn& c, const handler_table& cls, bool server, std::string_view name);
  // Ciphertext to the socket (or the write queue): the engine's write without the transport.
  static std::error_code raw_write(conn& c, std::string_view bytes);
  // The handshake is done: a dial's on_connect, then the handler's on_open.
  static void established(conn& c);
  // Plaintext for the handler (on_data of whatever handler the connection has now).
  static void deliver(conn& c, std::string_view plain);
  // The peer ended the stream (TLS close_notify): as a read of 0 bytes.
  static void end_of_stream(conn& c);
  // Whether the connection takes no more input now (closed, paused, at end of stream).
  static bool stopped_reading(const conn& c) noexcept;
  // Closes the connection with the transport's error.
  static void fail(conn& c, std::error_code ec);
  // The same once what is queued (the transport's last words: a TLS alert) has gone out.
  static void fail_after_flush(conn& c, std::error_code ec);

  // Engine side: the transport's write path for conn::write().
  static std::error_code write(conn& c, std::string_view plain);
  // Feeds `bytes` to the transport and keeps what it left unread in the slot.
  static void feed(conn& c, std::span<char> bytes);
  // Whether input kept from before a pause waits (the transport's, or the slot's string).
  static bool has_kept_input(conn& c);
  // Replays input kept from before (a pause or a rebind mid-batch). False: nothing was kept.
  static bool replay(conn& c);
  // Frees the transport's state (and a dial still waiting for its handshake: its on_error).
  static void release(conn& c, std::error_code reason);
  static void close_notify(conn& c, bool best_effort);
  // Transport side, on a loop connection's thread (not a blocking-mode one): has the loop call
  // the transport's sweep in about a second (once, however often asked meanwhile).
  static void sweep_later(conn& c);
};

}  // namespace nbio::detail
