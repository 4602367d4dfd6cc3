// Private. response_writer: the head, whole and streamed bodies; response_recorder.
#include "nbio/http/response_writer.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <string>

#include "http/date.hpp"
#include "nbio/engine/upgrade_target.hpp"
#include "nbio/http/error.hpp"
#include "nbio/http/parser.hpp"

namespace nbio::http {
namespace {

// Bodies up to this size go out in the same write as the head (one copy, one syscall); larger
// ones in a second write of their own (no copy of the body).
constexpr std::size_t coalesce_limit = 16 * 1024;
// A writer keeps its buffers between requests, but not a large one: a 10 MiB response would
// otherwise pin 10 MiB per loop.
constexpr std::size_t keep_capacity = 64 * 1024;

void append_number(std::string& out, std::uint64_t n, int base = 10) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), n, base);
  out.append(buf, r.ptr);
}

}  // namespace

// --- deferred responses -------------------------------------------------------------------

// A deferred response's writer sends through this to its target.
struct deferred_response::state final : response_writer::sink {
  std::unique_ptr<deferred_target> target;
  response_writer writer{*this};
  bool finished = false;

  void send(std::string_view bytes) override { target->send(std::string(bytes)); }
  void send_file(int fd, std::uint64_t offset, std::uint64_t length) override {
    target->send_file(fd, offset, length);
  }
  bool client_connected() const noexcept override { return target->alive(); }
  void on_client_gone(std::function<void()> fn) override {
    if (cancel_set) return;
    cancel_set = true;
    target->on_cancel(std::move(fn));
  }
  bool cancel_set = false;
};

void deferred_target::send_file(int fd, std::uint64_t offset, std::uint64_t length) {
  // Through a sink that forwards to send(): the generic read-and-send.
  struct forward final : response_writer::sink {
    deferred_target* t;
    explicit forward(deferred_target* target) : t(target) {}
    void send(std::string_view bytes) override { t->send(std::string(bytes)); }
  } f(this);
  f.response_writer::sink::send_file(fd, offset, length);
}

deferred_response::deferred_response() noexcept = default;
deferred_response::deferred_response(std::unique_ptr<state> s) noexcept : s_(std::move(s)) {}
deferred_response::deferred_response(deferred_response&&) noexcept = default;

deferred_response& deferred_response::operator=(deferred_response&& o) noexcept {
  if (this != &o) {
    if (s_ && !s_->finished) {
      // Dropping an unfinished response by assignment: finish it as the destructor would.
      deferred_response dropped(std::move(s_));
    }
    s_ = std::move(o.s_);
  }
  return *this;
}

deferred_response::~deferred_response() {
  if (!s_ || s_->finished) return;
  try {
    if (!s_->writer.head_sent() && s_->writer.body_bytes() == 0 && s_->writer.status() == 0) {
      s_->writer.write_header(500);
      s_->writer.write("500 Internal Server Error: the response was dropped unfinished\n");
    }
    finish();
  } catch (...) {
    // A destructor does not throw; the target closes the connection when it is destroyed
    // unfinished.
  }
}

response_writer& deferred_response::writer() {
  if (!s_) throw std::logic_error("nbio::http::deferred_response: empty");
  return s_->writer;
}

void deferred_response::finish() {
  if (!s_ || s_->finished) return;
  s_->finished = true;
  s_->writer.finish();
  s_->target->done(s_->writer.closes_after());
}

bool deferred_response::client_connected() const noexcept {
  return s_ && s_->target->alive();
}

void deferred_response::on_client_gone(std::function<void()> fn) {
  if (s_) s_->on_client_gone(std::move(fn));
}

