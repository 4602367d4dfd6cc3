// Unit: nbio's TLS 1.3 record layer (src/tls/record.hpp). Known answers from RFC 8448 §3 (the
// simple 1-RTT trace: traffic keys and the application data records of both sides), records
// exchanged with OpenSSL's own record layer after a real handshake (both ways, through memory
// BIOs), a table of hostile records, each refused with its alert and nothing delivered, and
// the hand-off from OpenSSL (handoff.hpp): the peer accepts nbio's first records after it.
#include "tls/record.hpp"
#include "tls/handoff.hpp"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "support/test_certs.hpp"

namespace {

using namespace nbio::tls::detail;

std::vector<std::uint8_t> unhex(std::string_view h) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}
std::string bytes(std::string_view h) {
  auto v = unhex(h);
  return {v.begin(), v.end()};
}
std::string hex(std::span<const std::uint8_t> b) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::uint8_t c : b) {
    s += digits[c >> 4];
    s += digits[c & 15];
  }
  return s;
}

// RFC 8448 §3, "Simple 1-RTT Handshake".
const char* client_ap_secret = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
const char* server_ap_secret = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";
// {client} send application_data record (the client's first, sequence 0): 00..31.
const char* client_record =
    "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a2044"
    "1e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4";
// {server} send application_data record (the server's second: its NewSessionTicket was 0).
const char* server_record =
    "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb501a"
    "59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d";
// {client} send alert record: close_notify (01 00), the client's second record.
const char* client_alert = "1703030013c9872760655666b74d7ff1153efd6db6d0b0e3";

std::string zero_to_49() {
  std::string s;
  for (int i = 0; i < 50; ++i)
    s += static_cast<char>(i);
  return s;
}

TEST(tls_record, hkdf_expand_label_gives_rfc_8448s_application_keys) {
  auto secret = unhex(client_ap_secret);
  std::uint8_t key[16], iv[12];
  ASSERT_TRUE(hkdf_expand_label(suite::aes_128_gcm_sha256, secret, "key", {}, key));
  ASSERT_TRUE(hkdf_expand_label(suite::aes_128_gcm_sha256, secret, "iv", {}, iv));
  EXPECT_EQ(hex(key), "17422dda596ed5d9acd890e3c63f5051");
  EXPECT_EQ(hex(iv), "5b78923dee08579033e523d9");
  secret = unhex(server_ap_secret);
  ASSERT_TRUE(hkdf_expand_label(suite::aes_128_gcm_sha256, secret, "key", {}, key));
  ASSERT_TRUE(hkdf_expand_label(suite::aes_128_gcm_sha256, secret, "iv", {}, iv));
  EXPECT_EQ(hex(key), "9f02283b6c9c07efc26bb9f2ac92e356");
  EXPECT_EQ(hex(iv), "cf782b88dd83549aadf1e984");
}

// nbio's HKDF-Expand (HMAC blocks) against OpenSSL's HKDF, for each hash, past one block and
// with a context: the RFC 8448 keys above are all one block long.
TEST(tls_record, hkdf_expand_label_matches_openssls_hkdf_for_long_outputs) {
  const std::string label = "test label", context = "some context";
  for (suite s : {suite::aes_128_gcm_sha256, suite::aes_256_gcm_sha384}) {
    const std::size_t hash = hash_size(s);
    std::vector<std::uint8_t> secret(hash);
    for (std::size_t i = 0; i < hash; ++i)
      secret[i] = static_cast<std::uint8_t>(i * 7 + 1);
    for (std::size_t length : {std::size_t{1}, hash, hash + 1, 3 * hash + 5}) {
      SCOPED_TRACE(std::to_string(hash) + " " + std::to_string(length));
      std::vector<std::uint8_t> ours(length), theirs(length);
      ASSERT_TRUE(hkdf_expand_label(
          s, secret, label, {reinterpret_cast<const std::uint8_t*>(context.data()), context.size()},
          ours));
      std::string info;  // HkdfLabel (RFC 8446 §7.1)
      info += static_cast<char>(length >> 8);
      info += static_cast<char>(length & 0xff);
      info += static_cast<char>(6 + label.size());
      info += "tls13 " + label;
      info += static_cast<char>(context.size());
      info += context;
      EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
      EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
      int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
      char* md = const_cast<char*>(hash == 48 ? "SHA384" : "SHA256");
      const OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, md, 0),
          OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
          OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret.data(), secret.size()),
          OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
          OSSL_PARAM_construct_end(),
      };
      ASSERT_EQ(EVP_KDF_derive(ctx, theirs.data(), theirs.size(), params), 1);
      EVP_KDF_CTX_free(ctx);
      EVP_KDF_free(kdf);
      EXPECT_EQ(ours, theirs);
    }
  }
}

