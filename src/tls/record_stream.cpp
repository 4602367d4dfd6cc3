// Private. A handed-off connection's data path on nbio's record layer (record_stream.hpp).
#include "tls/record_stream.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "engine/transport_conn.hpp"
#include "nbio/tls/error.hpp"
#include "sys/socket.hpp"

namespace nbio::tls::detail::record_stream {

using nbio::detail::transport_conn;

namespace {

constexpr std::uint8_t key_update_type = 24;  // HandshakeType key_update

// --- the sweep: cipher contexts only while a connection moves bytes ---------------------------

// This thread's connections that hold cipher contexts. The sweep, every second or so while the
// list is not empty, releases those of connections that did not use them since the last one:
// an idle connection keeps its secrets, not its contexts (~1 KB each).
std::vector<connection*>& listed() {
  thread_local std::vector<connection*> list;
  return list;
}

void unlist(std::vector<connection*>& list, connection& t) noexcept {
  const std::size_t i = t.listed - 1;
  list[i] = list.back();
  list[i]->listed = static_cast<std::uint32_t>(i + 1);
  list.pop_back();
  t.listed = 0;
}

// The connection is about to use its contexts.
void touch(conn& c, connection& t) {
  t.flags |= connection::used;
  if (t.listed || c.is_blocking()) return;  // a blocking-mode thread keeps its one connection's
  std::vector<connection*>& list = listed();
  try {
    list.push_back(&t);
  } catch (...) {
    return;  // unlisted: its contexts stay until it closes
  }
  t.listed = static_cast<std::uint32_t>(list.size());
  transport_conn::sweep_later(c);
}

// --- errors -----------------------------------------------------------------------------------

std::error_code cause_of(record_error e) {
  switch (e) {
    case record_error::bad_record_mac:
      return reason_code(SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC);
    case record_error::record_overflow:
      return reason_code(SSL_R_ENCRYPTED_LENGTH_TOO_LONG);
    case record_error::unexpected_message:
      return reason_code(SSL_R_UNEXPECTED_RECORD);
    case record_error::decode_error:
      return reason_code(SSL_R_BAD_PACKET);
    case record_error::sequence_exhausted:
      return make_error_code(errc::sequence_exhausted);
    case record_error::ok:
    case record_error::internal_error:
      break;
  }
  return make_error_code(errc::library_error);
}

// One alert record, sealed: through the write path, or when `best_effort` (the connection is
// closing) straight to the socket if nothing is queued before it. The last record we seal.
void send_alert(conn& c, connection& t, std::uint8_t level, std::uint8_t description,
                bool best_effort) {
  if (t.flags & connection::close_sent) return;
  t.flags |= connection::close_sent;
  touch(c, t);
  const char body[2] = {static_cast<char>(level), static_cast<char>(description)};
  char record[sizeof body + record_overhead];
  std::size_t n = 0;
  if (t.tx.seal(content::alert, {body, sizeof body}, record, n) != record_error::ok) return;
  if (!best_effort) {
    transport_conn::raw_write(c, {record, n});
  } else if (c.queued_bytes() == 0) {
    std::error_code ignored;
    nbio::sys::send(c.native_handle(), record, n, ignored);
  }
}

// A fatal error: its alert, after what is queued (an echo in flight), then the connection
// closes with `cause`; it reads nothing more meanwhile. Always false.
bool fatal(conn& c, connection& t, std::uint8_t description, std::error_code cause) {
  send_alert(c, t, 2, description, false);
  transport_conn::fail_after_flush(c, cause);
  return false;
}

bool fatal(conn& c, connection& t, record_error e) {
  return fatal(c, t, alert_for(e), cause_of(e));
}

// --- reading ----------------------------------------------------------------------------------

// An alert from the peer (RFC 8446 §6): close_notify ends its stream, user_canceled announces
// one, anything else is an error that ends the connection (its level is not looked at).
bool on_alert(conn& c, connection& t, std::string_view body) {
  if (body.size() != 2) return fatal(c, t, decode_error_alert, reason_code(SSL_R_INVALID_ALERT));
  const auto description = static_cast<std::uint8_t>(body[1]);
  if (description == close_notify_alert) {
    transport_conn::end_of_stream(c);
    return true;
  }
  if (description == user_canceled_alert) return true;
  t.flags |= connection::close_sent;  // no alert answers an alert
  transport_conn::fail(c, reason_code(SSL_AD_REASON_OFFSET + description));
  return false;
}

// A post-handshake message, possibly in pieces across records. A server gets only KeyUpdate
// (RFC 8446 §4.6.3): 4 bytes of header, 1 of body, and the last thing in its record (it
// precedes a key change, §5.1).
bool on_handshake(conn& c, connection& t, std::string_view body) {
  if (body.empty())
    return fatal(c, t, unexpected_message_alert, reason_code(SSL_R_UNEXPECTED_MESSAGE));
  while (t.message_have < sizeof t.message && !body.empty()) {
    t.message[t.message_have++] = static_cast<std::uint8_t>(body.front());
    body.remove_prefix(1);
  }
  if (t.message[0] != key_update_type)
    return fatal(c, t, unexpected_message_alert, reason_code(SSL_R_UNEXPECTED_MESSAGE));
  if (t.message_have < sizeof t.message) return true;  // the rest in the next record
  if (t.message[1] != 0 || t.message[2] != 0 || t.message[3] != 1)
    return fatal(c, t, decode_error_alert, reason_code(SSL_R_BAD_LENGTH));
  if (body.empty()) return true;  // its body in the next record
  const auto request = static_cast<std::uint8_t>(body.front());
  body.remove_prefix(1);
  t.message_have = 0;
  if (request > 1) return fatal(c, t, illegal_parameter_alert, reason_code(SSL_R_BAD_KEY_UPDATE));
  if (!body.empty())
    return fatal(c, t, unexpected_message_alert, reason_code(SSL_R_NOT_ON_RECORD_BOUNDARY));
  if (++t.quiet_records > max_quiet_records)
    return fatal(c, t, unexpected_message_alert, reason_code(SSL_R_TOO_MANY_KEY_UPDATES));
  if (!t.rx.update())
    return fatal(c, t, internal_error_alert, make_error_code(errc::library_error));
  if (request == 1) t.flags |= connection::owe_key_update;
  return true;
}

// One whole record: opened in place, then by its inner type. False: the connection failed.
bool on_record(conn& c, connection& t, std::span<char> record) {
  touch(c, t);
  content type{};
  std::string_view body;
  if (record_error e = t.rx.open(record, type, body); e != record_error::ok) return fatal(c, t, e);
  // Nothing may come between the pieces of a handshake message (RFC 8446 §5.1).
  if (t.message_have && type != content::handshake)
    return fatal(c, t, unexpected_message_alert, reason_code(SSL_R_UNEXPECTED_RECORD));
  switch (type) {
    case content::application_data:
      if (body.empty()) {
        if (++t.quiet_records > max_quiet_records)
          return fatal(c, t, unexpected_message_alert, reason_code(SSL_R_RECORD_TOO_SMALL));
        return true;
      }
      t.quiet_records = 0;
      transport_conn::deliver(c, body);
      return true;
    case content::alert:
      return on_alert(c, t, body);
    case content::handshake:
      return on_handshake(c, t, body);
    case content::change_cipher_spec:
      break;
  }
  return fatal(c, t, unexpected_message_alert, reason_code(SSL_R_UNEXPECTED_RECORD));
}

// The size of the record at the front of `bytes` (0 while its header is incomplete). False: the
// header is not a TLS 1.3 record's, and the connection failed.
bool measure(conn& c, connection& t, std::span<const char> bytes, std::size_t& total) {
  const record_error e = record_size({bytes.data(), bytes.size()}, total);
  if (e == record_error::ok) return true;
  if (e == record_error::decode_error && (bytes[1] != 3 || bytes[2] != 3))
    return fatal(c, t, alert_for(e), reason_code(SSL_R_WRONG_VERSION_NUMBER));
  return fatal(c, t, e);
}

// --- writing ----------------------------------------------------------------------------------

// Where records are sealed before they go to the socket: a buffer the caller provides. What it
// writes out is final: a write that fails after records were sealed closes the connection (the
// peer would never see those sequence numbers), as OpenSSL's path does.
class sealer {
 public:
  sealer(conn& c, char* data, std::size_t capacity) : c_(c), data_(data), capacity_(capacity) {}
  sealer(const sealer&) = delete;
  sealer& operator=(const sealer&) = delete;

