// expect: on_data must be callable as on_data\(nbio::conn&, std::string_view\)
// An overload set with no form the engine can call: found by name all the same (a probe class
// derived from the handler makes the name ambiguous), so it is an error, not a silent no-op.
#include <nbio/nbio.hpp>
struct framed {
  void on_open(nbio::conn&) {}
  void on_data(nbio::conn&, int) {}
  void on_data(nbio::conn&, int, int) {}
};
int main() {
  nbio::engine eng;
  eng.listen("127.0.0.1:0", framed{});
}
