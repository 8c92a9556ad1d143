# ferry - one GNU Makefile, no configure. Overrides go in config.mak.
#
#   make          deps, musl sysroot, kernel, ferry + ferry-init, initramfs, ISO, PXE
#   make check    everything above, then unit tests, short fuzz runs (10 s each),
#                 qemu-tests, a benchmark smoke run
#   make fuzz     long fuzz runs (FUZZ_SECONDS, 300 s per target)
#   make demo     the end-to-end demonstration in QEMU
#   make lock     re-pin sources.lock to the newest Debian versions that download
#
# Built dependencies live in $(FERRY_CACHE) (outside the work tree) keyed
# by Debian version and recipe hash; build/sysroot and build/kernel are
# symlinks into it.

-include config.mak

FERRY_CACHE ?= /var/cache/ferry
export FERRY_CACHE
B := build
OUT := $(B)/out
V ?= 0
ifeq ($(V),0)
Q := @
else
Q :=
endif

VERSION := $(shell git describe --always --dirty --tags 2>/dev/null || echo 0.1.0)
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wvla -Wpointer-arith -Wno-unused-parameter
ifeq ($(CI),true)
WARN += -Werror
endif

# ---- the static musl build --------------------------------------------
SYSROOT := $(B)/sysroot
MUSL_CC ?= musl-gcc
MUSL_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g0 $(WARN) -MMD -MP \
	-ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables \
	-DFERRY_VERSION='"$(VERSION)"' -isystem $(SYSROOT)/include -Isrc
MUSL_LDFLAGS := -static -Wl,--gc-sections -s -L$(SYSROOT)/lib
MUSL_LIBS := -lext2fs -lcom_err -lblkid -lzstd -lz -lbearssl

MODULES := common proto net tls disk blockmap boot image track adapt
MOD_SRC := $(wildcard $(MODULES:%=src/%/*.c))
INIT_SRC := $(wildcard init/*.c)
AGENT_SRC := $(wildcard src/agent/*.c)

M := $(B)/musl
MOD_OBJ := $(MOD_SRC:%.c=$(M)/%.o)
INIT_OBJ := $(INIT_SRC:%.c=$(M)/%.o)
AGENT_OBJ := $(AGENT_SRC:%.c=$(M)/%.o)

# ---- the host build for unit tests (glibc, ASan/UBSan) ------------------
H := $(B)/host
HOST_CC ?= gcc
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
HOST_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -MMD -MP $(SAN) \
	-DFERRY_VERSION='"$(VERSION)"' -Isrc -Iinit
HOST_LIBS := -lext2fs -lcom_err -lblkid -lzstd -lz -lbearssl
TEST_SRC := $(wildcard src/tests/test_*.c)
TESTS := $(TEST_SRC:src/tests/%.c=$(H)/%)
# init/ files that hold no PID 1 side effects and are unit-tested.
INIT_TESTABLE := init/cmdline.c init/adapt_fs.c
HOST_MOD_OBJ := $(MOD_SRC:%.c=$(H)/%.o) $(INIT_TESTABLE:%.c=$(H)/%.o)

# ---- fuzzing (clang libFuzzer) ----------------------------------------
F := $(B)/fuzz
FUZZ_CC ?= clang
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined \
	-Isrc -Iinit -DFERRY_VERSION='"fuzz"'
FUZZ_SRC := $(wildcard src/fuzz/fuzz_*.c)
FUZZERS := $(FUZZ_SRC:src/fuzz/%.c=$(F)/%)
FUZZ_SECONDS ?= 300

.SECONDARY:

.PHONY: all deps lock fetch sysroot kernel bins images check check-long unit fuzz fuzz-long qemu-tests \
	demo bench clean distclean times install

all: deps images
	$(Q)scripts/times.sh

deps:
	$(Q)scripts/deps.sh

# sources.lock pins every Debian input; `make lock` is the one thing that
# asks the archive what is newest (and downloads it, to prove it can).
lock: deps
	$(Q)scripts/lock.sh update
fetch: deps
	$(Q)scripts/lock.sh fetch

$(SYSROOT)/.stamp: scripts/sysroot.sh scripts/lib.sh scripts/lock.sh sources.lock
	$(Q)scripts/timed.sh sysroot scripts/sysroot.sh
sysroot: deps $(SYSROOT)/.stamp

$(B)/kernel/.stamp: scripts/kernel.sh scripts/lib.sh scripts/lock.sh sources.lock \
		$(wildcard kernel-config/*.config)
	$(Q)scripts/timed.sh kernel scripts/kernel.sh
kernel: deps $(B)/kernel/.stamp

$(M)/%.o: %.c $(SYSROOT)/.stamp
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(MUSL_CC) $(MUSL_CFLAGS) -c -o $@ $<

$(OUT)/ferry-init: $(INIT_OBJ) $(MOD_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(MUSL_CC) $(MUSL_LDFLAGS) -o $@ $^ $(MUSL_LIBS)

$(OUT)/ferry: $(AGENT_OBJ) $(MOD_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(MUSL_CC) $(MUSL_LDFLAGS) -o $@ $^ $(MUSL_LIBS)

bins: $(OUT)/ferry-init $(OUT)/ferry

$(OUT)/initramfs.cpio.gz: $(OUT)/ferry-init $(B)/kernel/.stamp $(SYSROOT)/.stamp scripts/initramfs.sh \
		$(wildcard rootfs/*) $(wildcard rootfs/*/*)
	$(Q)scripts/timed.sh initramfs scripts/initramfs.sh $@

$(OUT)/vmlinuz: $(B)/kernel/.stamp
	@mkdir -p $(dir $@)
	$(Q)cp $(B)/kernel/bzImage $@

$(OUT)/ferry-live.iso: $(OUT)/vmlinuz $(OUT)/initramfs.cpio.gz scripts/iso.sh
	$(Q)scripts/timed.sh iso scripts/iso.sh $@

$(OUT)/pxe/.stamp: $(OUT)/vmlinuz $(OUT)/initramfs.cpio.gz scripts/pxe.sh
	$(Q)scripts/timed.sh pxe scripts/pxe.sh $(OUT)/pxe

images: $(OUT)/ferry $(OUT)/vmlinuz $(OUT)/initramfs.cpio.gz $(OUT)/ferry-live.iso \
	$(OUT)/pxe/.stamp
	$(Q)scripts/sizes.sh

# ---- tests --------------------------------------------------------------
$(H)/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)$(HOST_CC) $(HOST_CFLAGS) -c -o $@ $<

