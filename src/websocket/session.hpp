// Private. One WebSocket connection after its handshake, in either role: the state in the
// engine's slot and the connection handler both the server and the client bind to (frames read
// in place, messages assembled only when they must be, pings, the closing handshake).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/buffer_budget.hpp"
#include "nbio/engine/engine.hpp"
#include "nbio/websocket/connection.hpp"
#include "nbio/websocket/deflate.hpp"
#include "nbio/websocket/frame_parser.hpp"
#include "nbio/websocket/handler.hpp"
#include "nbio/websocket/server.hpp"

namespace nbio::websocket::detail {

// What an endpoint's (a server's or a client's) connections share.
struct session_shared {
  std::unique_ptr<callbacks> cb;  // the handler's calls (handler.hpp)
  std::chrono::milliseconds close_timeout{5'000};
  std::chrono::milliseconds pong_timeout{10'000};  // keepalive: after a ping, wait this long
  std::vector<std::string> protocols;              // the subprotocols named by index in ws_state
  frame_limits limits{};                           // max_message also bounds inflated messages
  deflate_options deflate{};                       // threshold, level, mem_level, the policy
  // deflate_memory::sliding: open connections that keep a compression context.
  mutable std::atomic<std::uint32_t> dedicated{0};
  // The bytes of messages being assembled (endpoint_options::max_buffered_bytes).
  mutable http::detail::buffer_budget budget;

  void message(connection& ws, std::string_view data, bool binary) const {
    if (cb->on_message) cb->on_message(cb->handler, ws, data, binary);
  }
};

// What a connection holds only while it needs it: bytes of a frame that is not whole yet, a
// message that came in pieces, the peer's close reason.
struct pending {
  std::string tail;     // unconsumed bytes (an incomplete header or control frame)
  std::string message;  // a message assembled from pieces
  std::string reason;   // the peer's close reason
  // permessage-deflate: our compressor when it keeps its context; the decompressor when the
  // peer keeps its context, or one borrowed from the thread's pool while a compressed message
  // comes in pieces; that message's UTF-8 check.
  std::unique_ptr<deflater> tx;
  std::unique_ptr<inflater> rx;
  utf8_validator utf8;
  // What `message` and `tail` hold, in the endpoint's budget (given back when deleted).
  http::detail::budget_holder holder;
};

// ws_state::z: what permessage-deflate agreed for the connection.
enum : std::uint8_t {
  z_on = 1 << 0,       // negotiated: RSV1 marks compressed messages
  z_tx_keep = 1 << 1,  // our compressor keeps its context (a dedicated stream in pending)
  z_rx_keep = 1 << 2,  // the peer's does: our decompressor is dedicated too
  z_counted = 1 << 3,  // counted in session_shared::dedicated (sliding)
};

enum : std::uint8_t {
  f_close_sent = 1 << 0,
  f_close_received = 1 << 1,
  f_binary = 1 << 2,    // the message being assembled is binary
  f_client = 1 << 3,    // the client role: frames sent are masked
  f_ping_out = 1 << 4,  // keepalive: a ping went out after a silence, nothing came back yet
  f_failed = 1 << 5,    // failed with a close frame: reads are discarded until the peer's FIN
  f_opened = 1 << 6,    // the handler's conn_data is built and on_open ran; on_close is owed
};

// Per connection, at the start of the engine's slot; the handler's conn_data follows it
// (handler.hpp: state_bytes, data_offset).
struct ws_state {
  frame_parser parser{role::server};
  pending* more = nullptr;
  const session_shared* s = nullptr;
  std::uint32_t close_by = 0;    // after our close frame: when to stop waiting (ms_now())
  std::uint16_t close_code = 0;  // the peer's, once its close frame came
  std::uint8_t flags = 0;
  std::uint8_t protocol = 0;  // 1 + index into session_shared::protocols; 0: none
  std::uint8_t z = 0;         // z_* flags
  std::uint8_t z_bits = 0;    // window bits: ours (low nibble), the peer's (high nibble)
};

static_assert(sizeof(ws_state) == state_bytes, "handler.hpp's state_bytes is sizeof(ws_state)");

// Sets up permessage-deflate on a connection that agreed `p` (in the role given by
// f_client): the flags and the window bits. Returns whether the connection keeps a compression
// context (the caller counts it for deflate_memory::sliding: z_counted, session_shared::
// dedicated; on_close gives the count back).
bool init_deflate(ws_state& st, const deflate_params& p);

// A server frame of `data` compressed without context (pub/sub: one frame for every subscriber
// whose window is at least `st`'s and who keeps no context); "" when compressing does not
// shrink it.
std::string compressed_frame(const ws_state& st, std::string_view data, bool binary);

// The agreed windows: our compressor's, and the peer's (what a dedicated decompressor needs).
inline int tx_window_bits(const ws_state& st) noexcept {
  return st.z_bits & 0x0f;
}

inline int rx_window_bits(const ws_state& st) noexcept {
  return st.z_bits >> 4;
}

// Whether a new connection of the endpoint may keep compression contexts (its policy).
bool may_keep_context(const session_shared& s) noexcept;

inline ws_state& state(nbio::conn& c) {
  return c.data<ws_state>();
}

// The bytes of one frame (masked with a fresh random key when `mask`; RSV1 set when `rsv1`: a
// compressed message), in a per-thread buffer valid until the next call on this thread.
std::string_view frame(opcode op, std::string_view payload, bool mask, bool rsv1 = false);

// Sends a close frame (once; the code is echoed as given, no_status sends an empty payload).
void send_close(nbio::conn& c, close_code code, std::string_view reason);

// A millisecond clock for deadlines kept in 32 bits (wraps after 49 days; compared by
// difference).
std::uint32_t ms_now() noexcept;

// The upgrade target every WebSocket connection of an endpoint moves onto after its handshake.
nbio::upgrade_target& make_session_target(nbio::engine& eng,
                                          std::shared_ptr<const session_shared> s,
                                          const nbio::conn_options& options);

}  // namespace nbio::websocket::detail
