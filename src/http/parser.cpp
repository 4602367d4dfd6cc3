// Private. The HTTP/1.x head parsers (the body decoder: body_decoder.cpp).
//
// Written by hand (not llhttp or picohttpparser) because the parser is the core this project is
// defined by: it must be strict in exactly the ways the smuggling cases need, report an errc per
// failure, and fit the sans-I/O contract (views, no allocation, only incomplete tails copied).
//
// A head is parsed in two passes over bounded input: the first finds the empty line that ends it
// (resuming where the previous call stopped), the second validates and splits it. Both passes
// are linear and the head is at most max_header_bytes, so a call costs O(new bytes) until the
// head is complete and O(head) once.
#include "nbio/http/parser.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "http/fields.hpp"
#include "http/lexical.hpp"

namespace nbio::http {
namespace {

using detail::alnum_and;
using detail::hex_value;
using detail::is_digit;
using detail::is_ows;
using detail::is_token;
using detail::lower;
using detail::trim_ows;

// Calls fn(element) for every non-empty element of a comma-separated list (RFC 9110 5.6.1:
// empty elements are ignored), trimmed of whitespace. Stops when fn returns false.
template <class F>
bool for_each_element(std::string_view list, F&& fn) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view e = trim_ows(list.substr(0, comma));
    if (!e.empty() && !fn(e)) return false;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return true;
}

// 1*DIGIT into a 64-bit value; false on anything else or overflow.
bool parse_decimal(std::string_view s, std::uint64_t& out) noexcept {
  if (s.empty() || s.size() > 19) return false;  // 19 digits always fit in 64 bits
  std::uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = v;
  return true;
}

// --- Host (RFC 9112 3.2: a server MUST answer 400 to a Host that is not valid) -------------
//
// Host = uri-host [ ":" port ] (RFC 3986 3.2.2, 3.2.3): a registered name, an IPv4 address
// (which reg-name's grammar already accepts), or an IP literal in brackets. The value decides
// which virtual host and which absolute URL a request maps to, so bytes outside the grammar
// ("a b", "a@b", "a/b", an unbracketed "::1") are refused, not guessed at.

// reg-name = *( unreserved / pct-encoded / sub-delims ), without the pct-encoded triplets.
constexpr std::array<bool, 256> reg_name_table = alnum_and("-._~!$&'()*+,;=");

bool is_reg_name(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (reg_name_table[static_cast<unsigned char>(s[i])]) continue;
    if (s[i] != '%' || i + 2 >= s.size() || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
      return false;
    i += 2;
  }
  return true;
}

// IPv6address (RFC 3986 3.2.2, the text forms of RFC 4291 2.2): glibc's inet_pton checks
// exactly that grammar ("::" once, 1-4 hex digits a group, an IPv4 tail without leading
// zeros), so it is called rather than written again; it wants a NUL-terminated copy.
bool is_ipv6(std::string_view s) noexcept {
  char text[INET6_ADDRSTRLEN];
  if (s.size() >= sizeof(text)) return false;
  s.copy(text, s.size());
  text[s.size()] = '\0';
  in6_addr ignored{};
  return ::inet_pton(AF_INET6, text, &ignored) == 1;
}

// IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ).
bool is_ipvfuture(std::string_view s) noexcept {
  if (s.size() < 4 || (s[0] | 0x20) != 'v') return false;
  std::size_t i = 1;
  while (i < s.size() && hex_value(s[i]) >= 0)
    ++i;
  if (i == 1 || i + 1 >= s.size() || s[i] != '.') return false;
  for (char c : s.substr(i + 1))
    if (c == '%' || (!reg_name_table[static_cast<unsigned char>(c)] && c != ':')) return false;
  return true;
}

// An empty value is valid: RFC 9112 3.2 has a client send an empty Host when the target has
// no authority. A host must not be empty when a port follows (":80"), and the port is at most
// 65535 (an empty port, "a:", is RFC 3986 syntax for the scheme's default and is accepted).
bool is_valid_host(std::string_view v) noexcept {
  if (v.empty()) return true;
  std::string_view host = v, port;
  if (v.front() == '[') {
    const std::size_t close = v.find(']');
    if (close == std::string_view::npos) return false;
    const std::string_view literal = v.substr(1, close - 1);
    if (!is_ipv6(literal) && !is_ipvfuture(literal)) return false;
    host = v.substr(0, close + 1);
    const std::string_view after = v.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
    }
  } else {
    const std::size_t colon = v.find(':');
    if (colon != std::string_view::npos) {
      host = v.substr(0, colon);
      port = v.substr(colon + 1);  // a second ':' fails the digits below
    }
    if (host.empty() || !is_reg_name(host)) return false;
  }
  // port = *DIGIT (RFC 3986 3.2.3): leading zeros ("000080") are allowed; the value is bounded
  // as it is read, so no length overflows it.
  unsigned value = 0;
  for (char c : port) {
    if (!is_digit(c)) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) return false;
  }
  return true;
}

