# Builds and installs the C library of fotp: libfotp.so, libfotp.a, fotp.h and fotp.pc.
#
#   make                                 cargo build --release (also regenerates include/fotp.h)
#   make install PREFIX=/usr/local       installs lib/, include/ and lib/pkgconfig/fotp.pc
#   make uninstall PREFIX=/usr/local
#   make header-check                    fails when include/fotp.h differs from the generated one
#   make test-c                          scripts/test-c.sh (C test under valgrind, sandbox, pkg-config)
#
# DESTDIR is honoured for staged installs. Then: cc app.c $(pkg-config --cflags --libs fotp)

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CARGO      ?= cargo
INSTALL    ?= install
RELEASE    := target/release
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# What the Rust standard library needs when libfotp.a is linked statically
# (from `cargo rustc --release --crate-type staticlib -- --print native-static-libs`).
LIBS_PRIVATE := -lgcc_s -lutil -lrt -lpthread -lm -ldl

ARTEFACTS := $(RELEASE)/libfotp.so $(RELEASE)/libfotp.a

.PHONY: all build install uninstall header-check test-c

all: build

# Cargo decides what is stale; this target always asks it.
build:
	$(CARGO) build --release

# install does not rebuild when the artefacts exist (so `sudo make install` needs no cargo).
$(ARTEFACTS) include/fotp.h:
	$(CARGO) build --release

install: $(ARTEFACTS) include/fotp.h
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 755 $(RELEASE)/libfotp.so $(DESTDIR)$(LIBDIR)/libfotp.so
	$(INSTALL) -m 644 $(RELEASE)/libfotp.a $(DESTDIR)$(LIBDIR)/libfotp.a
	$(INSTALL) -m 644 include/fotp.h $(DESTDIR)$(INCLUDEDIR)/fotp.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g' fotp.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/fotp.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/fotp.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libfotp.so $(DESTDIR)$(LIBDIR)/libfotp.a \
	      $(DESTDIR)$(INCLUDEDIR)/fotp.h $(DESTDIR)$(PKGCONFIGDIR)/fotp.pc

# The build regenerates include/fotp.h (build.rs, pinned cbindgen); the committed copy must match.
header-check: build
	@if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  echo "header-check: not a git checkout, nothing to compare"; \
	elif ! git ls-files --error-unmatch include/fotp.h >/dev/null 2>&1; then \
	  echo "header-check: warning: include/fotp.h is not committed yet"; \
	else \
	  git diff --exit-code -- include/fotp.h || \
	    { echo "header-check: include/fotp.h is stale: commit the regenerated header"; exit 1; }; \
	fi
	printf '#include "fotp.h"\n' | gcc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude -x c -fsyntax-only -
	printf '#include "fotp.h"\n' | g++ -std=c++11 -Wall -Wextra -Werror -Iinclude -x c++ -fsyntax-only -
	@echo "header-check: include/fotp.h is up to date and compiles as C99 and C++11"

test-c:
	bash scripts/test-c.sh

.PHONY: bench  # phony: bench/ is also a directory
bench: ; scripts/bench
