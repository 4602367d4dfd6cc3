// Private. The HTTP layer's error_category, its status table and the reason phrases.
#include "nbio/http/error.hpp"

namespace nbio::http {
namespace {

class http_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "nbio.http"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::bad_request_line:
        return "malformed request line";
      case errc::bad_method:
        return "method is not a token";
      case errc::bad_target:
        return "malformed request target";
      case errc::bad_version:
        return "malformed HTTP version";
      case errc::bad_header_name:
        return "malformed header name";
      case errc::whitespace_before_colon:
        return "whitespace between header name and colon";
      case errc::bad_header_value:
        return "control character in header value";
      case errc::bare_cr:
        return "CR not followed by LF";
      case errc::bare_lf:
        return "LF without CR";
      case errc::obs_fold:
        return "obsolete line folding in header";
      case errc::missing_host:
        return "HTTP/1.1 request without Host";
      case errc::duplicate_host:
        return "more than one Host header";
      case errc::bad_host:
        return "malformed Host header";
      case errc::bad_content_length:
        return "malformed Content-Length";
      case errc::conflicting_content_length:
        return "conflicting Content-Length headers";
      case errc::content_length_with_chunked:
        return "both Content-Length and Transfer-Encoding";
      case errc::chunked_not_last:
        return "Transfer-Encoding does not end with chunked";
      case errc::bad_transfer_encoding:
        return "malformed Transfer-Encoding";
      case errc::bad_chunk_size:
        return "malformed chunk size";
      case errc::bad_chunk_extension:
        return "malformed chunk extension";
      case errc::bad_chunk_end:
        return "chunk data not followed by CRLF";
      case errc::bad_trailer:
        return "malformed trailer section";
      case errc::bad_status_line:
        return "malformed status line";
      case errc::unsupported_transfer_coding:
        return "unsupported transfer coding";
      case errc::unsupported_version:
        return "HTTP version not supported";
      case errc::expectation_failed:
        return "unsupported Expect";
      case errc::uri_too_long:
        return "request line too long";
      case errc::headers_too_large:
        return "header section too large";
      case errc::too_many_headers:
        return "too many header fields";
      case errc::body_too_large:
        return "body too large";
      case errc::head_over_budget:
        return "request head evicted: the server's buffer budget is spent";
      case errc::body_over_budget:
        return "request body evicted: the server's buffer budget is spent";
    }
    return "unknown nbio.http error";
  }
};

}  // namespace

const std::error_category& http_category() noexcept {
  static const http_category_impl instance;
  return instance;
}

int status_of(std::error_code ec) noexcept {
  if (ec.category() != http_category()) return 400;
  switch (static_cast<errc>(ec.value())) {
    case errc::unsupported_transfer_coding:
      return 501;
    case errc::unsupported_version:
      return 505;
    case errc::expectation_failed:
      return 417;
    case errc::uri_too_long:
      return 414;
    case errc::headers_too_large:
    case errc::too_many_headers:
    case errc::head_over_budget:
      return 431;
    case errc::body_too_large:
    case errc::body_over_budget:
      return 413;
    default:
      return 400;
  }
}

const char* reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

}  // namespace nbio::http