TEST(tls_record, seals_rfc_8448s_records_byte_for_byte) {
  record_direction client;
  ASSERT_TRUE(
      client.init(record_direction::seals, suite::aes_128_gcm_sha256, unhex(client_ap_secret)));
  std::string out;
  ASSERT_EQ(client.seal(content::application_data, zero_to_49(), out), record_error::ok);
  EXPECT_EQ(out, bytes(client_record));
  out.clear();
  ASSERT_EQ(client.seal(content::alert, std::string("\x01\x00", 2), out), record_error::ok);
  EXPECT_EQ(out, bytes(client_alert));
  EXPECT_EQ(client.sequence(), 2u);

  record_direction server;
  ASSERT_TRUE(
      server.init(record_direction::seals, suite::aes_128_gcm_sha256, unhex(server_ap_secret), 1));
  out.clear();
  ASSERT_EQ(server.seal(content::application_data, zero_to_49(), out), record_error::ok);
  EXPECT_EQ(out, bytes(server_record));
}

TEST(tls_record, opens_rfc_8448s_records_and_advances_the_sequence) {
  record_direction from_client;
  ASSERT_TRUE(from_client.init(record_direction::opens, suite::aes_128_gcm_sha256,
                               unhex(client_ap_secret)));
  std::string rec = bytes(client_record);
  std::size_t total = 0;
  ASSERT_EQ(record_size(rec, total), record_error::ok);
  EXPECT_EQ(total, rec.size());
  content type{};
  std::string_view plain;
  ASSERT_EQ(from_client.open(rec, type, plain), record_error::ok);
  EXPECT_EQ(type, content::application_data);
  EXPECT_EQ(plain, zero_to_49());
  rec = bytes(client_alert);
  ASSERT_EQ(from_client.open(rec, type, plain), record_error::ok);
  EXPECT_EQ(type, content::alert);
  EXPECT_EQ(plain, std::string("\x01\x00", 2));
  EXPECT_EQ(from_client.sequence(), 2u);
}

TEST(tls_record, every_suite_round_trips_across_key_updates_and_idle_releases) {
  for (suite s :
       {suite::aes_128_gcm_sha256, suite::aes_256_gcm_sha384, suite::chacha20_poly1305_sha256}) {
    std::vector<std::uint8_t> secret(hash_size(s), 0x5a);
    record_direction tx, rx;
    ASSERT_TRUE(tx.init(record_direction::seals, s, secret));
    ASSERT_TRUE(rx.init(record_direction::opens, s, secret));
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{1000}, max_plaintext}) {
      for (int round = 0; round < 3; ++round) {
        std::string msg(size, static_cast<char>('a' + round));
        std::string wire;
        ASSERT_EQ(tx.seal(content::application_data, msg, wire), record_error::ok);
        EXPECT_EQ(wire.size(), msg.size() + record_overhead);
        content type{};
        std::string_view plain;
        ASSERT_EQ(rx.open(wire, type, plain), record_error::ok) << static_cast<int>(s);
        EXPECT_EQ(plain, msg);
        if (round == 1) {  // idle between records: the contexts go, the secrets stay
          tx.release();
          rx.release();
          EXPECT_FALSE(tx.active());
        }
      }
      ASSERT_TRUE(tx.update());
      ASSERT_TRUE(rx.update());
      EXPECT_EQ(tx.sequence(), 0u);
    }
  }
}

