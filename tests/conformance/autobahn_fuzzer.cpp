// Conformance. The Autobahn fuzzing client (autobahn_fuzzer.hpp): one connection per case, the
// case's actions, the server's frames decoded by hand, what happened handed to the judge
// (autobahn_judge.hpp).
#include "autobahn_fuzzer.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <random>

#include "autobahn_judge.hpp"
#include "nbio/websocket/handshake.hpp"
#include "support/raw_socket.hpp"

namespace nbio_test::autobahn {

namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

// A header's value in an HTTP response head ("" when absent).
std::string header_value(std::string_view head, std::string_view name) {
  const std::string h = lower(head);
  const std::string key = "\r\n" + lower(name) + ":";
  const std::size_t at = h.find(key);
  if (at == std::string::npos) return {};
  std::size_t b = at + key.size();
  const std::size_t e = head.find("\r\n", b);
  while (b < e && (head[b] == ' ' || head[b] == '\t'))
    ++b;
  std::size_t end = e;
  while (end > b && (head[end - 1] == ' ' || head[end - 1] == '\t'))
    --end;
  return std::string(head.substr(b, end - b));
}

enum class state { open, closing, closed };

class fuzz_session {
 public:
  fuzz_session(const nbio::address& server, const nlohmann::json& c, const fuzzer_options& o)
      : server_(server), case_(c), opts_(o), rng_(std::random_device{}()) {
    id_ = c.at("id").get<std::string>();
    group_ = group_of(id_);
  }

  verdict run();

 private:
  // --- the connection ---
  bool open_connection(const std::string& extensions, std::string* accepted_extensions);
  void read_available();
  void write_now(std::string_view bytes);
  void queue(std::string bytes) { out_ += bytes; }
  void flush();
  void drop();
  // Runs the client until `until`, the connection's end or (stop_unless_open) the end of OPEN.
  void service(clock_type::time_point until, bool stop_unless_open);

  // --- frames ---
  std::string frame(std::uint8_t opcode, std::string_view payload, bool fin, int rsv);
  std::uint32_t new_key() { return static_cast<std::uint32_t>(rng_()); }
  static void mask(std::string& data, std::uint32_t key, std::uint64_t offset);
  void parse_input();
  void on_message(std::string payload, bool binary);
  void on_control(std::uint8_t opcode, std::string payload);
  void violation(std::string why);
  void send_close(std::optional<std::uint16_t> code, std::string_view reason);
  void finish_when_done();
  void add_timer(double seconds, int kind);

  // --- the case ---
  void run_actions();
  void send_message(const nlohmann::json& a);

  const nbio::address& server_;
  const nlohmann::json& case_;
  fuzzer_options opts_;
  std::mt19937 rng_;
  std::string id_;
  std::string group_;

  unique_fd fd_;
  state state_ = state::closed;
  std::string in_;   // bytes received, not parsed yet
  std::string out_;  // frames queued by non-sync actions
  observation obs_;
  bool tcp_closed_ = false;
  bool reset_ = false;  // the connection ended with ECONNRESET

  // The server's message being assembled.
  bool in_message_ = false;
  bool message_binary_ = false;
  std::string message_;

  struct timer {
    clock_type::time_point at;
    int kind;  // 0 kill, 1 closeAfter, 2 close handshake timeout, 3 server drop timeout
  };
  std::vector<timer> timers_;

  // 9.x: checked in code (catalog group notes).
  bool limits_case_ = false;
  bool limits_binary_ = false;
  std::size_t limits_len_ = 0;
  std::string limits_payload_;  // what was sent (the content is checked too)
  bool roundtrip_ = false;      // 9.7/9.8: the message is sent COUNT times, one at a time
  int roundtrip_left_ = 0;

  // 6.4.3/6.4.4: one frame written in parts.
  std::uint32_t stream_key_ = 0;
  std::uint64_t stream_offset_ = 0;
};

void fuzz_session::mask(std::string& data, std::uint32_t key, std::uint64_t offset) {
  std::array<unsigned char, 4> k{};
  std::memcpy(k.data(), &key, 4);
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>(static_cast<unsigned char>(data[i]) ^ k[(offset + i) % 4]);
}

std::string fuzz_session::frame(std::uint8_t opcode, std::string_view payload, bool fin, int rsv) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)));
  const std::uint64_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i)
      f.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  const std::uint32_t key = new_key();
  f.append(reinterpret_cast<const char*>(&key), 4);
  std::string body(payload);
  mask(body, key, 0);
  return f + body;
}

