// Conformance. The Autobahn fuzzing server (autobahn_fuzzing_server.hpp): the client's opening
// handshake checked and answered by hand, then the case as autobahn_session.hpp plays it.
#include "autobahn_fuzzing_server.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <regex>
#include <utility>
#include <vector>

#include "support/raw_socket.hpp"

namespace nbio_test::autobahn {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The elements of a list split at `sep`, each trimmed.
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const std::size_t at = s.find(sep);
    out.push_back(trim(s.substr(0, at)));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

// Whether the comma-separated header value holds `token` (case-insensitive, RFC 7230 3.2.6).
bool has_token(std::string_view value, std::string_view token) {
  for (const auto t : split(value, ','))
    if (lower(t) == lower(token)) return true;
  return false;
}

// One permessage-deflate offer (RFC 7692 7.1) as the accept rules read it.
struct deflate_offer {
  bool client_no_context_takeover = false;  // the client accepts the server asking for it
  bool client_max_window_bits = false;      // the client accepts a window size request
  bool server_no_context_takeover = false;  // the client asks the server for it
  std::string server_max_window_bits;       // the client asks the server for it ("" none)
};

// The (client_no_context_takeover, client_max_window_bits) requests of a 13.x accept rule:
// "server accept (requestNoContextTakeover, requestMaxWindowBits): [(True, 9), (False, 0)]".
// 12.x (no rule written): one request for nothing, "accept the offer as offered".
std::vector<std::pair<bool, int>> accept_requests(const nlohmann::json& c) {
  std::vector<std::pair<bool, int>> out;
  const std::string doc = c.at("extra").value("server_accept_doc", std::string());
  static const std::regex pair(R"(\((True|False),\s*(\d+)\))");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), pair); it != std::sregex_iterator();
       ++it)
    out.emplace_back((*it)[1] == "True", std::stoi((*it)[2]));
  if (out.empty()) out.emplace_back(false, 0);
  return out;
}

}  // namespace

std::string websocket_accept(std::string_view key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string text(key);
  text.append(guid);
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  ::SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  std::array<unsigned char, 4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1> out{};
  const int n = ::EVP_EncodeBlock(out.data(), digest.data(), SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(out.data()), static_cast<std::size_t>(n));
}

