// expect: on_data must be callable as on_data\(nbio::conn&, std::string_view\)
#include <nbio/nbio.hpp>
class hidden {
 public:
  void on_open(nbio::conn&) {}

 private:
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
};
int main() {
  nbio::engine eng;
  eng.listen("127.0.0.1:0", hidden{});
}
