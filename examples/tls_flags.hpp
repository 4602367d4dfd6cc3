// Shared by the examples: the --tls-cert/--tls-key (and --tls-no-handoff) flags every server
// takes, and --tls-ca /
// --tls-insecure for the clients, turned into an nbio::tls::context.
//
//   tls_flags tls;
//   tls.add_server(app);               // before CLI11_PARSE
//   options.tls = tls.server_context("tcp_echo", {"http/1.1"});  // null without --tls-cert
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <nbio/tls/context.hpp>

struct tls_flags {
  std::string cert, key, ca;
  bool insecure = false;
  bool no_handoff = false;

  void add_server(CLI::App& app) {
    auto* c = app.add_option("--tls-cert", cert, "serve TLS: certificate chain (PEM, leaf first)");
    auto* k = app.add_option("--tls-key", key, "serve TLS: the certificate's private key (PEM)");
    c->needs(k);
    k->needs(c);
    app.add_flag("--tls-no-handoff", no_handoff,
                 "keep TLS 1.3 connections on OpenSSL after the handshake instead of nbio's "
                 "record layer (tls::server_options::handoff = false)")
        ->needs(c);
  }
  void add_client(CLI::App& app) {
    auto* c = app.add_option("--tls-ca", ca,
                             "TLS peers (https://, wss://): trust this CA file (PEM) "
                             "instead of the system store");
    app.add_flag("--tls-insecure", insecure, "do not verify the peer's certificate (testing)")
        ->excludes(c);
  }

  // Null when --tls-cert was not given; exits with the reason when the files do not load.
  std::shared_ptr<nbio::tls::context> server_context(const char* program,
                                                     std::vector<std::string> alpn = {}) const {
    if (cert.empty()) return nullptr;
    try {
      return nbio::tls::context::server(
          {.cert = {cert, key}, .alpn = std::move(alpn), .handoff = !no_handoff});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", program, e.what());
      std::exit(2);
    }
  }
  std::shared_ptr<nbio::tls::context> client_context(const char* program,
                                                     std::vector<std::string> alpn = {}) const {
    try {
      return nbio::tls::context::client(
          {.verify = !insecure, .ca_file = ca, .alpn = std::move(alpn)});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", program, e.what());
      std::exit(2);
    }
  }
};
