# nbdtop: build, test, demo and benchmarks.
#
#   make demo    install what is missing, build, run the live demo
#   make test    install what is missing, build, run every test
#   make bench   compare nbdtop with nbdcopy on the same servers (release build)
#   make bench-proxy  nbdcopy and qemu-img through nbdtop proxy against direct
#   make bench-seed  the qemu-devel multi-conn matrix (nbdcopy, qemu-img, nbdtop at 1/2/4)
#   make fuzz    libFuzzer on the NBD client's reply and handshake parsing
#   make sanitize  the NBD and copy tests under ThreadSanitizer, then AddressSanitizer
#   make e2e-v2v  a real virt-v2v import through nbdtop, watched with ls and attach

SWIFT ?= swift
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SHAREDIR ?= $(PREFIX)/share/nbdtop
MANDIR ?= $(PREFIX)/share/man
# Where Debian's shells look for completions of installed packages.
BASH_COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
ZSH_COMPLETIONDIR ?= $(PREFIX)/share/zsh/vendor-completions
FISH_COMPLETIONDIR ?= $(PREFIX)/share/fish/vendor_completions.d
# The binary `make install` installs; given, nothing is built (the release build otherwise).
INSTALL_BIN ?=

# Debian packages the tests, demo and benchmarks need: real servers and peers.
DEBIAN_PACKAGES := nbdkit nbdkit-plugin-python qemu-utils nbd-server libnbd-bin libncurses-dev tmux python3-jsonschema \
  openssl curl man-db groff-base

DEBUG_BIN := .build/debug/nbdtop
RELEASE_BIN := .build/release/nbdtop

.PHONY: all deps build release test golden demo bench bench-proxy bench-seed bench-convergence bench-json fuzz sanitize e2e-v2v install clean

all: build

## deps: install the Debian packages that are missing (apt-get update first), nothing else
deps:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $$missing; \
	else \
	  echo "All Debian packages present:$(DEBIAN_PACKAGES)"; \
	fi

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release

## test: every test, against real nbdkit, qemu-nbd and nbd-server
# One test at a time: tests start servers and copies that need the machine's 2 cores,
# and waiting tests must not starve each other's event loops (about 70 s in all).
# Copies started by tests publish their control sockets and results in a private folder,
# not in the user's.
test: deps build
	runtime=$$(mktemp -d /tmp/nbdtop-test-run.XXXXXX) && \
	  XDG_RUNTIME_DIR=$$runtime NBDTOP_BIN=$(CURDIR)/$(DEBUG_BIN) $(SWIFT) test --no-parallel; \
	  status=$$?; rm -rf "$$runtime"; exit $$status

## golden: rewrite the dashboard's golden grids (Tests/DashboardTests/Golden); review the diff
golden: build
	NBDTOP_UPDATE_GOLDEN=1 $(SWIFT) test --no-parallel --filter GoldenRenderTests

## demo: a live transfer between captive nbdkit servers; press + to add lanes, q to quit
demo: deps release
	$(RELEASE_BIN) demo

bench: deps release
	Benchmarks/compare.sh $(CURDIR)/$(RELEASE_BIN)
	Benchmarks/proxy.sh $(CURDIR)/$(RELEASE_BIN)
	Benchmarks/convergence.py $(CURDIR)/$(RELEASE_BIN)

## bench-convergence: auto-tuning against the best fixed setting found on each server (SERVERS, HOLD, AUTO, ROUNDS)
bench-convergence: deps release
	Benchmarks/convergence.py $(CURDIR)/$(RELEASE_BIN)

## bench-proxy: nbdcopy and qemu-img through nbdtop proxy against direct, on the same servers
bench-proxy: deps release
	Benchmarks/proxy.sh $(CURDIR)/$(RELEASE_BIN)

## bench-json: the control protocol's JSON parser against FoundationEssentials' JSONDecoder
bench-json:
	Benchmarks/json-parse.sh

## bench-seed: the multi-conn matrix of the qemu-devel cover letter (SIZE, RUNS, SERVERS);
# nginx (for the curl case) is installed for this target only.
bench-seed: deps release
	@dpkg-query -W -f='$${Status}' nginx-light 2>/dev/null | grep -q 'install ok installed' || { \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q nginx-light; }
	Benchmarks/seed.py $(CURDIR)/$(RELEASE_BIN)

