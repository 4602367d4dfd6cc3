// Test certificates with OpenSSL's X509 API: keys, a CA, leaf certificates with SANs.
#include "support/test_certs.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace nbio_test {
namespace {

struct key_deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct x509_deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using key_ptr = std::unique_ptr<EVP_PKEY, key_deleter>;
using x509_ptr = std::unique_ptr<X509, x509_deleter>;

key_ptr make_key(bool rsa) {
  EVP_PKEY* k = rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))
                    : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!k) throw std::runtime_error("test_certs: key generation failed");
  return key_ptr(k);
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) throw std::runtime_error(std::string("test_certs: extension ") + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct cert_spec {
  const char* cn;
  const char* san = nullptr;  // subjectAltName value, null: none
  bool ca = false;
  bool client = false;
  long not_before_days = -1;
  long not_after_days = 30;
};

x509_ptr make_cert(const cert_spec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  static long serial = 1;
  x509_ptr cert(X509_new());
  X509* x = cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_time_adj_ex(X509_getm_notBefore(x), static_cast<int>(spec.not_before_days), 0, nullptr);
  X509_time_adj_ex(X509_getm_notAfter(x), static_cast<int>(spec.not_after_days), 0, nullptr);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("nbio tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.cn), -1, -1, 0);
  X509* signer = issuer ? issuer : x;
  X509_set_issuer_name(x, X509_get_subject_name(signer));
  if (spec.ca) {
    add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(x, signer, NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth");
  }
  add_ext(x, signer, NID_subject_key_identifier, "hash");
  if (issuer) add_ext(x, signer, NID_authority_key_identifier, "keyid:always");
  if (spec.san) add_ext(x, signer, NID_subject_alt_name, spec.san);
  if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
    throw std::runtime_error("test_certs: signing failed");
  return cert;
}

void write_pem(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f || !PEM_write_X509(f, cert)) throw std::runtime_error("test_certs: write " + path);
  std::fclose(f);
}

void write_key(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f || !PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr))
    throw std::runtime_error("test_certs: write " + path);
  std::fclose(f);
}

struct authority {
  key_ptr key;
  x509_ptr cert;
};

cert_files issue(const std::string& dir, const std::string& name, const authority& ca,
                 const cert_spec& spec, bool rsa = false) {
  key_ptr key = make_key(rsa);
  x509_ptr cert = make_cert(spec, key.get(), ca.cert.get(), ca.key.get());
  cert_files out{dir + "/" + name + ".pem", dir + "/" + name + ".key"};
  write_pem(out.chain, cert.get());
  write_key(out.key, key.get());
  return out;
}

constexpr const char* localhost_san = "DNS:localhost,IP:127.0.0.1,IP:::1";

authority* the_ca = nullptr;  // kept for server_rsa()

}  // namespace

const test_pki& test_pki::get() {
  static const test_pki pki = [] {
    test_pki p;
    char tmpl[] = "/tmp/nbio-test-certs-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("test_certs: mkdtemp");
    p.dir = tmpl;
    static std::string dir_to_remove = p.dir;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir_to_remove, ec);
    });
    static authority ca{make_key(false), nullptr};
    ca.cert = make_cert({.cn = "nbio test CA", .ca = true, .not_after_days = 60}, ca.key.get(),
                        nullptr, nullptr);
    the_ca = &ca;
    p.ca = p.dir + "/ca.pem";
    write_pem(p.ca, ca.cert.get());
    p.server = issue(p.dir, "server", ca, {.cn = "localhost", .san = localhost_san});
    p.other_host =
        issue(p.dir, "other", ca, {.cn = "other.test", .san = "DNS:other.test,DNS:*.wild.test"});
    p.expired = issue(
        p.dir, "expired", ca,
        {.cn = "localhost", .san = localhost_san, .not_before_days = -30, .not_after_days = -1});
    p.wrong_host = issue(p.dir, "wrong", ca, {.cn = "wrong.example", .san = "DNS:wrong.example"});
    p.client = issue(p.dir, "client", ca, {.cn = "nbio test client", .client = true});
    authority foreign{make_key(false), nullptr};
    foreign.cert =
        make_cert({.cn = "untrusted CA", .ca = true}, foreign.key.get(), nullptr, nullptr);
    p.foreign_ca = p.dir + "/foreign_ca.pem";
    write_pem(p.foreign_ca, foreign.cert.get());
    p.foreign = issue(p.dir, "foreign", foreign, {.cn = "localhost", .san = localhost_san});
    return p;
  }();
  return pki;
}

const cert_files& test_pki::server_rsa() const {
  static std::once_flag once;
  static cert_files files;
  std::call_once(once, [this] {
    files = issue(dir, "server_rsa", *the_ca, {.cn = "localhost", .san = localhost_san}, true);
  });
  return files;
}

}  // namespace nbio_test
