// Integration: conn::send_file, zero-copy file segments in the write queue, in order with
// bytes, in the event-loop and blocking modes; a peer that resets mid-file is an error, not a
// SIGPIPE.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "support/conn_events.hpp"
#include "support/conn_mode.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"

namespace {

using namespace nbio_test;

// A temporary file with `content`, removed with the object.
class temp_file {
 public:
  explicit temp_file(const std::string& content) {
    char name[] = "/tmp/nbio_send_file_XXXXXX";
    fd_ = ::mkstemp(name);
    path_ = name;
    EXPECT_GE(fd_, 0);
    EXPECT_EQ(::write(fd_, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  }
  ~temp_file() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// On the first byte received: "head", then the file's [offset, offset+length), then "tail".
struct file_sender {
  const temp_file* file;
  std::uint64_t offset;
  std::uint64_t length;
  conn_events* events;
  bool peer_may_leave = false;  // errors are the point of the test, not a failure
  void on_data(nbio::conn& c, std::string_view) {
    EXPECT_FALSE(c.write("head"));
    const std::error_code ec = c.send_file(file->fd(), offset, length);
    const std::error_code tail = c.write("tail");
    if (peer_may_leave) return;
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_FALSE(tail) << tail.message();
  }
  void on_close(nbio::conn&, std::error_code ec) { events->closed.push(ec); }
};

class send_file : public ::testing::TestWithParam<conn_mode> {};

// 8 MiB is far more than the socket buffers: most of it waits in the queue as a file segment
// while the client reads slowly at first, and "tail" must still come after it.
TEST_P(send_file, bytes_file_bytes_arrive_in_order_to_a_slow_reader) {
  const std::string content = random_payload(8u << 20, 7);
  temp_file file(content);
  conn_events events;
  test_server server(file_sender{&file, 0, content.size(), &events}, GetParam().listen(),
                     GetParam().engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(send_all(fd.get(), "go"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the queue fill
  const read_result r = recv_exact(fd.get(), 4 + content.size() + 4, std::chrono::seconds(30));
  ASSERT_EQ(r.data.size(), 4 + content.size() + 4) << "eof " << r.eof << " error " << r.error;
  EXPECT_EQ(r.data.substr(0, 4), "head");
  EXPECT_TRUE(r.data.substr(4, content.size()) == content) << "file bytes differ";
  EXPECT_EQ(r.data.substr(4 + content.size()), "tail");
}

TEST_P(send_file, a_range_of_the_file_is_sent) {
  const std::string content = random_payload(100000, 8);
  temp_file file(content);
  conn_events events;
  test_server server(file_sender{&file, 60000, 30000, &events}, GetParam().listen(),
                     GetParam().engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(send_all(fd.get(), "go"));
  const read_result r = recv_exact(fd.get(), 4 + 30000 + 4);
  ASSERT_EQ(r.data.size(), 4u + 30000u + 4u);
  EXPECT_TRUE(r.data.substr(4, 30000) == content.substr(60000, 30000)) << "range differs";
  EXPECT_EQ(r.data.substr(4 + 30000), "tail");
}

// Asked for 50,000 bytes from 60,000 of a 100,000-byte file: the 40,000 there are sent, then
// the connection closes with EIO ("tail" never comes: the peer was promised 50,000 bytes).
TEST_P(send_file, a_file_shorter_than_promised_closes_the_connection) {
  const std::string content = random_payload(100000, 8);
  temp_file file(content);
  conn_events events;
  test_server server(file_sender{&file, 60000, 50000, &events, true}, GetParam().listen(),
                     GetParam().engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(send_all(fd.get(), "go"));
  const read_result r = recv_until_eof(fd.get());
  EXPECT_TRUE(r.eof || r.error) << "the connection stayed open";
  EXPECT_EQ(r.data.size(), 4u + 40000u);
  ASSERT_TRUE(events.closed.wait_for_size(1, std::chrono::seconds(10)));
  EXPECT_EQ(events.closed.snapshot()[0], std::errc::io_error)
      << events.closed.snapshot()[0].message();
}

// The client resets while most of a large file is queued: the connection closes with an
// error (EPIPE or ECONNRESET), and the process is not killed by SIGPIPE.
TEST_P(send_file, a_peer_reset_mid_file_is_an_error_not_a_signal) {
  const std::string content = random_payload(16u << 20, 9);
  temp_file file(content);
  conn_events events;
  test_server server(file_sender{&file, 0, content.size(), &events, true}, GetParam().listen(),
                     GetParam().engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(send_all(fd.get(), "go"));
  ASSERT_EQ(recv_exact(fd.get(), 65536).data.size(), 65536u);
  set_reset_on_close(fd.get());
  fd.reset();
  ASSERT_TRUE(events.closed.wait_for_size(1, std::chrono::seconds(20)));
  const std::error_code ec = events.closed.snapshot()[0];
  EXPECT_TRUE(ec == std::errc::broken_pipe || ec == std::errc::connection_reset) << ec.message();
}

INSTANTIATE_TEST_SUITE_P(modes, send_file, ::testing::Values(edge_mode, level_mode, blocking_mode),
                         conn_mode_name);

}  // namespace