// The outcome of looking for the end of a head.
struct head_scan {
  parse_status status = parse_status::incomplete;
  std::size_t start = 0;  // after the leading empty lines (requests)
  std::size_t end = 0;    // complete: one past the final LF
  std::error_code error;
};

// Finds the empty line ending the head in `data`, resuming at `scanned` (the start of the first
// line not yet known to be complete). Checks line endings and the size limits on the way.
head_scan scan_head(std::string_view data, std::size_t& scanned, const parser_limits& limits,
                    bool skip_leading_empty_lines, errc start_line_too_long) {
  head_scan r;
  std::size_t pos = scanned;
  // Leading CRLFs before a request line are ignored (RFC 9112 2.2), within the line limit.
  std::size_t start = 0;
  if (skip_leading_empty_lines) {
    while (start + 1 < data.size() && data[start] == '\r' && data[start + 1] == '\n' &&
           start < limits.max_request_line)
      start += 2;
    if (pos < start) pos = start;
  }
  r.start = start;
  const char* const base = data.data();
  for (;;) {
    const void* nl = pos < data.size() ? std::memchr(base + pos, '\n', data.size() - pos) : nullptr;
    if (!nl) {
      // No complete line: is the partial one (or the head so far) already over a limit? An
      // unfinished start line is held to its own limit only (+1: its CR may have come without
      // the LF): until it ends, the whole-line check could still answer either way.
      if (pos == start) {
        if (data.size() - start > limits.max_request_line + 1) {
          r.status = parse_status::error;
          r.error = start_line_too_long;
        }
      } else if (data.size() - start > limits.max_header_bytes) {
        r.status = parse_status::error;
        r.error = errc::headers_too_large;
      }
      scanned = pos;
      return r;
    }
    const std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(nl) - base);
    // The limits first, in the order the partial checks above apply them, so an input gives
    // the same error however it is cut into reads.
    if (pos == start && lf + 1 - start > limits.max_request_line + 2) {
      r.status = parse_status::error;
      r.error = start_line_too_long;
      return r;
    }
    if (lf + 1 - start > limits.max_header_bytes) {
      r.status = parse_status::error;
      r.error = errc::headers_too_large;
      return r;
    }
    if (lf == pos || base[lf - 1] != '\r') {
      r.status = parse_status::error;
      r.error = errc::bare_lf;
      return r;
    }
    const bool empty_line = lf == pos + 1;
    pos = lf + 1;
    if (empty_line && pos - 2 != start) {  // the empty line after the start line and fields
      r.status = parse_status::complete;
      r.end = pos;
      return r;
    }
    if (empty_line) {  // an empty start line: malformed
      r.status = parse_status::error;
      r.error = start_line_too_long == errc::uri_too_long ? errc::bad_request_line
                                                          : errc::bad_status_line;
      return r;
    }
  }
}

// The next line of a scanned head, without its CRLF; advances `pos` past it.
std::string_view next_line(std::string_view head, std::size_t& pos) noexcept {
  const std::size_t lf = head.find('\n', pos);
  const std::string_view line = head.substr(pos, lf - 1 - pos);
  pos = lf + 1;
  return line;
}

// "HTTP/" DIGIT "." DIGIT.
std::error_code parse_version(std::string_view v, int& minor) noexcept {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' ||
      !is_digit(v[7]))
    return errc::bad_version;
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) return errc::unsupported_version;
  minor = v[7] - '0';
  return {};
}

// Validates and splits the field lines of a head (after the start line) into `storage`.
// More than max_headers fields is an error; the first storage.size() of them are stored.
}  // namespace

