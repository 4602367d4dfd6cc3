// Private. TLS 1.3 record protection: key schedule pieces and the AEAD (record.hpp says why it
// is nbio's own).
#include "tls/record.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace nbio::tls::detail {

namespace {

// The AEADs from OpenSSL's default provider, each fetched once: a context rebuilt after an
// idle spell (record_direction::keys) would otherwise fetch again, under a lock.
const EVP_CIPHER* cipher_of(suite s) noexcept {
  static EVP_CIPHER* const aes128 = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  static EVP_CIPHER* const aes256 = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  static EVP_CIPHER* const chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  switch (s) {
    case suite::aes_128_gcm_sha256:
      return aes128;
    case suite::aes_256_gcm_sha384:
      return aes256;
    case suite::chacha20_poly1305_sha256:
      return chacha;
  }
  return nullptr;
}

std::size_t key_size(suite s) noexcept {
  return s == suite::aes_128_gcm_sha256 ? 16 : 32;
}

// HMAC with the suite's hash, keyed anew for each HKDF-Expand: one context per hash and thread,
// made once. OpenSSL's HKDF (EVP_KDF) would make a context, look its digest up by name and take
// the provider's locks on every call: ~24,000 instructions against ~5,000, and a connection
// derives five times between its handshake and its first records.
EVP_MAC_CTX* hmac_for(suite s) noexcept {
  struct contexts {
    EVP_MAC_CTX* sha256 = nullptr;
    EVP_MAC_CTX* sha384 = nullptr;
    ~contexts() {
      EVP_MAC_CTX_free(sha256);
      EVP_MAC_CTX_free(sha384);
    }
  };
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  thread_local contexts per_thread;
  const bool wide = s == suite::aes_256_gcm_sha384;
  EVP_MAC_CTX*& ctx = wide ? per_thread.sha384 : per_thread.sha256;
  if (!ctx && hmac) {
    EVP_MAC_CTX* made = EVP_MAC_CTX_new(hmac);
    char* md = const_cast<char*>(wide ? "SHA384" : "SHA256");
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, md, 0),
        OSSL_PARAM_construct_end(),
    };
    if (made && EVP_MAC_CTX_set_params(made, params) == 1)
      ctx = made;
    else
      EVP_MAC_CTX_free(made);
  }
  return ctx;
}

}  // namespace

bool supported(std::uint16_t id) noexcept {
  return id == 0x1301 || id == 0x1302 || id == 0x1303;
}

std::size_t hash_size(suite s) noexcept {
  return s == suite::aes_256_gcm_sha384 ? 48 : 32;
}

std::uint8_t alert_for(record_error e) noexcept {
  switch (e) {
    case record_error::ok:
      return close_notify_alert;  // unused
    case record_error::bad_record_mac:
      return bad_record_mac_alert;
    case record_error::record_overflow:
      return record_overflow_alert;
    case record_error::unexpected_message:
      return unexpected_message_alert;
    case record_error::decode_error:
      return decode_error_alert;
    case record_error::sequence_exhausted:
    case record_error::internal_error:
      return internal_error_alert;
  }
  return internal_error_alert;
}

const char* describe(record_error e) noexcept {
  switch (e) {
    case record_error::ok:
      return "ok";
    case record_error::bad_record_mac:
      return "TLS record failed authentication (bad_record_mac)";
    case record_error::record_overflow:
      return "TLS record over the size limit (record_overflow)";
    case record_error::unexpected_message:
      return "unexpected TLS record (unexpected_message)";
    case record_error::decode_error:
      return "malformed TLS record header (decode_error)";
    case record_error::sequence_exhausted:
      return "TLS record sequence number exhausted";
    case record_error::internal_error:
      return "TLS record layer internal error";
  }
  return "TLS record layer internal error";
}

