# Lethe: machine unlearning in C.
#   make            library, command line (build/lethe), tests, benchmarks
#   make test       run the test suite (ends with "N passed, N failed, N skipped")
#   make SAN=1      build with AddressSanitizer + UndefinedBehaviorSanitizer
#   make MARCH=native   build for this CPU only (see "Kernel sets" below)
CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g

# Kernel sets (src/nn/kernels.h). Without MARCH (or MARCH=portable) an
# x86-64 build runs on any x86-64: the library is compiled for the
# baseline, and the layer kernels (KERN_SRC) once per set with its own
# flags; the first set the CPU runs is chosen at run time (LETHE_KERNELS
# forces one). The AVX-512 set autovectorises with 256-bit vectors, as GCC 12
# does when tuning for Intel's AVX-512 cores; its direct-convolution
# tile uses 512-bit ones. MARCH=native (or any -march value) compiles
# everything for that CPU, one set named "native". Other machines: native.
KERN_SRC := $(addprefix src/nn/,batchnorm.c concat.c conv2d.c conv_direct.c conv_winograd.c \
              embed.c gap.c gelu.c groupnorm.c linear.c maxpool.c mse.c relu.c silu.c \
              softmax.c upsample.c)
PORTABLE :=
ifeq ($(filter-out portable,$(MARCH)),)
  ifeq ($(shell $(CC) -dumpmachine 2>/dev/null | cut -d- -f1),x86_64)
    PORTABLE := 1
  else
    override MARCH := native
  endif
endif
ifeq ($(PORTABLE),1)
  KSETS          := avx512 avx2 generic
  BASE_MARCH     := x86-64
  KFLAGS_avx512  := -march=x86-64-v4 -mprefer-vector-width=256
  KFLAGS_avx2    := -march=x86-64-v3
  KFLAGS_generic := -march=x86-64
  KSET_DEFS      := -DLETHE_PORTABLE
  $(info -- build: portable (x86-64; kernel sets $(KSETS), one chosen at run time))
else
  KSETS          := native
  BASE_MARCH     := $(MARCH)
  KSET_DEFS      := -DLETHE_MARCH='"$(MARCH)"'
  $(info -- build: MARCH=$(MARCH) (one kernel set))
endif

CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -march=$(BASE_MARCH) -Iinclude -Isrc
LDLIBS  += -lm

ifeq ($(SAN),1)
  BUILD  := build-san
  CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif

# OpenBLAS (required: every matrix product goes through cblas_sgemm).
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null)
ifeq ($(BLAS_LIBS),)
  $(error OpenBLAS not found: apt-get install libopenblas-dev)
endif
$(info -- OpenBLAS: found ($(strip $(BLAS_LIBS))))
CFLAGS += $(BLAS_CFLAGS)
LDLIBS += $(BLAS_LIBS)

# OpenMP (optional: threads for element-wise work).
HAVE_OMP := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo yes)
ifeq ($(HAVE_OMP),yes)
  $(info -- OpenMP: found)
  CFLAGS  += -fopenmp
  LDFLAGS += -fopenmp
else
  $(info -- OpenMP: not found, single-threaded element-wise loops)
endif

# MPI (optional: data-parallel runs, `mpirun -np N build/lethe train|unlearn …`;
# docs/DISTRIBUTED.md). Found by pkg-config (ompi-c, mpich) or mpicc; MPI=0
# builds without it (then `rm -rf build` first). Only src/core/dist.c sees it.
ifneq ($(MPI),0)
  MPI_PC := $(firstword $(foreach p,ompi-c mpich,$(shell pkg-config --exists $(p) 2>/dev/null && echo $(p))))
  ifneq ($(MPI_PC),)
    MPI_CFLAGS := $(shell pkg-config --cflags $(MPI_PC))
    MPI_LIBS   := $(shell pkg-config --libs $(MPI_PC))
  else ifneq ($(shell command -v mpicc 2>/dev/null),)
    MPI_CFLAGS := $(filter -I% -D%,$(shell mpicc --showme:compile 2>/dev/null || mpicc -compile_info 2>/dev/null))
    MPI_LIBS   := $(filter -L% -l% -Wl%,$(shell mpicc --showme:link 2>/dev/null || mpicc -link_info 2>/dev/null))
  endif
