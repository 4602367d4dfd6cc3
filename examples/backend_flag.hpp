// Shared by the examples: --backend epoll|io_uring|auto, the engine's kernel interface
// (engine_options::backend, docs/backends.md), and --uring-buffers (engine_options::uring_buffers).
//
//   add_backend_flag(app, config);  // before CLI11_PARSE
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

#include <nbio/engine/config.hpp>

inline void add_backend_flag(CLI::App& app, nbio::engine_options& config) {
  static const std::map<std::string, nbio::io_backend> names{
      {"epoll", nbio::io_backend::epoll},
      {"io_uring", nbio::io_backend::io_uring},
      {"auto", nbio::io_backend::automatic}};
  app.add_option("--backend", config.backend,
                 "kernel interface: epoll, io_uring or auto (io_uring where the kernel has it); "
                 "NBIO_BACKEND overrides it")
      ->transform(CLI::CheckedTransformer(names).description(""))
      ->type_name("{epoll,io_uring,auto}")
      ->default_str("epoll");
  app.add_option("--uring-buffers", config.uring_buffers,
                 "io_uring: receive buffers per loop (4 KiB each, resident from the start)")
      ->capture_default_str();
}
