// expect: on_read_timeout must be callable as bool on_read_timeout\(nbio::conn&\)
#include <nbio/nbio.hpp>
struct pinger {
  void on_data(nbio::conn&, std::string_view) {}
  void on_read_timeout(nbio::conn& c) { c.write("ping"); }
};
int main() {
  nbio::engine eng;
  eng.listen("127.0.0.1:0", pinger{});
}
