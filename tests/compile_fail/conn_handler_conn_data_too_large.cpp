// expect: conn_data must be .*at most max_slot_data \(16 KiB\) bytes
// Slots live in 64 KiB chunks: a 64 KiB buffer per connection belongs on the heap.
#include <nbio/nbio.hpp>
struct buffered {
  struct conn_data {
    char buffer[64 * 1024];
  };
  void on_data(nbio::conn&, std::string_view) {}
};
int main() {
  nbio::engine eng;
  eng.listen("127.0.0.1:0", buffered{});
}