deferred_response response_writer::defer() {
  if (head_sent_ || finished_)
    throw std::logic_error("nbio::http::response_writer::defer: the response already started");
  std::unique_ptr<deferred_target> target = sink_->make_deferred_target();
  if (!target) throw std::logic_error("nbio::http::response_writer::defer: cannot defer here");
  auto s = std::make_unique<deferred_response::state>();
  s->target = std::move(target);
  response_writer& w = s->writer;
  w.begin(version_minor_, head_request_, !close_after_);
  for (std::size_t i = 0; i < field_count_; ++i)
    w.add_header(fields_[i].name, fields_[i].value);
  w.status_ = status_;
  w.body_.assign(body_);
  w.body_bytes_ = body_bytes_;
  w.file_fd_ = file_fd_;
  w.file_offset_ = file_offset_;
  w.file_length_ = file_length_;
  file_fd_ = -1;
  deferred_ = true;
  finished_ = true;  // the server's finish() leaves it alone
  body_.clear();
  return deferred_response(std::move(s));
}

void response_writer::hijack(const nbio::upgrade_target& to,
                             std::function<void(nbio::conn&)> init) {
  if (head_sent_ || finished_ || deferred_)
    throw std::logic_error("nbio::http::response_writer::hijack: the response already started");
  if (!sink_->can_hijack())
    throw std::logic_error(
        "nbio::http::response_writer::hijack: only from a handler running inline on the "
        "connection's thread");
  // The route did not carry the room its target needs (a wrapper dropped takeover_bytes, or
  // routes were added after the listener reserved): a 500 that says so, not a silent close.
  if (to.slot_bytes() > sink_->slot_capacity())
    throw std::logic_error("nbio::http::response_writer::hijack: the connection's slot holds " +
                           std::to_string(sink_->slot_capacity()) + " bytes, the target needs " +
                           std::to_string(to.slot_bytes()) +
                           " (give the route's http::handler its takeover_bytes)");
  hijack_to_ = &to;
  hijack_init_ = std::move(init);
  finished_ = true;  // the server's finish() sends nothing for it
  if (file_fd_ >= 0) ::close(file_fd_);
  file_fd_ = -1;
}

void response_writer::begin(int version_minor, bool head_request, bool keep_alive) noexcept {
  hijack_to_ = nullptr;
  hijack_init_ = nullptr;
  if (file_fd_ >= 0) ::close(file_fd_);  // a response dropped before finish()
  file_fd_ = -1;
  field_count_ = 0;
  body_.clear();
  body_bytes_ = 0;
  status_ = 0;
  version_minor_ = version_minor;
  head_request_ = head_request;
  close_after_ = !keep_alive;
  head_sent_ = false;
  chunked_ = false;
  finished_ = false;
  deferred_ = false;
}

void response_writer::sink::send_file(int fd, std::uint64_t offset, std::uint64_t length) {
  char buf[64 * 1024];
  while (length > 0) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length, sizeof(buf)));
    const ssize_t n = ::pread(fd, buf, want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the file shrank or failed: the response comes out short
    send(std::string_view(buf, static_cast<std::size_t>(n)));
    offset += static_cast<std::uint64_t>(n);
    length -= static_cast<std::uint64_t>(n);
  }
  ::close(fd);
}

