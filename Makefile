# Lethe: machine unlearning in C.
#   make            library, command line (build/lethe), tests, benchmarks
#   make test       run the test suite (ends with "N passed, N failed")
#   make SAN=1      build with AddressSanitizer + UndefinedBehaviorSanitizer
CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -march=native -Iinclude -Isrc
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

# zlib, cJSON, libsvm, libpng (required).
LDLIBS += -lz -lcjson -lsvm -lpng
CFLAGS += -I/usr/include/cjson

LIB_SRC  := $(sort $(wildcard src/core/*.c src/nn/*.c src/optim/*.c src/data/*.c \
                              src/io/*.c src/eval/*.c src/train/*.c src/unlearn/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

all: $(BUILD)/lethe $(BUILD)/lethe-tests $(BENCH_BIN)

$(BUILD)/liblethe.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/lethe: $(CLI_OBJ) $(BUILD)/liblethe.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/lethe-tests: $(TEST_OBJ) $(BUILD)/liblethe.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/liblethe.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard include/*.h src/*/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

test: $(BUILD)/lethe-tests $(BUILD)/lethe
	LETHE_BIN=$(abspath $(BUILD)/lethe) $(BUILD)/lethe-tests

clean:
	rm -rf build build-san

.PHONY: all test clean
.SECONDARY:
