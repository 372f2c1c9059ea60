#!/bin/sh
# Run libFuzzer targets for a bounded time each, on a copy of their seeds.
#
#   run.sh FUZZDIR TARGET...
#
# FUZZDIR is tests/fuzz in the source tree; a target named fuzz_NAME takes
# its seeds from FUZZDIR/corpus_NAME. The seeds are copied to a scratch
# directory first: libFuzzer adds what it finds to its first corpus
# directory, and the one in the tree must stay as it is (it may also be
# read-only, as in make distcheck).
#
# FUZZ_SECONDS, when set, is the time of every target; otherwise fuzz_http,
# the one with the most to explore, gets 60 s and the others 15 s.
#
# Prints one "PASS: fuzz_NAME ..." or "FAIL: fuzz_NAME ..." line per target
# (contrib/test.sh counts them). A crash is kept next to the target as
# fuzz_NAME-crash-<sha1> with the whole output in fuzz_NAME.log; the crash
# is shown with its stack. Exits 1 if any target failed.
set -u

if [ $# -lt 2 ]; then
    echo "usage: $0 FUZZDIR TARGET..." >&2
    exit 2
fi
fuzzdir=$1
shift

# The runtime options only apply when the caller set none.
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export UBSAN_OPTIONS

# stat::NAME from libFuzzer's -print_final_stats output in file $2.
stat_of() {
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

# Show what a failed run left: the report and the input that caused it.
show_failure() {
    name=$1 log=$2 prefix=$3
    echo "---- $log (from the first report) ----"
    # From the first report on, without the shadow memory map.
    awk '/^==[0-9]+==|runtime error:|deadly signal/ { p = 1 }
         /^Shadow bytes around/ { skip = 1 }
         /ABORTING/ { skip = 0 }
         p && !skip' "$log" | grep -v '^#[0-9]' | head -n 80
    # This run's input, as libFuzzer named it (older ones stay untouched).
    sed -n 's/.*Test unit written to //p' "$log" | while IFS= read -r crash
    do
        [ -f "$crash" ] || continue
        echo "---- input $crash ($(wc -c <"$crash") bytes; replay:" \
            "$(dirname "$prefix")/$name $crash) ----"
        od -A d -c "$crash" | head -n 40
    done
}

# Run one target; prints its PASS/FAIL line, returns non-zero on failure.
run_one() {
    bin=$1
    name=$(basename "$bin")
    seeds=$fuzzdir/corpus_${name#fuzz_}
    if [ -n "${FUZZ_SECONDS:-}" ]; then
        secs=$FUZZ_SECONDS
    elif [ "$name" = fuzz_http ]; then
        secs=60
    else
        secs=15
    fi
    outdir=$(dirname "$bin")
    log=$outdir/$name.log
    prefix=$outdir/$name-
    if [ ! -x "$bin" ]; then
        echo "FAIL: $name: $bin is not built"
        return 1
    fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/weft-$name.XXXXXX") || return 1
    mkdir "$work/corpus"
    nseeds=0
    if [ -d "$seeds" ]; then
        for f in "$seeds"/*; do
            [ -f "$f" ] || continue
            cp "$f" "$work/corpus/" && nseeds=$((nseeds + 1))
        done
        # Seeds from a read-only tree stay replaceable in the copy.
        chmod -R u+w "$work/corpus"
    else
        echo "note: $name: no $seeds, starting from an empty corpus"
    fi
    echo "== $name: $secs s from $nseeds seeds"
    # libFuzzer stops itself after max_total_time; timeout(1) is only the
    # backstop for a target that hangs outside its per-input -timeout.
    timeout -k 10 $((secs + 60)) "$bin" -max_total_time="$secs" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$prefix" "$work/corpus" >"$log" 2>&1
    rc=$?
    ncorpus=$(find "$work/corpus" -type f | wc -l)
    rm -rf "$work"
    runs=$(stat_of number_of_executed_units "$log")
    rate=$(stat_of average_exec_per_sec "$log")
    added=$(stat_of new_units_added "$log")
    rss=$(stat_of peak_rss_mb "$log")
    if [ "$rc" -eq 0 ] && ! grep -q 'Sanitizer\|runtime error:' "$log"; then
        echo "PASS: $name: ${runs:-?} runs in $secs s (${rate:-?} exec/s)," \
            "${added:-?} new inputs, corpus $nseeds -> $ncorpus," \
            "peak RSS ${rss:-?} MB"
        return 0
    fi
    echo "FAIL: $name: exit $rc after ${runs:-?} runs; output in $log"
    show_failure "$name" "$log" "$prefix"
    return 1
}

status=0
for bin in "$@"; do
    run_one "$bin" || status=1
done
exit $status