namespace detail {

std::error_code parse_fields(std::string_view head, std::size_t pos, std::span<header> storage,
                             std::size_t max_headers, std::size_t& count, framing& f) {
  count = 0;
  for (;;) {
    const std::string_view line = next_line(head, pos);
    if (line.empty()) return {};
    if (is_ows(line.front())) return errc::obs_fold;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return errc::bad_header_name;
    const std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (detail::is_tchar(c)) continue;
      return is_ows(c) ? errc::whitespace_before_colon : errc::bad_header_name;
    }
    const std::string_view value = trim_ows(line.substr(colon + 1));
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u != 0x7f) continue;  // VCHAR, SP, obs-text
      if (c == '\t') continue;
      return c == '\r' ? errc::bare_cr : errc::bad_header_value;
    }
    if (count == max_headers) return errc::too_many_headers;
    if (count < storage.size()) storage[count] = {name, value};
    ++count;

    // The fields that decide framing and connection handling.
    switch (name.size()) {
      case 4:
        if (iequals(name, "host")) {
          ++f.hosts;
          f.host = value;
        }
        break;
      case 6:
        if (iequals(name, "expect")) {
          // Every field counts: 100-continue is the only expectation there is.
          if (iequals(value, "100-continue"))
            f.expect_continue = true;
          else
            f.bad_expect = true;
        }
        break;
      case 7:
        if (iequals(name, "upgrade") && !value.empty()) f.has_upgrade = true;
        break;
      case 10:
        if (iequals(name, "connection"))
          for_each_element(value, [&f](std::string_view t) {
            if (iequals(t, "close")) f.conn_close = true;
            if (iequals(t, "keep-alive")) f.conn_keep_alive = true;
            if (iequals(t, "upgrade")) f.conn_upgrade = true;
            return true;
          });
        break;
      case 14:
        if (iequals(name, "content-length")) {
          std::uint64_t n = 0;
          if (!parse_decimal(value, n)) return errc::bad_content_length;
          if (f.content_lengths++ > 0 && n != f.content_length)
            return errc::conflicting_content_length;
          f.content_length = n;
        }
        break;
      case 17:
        if (iequals(name, "transfer-encoding")) {
          // Several fields form one list; chunked may appear once, and for a request last.
          bool ok = true;
          bool any = false;  // this field names a coding
          for_each_element(value, [&](std::string_view coding) {
            coding = trim_ows(coding.substr(0, coding.find(';')));
            if (!is_token(coding)) return ok = false;
            any = f.transfer_encoding = true;
            f.chunked_last = iequals(coding, "chunked");
            if (f.chunked_last && ++f.chunked > 1) return ok = false;
            if (!f.chunked_last) f.other_codings = true;
            return true;
          });
          if (!ok || !any) return errc::bad_transfer_encoding;
        }
        break;
      default:
        break;
    }
  }
}

}  // namespace detail

namespace {

using detail::framing;
using detail::parse_fields;

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  return detail::iequals(a, b);
}

std::string_view message_head::get(std::string_view name) const noexcept {
  for (const header& h : headers)
    if (iequals(h.name, name)) return h.value;
  return {};
}

bool message_head::has(std::string_view name) const noexcept {
  for (const header& h : headers)
    if (iequals(h.name, name)) return true;
  return false;
}

parse_result request_parser::parse(std::string_view data, std::span<header> storage,
                                   request_head& out) noexcept {
  parse_result r;
  const head_scan scan = scan_head(data, scanned_, limits_, true, errc::uri_too_long);
  r.status = scan.status;
  r.error = scan.error;
  if (scan.status != parse_status::complete) return r;
  auto fail = [&r](errc e) {
    r.status = parse_status::error;
    r.error = e;
    return r;
  };

  const std::string_view head = data.substr(0, scan.end);
  std::size_t pos = scan.start;
  const std::string_view line = next_line(head, pos);

  // method SP request-target SP HTTP-version: exactly one SP each.
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return fail(errc::bad_request_line);
  const std::string_view method = line.substr(0, sp1);
  if (!is_token(method)) return fail(errc::bad_method);
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return fail(errc::bad_request_line);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return fail(c == '\r' ? errc::bare_cr : errc::bad_target);
  }
  if (version.find_first_of(" \r") != std::string_view::npos)
    return fail(version.find('\r') != std::string_view::npos ? errc::bare_cr
                                                             : errc::bad_request_line);
  int minor = 1;
  if (std::error_code ec = parse_version(version, minor)) {
    r.status = parse_status::error;
    r.error = ec;
    return r;
  }

  // The target's form must fit the method (RFC 9112 3.2).
  target_form form;
  if (method == "CONNECT") {
    // authority-form: host ":" port, nothing else.
    const std::size_t colon = target.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == target.size() ||
        target.find_first_of("/?#@") != std::string_view::npos)
      return fail(errc::bad_target);
    for (char c : target.substr(colon + 1))
      if (!is_digit(c)) return fail(errc::bad_target);
    form = target_form::authority;
  } else if (target == "*") {
    if (method != "OPTIONS") return fail(errc::bad_target);
    form = target_form::asterisk;
  } else if (target.front() == '/') {
    form = target_form::origin;
  } else {
    // absolute-form: scheme "://" ..., scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    const std::size_t sep = target.find("://");
    if (sep == std::string_view::npos || sep == 0 || sep + 3 == target.size())
      return fail(errc::bad_target);
    for (std::size_t i = 0; i < sep; ++i) {
      const char c = target[i];
      const bool alpha = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
      if (!alpha && (i == 0 || (!is_digit(c) && c != '+' && c != '-' && c != '.')))
        return fail(errc::bad_target);
    }
    form = target_form::absolute;
  }

  framing f;
  std::size_t count = 0;
  const std::size_t max_fields = std::min(storage.size(), limits_.max_headers);
  if (std::error_code ec = parse_fields(head, pos, storage, max_fields, count, f)) {
    r.status = parse_status::error;
    r.error = ec;
    return r;
  }

  // Host: exactly one in HTTP/1.1, at most one in HTTP/1.0.
  if (f.hosts > 1) return fail(errc::duplicate_host);
  if (f.hosts == 0 && minor == 1) return fail(errc::missing_host);
  if (!is_valid_host(f.host)) return fail(errc::bad_host);

  // Framing (RFC 9112 6.1-6.3), strictly: no Content-Length next to Transfer-Encoding.
  body_kind body = body_kind::none;
  std::uint64_t length = 0;
  if (f.transfer_encoding) {
    if (minor == 0) return fail(errc::bad_transfer_encoding);
    if (f.content_lengths) return fail(errc::content_length_with_chunked);
    if (!f.chunked_last) return fail(errc::chunked_not_last);
    if (f.other_codings) return fail(errc::unsupported_transfer_coding);
    body = body_kind::chunked;
  } else if (f.content_lengths) {
    if (f.content_length > limits_.max_body) return fail(errc::body_too_large);
    length = f.content_length;
    body = length ? body_kind::length : body_kind::none;
  }

  if (f.bad_expect) return fail(errc::expectation_failed);
  // HTTP/1.0 clients do not wait for 100 Continue (RFC 9110 10.1.1).
  const bool expect_continue = f.expect_continue && minor == 1;

  out.version_minor = minor;
  out.headers = std::span<const header>(storage.data(), count);
  out.body = body;
  out.content_length = length;
  out.keep_alive = minor == 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
  out.upgrade = f.conn_upgrade && f.has_upgrade;
  out.method = method;
  out.target = target;
  out.form = form;
  out.host = f.host;
  out.expect_continue = expect_continue;
  r.consumed = scan.end;
  return r;
}

