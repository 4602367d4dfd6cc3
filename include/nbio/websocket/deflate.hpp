// Public. permessage-deflate (RFC 7692): the negotiation both sides do in the opening handshake,
// and the per-message compressor and decompressor (zlib, raw deflate) the connections use.
//
//   nbio::websocket::endpoint_options o;
//   o.deflate.enabled = true;                          // accept clients' offers
//   o.deflate.memory = nbio::websocket::deflate_memory::shared;  // no zlib state per connection
//
// Memory is the whole question for a server holding many connections. A compressor that keeps
// its context between messages (context takeover, the RFC's default) keeps a zlib stream per
// connection for the connection's life: (1 << (window_bits + 2)) + (1 << (mem_level + 9))
// bytes plus ~6 KiB, so 262 KiB at window 15 and mem_level 8, 10 KiB at window 9 and
// mem_level 1. A decompressor that keeps context holds (1 << window_bits) + ~7 KiB. Hence three
// policies for the streams of our side (deflate_memory):
//   shared     no context takeover in either direction (the server answers both
//              *_no_context_takeover parameters, which RFC 7692 7.1.1 lets it add): every
//              message is compressed by one per-thread compressor and decompressed by a stream
//              borrowed from a per-thread pool for the message's duration. An idle connection
//              holds no zlib state at all. The default.
//   dedicated  context takeover where the peer allows it: each connection gets its own streams
//              (created at its first compressed message), the best ratio for similar messages.
//   sliding    dedicated for the first max_dedicated connections of the endpoint (counted while
//              they are open), shared past them: a bounded amount of memory, the best ratio for
//              as many connections as it allows.
//
// Thread affinity: none; an inflater or deflater belongs to one stream of messages at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace nbio::websocket {

enum class deflate_memory : std::uint8_t { shared, dedicated, sliding };

struct deflate_options {
  bool enabled = false;  // off: no offer (client), every offer declined (server)
  deflate_memory memory = deflate_memory::shared;
  std::uint32_t max_dedicated = 1'000;  // sliding: connections with their own streams, at most
  // The RFC's parameters (7.1): what a client offers, or the least a server accepts and asks.
  // Setting a *_no_context_takeover forces it on that direction whatever the memory policy.
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  // LZ77 window of each direction's compressor, 8-15 (zlib's raw deflate has no 256-byte
  // window: our own compressor uses at least 9, and an offer or answer asking 8 of us is
  // declined).
  std::uint8_t server_max_window_bits = 15;
  std::uint8_t client_max_window_bits = 15;
  std::size_t threshold = 64;  // messages shorter than this are sent uncompressed
  int level = 1;               // zlib level 1-9: 1 is the fastest (gateways pay per message)
  int mem_level = 8;           // zlib memLevel 1-9: compressor memory against ratio
};

// What one connection agreed.
struct deflate_params {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  std::uint8_t server_max_window_bits = 15;
  std::uint8_t client_max_window_bits = 15;
};

// Server side: answers a Sec-WebSocket-Extensions offer list (all the request's fields joined
// with ", "). The first permessage-deflate offer that is well formed (known parameters, none
// twice, window bits "8" to "15") and acceptable is taken; `keep_context` says whether the
// memory policy lets this connection keep a compression context. Returns false when none is
// taken (the connection goes on uncompressed); else `params` and `response` (the element to
// send back in Sec-WebSocket-Extensions).
bool negotiate_deflate(std::string_view offers, const deflate_options& ours, bool keep_context,
                       deflate_params& params, std::string& response);

// Client side: the offer to send, and the check of the server's answer (an empty answer: not
// negotiated, returns false with no error; a malformed or unoffered answer: errc
// handshake_extension).
std::string deflate_offer(const deflate_options& ours);
bool accept_deflate(std::string_view answer, const deflate_options& ours, deflate_params& params,
                    std::error_code& ec);

// One direction's compressor: whole messages in, the payload of a compressed message out (the
// trailing 00 00 ff ff of the sync flush removed, RFC 7692 7.2.1).
class deflater {
 public:
  // `window_bits` 9-15; `keep_context` false resets the stream after every message.
  deflater(int window_bits, bool keep_context, int level = 1, int mem_level = 8);
  ~deflater();
  deflater(const deflater&) = delete;
  deflater& operator=(const deflater&) = delete;

  // Compresses `message` into `out` (replaced). Returns false only if zlib fails (out of
  // memory); the stream must not be used after that.
  bool compress(std::string_view message, std::string& out);

 private:
  struct stream;
  std::unique_ptr<stream> z_;
  bool keep_;
};

// One direction's decompressor: the payload of a compressed message in pieces, the message out,
// bounded.
class inflater {
 public:
  explicit inflater(int window_bits = 15);
  ~inflater();
  inflater(const inflater&) = delete;
  inflater& operator=(const inflater&) = delete;

  // Appends what `piece` (the next bytes of a compressed message's payload) decompresses to, to
  // `out`; `last` ends the message (the removed 00 00 ff ff is fed back). After a final block
  // (BFINAL) the rest of the message is ignored and the window kept for the next. Errors:
  // errc::message_too_big when `out` would pass `max_size` bytes (a zip bomb stops there, having
  // produced at most max_size + 1 bytes), errc::bad_compressed_data for data that is not a
  // raw deflate stream. After an error the stream must be reset before reuse.
  std::error_code inflate(std::string_view piece, bool last, std::string& out,
                          std::uint64_t max_size);
  // Forgets the context (no context takeover: after every message).
  void reset();

 private:
  struct stream;
  std::unique_ptr<stream> z_;
  bool ended_ = false;  // this message's deflate data ended with a final block
};

}  // namespace nbio::websocket
