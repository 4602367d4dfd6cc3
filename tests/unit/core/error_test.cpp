// Unit: the engine's error category and its comparisons with std::errc.
#include "nbio/core/error.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <system_error>

namespace {

using nbio::errc;

constexpr errc all_errc[] = {
    errc::eof,
    errc::local_close,
    errc::shutdown,
    errc::read_timeout,
    errc::write_timeout,
    errc::idle_timeout,
    errc::write_queue_overflow,
    errc::not_connected,
    errc::connect_timeout,
    errc::resolve_failed,
    errc::peer_expired,
};

TEST(error_category, is_named_nbio_and_is_a_singleton) {
  EXPECT_STREQ(nbio::engine_category().name(), "nbio");
  EXPECT_EQ(&nbio::engine_category(), &nbio::engine_category());
  EXPECT_EQ(nbio::make_error_code(errc::eof).category(), nbio::engine_category());
}

TEST(error_category, every_errc_has_its_own_message) {
  std::set<std::string> seen;
  const std::string unknown = nbio::engine_category().message(0x7fff);
  for (errc e : all_errc) {
    std::string m = std::error_code(e).message();
    EXPECT_FALSE(m.empty()) << static_cast<int>(e);
    EXPECT_NE(m, unknown) << static_cast<int>(e);
    EXPECT_TRUE(seen.insert(m).second) << "duplicate message: " << m;
  }
}

TEST(error_category, unknown_value_has_a_message_and_does_not_throw) {
  EXPECT_FALSE(nbio::engine_category().message(0).empty());
  EXPECT_FALSE(nbio::engine_category().message(-1).empty());
  EXPECT_FALSE(nbio::engine_category().message(1000).empty());
}

TEST(error_category, every_errc_is_a_true_error_code) {
  // errc starts at 1: a cause is never mistaken for success.
  for (errc e : all_errc) {
    std::error_code ec = e;  // implicit: is_error_code_enum
    EXPECT_TRUE(static_cast<bool>(ec));
    EXPECT_EQ(ec, e);
    EXPECT_NE(std::error_code(), e);
  }
}

TEST(error_category, errc_values_are_distinct_from_each_other) {
  for (errc a : all_errc)
    for (errc b : all_errc)
      EXPECT_EQ(std::error_code(a) == std::error_code(b), a == b);
}

TEST(error_category, errc_never_equals_an_errno_with_the_same_number) {
  // errc::eof is 1, as EPERM: the category keeps them apart.
  EXPECT_NE(std::error_code(errc::eof), std::error_code(EPERM, std::generic_category()));
  EXPECT_NE(std::error_code(errc::eof), std::errc::operation_not_permitted);
  EXPECT_NE(std::error_code(errc::local_close), std::errc::no_such_file_or_directory);
  EXPECT_NE(std::error_code(errc::read_timeout), std::errc::timed_out);
  EXPECT_NE(std::error_code(errc::connect_timeout), std::errc::timed_out);
  EXPECT_NE(std::error_code(errc::not_connected), std::errc::not_connected);
  for (errc e : all_errc) {
    EXPECT_NE(std::error_code(e), std::error_code(static_cast<int>(e), std::generic_category()));
    EXPECT_NE(std::error_code(e), std::error_code(static_cast<int>(e), std::system_category()));
  }
}

TEST(error_category, errno_code_compares_equal_to_std_errc) {
  EXPECT_EQ(nbio::errno_code(ECONNRESET), std::errc::connection_reset);
  EXPECT_EQ(nbio::errno_code(EPIPE), std::errc::broken_pipe);
  EXPECT_EQ(nbio::errno_code(ECONNREFUSED), std::errc::connection_refused);
  EXPECT_EQ(nbio::errno_code(EMFILE), std::errc::too_many_files_open);
  EXPECT_EQ(nbio::errno_code(ETIMEDOUT), std::errc::timed_out);
  EXPECT_EQ(nbio::errno_code(ECONNRESET).category(), std::generic_category());
  EXPECT_NE(nbio::errno_code(ECONNRESET), std::errc::broken_pipe);
  EXPECT_NE(nbio::errno_code(ECONNRESET), errc::eof);
}

TEST(error_category, errno_code_message_is_strerror) {
  EXPECT_EQ(nbio::errno_code(ECONNRESET).message(), std::string(std::strerror(ECONNRESET)));
}

}  // namespace
