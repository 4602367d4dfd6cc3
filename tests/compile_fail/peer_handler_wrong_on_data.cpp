// expect: on_data must be callable as on_data\(nbio::udp_peer&, std::string_view\)
#include <nbio/nbio.hpp>
struct peers {
  void on_data(nbio::conn&, std::string_view) {}
};
int main() {
  nbio::engine eng;
  eng.udp_listen("127.0.0.1:0", peers{});
}
