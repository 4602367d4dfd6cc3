// Private. The event loop's state and the connection state machine it drives.
//
// One turn of the loop, in order (see run()):
//   1. wait    : epoll_wait, with a timeout from the timer wheel (0 when work is pending)
//   2. dispatch: the clock is read; listeners accept, connections read/write, the wake-up
//                eventfd is drained (I/O first: a late wake-up must not time out what is ready)
//   3. timers  : the wheel advances to the clock; deadlines and timers fire
//   4. ready   : connections that hit reads_per_turn read again (edge-triggered fairness)
//   5. tasks   : everything post()ed by other threads, in one batch
//   6. reap    : connections closed this turn get on_close, then their slots are freed
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/backend/poller.hpp"
#include "engine/backend/uring.hpp"
#include "engine/conn_pool.hpp"
#include "engine/write_queue.hpp"
#include "nbio/engine/conn.hpp"
#include "nbio/engine/loop.hpp"
#include "nbio/engine/timer_wheel.hpp"

namespace nbio::detail {

class engine_impl;
class listener_impl;
class udp_impl;
struct listen_socket;
struct dial_state;

// Tags in the low bits of epoll_data.ptr (all targets are at least 8-byte aligned).
enum : std::uintptr_t { tag_conn = 0, tag_listen = 1, tag_wake = 2, tag_udp = 3, tag_mask = 7 };
// timer_link::tag values.
enum : std::uint8_t { timer_conn = 1, timer_user = 2, timer_udp_peer = 3 };

// A counter written by one thread and read by any: a relaxed load and store, no locked add.
struct owned_counter {
  std::atomic<std::uint64_t> v{0};
  void add(std::uint64_t n) noexcept {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(std::uint64_t n) noexcept {
    v.store(v.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

class loop_impl final : public loop {
 public:
  loop_impl(engine_impl& eng, std::size_t index);
  ~loop_impl();

  static loop_impl& of(loop& l) noexcept { return static_cast<loop_impl&>(l); }
  static loop_impl& of(const conn& c) noexcept { return conn_pool::owner_of(&c); }

  // Thread control (engine).
  void start_thread();
  void join();
  void request_stop();   // any thread
  void request_drain();  // any thread: graceful shutdown

  // Public-API implementations.
  void post(std::function<void()> fn);
  bool in_loop_thread() const noexcept {
    return std::this_thread::get_id() == tid_.load(std::memory_order_relaxed);
  }
  // The loop thread is in run(): its timers and connections are its own.
  bool running() const noexcept {
    return tid_.load(std::memory_order_relaxed) != std::thread::id{};
  }
  std::size_t index() const noexcept { return index_; }
  engine_impl& engine() const noexcept { return eng_; }
  loop_stats stats() const noexcept;
  timer_id add_timer(std::uint32_t delay, std::uint32_t interval, std::function<void()> fn);
  bool cancel_timer(timer_id id);
  std::uint32_t now() const noexcept { return now_; }

  // Connections (loop thread).
  conn* adopt(int fd, const handler_table& cls, listener_impl* owner);  // accepted socket
  void start_dial(const address& remote, const address& local, const handler_table& cls,
                  dial_state&& ds);
  std::error_code write(conn& c, std::string_view data);
  // The same for a transport's ciphertext.
  std::error_code raw_write(conn& c, std::string_view data) { return write(c, data); }
  // A transport's plaintext that must wait behind a queued file (write_pool::tail_deferred).
  std::error_code write_deferred(conn& c, std::string_view plain);
  void write_close_mark(conn& c) {
    if (!writes_.append_close_mark(*c.wq_)) out_of_memory(c);
  }
  // The write queue could not grow (write_pool's allocation failed): closes with ENOMEM.
  std::error_code out_of_memory(conn& c);
  // A transport connection finished its handshake.
  void established(conn& c);
  // The transport's sweep in about a second (transport_conn::sweep_later).
  void transport_sweep_later();
  void on_eof(conn& c);
  std::error_code send_file(conn& c, int fd, std::uint64_t offset, std::uint64_t length);
  void close(conn& c, std::error_code reason);
  void close_after_flush(conn& c, std::error_code reason);
  void shutdown_write(conn& c);
  void pause_read(conn& c);
  void resume_read(conn& c);
  void rebound(conn& c);
  void set_read_deadline(conn& c, std::uint32_t ms);
  void set_write_deadline(conn& c, std::uint32_t ms);
  // Runs fn on c's thread if the handle's generation still matches (loop thread).
  void run_on(conn* c, std::uint32_t gen, std::function<void(conn&)> fn);
  // conn_handle::write on the owning loop thread.
  std::error_code write_handle(conn* c, std::uint32_t gen, std::string_view data);
  // conn_handle::queued_bytes on this loop's thread.
  std::size_t queued_handle(conn* c, std::uint32_t gen);

  // Listeners and UDP (setup thread, before or while running).
  void add_listen_socket(listen_socket* ls);
  void add_udp(udp_impl* u);
  void close_listen_socket(listen_socket* ls);  // loop thread

  // Blocking mode (the loop owns the slot; the connection's thread does the I/O).
  void release_blocking(conn* c);  // loop thread: the thread finished

  char* read_buffer() noexcept { return rbuf_.get(); }
  std::size_t read_buffer_size() const noexcept { return rbuf_size_; }
  timer_wheel& wheel() noexcept { return wheel_; }
  void count_in(std::size_t n) noexcept { bytes_in_.add(n); }
  void count_out(std::size_t n) noexcept { bytes_out_.add(n); }
  // Loop thread only: whether `c` is served by a blocking-mode thread of this loop.
  bool blocking_empty() const noexcept { return blocking_.empty(); }
  bool serves_blocking(const conn* c) const { return blocking_.contains(const_cast<conn*>(c)); }
  std::atomic<std::uint64_t>& blocking_bytes_in() noexcept { return blocking_in_; }
  std::atomic<std::uint64_t>& blocking_bytes_out() noexcept { return blocking_out_; }

 private:
  struct user_timer {
    timer_link link;
    std::function<void()> fn;
    std::uint32_t interval = 0;
    std::uint32_t index = 0;
    std::uint32_t gen = 0;
    bool in_use = false;
  };

  void run();
  void run_epoll();
  bool finish_turn();
  void finish_run();
  // A dial's connection is up: reads start (epoll: if the event said readable).
  void read_after_connect(conn& c, std::uint32_t flags);
  void update_clock() noexcept;
  int wait_timeout() const noexcept;
  void dispatch(const poll_event& ev);
  void on_conn_event(conn& c, std::uint32_t flags);
  void on_accept(listen_socket& ls);
  void resume_accepting_later(listen_socket& ls);
  void on_wake();
  void on_timer(timer_link& t);
  void on_conn_timer(conn& c);
  void run_tasks();
  void run_ready();
  void reap();
  void finish_connect(conn& c, std::uint32_t flags);
  void finish_connect_transport(conn& c, std::uint32_t flags);
  // Reads again next turn (edge-triggered: the ready list).
  void defer_read(conn& c);
  bool flush_file_transport(conn& c, file_segment& f);
  // Encrypts the plaintext block at the head of a transport connection's queue.
  bool flush_plain_transport(conn& c);
  // Seals `bytes` with the transport's write and puts the result at the head of the queue.
  bool seal_at_head(conn& c, std::string_view bytes);
  void fail_dial(conn& c, std::error_code ec);
  void do_read(conn& c);
  void flush(conn& c);
  // The kernel refused part of a write: bytes and files wait in a queue from now on. False
  // when the queue could not be allocated, or the registration for writability failed (the
  // connection is then closed with that error).
  [[nodiscard]] bool start_queue(conn& c);
  // After bytes or a file were queued for c: past the engine's write budget, sheds this loop's
  // largest queue. errc::write_queue_overflow when that closed c itself.
  std::error_code check_budget(conn& c);
  void shed_for_budget(const conn& grown);
  // States in which a connection takes no more bytes or files.
  static constexpr std::uint16_t no_write = conn::f_closing | conn::f_close_after_flush |
                                            conn::f_write_shut | conn::f_shutdown_pending |
                                            conn::f_connecting;
  // Sends the file segment at the head of c's queue; false when the kernel is full (or the
  // connection failed): wait for writability.
  bool flush_file(conn& c);
  void drained(conn& c);
  void arm_timer(conn& c);
  void open_blocking(conn& c, listener_impl* owner);
  void stop_everything();
  void drain_everything();
  void finish_for_shutdown(conn& c);  // on_shutdown, or close after flushing
  conn* allocate(const handler_table& cls);
  conn_pool& pool_for(std::uint32_t slot_size);
  void set_write_interest(conn& c, bool on);
  bool edge() const noexcept { return edge_; }

  // --- the io_uring back-end (loop_uring.cpp) ---
  static constexpr std::uint16_t reading_stops =
      conn::f_closing | conn::f_read_paused | conn::f_eof | conn::f_close_after_flush;
  static std::uint32_t gen_of(const conn& c) noexcept;
  // Whether a completion for a connection still concerns the connection in its slot.
  static bool current(const conn& c, std::uint64_t data) noexcept;
  void run_uring();
  void on_completion(std::uint64_t data, std::int32_t res, std::uint32_t flags);
  void on_recv(conn& c, std::int32_t res, std::uint32_t flags);
  void on_send(write_queue& q, std::int32_t res);
  void on_accept_completion(listen_socket& ls, std::int32_t res, std::uint32_t flags);
  void accept_one(listen_socket& ls, int fd);
  // Received bytes for a connection: the same path for both back-ends (deadlines, the
  // transport or on_data).
  void received(conn& c, std::span<char> bytes);
  void arm_recv(conn& c);
  void cancel_recv(conn& c);
  void arm_accept(listen_socket& ls);
  void arm_wake();
  void arm_udp(udp_impl& u);
  void arm_pollout(conn& c);
  // Queues c for this turn's submission of sends (io_uring: writes go out once per turn).
  void list_send(conn& c);
  void submit_sends();
  // Puts the head bytes of c's queue in one send submission.
  void submit_send(conn& c);
  // Input that arrived while c could not take it (paused, past the handshake budget).
  void hold(conn& c, std::string_view bytes);
  void deliver_held(conn& c);
  // At reap: the kernel lets go of c (its receive cancelled, its send orphaned).
  void release_ring_ops(conn& c);
  void both_shut(conn& c);
  // Drops c's write queue now, or once the kernel is done with the send in flight.
  void discard_queue(conn& c);
  void close_ring();

  engine_impl& eng_;
  std::size_t index_;
  poller poller_;
  std::unique_ptr<uring> ring_;  // the io_uring back-end; null under epoll
  bool edge_ = true;             // epoll edge-triggered, or io_uring (its paths are the same)
  int wake_fd_ = -1;
  // io_uring: connections written to this turn (with their generation), submitted together.
  std::vector<std::pair<conn*, std::uint32_t>> send_list_, send_swap_;
  struct held_input {
    std::string bytes;
    bool eof = false;  // the peer's FIN came after them
  };
  std::unordered_map<conn*, held_input> held_;
  std::unique_ptr<msghdr[]> msgs_;  // per send submission of several blocks, until submitted
  std::unique_ptr<iovec[]> iovs_;
  unsigned msgs_used_ = 0;
  std::size_t orphans_ = 0;  // sends in flight of connections already closed
  timer_wheel wheel_;
  std::uint32_t now_ = 0;
  std::thread thread_;
  // Set by the loop thread as run() starts and cleared as it ends, read by any thread (relaxed:
  // a thread sees its own store, and any other only needs a value that is not its id).
  std::atomic<std::thread::id> tid_{};

  std::unique_ptr<char[]> rbuf_;
  std::size_t rbuf_size_;
  std::vector<poll_event> events_;
  std::vector<std::unique_ptr<conn_pool>> pools_;
  write_pool writes_;
  std::vector<conn*> closing_;
  unsigned handshake_budget_ = 0;  // transport handshake reads left this turn
  conn* collecting_ = nullptr;     // flush_file_transport: where a write's bytes are collected
  std::string collected_;
  std::vector<conn*> ready_, ready_swap_;
  std::vector<listen_socket*> listen_sockets_;
  std::vector<udp_impl*> udps_;
  std::unordered_set<conn*> blocking_;

  std::mutex task_mu_;
  std::vector<std::function<void()>> tasks_, running_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> drain_requested_{false};
  bool stopping_ = false;
  bool draining_ = false;
  bool transport_sweep_armed_ = false;

  std::deque<user_timer> timers_;
  std::vector<std::uint32_t> free_timers_;

  owned_counter online_, accepted_, dialed_, closed_, refused_, bytes_in_, bytes_out_,
      budget_closes_;
  // A walk of the queues for a budget victim found none at this tick: the next waits a tick.
  bool shed_missed_ = false;
  std::uint32_t shed_missed_at_ = 0;
  std::atomic<std::uint64_t> blocking_in_{0}, blocking_out_{0};

  friend class listener_impl;
};

}  // namespace nbio::detail
