// Private. body_decoder (nbio/http/parser.hpp): a message body by its framing, Content-Length,
// chunked (RFC 9112 7.1, trailers included) or until the connection closes; sans-I/O like the
// head parsers, the data handed out as views into the input.
#include <algorithm>
#include <cstring>

#include "http/fields.hpp"
#include "http/lexical.hpp"
#include "nbio/http/error.hpp"
#include "nbio/http/parser.hpp"

namespace nbio::http {

using detail::framing;
using detail::hex_value;
using detail::is_ows;
using detail::parse_fields;

body_decoder::body_decoder(body_kind kind, std::uint64_t content_length,
                           const parser_limits& limits) noexcept
    : max_body_(limits.max_body),
      max_chunk_line_(static_cast<std::uint32_t>(limits.max_chunk_line)),
      max_trailer_bytes_(static_cast<std::uint32_t>(limits.max_trailer_bytes)),
      max_trailers_(static_cast<std::uint32_t>(limits.max_headers)) {
  switch (kind) {
    case body_kind::none:
      state_ = state::done;
      break;
    case body_kind::length:
      state_ = content_length ? state::length : state::done;
      remaining_ = content_length;
      break;
    case body_kind::chunked:
      state_ = state::chunk_size;
      break;
    case body_kind::until_close:
      state_ = state::until_close;
      break;
  }
}

bool body_decoder::finish_at_eof() noexcept {
  if (state_ == state::until_close) state_ = state::done;
  return state_ == state::done;
}

body_result body_decoder::next(std::string_view in, std::span<header> trailer_storage) noexcept {
  body_result r;
  std::string_view data = in;
  auto finish = [&](parse_status status) {
    r.status = status;
    r.consumed = static_cast<std::size_t>(data.data() - in.data());
    return r;
  };
  // An error found after a run of data in the same call waits for the next call: the data is
  // handed out first, as it would be had the input been cut right after it.
  auto fail = [&](std::error_code e) {
    if (!r.data.empty()) return finish(parse_status::incomplete);
    r.error = e;
    return finish(parse_status::error);
  };
  // chunk-size = 1*16HEXDIG followed by ";", whitespace or the line's end. Checked on a partial
  // line too, so a bad size fails at once, with the error a whole line would give.
  auto check_size = [](std::string_view line) -> std::error_code {
    std::size_t i = 0;
    while (i < line.size() && hex_value(line[i]) >= 0)
      if (++i > 16) return errc::bad_chunk_size;
    if (i == line.size()) return {};
    const char c = line[i];
    if (i == 0 || (c != ';' && !is_ows(c) && c != '\r' && c != '\n')) return errc::bad_chunk_size;
    return {};
  };
  auto take = [&](std::uint64_t limit) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(limit, data.size()));
    r.data = data.substr(0, n);
    data.remove_prefix(n);
    body_bytes_ += n;
    return n;
  };

  // Framing is consumed as far as it goes; at most one run of data is handed out per call.
  for (;;) {
    switch (state_) {
      case state::done:
        return finish(parse_status::complete);

      case state::until_close:
        if (max_body_ - body_bytes_ < data.size()) return fail(errc::body_too_large);
        take(data.size());
        return finish(parse_status::incomplete);

      case state::length:
        remaining_ -= take(remaining_);
        if (remaining_ > 0) return finish(parse_status::incomplete);
        state_ = state::done;
        return finish(parse_status::complete);

      case state::chunk_size: {
        if (!r.data.empty()) return finish(parse_status::incomplete);
        // chunk-size [ chunk-ext ] CRLF, whole.
        const std::size_t lf = data.find('\n');
        const std::string_view seen = data.substr(0, lf);
        if (std::error_code ec = check_size(seen)) return fail(ec);
        // The limit counts the line without its CRLF (+1: a CR may wait for its LF).
        if (lf == std::string_view::npos) {
          if (data.size() > max_chunk_line_ + 1) return fail(errc::bad_chunk_extension);
          return finish(parse_status::incomplete);
        }
        if (lf > max_chunk_line_ + 1) return fail(errc::bad_chunk_extension);
        const bool cr = lf > 0 && data[lf - 1] == '\r';
        const std::string_view line = data.substr(0, cr ? lf - 1 : lf);
        std::size_t i = 0;
        std::uint64_t size = 0;
        for (; i < line.size() && hex_value(line[i]) >= 0; ++i)
          size = size << 4 | static_cast<std::uint64_t>(hex_value(line[i]));
        if (i == 0) return fail(errc::bad_chunk_size);
        // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ): accepted without
        // interpretation, but it must start with ";" and hold no control byte.
        const std::string_view ext = line.substr(i);
        const std::size_t first = ext.find_first_not_of(" \t");
        if (first != std::string_view::npos && ext[first] != ';') return fail(errc::bad_chunk_size);
        for (char c : ext) {
          const auto u = static_cast<unsigned char>(c);
          if ((u < 0x20 && c != '\t') || u == 0x7f)
            return fail(c == '\r' ? errc::bare_cr : errc::bad_chunk_extension);
        }
        if (!cr) return fail(errc::bare_lf);
        if (size > max_body_ - body_bytes_) return fail(errc::body_too_large);
        data.remove_prefix(lf + 1);
        remaining_ = size;
        state_ = size ? state::chunk_data : state::trailers;
        continue;
      }

      case state::chunk_data:
        if (data.empty() || !r.data.empty()) return finish(parse_status::incomplete);
        remaining_ -= take(remaining_);
        if (remaining_ == 0) state_ = state::chunk_crlf;
        continue;

      case state::chunk_crlf:
        if (data.size() < 2) {
          if (!data.empty() && data[0] != '\r') return fail(errc::bad_chunk_end);
          return finish(parse_status::incomplete);
        }
        if (data[0] != '\r' || data[1] != '\n') return fail(errc::bad_chunk_end);
        data.remove_prefix(2);
        state_ = state::chunk_size;
        continue;

      case state::trailers: {
        // *( field-line CRLF ) CRLF, whole; the fields are checked like header fields.
        if (data.size() < 2) {
          if (!data.empty() && data[0] != '\r') {
            if (data[0] == '\n') return fail(errc::bare_lf);
          }
          return finish(parse_status::incomplete);
        }
        if (data[0] == '\r' && data[1] == '\n') {
          data.remove_prefix(2);
          state_ = state::done;
          return finish(parse_status::complete);
        }
        // Bare LFs are looked for within the limit only, so a cut cannot change the error.
        const std::size_t end = data.find("\r\n\r\n");
        const std::size_t scan = std::min<std::size_t>(
            end == std::string_view::npos ? data.size() : end + 4, max_trailer_bytes_);
        for (std::size_t k = 0; k < scan; ++k)
          if (data[k] == '\n' && (k == 0 || data[k - 1] != '\r')) return fail(errc::bare_lf);
        if (end == std::string_view::npos) {
          if (data.size() > max_trailer_bytes_) return fail(errc::headers_too_large);
          return finish(parse_status::incomplete);
        }
        if (end + 4 > max_trailer_bytes_) return fail(errc::headers_too_large);
        framing f;
        std::size_t count = 0;
        if (std::error_code ec =
                parse_fields(data.substr(0, end + 4), 0, trailer_storage, max_trailers_, count, f))
          return fail(ec == errc::bare_cr || ec == errc::too_many_headers
                          ? ec
                          : make_error_code(errc::bad_trailer));
        r.trailers = std::span<const header>(trailer_storage.data(),
                                             std::min(count, trailer_storage.size()));
        data.remove_prefix(end + 4);
        state_ = state::done;
        return finish(parse_status::complete);
      }
    }
  }
}

}  // namespace nbio::http