std::error_code response_writer::send_file(int fd, std::uint64_t offset, std::uint64_t length) {
  if (head_sent_ || finished_ || body_bytes_ > 0 || file_fd_ >= 0)
    throw std::logic_error("nbio::http::response_writer::send_file: the body was started");
  const int status = status_ ? status_ : 200;
  const bool body = !head_request_ && status >= 200 && status != 204 && status != 304;
  int copy = -1;
  if (body && (copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
    return {errno, std::generic_category()};  // nothing changed: the handler may answer 500
  status_ = status;
  body_bytes_ = length;  // a HEAD response announces it
  if (!body) return {};
  file_fd_ = copy;
  file_offset_ = offset;
  file_length_ = length;
  return {};
}

response_writer::~response_writer() {
  if (file_fd_ >= 0) ::close(file_fd_);
}

bool response_writer::reset() noexcept {
  if (head_sent_) return false;
  if (file_fd_ >= 0) ::close(file_fd_);
  file_fd_ = -1;
  field_count_ = 0;
  body_.clear();
  body_bytes_ = 0;
  status_ = 0;
  return true;
}

std::size_t response_writer::find(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < field_count_; ++i)
    if (iequals(fields_[i].name, name)) return i;
  return field_count_;
}

void response_writer::set_header(std::string_view name, std::string_view value) {
  if (head_sent_) return;
  del_header(name);
  add_header(name, value);
}

void response_writer::add_header(std::string_view name, std::string_view value) {
  if (head_sent_) return;
  // A name that is not a token is dropped, and CR, LF and NUL in a value become spaces (as Go
  // does): a value taken from a request can never end the field or the head early
  // (response splitting).
  if (name.empty()) return;
  for (char ch : name) {
    const auto u = static_cast<unsigned char>(ch);
    const bool token = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                       std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
    if (!token) return;
  }
  if (field_count_ == fields_.size()) fields_.emplace_back();
  fields_[field_count_].name.assign(name);
  std::string& v = fields_[field_count_].value;
  v.assign(value);
  for (char& ch : v)
    if (ch == '\r' || ch == '\n' || ch == '\0') ch = ' ';
  ++field_count_;
}

void response_writer::del_header(std::string_view name) noexcept {
  if (head_sent_) return;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < field_count_; ++i) {
    if (iequals(fields_[i].name, name)) continue;
    if (kept != i) std::swap(fields_[kept], fields_[i]);
    ++kept;
  }
  field_count_ = kept;
}

std::string_view response_writer::get_header(std::string_view name) const noexcept {
  const std::size_t i = find(name);
  return i < field_count_ ? std::string_view(fields_[i].value) : std::string_view();
}

void response_writer::write_header(int status) noexcept {
  if (status_ == 0 && !head_sent_ && status >= 100 && status <= 999) status_ = status;
}

bool response_writer::body_allowed() const noexcept {
  const int s = status_ ? status_ : 200;
  return !head_request_ && s >= 200 && s != 204 && s != 304;
}

void response_writer::write(std::string_view data) {
  if (finished_) return;
  if (file_fd_ >= 0) throw std::logic_error("nbio::http::response_writer::write after send_file");
  if (status_ == 0) status_ = 200;
  body_bytes_ += data.size();
  if (body_allowed()) body_.append(data);
}

void response_writer::send_head(bool streamed) {
  if (status_ == 0) status_ = 200;
  out_.clear();
  // Always HTTP/1.1 (RFC 9110 6.2: a server sends its own highest minor version); keep-alive
  // for 1.0 clients follows their request.
  out_ += "HTTP/1.1 ";
  append_number(out_, static_cast<std::uint64_t>(status_));
  out_ += ' ';
  const char* reason = reason_phrase(status_);
  out_ += *reason ? reason : "Status";
  out_ += "\r\n";
  bool has_date = false, has_length = false, has_type = false, has_connection = false;
  for (std::size_t i = 0; i < field_count_; ++i) {
    const field& f = fields_[i];
    has_date |= iequals(f.name, "date");
    has_length |= iequals(f.name, "content-length");
    has_type |= iequals(f.name, "content-type");
    has_connection |= iequals(f.name, "connection");
    if (has_connection && iequals(f.name, "connection") && iequals(f.value, "close"))
      close_after_ = true;
    out_ += f.name;
    out_ += ": ";
    out_ += f.value;
    out_ += "\r\n";
  }
  if (!has_date) {
    out_ += "Date: ";
    out_ += detail::http_date_now();
    out_ += "\r\n";
  }
  const bool no_body_status = status_ < 200 || status_ == 204 || status_ == 304;
  if (!no_body_status) {
    if (streamed && !has_length && head_request_) {
      // HEAD: the head of a streamed GET says nothing about a length, and no chunk follows.
    } else if (streamed && !has_length) {
      if (version_minor_ == 1) {
        out_ += "Transfer-Encoding: chunked\r\n";
        chunked_ = true;
      } else {
        close_after_ = true;  // an HTTP/1.0 body without a length ends with the connection
      }
    } else if (!streamed && !has_length && !(head_request_ && body_bytes_ == 0)) {
      // A HEAD response announces the length the GET would have had, when the handler wrote it.
      out_ += "Content-Length: ";
      append_number(out_, head_request_ || file_fd_ >= 0 ? body_bytes_ : body_.size());
      out_ += "\r\n";
    }
    if (!has_type && (streamed || body_bytes_ > 0))
      out_ += "Content-Type: text/plain; charset=utf-8\r\n";
  }
  if (!has_connection) {
    if (close_after_)
      out_ += "Connection: close\r\n";
    else if (version_minor_ == 0)
      out_ += "Connection: keep-alive\r\n";
  }
  out_ += "\r\n";
  head_sent_ = true;
}

