// Private. Per-loop slabs of connection slots.
//
// Slots are carved from 64 KiB chunks aligned to 64 KiB. The chunk's first 64 bytes say which
// loop owns it, so a connection finds its loop by masking its own address: no per-connection
// pointer. Chunks are kept until the loop is destroyed, so a stale conn_handle can always read
// a slot's generation safely. Free slots are reused LIFO (cache-warm).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nbio {
class conn;
}

namespace nbio::detail {

class loop_impl;

class conn_pool;

struct chunk_header {
  loop_impl* owner;
  conn_pool* pool;
};

class conn_pool {
 public:
  static constexpr std::size_t chunk_size = 64u << 10;
  static constexpr std::size_t header_size = 64;

  conn_pool(loop_impl& owner, std::uint32_t slot_size) noexcept
      : owner_(owner), slot_size_(slot_size) {}
  ~conn_pool();
  conn_pool(const conn_pool&) = delete;
  conn_pool& operator=(const conn_pool&) = delete;

  std::uint32_t slot_size() const noexcept { return slot_size_; }
  // A slot holding a conn with fd -1 and its generation preserved.
  conn* allocate();
  void free(conn* c) noexcept;
  // Calls fn(conn&) for every slot in use (fd >= 0): for stop and graceful shutdown.
  template <class F>
  void for_each_live(F&& fn);

  static const chunk_header& header_of(const void* slot) noexcept {
    auto base = reinterpret_cast<std::uintptr_t>(slot) & ~(chunk_size - 1);
    return *reinterpret_cast<const chunk_header*>(base);
  }
  static loop_impl& owner_of(const void* slot) noexcept { return *header_of(slot).owner; }
  static conn_pool& pool_of(const void* slot) noexcept { return *header_of(slot).pool; }

 private:
  void grow();
  static bool live(const conn* c) noexcept;

  loop_impl& owner_;
  std::uint32_t slot_size_;
  std::vector<void*> chunks_;
  conn* free_ = nullptr;
};

template <class F>
void conn_pool::for_each_live(F&& fn) {
  std::size_t per_chunk = (chunk_size - header_size) / slot_size_;
  for (std::size_t i = 0; i < chunks_.size(); ++i) {
    char* base = static_cast<char*>(chunks_[i]) + header_size;
    for (std::size_t s = 0; s < per_chunk; ++s) {
      auto* c = reinterpret_cast<conn*>(base + s * slot_size_);
      if (live(c)) fn(*c);
    }
  }
}

}  // namespace nbio::detail
