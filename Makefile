# nbio: the two commands of the README's quick start are `make demo` and `make test`.
# Every target first runs scripts/deps.sh, which installs missing Debian packages as root.
BUILD      ?= build
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
PREFIX     ?= /usr/local

.PHONY: all deps build test test-fast demo bench bench-million bench-tls soak install clean format

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/build.ninja: | deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS) >/dev/null

build: deps $(BUILD)/build.ninja
	@cmake --build $(BUILD) -j $(JOBS)

# The whole suite: the Release build, then the ASan+UBSan build and the TSan threading tests.
test: build
	@bash scripts/test.sh $(BUILD)

# The Release suite only (for iterating).
test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

demo: build
	@bash scripts/demo.sh $(BUILD)

bench: build
	@cmake --build $(BUILD) -j $(JOBS) --target bench_tools
	@bash bench/run_all.sh $(BUILD)

# TLS: handshakes/s and HTTPS keep-alive against nginx, memory per idle TLS connection
# (bench/tls).
bench-tls: build
	@cmake --build $(BUILD) -j $(JOBS) --target bench_tools
	@bash bench/tls/run_tls.sh $(BUILD); s=$$?; bash bench/tls/run_tls_idle.sh $(BUILD) && exit $$s

# A million connections held by tcp_echo workers, then 60 s of 1 KiB echoes (bench/million).
bench-million: build
	@bash bench/million/run.sh $(BUILD)

# Ten minutes (DURATION) of 5,000 churning and 5,000 long-lived echo connections, plain and TLS;
# fails on server RSS drift after warm-up, a descriptor leak or a wrong echoed byte (bench/soak).
soak: build
	@cmake --build $(BUILD) -j $(JOBS) --target soak_client
	@bash bench/soak/run.sh $(BUILD)

install: build
	@cmake --install $(BUILD)

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD) build-asan build-tsan