void response_writer::flush() {
  if (finished_) return;
  if (file_fd_ >= 0) throw std::logic_error("nbio::http::response_writer::flush after send_file");
  if (!head_sent_)
    send_head(true);
  else
    out_.clear();
  if (!body_.empty()) {
    if (chunked_) {
      append_number(out_, body_.size(), 16);
      out_ += "\r\n";
      out_ += body_;
      out_ += "\r\n";
    } else {
      out_ += body_;
    }
    body_.clear();
  }
  if (!out_.empty()) sink_->send(out_);
}

void response_writer::finish() {
  if (finished_) return;
  finished_ = true;
  if (!head_sent_ && file_fd_ >= 0) {
    send_head(false);
    sink_->send(out_);
    const int fd = file_fd_;
    file_fd_ = -1;
    sink_->send_file(fd, file_offset_, file_length_);
  } else if (!head_sent_) {
    send_head(false);
    if (body_.size() <= coalesce_limit) {
      out_ += body_;
      sink_->send(out_);
    } else {
      sink_->send(out_);
      sink_->send(body_);
    }
  } else {
    out_.clear();
    if (chunked_) {
      if (!body_.empty()) {
        append_number(out_, body_.size(), 16);
        out_ += "\r\n";
        out_ += body_;
        out_ += "\r\n";
      }
      out_ += "0\r\n\r\n";
    } else {
      out_ += body_;
    }
    if (!out_.empty()) sink_->send(out_);
  }
  body_.clear();
  if (body_.capacity() > keep_capacity) std::string().swap(body_);
  if (out_.capacity() > keep_capacity) std::string().swap(out_);
}

// --- response_recorder ------------------------------------------------------------------------

// The recorder's deferred responses append to the recording (any thread).
struct response_recorder::target final : deferred_target {
  response_recorder* r;
  explicit target(response_recorder* rec) : r(rec) {}
  void send(std::string bytes) override {
    std::lock_guard lock(r->mutex_);
    r->raw_ += bytes;
  }
  void done(bool) override {}
  bool alive() const noexcept override { return true; }
};

std::unique_ptr<deferred_target> response_recorder::make_deferred_target() {
  return std::make_unique<target>(this);
}

response_recorder::response_recorder(int version_minor, bool head_request)
    : writer_(*this), head_request_(head_request) {
  writer_.begin(version_minor, head_request, true);
}

void response_recorder::finish() {
  writer_.finish();
  std::lock_guard lock(mutex_);
  response_parser parser;
  std::array<http::header, 100> fields;
  response_head head;
  const parse_result r = parser.parse(raw_, fields, head, head_request_ ? "HEAD" : "GET");
  if (r.status != parse_status::complete) return;  // status() stays 0: not a valid response
  status_ = head.status;
  headers_.clear();
  for (const http::header& h : head.headers)
    headers_.emplace_back(h.name, h.value);
  body_.clear();
  body_decoder body(head.body, head.content_length);
  std::string_view rest = std::string_view(raw_).substr(r.consumed);
  for (;;) {
    const body_result b = body.next(rest);
    body_.append(b.data);
    rest.remove_prefix(b.consumed);
    if (b.status != parse_status::incomplete) break;
    if (b.consumed == 0 && b.data.empty()) {
      body.finish_at_eof();
      break;
    }
  }
}

std::string response_recorder::header(std::string_view name) const {
  for (const auto& [n, v] : headers_)
    if (iequals(n, name)) return v;
  return {};
}

}  // namespace nbio::http
