// Private. request: the target split into path and query, query and path-value decoding.
#include "nbio/http/request.hpp"

#include <stdexcept>

#include "http/lexical.hpp"
#include "nbio/engine/conn.hpp"

namespace nbio::http {
namespace {

using detail::hex_value;

// Calls fn(raw_name, raw_value) for each "name=value" of a query string ('&'-separated; a
// parameter without '=' has an empty value). Stops when fn returns true.
template <class F>
bool find_param(std::string_view query, F&& fn) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (!pair.empty() && fn(name, value)) return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

// Whether the raw (escaped) query name decodes to `name`, without allocating when it has no
// escapes (the common case).
bool name_matches(std::string_view raw, std::string_view name) {
  if (raw.find_first_of("%+") == std::string_view::npos) return raw == name;
  return percent_decode(raw, true) == name;
}

}  // namespace

std::string percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

request::request(const request_head& head, std::string_view body, address remote) noexcept
    : head_(&head), body_(body), remote_(std::move(remote)), remote_known_(true) {
  split_target();
}

void request::on_body(body_reader reader) {
  if (!reader_) throw std::logic_error("nbio::http::request::on_body: the body is not streamed");
  *reader_ = std::move(reader);
}

request::request(const request_head& head, std::string_view body, nbio::conn* c) noexcept
    : head_(&head), body_(body), conn_(c) {
  split_target();
}

void request::split_target() noexcept {
  std::string_view t = head_->target;
  if (head_->form == target_form::authority || head_->form == target_form::asterisk) return;
  if (head_->form == target_form::absolute) {
    // scheme "://" authority [ path-abempty ] [ "?" query ]
    t.remove_prefix(t.find("://") + 3);
    const std::size_t slash = t.find_first_of("/?");
    t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
    if (t.front() == '?') {
      query_ = t.substr(1);
      path_ = "/";
      return;
    }
  }
  const std::size_t q = t.find('?');
  path_ = t.substr(0, q);
  if (q != std::string_view::npos) query_ = t.substr(q + 1);
}

std::string_view request::host() const noexcept {
  if (head_->form != target_form::absolute) return head_->host;
  // RFC 9112 3.2.2: with an absolute-form target its authority is the host, whatever Host says.
  std::string_view t = head_->target.substr(head_->target.find("://") + 3);
  t = t.substr(0, t.find_first_of("/?#"));
  return t.substr(t.find('@') == std::string_view::npos ? 0 : t.find('@') + 1);
}

std::string request::query(std::string_view name) const {
  std::string value;
  find_param(query_, [&](std::string_view n, std::string_view v) {
    if (!name_matches(n, name)) return false;
    value = percent_decode(v, true);
    return true;
  });
  return value;
}

bool request::has_query(std::string_view name) const noexcept {
  try {
    return find_param(query_,
                      [&](std::string_view n, std::string_view) { return name_matches(n, name); });
  } catch (...) {
    return false;  // percent_decode could not allocate
  }
}

const address& request::remote_address() const noexcept {
  if (!remote_known_ && conn_) {
    remote_ = conn_->remote_address();
    remote_known_ = true;
  }
  return remote_;
}

std::string request::path_value(std::string_view name) const {
  for (std::size_t i = 0; i < path_value_count_; ++i)
    if (path_values_[i].first == name) return percent_decode(path_values_[i].second);
  return {};
}

bool request::set_path_value(std::string_view name, std::string_view raw) noexcept {
  for (std::size_t i = 0; i < path_value_count_; ++i)
    if (path_values_[i].first == name) {
      path_values_[i].second = raw;
      return true;
    }
  if (path_value_count_ == max_path_values) return false;
  path_values_[path_value_count_++] = {name, raw};
  return true;
}

}  // namespace nbio::http
