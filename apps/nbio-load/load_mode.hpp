// nbio-load. The plug-in point for a traffic mode (idle, tcp-echo, http, ws-echo, ws-idle).
//
// A mode says what to send and how to find complete replies in received bytes; load_client
// does the rest (connecting, keeping messages in flight, counting, timing). A mode object is
// shared by all connections of a worker and is called from every loop thread, so it must be
// immutable after construction: per-connection parse state lives in the connection's own
// conn_data as `mode_state` (8 bytes, zero on open), handed to scan().
//
// The cost is one virtual call per received chunk and none per byte: a parse loop belongs in
// scan(), not around it.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

namespace nbio_load {

struct load_options;

// What scan() found in one chunk of received bytes.
struct reply_scan {
  std::uint32_t replies = 0;  // replies completed by this chunk
  bool error = false;         // bytes that cannot be a reply: the connection is closed
};

class load_mode {
 public:
  virtual ~load_mode() = default;

  // The name used by --mode.
  virtual std::string_view name() const noexcept = 0;
  // True when the mode sends requests; false for a mode that only holds connections (idle).
  virtual bool sends() const noexcept = 0;
  // Bytes sent once when a connection opens, before any request (a WebSocket upgrade).
  virtual std::string_view greeting() const noexcept { return {}; }
  // The bytes of one request, sent when a connection opens (once per message it keeps in
  // flight) and after each reply. The view stays valid for the mode's lifetime.
  virtual std::string_view request() const noexcept = 0;
  // Consumes `bytes` received on a connection whose parse state is `state`.
  virtual reply_scan scan(std::uint64_t& state, std::string_view bytes) const noexcept = 0;
};

// The mode named by options.mode, built from the options (payload size, ...).
std::unique_ptr<load_mode> make_load_mode(const load_options& options);

}  // namespace nbio_load
