#include "http_mode.hpp"

#include <algorithm>

namespace nbio_load {

namespace {

constexpr std::uint64_t phase_head = 0, phase_body = 1;
constexpr unsigned line_no_match = 31;  // the line is not one we look into
constexpr unsigned line_in_value = 16;  // after "content-length:": reading digits
constexpr std::string_view length_name = "content-length:";  // 15 bytes
constexpr std::string_view status_prefix = "HTTP/1.";        // then a digit, SP, the status
constexpr std::uint64_t max_value = (std::uint64_t{1} << 43) - 1;

// The fields of the packed state (layout in the header).
struct fields {
  std::uint64_t phase, crlf, line_pos, status_line, batch, has_length, value;

  static fields unpack(std::uint64_t s) {
    return {s & 3,         (s >> 2) & 3, (s >> 4) & 31, (s >> 9) & 1, (s >> 10) & 1023,
            (s >> 20) & 1, s >> 21};
  }
  std::uint64_t pack() const {
    return phase | crlf << 2 | line_pos << 4 | status_line << 9 | batch << 10 | has_length << 20 |
           value << 21;
  }
  // The start of a response: in its status line, at position 0.
  void start_response() {
    phase = phase_head;
    crlf = 0;
    line_pos = 0;
    status_line = 1;
    has_length = 0;
    value = 0;
  }
};

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

http_mode::http_mode(const std::string& host, const std::string& path, unsigned pipeline,
                     bool connection_close)
    : pipeline_(std::clamp(pipeline, 1u, 1023u)), connection_close_(connection_close) {
  const std::string one = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" +
                          (connection_close ? "Connection: close\r\n" : "") + "\r\n";
  for (unsigned i = 0; i < pipeline_; ++i)
    requests_ += one;
}

reply_scan http_mode::scan(std::uint64_t& state, std::string_view bytes) const noexcept {
  reply_scan r;
  fields f = fields::unpack(state);
  if (state == 0) f.start_response();  // a fresh connection
  auto fail = [&] {
    r.error = true;
    return r;
  };
  // A response just ended: count it, and the batch when it is whole.
  auto complete = [&] {
    if (++f.batch == pipeline_) {
      f.batch = 0;
      ++r.replies;
    }
    f.start_response();
  };

  std::size_t i = 0;
  while (i < bytes.size()) {
    if (f.phase == phase_body) {
      const std::uint64_t n = std::min<std::uint64_t>(f.value, bytes.size() - i);
      f.value -= n;
      i += static_cast<std::size_t>(n);
      if (f.value == 0) complete();
      continue;
    }
    const char c = bytes[i++];
    // The status line: "HTTP/1.x 2..".
    if (f.status_line && f.line_pos != line_no_match) {
      const unsigned p = static_cast<unsigned>(f.line_pos);
      if (p < status_prefix.size()) {
        if (c != status_prefix[p]) return fail();
      } else if (p == 7) {
        if (c < '0' || c > '9') return fail();
      } else if (p == 8) {
        if (c != ' ') return fail();
      } else if (p == 9) {
        if (c != '2') return fail();  // not a 2xx: counted as an error
      }
      f.line_pos = p >= 9 ? line_no_match : p + 1;
    } else if (!f.status_line && f.line_pos != line_no_match) {
      // A field line: is it Content-Length, and what is its value?
      if (f.line_pos < length_name.size()) {
        f.line_pos = lower(c) == length_name[f.line_pos]
                         ? (f.line_pos + 1 == length_name.size() ? line_in_value : f.line_pos + 1)
                         : line_no_match;
        if (f.line_pos == line_in_value) {
          f.has_length = 1;
          f.value = 0;
        }
      } else if (c >= '0' && c <= '9') {
        f.value = f.value * 10 + static_cast<std::uint64_t>(c - '0');
        if (f.value > max_value) return fail();
      } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
        return fail();
      }
    }
    // Line ends and the end of the head.
    if (c == '\r') {
      f.crlf = f.crlf == 2 ? 3 : 1;
    } else if (c == '\n') {
      if (f.crlf == 3) {
        if (!f.has_length) return fail();  // chunked or close-delimited: not measured here
        f.phase = phase_body;
        f.crlf = 0;
        if (f.value == 0) complete();
        continue;
      }
      if (f.crlf != 1) return fail();  // a bare LF
      f.crlf = 2;
      f.status_line = 0;
      f.line_pos = 0;
    } else {
      f.crlf = 0;
    }
  }
  state = f.pack();  // never 0 again: start_response() sets the status-line bit
  return r;
}

}  // namespace nbio_load
