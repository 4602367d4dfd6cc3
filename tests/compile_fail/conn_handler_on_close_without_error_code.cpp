// expect: on_close must be callable as on_close\(nbio::conn&, std::error_code\)
#include <nbio/nbio.hpp>
struct handler {
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
  void on_close(nbio::conn&) {}
};
int main() {
  nbio::engine eng;
  eng.listen("127.0.0.1:0", handler{});
}
