# memvisor — `make conformance` is the main job, `make test` the tests. Both install what they lack.
#
#   make            build build/memvisor, build/memvisor-remote and the guests (make linux-guest:
#                   the Linux guest)
#   make test       cmocka unit tests, then the pytest suite (host-native and test-host tests)
#   make conformance  the full conformance matrix (harness/, conformance/)
#   make bench      benchmarks; make bench-check compares with bench/baseline.json
#   make SANITIZE=1 ...  build with ASan and UBSan (into build/asan/)
#   make fuzz       every libFuzzer target of fuzz/ for FUZZ_TIME seconds (fuzz/README.md)

PYTHON   ?= /usr/bin/python3
CC       ?= gcc
SANITIZE ?= 0

ifeq ($(SANITIZE),1)
BUILD    ?= build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD    ?= build
SANFLAGS :=
endif

PKGS     := libfdt numa json-c libmicrohttpd libcurl
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -Ivmm -MMD -MP $(SANFLAGS)
LDFLAGS  += -pthread $(SANFLAGS)
LDLIBS   += -lfdt -lnuma -ljson-c -lmicrohttpd -lcurl

# Every .c under vmm/ is part of the VMM, except the unit tests and the API client.
VMM_SRCS  := $(sort $(shell find vmm -name '*.c' -not -path 'vmm/tests/*' -not -path 'vmm/api/remote*'))
VMM_OBJS  := $(VMM_SRCS:%.c=$(BUILD)/obj/%.o)
LIB_OBJS  := $(filter-out $(BUILD)/obj/vmm/main.o,$(VMM_OBJS))
TEST_SRCS := $(sort $(wildcard vmm/tests/test_*.c))
TEST_BINS := $(TEST_SRCS:vmm/tests/%.c=$(BUILD)/tests/%)

# VENUE=auto|native|testhost: where KVM work runs (harness/memvisor/venue.py); SHARD=K/N: one
# stable slice of the conformance matrix (merge the slices with python3 -m conformance merge).
export VENUE
SHARD    ?=

# A first `make` on a fresh machine: name what is missing instead of a compiler error.
HEADERS  := libfdt.h numa.h json-c/json.h microhttpd.h curl/curl.h cmocka.h
MISSING  := $(strip $(foreach h,$(HEADERS),$(if $(wildcard /usr/include/$(h) /usr/include/*/$(h)),,$(h))))
ifneq ($(MISSING),)
ifeq ($(filter deps test conformance conformance-compare bench bench-check clean linux-guest fuzz,$(MAKECMDGOALS)),)
$(error missing $(MISSING): run `make deps` as root (ci/deps.sh installs the Debian packages), or use `make test` / `make conformance`, which install them first)
endif
endif

.PHONY: all deps memvisor remote guests unit test pytest conformance conformance-compare bench bench-check clean fuzz fuzz-build
all: memvisor remote guests

deps:
	@ci/deps.sh

memvisor: $(BUILD)/memvisor

$(BUILD)/memvisor: $(VMM_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The API client: parse_size comes from the VMM's own option parser (memory/config.o).
REMOTE_OBJS := $(addprefix $(BUILD)/obj/vmm/,api/remote.o memory/config.o util.o)
remote: $(BUILD)/memvisor-remote

$(BUILD)/memvisor-remote: $(REMOTE_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: vmm/tests/%.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

include guests/guests.mk
include guests/linux/linux.mk

# The unit tests run from the top of the tree (some read vmm/memory/*.def or write to build/).
unit: $(TEST_BINS)
	@fail=0; for t in $(TEST_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

pytest:
	$(PYTHON) -m pytest -q harness/tests

test: deps
	@$(MAKE) --no-print-directory all linux-guest unit
	@$(MAKE) --no-print-directory pytest

conformance: deps
	@$(MAKE) --no-print-directory all linux-guest linux-foreign
	$(PYTHON) -m conformance run $(if $(SHARD),--shard $(SHARD) --out build/conformance/shard-$(subst /,-of-,$(SHARD)))

# memvisor and QEMU over the matrix: build/conformance/compare.json, compare.html (conformance/compare.py)
conformance-compare: deps
	@$(MAKE) --no-print-directory all linux-guest linux-foreign
	$(PYTHON) -m conformance compare $(if $(SHARD),--shard $(SHARD))

# BENCH_ARGS: e.g. make bench BENCH_ARGS="--size 256M --repeat 3" (see bench/README.md)
bench: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/native linux-guest
	PYTHONPATH=harness$${PYTHONPATH:+:$$PYTHONPATH} $(PYTHON) -m bench run $(BENCH_ARGS)

bench-check: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/native linux-guest
	PYTHONPATH=harness$${PYTHONPATH:+:$$PYTHONPATH} $(PYTHON) -m bench check $(BENCH_ARGS)

# bench/native.c times the VMM's own backing code: linked with every VMM object but main.o.
$(BUILD)/bench/native: bench/native.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)
-include $(BUILD)/bench/native.d

# ---- libFuzzer targets: one fuzz/TARGET.c each, linked with the VMM built by clang ----
FUZZ_CC      ?= clang
FUZZ_TIME    ?= 600
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -Ivmm -I. -MMD -MP $(FUZZ_SAN)
FUZZ_TARGETS := $(sort $(basename $(notdir $(wildcard fuzz/*.c))))
FUZZ_OBJS    := $(LIB_OBJS:$(BUILD)/obj/%=$(FUZZ_BUILD)/obj/%)
# The probe's ACPI parser, hosted: the acpi target checks the tables with the guest's own code.
FUZZ_PROBE   := $(FUZZ_BUILD)/obj/guests/lib/acpi.o $(FUZZ_BUILD)/obj/fuzz/lib/probe_acpi.o

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

# Pattern-built objects would otherwise be deleted as intermediates after each link.
.SECONDARY: $(FUZZ_OBJS) $(FUZZ_PROBE)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TIME) $(FUZZ_TARGETS)

$(FUZZ_BUILD)/obj/vmm/%.o: vmm/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# guest.h redeclares printf and friends as the guests' own: not the C library's here.
$(FUZZ_BUILD)/obj/guests/lib/%.o $(FUZZ_BUILD)/obj/fuzz/lib/%.o: CFLAGS_GUEST := -ffreestanding -fno-builtin -Iguests/lib
$(FUZZ_BUILD)/obj/guests/lib/%.o: guests/lib/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(CFLAGS_GUEST) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/obj/fuzz/lib/%.o: fuzz/lib/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(CFLAGS_GUEST) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/%: fuzz/%.c $(FUZZ_OBJS) $(FUZZ_PROBE)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(LDLIBS)

clean:
	rm -rf build/fuzz build/obj build/asan build/tests build/memvisor build/memvisor-remote build/guests build/linux

-include $(shell find $(BUILD)/obj $(BUILD)/guests $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
