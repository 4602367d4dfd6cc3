// Unit: parsing and printing of socket addresses.
#include "nbio/core/address.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <string>
#include <unordered_set>

namespace {

using nbio::address;

TEST(address, parses_ipv4_host_and_port) {
  auto a = address::parse("127.0.0.1:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_FALSE(a->is_unix());
  EXPECT_EQ(a->port(), 8080);
  EXPECT_EQ(a->size(), sizeof(sockaddr_in));
  auto* in = reinterpret_cast<const sockaddr_in*>(a->data());
  EXPECT_EQ(ntohl(in->sin_addr.s_addr), 0x7f000001u);
  EXPECT_EQ(a->to_string(), "127.0.0.1:8080");
}

TEST(address, parses_ipv6_in_brackets) {
  auto a = address::parse("[::1]:443");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->port(), 443);
  EXPECT_EQ(a->size(), sizeof(sockaddr_in6));
  auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->data());
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
  EXPECT_EQ(a->to_string(), "[::1]:443");
}

TEST(address, parses_unix_path) {
  auto a = address::parse("unix:/run/app.sock");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_UNIX);
  EXPECT_TRUE(a->is_unix());
  EXPECT_EQ(a->port(), 0);
  auto* un = reinterpret_cast<const sockaddr_un*>(a->data());
  EXPECT_STREQ(un->sun_path, "/run/app.sock");
  EXPECT_EQ(a->to_string(), "unix:/run/app.sock");
}

TEST(address, unix_path_of_maximum_length_fits) {
  std::string path(sizeof(sockaddr_un::sun_path) - 1, 'p');
  path[0] = '/';
  auto a = address::parse("unix:" + path);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->to_string(), "unix:" + path);
}

struct round_trip_case {
  const char* text;
  const char* printed;  // canonical form
  int family;
  std::uint16_t port;
};

TEST(address, round_trips_to_canonical_text) {
  const round_trip_case cases[] = {
      {"0.0.0.0:0", "0.0.0.0:0", AF_INET, 0},
      {"255.255.255.255:65535", "255.255.255.255:65535", AF_INET, 65535},
      {"10.1.2.3:1", "10.1.2.3:1", AF_INET, 1},
      {"[::]:80", "[::]:80", AF_INET6, 80},
      {"[0:0:0:0:0:0:0:1]:80", "[::1]:80", AF_INET6, 80},
      {"[2001:DB8::1]:8443", "[2001:db8::1]:8443", AF_INET6, 8443},
      {"[::ffff:127.0.0.1]:9", "[::ffff:127.0.0.1]:9", AF_INET6, 9},
      {"[fe80::1:2:3:4]:65535", "[fe80::1:2:3:4]:65535", AF_INET6, 65535},
      {"unix:/tmp/a b.sock", "unix:/tmp/a b.sock", AF_UNIX, 0},
      {"unix:relative.sock", "unix:relative.sock", AF_UNIX, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto a = address::parse(c.text);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->family(), c.family);
    EXPECT_EQ(a->port(), c.port);
    EXPECT_EQ(a->to_string(), c.printed);
    auto again = address::parse(a->to_string());
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *a);
  }
}

TEST(address, rejects_invalid_forms) {
  const std::string too_long_path(sizeof(sockaddr_un::sun_path), 'x');
  const std::string cases[] = {
      "",
      "127.0.0.1",        // no port
      "127.0.0.1:",       // empty port
      ":80",              // empty host
      "127.0.0.1:65536",  // port out of range
      "127.0.0.1:99999999999",
      "127.0.0.1:-1",
      "127.0.0.1:+80",
      "127.0.0.1:80x",  // trailing garbage
      "127.0.0.1:8 0",
      " 127.0.0.1:80",  // leading space
      "127.0.0.1:80 ",
      "256.0.0.1:80",  // octet out of range
      "1.2.3:80",      // three octets
      "1.2.3.4.5:80",
      "::1:80",     // bare IPv6 needs brackets
      "[::1]",      // no port
      "[::1]:",     // empty port
      "[::1]80",    // no colon after the bracket
      "[::1:80",    // unclosed bracket
      "::1]:80",    // no opening bracket
      "[:::1]:80",  // not an IPv6 address
      "[]:80",
      "localhost:80",  // host names are for the dialer only
      "example.com:443",
      "unix:",  // empty path
      "unix:" + too_long_path,
      "tcp://127.0.0.1:80",
  };
  for (const auto& text : cases) {
    EXPECT_FALSE(address::parse(text).has_value()) << "accepted \"" << text << '"';
  }
}