bool fuzz_session::open_connection(const std::string& extensions, std::string* accepted) {
  fd_ = connect_stream(server_);
  if (!fd_) return false;
  const int one = 1;
  ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd_.get(), F_SETFL, ::fcntl(fd_.get(), F_GETFL) | O_NONBLOCK);
  const std::string key = nbio::websocket::make_key();
  std::string req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server_.port()) +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                    "\r\nSec-WebSocket-Version: 13\r\n";
  if (!extensions.empty()) req += "Sec-WebSocket-Extensions: " + extensions + "\r\n";
  req += "\r\n";
  state_ = state::open;  // for write_now; reset below on failure
  write_now(req);
  const auto deadline = clock_type::now() + std::chrono::seconds(5);
  std::size_t end = std::string::npos;
  while ((end = in_.find("\r\n\r\n")) == std::string::npos && !tcp_closed_ &&
         clock_type::now() < deadline) {
    pollfd p{fd_.get(), POLLIN, 0};
    ::poll(&p, 1, 50);
    read_available();
  }
  state_ = state::closed;
  if (end == std::string::npos) return false;
  const std::string head = in_.substr(0, end + 2);
  in_.erase(0, end + 4);
  if (!head.starts_with("HTTP/1.1 101")) return false;
  if (header_value(head, "Sec-WebSocket-Accept") != nbio::websocket::accept_key(key)) return false;
  if (accepted) *accepted = header_value(head, "Sec-WebSocket-Extensions");
  state_ = state::open;
  obs_.opened = true;
  return true;
}

void fuzz_session::read_available() {
  if (tcp_closed_) return;
  char buf[256 * 1024];
  for (;;) {
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      if (n < 0) reset_ = errno == ECONNRESET;
      tcp_closed_ = true;
      return;
    }
    if (errno != EINTR) return;
  }
}

void fuzz_session::write_now(std::string_view bytes) {
  const auto deadline = clock_type::now() + std::chrono::seconds(30);
  while (!bytes.empty() && !tcp_closed_ && fd_) {
    const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      // The server is gone (EPIPE, ECONNRESET): what it sent before is still read.
      read_available();
      tcp_closed_ = true;
      return;
    }
    if (clock_type::now() > deadline) {
      violation("the server stopped reading for 30 s");
      return;
    }
    // Read while the server cannot take more, so neither side waits on a full buffer.
    pollfd p{fd_.get(), POLLIN | POLLOUT, 0};
    ::poll(&p, 1, 100);
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) read_available();
  }
}

void fuzz_session::flush() {
  if (out_.empty()) return;
  std::string bytes;
  bytes.swap(out_);
  write_now(bytes);
}

void fuzz_session::drop() {
  if (!tcp_closed_) {
    obs_.dropped_by_me = true;
    tcp_closed_ = true;
  }
  fd_.reset();
  state_ = state::closed;
}

void fuzz_session::violation(std::string why) {
  if (obs_.violation.empty()) obs_.violation = std::move(why);
  if (state_ == state::open) obs_.closed_by_me = true;
  drop();
}

void fuzz_session::add_timer(double seconds, int kind) {
  auto d = std::chrono::duration_cast<milliseconds>(std::chrono::duration<double>(seconds));
  if (kind <= 1) d = std::min(d, opts_.max_timer);
  timers_.push_back({clock_type::now() + d, kind});
}

void fuzz_session::send_close(std::optional<std::uint16_t> code, std::string_view reason) {
  std::string payload;
  if (code) {
    payload.push_back(static_cast<char>(*code >> 8));
    payload.push_back(static_cast<char>(*code & 0xff));
  }
  payload += reason;
  flush();
  write_now(frame(0x8, payload, true, 0));
  if (state_ == state::open) {
    obs_.closed_by_me = true;
    state_ = state::closing;
    add_timer(opts_.close_handshake_timeout.count() / 1000.0, 2);
  }
}