bool hkdf_expand_label(suite s, std::span<const std::uint8_t> secret, std::string_view label,
                       std::span<const std::uint8_t> context,
                       std::span<std::uint8_t> out) noexcept {
  // struct { uint16 length; opaque label<7..255> = "tls13 " + Label; opaque context<0..255>; }
  constexpr std::string_view prefix = "tls13 ";
  if (out.size() > 0xffff || prefix.size() + label.size() > 255 || context.size() > 255)
    return false;
  std::uint8_t info[2 + 1 + 255 + 1 + 255];
  std::size_t n = 0;
  info[n++] = static_cast<std::uint8_t>(out.size() >> 8);
  info[n++] = static_cast<std::uint8_t>(out.size());
  info[n++] = static_cast<std::uint8_t>(prefix.size() + label.size());
  std::memcpy(info + n, prefix.data(), prefix.size());
  n += prefix.size();
  std::memcpy(info + n, label.data(), label.size());
  n += label.size();
  info[n++] = static_cast<std::uint8_t>(context.size());
  if (!context.empty()) std::memcpy(info + n, context.data(), context.size());
  n += context.size();

  // HKDF-Expand (RFC 5869 §2.3): T(i) = HMAC(secret, T(i-1) | info | i), the output their
  // concatenation (one block for every TLS 1.3 key, IV and secret).
  EVP_MAC_CTX* ctx = hmac_for(s);
  if (!ctx) return false;
  std::uint8_t block[EVP_MAX_MD_SIZE];
  std::size_t block_size = 0, done = 0;
  for (std::uint8_t i = 1; done < out.size(); ++i) {
    std::size_t produced = 0;
    if (i == 0 || EVP_MAC_init(ctx, secret.data(), secret.size(), nullptr) != 1 ||
        (block_size && EVP_MAC_update(ctx, block, block_size) != 1) ||
        EVP_MAC_update(ctx, info, n) != 1 || EVP_MAC_update(ctx, &i, 1) != 1 ||
        EVP_MAC_final(ctx, block, &produced, sizeof block) != 1) {
      OPENSSL_cleanse(block, sizeof block);
      return false;
    }
    block_size = produced;
    const std::size_t take = std::min(produced, out.size() - done);
    std::memcpy(out.data() + done, block, take);
    done += take;
  }
  OPENSSL_cleanse(block, sizeof block);
  return true;
}

record_error record_size(std::string_view bytes, std::size_t& total) noexcept {
  total = 0;
  if (bytes.size() < record_header_size) return record_error::ok;
  const auto* b = reinterpret_cast<const std::uint8_t*>(bytes.data());
  // After the handshake every record is protected: outer type application_data, legacy
  // version 3.3 (RFC 8446 §5.2). A change_cipher_spec is no longer allowed either (§5).
  if (b[0] != static_cast<std::uint8_t>(content::application_data))
    return record_error::unexpected_message;
  if (b[1] != 3 || b[2] != 3) return record_error::decode_error;
  const std::size_t length = std::size_t{b[3]} << 8 | b[4];
  if (length > max_ciphertext) return record_error::record_overflow;
  if (length < record_tag_size + 1) return record_error::decode_error;
  total = record_header_size + length;
  return record_error::ok;
}

record_direction::~record_direction() {
  release();
  OPENSSL_cleanse(secret_, sizeof secret_);
}

bool record_direction::init(role r, suite s, std::span<const std::uint8_t> secret,
                            std::uint64_t seq) noexcept {
  release();
  if (secret.size() != hash_size(s)) return false;
  role_ = r;
  suite_ = s;
  secret_size_ = static_cast<std::uint8_t>(secret.size());
  std::memcpy(secret_, secret.data(), secret.size());
  seq_ = seq;
  return true;
}

bool record_direction::update() noexcept {
  std::uint8_t next[48];
  const std::span<std::uint8_t> out(next, secret_size_);
  if (!hkdf_expand_label(suite_, {secret_, secret_size_}, "traffic upd", {}, out)) return false;
  release();
  std::memcpy(secret_, next, secret_size_);
  OPENSSL_cleanse(next, sizeof next);
  seq_ = 0;
  return true;
}

void record_direction::release() noexcept {
  if (ctx_) {
    EVP_CIPHER_CTX_free(ctx_);  // cleanses the key schedule
    ctx_ = nullptr;
  }
  OPENSSL_cleanse(iv_, sizeof iv_);
}

bool record_direction::keys() noexcept {
  if (ctx_) return true;
  if (secret_size_ == 0) return false;
  std::uint8_t key[32];
  const std::span<const std::uint8_t> secret(secret_, secret_size_);
  bool ok = hkdf_expand_label(suite_, secret, "key", {}, {key, key_size(suite_)}) &&
            hkdf_expand_label(suite_, secret, "iv", {}, {iv_, sizeof iv_});
  if (ok) {
    ctx_ = EVP_CIPHER_CTX_new();
    ok = ctx_ && EVP_CipherInit_ex(ctx_, cipher_of(suite_), nullptr, key, nullptr,
                                   role_ == seals ? 1 : 0) == 1;
  }
  OPENSSL_cleanse(key, sizeof key);
  if (!ok) release();
  return ok;
}