TEST(address, split_host_port_keeps_host_names) {
  std::string host;
  std::uint16_t port = 0;
  ASSERT_TRUE(address::split_host_port("localhost:8080", host, port));
  EXPECT_EQ(host, "localhost");
  EXPECT_EQ(port, 8080);
  ASSERT_TRUE(address::split_host_port("[::1]:443", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 443);
  ASSERT_TRUE(address::split_host_port("127.0.0.1:0", host, port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 0);
}

TEST(address, split_host_port_rejects_text_without_a_port) {
  std::string host = "unchanged";
  std::uint16_t port = 7;
  for (const char* text : {"localhost", "localhost:", "[::1]", "::1:80", "host:65536", "host:x"}) {
    EXPECT_FALSE(address::split_host_port(text, host, port)) << text;
  }
}

TEST(address, empty_address_prints_as_empty_text) {
  address a;
  EXPECT_EQ(a.family(), AF_UNSPEC);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(a.to_string(), "");
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a, address());
}

TEST(address, set_port_changes_only_the_port) {
  auto v4 = *address::parse("127.0.0.1:1");
  v4.set_port(65535);
  EXPECT_EQ(v4.to_string(), "127.0.0.1:65535");
  auto v6 = *address::parse("[::1]:1");
  v6.set_port(8080);
  EXPECT_EQ(v6.to_string(), "[::1]:8080");
  auto un = *address::parse("unix:/x.sock");
  un.set_port(80);  // no port in a Unix address: a no-op
  EXPECT_EQ(un.to_string(), "unix:/x.sock");
  EXPECT_EQ(un.port(), 0);
}

TEST(address, built_from_sockaddr_equals_the_parsed_one) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(9000);
  in.sin_addr.s_addr = htonl(0x7f000002);
  address a(reinterpret_cast<sockaddr*>(&in), sizeof(in));
  EXPECT_EQ(a, *address::parse("127.0.0.2:9000"));
  EXPECT_EQ(a.to_string(), "127.0.0.2:9000");
}

TEST(address, oversized_sockaddr_length_is_truncated_to_capacity) {
  unsigned char raw[sizeof(sockaddr_storage) + 64] = {};
  reinterpret_cast<sockaddr*>(raw)->sa_family = AF_INET;
  address a(reinterpret_cast<sockaddr*>(raw), sizeof(raw));
  EXPECT_LE(a.size(), address::capacity());
}

TEST(address, equality_and_hash_follow_family_host_and_port) {
  auto a = *address::parse("127.0.0.1:80");
  auto same = *address::parse("127.0.0.1:80");
  auto other_port = *address::parse("127.0.0.1:81");
  auto other_host = *address::parse("127.0.0.2:80");
  auto v6 = *address::parse("[::ffff:127.0.0.1]:80");
  EXPECT_EQ(a, same);
  EXPECT_NE(a, other_port);
  EXPECT_NE(a, other_host);
  EXPECT_NE(a, v6);
  nbio::address_hash hash;
  EXPECT_EQ(hash(a), hash(same));
  std::unordered_set<address, nbio::address_hash> set{a, same, other_port, other_host, v6};
  EXPECT_EQ(set.size(), 4u);
}

}  // namespace
