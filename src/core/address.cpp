// Private. Parsing and printing of socket addresses.
#include "nbio/core/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>

namespace nbio {

address::address(const sockaddr* sa, socklen_t len) noexcept {
  if (len > sizeof(storage_)) len = sizeof(storage_);
  std::memcpy(&storage_, sa, len);
  len_ = len;
}

bool address::split_host_port(std::string_view text, std::string& host, std::uint16_t& port) {
  std::string_view h, p;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return false;
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
    if (h.find(':') != std::string_view::npos) return false;  // bare IPv6 needs brackets
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || value > 65535) return false;
  host.assign(h);
  port = static_cast<std::uint16_t>(value);
  return true;
}

std::optional<address> address::parse(std::string_view text) {
  address a;
  if (text.starts_with("unix:")) {
    auto path = text.substr(5);
    sockaddr_un un{};
    // Abstract names (a leading NUL) and embedded NULs have no text form here.
    if (path.empty() || path.size() >= sizeof(un.sun_path) ||
        path.find('\0') != std::string_view::npos)
      return std::nullopt;
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    a = address(reinterpret_cast<sockaddr*>(&un),
                static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1));
    return a;
  }
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(text, host, port)) return std::nullopt;
  sockaddr_in v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    return address(reinterpret_cast<sockaddr*>(&v4), sizeof(v4));
  }
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    return address(reinterpret_cast<sockaddr*>(&v6), sizeof(v6));
  }
  return std::nullopt;
}

std::uint16_t address::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

void address::set_port(std::uint16_t port) noexcept {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  switch (family()) {
    case AF_INET: {
      auto* in = reinterpret_cast<const sockaddr_in*>(&storage_);
      inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
      std::string out(buf);
      out.push_back(':');
      out.append(std::to_string(ntohs(in->sin_port)));
      return out;
    }
    case AF_INET6: {
      auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
      inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
      std::string out("[");
      out.append(buf);
      out.append("]:");
      out.append(std::to_string(ntohs(in6->sin6_port)));
      return out;
    }
    case AF_UNIX: {
      auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      std::string out("unix:");
      if (len_ > offsetof(sockaddr_un, sun_path))
        out.append(un->sun_path, strnlen(un->sun_path, sizeof(un->sun_path)));
      return out;
    }
    default:
      return "";
  }
}

bool operator==(const address& a, const address& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

std::size_t address_hash::operator()(const address& a) const noexcept {
  // FNV-1a over the significant bytes: ports and addresses of loopback peers differ in few bits.
  std::size_t h = 1469598103934665603ull;
  const auto* p = reinterpret_cast<const unsigned char*>(a.data());
  for (socklen_t i = 0; i < a.size(); ++i)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace nbio