endif
ifneq ($(MPI_LIBS),)
  $(info -- MPI: found ($(strip $(MPI_LIBS))); mpirun -np N build/lethe … runs data-parallel)
  LDLIBS += $(MPI_LIBS)
  $(BUILD)/src/core/dist.o $(BUILD)/pic/src/core/dist.o: CFLAGS += $(MPI_CFLAGS) -DHAVE_MPI
else ifeq ($(MPI),0)
  $(info -- MPI: off (MPI=0), one process only)
else
  $(info -- MPI: not found, one process only (apt-get install openmpi-bin libopenmpi-dev))
endif

# zlib, cJSON, libsvm, libpng (required).
LDLIBS += -lz -lcjson -lsvm -lpng
CFLAGS += -I/usr/include/cjson

LIB_SRC  := $(sort $(wildcard src/core/*.c src/nn/*.c src/optim/*.c src/data/*.c \
                              src/io/*.c src/eval/*.c src/train/*.c src/unlearn/*.c \
                              src/gen/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

# The kernel files once per set: build/src/nn/conv2d.avx2.o, …
kset_objs = $(foreach k,$(KSETS),$(KERN_SRC:%.c=$(1)/%.$(k).o))
LIB_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(KERN_SRC),$(LIB_SRC))) \
             $(call kset_objs,$(BUILD))
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

VERSION  := $(shell sed -n 's/^\#define LETHE_VERSION "\(.*\)"/\1/p' include/lethe.h)
SOMAJOR  := 0
SONAME   := liblethe.so.$(SOMAJOR)
PIC_OBJ  := $(patsubst %.c,$(BUILD)/pic/%.o,$(filter-out $(KERN_SRC),$(LIB_SRC))) \
            $(call kset_objs,$(BUILD)/pic)

all: $(BUILD)/lethe $(BUILD)/lethe-tests $(BENCH_BIN)

$(BUILD)/liblethe.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/lethe: $(CLI_OBJ) $(BUILD)/liblethe.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The tests link the command line's table printer too (tests/test_table.c).
$(BUILD)/lethe-tests: $(TEST_OBJ) $(BUILD)/src/cli/table.o $(BUILD)/liblethe.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/liblethe.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard include/*.h src/*/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# Set K's objects: its flags after CFLAGS (the last -march counts), and
# -DNN_KSET=K, which gives its kernels their names (src/nn/kernel_names.h).
define kset_rules
$$(KERN_SRC:%.c=$$(BUILD)/%.$(1).o): $$(BUILD)/%.$(1).o: %.c $$(wildcard include/*.h src/*/*.h)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(KFLAGS_$(1)) -DNN_KSET=$(1) -c -o $$@ $$<
$$(KERN_SRC:%.c=$$(BUILD)/pic/%.$(1).o): $$(BUILD)/pic/%.$(1).o: %.c $$(wildcard include/*.h src/*/*.h)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(KFLAGS_$(1)) -DNN_KSET=$(1) -fPIC -c -o $$@ $$<
endef
$(foreach k,$(KSETS),$(eval $(call kset_rules,$(k))))
$(BUILD)/src/nn/kernels.o $(BUILD)/pic/src/nn/kernels.o: CFLAGS += $(KSET_DEFS)

# The Python binding's test loads liblethe.so (not under the sanitizers,
# whose runtime a plain python3 cannot load).
TEST_SO := $(if $(filter 1,$(SAN)),,$(BUILD)/liblethe.so.$(VERSION))
test: $(BUILD)/lethe-tests $(BUILD)/lethe $(TEST_SO)
	LETHE_BIN=$(abspath $(BUILD)/lethe) $(BUILD)/lethe-tests

# ------------------------------------------------------------- installing
#   make install PREFIX=/usr/local DESTDIR=   liblethe.so (soname liblethe.so.0),
#                 liblethe.a, lethe.h, lethe.pc, the lethe binary, man pages
#   make uninstall                            the same files removed
#   make abi-check    the exported symbols against abi/lethe.symbols
# The shared library is built from its own position-independent objects, so
# the static library and the binary are the same bits as without it.
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
COMMANDS = $(shell $(BUILD)/lethe --help | awk '/^commands:/{f=1;next} f&&/^  [a-z]/{print $$1} f&&/^$$/{exit}')

$(BUILD)/pic/%.o: %.c $(wildcard include/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c -o $@ $<

$(BUILD)/liblethe.so.$(VERSION): $(PIC_OBJ) abi/lethe.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=abi/lethe.map \
	    -o $@ $(PIC_OBJ) $(LDLIBS)

shared: $(BUILD)/liblethe.so.$(VERSION)

man: $(BUILD)/lethe
	@mkdir -p $(BUILD)/man
	LETHE_HELP_FORMAT=man $(BUILD)/lethe --help > $(BUILD)/man/lethe.1
	for c in $(COMMANDS); do LETHE_HELP_FORMAT=man $(BUILD)/lethe help $$c > $(BUILD)/man/lethe-$$c.1 || exit 1; done

# An unwritable prefix is said once, clearly, before anything is copied.
install: all shared man
	@d="$(DESTDIR)$(PREFIX)"; mkdir -p "$$d" 2>/dev/null; \
	 if [ ! -w "$$d" ]; then echo "make install: $$d is not writable (choose PREFIX=… or DESTDIR=…, or run as root)" >&2; exit 1; fi
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/lethe
	install -m 644 $(BUILD)/liblethe.a $(DESTDIR)$(LIBDIR)/liblethe.a
	install -m 755 $(BUILD)/liblethe.so.$(VERSION) $(DESTDIR)$(LIBDIR)/liblethe.so.$(VERSION)
	ln -sf liblethe.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/liblethe.so
	install -m 644 include/lethe.h $(DESTDIR)$(PREFIX)/include/lethe.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(strip $(LDFLAGS) $(LDLIBS))|' abi/lethe.pc.in \
	    > $(DESTDIR)$(LIBDIR)/pkgconfig/lethe.pc
	install -m 755 $(BUILD)/lethe $(DESTDIR)$(PREFIX)/bin/lethe
	install -m 644 $(BUILD)/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	# the tuned settings an installed lethe reads (PREFIX/share/lethe/tuned.json)
	install -m 644 configs/tuned.json $(DESTDIR)$(PREFIX)/share/lethe/tuned.json

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/liblethe.a $(DESTDIR)$(LIBDIR)/liblethe.so.$(VERSION) \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/liblethe.so \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/lethe.pc $(DESTDIR)$(PREFIX)/include/lethe.h \
	    $(DESTDIR)$(PREFIX)/bin/lethe $(DESTDIR)$(PREFIX)/share/man/man1/lethe.1 \
	    $(DESTDIR)$(PREFIX)/share/man/man1/lethe-*.1 $(DESTDIR)$(PREFIX)/share/lethe/tuned.json
	-rmdir $(DESTDIR)$(PREFIX)/share/lethe 2>/dev/null

# The ABI: what liblethe.so exports, one name per line, sorted. A change is
# a decision: `make abi-symbols` rewrites the list to commit with it.
abi-check: $(BUILD)/liblethe.so.$(VERSION)
	@nm -D --defined-only $< | awk '$$2 ~ /^[TDBR]$$/ {print $$3}' | sed 's/@.*//' | sort -u > $(BUILD)/lethe.symbols
	@if diff -u abi/lethe.symbols $(BUILD)/lethe.symbols; then \
	    echo "abi-check: $$(wc -l < abi/lethe.symbols) exported symbols, as abi/lethe.symbols lists"; \
	 else echo "abi-check: the exported symbols changed (above); if meant, make abi-symbols" >&2; exit 1; fi

abi-symbols: $(BUILD)/liblethe.so.$(VERSION)
	nm -D --defined-only $< | awk '$$2 ~ /^[TDBR]$$/ {print $$3}' | sed 's/@.*//' | sort -u > abi/lethe.symbols

clean:
	rm -rf build build-san

.PHONY: all test clean shared man install uninstall abi-check abi-symbols
.SECONDARY:

# ------------------------------------------------------------------ fuzzing
# libFuzzer harnesses over every parser of untrusted input (fuzz/fuzz_*.c),
# built with clang + ASan + UBSan into build-fuzz/ (the normal build and its
# flags are untouched). Needs clang and libclang-rt-14-dev (libFuzzer).
#   make fuzz          fuzz each harness FUZZ_SECONDS (60), one at a time,
#                      from its seeds fuzz/corpus/NAME; new inputs are kept in
#                      build-fuzz/corpus/NAME, crashes in build-fuzz/crash-NAME-*
#   make fuzz-replay   run each harness over its seeds (every committed
#                      regression input among them), then fuzz it for
#                      FUZZ_REPLAY_SECONDS (4) with a fixed seed: CI's check
FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_REPLAY_SECONDS ?= 4
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
# No OpenMP: the parsers are serial, and one thread keeps a crash reproducible.
FUZZ_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unknown-pragmas \
                -Iinclude -Isrc -I/usr/include/cjson $(BLAS_CFLAGS) $(FUZZ_SAN)
FUZZ_NAMES   := $(sort $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c)))
FUZZ_BIN     := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
# A harness's dictionary (fuzz/NAME.dict), if it has one.
fuzz_dict = $$(test -f fuzz/$(1).dict && echo -dict=fuzz/$(1).dict)

# One kernel set, compiled for clang's default target.
$(KERN_SRC:%.c=$(FUZZ_BUILD)/%.o): FUZZ_CFLAGS += -DNN_KSET=native

$(FUZZ_BUILD)/%.o: %.c $(wildcard include/*.h src/*/*.h fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/liblethe.a: $(FUZZ_LIB_OBJ)
	$(AR) rcs $@ $^

$(FUZZ_BIN): $(FUZZ_BUILD)/%: $(FUZZ_BUILD)/fuzz/%.o $(FUZZ_BUILD)/liblethe.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $(filter %.o,$^) \
	    $(FUZZ_BUILD)/liblethe.a $(LDLIBS)

fuzz: $(FUZZ_BIN)
	@failed=""; for f in $(FUZZ_NAMES); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$f; \
	    echo "== $$f: fuzzing $(FUZZ_SECONDS) s"; \
	    OPENBLAS_NUM_THREADS=1 $(FUZZ_BUILD)/$$f -max_total_time=$(FUZZ_SECONDS) \
	        -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crash-$$f- \
	        $(call fuzz_dict,$$f) $(FUZZ_BUILD)/corpus/$$f fuzz/corpus/$$f || \
	        failed="$$failed $$f"; \
	done; \
	test -z "$$failed" || { echo "fuzz: crashes in$$failed (see $(FUZZ_BUILD)/crash-*)"; exit 1; }

fuzz-replay: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_NAMES); do \
	    d=$(FUZZ_BUILD)/replay/$$f; rm -rf $$d; mkdir -p $$d; \
	    if OPENBLAS_NUM_THREADS=1 $(FUZZ_BUILD)/$$f -seed=1 \
	        -max_total_time=$(FUZZ_REPLAY_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_BUILD)/crash-$$f- $(call fuzz_dict,$$f) \
	        $$d fuzz/corpus/$$f >$$d.log 2>&1; then \
	        echo "$$f: $$(ls fuzz/corpus/$$f | wc -l) seeds replayed, then" \
	             "$$(sed -n 's/^stat::number_of_executed_units: *//p' $$d.log) runs: ok"; \
	    else \
	        tail -n 40 $$d.log; echo "$$f: FAILED (log: $$d.log)"; exit 1; \
	    fi; \
	done

clean: clean-fuzz
clean-fuzz:
	rm -rf $(FUZZ_BUILD)

.PHONY: fuzz fuzz-replay clean-fuzz

# ----------------------------------------------------------------- valgrind
# A short `lethe train` and `lethe unlearn` (SalUn), each stopped twice by a
# signal and resumed (the test resume_cli_pending_signal), every run under
# valgrind --leak-check=full --error-exitcode=1 with one thread; prints the
# summary lines of each run and fails on any error or leak. Built apart in
# build-vg for AVX2 (x86-64-v3): valgrind 3.19 cannot run AVX-512 code.
VG_BUILD := build-vg

valgrind:
	$(MAKE) BUILD=$(VG_BUILD) MARCH=x86-64-v3 $(VG_BUILD)/lethe $(VG_BUILD)/lethe-tests
	LETHE_BIN=$(abspath $(VG_BUILD)/lethe) LETHE_VALGRIND=1 OMP_NUM_THREADS=1 \
	    $(VG_BUILD)/lethe-tests resume_cli_pending_signal

clean: clean-valgrind
clean-valgrind:
	rm -rf $(VG_BUILD)

.PHONY: valgrind clean-valgrind