TEST(tls_record, a_sequence_number_is_never_reused_nor_wrapped) {
  std::vector<std::uint8_t> secret(32, 1);
  record_direction tx;
  ASSERT_TRUE(tx.init(record_direction::seals, suite::aes_128_gcm_sha256, secret, UINT64_MAX - 1));
  std::string wire;
  EXPECT_EQ(tx.seal(content::application_data, "last", wire), record_error::ok);
  EXPECT_EQ(tx.sequence(), UINT64_MAX);
  EXPECT_EQ(tx.seal(content::application_data, "one more", wire), record_error::sequence_exhausted);
  // Two records with the same plaintext under consecutive sequence numbers differ.
  record_direction a;
  ASSERT_TRUE(a.init(record_direction::seals, suite::aes_128_gcm_sha256, secret));
  std::string first, second;
  ASSERT_EQ(a.seal(content::application_data, "same", first), record_error::ok);
  ASSERT_EQ(a.seal(content::application_data, "same", second), record_error::ok);
  EXPECT_NE(first, second);
}

// Hostile records: each is refused with its alert, and nothing is delivered.
TEST(tls_record, hostile_records_get_their_alert) {
  const std::string good = bytes(client_record);
  struct row {
    const char* name;
    std::string record;
    record_error want;
  };
  std::string tag_flipped = good;
  tag_flipped.back() ^= 1;
  std::string body_flipped = good;
  body_flipped[10] ^= 0x80;
  std::string header_length = good;  // the length is authenticated: a change breaks the tag
  header_length[4] = static_cast<char>(header_length[4] - 1);
  header_length.pop_back();
  std::string outer_handshake = good;
  outer_handshake[0] = 22;
  std::string outer_ccs = good;
  outer_ccs[0] = 20;
  std::string old_version = good;
  old_version[2] = 1;
  std::string too_long = "\x17\x03\x03\x41\x01" + std::string(0x4101, 'x');
  std::string too_short = std::string("\x17\x03\x03\x00\x10", 5) + std::string(16, 'x');
  std::string truncated = good.substr(0, good.size() - 1);
  const std::vector<row> rows = {
      {"tag flipped", tag_flipped, record_error::bad_record_mac},
      {"ciphertext flipped", body_flipped, record_error::bad_record_mac},
      {"length changed", header_length, record_error::bad_record_mac},
      {"outer type handshake", outer_handshake, record_error::unexpected_message},
      {"change_cipher_spec after the handshake", outer_ccs, record_error::unexpected_message},
      {"legacy version 3.1", old_version, record_error::decode_error},
      {"ciphertext over 2^14 + 256", too_long, record_error::record_overflow},
      {"shorter than a tag and a type", too_short, record_error::decode_error},
      {"truncated", truncated, record_error::decode_error},
  };
  for (const row& r : rows) {
    record_direction rx;
    ASSERT_TRUE(
        rx.init(record_direction::opens, suite::aes_128_gcm_sha256, unhex(client_ap_secret)));
    std::string rec = r.record;
    content type = content::handshake;
    std::string_view plain = "untouched";
    EXPECT_EQ(rx.open(rec, type, plain), r.want) << r.name;
    EXPECT_EQ(plain, "untouched") << r.name;
    EXPECT_NE(alert_for(r.want), 0) << r.name;
  }
  // The right record under the wrong sequence number (a replay, or a skipped record).
  record_direction rx;
  ASSERT_TRUE(
      rx.init(record_direction::opens, suite::aes_128_gcm_sha256, unhex(client_ap_secret), 1));
  std::string rec = good;
  content type{};
  std::string_view plain;
  EXPECT_EQ(rx.open(rec, type, plain), record_error::bad_record_mac);
}