  // Room for a record of `plaintext` bytes at the end: what is sealed so far goes out first
  // when it is short of it.
  std::error_code make_room(std::size_t plaintext) {
    if (size_ + plaintext + record_overhead <= capacity_) return {};
    return flush();
  }
  char* end() noexcept { return data_ + size_; }
  void grew(std::size_t n) noexcept { size_ += n; }
  std::error_code flush() {
    if (size_ == 0) return {};
    const std::string_view bytes(data_, size_);
    size_ = 0;
    std::error_code ec = transport_conn::raw_write(c_, bytes);
    if (ec && c_.is_open()) transport_conn::fail(c_, ec);  // e.g. a rejected write: sealed already
    return ec;
  }

 private:
  conn& c_;
  char* data_;
  std::size_t capacity_;
  std::size_t size_ = 0;
};

std::error_code seal(conn& c, connection& t, sealer& out, content type, std::string_view plain) {
  if (auto ec = out.make_room(plain.size())) return ec;
  std::size_t n = 0;
  if (record_error e = t.tx.seal(type, plain, out.end(), n); e != record_error::ok) {
    const std::error_code ec = cause_of(e);
    out.flush();  // the records sealed before it go first: the alert follows them
    fatal(c, t, alert_for(e), ec);
    return ec;
  }
  out.grew(n);
  return {};
}

// Our KeyUpdate (not requesting the peer's), then our next key from sequence 0.
std::error_code key_update(conn& c, connection& t, sealer& out) {
  static constexpr char message[5] = {key_update_type, 0, 0, 1, 0};
  if (auto ec = seal(c, t, out, content::handshake, {message, sizeof message})) return ec;
  t.flags &= static_cast<std::uint8_t>(~connection::owe_key_update);
  if (!t.tx.update()) {
    const std::error_code ec = make_error_code(errc::library_error);
    out.flush();
    t.flags |= connection::close_sent;  // the peer has the new key: nothing sealed under the old
    transport_conn::fail(c, ec);
    return ec;
  }
  return {};
}

std::error_code write_records(conn& c, connection& t, std::string_view plain, sealer& out) {
  while (!plain.empty()) {
    // Before a data record: the KeyUpdate the peer asked for, or ours when this key sealed
    // its share.
    if ((t.flags & connection::owe_key_update) || t.tx.sequence() >= records_per_key)
      if (auto ec = key_update(c, t, out)) return ec;
    const std::size_t n = std::min(plain.size(), max_plaintext);
    if (auto ec = seal(c, t, out, content::application_data, plain.substr(0, n))) return ec;
    plain.remove_prefix(n);
  }
  return out.flush();
}

}  // namespace

std::size_t input(conn& c, connection& t, std::span<char> bytes) {
  std::size_t used = 0;
  while (used < bytes.size() && !transport_conn::stopped_reading(c)) {
    if (t.partial) {  // the rest of a record that came in pieces
      const std::size_t take =
          std::min<std::size_t>(t.partial_size - t.partial_have, bytes.size() - used);
      std::memcpy(t.partial + t.partial_have, bytes.data() + used, take);
      t.partial_have = static_cast<std::uint16_t>(t.partial_have + take);
      used += take;
      if (t.partial_have < t.partial_size) break;
      if (t.partial_size == record_header_size) {  // its header is complete: now its length
        std::size_t total = 0;
        if (!measure(c, t, {t.partial, record_header_size}, total)) return bytes.size();
        char* grown = static_cast<char*>(std::realloc(t.partial, total));
        if (!grown) {
          fatal(c, t, internal_error_alert, std::make_error_code(std::errc::not_enough_memory));
          return bytes.size();
        }
        t.partial = grown;
        t.partial_size = static_cast<std::uint16_t>(total);
        continue;
      }
      char* record = t.partial;
      const std::size_t total = t.partial_size;
      t.partial = nullptr;
      t.partial_have = t.partial_size = 0;
      const bool ok = on_record(c, t, {record, total});
      std::free(record);
      if (!ok) return bytes.size();
      continue;
    }
    const std::span<char> rest = bytes.subspan(used);
    std::size_t total = 0;
    if (!measure(c, t, rest, total)) return bytes.size();
    if (total == 0 || rest.size() < total) {
      // Incomplete: kept, and only until it is whole (an idle connection holds no buffer).
      const std::size_t size = total ? total : record_header_size;
      t.partial = static_cast<char*>(std::malloc(size));
      if (!t.partial) {
        fatal(c, t, internal_error_alert, std::make_error_code(std::errc::not_enough_memory));
        return bytes.size();
      }
      std::memcpy(t.partial, rest.data(), rest.size());
      t.partial_have = static_cast<std::uint16_t>(rest.size());
      t.partial_size = static_cast<std::uint16_t>(size);
      return bytes.size();
    }
    used += total;
    if (!on_record(c, t, rest.first(total))) return bytes.size();
  }
  return used;
}

std::error_code write(conn& c, connection& t, std::string_view plain) {
  if (t.flags & connection::close_sent) return nbio::errc::not_connected;
  touch(c, t);
  // A loop thread seals into its buffer of four records (allocated once). A blocking-mode
  // thread (its own connection's), or a write from inside another's, into one record on the
  // stack: no allocation per connection or per write.
  thread_local std::unique_ptr<char[]> buffer;
  thread_local bool busy = false;
  constexpr std::size_t loop_capacity = 4 * (max_plaintext + record_overhead);
  if (!c.is_blocking() && !busy) {
    if (!buffer) buffer.reset(new (std::nothrow) char[loop_capacity]);
    if (buffer) {
      busy = true;
      sealer out(c, buffer.get(), loop_capacity);
      const std::error_code ec = write_records(c, t, plain, out);
      busy = false;
      return ec;
    }
  }
  char record[max_plaintext + record_overhead];
  sealer out(c, record, sizeof record);
  return write_records(c, t, plain, out);
}

void close_notify(conn& c, connection& t, bool best_effort) {
  send_alert(c, t, 1, close_notify_alert, best_effort);
}

void forget(connection& t) noexcept {
  if (t.listed) unlist(listed(), t);
}

bool sweep() noexcept {
  std::vector<connection*>& list = listed();
  for (std::size_t i = 0; i < list.size();) {
    connection& t = *list[i];
    if (t.flags & connection::used) {
      t.flags &= static_cast<std::uint8_t>(~connection::used);
      ++i;
      continue;
    }
    t.tx.release();
    t.rx.release();
    unlist(list, t);
    released.fetch_add(1, std::memory_order_relaxed);  // the last entry moves to i: looked at next
  }
  if (list.empty()) list.shrink_to_fit();
  return !list.empty();
}

}  // namespace nbio::tls::detail::record_stream
