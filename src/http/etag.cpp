// Private. Entity-tag lists (RFC 9110 8.8.3.2, 13.1.1, 13.1.2).
#include "http/etag.hpp"

namespace nbio::http::detail {

bool etag_listed(std::string_view list, std::string_view etag, bool strong) noexcept {
  std::size_t i = 0;
  while (i < list.size()) {
    const char c = list[i];
    if (c == ' ' || c == '\t' || c == ',') {
      ++i;
      continue;
    }
    if (c == '*') return true;
    bool weak = false;
    if (list.substr(i, 2) == "W/") {
      weak = true;
      i += 2;
    }
    if (i < list.size() && list[i] == '"') {
      const std::size_t close = list.find('"', i + 1);
      if (close == std::string_view::npos) return false;
      const std::string_view tag = list.substr(i, close + 1 - i);
      if (tag == etag && !(strong && weak)) return true;
      i = close + 1;
    }
    const std::size_t comma = list.find(',', i);
    if (comma == std::string_view::npos) break;
    i = comma + 1;
  }
  return false;
}

}  // namespace nbio::http::detail
