// Private. The HTTP client's API (send, fetch), its error category, URLs, request checks and
// framing, and redirects. The pools and the connection handler are in client_conn.cpp.
#include "nbio/http/client.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "http/client_impl.hpp"
#include "http/lexical.hpp"

namespace nbio::http {

namespace {

class client_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "nbio.http.client"; }
  std::string message(int ev) const override {
    switch (static_cast<client_errc>(ev)) {
      case client_errc::bad_url:
        return "malformed URL (want http[s]://host[:port][/path][?query])";
      case client_errc::unsupported_scheme:
        return "unsupported URL scheme (only http:// and https://)";
      case client_errc::bad_method:
        return "request method is not a token";
      case client_errc::bad_header:
        return "request header name is not a token, or its value has CR, LF or NUL";
      case client_errc::too_many_redirects:
        return "too many redirects";
      case client_errc::bad_redirect:
        return "redirect without a usable http:// or https:// Location";
      case client_errc::closed_before_response:
        return "connection closed before the response";
      case client_errc::truncated_response:
        return "connection closed in the middle of the response";
      case client_errc::request_timeout:
        return "request timed out";
    }
    return "unknown nbio.http.client error";
  }
  std::error_condition default_error_condition(int ev) const noexcept override {
    if (static_cast<client_errc>(ev) == client_errc::request_timeout) return std::errc::timed_out;
    return {ev, *this};
  }
};

using detail::is_token;

// Field values: no control byte but HTAB (CR, LF and NUL would split the request).
bool is_field_value(std::string_view s) noexcept {
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
}

// Host characters: RFC 3986 reg-name (unreserved, sub-delims, pct-encoded) or an IPv6 literal.
bool is_host_char(char c) noexcept {
  return detail::is_tchar(c) || std::string_view("()[]:;=,").find(c) != std::string_view::npos;
}

// RFC 3986 5.2.4, on a path without query.
std::string remove_dot_segments(std::string_view in) {
  std::vector<std::string_view> segs;
  std::size_t pos = 0;
  const bool trailing = in.ends_with("/.") || in.ends_with("/..") || in.ends_with("/");
  while (pos <= in.size()) {
    std::size_t slash = in.find('/', pos);
    if (slash == std::string_view::npos) slash = in.size();
    std::string_view seg = in.substr(pos, slash - pos);
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segs.push_back(seg);
    }
    pos = slash + 1;
  }
  std::string out;
  for (auto s : segs) {
    out += '/';
    out += s;
  }
  if (out.empty() || trailing) out += '/';
  return out;
}

}  // namespace

const std::error_category& client_category() noexcept {
  static const client_category_impl instance;
  return instance;
}

std::string_view client_response::header(std::string_view name) const noexcept {
  for (const auto& [n, v] : headers)
    if (iequals(n, name)) return v;
  return {};
}

namespace detail {

std::error_code parse_url(std::string_view url, url_parts& out) {
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return client_errc::bad_url;
  }
  const std::size_t sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) return client_errc::bad_url;
  const std::string_view scheme = url.substr(0, sep);
  const bool tls = iequals(scheme, "https");
  if (!tls && !iequals(scheme, "http")) {
    for (char c : scheme)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
        return client_errc::bad_url;
    return client_errc::unsupported_scheme;
  }
  std::string_view rest = url.substr(sep + 3);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  const std::size_t end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  if (authority.empty() || authority.find('@') != std::string_view::npos)
    return client_errc::bad_url;
  if (!std::all_of(authority.begin(), authority.end(), is_host_char)) return client_errc::bad_url;

  std::string_view host = authority;
  std::string_view port_text;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos || close < 2) return client_errc::bad_url;
    host = authority.substr(0, close + 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return client_errc::bad_url;
      port_text = after.substr(1);
    }
    if (host.substr(1).find_first_of("[]") != host.size() - 2) return client_errc::bad_url;
  } else {
    const std::size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port_text = authority.substr(colon + 1);
    }
    if (host.empty() || host.find_first_of("[]:") != std::string_view::npos)
      return client_errc::bad_url;
  }
  unsigned port = tls ? 443 : 80;
  if (!port_text.empty()) {
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 || port > 65535)
      return client_errc::bad_url;
  }
  out.dial.assign(host);
  out.dial += ':';
  out.dial += std::to_string(port);
  out.key = tls ? "https://" : "http://";
  out.key += out.dial;
  out.tls = tls;
  out.authority.assign(authority);
  if (target.empty() || target.front() == '?') {
    out.target = "/";
    out.target += target;
  } else {
    out.target.assign(target);
  }
  return {};
}

