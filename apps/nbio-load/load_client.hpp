// nbio-load. One worker's load: an engine and a dialer driving its share of the connections.
//
// run() connects (paced by --connect-rate and --connect-window, spread over the ports and the
// source addresses), with --ramp-first first opens them all and then waits for the go, keeps
// the mode's messages in flight, and ends when the duration passes, the
// message count is reached, every connection is lost or stop_requested() says so. It then lets
// the messages in flight come back (up to 2 s), closes everything and returns the counts.
//
// Per connection the handler keeps 32 bytes of conn_data in the engine's slot and nothing else:
// an idle connection owns no buffer here either. Latency is timed for one request per connection
// at a time (the next one sent after the timed reply is timed next), so with k messages in flight
// per connection about one reply in k is timed, with no per-request storage.
//
// With --tls the dialer has a tls::context client: on_open runs after the handshake, which is
// counted (and whether it resumed). In tls-handshake mode a connection carries one request,
// closes at its reply and its slot dials again from the same loop until the duration is over;
// the latency recorded is the whole cycle's, from the dial.
//
// Thread affinity: construct and run() on one thread; the handlers run on the engine's loops.
#pragma once

#include <functional>

#include "load_options.hpp"
#include "load_result.hpp"

namespace nbio_load {

class load_client {
 public:
  using progress_fn = std::function<void(const load_progress&)>;

  // `options` are one worker's share (load_options::worker_share).
  explicit load_client(load_options options);

  // Runs the load (blocking) and returns the result. on_progress runs on this thread about
  // once a second; stop_requested is polled every few milliseconds. With --ramp-first, once
  // every connect has settled, on_progress runs at once with `ramped` set and traffic waits
  // until go_requested() (polled like stop_requested) says go; an empty one means go at once.
  load_result run(const progress_fn& on_progress, const std::function<bool()>& stop_requested,
                  const std::function<bool()>& go_requested = {});

 private:
  load_options options_;
};

}  // namespace nbio_load
