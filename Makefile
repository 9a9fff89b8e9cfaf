# nbdtop: build, test, demo and benchmarks.
#
#   make demo    install what is missing, build, run the live demo
#   make test    install what is missing, build, run every test
#   make bench   compare nbdtop with nbdcopy on the same servers (release build)

SWIFT ?= swift
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SHAREDIR ?= $(PREFIX)/share/nbdtop

# Debian packages the tests, demo and benchmarks need: real servers and peers.
DEBIAN_PACKAGES := nbdkit qemu-utils nbd-server libnbd-bin libncurses-dev tmux

DEBUG_BIN := .build/debug/nbdtop
RELEASE_BIN := .build/release/nbdtop

.PHONY: all deps build release test demo bench install clean

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
test: deps build
	NBDTOP_BIN=$(CURDIR)/$(DEBUG_BIN) $(SWIFT) test --no-parallel

## demo: a live transfer between captive nbdkit servers; press + to add lanes, q to quit
demo: deps release
	$(RELEASE_BIN) demo

bench: deps release
	Benchmarks/compare.sh $(CURDIR)/$(RELEASE_BIN)

install: release
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SHAREDIR)/themes
	install -m 0755 $(RELEASE_BIN) $(DESTDIR)$(BINDIR)/nbdtop
	@if ls Themes/*.theme >/dev/null 2>&1; then install -m 0644 Themes/*.theme $(DESTDIR)$(SHAREDIR)/themes/; fi

clean:
	rm -rf .build
