// Private. serve_mux: pattern parsing, Go's precedence and conflict rules, and matching.
//
// The pattern model and the comparison follow Go's net/http pattern.go: a path ending in '/'
// is an anonymous multi wildcard, "{$}" a segment of its own that matches the trailing slash.
// Matching is a linear scan over the routes in precedence order (see serve_mux::routes_):
// registration keeps the order, so the first match is the winner and a request costs at most
// one pass. Go walks a tree instead; a mux of a few dozen patterns (the usual size) is scanned
// in well under a microsecond, and the scan needs no per-node child tables.
#include "nbio/http/serve_mux.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "http/lexical.hpp"

namespace nbio::http {
namespace {

enum class seg_kind : std::uint8_t {
  literal,  // one segment equal to `text` once decoded
  wild,     // {text}: one segment
  multi,    // {text...} or a trailing '/' (text empty): the rest of the path, maybe empty
  end,      // {$}: the trailing slash
};

struct segment {
  seg_kind kind;
  std::string text;  // literal: decoded; wild, multi: the wildcard's name
};

// How the requests matched by pattern P1 relate to those matched by P2.
enum class relation : std::uint8_t {
  equivalent,     // the same requests
  more_general,   // P1 matches all P2 matches, and more
  more_specific,  // P2 matches all P1 matches, and more
  disjoint,       // no request matches both
  overlaps,       // some request matches both, neither is more specific
};

using detail::hex_value;
using detail::is_token;

// Whether every '%' of `s` starts a valid escape. Go's url.PathUnescape decodes a segment
// only then, and keeps it as it is otherwise; so do pattern literals and path segments here.
bool escapes_valid(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') continue;
    if (i + 2 >= s.size() || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0) return false;
    i += 2;
  }
  return true;
}

std::string path_unescape(std::string_view s) {
  if (s.find('%') == std::string_view::npos || !escapes_valid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Whether the raw path segment decodes to `literal`, decoding as it goes (no allocation).
bool segment_equals(std::string_view raw, std::string_view literal) noexcept {
  if (raw.find('%') == std::string_view::npos || !escapes_valid(raw)) return raw == literal;
  std::size_t j = 0;
  for (std::size_t i = 0; i < raw.size(); ++i, ++j) {
    char c = raw[i];
    if (c == '%') {
      c = static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2]));
      i += 2;
    }
    if (j >= literal.size() || literal[j] != c) return false;
  }
  return j == literal.size();
}

