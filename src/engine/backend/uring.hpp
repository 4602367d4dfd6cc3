// Private. The io_uring back-end's ring: one per loop, owned and driven by the loop thread.
//
// The loop asks the kernel for work by queueing submissions (multishot accept and receive, one
// send per connection with bytes pending, polls for the rest) and learns of it from
// completions, all in one io_uring_enter per turn. What a completion is for travels in its
// user_data: the low 3 bits are a uring_op, the rest a pointer (bits 3..47) and, for a
// connection, the low 16 bits of its slot's generation (bits 48..63), so a completion that
// arrives after its connection was closed and its slot reused touches nothing.
//
// Received bytes land in a ring of provided buffers shared by the loop's connections: an idle
// connection owns no buffer, as with epoll's per-loop read buffer. liburing is used for the
// ring's memory layout and the submission helpers; the loop's own logic is in loop_uring.cpp.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <string>
#include <system_error>

namespace nbio::detail {

enum uring_op : std::uint64_t {
  op_recv = 1,     // a connection's multishot receive (conn*, generation)
  op_send = 2,     // the send in flight of a write queue (write_queue*)
  op_pollout = 3,  // a connection waits for writability: connect, sendfile (conn*, generation)
  op_accept = 4,   // a listening socket's multishot accept (listen_socket*)
  op_wake = 5,     // the loop's eventfd: tasks were posted
  op_udp = 6,      // a UDP socket is readable (udp_impl*)
  op_ignore = 7,   // a cancellation's own completion
  op_mask = 7,
};

// Sends of several blocks are described by a msghdr and iovecs that must stay put until the
// batch is submitted: the loop keeps this many, of this many iovecs each.
inline constexpr unsigned uring_msgs = 256;
inline constexpr unsigned uring_iov = 16;

inline constexpr std::uint64_t uring_ptr_mask = 0x0000'ffff'ffff'fff8ull;

inline std::uint64_t uring_data(const void* p, uring_op op, std::uint32_t gen = 0) noexcept {
  return reinterpret_cast<std::uintptr_t>(p) | (std::uint64_t{gen & 0xffffu} << 48) | op;
}
inline void* uring_ptr(std::uint64_t data) noexcept {
  return reinterpret_cast<void*>(data & uring_ptr_mask);
}
inline std::uint32_t uring_gen(std::uint64_t data) noexcept {
  return static_cast<std::uint32_t>(data >> 48);
}

class uring {
 public:
  struct options {
    unsigned entries;      // submission queue size; the completion queue is 4x
    unsigned buffers;      // provided buffers (a power of two)
    unsigned buffer_size;  // bytes each
  };

  // Whether this kernel and process offer what the back-end needs: the ring flags, the
  // opcodes, a provided-buffer ring and a working multishot receive. Empty when they do;
  // otherwise the error, with `why` saying what failed (sysctl, seccomp, old kernel).
  static std::error_code probe(std::string& why);

  // Setup time: throws std::system_error when the ring cannot be made.
  explicit uring(const options& o);
  ~uring();
  uring(const uring&) = delete;
  uring& operator=(const uring&) = delete;

  // On the loop thread, before anything is submitted: the ring is made disabled (on the setup
  // thread) and enabled here, so that SINGLE_ISSUER binds it to the loop thread.
  void enable();

  // A free submission entry; when the queue is full it submits what is queued first.
  io_uring_sqe* sqe() noexcept;
  // Cancels the request(s) with user_data `target`; the cancellation's own completion is
  // op_ignore.
  void cancel(std::uint64_t target) noexcept {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, target, 0);
    io_uring_sqe_set_data64(s, op_ignore);
  }
  // Submits what is queued now (the loop's send descriptions are about to be reused).
  void submit() noexcept { io_uring_submit(&ring_); }
  // Submits what is queued and waits up to timeout_ms (-1: no limit, 0: not at all) for a
  // completion. Completions are then read with for_each.
  void submit_and_wait(int timeout_ms) noexcept;
  // Calls f(user_data, res, flags) for each completion ready, in order, and consumes them;
  // a completion queue that overflowed (the kernel kept the rest) is emptied too.
  template <class F>
  unsigned for_each(F&& f) {
    unsigned total = 0;
    for (;;) {
      unsigned head, n = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        const std::uint64_t data = cqe->user_data;
        const std::int32_t res = cqe->res;
        const std::uint32_t flags = cqe->flags;
        io_uring_cq_advance(&ring_, 1);  // before f: f may submit, which may reap completions
        ++n;
        f(data, res, flags);
      }
      total += n;
      if (!io_uring_cq_has_overflow(&ring_)) return total;
      io_uring_get_events(&ring_);  // flushes the kernel's overflow list into the queue
      if (n == 0 && io_uring_cq_ready(&ring_) == 0) return total;
    }
  }

  unsigned buffer_group() const noexcept { return 0; }
  unsigned buffer_size() const noexcept { return buffer_size_; }
  char* buffer(unsigned id) noexcept { return buffers_ + std::size_t{id} * buffer_size_; }
  // Hands a provided buffer back to the kernel.
  void recycle(unsigned id) noexcept;

  // Counters for stats and tests.
  std::uint64_t no_buffer_rearms = 0;  // multishot receives ended by ENOBUFS and re-armed

 private:
  io_uring ring_{};
  io_uring_buf_ring* br_ = nullptr;
  char* buffers_ = nullptr;
  std::size_t br_bytes_ = 0, buffers_bytes_ = 0;
  unsigned buffers_count_ = 0, buffer_size_ = 0, mask_ = 0;
  bool ready_ = false;
};

}  // namespace nbio::detail
