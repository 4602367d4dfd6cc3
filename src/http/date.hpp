// Private. HTTP dates: the Date field's value (RFC 9110 6.6.1, IMF-fixdate) for every response
// the server writes, handlers' and its own canned ones alike; and the parser of the dates a
// request carries (If-Modified-Since, If-Unmodified-Since, If-Range) for the file server.
#pragma once

#include <array>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace nbio::http::detail {

inline constexpr std::array<const char*, 7> day_names = {"Sun", "Mon", "Tue", "Wed",
                                                         "Thu", "Fri", "Sat"};
inline constexpr std::array<const char*, 12> month_names = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// "Sun, 06 Nov 1994 08:49:37 GMT" for `t` (by hand: strftime's %a and %b follow the locale).
std::string format_http_date(std::time_t t);

// The current second as IMF-fixdate, formatted at most once a second per thread: a view into
// the calling thread's cache, valid until this thread's next call.
std::string_view http_date_now() noexcept;

// The three formats a recipient must accept (RFC 9110 5.6.7): IMF-fixdate, RFC 850 and
// asctime. Nothing for anything else.
std::optional<std::time_t> parse_http_date(std::string_view value);

}  // namespace nbio::http::detail
