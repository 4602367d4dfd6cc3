// Private. permessage-deflate: the extension's negotiation (RFC 7692 5 and 7.1) and the zlib
// streams of one direction (7.2).
//
// The header grammar is parsed by hand: it is tiny (RFC 6455 9.1: elements separated by ",",
// parameters by ";", values a token or a quoted string), and every way it can be malformed has to
// decline the offer, not throw or guess.
#include "nbio/websocket/deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <vector>

#include "http/lexical.hpp"
#include "nbio/websocket/error.hpp"

namespace nbio::websocket {

namespace {

constexpr std::string_view extension_name = "permessage-deflate";

using http::detail::iequals;
using http::detail::is_ows;
using http::detail::is_tchar;

// One extension element of a Sec-WebSocket-Extensions list, read from `s` at `pos`.
struct element {
  std::string_view name;
  // The parameters we know, as offered: present, and the value ("" when none).
  struct param {
    bool present = false;
    bool has_value = false;
    std::string value;
  };
  param server_no_context_takeover, client_no_context_takeover, server_max_window_bits,
      client_max_window_bits;
  bool malformed = false;  // bad syntax, an unknown parameter or one given twice
};

class list_reader {
 public:
  explicit list_reader(std::string_view s) noexcept : s_(s) {}

  // The next element; nullopt at the end. A syntax error marks the element malformed and skips
  // to the next top-level comma (commas inside quoted strings do not count).
  std::optional<element> next() {
    skip_space_and_commas();
    if (pos_ >= s_.size()) return std::nullopt;
    element e;
    e.name = token();
    if (e.name.empty()) return fail(e);
    for (;;) {
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] == ',') return e;
      if (s_[pos_] != ';') return fail(e);
      ++pos_;
      skip_space();
      const std::string_view name = token();
      if (name.empty()) return fail(e);
      element::param* p = nullptr;
      if (iequals(name, "server_no_context_takeover")) p = &e.server_no_context_takeover;
      if (iequals(name, "client_no_context_takeover")) p = &e.client_no_context_takeover;
      if (iequals(name, "server_max_window_bits")) p = &e.server_max_window_bits;
      if (iequals(name, "client_max_window_bits")) p = &e.client_max_window_bits;
      element::param ignored;
      if (!p || p->present) {
        e.malformed = true;  // RFC 7692 5.1: unknown or repeated parameters decline the offer
        p = &ignored;
      }
      p->present = true;
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '=') {
        ++pos_;
        skip_space();
        p->has_value = true;
        if (pos_ < s_.size() && s_[pos_] == '"') {
          if (!quoted(p->value)) return fail(e);
        } else {
          p->value = std::string(token());
          if (p->value.empty()) return fail(e);
        }
      }
    }
  }

 private:
  element fail(element& e) {
    e.malformed = true;
    bool in_quote = false;
    for (; pos_ < s_.size(); ++pos_) {
      const char c = s_[pos_];
      if (in_quote && c == '\\') {
        ++pos_;
      } else if (c == '"') {
        in_quote = !in_quote;
      } else if (c == ',' && !in_quote) {
        break;
      }
    }
    return e;
  }

  void skip_space() noexcept {
    while (pos_ < s_.size() && is_ows(s_[pos_]))
      ++pos_;
  }

  void skip_space_and_commas() noexcept {
    while (pos_ < s_.size() && (is_ows(s_[pos_]) || s_[pos_] == ','))
      ++pos_;
  }

  std::string_view token() noexcept {
    const std::size_t b = pos_;
    while (pos_ < s_.size() && is_tchar(s_[pos_]))
      ++pos_;
    return s_.substr(b, pos_ - b);
  }

  // A quoted string whose unescaped content must be a token (RFC 6455 9.1).
  bool quoted(std::string& out) {
    ++pos_;  // the opening quote
    out.clear();
    while (pos_ < s_.size() && s_[pos_] != '"') {
      if (s_[pos_] == '\\') {
        if (++pos_ >= s_.size()) return false;
      }
      out += s_[pos_++];
    }
    if (pos_ >= s_.size()) return false;
    ++pos_;  // the closing quote
    return !out.empty() && std::all_of(out.begin(), out.end(), is_tchar);
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

// A window-bits value: "8" to "15" exactly (RFC 7692 7.1.2.1: 1*DIGIT without leading zeros).
std::optional<std::uint8_t> window_bits(const std::string& v) noexcept {
  if (v.size() == 1 && v[0] >= '8' && v[0] <= '9') return static_cast<std::uint8_t>(v[0] - '0');
  if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
    return static_cast<std::uint8_t>(10 + v[1] - '0');
  return std::nullopt;
}

std::uint8_t clamp_bits(std::uint8_t b) noexcept {
  return std::clamp<std::uint8_t>(b, 8, 15);
}

// The window our own compressor may use when the peer's decompressor has `limit` bits: zlib
// cannot make raw deflate streams with a 256-byte window, so 8 cannot be honoured.
bool compressor_bits_ok(std::uint8_t limit) noexcept {
  return limit >= 9;
}

// The server's answer to one well-formed offer; false when it has to be declined.
bool answer(const element& e, const deflate_options& o, bool keep_context, deflate_params& p,
            std::string& response) {
  p = deflate_params{};
  response = extension_name;
  // Our compressor (server -> client).
  std::uint8_t server_bits = std::max<std::uint8_t>(clamp_bits(o.server_max_window_bits), 9);
  if (e.server_max_window_bits.present) {
    if (!e.server_max_window_bits.has_value) return false;  // a value is required
    const auto offered = window_bits(e.server_max_window_bits.value);
    if (!offered || !compressor_bits_ok(*offered)) return false;
    server_bits = std::min(server_bits, *offered);
  }
  p.server_max_window_bits = server_bits;
  p.server_no_context_takeover =
      e.server_no_context_takeover.present || !keep_context || o.server_no_context_takeover;
  if (e.server_no_context_takeover.has_value) return false;
  // The client's compressor (client -> server).
  std::uint8_t client_bits = 15;
  if (e.client_max_window_bits.present) {
    if (e.client_max_window_bits.has_value) {
      const auto offered = window_bits(e.client_max_window_bits.value);
      if (!offered) return false;
      client_bits = *offered;
    }
    // Never ask 8 of a client: zlib-based compressors (ours included) cannot honour it.
    client_bits =
        std::min(client_bits, std::max<std::uint8_t>(clamp_bits(o.client_max_window_bits), 9));
  }
  p.client_max_window_bits = client_bits;
  if (e.client_no_context_takeover.has_value) return false;
  // A hint in the offer is a promise only once answered; ask it whenever we do not keep the
  // client's context (7.1.1.2 lets the server add it).
  p.client_no_context_takeover =
      e.client_no_context_takeover.present || !keep_context || o.client_no_context_takeover;

  if (p.server_no_context_takeover) response += "; server_no_context_takeover";
  if (p.client_no_context_takeover) response += "; client_no_context_takeover";
  if (e.server_max_window_bits.present)
    response += "; server_max_window_bits=" + std::to_string(p.server_max_window_bits);
  if (e.client_max_window_bits.present && p.client_max_window_bits < 15)
    response += "; client_max_window_bits=" + std::to_string(p.client_max_window_bits);
  return true;
}

}  // namespace