$(H)/test_%: $(H)/src/tests/test_%.o $(HOST_MOD_OBJ)
	$(Q)$(HOST_CC) $(SAN) -o $@ $^ $(HOST_LIBS)

unit: deps $(TESTS)
	$(Q)scripts/unit.sh $(TESTS)

# The modules are compiled once for all targets (there are ~20 of them).
FUZZ_MOD_OBJ := $(MOD_SRC:%.c=$(F)/obj/%.o) $(INIT_TESTABLE:%.c=$(F)/obj/%.o)
$(F)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(F)/fuzz_%: src/fuzz/fuzz_%.c $(FUZZ_MOD_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $^ $(HOST_LIBS)

fuzz: deps $(FUZZERS)
	$(Q)scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZERS)
fuzz-long: deps $(FUZZERS)
	$(Q)scripts/fuzz.sh 600 $(FUZZERS)

qemu-tests: all
	$(Q)qemu-tests/run.sh

check: all
	$(Q)scripts/check.sh

# The long campaigns: 200 random kills with each of 1, 2 and 4 streams
# (about an hour; their figures go to bench/RELIABILITY.md), 10-minute fuzz
# runs.
check-long: all
	$(Q)FERRY_TRIALS=200 FUZZ_SECONDS=600 Q_CASE_TIMEOUT=14400 scripts/check.sh

demo: all
	$(Q)scripts/demo.sh

bench: all
	$(Q)bench/run.sh

times:
	$(Q)scripts/times.sh

# make install [DESTDIR=...] [PREFIX=...]: the binaries, the man pages and
# the live images (for a boot loader, PXE server or cloud image import).
PREFIX ?= /usr/local
install: images
	install -D -m 0755 $(OUT)/ferry $(DESTDIR)$(PREFIX)/bin/ferry
	install -D -m 0755 $(OUT)/ferry-init $(DESTDIR)$(PREFIX)/sbin/ferry-init
	install -D -m 0644 doc/ferry.1 $(DESTDIR)$(PREFIX)/share/man/man1/ferry.1
	install -D -m 0644 doc/ferry-init.8 $(DESTDIR)$(PREFIX)/share/man/man8/ferry-init.8
	install -D -m 0644 $(OUT)/vmlinuz $(DESTDIR)$(PREFIX)/share/ferry/vmlinuz
	install -D -m 0644 $(OUT)/initramfs.cpio.gz $(DESTDIR)$(PREFIX)/share/ferry/initramfs.cpio.gz
	install -D -m 0644 $(OUT)/ferry-live.iso $(DESTDIR)$(PREFIX)/share/ferry/ferry-live.iso

clean:
	rm -rf $(M) $(H) $(F) $(OUT)

distclean:
	rm -rf $(B)

-include $(MOD_OBJ:.o=.d) $(INIT_OBJ:.o=.d) $(AGENT_OBJ:.o=.d) $(HOST_MOD_OBJ:.o=.d) \
	$(FUZZ_MOD_OBJ:.o=.d) \
	$(TEST_SRC:%.c=$(H)/%.d)