parse_result response_parser::parse(std::string_view data, std::span<header> storage,
                                    response_head& out, std::string_view request_method) noexcept {
  parse_result r;
  const head_scan scan = scan_head(data, scanned_, limits_, false, errc::headers_too_large);
  r.status = scan.status;
  r.error = scan.error;
  if (scan.status != parse_status::complete) return r;
  auto fail = [&r](errc e) {
    r.status = parse_status::error;
    r.error = e;
    return r;
  };

  const std::string_view head = data.substr(0, scan.end);
  std::size_t pos = 0;
  const std::string_view line = next_line(head, pos);
  // HTTP-version SP 3DIGIT SP [reason]; the SP before an empty reason may be missing.
  if (line.size() < 12 || line[8] != ' ') return fail(errc::bad_status_line);
  int minor = 1;
  if (std::error_code ec = parse_version(line.substr(0, 8), minor)) {
    r.status = parse_status::error;
    r.error = ec == errc::bad_version ? make_error_code(errc::bad_status_line) : ec;
    return r;
  }
  if (!is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) || line[9] == '0')
    return fail(errc::bad_status_line);
  const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  std::string_view reason;
  if (line.size() > 12) {
    if (line[12] != ' ') return fail(errc::bad_status_line);
    reason = line.substr(13);
    for (char c : reason) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f)
        return fail(c == '\r' ? errc::bare_cr : errc::bad_status_line);
    }
  }

  framing f;
  std::size_t count = 0;
  const std::size_t max_fields = std::min(storage.size(), limits_.max_headers);
  if (std::error_code ec = parse_fields(head, pos, storage, max_fields, count, f)) {
    r.status = parse_status::error;
    r.error = ec;
    return r;
  }

  // RFC 9112 6.3, in order.
  body_kind body = body_kind::until_close;
  std::uint64_t length = 0;
  if (request_method == "HEAD" || (status >= 100 && status < 200) || status == 204 ||
      status == 304 || (request_method == "CONNECT" && status >= 200 && status < 300)) {
    body = body_kind::none;
  } else if (f.transfer_encoding) {
    if (f.content_lengths) return fail(errc::content_length_with_chunked);
    if (minor == 0) return fail(errc::bad_transfer_encoding);
    if (f.chunked_last && f.other_codings) return fail(errc::unsupported_transfer_coding);
    body = f.chunked_last ? body_kind::chunked : body_kind::until_close;
  } else if (f.content_lengths) {
    length = f.content_length;
    body = length ? body_kind::length : body_kind::none;
  }
  if (body == body_kind::length && length > limits_.max_body) return fail(errc::body_too_large);

  out.version_minor = minor;
  out.headers = std::span<const header>(storage.data(), count);
  out.body = body;
  out.content_length = length;
  out.keep_alive = body != body_kind::until_close &&
                   (minor == 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close));
  out.upgrade = status == 101 && f.conn_upgrade && f.has_upgrade;
  out.status = status;
  out.reason = reason;
  r.consumed = scan.end;
  return r;
}

}  // namespace nbio::http