std::string check_client_handshake(std::string_view head, std::string_view target) {
  const std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  std::string expected_line = "GET ";
  expected_line.append(target).append(" HTTP/1.1");
  if (line != expected_line) {
    std::string why = "request line \"";
    why.append(line).append("\", expected \"").append(expected_line).append("\"");
    return why;
  }
  if (header_value(head, "Host").empty()) return "no Host header";
  if (!has_token(header_value(head, "Upgrade"), "websocket")) return "no Upgrade: websocket";
  if (!has_token(header_value(head, "Connection"), "upgrade")) return "no Connection: Upgrade";
  const std::string version = header_value(head, "Sec-WebSocket-Version");
  if (version != "13") return "Sec-WebSocket-Version \"" + version + "\", expected 13";
  // RFC 6455 4.1: the key is 16 random bytes, base64-encoded (24 characters, "==" at the end).
  const std::string key = header_value(head, "Sec-WebSocket-Key");
  std::array<unsigned char, 19> raw{};
  const bool shaped = key.size() == 24 && key.ends_with("==") &&
                      key.find_first_not_of(
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789+/=") == std::string::npos;
  if (!shaped ||
      ::EVP_DecodeBlock(raw.data(), reinterpret_cast<const unsigned char*>(key.data()), 24) != 18)
    return "Sec-WebSocket-Key \"" + key + "\" is not 16 base64-encoded bytes";
  return {};
}

std::string deflate_accept(const nlohmann::json& c, std::string_view offers) {
  const std::string group = group_of(c.at("id").get<std::string>());
  if (group != "12" && group != "13") return {};
  std::vector<deflate_offer> parsed;
  for (const auto ext : split(offers, ',')) {
    const auto params = split(ext, ';');
    if (lower(params.front()) != "permessage-deflate") continue;
    deflate_offer o;
    for (std::size_t i = 1; i < params.size(); ++i) {
      const std::size_t eq = params[i].find('=');
      const std::string name = lower(trim(params[i].substr(0, eq)));
      const std::string_view value =
          eq == std::string_view::npos ? std::string_view() : trim(params[i].substr(eq + 1));
      if (name == "client_no_context_takeover") o.client_no_context_takeover = true;
      if (name == "client_max_window_bits") o.client_max_window_bits = true;
      if (name == "server_no_context_takeover") o.server_no_context_takeover = true;
      if (name == "server_max_window_bits") o.server_max_window_bits = std::string(value);
    }
    parsed.push_back(o);
  }
  // Autobahn's PerMessageDeflateOfferAccept: what the server asks of the client, then the
  // client's own requests of the server granted as made.
  for (const auto& o : parsed) {
    for (const auto& [no_context_takeover, window_bits] : accept_requests(c)) {
      if (no_context_takeover && !o.client_no_context_takeover) continue;
      if (window_bits != 0 && !o.client_max_window_bits) continue;
      std::string out = "permessage-deflate";
      if (no_context_takeover) out += "; client_no_context_takeover";
      if (window_bits != 0) out += "; client_max_window_bits=" + std::to_string(window_bits);
      if (o.server_no_context_takeover) out += "; server_no_context_takeover";
      if (!o.server_max_window_bits.empty())
        out += "; server_max_window_bits=" + o.server_max_window_bits;
      return out;
    }
  }
  return {};
}

fuzzing_server::fuzzing_server(fuzzing_server_options o) : opts_(o) {
  listener_ = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const auto any = *nbio::address::parse("127.0.0.1:0");
  if (!listener_ || ::bind(listener_.get(), any.data(), any.size()) != 0 ||
      ::listen(listener_.get(), 16) != 0) {
    listener_.reset();
    return;
  }
  address_ = local_address_of(listener_.get());
}

std::string fuzzing_server::case_url(std::size_t index, std::string_view agent) const {
  std::string url = opts_.session.tls ? "wss://" : "ws://";
  url.append(address_.to_string())
      .append("/runCase?case=")
      .append(std::to_string(index))
      .append("&agent=")
      .append(agent);
  return url;
}

verdict fuzzing_server::play_case(const nlohmann::json& c, std::size_t index,
                                  std::string_view agent) {
  case_session s(fuzzer_role::server, c, opts_.session);
  pollfd p{listener_.get(), POLLIN, 0};
  if (!listener_ || ::poll(&p, 1, static_cast<int>(opts_.accept_timeout.count())) != 1)
    return s.not_opened("the client did not connect");
  unique_fd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd) return s.not_opened("accept failed");
  s.attach(std::move(fd));
  const auto head = s.read_head(opts_.accept_timeout);
  if (!head) return s.not_opened("no complete upgrade request from the client");
  std::string target = "/runCase?case=";
  target.append(std::to_string(index)).append("&agent=").append(agent);
  if (std::string why = check_client_handshake(*head, target); !why.empty())
    return s.not_opened("the client's opening handshake: " + why);
  const std::string key = header_value(*head, "Sec-WebSocket-Key");
  if (key == last_key_)
    return s.not_opened("the client reused the previous connection's Sec-WebSocket-Key");
  last_key_ = key;

  negotiated n;
  n.offer = header_value(*head, "Sec-WebSocket-Extensions");
  // Where permessage-deflate is accepted (the 12.x/13.x rules); the session then echoes
  // compressed messages.
  n.extensions = deflate_accept(c, n.offer);
  std::string answer =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  answer.append(websocket_accept(key)).append("\r\n");
  if (!n.extensions.empty())
    answer.append("Sec-WebSocket-Extensions: ").append(n.extensions).append("\r\n");
  answer.append("\r\n");
  s.write_now(answer);
  return s.run(n);
}

}  // namespace nbio_test::autobahn
