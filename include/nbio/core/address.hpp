// Public. A socket address: IPv4, IPv6 or a Unix domain path, parsed from and printed as text.
//
// Text forms: "127.0.0.1:8080", "[::1]:8080", "unix:/run/app.sock", and for name resolution
// (dialer only) "localhost:8080". parse() accepts numeric hosts only and never blocks.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nbio {

class address {
 public:
  address() = default;
  address(const sockaddr* sa, socklen_t len) noexcept;

  // Numeric "host:port", "[v6]:port" or "unix:/path". Returns nullopt for anything else
  // (including host names, which only the dialer resolves).
  static std::optional<address> parse(std::string_view text);
  // Splits "host:port" / "[v6]:port" into host and port; false when the text has no port.
  static bool split_host_port(std::string_view text, std::string& host, std::uint16_t& port);

  int family() const noexcept { return storage_.ss_family; }
  bool is_unix() const noexcept { return family() == AF_UNIX; }
  std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }
  void set_size(socklen_t len) noexcept { len_ = len; }
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

  // "127.0.0.1:8080", "[::1]:8080", "unix:/path"; "" for an empty address.
  std::string to_string() const;

  friend bool operator==(const address& a, const address& b) noexcept;

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

// A hash for unordered containers keyed by peer address (UDP virtual connections).
struct address_hash {
  std::size_t operator()(const address& a) const noexcept;
};

}  // namespace nbio
