// Conformance. One Autobahn case on one connection, either role (autobahn_session.hpp): the
// case's actions, the testee's frames decoded by hand, the fuzzer's timers, what happened
// handed to the judge (autobahn_judge.hpp).
#include "autobahn_session.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace nbio_test::autobahn {

using std::chrono::milliseconds;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

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

case_session::case_session(fuzzer_role role, const nlohmann::json& c, const session_options& o)
    : role_(role), case_(c), opts_(o), rng_(std::random_device{}()), start_(clock_type::now()) {
  id_ = c.at("id").get<std::string>();
  group_ = group_of(id_);
  obs_.role = role;
}

void case_session::attach(unique_fd fd) {
  fd_ = std::move(fd);
  tcp_closed_ = !fd_;
  if (!fd_) return;
  const int one = 1;
  ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd_.get(), F_SETFL, ::fcntl(fd_.get(), F_GETFL) | O_NONBLOCK);
  if (!opts_.tls) return;
  // OpenSSL's socket BIO writes with write(2): a testee that has closed would raise SIGPIPE.
  static const bool sigpipe_ignored = (std::signal(SIGPIPE, SIG_IGN), true);
  (void)sigpipe_ignored;
  ssl_ = SSL_new(opts_.tls);
  SSL_set_fd(ssl_, fd_.get());
  // Written chunks may go out in several records and a partial write is progress, as send().
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (role_ == fuzzer_role::client) {
    SSL_set_connect_state(ssl_);
  } else {
    SSL_set_accept_state(ssl_);
  }
  const auto deadline = clock_type::now() + std::chrono::seconds(5);
  for (;;) {
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) return;
    const int e = SSL_get_error(ssl_, r);
    if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || clock_type::now() > deadline) {
      release_socket();
      tcp_closed_ = true;
      return;
    }
    pollfd p{fd_.get(), static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    ::poll(&p, 1, 50);
  }
}

void case_session::release_socket() {
  if (ssl_) {
    SSL_shutdown(ssl_);  // close_notify, best effort (non-blocking)
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  fd_.reset();
}

ssize_t case_session::receive(char* buf, std::size_t len) {
  if (!ssl_) return ::recv(fd_.get(), buf, len, 0);
  const int n = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(len, 1u << 30)));
  if (n > 0) return n;
  switch (SSL_get_error(ssl_, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:  // close_notify: the testee closed its side
      return 0;
    default:  // a FIN without close_notify, a reset, a TLS alert
      if (errno != ECONNRESET) errno = EPIPE;
      return -1;
  }
}

ssize_t case_session::transmit(std::string_view bytes) {
  if (!ssl_) return ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  const int n = SSL_write(ssl_, bytes.data(),
                          static_cast<int>(std::min<std::size_t>(bytes.size(), 1u << 30)));
  if (n > 0) return n;
  const int e = SSL_get_error(ssl_, n);
  errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : EPIPE;
  return -1;
}

std::optional<std::string> case_session::read_head(milliseconds timeout) {
  const auto deadline = clock_type::now() + timeout;
  std::size_t end = std::string::npos;
  while ((end = in_.find("\r\n\r\n")) == std::string::npos && !tcp_closed_ &&
         clock_type::now() < deadline) {
    pollfd p{fd_.get(), POLLIN, 0};
    ::poll(&p, 1, 50);
    read_available();
  }
  if (end == std::string::npos) return std::nullopt;
  std::string head = in_.substr(0, end + 2);
  in_.erase(0, end + 4);
  return head;
}

std::string case_session::testee_sent(std::string_view what) const {
  std::string out = "the ";
  out.append(testee_name(role_)).append(" sent ").append(what);
  return out;
}

void case_session::close_tcp_as_server() {
  flush();
  read_available();  // unread bytes would turn our FIN into a RST
  obs_.dropped_by_me = !tcp_closed_;
  tcp_closed_ = true;
  release_socket();
  state_ = state::closed;
}