bool negotiate_deflate(std::string_view offers, const deflate_options& ours, bool keep_context,
                       deflate_params& params, std::string& response) {
  if (!ours.enabled) return false;
  list_reader reader(offers);
  while (auto e = reader.next()) {
    if (e->malformed || !iequals(e->name, extension_name)) continue;
    if (answer(*e, ours, keep_context, params, response)) return true;
  }
  return false;
}

std::string deflate_offer(const deflate_options& ours) {
  if (!ours.enabled) return {};
  std::string offer(extension_name);
  const bool shared = ours.memory == deflate_memory::shared;
  if (ours.server_no_context_takeover || shared) offer += "; server_no_context_takeover";
  if (ours.client_no_context_takeover || shared) offer += "; client_no_context_takeover";
  const std::uint8_t server_bits = clamp_bits(ours.server_max_window_bits);
  if (server_bits < 15) offer += "; server_max_window_bits=" + std::to_string(server_bits);
  // Our compressor can honour any window but 8.
  const std::uint8_t client_bits =
      std::max<std::uint8_t>(clamp_bits(ours.client_max_window_bits), 9);
  offer += "; client_max_window_bits";
  if (client_bits < 15) offer += "=" + std::to_string(client_bits);
  return offer;
}

bool accept_deflate(std::string_view answer_field, const deflate_options& ours,
                    deflate_params& params, std::error_code& ec) {
  ec.clear();
  params = deflate_params{};
  list_reader reader(answer_field);
  auto e = reader.next();
  if (!e) return false;
  ec = errc::handshake_extension;
  if (!ours.enabled || e->malformed || !iequals(e->name, extension_name)) return false;
  if (reader.next()) return false;  // only the one extension we offered
  if (e->server_no_context_takeover.has_value || e->client_no_context_takeover.has_value)
    return false;
  const bool shared = ours.memory == deflate_memory::shared;
  // Asked for and not granted: the server would keep a context we did not want to pay for.
  if ((ours.server_no_context_takeover || shared) && !e->server_no_context_takeover.present)
    return false;
  params.server_no_context_takeover = e->server_no_context_takeover.present;
  params.client_no_context_takeover =
      e->client_no_context_takeover.present || ours.client_no_context_takeover || shared;
  const std::uint8_t offered_server = clamp_bits(ours.server_max_window_bits);
  if (e->server_max_window_bits.present) {
    // 7.1.2.1 allows it only in answer to an offer that had it, but servers (Python's
    // websockets) send it anyway; a smaller window than we can read costs us nothing.
    if (!e->server_max_window_bits.has_value) return false;
    const auto bits = window_bits(e->server_max_window_bits.value);
    if (!bits || *bits > offered_server) return false;
    params.server_max_window_bits = *bits;
  } else {
    params.server_max_window_bits = offered_server;
  }
  const std::uint8_t offered_client =
      std::max<std::uint8_t>(clamp_bits(ours.client_max_window_bits), 9);
  params.client_max_window_bits = offered_client;
  if (e->client_max_window_bits.present) {
    if (!e->client_max_window_bits.has_value) return false;
    const auto bits = window_bits(e->client_max_window_bits.value);
    if (!bits || *bits > offered_client || !compressor_bits_ok(*bits)) return false;
    params.client_max_window_bits = *bits;
  }
  ec.clear();
  return true;
}