void fuzz_session::finish_when_done() {
  // Catalog section 2: when what was received equals every expected list and the fuzzer is
  // the one to close, it starts the closing handshake at once (unless suppressClose).
  const auto& expected = case_.at("expected");
  if (expected.empty() || state_ != state::open) return;
  if (!case_.at("expectedClose").at("closedByMe").get<bool>()) return;
  if (case_.value("suppressClose", false)) return;
  for (const auto& [key, list] : expected.items())
    if (expected_events(list) != obs_.received) return;
  send_close(case_.at("expectedClose").at("closeCode").at(0).get<std::uint16_t>(), {});
}

void fuzz_session::on_message(std::string payload, bool binary) {
  if (!limits_case_) {
    obs_.received.push_back({event::kind::message, std::move(payload), binary});
    finish_when_done();
    return;
  }
  // 9.x: the type and the length decide (Autobahn's own check); the content is compared too,
  // which Autobahn leaves as a FIXME: an echo that differs is a server bug all the same.
  const bool ok = binary == limits_binary_ && payload.size() == limits_len_;
  const bool same = payload == limits_payload_;
  if (!ok || !same) {
    obs_.decided_behavior = "FAILED";
    obs_.decided_reason = std::string("echo differs: got ") + (binary ? "binary" : "text") + ", " +
                          std::to_string(payload.size()) + " bytes" +
                          (ok ? " (content differs)" : "");
    send_close(1000, {});
    return;
  }
  if (roundtrip_ && --roundtrip_left_ > 0) {
    // The next round trip: the same message with a fresh mask key.
    write_now(frame(limits_binary_ ? 2 : 1, limits_payload_, true, 0));
    return;
  }
  obs_.decided_behavior = "OK";
  obs_.decided_reason.clear();
  send_close(1000, {});
}

void fuzz_session::on_control(std::uint8_t opcode, std::string payload) {
  if (opcode == 0x9) {
    obs_.received.push_back({event::kind::ping, payload, false});
    if (state_ == state::open) write_now(frame(0xa, payload, true, 0));
    return;
  }
  if (opcode == 0xa) {
    obs_.received.push_back({event::kind::pong, std::move(payload), false});
    finish_when_done();
    return;
  }
  // Close.
  obs_.got_close = true;
  if (payload.size() == 1) {
    violation("the server's close frame has a 1-byte payload");
    return;
  }
  if (payload.size() >= 2)
    obs_.remote_close_code =
        (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
  if (state_ == state::open) {
    // The server started the close: answer it (Autobahn answers 1000), handshake done.
    obs_.closed_by_me = false;
    flush();
    write_now(frame(0x8, std::string("\x03\xe8", 2), true, 0));
    state_ = state::closing;
  }
  obs_.was_clean = true;
  add_timer(opts_.server_drop_timeout.count() / 1000.0, 3);
}

void fuzz_session::parse_input() {
  std::size_t pos = 0;
  while (!obs_.got_close && obs_.violation.empty() && state_ != state::closed) {
    const std::size_t avail = in_.size() - pos;
    if (avail < 2) break;
    const auto* p = reinterpret_cast<const unsigned char*>(in_.data() + pos);
    const bool fin = p[0] & 0x80;
    const int rsv = (p[0] >> 4) & 7;
    const std::uint8_t op = p[0] & 0x0f;
    const bool masked = p[1] & 0x80;
    std::uint64_t len = p[1] & 0x7f;
    std::size_t head = 2;
    if (len == 126) {
      if (avail < 4) break;
      len = (std::uint64_t{p[2]} << 8) | p[3];
      head = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i)
        len = (len << 8) | p[2 + i];
      head = 10;
    }
    if (masked) return violation("the server sent a masked frame");
    if (rsv != 0) return violation("the server sent a frame with RSV bits set");
    if ((op >= 3 && op <= 7) || op > 0xa)
      return violation("the server sent reserved opcode " + std::to_string(op));
    if (op >= 8 && (!fin || len > 125))
      return violation("the server sent a fragmented or oversized control frame");
    if (len > (std::uint64_t{1} << 40)) return violation("the server sent an absurd length");
    if (avail < head + len) break;
    std::string payload = in_.substr(pos + head, static_cast<std::size_t>(len));
    pos += head + static_cast<std::size_t>(len);
    if (op >= 8) {
      on_control(op, std::move(payload));
      continue;
    }
    if (op == 0 && !in_message_) return violation("the server sent a stray continuation");
    if (op != 0 && in_message_) return violation("the server interleaved two messages");
    if (op != 0) {
      in_message_ = true;
      message_binary_ = op == 2;
      message_.clear();
    }
    message_ += payload;
    if (fin) {
      in_message_ = false;
      on_message(std::move(message_), message_binary_);
      message_.clear();
    }
  }
  if (obs_.got_close || !obs_.violation.empty()) {
    in_.clear();  // nothing after a close frame counts
  } else {
    in_.erase(0, pos);
  }
}

