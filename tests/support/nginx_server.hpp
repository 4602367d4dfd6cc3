// Test support. Debian's nginx (/usr/sbin/nginx, from scripts/deps.sh) as a third-party HTTP
// peer: one process (daemon and master process off) on 127.0.0.1 and a free port, everything
// (config, pid, logs, temp paths, the document root) under a fresh temporary directory, killed
// and the directory removed on destruction. bench/http/nginx.conf.in starts it the same way.
//
//   nginx_server ngx("location = / { return 200 \"hi\\n\"; }");
//   if (!ngx.available()) NBIO_PEER_MISSING("nginx");
//   ASSERT_TRUE(ngx.started()) << ngx.error_log();
//   fetch(ngx.url("/"));
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "nbio/core/address.hpp"
#include "support/raw_socket.hpp"
#include "support/spawn.hpp"

namespace nbio_test {

class nginx_server {
 public:
  static constexpr const char* binary = "/usr/sbin/nginx";

  // `server_body`: the directives of the one server block, after its listen and root.
  explicit nginx_server(std::string_view server_body) {
    if (::access(binary, X_OK) != 0) return;
    available_ = true;
    std::string tmpl = (std::filesystem::temp_directory_path() / "nbio-nginx-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) return;
    prefix_ = tmpl;
    // nginx may drop to another user for the files it serves: let it read them.
    ::chmod(prefix_.c_str(), 0755);
    std::filesystem::create_directories(root());
    ::chmod(root().c_str(), 0755);
    port_ = unused_tcp_port();
    std::ofstream conf(prefix_ + "/nginx.conf");
    conf << "worker_processes 1;\ndaemon off;\nmaster_process off;\n"
         << "pid " << prefix_ << "/nginx.pid;\nerror_log " << prefix_ << "/error.log warn;\n"
         << "events { worker_connections 256; }\n"
         << "http {\n  access_log off;\n  default_type application/octet-stream;\n"
         << "  sendfile on;\n  absolute_redirect off;\n";
    for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
      conf << "  " << t << "_temp_path " << prefix_ << "/" << t << ";\n";
    conf << "  server {\n    listen 127.0.0.1:" << port_ << ";\n    root " << root() << ";\n"
         << server_body << "\n  }\n}\n";
    conf.close();
  }

  ~nginx_server() {
    child_.reset();  // SIGKILL and reap
    if (!prefix_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(prefix_, ec);
    }
  }
  nginx_server(const nginx_server&) = delete;
  nginx_server& operator=(const nginx_server&) = delete;

  // Writes a file under the document root (before or after start()).
  void put_file(std::string_view name, std::string_view content) const {
    const std::string path = root() + "/" + std::string(name);
    std::ofstream(path, std::ios::binary)
        .write(content.data(), static_cast<std::streamsize>(content.size()));
    ::chmod(path.c_str(), 0644);
  }

  // Starts nginx and waits (up to 10 s) until it accepts connections.
  bool start() {
    if (!available_ || prefix_.empty()) return false;
    child_ = std::make_unique<running>(std::vector<std::string>{
        binary, "-p", prefix_ + "/", "-e", prefix_ + "/error.log", "-c", prefix_ + "/nginx.conf"});
    const auto addr = nbio::address::parse("127.0.0.1:" + std::to_string(port_));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (connect_stream(*addr)) return started_ = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  bool available() const noexcept { return available_; }
  bool started() const noexcept { return started_; }
  std::uint16_t port() const noexcept { return port_; }
  std::string root() const { return prefix_ + "/www"; }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  // For failure messages: what nginx logged.
  std::string error_log() const {
    std::ifstream in(prefix_ + "/error.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  bool available_ = false;
  bool started_ = false;
  std::string prefix_;
  std::uint16_t port_ = 0;
  // child_process can neither move nor copy: held where spawn()'s result is built.
  struct running {
    explicit running(std::vector<std::string> argv) : child(spawn(std::move(argv))) {}
    child_process child;
  };
  std::unique_ptr<running> child_;
};

}  // namespace nbio_test
