// expect: on_datagram must be callable as on_datagram\(nbio::udp_socket&, std::string_view, const
#include <nbio/nbio.hpp>
struct echo {
  void on_datagram(nbio::udp_socket&, std::string_view) {}
};
int main() {
  nbio::engine eng;
  eng.udp_bind("127.0.0.1:0", echo{});
}