void fuzz_session::service(clock_type::time_point until, bool stop_unless_open) {
  for (;;) {
    parse_input();
    // Due timers.
    const auto now = clock_type::now();
    for (std::size_t i = 0; i < timers_.size();) {
      if (timers_[i].at > now) {
        ++i;
        continue;
      }
      const int kind = timers_[i].kind;
      timers_.erase(timers_.begin() + static_cast<std::ptrdiff_t>(i));
      if (tcp_closed_) continue;
      if (kind == 0 && state_ == state::open) {
        send_close(1001, "Going Away");  // killAfter: the fuzzer fails the connection
      } else if (kind == 1 && state_ == state::open) {
        send_close(1000, {});  // closeAfter
      } else if (kind == 2 && !obs_.got_close) {
        obs_.not_clean_why = "no close frame from the server within the closing handshake timeout";
        drop();
      } else if (kind == 3) {
        obs_.was_clean = false;
        obs_.not_clean_why = "the server did not close TCP after the closing handshake";
        drop();
      }
    }
    if (tcp_closed_) {
      parse_input();
      if (state_ != state::closed && !obs_.got_close)
        obs_.not_clean_why =
            reset_ ? "TCP reset without a close frame" : "TCP closed without a close frame";
      state_ = state::closed;
      return;
    }
    if (stop_unless_open && state_ != state::open) return;
    auto next = until;
    for (const auto& t : timers_)
      next = std::min(next, t.at);
    if (next <= clock_type::now()) {
      if (until <= clock_type::now()) return;
      continue;
    }
    const auto wait = std::chrono::duration_cast<milliseconds>(next - clock_type::now()).count();
    pollfd p{fd_.get(), POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::max<long long>(wait, 1)));
    if (p.revents) read_available();
  }
}

void fuzz_session::send_message(const nlohmann::json& a) {
  const std::string payload = payload_bytes(a.at("payload"));
  const bool binary = a.value("binary", false);
  std::size_t frag = a.at("fragmentSize").is_null() ? 0 : a["fragmentSize"].get<std::size_t>();
  // 10.1.1: the fuzzer's own autoFragmentSize (catalog 10.x group notes).
  if (frag == 0 && group_ == "10") frag = 1300;
  if (frag == 0 || payload.size() <= frag) {
    queue(frame(binary ? 2 : 1, payload, true, 0));
    return;
  }
  for (std::size_t i = 0; i < payload.size(); i += frag) {
    const std::size_t j = std::min(payload.size(), i + frag);
    queue(frame(i == 0 ? (binary ? 2 : 1) : 0, std::string_view(payload).substr(i, j - i),
                j == payload.size(), 0));
  }
}

