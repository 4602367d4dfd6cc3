// Conformance. The Autobahn fuzzing client (autobahn_fuzzer.hpp): one connection per case, the
// opening handshake as a client, then the case as autobahn_session.hpp plays it.
#include "autobahn_fuzzer.hpp"

#include "autobahn_session.hpp"
#include "nbio/websocket/handshake.hpp"
#include "support/raw_socket.hpp"

namespace nbio_test::autobahn {

verdict play_case(const nbio::address& server, const nlohmann::json& c, const fuzzer_options& o) {
  case_session s(fuzzer_role::client, c, o);
  const std::string group = group_of(c.at("id").get<std::string>());
  std::string offer;
  if (group == "12" || group == "13")
    for (const auto& x : c.at("extra").at("client_offers"))
      offer += (offer.empty() ? "" : ", ") + x.get<std::string>();
  unique_fd fd = connect_stream(server);
  if (!fd) return s.not_opened({});
  s.attach(std::move(fd));
  const std::string key = nbio::websocket::make_key();
  std::string req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server.port()) +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                    "\r\nSec-WebSocket-Version: 13\r\n";
  if (!offer.empty()) req += "Sec-WebSocket-Extensions: " + offer + "\r\n";
  req += "\r\n";
  s.write_now(req);
  const auto head = s.read_head(std::chrono::seconds(5));
  if (!head || !head->starts_with("HTTP/1.1 101") ||
      header_value(*head, "Sec-WebSocket-Accept") != nbio::websocket::accept_key(key))
    return s.not_opened({});
  return s.run({.extensions = header_value(*head, "Sec-WebSocket-Extensions"), .offer = offer});
}

}  // namespace nbio_test::autobahn
