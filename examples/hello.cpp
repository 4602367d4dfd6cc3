#include <nbio/nbio.hpp>
struct echo {
  void on_data(nbio::conn& c, std::string_view bytes) { c.write(bytes); }
};
int main() {
  nbio::engine eng;
  eng.listen("127.0.0.1:8080", echo{});
  eng.run();
}