TEST(tls_record, padding_is_stripped_and_all_padding_is_refused) {
  // Sealed by hand: TLSInnerPlaintext with zero padding, through a sealing direction whose
  // "content" is the padded inner plaintext minus its last byte as the type.
  std::vector<std::uint8_t> secret(32, 9);
  record_direction tx, rx;
  ASSERT_TRUE(tx.init(record_direction::seals, suite::aes_128_gcm_sha256, secret));
  ASSERT_TRUE(rx.init(record_direction::opens, suite::aes_128_gcm_sha256, secret));
  std::string wire;
  // content "hi", type application_data (23), then padding 00 00 00: sealed as "hi\x17\0\0"
  // with a final type byte 0.
  ASSERT_EQ(tx.seal(static_cast<content>(0), std::string("hi\x17\0\0", 5), wire), record_error::ok);
  content type{};
  std::string_view plain;
  ASSERT_EQ(rx.open(wire, type, plain), record_error::ok);
  EXPECT_EQ(type, content::application_data);
  EXPECT_EQ(plain, "hi");
  wire.clear();
  ASSERT_EQ(tx.seal(static_cast<content>(0), std::string(3, '\0'), wire), record_error::ok);
  EXPECT_EQ(rx.open(wire, type, plain), record_error::unexpected_message);
}

TEST(tls_record, record_size_frames_a_stream_split_anywhere) {
  const std::string rec = bytes(client_record);
  for (std::size_t cut = 0; cut <= rec.size(); ++cut) {
    std::size_t total = 99;
    ASSERT_EQ(record_size(std::string_view(rec).substr(0, cut), total), record_error::ok);
    EXPECT_EQ(total, cut < record_header_size ? 0u : rec.size()) << cut;
  }
}

// --- against OpenSSL's own record layer ---------------------------------------------------------

struct keylog {
  std::string client, server;  // CLIENT_TRAFFIC_SECRET_0, SERVER_TRAFFIC_SECRET_0 (hex)
};

void on_keylog(const SSL* ssl, const char* line) {
  auto* k = static_cast<keylog*>(SSL_get_app_data(ssl));
  std::string_view l(line);
  auto secret = l.substr(l.rfind(' ') + 1);
  if (l.starts_with("CLIENT_TRAFFIC_SECRET_0 ")) k->client = secret;
  if (l.starts_with("SERVER_TRAFFIC_SECRET_0 ")) k->server = secret;
}

// Moves what `from` wrote into `to`'s input.
void pump(SSL* from, SSL* to) {
  char buf[16384];
  int n;
  while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof buf)) > 0)
    BIO_write(SSL_get_rbio(to), buf, n);
}

std::string drain(SSL* from) {
  std::string out;
  char buf[16384];
  int n;
  while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof buf)) > 0)
    out.append(buf, static_cast<std::size_t>(n));
  return out;
}