void case_session::mask(std::string& data, std::uint32_t key, std::uint64_t offset) {
  std::array<unsigned char, 4> k{};
  std::memcpy(k.data(), &key, 4);
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>(static_cast<unsigned char>(data[i]) ^ k[(offset + i) % 4]);
}

std::string case_session::frame(std::uint8_t opcode, std::string_view payload, bool fin, int rsv) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)));
  const std::uint64_t n = payload.size();
  const int mask_bit = masks() ? 0x80 : 0;
  if (n < 126) {
    f.push_back(static_cast<char>(mask_bit | n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i)
      f.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  if (!masks()) return f.append(payload);
  const std::uint32_t key = new_key();
  f.append(reinterpret_cast<const char*>(&key), 4);
  std::string body(payload);
  mask(body, key, 0);
  return f + body;
}

void case_session::read_available() {
  if (tcp_closed_) return;
  char buf[256 * 1024];
  for (;;) {
    const ssize_t n = receive(buf, sizeof buf);
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

void case_session::write_now(std::string_view bytes) {
  const auto deadline = clock_type::now() + std::chrono::seconds(30);
  while (!bytes.empty() && !tcp_closed_ && fd_) {
    const ssize_t n = transmit(bytes);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      // The testee is gone (EPIPE, ECONNRESET): what it sent before is still read.
      read_available();
      tcp_closed_ = true;
      return;
    }
    if (clock_type::now() > deadline) {
      violation(std::string("the ") + testee_name(role_) + " stopped reading for 30 s");
      return;
    }
    // Read while the testee cannot take more, so neither side waits on a full buffer.
    pollfd p{fd_.get(), POLLIN | POLLOUT, 0};
    ::poll(&p, 1, 100);
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) read_available();
  }
}

void case_session::flush() {
  if (out_.empty()) return;
  std::string bytes;
  bytes.swap(out_);
  write_now(bytes);
}

void case_session::drop() {
  if (!tcp_closed_) {
    obs_.dropped_by_me = true;
    tcp_closed_ = true;
  }
  release_socket();
  state_ = state::closed;
}

void case_session::violation(std::string why) {
  if (obs_.violation.empty()) obs_.violation = std::move(why);
  if (state_ == state::open) obs_.closed_by_me = true;
  drop();
}

void case_session::add_timer(double seconds, timer_kind kind) {
  auto d = std::chrono::duration_cast<milliseconds>(std::chrono::duration<double>(seconds));
  if (kind == timer_kind::kill || kind == timer_kind::close_after) d = std::min(d, opts_.max_timer);
  timers_.push_back({clock_type::now() + d, kind});
}

void case_session::send_close(std::optional<std::uint16_t> code, std::string_view reason) {
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
    add_timer(opts_.close_handshake_timeout.count() / 1000.0, timer_kind::close_handshake);
  }
}

