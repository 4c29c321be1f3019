# Thin wrapper over CMake/ctest/pytest. Every target installs the Debian
# packages it needs first (scripts/deps.sh), so a fresh clone just works.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PY := /usr/bin/python3
ARGS ?=

.PHONY: all build run test unit integration asan-test bench soak clean fuzz fuzz-codec

all: build

build:
	@scripts/deps.sh build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	./$(BUILD)/outpost run $(ARGS)

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

integration: build
	OUTPOST_BIN=$(abspath $(BUILD))/outpost $(PY) -m pytest -q -p no:cacheprovider tests/integration

# The whole suite; under CI (CI=true) it runs a second time on an ASan+UBSan build.
test:
	@scripts/deps.sh test
	@scripts/lint.sh
	@$(MAKE) --no-print-directory unit integration
	@if [ "$${CI:-}" = "true" ] || [ -n "$${OUTPOST_ASAN:-}" ]; then $(MAKE) --no-print-directory asan-test; fi
	@if [ "$${CI:-}" = "true" ]; then scripts/fuzz.sh 10; fi

# The integration tests read the store through outpost_sqlite.so in python3,
# which cannot load a sanitized library (the ASan build makes none): they get
# the plain build's.
asan-test:
	@scripts/deps.sh test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DOUTPOST_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target outpost_sqlite
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  OUTPOST_BIN=$(abspath $(ASAN_BUILD))/outpost OUTPOST_SANITIZED=1 \
	  OUTPOST_SQLITE_EXT=$(abspath $(BUILD))/outpost_sqlite.so \
	  $(PY) -m pytest -q -p no:cacheprovider tests/integration

bench: build
	@scripts/deps.sh bench
	@cmake -S . -B $(BUILD) >/dev/null && cmake --build $(BUILD) -j$(JOBS) --target bench_json
	$(BUILD)/bench/json/bench_json 100 1
	OUTPOST_DATASETS=$(abspath ../shared/datasets) $(BUILD)/bench/codec/bench_codec
	bench/http/run.sh $(abspath $(BUILD))/outpost
	$(PY) bench/uplink/bench_uplink.py $(abspath $(BUILD))/outpost --out bench/results/uplink-$$(date +%Y%m%d-%H%M).txt

# The libFuzzer targets under ASan+UBSan (docs/fuzzing.md), SECS seconds each
# (default 600), two at a time; FUZZ_TARGETS="readings query" runs a subset.
SECS ?= 600
FUZZ_TARGETS ?=
fuzz:
	scripts/fuzz.sh $(SECS) $(FUZZ_TARGETS)

fuzz-codec:
	@$(MAKE) --no-print-directory fuzz FUZZ_TARGETS=codec

soak: build
	@scripts/deps.sh test
	$(PY) bench/soak/kill9.py --bin $(abspath $(BUILD))/outpost --cycles $${CYCLES:-100}
	OUTPOST_SOAK=1 OUTPOST_BIN=$(abspath $(BUILD))/outpost \
	  $(PY) -m pytest -q -p no:cacheprovider tests/integration/09_uplink tests/integration/11_uplink_mqtt

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
