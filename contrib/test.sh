#!/usr/bin/env bash
# Install what is missing, build, run every test (plain, then under ASan +
# UBSan in a separate build), then make distcheck once. Ends with one line
# "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. contrib/lib.sh

passed=0
failed=0

# Add the counts of DIR/test-suite.log to the totals; a missing log (the
# build failed) counts as one failure.
count_suite() {
    local log=$1/test-suite.log p x f e xp
    if [ ! -f "$log" ]; then
        failed=$((failed + 1))
        return
    fi
    p=$(sed -n 's/^# PASS: *//p' "$log")
    x=$(sed -n 's/^# XFAIL: *//p' "$log")
    f=$(sed -n 's/^# FAIL: *//p' "$log")
    e=$(sed -n 's/^# ERROR: *//p' "$log")
    xp=$(sed -n 's/^# XPASS: *//p' "$log")
    passed=$((passed + ${p:-0} + ${x:-0}))
    failed=$((failed + ${f:-0} + ${e:-0} + ${xp:-0}))
}

# Build DIR with configure flags, then make check there.
check_in() {
    local dir=$1
    shift
    echo "== $dir: build and make check"
    rm -f "$dir/test-suite.log"
    if build_in "$dir" "$@"; then
        make -C "$dir" check VERBOSE=1 -j"$(nproc)" >"$dir.check.log" 2>&1
        grep -E '^(PASS|FAIL|ERROR|SKIP|XPASS|XFAIL):' "$dir.check.log"
        grep -q '^# FAIL: *0$' "$dir/test-suite.log" 2>/dev/null ||
            tail -n 200 "$dir.check.log"
    fi
    count_suite "$dir"
}

# Configure DIR for the fuzz targets and run them (make fuzz, each target
# for a bounded time): one pass or failure per PASS/FAIL line of
# tests/fuzz/run.sh; a configure or build that fails before them counts as
# one failure.
fuzz_in() {
    local dir=$1 rc p f
    shift
    echo "== $dir: make fuzz"
    mkdir -p "$dir"
    if { [ -x configure ] || ./autogen.sh; } >"$dir.fuzz.log" 2>&1 &&
        { [ -f "$dir/Makefile" ] ||
          (cd "$dir" && ../configure "$@") >>"$dir.fuzz.log" 2>&1; }; then
        make -C "$dir" -j"$(nproc)" fuzz >>"$dir.fuzz.log" 2>&1
        rc=$?
    else
        rc=1
    fi
    grep -E '^(PASS|FAIL):' "$dir.fuzz.log"
    p=$(grep -c '^PASS:' "$dir.fuzz.log")
    f=$(grep -c '^FAIL:' "$dir.fuzz.log")
    if [ "$f" -gt 0 ]; then
        sed -n '/^FAIL:/,$p' "$dir.fuzz.log" | head -n 300
    elif [ "$rc" -ne 0 ] || [ "$p" -eq 0 ]; then
        echo "FAIL: $dir: make fuzz (exit $rc) ran no fuzz target"
        tail -n 40 "$dir.fuzz.log"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
}

# shellcheck disable=SC2086
ensure_packages $BUILD_PACKAGES $TEST_PACKAGES || {
    echo "0 passed, 1 failed"
    exit 1
}

check_in build
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    check_in build-asan --enable-sanitizers
fuzz_in build-fuzz CC=clang --enable-fuzz

echo "== build: make distcheck"
if make -C build distcheck >build.distcheck.log 2>&1; then
    passed=$((passed + 1))
    echo "PASS: make distcheck"
else
    failed=$((failed + 1))
    echo "FAIL: make distcheck"
    tail -n 100 build.distcheck.log
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
