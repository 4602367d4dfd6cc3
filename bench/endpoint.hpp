// endpoint: resolves the --host/--port of the benchmark clients to a socket address
// (bench-internal).
#pragma once

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

namespace bench {

struct endpoint {
  sockaddr_storage address{};
  socklen_t length = 0;
  int family = AF_UNSPEC;
};

// Resolves host (a name or a numeric IPv4/IPv6 address) and port to the first stream address
// getaddrinfo returns. On failure returns nullopt and stores getaddrinfo's message in *error.
inline std::optional<endpoint> resolve_endpoint(const std::string& host, std::uint16_t port,
                                                std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0) {
    *error = gai_strerror(rc);
    return std::nullopt;
  }
  endpoint result;
  std::memcpy(&result.address, list->ai_addr, list->ai_addrlen);
  result.length = list->ai_addrlen;
  result.family = list->ai_family;
  freeaddrinfo(list);
  return result;
}

// For a target on IPv4 loopback, binds the unconnected socket fd to the source address
// 127.0.0.(1 + index / 8192), leaving the port to connect(); elsewhere does nothing. Why: Linux
// picks a connect()'s local port by scanning the ephemeral range (28,232 ports, even ones
// first), so once some 14,000 connections share one source address every connect() scans
// thousands of taken ports: 15,000 connections took 10 s instead of 4. Connections from another
// source address may reuse those ports (the 4-tuple differs), so there the scan ends at once.
// The whole of 127.0.0.0/8 is local, so the extra source addresses need no setup.
inline void spread_loopback_source(int fd, const endpoint& target, std::size_t index) {
  constexpr std::size_t per_source = 8192;
  if (target.family != AF_INET) return;
  const auto& to = reinterpret_cast<const sockaddr_in&>(target.address);
  if ((ntohl(to.sin_addr.s_addr) >> 24) != 127) return;
  const int one = 1;
  if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0) return;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl((127u << 24) + 1 + static_cast<std::uint32_t>(index / per_source));
  bind(fd, reinterpret_cast<const sockaddr*>(&from), sizeof from);  // on failure connect() binds
}

}  // namespace bench
