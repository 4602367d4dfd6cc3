// Private. TLS 1.3 record protection after the handshake (RFC 8446 §5), nbio's own.
//
// OpenSSL runs the handshake; once a TLS 1.3 connection is established, all it needs to go on
// is, per direction, the traffic secret, the next record's sequence number and the cipher
// suite (issue 15, docs/tls.md). A record_direction holds exactly that, and derives the key
// and IV from the secret (HKDF-Expand-Label) and an EVP AEAD context from them only while the
// connection moves bytes: release() drops the context and the IV, so an idle connection keeps
// 80 bytes per direction (the secret, the sequence number, the suite). Written here rather
// than taken from OpenSSL because OpenSSL's record layer comes only with its SSL object (7.6 KB,
// plus buffers and contexts, per connection); the cryptography itself is OpenSSL's EVP.
//
// The nonce is the IV XOR the sequence number, and the sequence number is advanced by the
// only function that uses it, after each record: a direction never seals or opens two records
// under one sequence number, and refuses to go on before the number would wrap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace nbio::tls::detail {

// The TLS 1.3 cipher suites (RFC 8446 §B.4), by their IANA numbers.
enum class suite : std::uint16_t {
  aes_128_gcm_sha256 = 0x1301,
  aes_256_gcm_sha384 = 0x1302,
  chacha20_poly1305_sha256 = 0x1303,
};
// Whether nbio's record layer supports the suite numbered `id` (the CCM suites it does not).
bool supported(std::uint16_t id) noexcept;
// The suite's hash length (32 or 48): the length of its traffic secrets.
std::size_t hash_size(suite s) noexcept;

// Record content types (RFC 8446 §5.1).
enum class content : std::uint8_t {
  change_cipher_spec = 20,
  alert = 21,
  handshake = 22,
  application_data = 23,
};

// Alert descriptions (RFC 8446 §6) the record layer sends or reads by name.
enum alert : std::uint8_t {
  close_notify_alert = 0,
  unexpected_message_alert = 10,
  bad_record_mac_alert = 20,
  record_overflow_alert = 22,
  illegal_parameter_alert = 47,
  decode_error_alert = 50,
  internal_error_alert = 80,
  user_canceled_alert = 90,
};

// Why a record could not be sealed or opened, each with the alert that says so to the peer
// (alert_for). The connection ends after any of them.
enum class record_error : std::uint8_t {
  ok,
  bad_record_mac,      // the tag does not verify (tampered bytes, wrong keys or sequence)
  record_overflow,     // a ciphertext over 2^14 + 256 bytes or a plaintext over 2^14
  unexpected_message,  // a record of another outer type, or all padding with no content type
  decode_error,        // a header that is not a TLS 1.3 record's, or a record too short
  sequence_exhausted,  // 2^64 - 1 records sent or received under one key: no further one
  internal_error,      // OpenSSL failed (memory)
};
// The alert description (RFC 8446 §6) for an error.
std::uint8_t alert_for(record_error e) noexcept;
const char* describe(record_error e) noexcept;

inline constexpr std::size_t record_header_size = 5;
inline constexpr std::size_t record_tag_size = 16;
inline constexpr std::size_t max_plaintext = std::size_t{1} << 14;
inline constexpr std::size_t max_ciphertext = max_plaintext + 256;
// The most a sealed record adds to its plaintext: header, content type, tag.
inline constexpr std::size_t record_overhead = record_header_size + 1 + record_tag_size;

// HKDF-Expand-Label (RFC 8446 §7.1) with the suite's hash: fills `out` from `secret`, the label
// (without its "tls13 " prefix) and the context. False when OpenSSL fails.
bool hkdf_expand_label(suite s, std::span<const std::uint8_t> secret, std::string_view label,
                       std::span<const std::uint8_t> context, std::span<std::uint8_t> out) noexcept;

// The size of the record at the front of `bytes`, header included, in `total`: 0 while its
// header is incomplete. An error when the header cannot be a TLS 1.3 protected record's
// (outer type application_data, legacy version 3.3, length at most 2^14 + 256).
record_error record_size(std::string_view bytes, std::size_t& total) noexcept;

// One direction of a connection's record protection: sealing what this side sends, or opening
// what the peer sends.
class record_direction {
 public:
  enum role : std::uint8_t { seals, opens };

  record_direction() = default;
  ~record_direction();
  record_direction(const record_direction&) = delete;
  record_direction& operator=(const record_direction&) = delete;

  // The traffic secret (hash_size(s) bytes) and the sequence number of the next record.
  // False when the secret has the wrong length.
  bool init(role r, suite s, std::span<const std::uint8_t> secret, std::uint64_t seq = 0) noexcept;
  // KeyUpdate (RFC 8446 §7.2): the next traffic secret, HKDF-Expand-Label(secret, "traffic
  // upd", "", Hash.length), from sequence number 0.
  bool update() noexcept;
  // Drops the key, the IV and the AEAD context (an idle connection): the next record derives
  // them again from the secret.
  void release() noexcept;

  std::uint64_t sequence() const noexcept { return seq_; }
  suite cipher_suite() const noexcept { return suite_; }
  bool active() const noexcept { return ctx_ != nullptr; }

  // Appends to `out` one record carrying `plaintext` (at most max_plaintext bytes) as `type`,
  // with no padding.
  record_error seal(content type, std::string_view plaintext, std::string& out) noexcept;
  // The same into `out`, which has room for plaintext.size() + record_overhead bytes (and may
  // hold the plaintext itself, at out + record_header_size); `written` is the record's size.
  record_error seal(content type, std::string_view plaintext, char* out,
                    std::size_t& written) noexcept;
  // Opens one whole record (as record_size measured it), decrypting in place: on success
  // `type` is its inner content type and `plaintext` a view into `record`, padding removed.
  record_error open(std::span<char> record, content& type, std::string_view& plaintext) noexcept;

 private:
  bool keys() noexcept;
  bool crypt(std::uint8_t* record, int inner) noexcept;
  void nonce(std::uint8_t out[12]) const noexcept;

  std::uint8_t secret_[48] = {};
  std::uint64_t seq_ = 0;
  suite suite_ = suite::aes_128_gcm_sha256;
  role role_ = seals;
  std::uint8_t secret_size_ = 0;
  // While active: the IV (the key lives in the context only).
  std::uint8_t iv_[12] = {};
  EVP_CIPHER_CTX* ctx_ = nullptr;
};

}  // namespace nbio::tls::detail