// A Go identifier, ASCII only.
bool is_wildcard_name(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

// Go's strings.TrimSpace on a pattern (ASCII: also CR, LF, VT, FF), which is wider than a
// field's OWS (lexical.hpp), so it stays here.
bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

// Whether cleaning would leave `p` as it is: rooted, no empty segment but a last one (the
// trailing slash), no "." or ".." segment.
bool is_clean(std::string_view p) noexcept {
  if (p.empty() || p.front() != '/') return false;
  for (std::size_t start = 1;;) {
    const std::size_t end = p.find('/', start);
    const std::string_view seg = p.substr(start, end - start);
    if (seg == "." || seg == "..") return false;
    if (end == std::string_view::npos) return true;
    if (seg.empty()) return false;
    start = end + 1;
  }
}

// Go's cleanPath: path.Clean of the rooted path, keeping a trailing slash.
std::string clean_path(std::string_view p) {
  std::string out;  // "/a/b" without a trailing slash; "" for the root
  for (std::size_t start = 0; start <= p.size();) {
    std::size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    const std::string_view seg = p.substr(start, end - start);
    if (seg == "..") {
      const std::size_t last = out.rfind('/');
      out.resize(last == std::string::npos ? 0 : last);
    } else if (!seg.empty() && seg != ".") {
      out += '/';
      out += seg;
    }
    start = end + 1;
  }
  if (out.empty()) return "/";
  if (p.back() == '/') out += '/';
  return out;
}

// Go's stripHostPort: the host without its port when net.SplitHostPort accepts it ("h:80",
// "[::1]:80"), the whole value otherwise ("h", "::1", "[::1]").
std::string_view strip_host_port(std::string_view h) noexcept {
  const std::size_t colon = h.rfind(':');
  if (colon == std::string_view::npos) return h;
  std::string_view host;
  std::size_t j = 0;
  std::size_t k = 0;
  if (h.front() == '[') {
    const std::size_t end = h.find(']');
    if (end == std::string_view::npos || end + 1 != colon) return h;
    host = h.substr(1, end - 1);
    j = 1;
    k = end + 1;
  } else {
    host = h.substr(0, colon);
    if (host.find(':') != std::string_view::npos) return h;
  }
  if (h.find('[', j) != std::string_view::npos) return h;
  if (h.find(']', k) != std::string_view::npos) return h;
  return host;
}

relation inverse(relation r) noexcept {
  if (r == relation::more_general) return relation::more_specific;
  if (r == relation::more_specific) return relation::more_general;
  return r;
}

// The relation of two patterns given the relations of two parts of them (Go's
// combineRelationships).
relation combine(relation r1, relation r2) noexcept {
  switch (r1) {
    case relation::equivalent:
      return r2;
    case relation::disjoint:
      return relation::disjoint;
    case relation::overlaps:
      return r2 == relation::disjoint ? relation::disjoint : relation::overlaps;
    case relation::more_general:
    case relation::more_specific:
      if (r2 == relation::equivalent) return r1;
      if (r2 == inverse(r1)) return relation::overlaps;
      return r2;
  }
  return relation::disjoint;
}

relation compare_segments(const segment& s1, const segment& s2) noexcept {
  const bool multi1 = s1.kind == seg_kind::multi;
  const bool multi2 = s2.kind == seg_kind::multi;
  if (multi1 && multi2) return relation::equivalent;
  if (multi1) return relation::more_general;
  if (multi2) return relation::more_specific;
  const bool wild1 = s1.kind == seg_kind::wild;
  const bool wild2 = s2.kind == seg_kind::wild;
  if (wild1 && wild2) return relation::equivalent;
  // A single wildcard does not match the trailing slash.
  if (wild1) return s2.kind == seg_kind::end ? relation::disjoint : relation::more_general;
  if (wild2) return s1.kind == seg_kind::end ? relation::disjoint : relation::more_specific;
  if (s1.kind != s2.kind) return relation::disjoint;  // a literal and {$}
  return s1.text == s2.text ? relation::equivalent : relation::disjoint;
}

relation compare_methods(std::string_view m1, std::string_view m2) noexcept {
  if (m1 == m2) return relation::equivalent;
  if (m1.empty()) return relation::more_general;
  if (m2.empty()) return relation::more_specific;
  if (m1 == "GET" && m2 == "HEAD") return relation::more_general;  // GET matches HEAD too
  if (m1 == "HEAD" && m2 == "GET") return relation::more_specific;
  return relation::disjoint;
}

relation compare_paths(const std::vector<segment>& p1, const std::vector<segment>& p2) noexcept {
  const bool multi1 = p1.back().kind == seg_kind::multi;
  const bool multi2 = p2.back().kind == seg_kind::multi;
  // Without a multi wildcard a pattern matches paths of its own number of segments only.
  if (p1.size() != p2.size() && !multi1 && !multi2) return relation::disjoint;
  relation rel = relation::equivalent;
  const std::size_t common = std::min(p1.size(), p2.size());
  for (std::size_t i = 0; i < common; ++i) {
    rel = combine(rel, compare_segments(p1[i], p2[i]));
    if (rel == relation::disjoint) return rel;
  }
  if (p1.size() == p2.size()) return rel;
  // The shorter one ends in a multi wildcard, more general than the rest of the longer one.
  if (p1.size() < p2.size() && multi1) return combine(rel, relation::more_general);
  if (p2.size() < p1.size() && multi2) return combine(rel, relation::more_specific);
  return relation::disjoint;
}

[[noreturn]] void bad_pattern(std::string_view pattern, std::string_view why) {
  throw std::invalid_argument("nbio::http::serve_mux: pattern \"" + std::string(pattern) +
                              "\": " + std::string(why));
}

void error_reply(response_writer& w, int status, std::string_view text) {
  // As Go's http.Error.
  w.del_header("Content-Length");
  w.set_header("Content-Type", "text/plain; charset=utf-8");
  w.set_header("X-Content-Type-Options", "nosniff");
  w.write_header(status);
  w.write(text);
  w.write("\n");
}

// As Go's http.Redirect with 301 and an absolute path: Location with non-ASCII bytes escaped
// (and, unlike Go, controls and spaces too, so the field stays valid whatever the request
// carried), and for GET a short HTML body.
void redirect(response_writer& w, const request& r, std::string_view path) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string location;
  location.reserve(path.size() + r.raw_query().size() + 1);
  const auto append = [&](std::string_view part) {
    for (const char c : part) {
      const auto u = static_cast<unsigned char>(c);
      if (u > 0x20 && u < 0x7f) {
        location += c;
      } else {
        location += '%';
        location += digits[u >> 4];
        location += digits[u & 15];
      }
    }
  };
  append(path);
  if (!r.raw_query().empty()) {
    location += '?';
    append(r.raw_query());
  }
  w.set_header("Location", location);
  if (r.method() == "GET" || r.method() == "HEAD")
    w.set_header("Content-Type", "text/html; charset=utf-8");
  w.write_header(301);
  if (r.method() != "GET") return;
  std::string body = "<a href=\"";
  for (const char c : location) {
    switch (c) {
      case '&':
        body += "&amp;";
        break;
      case '<':
        body += "&lt;";
        break;
      case '>':
        body += "&gt;";
        break;
      case '"':
        body += "&#34;";
        break;
      case '\'':
        body += "&#39;";
        break;
      default:
        body += c;
    }
  }
  body += "\">Moved Permanently</a>.\n\n";
  w.write(body);
}

}  // namespace