## e2e-v2v: virt-v2v converts a small Debian guest built here, with nbdtop as its nbdcopy
# (Tests/V2V/e2e-v2v.sh says what it checks). virt-v2v, its appliance's kernel and the
# guest's tools are installed for this target only; the guest is cached in .build-v2v.
V2V_PACKAGES := virt-v2v libguestfs-tools linux-image-amd64 supermin debootstrap
e2e-v2v: deps release
	@missing=""; \
	for p in $(V2V_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $$missing; \
	fi
	Tests/V2V/e2e-v2v.sh $(CURDIR)/$(RELEASE_BIN)

# Fuzzers: executables that replay files in ordinary builds; with -DFUZZING they only
# define LLVMFuzzerTestOneInput and libFuzzer (shipped with the Swift toolchain) is main.
FUZZERS := NBDReplyFuzzer NBDHandshakeFuzzer
FUZZ_SECONDS ?= 60
FUZZ_SCRATCH := .build-fuzz
# ld.gold fails on the libFuzzer link (an internal error); the toolchain ships lld.
FUZZ_BUILD := $(SWIFT) build -c release --scratch-path $(FUZZ_SCRATCH) -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
  -Xswiftc -use-ld=lld
# A hang (-timeout, seconds per input) and an allocation beyond any limit the client
# keeps (-malloc_limit_mb) count as crashes, like traps and memory errors.
FUZZ_OPTIONS := -timeout=10 -malloc_limit_mb=64 -rss_limit_mb=2048 -print_final_stats=1

## fuzz: build the fuzzers, run each for FUZZ_SECONDS from Tests/Fuzz/Corpus; fails on a crash
# New corpus entries go to $(FUZZ_SCRATCH)/corpus, crashing inputs to $(FUZZ_SCRATCH)/crashes.
fuzz:
	@for fuzzer in $(FUZZERS); do $(FUZZ_BUILD) --product $$fuzzer || exit 1; done
	@for fuzzer in $(FUZZERS); do \
	  name=$${fuzzer#NBD}; name=$${name%Fuzzer}; \
	  mkdir -p $(FUZZ_SCRATCH)/corpus/$$name $(FUZZ_SCRATCH)/crashes; \
	  echo "== $$fuzzer for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_SCRATCH)/release/$$fuzzer $(FUZZ_OPTIONS) -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$(FUZZ_SCRATCH)/crashes/$$name- \
	    $(FUZZ_SCRATCH)/corpus/$$name Tests/Fuzz/Corpus/$$name || exit 1; \
	done

## sanitize: the NBD and copy tests under ThreadSanitizer, then AddressSanitizer
# Each sanitizer has its own scratch folder: both are full rebuilds. The tests use Swift
# Testing only; without --disable-xctest the empty XCTest run leaks XCTest's own objects.
# NBDTOP_SANITIZER tells the tests which allocator runs (HeapPolicyTests measures glibc's).
SANITIZED_TESTS := --no-parallel --disable-xctest --filter '^(NBDTests|NBDCopyTests)\.'
sanitize: deps
	NBDTOP_SANITIZER=thread $(SWIFT) test --sanitize=thread --scratch-path .build-tsan $(SANITIZED_TESTS)
	NBDTOP_SANITIZER=address LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/Sanitizers/leaks.supp \
	  $(SWIFT) test --sanitize=address --scratch-path .build-asan $(SANITIZED_TESTS)

## install: the binary, the themes, bash, zsh and fish completions, and the man page nbdtop(1)
# Honours DESTDIR and PREFIX; the completion scripts come from the binary itself
# (swift-argument-parser's generator).
install: $(if $(INSTALL_BIN),,release)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SHAREDIR)/themes $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(BASH_COMPLETIONDIR) $(DESTDIR)$(ZSH_COMPLETIONDIR) $(DESTDIR)$(FISH_COMPLETIONDIR)
	install -m 0755 $(or $(INSTALL_BIN),$(RELEASE_BIN)) $(DESTDIR)$(BINDIR)/nbdtop
	@if ls Themes/*.theme >/dev/null 2>&1; then install -m 0644 Themes/*.theme $(DESTDIR)$(SHAREDIR)/themes/; fi
	install -m 0644 docs/nbdtop.1 $(DESTDIR)$(MANDIR)/man1/nbdtop.1
	$(or $(INSTALL_BIN),$(RELEASE_BIN)) --generate-completion-script bash > $(DESTDIR)$(BASH_COMPLETIONDIR)/nbdtop
	$(or $(INSTALL_BIN),$(RELEASE_BIN)) --generate-completion-script zsh > $(DESTDIR)$(ZSH_COMPLETIONDIR)/_nbdtop
	$(or $(INSTALL_BIN),$(RELEASE_BIN)) --generate-completion-script fish > $(DESTDIR)$(FISH_COMPLETIONDIR)/nbdtop.fish
	chmod 0644 $(DESTDIR)$(BASH_COMPLETIONDIR)/nbdtop $(DESTDIR)$(ZSH_COMPLETIONDIR)/_nbdtop $(DESTDIR)$(FISH_COMPLETIONDIR)/nbdtop.fish

clean:
	rm -rf .build $(FUZZ_SCRATCH) .build-tsan .build-asan
