// expect: a connection handler is a class with on_\* members .*this type is not a class
#include <nbio/nbio.hpp>
int main() {
  nbio::engine eng;
  eng.listen("127.0.0.1:0", 42);
}
