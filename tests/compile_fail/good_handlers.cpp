// expect-compiles
// The control: one handler of each kind, written the ways the checks must accept (members
// inherited, overloaded, templated, const, with default arguments, returning a value), compiles
// with the project's warnings. Without it, a check that refused everything would pass the
// compile-fail tests.
#include <nbio/nbio.hpp>

#include <mutex>
struct base {
  void on_open(nbio::conn&) {}
};
struct tcp : base {
  struct conn_data {
    int n = 0;
  };
  int on_data(nbio::conn& c, std::string_view d, int extra = 0) {
    c.write(d);
    return extra + ++c.data<conn_data>().n;
  }
  void on_close(nbio::conn&, std::error_code) const {}
  void on_close(nbio::conn&, std::error_code, int) const {}
  template <class C>
  void on_drained(C&) {}
  int on_read_timeout(nbio::conn&) { return 1; }
};
// A final class: found by its one non-template member.
struct sealed final {
  void on_data(nbio::conn&, std::string_view) {}
};
struct datagrams {
  void on_datagram(nbio::udp_socket& s, std::string_view d, const nbio::address& from) {
    (void)s.send_to(from, d);
  }
};
struct peers {
  using peer_data = int;
  void on_data(nbio::udp_peer&, std::string_view) {}
};
struct chat {
  struct conn_data {
    std::string room = "lobby";
  };
  void on_open(nbio::websocket::connection& ws) { ws.data<conn_data>().room = "lobby"; }
  void on_message(nbio::websocket::connection&, std::string_view, bool) {}
  void on_close(nbio::websocket::connection&, std::uint16_t, std::string_view) {}
  void on_drained(nbio::websocket::connection&) {}
};
// Held by reference (std::ref): a handler that cannot be moved.
struct counting {
  std::mutex mutex;
  int messages = 0;
  void on_message(nbio::websocket::connection&, std::string_view, bool) {
    std::lock_guard lock(mutex);
    ++messages;
  }
};
static_assert(nbio::conn_handler<tcp> && nbio::conn_handler<sealed> && !nbio::conn_handler<int>);
static_assert(nbio::websocket::handler<chat> && !nbio::websocket::handler<tcp>);
static_assert(nbio::datagram_handler<datagrams> && !nbio::datagram_handler<tcp>);
static_assert(nbio::peer_handler<peers> && !nbio::peer_handler<tcp>);
int main() {
  nbio::engine eng;
  eng.listen("127.0.0.1:0", tcp{});
  eng.make_dialer(tcp{});
  eng.udp_bind("127.0.0.1:0", datagrams{});
  eng.udp_listen("127.0.0.1:0", peers{});
  nbio::websocket::server ws(eng, chat{});
  counting c;
  nbio::websocket::client cl(eng, std::ref(c));
}