void case_session::finish_when_done() {
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

void case_session::on_message(std::string payload, bool binary) {
  if (deflate_case_) {
    // 12.x/13.x: type, length and content (Autobahn compares a SHA-1 of it).
    if (binary == corpus_text_ || payload != deflate_sent_) {
      obs_.decided_behavior = "FAILED";
      obs_.decided_reason = std::string("echo differs: got ") + (binary ? "binary" : "text") +
                            ", " + std::to_string(payload.size()) + " bytes for " +
                            std::to_string(deflate_sent_.size());
      send_close(1000, {});
      return;
    }
    if (--deflate_left_ > 0) return send_next_deflate();
    obs_.decided_behavior = "OK";
    obs_.decided_reason.clear();
    send_close(1000, {});
    return;
  }
  if (!limits_case_) {
    obs_.received.push_back({event::kind::message, std::move(payload), binary});
    finish_when_done();
    return;
  }
  // 9.x: the type and the length decide (Autobahn's own check); the content is compared too,
  // which Autobahn leaves as a FIXME: an echo that differs is a testee bug all the same.
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

void case_session::on_control(std::uint8_t opcode, std::string payload) {
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
    violation(std::string("the ") + testee_name(role_) + "'s close frame has a 1-byte payload");
    return;
  }
  if (payload.size() >= 2)
    obs_.remote_close_code =
        (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
  if (state_ == state::open) {
    // The testee started the close: answer it (Autobahn answers 1000), handshake done.
    obs_.closed_by_me = false;
    flush();
    write_now(frame(0x8, std::string("\x03\xe8", 2), true, 0));
    state_ = state::closing;
  }
  obs_.was_clean = true;
  if (role_ == fuzzer_role::server) return close_tcp_as_server();
  add_timer(opts_.server_drop_timeout.count() / 1000.0, timer_kind::server_drop);
}

void case_session::parse_input() {
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
    // RFC 6455 5.1: a client masks every frame, a server none.
    if (masked && masks()) return violation(testee_sent("a masked frame"));
    if (!masked && !masks()) return violation(testee_sent("an unmasked frame"));
    // RSV1 marks a compressed message's first frame once permessage-deflate is agreed.
    const bool compressed = rsv == 4 && deflate_ && op != 0 && op < 8;
    if (rsv != 0 && !compressed) return violation(testee_sent("a frame with RSV bits set"));
    if ((op >= 3 && op <= 7) || op > 0xa)
      return violation(testee_sent("reserved opcode " + std::to_string(op)));
    if (op >= 8 && (!fin || len > 125))
      return violation(testee_sent("a fragmented or oversized control frame"));
    if (len > (std::uint64_t{1} << 40)) return violation(testee_sent("an absurd length"));
    const std::size_t key_len = masked ? 4 : 0;
    if (avail < head + key_len + len) break;
    std::uint32_t key = 0;
    if (masked) std::memcpy(&key, in_.data() + pos + head, 4);
    head += key_len;
    std::string payload = in_.substr(pos + head, static_cast<std::size_t>(len));
    if (masked) mask(payload, key, 0);
    pos += head + static_cast<std::size_t>(len);
    if (op >= 8) {
      on_control(op, std::move(payload));
      continue;
    }
    if (op == 0 && !in_message_) return violation(testee_sent("a stray continuation"));
    if (op != 0 && in_message_) return violation(testee_sent("two messages interleaved"));
    if (op != 0) {
      in_message_ = true;
      message_binary_ = op == 2;
      message_compressed_ = compressed;
      message_.clear();
    }
    message_ += payload;
    if (fin) {
      in_message_ = false;
      std::string whole = std::move(message_);
      message_.clear();
      if (message_compressed_) {
        std::string inflated;
        if (!deflate_->decompress(whole, &inflated))
          return violation(testee_sent("a compressed message that does not inflate"));
        whole.swap(inflated);
      }
      on_message(std::move(whole), message_binary_);
    }
  }
  if (obs_.got_close || !obs_.violation.empty()) {
    in_.clear();  // nothing after a close frame counts
  } else {
    in_.erase(0, pos);
  }
}

void case_session::service(clock_type::time_point until, bool stop_unless_open) {
  for (;;) {
    parse_input();
    // Due timers.
    const auto now = clock_type::now();
    for (std::size_t i = 0; i < timers_.size();) {
      if (timers_[i].at > now) {
        ++i;
        continue;
      }
      const timer_kind kind = timers_[i].kind;
      timers_.erase(timers_.begin() + static_cast<std::ptrdiff_t>(i));
      if (tcp_closed_) continue;
      if (kind == timer_kind::kill && state_ == state::open) {
        send_close(1001, "Going Away");  // killAfter: the fuzzer fails the connection
      } else if (kind == timer_kind::close_after && state_ == state::open) {
        send_close(1000, {});  // closeAfter
      } else if (kind == timer_kind::close_handshake && !obs_.got_close) {
        obs_.not_clean_why = "no close frame from the ";
        obs_.not_clean_why.append(testee_name(role_))
            .append(" within the closing handshake timeout");
        drop();
      } else if (kind == timer_kind::server_drop) {
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

void case_session::send_message(const nlohmann::json& a) {
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

void case_session::run_actions() {
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
      add_timer(a.at("delay").get<double>(), timer_kind::kill);
    } else if (op == "closeAfter") {
      add_timer(a.at("delay").get<double>(), timer_kind::close_after);
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
      if (masks()) std::memcpy(&stream_key_, head.data() + head.size() - 4, 4);
      stream_offset_ = 0;
      queue(head);
    } else if (op == "frameData") {
      std::string data = payload_bytes(a.at("payload"));
      if (masks()) mask(data, stream_key_, stream_offset_);
      stream_offset_ += data.size();
      queue(data);
    } else if (op == "endMessage") {
      // The frame carried FIN: nothing more to send.
    }
  }
  flush();
}

verdict case_session::run(const negotiated& n) {
  state_ = state::open;
  obs_.opened = true;
  const auto& extra = case_.at("extra");
  deflate_params dp;
  if ((group_ == "12" || group_ == "13") && parse_deflate_answer(n.extensions, &dp)) {
    start_deflate_echo(dp);
  } else if (group_ == "12" || group_ == "13") {
    obs_.decided_behavior = "UNIMPLEMENTED";
    obs_.decided_reason = "permessage-deflate not negotiated (offer: " +
                          (n.offer.empty() ? std::string("none") : n.offer) + ")";
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
  if (limits_case_ && obs_.decided_behavior.empty()) {
    obs_.decided_behavior = "FAILED";
    obs_.decided_reason = "no echo of the right type and length before the case timeout";
  }
  return finish();
}

void case_session::start_deflate_echo(const deflate_params& p) {
  const auto& extra = case_.at("extra");
  deflate_ = std::make_unique<deflate_codec>(p, role_ == fuzzer_role::client);
  deflate_case_ = true;
  corpus_ = corpus(extra.at("testdata").get<std::string>(), &corpus_text_);
  deflate_len_ = extra.at("LEN").get<std::size_t>();
  autofrag_ = extra.value("AUTOFRAGSIZE", std::size_t{0});
  deflate_left_ = std::min(extra.at("COUNT").get<int>(), opts_.max_deflate_messages);
  add_timer(extra.at("WAITSECS").get<double>(), timer_kind::close_after);
  obs_.decided_behavior = "FAILED";
  obs_.decided_reason = "not every echo arrived before the case timeout";
  send_next_deflate();
}

void case_session::send_next_deflate() {
  // Consecutive LEN-byte windows over the corpus, wrapping (catalog 12.x group notes).
  deflate_sent_.clear();
  while (deflate_sent_.size() < deflate_len_) {
    const std::size_t n =
        std::min(deflate_len_ - deflate_sent_.size(), corpus_.size() - corpus_pos_);
    deflate_sent_.append(corpus_, corpus_pos_, n);
    corpus_pos_ = (corpus_pos_ + n) % corpus_.size();
  }
  const std::string wire = deflate_->compress(deflate_sent_);
  const std::uint8_t op = corpus_text_ ? 1 : 2;
  if (autofrag_ == 0 || wire.size() <= autofrag_) return write_now(frame(op, wire, true, 4));
  std::string frames;
  for (std::size_t i = 0; i < wire.size(); i += autofrag_) {
    const std::size_t j = std::min(wire.size(), i + autofrag_);
    frames += frame(i == 0 ? op : 0, std::string_view(wire).substr(i, j - i), j == wire.size(),
                    i == 0 ? 4 : 0);
  }
  write_now(frames);
}

verdict case_session::not_opened(std::string_view why) {
  drop();
  verdict v = finish();
  if (!why.empty()) v.reason.append(": ").append(why);
  return v;
}

verdict case_session::finish() {
  verdict v = judge(case_, obs_);
  v.duration_ms = std::chrono::duration<double, std::milli>(clock_type::now() - start_).count();
  return v;
}

}  // namespace nbio_test::autobahn