struct serve_mux::route {
  std::string str;  // as registered; request::pattern() views it
  std::string method;
  std::string host;
  std::vector<segment> segments;        // never empty
  std::vector<std::string_view> names;  // of the named wildcards, in order (views of segments)
  handler h;

  // Whether the pattern matches `path` (escaped, starting with '/'), or `path` + "/" when
  // `slash`. Records the named wildcards' raw values in `values` unless it is null.
  bool match(std::string_view path, bool slash, std::string_view* values) const noexcept {
    const std::size_t len = path.size() + (slash ? 1 : 0);
    std::size_t pos = 0;  // at a '/' of the path (the virtual one when pos == path.size())
    std::size_t n = 0;    // values recorded
    for (const segment& s : segments) {
      if (pos >= len) return false;
      const bool only_slash = pos + 1 == len;  // what is left is the trailing slash
      switch (s.kind) {
        case seg_kind::multi:
          if (values && !s.text.empty()) values[n++] = path.substr(pos + 1);
          return true;
        case seg_kind::end:
          if (!only_slash) return false;
          pos = len;
          break;
        case seg_kind::literal:
        case seg_kind::wild: {
          if (only_slash) return false;
          std::size_t stop = path.find('/', pos + 1);
          if (stop == std::string_view::npos) stop = path.size();
          const std::string_view raw = path.substr(pos + 1, stop - pos - 1);
          if (s.kind == seg_kind::literal) {
            if (!segment_equals(raw, s.text)) return false;
          } else if (values) {
            values[n++] = raw;
          }
          pos = stop;
          break;
        }
      }
    }
    return pos == len;
  }

  bool matches_method(std::string_view m) const noexcept {
    return method.empty() || method == m || (m == "HEAD" && method == "GET");
  }
  bool matches_host(std::string_view h) const noexcept { return host.empty() || host == h; }

  // Whether a match of `path` (+ "/" when `slash`) matched it whole: a multi wildcard at the
  // end matched nothing (Go's exactMatch).
  bool exact(std::string_view path, bool slash) const noexcept {
    if (segments.back().kind != seg_kind::multi) return true;
    if (!slash && (path.empty() || path.back() != '/')) return false;
    const auto slashes =
        static_cast<std::size_t>(std::count(path.begin(), path.end(), '/')) + (slash ? 1 : 0);
    return segments.size() == slashes;
  }
};

serve_mux::serve_mux() noexcept = default;
serve_mux::~serve_mux() = default;
serve_mux::serve_mux(serve_mux&&) noexcept = default;
serve_mux& serve_mux::operator=(serve_mux&&) noexcept = default;