std::string resolve_reference(std::string_view base, std::string_view ref) {
  // An absolute reference: a scheme before any '/', '?' or '#'.
  const std::size_t colon = ref.find(':');
  if (colon != std::string_view::npos && colon < ref.find_first_of("/?#") && colon > 0) {
    const std::string_view scheme = ref.substr(0, colon);
    if (std::all_of(scheme.begin(), scheme.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
        }))
      return std::string(ref);
  }
  const std::size_t sep = base.find("://");
  const std::string_view scheme = base.substr(0, sep);  // the base parsed: it has "://"
  if (ref.starts_with("//")) return std::string(scheme) + ":" + std::string(ref);
  const std::string_view after = base.substr(sep + 3);
  const std::size_t path_at = after.find_first_of("/?#");
  const std::string_view origin = base.substr(0, sep + 3 + std::min(path_at, after.size()));
  std::string_view path = path_at == std::string_view::npos ? "" : after.substr(path_at);
  path = path.substr(0, path.find_first_of("?#"));
  if (path.empty()) path = "/";
  std::string out(origin);
  if (ref.empty() || ref.front() == '#') return out + std::string(path);
  if (ref.front() == '?') return out + std::string(path) + std::string(ref);
  std::string_view ref_path = ref.substr(0, ref.find_first_of("?#"));
  const std::string_view ref_rest = ref.substr(ref_path.size());
  std::string merged;
  if (ref.front() == '/') {
    merged.assign(ref_path);
  } else {
    merged.assign(path.substr(0, path.rfind('/') + 1));
    merged += ref_path;
  }
  return out + remove_dot_segments(merged) + std::string(ref_rest);
}

std::error_code validate_request(const client_request& req) {
  if (!is_token(req.method)) return client_errc::bad_method;
  for (const auto& [name, value] : req.headers)
    if (!is_token(name) || !is_field_value(value)) return client_errc::bad_header;
  return {};
}