// The per-record nonce (RFC 8446 §5.3): the sequence number, big-endian and left-padded to
// the IV's 12 bytes, XOR the IV.
void record_direction::nonce(std::uint8_t out[12]) const noexcept {
  std::memcpy(out, iv_, 12);
  for (int i = 0; i < 8; ++i)
    out[4 + i] ^= static_cast<std::uint8_t>(seq_ >> (56 - 8 * i));
}

// The AEAD over one record in place (`inner` bytes after the header, the tag after them), the
// header as additional data, under this sequence number's nonce: sealing writes the tag,
// opening checks it. The one place the sequence number advances: after a record it protected.
bool record_direction::crypt(std::uint8_t* record, int inner) noexcept {
  std::uint8_t* body = record + record_header_size;
  std::uint8_t iv[12];
  nonce(iv);
  const int enc = role_ == seals ? 1 : 0;
  int n = 0, tail = 0;
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, iv, enc) != 1 ||
      EVP_CipherUpdate(ctx_, nullptr, &n, record, record_header_size) != 1 ||
      EVP_CipherUpdate(ctx_, body, &n, body, inner) != 1)
    return false;
  if (!enc && EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, record_tag_size, body + inner) != 1)
    return false;
  if (EVP_CipherFinal_ex(ctx_, body + n, &tail) != 1) return false;
  if (enc && EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, record_tag_size, body + inner) != 1)
    return false;
  ++seq_;
  return true;
}

record_error record_direction::seal(content type, std::string_view plaintext,
                                    std::string& out) noexcept {
  const std::size_t at = out.size();
  try {
    out.resize(at + plaintext.size() + record_overhead);
  } catch (...) {
    return record_error::internal_error;
  }
  std::size_t written = 0;
  const record_error e = seal(type, plaintext, out.data() + at, written);
  out.resize(at + written);
  return e;
}

record_error record_direction::seal(content type, std::string_view plaintext, char* out,
                                    std::size_t& written) noexcept {
  written = 0;
  if (role_ != seals) return record_error::internal_error;
  if (plaintext.size() > max_plaintext) return record_error::record_overflow;
  if (seq_ == std::numeric_limits<std::uint64_t>::max()) return record_error::sequence_exhausted;
  if (!keys()) return record_error::internal_error;
  const std::size_t length = plaintext.size() + 1 + record_tag_size;
  auto* p = reinterpret_cast<std::uint8_t*>(out);
  p[0] = static_cast<std::uint8_t>(content::application_data);
  p[1] = 3;
  p[2] = 3;
  p[3] = static_cast<std::uint8_t>(length >> 8);
  p[4] = static_cast<std::uint8_t>(length);
  std::uint8_t* body = p + record_header_size;
  // TLSInnerPlaintext: the content, then its type (no padding), encrypted in place.
  if (!plaintext.empty() && plaintext.data() != reinterpret_cast<const char*>(body))
    std::memmove(body, plaintext.data(), plaintext.size());
  body[plaintext.size()] = static_cast<std::uint8_t>(type);
  if (!crypt(p, static_cast<int>(plaintext.size() + 1))) return record_error::internal_error;
  written = record_header_size + length;
  return record_error::ok;
}

record_error record_direction::open(std::span<char> record, content& type,
                                    std::string_view& plaintext) noexcept {
  if (role_ != opens) return record_error::internal_error;
  std::size_t total = 0;
  if (auto e = record_size({record.data(), record.size()}, total); e != record_error::ok) return e;
  if (total == 0 || total != record.size()) return record_error::decode_error;
  if (seq_ == std::numeric_limits<std::uint64_t>::max()) return record_error::sequence_exhausted;
  if (!keys()) return record_error::internal_error;
  auto* p = reinterpret_cast<std::uint8_t*>(record.data());
  std::uint8_t* body = p + record_header_size;
  const int inner = static_cast<int>(total - record_header_size - record_tag_size);
  if (!crypt(p, inner)) return record_error::bad_record_mac;
  // Zero padding after the content type (§5.4): the type is the last non-zero byte.
  int end = inner;
  while (end > 0 && body[end - 1] == 0)
    --end;
  if (end == 0) return record_error::unexpected_message;
  if (static_cast<std::size_t>(end - 1) > max_plaintext) return record_error::record_overflow;
  type = static_cast<content>(body[end - 1]);
  plaintext =
      std::string_view(reinterpret_cast<const char*>(body), static_cast<std::size_t>(end - 1));
  return record_error::ok;
}

}  // namespace nbio::tls::detail
