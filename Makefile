# lathe — see README.md. `make run` and `make test` are the two commands a new machine needs.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja

.PHONY: deps build run test test-unit test-e2e test-asan bench format lint clean

deps:
	./scripts/install-deps

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/lathe serve

test: build
	./scripts/run-tests $(BUILD)

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-e2e: build
	LATHE_BIN=$(abspath $(BUILD))/lathe /usr/bin/python3 -m pytest -q tests/e2e

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLATHE_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./scripts/run-tests $(ASAN_BUILD)

bench: build
	./bench/run-all $(BUILD)

format:
	find src tests bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

# clang-tidy (.clang-tidy) on the .cc files changed since HEAD~1 and uncommitted; LINT_ALL=1 for all of src/.
lint: $(BUILD)/build.ninja
	@if [ -n "$(LINT_ALL)" ]; then find src -name '*.cc'; else \
	  { git diff --name-only --diff-filter=AM HEAD~1 -- 'src/*.cc'; git diff --name-only --diff-filter=AM -- 'src/*.cc'; } | sort -u; fi \
	  | xargs -r -P $(JOBS) -n 4 clang-tidy -p $(BUILD) --quiet --extra-arg=-Wno-unknown-warning-option

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
