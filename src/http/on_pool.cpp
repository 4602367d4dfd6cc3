// Private. on_pool: requests copied off the read buffer, answered from a thread_pool.
#include "nbio/http/on_pool.hpp"

#include <memory>
#include <optional>
#include <string>

namespace nbio::http {

namespace {

// A request that owns its bytes: the head written out again from the original's parts and
// parsed over, the body, the pattern and path values, the remote address.
class owned_request {
 public:
  explicit owned_request(const request& r) : body_(r.body()), pattern_(r.pattern()) {
    raw_.append(r.method()).append(" ").append(r.target()).append(" HTTP/1.");
    raw_ += static_cast<char>('0' + r.version_minor());
    raw_ += "\r\n";
    for (const header& h : r.headers())
      raw_.append(h.name).append(": ").append(h.value).append("\r\n");
    raw_ += "\r\n";
    // It parsed before, so it parses again; the limits only need to let it.
    parser_limits limits;
    limits.max_request_line = limits.max_header_bytes = raw_.size() + 2;
    limits.max_headers = r.headers().size() + 1;
    limits.max_body = ~std::uint64_t{0};
    fields_.resize(limits.max_headers);
    request_parser parser(limits);
    parser.parse(raw_, fields_, head_);
    for (const auto& [name, raw] : r.raw_path_values())
      values_.emplace_back(std::string(name), std::string(raw));
    req_.emplace(head_, body_, r.remote_address());
    req_->set_pattern(pattern_);
    for (const auto& [name, raw] : values_)
      req_->set_path_value(name, raw);
  }
  owned_request(const owned_request&) = delete;
  owned_request& operator=(const owned_request&) = delete;

  request& get() { return *req_; }

 private:
  std::string raw_;
  std::string body_;
  std::string pattern_;
  std::vector<header> fields_;
  request_head head_;
  std::vector<std::pair<std::string, std::string>> values_;
  std::optional<request> req_;
};

}  // namespace

handler on_pool(nbio::thread_pool& pool, handler h) {
  auto shared = std::make_shared<handler>(std::move(h));
  return [&pool, shared](response_writer& w, request& r) {
    auto copy = std::make_shared<owned_request>(r);
    auto response = std::make_shared<deferred_response>(w.defer());
    pool.post([shared, copy, response] {
      response_writer& rw = response->writer();
      try {
        (*shared)(rw, copy->get());
      } catch (...) {
        if (rw.reset()) {  // what the handler set is dropped for a 500
          rw.write_header(500);
          rw.write("500 Internal Server Error\n");
        } else {
          rw.close_after();  // it flushed already: cut the response off with the connection
        }
      }
      response->finish();
    });
  };
}

}  // namespace nbio::http
