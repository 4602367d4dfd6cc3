// Private. The opening handshake: request checks and Sec-WebSocket-Accept (SHA-1 and base64 from
// OpenSSL's libcrypto: nothing to gain from writing either by hand).
#include "nbio/websocket/handshake.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>

#include "http/lexical.hpp"

namespace nbio::websocket {

namespace {

constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

std::string base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  return out;
}

using http::detail::is_ows;

// Calls fn(token) for each comma-separated element of a field value, trimmed; stops when fn
// returns true, and returns whether it did.
template <class F>
bool any_token(std::string_view list, F&& fn) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view t = list.substr(0, comma);
    while (!t.empty() && is_ows(t.front()))
      t.remove_prefix(1);
    while (!t.empty() && is_ows(t.back()))
      t.remove_suffix(1);
    if (!t.empty() && fn(t)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// 24 base64 characters ending "==" encode exactly 16 bytes.
bool valid_key(std::string_view k) noexcept {
  if (k.size() != 24 || k[22] != '=' || k[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    const char c = k[i];
    const bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '+' || c == '/';
    if (!b64) return false;
  }
  // The last character before "==" carries 2 bits: its 4 low bits must be 0.
  static constexpr std::string_view last = "AQgw";
  return last.find(k[21]) != std::string_view::npos;
}

}  // namespace

std::string accept_key(std::string_view client_key) {
  std::string in(client_key);
  in += guid;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  EVP_Digest(in.data(), in.size(), digest.data(), &len, EVP_sha1(), nullptr);
  return base64(digest.data(), len);
}

std::string make_key() {
  std::array<unsigned char, 16> bytes{};
  RAND_bytes(bytes.data(), static_cast<int>(bytes.size()));
  return base64(bytes.data(), bytes.size());
}

upgrade_check check_upgrade(const http::request& r) noexcept {
  upgrade_check c;
  auto fail = [&c](int status, std::string_view why) {
    c.status = status;
    c.reason = why;
    return c;
  };
  if (r.method() != "GET") return fail(400, "a WebSocket upgrade is a GET");
  if (r.version_minor() < 1) return fail(400, "a WebSocket upgrade needs HTTP/1.1");
  if (!has_token(r.header("Upgrade"), "websocket")) return fail(400, "missing Upgrade: websocket");
  if (!has_token(r.header("Connection"), "upgrade"))
    return fail(400, "missing Connection: upgrade");
  if (r.header("Sec-WebSocket-Version") != "13")
    return fail(426, "unsupported Sec-WebSocket-Version (13 only)");
  c.key = r.header("Sec-WebSocket-Key");
  if (!valid_key(c.key)) return fail(400, "bad Sec-WebSocket-Key");
  c.protocols = r.header("Sec-WebSocket-Protocol");
  c.extensions = r.header("Sec-WebSocket-Extensions");
  return c;
}

bool has_token(std::string_view list, std::string_view token) noexcept {
  return any_token(list, [&](std::string_view t) { return http::iequals(t, token); });
}

std::vector<std::string> split_list(std::string_view list) {
  std::vector<std::string> out;
  any_token(list, [&](std::string_view t) {
    out.emplace_back(t);
    return false;
  });
  return out;
}

std::string_view choose_protocol(std::string_view offered, std::string_view supported) noexcept {
  std::string_view chosen;
  any_token(offered, [&](std::string_view t) {
    if (!any_token(supported, [&](std::string_view s) { return s == t; })) return false;
    chosen = t;
    return true;
  });
  return chosen;
}

std::string joined_fields(std::span<const http::header> fields, std::string_view name) {
  std::string out;
  for (const http::header& f : fields) {
    if (!http::iequals(f.name, name)) continue;
    if (!out.empty()) out += ", ";
    out += f.value;
  }
  return out;
}

}  // namespace nbio::websocket
