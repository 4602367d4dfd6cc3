// Private. The io_uring back-end's ring (see uring.hpp).
#include "engine/backend/uring.hpp"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <system_error>

namespace nbio::detail {

// SINGLE_ISSUER and DEFER_TASKRUN (Linux 6.1): the loop thread is the only submitter, and the
// kernel runs completion work only when the loop asks for completions, in its own turn, not
// by interrupting it. SUBMIT_ALL: one bad entry does not hold back the rest of a batch.
static constexpr unsigned ring_flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                       IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;

static int setup(io_uring& ring, unsigned entries, unsigned extra_flags) {
  io_uring_params p{};
  p.flags = ring_flags | extra_flags;
  p.cq_entries = entries * 4;  // multishot receives post many completions per submission
  return io_uring_queue_init_params(entries, &ring, &p);
}

static std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string v;
  if (in) std::getline(in, v);
  return v;
}

std::error_code uring::probe(std::string& why) {
  io_uring ring{};
  int r = setup(ring, 8, 0);
  if (r < 0) {
    const std::string disabled = read_sysctl("/proc/sys/kernel/io_uring_disabled");
    if (r == -ENOSYS)
      why = "io_uring_setup: not in this kernel (ENOSYS)";
    else if (r == -EPERM && !disabled.empty() && disabled != "0")
      why = "io_uring_setup: disabled by kernel.io_uring_disabled=" + disabled;
    else if (r == -EPERM)
      why = "io_uring_setup: not permitted (EPERM: a seccomp filter or a container policy)";
    else if (r == -EINVAL)
      why = "io_uring_setup: the kernel lacks SINGLE_ISSUER/DEFER_TASKRUN (Linux 6.1 or later)";
    else
      why = "io_uring_setup: " + std::generic_category().message(-r);
    return {-r, std::generic_category()};
  }
  std::error_code ec;
  if (io_uring_probe* p = io_uring_get_probe_ring(&ring)) {
    static constexpr std::pair<int, const char*> needed[] = {
        {IORING_OP_RECV, "RECV"},         {IORING_OP_SEND, "SEND"},
        {IORING_OP_SENDMSG, "SENDMSG"},   {IORING_OP_ACCEPT, "ACCEPT"},
        {IORING_OP_POLL_ADD, "POLL_ADD"}, {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    };
    for (auto [op, name] : needed) {
      if (!io_uring_opcode_supported(p, op)) {
        why = std::string("io_uring: opcode ") + name + " not supported (a restricted ring?)";
        ec = std::make_error_code(std::errc::function_not_supported);
        break;
      }
    }
    io_uring_free_probe(p);
  }
  // A multishot receive into a provided-buffer ring, on a socket pair: the feature set that
  // matters (Linux 6.0), checked by use rather than by version number.
  int sv[2] = {-1, -1};
  void* mem = MAP_FAILED;
  if (!ec && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    ec = {errno, std::generic_category()};
  if (!ec) {
    mem = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) ec = {errno, std::generic_category()};
  }
  if (!ec) {
    auto* br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(mem);
    reg.ring_entries = 1;
    reg.bgid = 0;
    r = io_uring_register_buf_ring(&ring, &reg, 0);
    if (r < 0) {
      why = "io_uring: no provided-buffer rings (Linux 5.19 or later)";
      ec = {-r, std::generic_category()};
    } else {
      static char data[64];
      io_uring_buf_ring_add(br, data, sizeof data, 0, io_uring_buf_ring_mask(1), 0);
      io_uring_buf_ring_advance(br, 1);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_recv_multishot(sqe, sv[0], nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 0;
      [[maybe_unused]] auto w = ::write(sv[1], "x", 1);
      io_uring_cqe* cqe = nullptr;
      r = io_uring_submit_and_wait(&ring, 1);
      if (r >= 0) r = io_uring_peek_cqe(&ring, &cqe);
      if (r < 0 || !cqe) {
        why = "io_uring: a multishot receive did not complete";
        ec = {r < 0 ? -r : EIO, std::generic_category()};
      } else if (cqe->res < 0) {
        why = "io_uring: multishot receive refused (Linux 6.0 or later): " +
              std::generic_category().message(-cqe->res);
        ec = {-cqe->res, std::generic_category()};
      } else if (!(cqe->flags & IORING_CQE_F_MORE)) {
        why = "io_uring: the receive did not stay armed (multishot needs Linux 6.0 or later)";
        ec = std::make_error_code(std::errc::function_not_supported);
      }
    }
  }
  io_uring_queue_exit(&ring);  // before the buffer ring's memory and the sockets go
  if (mem != MAP_FAILED) ::munmap(mem, 4096);
  if (sv[0] >= 0) ::close(sv[0]);
  if (sv[1] >= 0) ::close(sv[1]);
  return ec;
}

uring::uring(const options& o) {
  int r = setup(ring_, o.entries, IORING_SETUP_R_DISABLED);
  if (r < 0) throw std::system_error(-r, std::generic_category(), "io_uring_setup");
  buffers_count_ = 1;
  while (buffers_count_ < o.buffers && buffers_count_ < 32768)
    buffers_count_ <<= 1;
  buffer_size_ = o.buffer_size;
  mask_ = static_cast<unsigned>(io_uring_buf_ring_mask(buffers_count_));
  br_bytes_ = (sizeof(io_uring_buf) * buffers_count_ + 4095) & ~std::size_t{4095};
  void* mem =
      ::mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    io_uring_queue_exit(&ring_);
    throw std::system_error(errno, std::generic_category(), "mmap(io_uring buffer ring)");
  }
  br_ = static_cast<io_uring_buf_ring*>(mem);
  // Resident from the start: the kernel takes the buffers in ring order, so a loop soon touches
  // all of them whatever its connections do; populating them now makes that fixed cost visible
  // at start rather than as growth per connection.
  buffers_bytes_ = std::size_t{buffers_count_} * buffer_size_;
  mem = ::mmap(nullptr, buffers_bytes_, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) {
    ::munmap(br_, br_bytes_);
    io_uring_queue_exit(&ring_);
    throw std::system_error(errno, std::generic_category(), "mmap(io_uring buffers)");
  }
  buffers_ = static_cast<char*>(mem);
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(br_);
  reg.ring_entries = buffers_count_;
  reg.bgid = 0;
  r = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (r < 0) {
    ::munmap(buffers_, buffers_bytes_);
    ::munmap(br_, br_bytes_);
    io_uring_queue_exit(&ring_);
    throw std::system_error(-r, std::generic_category(), "io_uring_register_buf_ring");
  }
  for (unsigned i = 0; i < buffers_count_; ++i)
    io_uring_buf_ring_add(br_, buffer(i), buffer_size_, static_cast<unsigned short>(i), mask_,
                          static_cast<int>(i));
  io_uring_buf_ring_advance(br_, static_cast<int>(buffers_count_));
}

uring::~uring() {
  io_uring_queue_exit(&ring_);
  ::munmap(buffers_, buffers_bytes_);
  ::munmap(br_, br_bytes_);
}

void uring::enable() {
  if (ready_) return;
  // io_uring_enable_rings() is declared by liburing 2.3's header but missing from its library:
  // the register call itself.
  if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) <
      0)
    throw std::system_error(errno, std::generic_category(), "io_uring_register(ENABLE_RINGS)");
  ready_ = true;
}

io_uring_sqe* uring::sqe() noexcept {
  for (;;) {
    if (io_uring_sqe* s = io_uring_get_sqe(&ring_)) return s;
    // Full: hand the batch to the kernel now. EBUSY (the completion queue is backed up) clears
    // once completions are reaped; fetching them into the queue lets the next try through.
    if (io_uring_submit(&ring_) < 0) io_uring_get_events(&ring_);
  }
}

void uring::submit_and_wait(int timeout_ms) noexcept {
  if (timeout_ms == 0 || io_uring_cq_ready(&ring_) > 0) {
    io_uring_submit_and_get_events(&ring_);
    return;
  }
  if (timeout_ms < 0) {
    io_uring_submit_and_wait(&ring_, 1);
    return;
  }
  __kernel_timespec ts{};
  ts.tv_sec = timeout_ms / 1000;
  ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1'000'000;
  io_uring_cqe* cqe = nullptr;
  io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
}

void uring::recycle(unsigned id) noexcept {
  io_uring_buf_ring_add(br_, buffer(id), buffer_size_, static_cast<unsigned short>(id), mask_, 0);
  io_uring_buf_ring_advance(br_, 1);
}

}  // namespace nbio::detail