// --- the zlib streams ---

struct deflater::stream {
  z_stream z{};
};

deflater::deflater(int window_bits, bool keep_context, int level, int mem_level)
    : z_(std::make_unique<stream>()), keep_(keep_context) {
  window_bits = std::clamp(window_bits, 9, 15);
  level = std::clamp(level, 1, 9);
  mem_level = std::clamp(mem_level, 1, 9);
  // Raw deflate (negative window bits): no zlib header or trailer (RFC 7692 7.2.1).
  if (deflateInit2(&z_->z, level, Z_DEFLATED, -window_bits, mem_level, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::bad_alloc();
}

deflater::~deflater() {
  deflateEnd(&z_->z);
}

bool deflater::compress(std::string_view message, std::string& out) {
  z_stream& z = z_->z;
  // zlib counts in 32 bits: a message past 1 GiB goes in steps, the last one flushed.
  constexpr std::size_t step = std::size_t{1} << 30;
  // deflateBound plus the sync flush's empty stored block (5 bytes) and a margin; grown below
  // when a step needs more.
  out.resize(deflateBound(&z, std::min(message.size(), step)) + 16);
  std::size_t produced = 0;
  std::size_t fed = 0;
  for (;;) {
    const std::size_t chunk = std::min(message.size() - fed, step);
    const bool last = fed + chunk == message.size();
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data() + fed));
    z.avail_in = static_cast<uInt>(chunk);
    for (;;) {
      z.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      z.avail_out = static_cast<uInt>(std::min(out.size() - produced, step));
      const int rc = deflate(&z, last ? Z_SYNC_FLUSH : Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
      produced = static_cast<std::size_t>(reinterpret_cast<char*>(z.next_out) - out.data());
      if (z.avail_out != 0 && z.avail_in == 0) break;  // all taken (and flushed, when last)
      if (z.avail_out == 0) out.resize(out.size() * 2);
    }
    fed += chunk;
    if (last) break;
  }
  // 7.2.1: drop the 00 00 ff ff of the sync flush's empty stored block.
  if (produced >= 4 && std::memcmp(out.data() + produced - 4, "\x00\x00\xff\xff", 4) == 0)
    produced -= 4;
  out.resize(produced);
  // zlib emits nothing for a flush with no input right after a flush (an empty message with
  // context takeover), and an empty payload would inflate as a stray 00 00 ff ff: send the
  // empty stored block's first byte, as 7.2.3.6 does for an empty message.
  if (out.empty()) out.assign(1, '\0');
  if (!keep_) deflateReset(&z);
  return true;
}

struct inflater::stream {
  z_stream z{};
};

inflater::inflater(int window_bits) : z_(std::make_unique<stream>()) {
  // inflate accepts 8 (a 256-byte window) for raw streams; a larger window reads any smaller.
  window_bits = std::clamp(window_bits, 8, 15);
  if (inflateInit2(&z_->z, -window_bits) != Z_OK) throw std::bad_alloc();
}

inflater::~inflater() {
  inflateEnd(&z_->z);
}

void inflater::reset() {
  ended_ = false;
  inflateReset(&z_->z);
}

std::error_code inflater::inflate(std::string_view piece, bool last, std::string& out,
                                  std::uint64_t max_size) {
  static constexpr unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
  z_stream& z = z_->z;
  constexpr std::uint64_t step = std::uint64_t{1} << 30;  // zlib counts in 32 bits
  // Feeds bytes and takes every byte they give, in steps that never grow `out` past
  // max_size + 1 (the byte that proves a message too big): a bomb costs at most the limit.
  auto feed = [&](const char* in, std::size_t n) -> std::error_code {
    while (n > 0 && !ended_) {
      const auto take = static_cast<uInt>(std::min<std::uint64_t>(n, step));
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in));
      z.avail_in = take;
      for (;;) {
        const std::uint64_t used = out.size();
        if (used > max_size) return errc::message_too_big;
        const std::uint64_t want =
            std::min(step, std::max<std::uint64_t>(16 * 1024, std::uint64_t{z.avail_in} * 4));
        const std::uint64_t left = max_size - used;  // no overflow: used <= max_size
        const std::uint64_t room = left >= want ? want : left + 1;
        out.resize(static_cast<std::size_t>(used + room));
        z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
        z.avail_out = static_cast<uInt>(room);
        const int rc = ::inflate(&z, Z_SYNC_FLUSH);
        out.resize(static_cast<std::size_t>(used + room - z.avail_out));
        if (out.size() > max_size) return errc::message_too_big;
        if (rc == Z_STREAM_END) {
          // A final block (BFINAL) ends the message's deflate data: what follows it in the
          // message is not deflate data and is ignored (RFC 7692 7.2.3.4's own example has a
          // 00 after it), and so is the 00 00 ff ff. The window carries over to the next
          // message (7.2.2: the context is the LZ77 window, not the stream).
          std::vector<Bytef> window(1u << 15);  // rare: on the heap, not a small stack
          uInt window_size = 0;
          inflateGetDictionary(&z, window.data(), &window_size);
          inflateReset(&z);
          if (window_size > 0) inflateSetDictionary(&z, window.data(), window_size);
          ended_ = true;
          return {};
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) return errc::bad_compressed_data;
        if (z.avail_out != 0) break;  // this step's input taken and its output given
      }
      in += take;
      n -= take;
    }
    return {};
  };
  std::error_code ec = feed(piece.data(), piece.size());
  if (!ec && last) ec = feed(reinterpret_cast<const char*>(tail), sizeof(tail));  // 7.2.2
  if (last) ended_ = false;
  return ec;
}

}  // namespace nbio::websocket
