# The commands people type. Each target first installs missing Debian
# packages (scripts/deps.sh), so every one works on a fresh Debian 12 machine:
# make and make run only what running needs (scripts/deps.sh run), the others
# what the tests need too. build/ has no tests (they are build-test/'s).
#   make          build into build/
#   make run      build, then start build/src/cmd/kcobrad with etc/kcobrad.conf
#                 (data in ./data)
#   make test     sanitizer build (ASan+UBSan) in build-test/, all tests, fuzzers
#   make bench    release build in build-bench/, kcobrad vs nats-server, and each
#                 part's benchmark against its peer (bench/run_<part>.sh)
#   make fuzz     run each libFuzzer target longer (FUZZ_SECONDS, default 60)
#   make lint     clang-format and cppcheck must be clean (make test runs it first)
#   make install  release build in build-install/, installed under PREFIX
#                 (default /usr/local; DESTDIR for a staging tree): kcobrad,
#                 kcobra, libkingcobra (shared, static, headers, pkg-config),
#                 the default config and kcobrad.service (docs/operations.md)
#   make deb      the Debian package (dpkg-buildpackage) in build-deb/

FUZZ_SECONDS ?= 60
# The whole library is built with coverage instrumentation and sanitizers,
# so libFuzzer sees (and ASan checks) the code under test, not just the target.
FUZZ_SETUP = CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Dbench=false \
	-Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link
CI_FUZZ_SECONDS ?= 20

.PHONY: all deps build run test unit fuzz bench clean format lint install deb
all: build

deps:
	@scripts/deps.sh

build:
	@scripts/deps.sh run
	@[ -f build/build.ninja ] || meson setup build -Dtests=false -Dbench=false
	ninja -C build

run: build
	./build/src/cmd/kcobrad -c etc/kcobrad.conf --data_dir data

lint: deps
	scripts/lint.sh

test: deps
	scripts/lint.sh
	@[ -f build-test/build.ninja ] || meson setup build-test -Dwerror=true \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=undefined
	ninja -C build-test
	@[ -f build-fuzz/build.ninja ] || $(FUZZ_SETUP)
	ninja -C build-fuzz
	scripts/run-tests.sh build-test build-fuzz $(CI_FUZZ_SECONDS)

fuzz: deps
	@[ -f build-fuzz/build.ninja ] || $(FUZZ_SETUP)
	ninja -C build-fuzz
	scripts/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

bench:
	@scripts/deps.sh bench
	@[ -f build-bench/build.ninja ] || meson setup build-bench --buildtype=release -Dtests=false
	ninja -C build-bench
	bench/run.sh build-bench
	@# The later parts' benchmarks, each with its own peer (bench/README.md).
	@for part in queue ledger ledger_replay ledger_replicated econ auth lease jsqueue; do \
		[ ! -x bench/run_$$part.sh ] || bench/run_$$part.sh build-bench || exit 1; \
	done

PREFIX ?= /usr/local
# Its own build directory, so PREFIX never changes the paths of build/.
install: deps
	@[ -f build-install/build.ninja ] || meson setup build-install --buildtype=release \
		-Dtests=false -Dbench=false -Dprefix=$(PREFIX)
	meson configure build-install -Dprefix=$(PREFIX)
	ninja -C build-install
	meson install -C build-install --no-rebuild $(if $(DESTDIR),--destdir $(DESTDIR))

deb: deps
	scripts/make-deb.sh build-deb

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-test build-fuzz build-bench build-install build-deb