TEST(tls_record, records_pass_between_nbio_and_openssl_both_ways_for_every_suite) {
  const auto& pki = nbio_test::test_pki::get();
  for (const char* name :
       {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
    SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
    ASSERT_EQ(SSL_CTX_use_certificate_chain_file(sctx, pki.server.chain.c_str()), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey_file(sctx, pki.server.key.c_str(), SSL_FILETYPE_PEM), 1);
    SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(sctx, name);
    SSL_CTX_set_ciphersuites(cctx, name);
    SSL_CTX_set_keylog_callback(sctx, on_keylog);
    keylog keys;
    SSL* server = SSL_new(sctx);
    SSL* client = SSL_new(cctx);
    SSL_set_app_data(server, &keys);
    SSL_set_bio(server, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_bio(client, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);
    // The server finishes on the client's Finished, and writes its session tickets then: they
    // stay in its output, the first records under its application secret.
    for (int i = 0; i < 10 && !SSL_is_init_finished(server); ++i) {
      SSL_do_handshake(client);
      pump(client, server);
      SSL_do_handshake(server);
      if (!SSL_is_init_finished(server)) pump(server, client);
    }
    ASSERT_TRUE(SSL_is_init_finished(server) && SSL_is_init_finished(client)) << name;
    const std::uint16_t id = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(server));
    ASSERT_TRUE(supported(id)) << name;
    const suite s = static_cast<suite>(id);
    ASSERT_EQ(keys.server.size(), 2 * hash_size(s)) << name;

    // OpenSSL's server writes after its session tickets (sequence 0 and 1): nbio opens them all.
    ASSERT_GT(SSL_write(server, "from openssl", 12), 0);
    std::string wire = drain(server);
    record_direction from_server;
    ASSERT_TRUE(from_server.init(record_direction::opens, s, unhex(keys.server)));
    std::string got;
    int tickets = 0;
    std::size_t at = 0;
    while (at < wire.size()) {
      std::size_t total = 0;
      ASSERT_EQ(record_size(std::string_view(wire).substr(at), total), record_error::ok);
      ASSERT_GT(total, 0u);
      content type{};
      std::string_view plain;
      ASSERT_EQ(from_server.open({wire.data() + at, total}, type, plain), record_error::ok) << name;
      if (type == content::handshake) ++tickets;
      if (type == content::application_data) got.append(plain);
      at += total;
    }
    EXPECT_EQ(got, "from openssl") << name;
    EXPECT_EQ(tickets, 2) << name;  // OpenSSL's default: two NewSessionTickets

    // nbio seals as the client (its first record, sequence 0): OpenSSL's server reads it.
    record_direction to_server;
    ASSERT_TRUE(to_server.init(record_direction::seals, s, unhex(keys.client)));
    std::string out;
    const std::string big(max_plaintext, 'z');
    ASSERT_EQ(to_server.seal(content::application_data, "from nbio", out), record_error::ok);
    ASSERT_EQ(to_server.seal(content::application_data, big, out), record_error::ok);
    BIO_write(SSL_get_rbio(server), out.data(), static_cast<int>(out.size()));
    std::string read;
    char buf[4096];
    int n;
    while ((n = SSL_read(server, buf, sizeof buf)) > 0)
      read.append(buf, static_cast<std::size_t>(n));
    EXPECT_EQ(read, "from nbio" + big) << name;
    SSL_free(server);
    SSL_free(client);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
  }
}

// --- the hand-off ------------------------------------------------------------------------

// An OpenSSL server and client over memory BIOs, each logging its secrets, handshaken with
// `suites` (TLS 1.3) or TLS 1.2 only.
struct pair_of_ssl {
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL* server = nullptr;
  SSL* client = nullptr;
  handoff_secrets server_keys, client_keys;

  static void log(const SSL* ssl, const char* line) {
    static_cast<handoff_secrets*>(SSL_get_app_data(ssl))->take(line);
  }
  explicit pair_of_ssl(int version = TLS1_3_VERSION) {
    const auto& pki = nbio_test::test_pki::get();
    SSL_CTX_use_certificate_chain_file(sctx, pki.server.chain.c_str());
    SSL_CTX_use_PrivateKey_file(sctx, pki.server.key.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_set_max_proto_version(sctx, version);
    SSL_CTX_set_keylog_callback(sctx, log);
    SSL_CTX_set_keylog_callback(cctx, log);
    server = SSL_new(sctx);
    client = SSL_new(cctx);
    SSL_set_app_data(server, &server_keys);
    SSL_set_app_data(client, &client_keys);
    SSL_set_bio(server, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_bio(client, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);
  }
  // Until both are done; under TLS 1.3 the server's last flight (its tickets) stays in its
  // output.
  bool handshake() {
    for (int i = 0; i < 10 && !SSL_is_init_finished(server); ++i) {
      SSL_do_handshake(client);
      pump(client, server);
      SSL_do_handshake(server);
      if (!SSL_is_init_finished(server)) pump(server, client);
    }
    if (!SSL_is_init_finished(client)) {  // TLS 1.2: the server finishes first
      pump(server, client);
      SSL_do_handshake(client);
    }
    return SSL_is_init_finished(server) && SSL_is_init_finished(client);
  }
  ~pair_of_ssl() {
    SSL_free(server);
    SSL_free(client);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
  }
};

// Opens every record of `wire` with rx: the application bytes, and how many handshake
// messages (tickets, key updates) went by.
std::string open_all(record_direction& rx, std::string wire, int* handshakes = nullptr) {
  std::string got;
  std::size_t at = 0;
  while (at < wire.size()) {
    std::size_t total = 0;
    if (record_size(std::string_view(wire).substr(at), total) != record_error::ok || total == 0)
      return got + "<bad frame>";
    content type{};
    std::string_view plain;
    if (rx.open({wire.data() + at, total}, type, plain) != record_error::ok)
      return got + "<bad record>";
    if (type == content::application_data) got.append(plain);
    if (type == content::handshake && handshakes) ++*handshakes;
    at += total;
  }
  return got;
}

std::string read_all(SSL* ssl) {
  std::string read;
  char buf[4096];
  int n;
  while ((n = SSL_read(ssl, buf, sizeof buf)) > 0)
    read.append(buf, static_cast<std::size_t>(n));
  return read;
}

TEST(tls_handoff, the_peer_accepts_the_first_records_after_a_server_hand_off) {
  pair_of_ssl p;
  ASSERT_TRUE(p.handshake());
  record_direction tx, rx;
  ASSERT_EQ(hand_off(p.server, p.server_keys, tx, rx), handoff_refusal::none);
  // What OpenSSL wrote (two tickets, then the KeyUpdate) goes first, then nbio's records.
  std::string wire = drain(p.server);
  const std::string big(max_plaintext, 'b');
  ASSERT_EQ(tx.seal(content::application_data, "first after the hand-off", wire), record_error::ok);
  ASSERT_EQ(tx.seal(content::application_data, big, wire), record_error::ok);
  BIO_write(SSL_get_rbio(p.client), wire.data(), static_cast<int>(wire.size()));
  EXPECT_EQ(read_all(p.client), "first after the hand-off" + big);
  // And the other way: the client's first application records open under its first secret.
  ASSERT_GT(SSL_write(p.client, "from the client", 15), 0);
  EXPECT_EQ(open_all(rx, drain(p.client)), "from the client");
  EXPECT_EQ(tx.sequence(), 2u);
  EXPECT_EQ(rx.sequence(), 1u);
}

TEST(tls_handoff, a_client_hands_off_too_and_passes_the_servers_tickets) {
  pair_of_ssl p;
  ASSERT_TRUE(p.handshake());
  record_direction tx, rx;
  ASSERT_EQ(hand_off(p.client, p.client_keys, tx, rx), handoff_refusal::none);
  std::string wire = drain(p.client);  // the client's KeyUpdate
  ASSERT_EQ(tx.seal(content::application_data, "GET / HTTP/1.1\r\n\r\n", wire), record_error::ok);
  BIO_write(SSL_get_rbio(p.server), wire.data(), static_cast<int>(wire.size()));
  EXPECT_EQ(read_all(p.server), "GET / HTTP/1.1\r\n\r\n");
  ASSERT_GT(SSL_write(p.server, "HTTP/1.1 200 OK", 15), 0);
  int handshakes = 0;
  EXPECT_EQ(open_all(rx, drain(p.server), &handshakes), "HTTP/1.1 200 OK");
  EXPECT_EQ(handshakes, 2);  // the tickets, passed by
}

TEST(tls_handoff, connections_it_cannot_take_stay_with_openssl) {
  {
    pair_of_ssl p(TLS1_2_VERSION);
    ASSERT_TRUE(p.handshake());
    record_direction tx, rx;
    EXPECT_EQ(hand_off(p.server, p.server_keys, tx, rx), handoff_refusal::not_tls13);
  }
  {
    pair_of_ssl p;
    ASSERT_TRUE(p.handshake());
    record_direction tx, rx;
    EXPECT_EQ(hand_off(p.server, handoff_secrets{}, tx, rx), handoff_refusal::no_secrets);
  }
  {
    pair_of_ssl p;
    ASSERT_TRUE(p.handshake());
    pump(p.server, p.client);
    ASSERT_GT(SSL_write(p.client, "early bytes", 11), 0);
    pump(p.client, p.server);
    char one;
    ASSERT_EQ(SSL_read(p.server, &one, 1), 1);  // OpenSSL holds the other 10
    record_direction tx, rx;
    EXPECT_EQ(hand_off(p.server, p.server_keys, tx, rx), handoff_refusal::data_seen);
    char rest[16];
    EXPECT_EQ(SSL_read(p.server, rest, sizeof rest), 10);  // still OpenSSL's, unchanged
  }
  EXPECT_STREQ(describe(handoff_refusal::data_seen), "OpenSSL already holds application data");
}

}  // namespace
