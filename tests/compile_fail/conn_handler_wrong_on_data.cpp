// expect: on_data must be callable as on_data\(nbio::conn&, std::string_view\)
// The program of issue 16: on_data takes std::string, on_close lacks its error code, and the
// second listen gets an int. It compiled silently and served nothing.
#include <nbio/nbio.hpp>
#include <string>
struct bad {
  void on_data(nbio::conn& c, std::string s) { c.write(s); }
  void on_close(nbio::conn&) {}
};
int main() {
  nbio::engine eng;
  eng.listen("127.0.0.1:0", bad{});
  eng.listen("127.0.0.1:0", 42);
}