// Go's parsePattern.
std::unique_ptr<serve_mux::route> serve_mux::parse(std::string_view s) {
  if (s.empty()) bad_pattern(s, "empty pattern");
  auto rt = std::make_unique<route>();
  rt->str = std::string(s);
  std::string_view method;
  std::string_view rest = s;
  if (const std::size_t sp = s.find_first_of(" \t"); sp != std::string_view::npos) {
    method = s.substr(0, sp);
    rest = trim(s.substr(sp + 1));
  }
  if (!method.empty() && !is_token(method))
    bad_pattern(s, "invalid method \"" + std::string(method) + "\"");
  rt->method = std::string(method);

  const std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) bad_pattern(s, "host/path missing /");
  const std::string_view host = rest.substr(0, slash);
  if (host.find('{') != std::string_view::npos)
    bad_pattern(s, "host contains '{' (missing initial '/'?)");
  rt->host = std::string(host);
  std::string_view path = rest.substr(slash);
  // Paths are cleaned before matching (except for CONNECT), so this could never match.
  if (!method.empty() && method != "CONNECT" && !is_clean(path))
    bad_pattern(s, "non-CONNECT pattern with unclean path can never match");

  std::vector<std::string_view> seen;  // wildcard names, views of `s`
  while (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    if (path.empty()) {     // trailing slash
      rt->segments.push_back({seg_kind::multi, {}});
      break;
    }
    const std::size_t end = std::min(path.find('/'), path.size());
    const std::string_view seg = path.substr(0, end);
    path.remove_prefix(end);
    const std::size_t brace = seg.find('{');
    if (brace == std::string_view::npos) {
      rt->segments.push_back({seg_kind::literal, path_unescape(seg)});
      continue;
    }
    if (brace != 0) bad_pattern(s, "bad wildcard segment (must start with '{')");
    if (seg.back() != '}') bad_pattern(s, "bad wildcard segment (must end with '}')");
    std::string_view name = seg.substr(1, seg.size() - 2);
    if (name == "$") {
      if (!path.empty()) bad_pattern(s, "{$} not at end");
      rt->segments.push_back({seg_kind::end, {}});
      break;
    }
    const bool multi = name.ends_with("...");
    if (multi) name.remove_suffix(3);
    if (multi && !path.empty()) bad_pattern(s, "{...} wildcard not at end");
    if (name.empty()) bad_pattern(s, "empty wildcard");
    if (!is_wildcard_name(name)) bad_pattern(s, "bad wildcard name \"" + std::string(name) + "\"");
    if (std::find(seen.begin(), seen.end(), name) != seen.end())
      bad_pattern(s, "duplicate wildcard name \"" + std::string(name) + "\"");
    if (seen.size() == request::max_path_values)
      bad_pattern(s, "more than " + std::to_string(request::max_path_values) + " wildcards");
    seen.push_back(name);
    rt->segments.push_back({multi ? seg_kind::multi : seg_kind::wild, std::string(name)});
  }
  // Views of the segments' names, now that the vector no longer moves.
  for (const segment& seg : rt->segments)
    if (seg.kind != seg_kind::literal && !seg.text.empty()) rt->names.push_back(seg.text);
  return rt;
}

void serve_mux::handle(std::string_view pattern, handler h) {
  if (!h) bad_pattern(pattern, "empty handler");
  std::unique_ptr<route> rt = parse(pattern);
  const std::uint32_t takeover = h.takeover_bytes();
  rt->h = std::move(h);

  // The new route goes before every route it is more specific than, and host routes before
  // all the others. Every route more specific than it is then already in front: such a route
  // is more specific than those the new one is more specific than (the relation is the
  // subset relation of the sets of requests matched, so it is transitive), and the order
  // kept so far put it before them.
  std::size_t pos = routes_.size();
  if (!rt->host.empty()) {
    const auto first_hostless =
        std::find_if(routes_.begin(), routes_.end(), [](const auto& q) { return q->host.empty(); });
    pos = static_cast<std::size_t>(first_hostless - routes_.begin());
  }
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const route& q = *routes_[i];
    // Different hosts: one pattern has a host and wins, or the hosts differ and no request
    // matches both.
    if (q.host != rt->host) continue;
    const relation mrel = compare_methods(rt->method, q.method);
    if (mrel == relation::disjoint) continue;
    const relation prel = compare_paths(rt->segments, q.segments);
    const relation rel = combine(mrel, prel);
    if (rel == relation::more_specific) {
      pos = std::min(pos, i);
      continue;
    }
    if (rel != relation::equivalent && rel != relation::overlaps) continue;
    std::string why;
    if (rel == relation::equivalent)
      why = "it matches the same requests";
    else if (prel == relation::overlaps)
      why = "both match some paths, but neither is more specific than the other";
    else if (mrel == relation::more_general)
      why = "it matches more methods, but has a more specific path";
    else
      why = "it matches fewer methods, but has a more general path";
    throw std::logic_error("nbio::http::serve_mux: pattern \"" + rt->str +
                           "\" conflicts with pattern \"" + q.str + "\": " + why);
  }
  routes_.insert(routes_.begin() + static_cast<std::ptrdiff_t>(pos), std::move(rt));
  takeover_bytes_ = std::max(takeover_bytes_, takeover);
}

