#!/usr/bin/env bash
#
# chat.sh - fan-out and latency of weftd's chat protocol over the message
# bus, with chat-load (chat-load.c): S subscribers and P publishers in
# one room, the publishers sending R messages per second in all, every
# member receiving every message.
#
# usage: contrib/bench/chat.sh [-q] [-d SECONDS] [BUILD_DIR]
#
#   BUILD_DIR   where weftd was built (default build, relative to the
#               repository root); BUILD_DIR/weftd is run, chat-load is
#               BUILD_DIR/contrib/bench/chat-load or compiled here
#   -d SECONDS  length of each measured run (default 10; BENCH_SECONDS)
#   -q          quick: 3 s runs, fewer rates (BENCH_QUICK=1)
#
# Runs, each on a freshly started server:
#   * 2 workers (pinned), latency at a ladder of rates: publish-to-deliver
#     p50/p99 for publisher and receiver on the same worker and on
#     different workers (chat-load reads which worker holds each
#     connection from /proc), and the delivered messages per second;
#   * 1 worker at the same rates: every delivery stays within the worker;
#   * the highest rate again as a fan-out throughput run;
#   * Twisted, when python3-twisted is installed: the same protocol
#     subset in one process (contrib/bench/twisted_chat.py).
# The bar of the bus issue: p99 across workers under 1 ms at 50,000
# delivered messages per second (50 subscribers + 2 publishers at 1000
# messages per second).
#
# Every server is killed by pid on exit, error or Ctrl-C.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE/../.."

SECS=${BENCH_SECONDS:-10}
QUICK=${BENCH_QUICK:-0}
SUBS=50
PUBS=2
START_TIMEOUT=10

while getopts "qd:" opt; do
    case $opt in
    q) QUICK=1 ;;
    d) SECS=$OPTARG ;;
    *) sed -n '10,15p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
BUILD=${1:-build}
((QUICK)) && SECS=${BENCH_SECONDS:-3}
if ((QUICK)); then
    RATES=(1000 5000)
else
    RATES=(500 1000 2000 5000 10000)
fi
WEFTD=$BUILD/weftd
[[ -x $WEFTD ]] || { echo "chat: no $WEFTD (build first)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/weft-chat-bench.XXXXXX")
SERVER_PID=""

# shellcheck source=contrib/bench/proc.sh
. contrib/bench/proc.sh

log() { printf 'chat: %s\n' "$*" >&2; }

cleanup() {
    [[ -n $SERVER_PID ]] && stop_pid "$SERVER_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD=$BUILD/contrib/bench/chat-load
if [[ ! -x $LOAD ]]; then
    LOAD=$TMP/chat-load
    gcc -std=c11 -O2 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -o "$LOAD" contrib/bench/chat-load.c -lev -lm
fi

# Wait until port $1 greets like a chat server, or process $2 dies.
wait_chat() {
    local port=$1 pid=$2 deadline=$((SECONDS + START_TIMEOUT)) line
    while ((SECONDS < deadline)); do
        alive "$pid" || return 1
        if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
            line=""
            IFS= read -r -t 1 line <&3 || true
            exec 3<&- 3>&-
            [[ $line == HELLO* ]] && return 0
        fi
        sleep 0.05
    done
    return 1
}

start_weft() {
    local workers=$1 port=$2
    cat >"$TMP/weft.conf" <<EOF
workers = $workers;
cpu_affinity = true;
shutdown_timeout = 2;
control = { path = "$TMP/weft.sock"; };
listeners = (
  { name = "chat"; listen = "127.0.0.1:$port"; protocol = "chat";
    chat = { rate = 1000000; burst = 1000000; max_output = 67108864; }; }
);
EOF
    "$WEFTD" -c "$TMP/weft.conf" 2>"$TMP/weftd.log" &
    SERVER_PID=$!
    wait_chat "$port" "$SERVER_PID" || {
        tail -n 20 "$TMP/weftd.log" >&2
        log "weftd did not start"
        exit 1
    }
}

start_twisted() {
    local port=$1 py
    py=$(twisted_python) || return 1
    "$py" contrib/bench/twisted_chat.py "$port" 2>"$TMP/twisted.log" &
    SERVER_PID=$!
    wait_chat "$port" "$SERVER_PID"
}

# The python that has Twisted, or failure.
twisted_python() {
    local py
    for py in /usr/bin/python3 python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import twisted' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=""
}

ROWS=()

# One chat-load run at rate $2 against port $1 (weftd pid $3 or "");
# appends a table row labelled $4.
measure() {
    local port=$1 rate=$2 pid=$3 label=$4 out r
    local args=(-p "$port" -s "$SUBS" -P "$PUBS" -r "$rate" -d "$SECS" -w 1)
    [[ -n $pid ]] && args+=(-x "$pid")
    out=$("$LOAD" "${args[@]}" 2>"$TMP/load.err") || {
        cat "$TMP/load.err" >&2
        log "chat-load failed"
        exit 1
    }
    r=$(grep '^result ' <<<"$out")
    log "$label rate $rate: ${r#result }"
    declare -A v
    local kv
    for kv in ${r#result }; do v[${kv%%=*}]=${kv#*=}; done
    ROWS+=("$(printf '%-22s %7s %10s %9s %9s %9s %9s %7s %6s' "$label" \
        "$rate" "${v[delivered_per_s]}" "${v[same_p50_us]}" \
        "${v[same_p99_us]}" "${v[cross_p50_us]}" "${v[cross_p99_us]}" \
        "${v[refused]}" "${v[lost]}")")
}

ulimit -n 20000 2>/dev/null || true
for workers in 2 1; do
    for rate in "${RATES[@]}"; do
        port=$(free_port)
        start_weft "$workers" "$port"
        measure "$port" "$rate" "$SERVER_PID" "weftd $workers worker(s)"
        stop_server
    done
done
if twisted_python >/dev/null; then
    for rate in "${RATES[@]}"; do
        port=$(free_port)
        if start_twisted "$port"; then
            measure "$port" "$rate" "" "twisted (1 process)"
        else
            log "the Twisted chat server did not start"
        fi
        stop_server
    done
else
    log "python3-twisted not installed: no Twisted comparison"
fi

echo "== chat fan-out: $SUBS subscribers + $PUBS publishers in one room, ${SECS} s per run"
echo "   rate: messages published per second; delivered: to members, per second"
echo "   latency in us from the publisher's send to a member's read; same/cross: publisher and member on the same worker or not"
echo "   refused: messages the server answered ERR (BUSY, RATE: not sent to anyone); lost: gaps no refusal explains"
printf '%-22s %7s %10s %9s %9s %9s %9s %7s %6s\n' server rate delivered \
    same_p50 same_p99 cross_p50 cross_p99 refused lost
printf '%s\n' "${ROWS[@]}"
