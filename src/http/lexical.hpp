// Private. The lexical pieces of HTTP (RFC 9110 5.6) that every parser of a field needs: token
// bytes, optional whitespace, hex digits. One copy for the request parser, the client, the
// router, the file server and the WebSocket handshake and extensions (which parse HTTP fields
// too). Table lookups and loops over views: no allocation.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace nbio::http::detail {

// A byte table: ALPHA, DIGIT and the bytes of `extra`.
constexpr std::array<bool, 256> alnum_and(std::string_view extra) {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c)
    t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c)
    t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c)
    t[c] = true;
  for (char c : extra)
    t[static_cast<unsigned char>(c)] = true;
  return t;
}

// tchar (RFC 9110 5.6.2): the bytes of a token.
inline constexpr std::array<bool, 256> token_table = alnum_and("!#$%&'*+-.^_`|~");

inline bool is_tchar(char c) noexcept {
  return token_table[static_cast<unsigned char>(c)];
}

inline bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

inline bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// The value of a hex digit, or -1.
inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// ASCII case-insensitive equality (field names, tokens).
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// OWS (RFC 9110 5.6.3): spaces and horizontal tabs.
inline bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back()))
    s.remove_suffix(1);
  return s;
}

}  // namespace nbio::http::detail