void fuzz_session::run_actions() {
  for (const auto& a : case_.at("actions")) {
    if (tcp_closed_) break;
    const std::string op = a.at("op").get<std::string>();
    if (op == "frame") {
      std::string body = payload_bytes(a.at("payload"));
      if (!a.at("payload_len").is_null()) {
        const auto n = a["payload_len"].get<std::size_t>();
        std::string p;
        p.reserve(n);
        while (p.size() < n)
          p.append(body, 0, std::min(body.size(), n - p.size()));
        body.swap(p);
      }
      const auto opcode = a.at("opcode").get<std::uint8_t>();
      const std::string f = frame(opcode, body, a.at("fin").get<bool>(), a.at("rsv").get<int>());
      if (limits_case_) {
        limits_binary_ = opcode == 2;
        limits_len_ = body.size();
        limits_payload_ = body;
      }
      const std::size_t chop = a.at("chopsize").is_null() ? 0 : a["chopsize"].get<std::size_t>();
      if (chop > 0) {
        flush();
        for (std::size_t i = 0; i < f.size() && !tcp_closed_; i += chop)
          write_now(std::string_view(f).substr(i, chop));
      } else if (a.value("sync", false)) {
        flush();
        write_now(f);
        service(clock_type::now() + milliseconds(2), false);  // a frame per read
      } else {
        queue(f);
      }
    } else if (op == "message") {
      send_message(a);
      if (limits_case_) {
        limits_binary_ = a.value("binary", false);
        limits_payload_ = payload_bytes(a.at("payload"));
        limits_len_ = limits_payload_.size();
      }
    } else if (op == "close" || op == "closeframe") {
      std::optional<std::uint16_t> code;
      if (!a.at("code").is_null()) code = a["code"].get<std::uint16_t>();
      std::string reason;
      if (a.at("reason").is_object()) reason = payload_bytes(a["reason"]);
      if (a.at("reason").is_string()) reason = a["reason"].get<std::string>();
      send_close(code, reason);
    } else if (op == "killAfter") {
      add_timer(a.at("delay").get<double>(), 0);
    } else if (op == "closeAfter") {
      add_timer(a.at("delay").get<double>(), 1);
    } else if (op == "wait") {
      flush();
      const auto d = std::chrono::duration<double>(a.at("delay").get<double>());
      service(clock_type::now() + std::chrono::duration_cast<milliseconds>(d), true);
      if (state_ != state::open) break;  // the continuation runs only while OPEN
      if (a.at("tag").is_string())
        obs_.received.push_back({event::kind::timeout, a["tag"].get<std::string>(), false});
    } else if (op == "beginMessage") {
      // 6.4.3/6.4.4: one FIN text frame whose payload goes out in parts (catalog section 2).
    } else if (op == "beginMessageFrame") {
      const auto n = a.at("length").get<std::uint64_t>();
      std::string head = frame(1, std::string(n, '\0'), true, 0);
      head.resize(head.size() - n);
      std::memcpy(&stream_key_, head.data() + head.size() - 4, 4);
      stream_offset_ = 0;
      queue(head);
    } else if (op == "frameData") {
      std::string data = payload_bytes(a.at("payload"));
      mask(data, stream_key_, stream_offset_);
      stream_offset_ += data.size();
      queue(data);
    } else if (op == "endMessage") {
      // The frame carried FIN: nothing more to send.
    }
  }
  flush();
}

verdict fuzz_session::run() {
  const auto start = clock_type::now();
  const auto& extra = case_.at("extra");
  const bool compression = group_ == "12" || group_ == "13";
  std::string offer;
  if (compression)
    for (const auto& o : extra.at("client_offers"))
      offer += (offer.empty() ? "" : ", ") + o.get<std::string>();
  std::string accepted;
  if (open_connection(offer, &accepted)) {
    if (compression) {
      if (lower(accepted).find("permessage-deflate") == std::string::npos) {
        obs_.decided_behavior = "UNIMPLEMENTED";
        obs_.decided_reason = "permessage-deflate not negotiated (offer: " + offer + ")";
      } else {
        obs_.violation = "permessage-deflate was negotiated (" + accepted +
                         "): this harness does not implement the compressed echo yet";
      }
      send_close(1000, {});
    } else {
      limits_case_ = group_ == "9";
      if (limits_case_ && extra.contains("COUNT")) {
        roundtrip_left_ = extra["COUNT"].get<int>();
        roundtrip_ = true;
      }
      run_actions();
    }
    // Until the connection ends: the case's timers bound it; 5 s past the last one at most.
    auto until = clock_type::now() + std::chrono::seconds(5);
    for (const auto& t : timers_)
      until = std::max(until, t.at + std::chrono::seconds(5));
    service(until, false);
    if (!tcp_closed_) {
      obs_.not_clean_why = "the connection was still open when the case ended";
      drop();
    }
  }
  if (limits_case_ && obs_.decided_behavior.empty()) {
    obs_.decided_behavior = "FAILED";
    obs_.decided_reason = "no echo of the right type and length before the case timeout";
  }
  verdict v = judge(case_, obs_);
  v.duration_ms = std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
  return v;
}

}  // namespace

verdict play_case(const nbio::address& server, const nlohmann::json& c, const fuzzer_options& o) {
  fuzz_session s(server, c, o);
  return s.run();
}

}  // namespace nbio_test::autobahn