bool is_idempotent(std::string_view m) noexcept {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

void serialize_head(const client_request& req, const url_parts& url, const client_options& cfg,
                    std::string& out) {
  std::string_view host = url.authority;
  std::string_view agent = cfg.user_agent;
  for (const auto& [name, value] : req.headers) {
    if (iequals(name, "Host")) host = value;
    if (iequals(name, "User-Agent")) agent = value;
  }
  out.clear();
  out += req.method;
  out += ' ';
  out += url.target;
  out += " HTTP/1.1\r\nHost: ";
  out += host;
  out += "\r\n";
  if (!agent.empty()) {
    out += "User-Agent: ";
    out += agent;
    out += "\r\n";
  }
  for (const auto& [name, value] : req.headers) {
    if (iequals(name, "Host") || iequals(name, "User-Agent") || iequals(name, "Content-Length") ||
        iequals(name, "Transfer-Encoding"))
      continue;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (req.body_source) {
    out += "Transfer-Encoding: chunked\r\n";
  } else if (!req.body.empty() || req.method == "POST" || req.method == "PUT" ||
             req.method == "PATCH") {
    out += "Content-Length: ";
    out += std::to_string(req.body.size());
    out += "\r\n";
  }
  out += "\r\n";
  if (!req.body_source && req.body.size() <= inline_body_max) out += req.body;
}

exchange::~exchange() {
  if (!completed && done) done(nbio::errc::shutdown, std::move(resp));
}

void exchange::reset_attempt() {
  out.clear();
  body_sent = 0;
  body_started = false;
  sent_all = false;
  parser = response_parser(limits());
  body = {};
  pending.clear();
  got_bytes = false;
  head_done = false;
  keep_alive = false;
  until_close = false;
  follow = false;
  resp = {};
}

const parser_limits& exchange::limits() const noexcept {
  return req.on_body ? owner->stream_limits : owner->cfg.limits;
}

// Loop thread. A redirect response has ended (its connection is released): send the request
// again to the resolved Location, or end it.
void follow_redirect(exchange* x) {
  const int status = x->resp.status;
  if (x->redirects >= x->owner->cfg.max_redirects)
    return complete(x, client_errc::too_many_redirects);
  std::string next = resolve_reference(x->req.url, x->resp.header("Location"));
  url_parts parts;
  if (auto ec = parse_url(next, parts))
    return complete(x, ec == client_errc::unsupported_scheme ? ec : client_errc::bad_redirect);
  ++x->redirects;
  auto& headers = x->req.headers;
  if ((status == 301 || status == 302 || status == 303) && x->req.method != "HEAD") {
    x->req.method = "GET";
    x->req.body.clear();
    x->req.body_source = nullptr;
    std::erase_if(headers, [](const auto& h) { return iequals(h.first, "Content-Type"); });
  }
  // Credentials stay with their origin: a redirect to another scheme, host or port (https to
  // http included) drops them.
  if (!iequals(parts.key, x->url.key) || !iequals(parts.authority, x->url.authority)) {
    std::erase_if(headers, [](const auto& h) {
      return iequals(h.first, "Authorization") || iequals(h.first, "Host");
    });
  }
  x->req.url = std::move(next);
  x->url = std::move(parts);
  x->reset_attempt();
  x->pool = nullptr;
  client::shared& s = *x->owner;
  if (s.cfg.max_conns_per_host > 0) {
    const std::size_t home = s.home_loop(x->url.key);
    if (home != x->loop_index) {
      // The new host lives on another loop: the request moves there (its timer stays here
      // and is cancelled; the time left goes with it).
      if (x->timer_armed) {
        s.eng.loop_at(x->loop_index).cancel_timer(x->timer);
        x->timer_armed = false;
      }
      x->loop_index = home;
      s.eng.loop_at(home).post(
          [keep = s.shared_from_this(), t = owned_exchange(x)] { start_exchange(t.release()); });
      return;
    }
  }
  start_exchange(x);
}

}  // namespace detail

client::shared::shared(nbio::engine& e, client_options c)
    : eng(e), cfg(std::move(c)), stream_limits(cfg.limits) {
  stream_limits.max_body = ~std::uint64_t{0};
  for (std::size_t i = 0; i < eng.loop_count(); ++i) {
    loops.push_back(std::make_unique<detail::loop_state>());
    loops.back()->index = i;
  }
}

std::size_t client::shared::home_loop(std::string_view key) const noexcept {
  return detail::string_hash{}(key) % loops.size();
}

client::client(nbio::engine& eng, client_options config)
    : eng_(eng), shared_(std::make_shared<shared>(eng, std::move(config))) {
  shared_->make_dialer();
}

client::~client() {
  // Idle connections close now rather than at their idle timeout (the pools themselves live
  // until the engine goes: its dialers refer to them).
  if (!eng_.running()) return;
  for (std::size_t i = 0; i < shared_->loops.size(); ++i)
    eng_.loop_at(i).post([s = shared_, i] { detail::close_idle(*s->loops[i]); });
}

const client_options& client::options() const noexcept {
  return shared_->cfg;
}

void client::send(client_request req, done_handler done) {
  auto x = std::make_unique<detail::exchange>();
  x->owner = shared_.get();
  x->timeout = req.timeout.value_or(shared_->cfg.request_timeout);
  x->req = std::move(req);
  x->done = std::move(done);
  const std::size_t n = shared_->loops.size();
  std::size_t self = n;  // the calling loop, if any
  for (std::size_t i = 0; i < n && self == n; ++i)
    if (eng_.loop_at(i).in_loop_thread()) self = i;
  std::error_code ec = detail::parse_url(x->req.url, x->url);
  if (!ec) ec = detail::validate_request(x->req);
  // A task posted to a stopped engine would wait for its destruction to end: refuse at once.
  // (running() takes the engine's setup mutex, uncontended once the engine runs; a loop
  // thread's own engine is running.)
  if (!ec && self == n && !eng_.running()) ec = nbio::errc::shutdown;
  if (ec) return detail::complete(x.release(), ec);
  x->reset_attempt();
  for (const auto& [name, value] : x->req.headers)
    if (iequals(name, "Connection") && iequals(value, "close")) x->close_requested = true;

  // The loop: this one when called on one of the engine's loops; else (and always with a
  // per-host cap) the host's home loop, so that requests from outside the loops find the
  // connections the previous ones left in that loop's pool.
  std::size_t target = self;
  if (self == n || shared_->cfg.max_conns_per_host > 0) target = shared_->home_loop(x->url.key);
  x->loop_index = target;
  if (target == self) return detail::start_exchange(x.release());
  eng_.loop_at(target).post([keep = shared_, t = detail::owned_exchange(x.release())] {
    detail::start_exchange(t.release());
  });
}

client_response client::fetch(client_request req, std::error_code& ec) {
  for (std::size_t i = 0; i < eng_.loop_count(); ++i)
    if (eng_.loop_at(i).in_loop_thread())
      throw std::logic_error("nbio::http::client::fetch on a loop thread would wait for itself");
  struct waiter {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::error_code ec;
    client_response resp;
  } w;
  send(std::move(req), [&w](std::error_code e, client_response&& r) {
    std::lock_guard lock(w.m);
    w.ec = e;
    w.resp = std::move(r);
    w.done = true;
    w.cv.notify_one();  // under the lock: `w` dies as soon as fetch() sees done
  });
  std::unique_lock lock(w.m);
  w.cv.wait(lock, [&w] { return w.done; });
  ec = w.ec;
  return std::move(w.resp);
}

}  // namespace nbio::http
