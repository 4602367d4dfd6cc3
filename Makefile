# nbio: the two commands of the README's quick start are `make demo` and `make test`.
# Every target first runs scripts/deps.sh, which installs missing Debian packages as root: `demo`
# only what the demo builds (a compiler, CMake, OpenSSL, zlib, CLI11, nlohmann-json, GoogleTest),
# `build` and `test` the test peers and clang besides, the bench targets the baselines too.
BUILD      ?= build
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
PREFIX     ?= /usr/local
# ccache, when installed, for the Release tree (scripts/test.sh uses it for the sanitized ones).
LAUNCHER   := $(if $(shell command -v ccache 2>/dev/null),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# What `make demo` runs: the demo's server (ws_echo; tcp_echo for MODE=tcp) and the load
# generator. Building only these (and the library) is what keeps a first demo within minutes.
DEMO_TARGETS = ws_echo tcp_echo nbio-load

.PHONY: all deps deps-demo deps-bench configure build test test-fast demo bench bench-million \
        bench-tls bench-backends soak install clean format

all: build

deps:
	@bash scripts/deps.sh test
deps-demo:
	@bash scripts/deps.sh demo
deps-bench:
	@bash scripts/deps.sh bench

# Configures every time (a second with a cache): a package the deps step just installed (clang
# for the fuzzers, the benchmarks' libraries) is found without deleting the build folder.
configure:
	@mkdir -p $(BUILD)
	@cmake -S . -B $(BUILD) -G Ninja $(LAUNCHER) $(CMAKE_ARGS) >$(BUILD)/configure.log 2>&1 || \
	  { cat $(BUILD)/configure.log; exit 1; }
	@grep -E '^-- nbio:' $(BUILD)/configure.log || true

# Everything: library, examples, apps, tests, fuzz targets (not the benchmark programs).
build: deps
	@$(MAKE) --no-print-directory configure
	@cmake --build $(BUILD) -j $(JOBS)

# The whole suite: the Release build, then the ASan+UBSan build and the TSan threading tests.
test: build
	@bash scripts/test.sh $(BUILD)

# The Release suite only (for iterating).
test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

demo: deps-demo
	@$(MAKE) --no-print-directory configure
	@cmake --build $(BUILD) -j $(JOBS) --target $(DEMO_TARGETS)
	@bash scripts/demo.sh $(BUILD)

bench: deps-bench build
	@$(MAKE) --no-print-directory configure
	@cmake --build $(BUILD) -j $(JOBS) --target bench_tools
	@bash bench/run_all.sh $(BUILD)

# io_uring against epoll, cell by cell: TCP and WebSocket echo, HTTP keep-alive and pipelined,
# idle memory per connection (bench/run_backends.sh, docs/backends.md).
bench-backends: deps-bench build
	@$(MAKE) --no-print-directory configure
	@cmake --build $(BUILD) -j $(JOBS) --target bench_tools
	@bash bench/run_backends.sh $(BUILD)

# TLS: handshakes/s and HTTPS keep-alive against nginx (nbio on its record layer and on
# OpenSSL's), memory per idle TLS connection, and nbio's record layer against OpenSSL's for WSS
# echo and HTTPS (bench/tls, bench/backends.py with COMPARE=tls).
bench-tls: deps-bench build
	@$(MAKE) --no-print-directory configure
	@cmake --build $(BUILD) -j $(JOBS) --target bench_tools
	@bash bench/tls/run_tls.sh $(BUILD); s=$$?; bash bench/tls/run_tls_idle.sh $(BUILD) || s=1; \
	  COMPARE=tls bash bench/run_backends.sh $(BUILD) || s=1; exit $$s

# A million connections held by tcp_echo workers, then 60 s of 1 KiB echoes (bench/million).
bench-million: build
	@bash bench/million/run.sh $(BUILD)

# Ten minutes (DURATION) of 5,000 churning and 5,000 long-lived echo connections, plain and TLS;
# fails on server RSS drift after warm-up, a descriptor leak or a wrong echoed byte (bench/soak).
soak: build
	@cmake --build $(BUILD) -j $(JOBS) --target soak_client
	@bash bench/soak/run.sh $(BUILD)

# Installs into PREFIX (default /usr/local), whatever prefix the build folder was configured with.
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD) build-asan build-tsan
