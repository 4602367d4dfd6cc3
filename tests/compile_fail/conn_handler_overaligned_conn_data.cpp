// expect: conn_data must be default-constructible, nothrow-destructible, at most 16-byte
#include <nbio/nbio.hpp>
struct counter {
  struct alignas(64) conn_data {
    int n = 0;
  };
  void on_data(nbio::conn& c, std::string_view) { ++c.data<conn_data>().n; }
};
int main() {
  nbio::engine eng;
  eng.make_upgrade_target(counter{});
}
