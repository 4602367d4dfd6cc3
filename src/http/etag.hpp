// Private. Entity tags (RFC 9110 8.8.3): matching a validator against If-Match and
// If-None-Match lists, for the file server's conditional requests.
#pragma once

#include <string_view>

namespace nbio::http::detail {

// Whether the If-Match / If-None-Match `list` ("*", or entity-tags separated by commas) holds
// `etag` (a strong tag, quotes included). Strong comparison ignores the list's weak tags; weak
// comparison compares the opaque tags only (RFC 9110 8.8.3.2). Malformed elements are skipped.
bool etag_listed(std::string_view list, std::string_view etag, bool strong) noexcept;

}  // namespace nbio::http::detail