const serve_mux::route* serve_mux::find(std::string_view host, std::string_view method,
                                        std::string_view path, bool slash,
                                        std::string_view* values) const noexcept {
  for (const auto& rt : routes_)
    if (rt->matches_host(host) && rt->matches_method(method) && rt->match(path, slash, values))
      return rt.get();
  return nullptr;
}

void serve_mux::serve(response_writer& w, request& r) const {
  r.clear_path_values();
  r.set_pattern({});
  if (r.form() == target_form::asterisk) {
    // As Go's ServeMux: "OPTIONS *" is the server's business, not a route's.
    if (r.version_minor() >= 1) w.close_after();
    w.write_header(400);
    return;
  }
  const std::string_view method = r.method();
  const bool connect = method == "CONNECT";
  std::string_view host = r.host();
  std::string_view path = r.path();
  std::string cleaned;
  if (!connect) {  // CONNECT paths are matched as they are, with the port in the host
    host = strip_host_port(host);
    if (!is_clean(path)) {
      cleaned = clean_path(path);
      path = cleaned;
    }
  }

  std::array<std::string_view, request::max_path_values> values;
  const route* found = nullptr;
  if (!path.empty() && path.front() == '/') {
    found = find(host, method, path, false, values.data());
    // "/dir" when "/dir/" would match exactly: redirect there.
    if (!(found && found->exact(path, false)) && path.back() != '/') {
      const route* slashed = find(host, method, path, true, nullptr);
      if (slashed && slashed->exact(path, true)) {
        std::string to = connect ? clean_path(path) : std::string(path);
        if (to.back() != '/') to += '/';
        redirect(w, r, to);
        return;
      }
    }
  }
  if (!cleaned.empty()) {
    redirect(w, r, cleaned);
    return;
  }
  if (found) {
    r.set_pattern(found->str);
    for (std::size_t i = 0; i < found->names.size(); ++i)
      r.set_path_value(found->names[i], values[i]);
    found->h(w, r);
    return;
  }
  not_found(w, host, path);
}

// No pattern matched: 405 when some pattern for another method matches the path (or the
// path with a trailing slash, as the redirect above would), 404 otherwise.
void serve_mux::not_found(response_writer& w, std::string_view host, std::string_view path) const {
  std::vector<std::string_view> allowed;
  if (!path.empty() && path.front() == '/') {
    for (const auto& rt : routes_) {
      if (rt->method.empty() || !rt->matches_host(host)) continue;
      if (rt->match(path, false, nullptr) || (path.back() != '/' && rt->match(path, true, nullptr)))
        allowed.push_back(rt->method);
    }
  }
  if (allowed.empty()) {
    error_reply(w, 404, "404 page not found");
    return;
  }
  if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end()) allowed.push_back("HEAD");
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
  std::string allow;
  for (const std::string_view m : allowed) {
    if (!allow.empty()) allow += ", ";
    allow += m;
  }
  w.set_header("Allow", allow);
  error_reply(w, 405, "Method Not Allowed");
}

handler serve_mux::as_handler() const {
  return handler([this](response_writer& w, request& r) { serve(w, r); }, takeover_bytes_);
}

}  // namespace nbio::http
