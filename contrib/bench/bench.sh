#!/usr/bin/env bash
#
# bench.sh - benchmark weftd on loopback: throughput, latency, server CPU per
# operation and memory per idle connection, with Twisted and nginx beside it
# when they are installed, and the cost of weft's TCP proxy (pingpong direct
# to an echo listener and through a proxy listener relaying to it).
#
# usage: contrib/bench/bench.sh [BUILD_DIR]     (BUILD_DIR default: build)
#
# Environment:
#   BENCH_SECONDS  length of each timed run (default 10)
#   BENCH_IDLE     idle connections held (default 10000)
#   BENCH_INSTALL  1: apt-get install python3-twisted nginx first
#
# Every server is started on 127.0.0.1, every run is bounded in time, and
# everything started here is killed by pid on exit, error or Ctrl-C.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD_DIR=${1:-build}
SECS=${BENCH_SECONDS:-10}
IDLE=${BENCH_IDLE:-10000}
CONNS=50
SIZE=64
START_TIMEOUT=10        # s for a server to answer its first echo
IDLE_SETUP_TIMEOUT=150  # s for the idle connections to be ready
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/weft-bench.XXXXXX")
PIDS=()                 # every process started here, killed on exit
ROWS=()                 # lines of the results table
MEM_ROWS=()             # lines of the idle memory table
PROXY_NOTE=""           # the proxy's overhead, printed under the table
LAST_OPS_S=0            # ops/s and cpu_us/op of the last run_timed
LAST_CPU=-

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=contrib/bench/proc.sh
. contrib/bench/proc.sh

cleanup() {
    local pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

# A port free for both TCP and UDP on 127.0.0.1, below the ephemeral range
# so that no client socket of a churn run can be handed the same number.
free_port() {
    python3 - <<'EOF'
import random, socket
for _ in range(200):
    port = random.randint(20000, 32000)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        t.bind(("127.0.0.1", port))
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        t.close()
        u.close()
    print(port)
    break
else:
    raise SystemExit("no free port")
EOF
}

# One echo round trip on 127.0.0.1:$1 (bash /dev/tcp); 0 if it came back.
probe_echo() {
    local reply=""
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'weft-probe' >&3
    read -r -t 1 -n 10 reply <&3 || true
    exec 3<&- 3>&-
    [[ $reply == weft-probe ]]
}

# One HTTP request on 127.0.0.1:$1; 0 if a status line came back.
probe_http() {
    local reply=""
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET / HTTP/1.0\r\n\r\n' >&3
    read -r -t 1 reply <&3 || true
    exec 3<&- 3>&-
    [[ $reply == HTTP/* ]]
}

# Poll probe $1 on port $2 until it passes, process $3 dies or the deadline
# passes.  Returns 0 when the server answers.
wait_ready() {
    local probe=$1 port=$2 pid=$3 deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        alive "$pid" || return 1
        "$probe" "$port" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# Sum of VmRSS, in kB, of the children of $1 whose comm matches glob $2.
workers_rss_kb() {
    local total=0 pid comm kb
    for pid in $(children_of "$1"); do
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
        # shellcheck disable=SC2053
        [[ $comm == $2 ]] || continue
        kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# Value of key $2 in the "result k=v ..." line $1.
kv() {
    awk -v k="$2" '{
        for (i = 2; i <= NF; i++) {
            split($i, a, "=")
            if (a[1] == k) { print a[2]; exit }
        }
    }' <<<"$1"
}

# Path of weft-load: the built one, or one compiled here into $TMP.
find_load() {
    local built=$BUILD_DIR/contrib/bench/weft-load
    if [[ -x $built ]]; then
        echo "$built"
        return
    fi
    log "compiling weft-load.c (no $built)"
    gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow \
        -Wstrict-prototypes -Wmissing-prototypes \
        -o "$TMP/weft-load" contrib/bench/weft-load.c -lev -lm >&2 ||
        die "cannot compile contrib/bench/weft-load.c"
    echo "$TMP/weft-load"
}

# Run the server command $4... in the background with stderr to $3, wait
# until probe $1 answers on port $2, or show the log and give up.
# Sets SERVER_PID.
launch() {
    local probe=$1 port=$2 logf=$3
    shift 3
    "$@" 2>"$logf" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    if ! wait_ready "$probe" "$port" "$SERVER_PID"; then
        tail -n 20 "$logf" >&2 || true
        die "$1 did not answer on port $port"
    fi
}

# Start weftd with $1 workers on port $2 (TCP and UDP).  Sets SERVER_PID.
start_weftd() {
    local workers=$1 port=$2 conf=$TMP/weftd-$1.conf
    cat >"$conf" <<EOF
workers = $workers;
cpu_affinity = true;
listeners = (
  { name = "echo";     listen = "127.0.0.1:$port";       protocol = "echo"; },
  { name = "echo-udp"; listen = "udp://127.0.0.1:$port"; protocol = "echo"; }
);
EOF
    launch probe_echo "$port" "$TMP/weftd-$workers.log" \
        "$WEFTD" -c "$conf" -w "$workers"
}

# Start weftd with $1 workers: echo on port $2 and a proxy on port $3
# relaying to it.  Ready when an echo comes back through the proxy.
# Sets SERVER_PID.
start_weftd_proxy() {
    local workers=$1 echo_port=$2 proxy_port=$3
    local conf=$TMP/weftd-proxy-$1.conf
    cat >"$conf" <<EOF
workers = $workers;
cpu_affinity = true;
listeners = (
  { name = "echo";  listen = "127.0.0.1:$echo_port";  protocol = "echo"; },
  { name = "proxy"; listen = "127.0.0.1:$proxy_port"; protocol = "proxy";
    proxy = { upstreams = ("127.0.0.1:$echo_port"); }; }
);
EOF
    launch probe_echo "$proxy_port" "$TMP/weftd-proxy-$workers.log" \
        "$WEFTD" -c "$conf" -w "$workers"
}

# Start the Twisted echo server (TCP and UDP) on port $1 with python $2.
# Sets SERVER_PID.
start_twisted() {
    local port=$1 py=$2
    cat >"$TMP/twisted_echo.py" <<'EOF'
import sys
from twisted.internet import epollreactor
epollreactor.install()
from twisted.internet import protocol, reactor


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class EchoDatagram(protocol.DatagramProtocol):
    def datagramReceived(self, data, addr):
        self.transport.write(data, addr)


port = int(sys.argv[1])
reactor.listenTCP(port, protocol.Factory.forProtocol(Echo), backlog=4096,
                  interface="127.0.0.1")
reactor.listenUDP(port, EchoDatagram(), interface="127.0.0.1")
reactor.run()
EOF
    launch probe_echo "$port" "$TMP/twisted.log" \
        "$py" "$TMP/twisted_echo.py" "$port"
}

# Start nginx (2 workers, one http server) on port $1.  Sets SERVER_PID.
start_nginx() {
    local port=$1 dir=$TMP/nginx
    mkdir -p "$dir/logs" "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
worker_processes 2;
worker_rlimit_nofile $((IDLE + 200));
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections $((IDLE + 100)); }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    client_header_timeout 300s;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 "ok\n"; }
    }
}
EOF
    launch probe_http "$port" "$dir/logs/stderr.log" \
        "$NGINX" -p "$dir" -e "$dir/logs/stderr.log" -c "$dir/nginx.conf"
}

# Run weft-load mode $4 against server $1 ($2 workers, pid $3) on port $5,
# and add a row to the table, labelled $6 (default: the mode).  Server CPU
# is read around the run.  Sets LAST_OPS_S and LAST_CPU.
run_timed() {
    local name=$1 workers=$2 pid=$3 mode=$4 port=$5 label=${6:-$4}
    local t0 t1 out line ops cpu rc=0
    t0=$(server_ticks "$pid")
    # --foreground: Ctrl-C reaches weft-load, which reports and dies of
    # SIGINT; its status 130 then stops this script too.
    out=$(timeout --foreground $((SECS + 30)) "$LOAD" -p "$port" \
        -m "$mode" -c "$CONNS" -s "$SIZE" -d "$SECS") || rc=$?
    ((rc == 130)) && exit 130
    ((rc == 0)) || die "weft-load $mode against $name failed ($rc)"
    t1=$(server_ticks "$pid")
    alive "$pid" || die "$name died during the $mode run"
    printf '%s\n' "$out" >&2
    line=$(grep '^result ' <<<"$out") || die "no result line from weft-load"
    ops=$(kv "$line" ops)
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$ops" \
        'BEGIN { if (n > 0) printf "%.2f", d / hz * 1e6 / n; else print "-" }')
    LAST_OPS_S=$(kv "$line" ops_per_s)
    LAST_CPU=$cpu
    ROWS+=("$(printf '%-9s %-8s %7s %11s %9s %9s %10s %7s %8s' \
        "$label" "$name" "$workers" "$LAST_OPS_S" \
        "$(kv "$line" p50_us)" "$(kv "$line" p99_us)" "$cpu" \
        "$(kv "$line" errors)" "$(kv "$line" client_cpu_pct)")")
}

# Pingpong on one weftd with $1 workers, straight to its echo listener and
# through its proxy listener; rows "proxy direct" and "proxy proxied", and
# PROXY_NOTE with the difference.  Proxied CPU counts the proxy and the
# echo behind it, so the difference is what the proxy costs.
run_proxy() {
    local workers=$1 echo_port proxy_port ops0 cpu0
    echo_port=$(free_port)
    proxy_port=$(free_port)
    while [[ $proxy_port == "$echo_port" ]]; do
        proxy_port=$(free_port)
    done
    log "weftd -w $workers: echo on 127.0.0.1:$echo_port, proxy on" \
        "127.0.0.1:$proxy_port relaying to it"
    start_weftd_proxy "$workers" "$echo_port" "$proxy_port"
    run_timed direct "$workers" "$SERVER_PID" pingpong "$echo_port" proxy
    ops0=$LAST_OPS_S cpu0=$LAST_CPU
    run_timed proxied "$workers" "$SERVER_PID" pingpong "$proxy_port" proxy
    stop_pid "$SERVER_PID"
    PROXY_NOTE=$(awk -v o0="$ops0" -v o1="$LAST_OPS_S" -v c0="$cpu0" \
        -v c1="$LAST_CPU" -v w="$workers" 'BEGIN {
        printf "proxy overhead (weftd -w %d, pingpong): ops/s %.0f -> %.0f", \
            w, o0, o1
        if (o0 > 0) printf " (%+.1f%%)", (o1 - o0) * 100 / o0
        if (c0 != "-" && c1 != "-")
            printf "; server cpu_us/op %.2f -> %.2f (+%.2f for the proxy)", \
                c0, c1, c1 - c0
        printf "\n"
    }')
}

# Hold $IDLE idle connections (weft-load -s $4) against server $1 ($2
# workers, pid $3, worker comm glob $5) on port $6, and add a row with the
# workers' RSS growth per connection.
run_idle() {
    local name=$1 workers=$2 pid=$3 size=$4 glob=$5 port=$6
    local out=$TMP/idle-$name.out before after ready load deadline per
    before=$(workers_rss_kb "$pid" "$glob")
    timeout $((IDLE_SETUP_TIMEOUT + 120)) "$LOAD" -p "$port" -m idle \
        -c "$IDLE" -s "$size" -d 120 >"$out" &
    load=$!
    PIDS+=("$load")
    deadline=$((SECONDS + IDLE_SETUP_TIMEOUT))
    until grep -q '^idle_ready ' "$out"; do
        alive "$load" || die "weft-load idle exited early"
        ((SECONDS < deadline)) || die "idle connections not ready in time"
        sleep 0.1
    done
    ready=$(sed -n 's/^idle_ready conns=//p' "$out")
    wait_accepted "$port"
    after=$(workers_rss_kb "$pid" "$glob")
    stop_pid "$load"
    grep -h '^idle:' "$out" >&2 || true
    per=$(awk -v b="$before" -v a="$after" -v n="$ready" 'BEGIN {
        if (n > 0) printf "%.0f", (a - b) * 1024 / n; else print "-" }')
    MEM_ROWS+=("$(printf '%-8s %7s %7s %12s %12s %14s' "$name" "$workers" \
        "$ready" "$before" "$after" "$per")")
}

# Wait (bounded) until the accept queues of the listeners on port $1 are
# empty, so that every connection has been accepted by a worker.
wait_accepted() {
    local deadline=$((SECONDS + 10)) queued
    command -v ss >/dev/null || { sleep 1; return 0; }
    while ((SECONDS < deadline)); do
        queued=$(ss -Hltn "sport = :$1" | awk '{ n += $2 } END { print n + 0 }')
        ((queued == 0)) && return 0
        sleep 0.1
    done
    log "warning: connections still queued on port $1"
}

print_tables() {
    local row
    echo
    echo "== throughput and latency: ${CONNS} conns x ${SIZE} B, ${SECS} s" \
        "per run; cpu_us/op = server utime+stime per operation"
    printf '%-9s %-8s %7s %11s %9s %9s %10s %7s %8s\n' test server workers \
        ops/s p50_us p99_us cpu_us/op errors load_cpu%
    for row in "${ROWS[@]}"; do
        echo "$row"
    done | sort -s -k1,1
    if [[ -n $PROXY_NOTE ]]; then
        echo "$PROXY_NOTE"
    fi
    if ((${#MEM_ROWS[@]} > 0)); then
        echo
        echo "== idle connections: workers' RSS before and after"
        printf '%-8s %7s %7s %12s %12s %14s\n' server workers conns \
            rss_before_kB rss_after_kB bytes/conn
        printf '%s\n' "${MEM_ROWS[@]}"
    fi
}

# The python that has Twisted (Debian's python3-twisted or a pip install).
twisted_python() {
    local py
    for py in /usr/bin/python3 python3; do
        if command -v "$py" >/dev/null &&
            "$py" -c 'import twisted' 2>/dev/null; then
            echo "$py"
            return
        fi
    done
}

# BENCH_INSTALL=1: Debian's Twisted and nginx, for the comparison runs.
# (Debian's policy-rc.d, where present, keeps nginx from starting as a
# service; this script only ever runs its own nginx on loopback.)
install_comparisons() {
    local pkgs=(python3-twisted nginx) pkg status missing=0
    for pkg in "${pkgs[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [[ $status == *"ok installed" ]] || missing=1
    done
    ((missing)) || return 0
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y "${pkgs[@]}" >&2 ||
        { apt-get update >&2 && apt-get install -y "${pkgs[@]}" >&2; } ||
        die "apt-get install ${pkgs[*]} failed"
}

main() {
    local w port py
    if [[ ${BENCH_INSTALL:-0} == 1 ]]; then
        install_comparisons
    fi
    WEFTD=$BUILD_DIR/weftd
    [[ -x $WEFTD ]] || die "no $WEFTD: build weft first"
    LOAD=$(find_load)
    NGINX=$(command -v nginx || true)
    [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
    # Room for the idle connections in weftd, nginx and weft-load.
    ulimit -n "$(ulimit -Hn)"

    for w in 1 2; do
        port=$(free_port)
        log "weftd -w $w on 127.0.0.1:$port"
        start_weftd "$w" "$port"
        run_timed weftd "$w" "$SERVER_PID" pingpong "$port"
        run_timed weftd "$w" "$SERVER_PID" churn "$port"
        run_timed weftd "$w" "$SERVER_PID" udp "$port"
        stop_pid "$SERVER_PID"
    done

    run_proxy 2

    py=$(twisted_python)
    if [[ -n $py ]]; then
        port=$(free_port)
        log "Twisted ($py) on 127.0.0.1:$port"
        start_twisted "$port" "$py"
        run_timed twisted 1 "$SERVER_PID" pingpong "$port"
        run_timed twisted 1 "$SERVER_PID" churn "$port"
        run_timed twisted 1 "$SERVER_PID" udp "$port"
        stop_pid "$SERVER_PID"
    else
        log "Twisted not installed: no comparison (BENCH_INSTALL=1 installs it)"
    fi

    port=$(free_port)
    log "weftd -w 2 on 127.0.0.1:$port: $IDLE idle connections"
    start_weftd 2 "$port"
    run_idle weftd 2 "$SERVER_PID" "$SIZE" 'weftd-w*' "$port"
    stop_pid "$SERVER_PID"

    if [[ -n $NGINX ]]; then
        port=$(free_port)
        log "nginx on 127.0.0.1:$port: $IDLE idle connections"
        start_nginx "$port"
        # nginx does not echo: connect only (-s 0), accept queue drained.
        run_idle nginx 2 "$SERVER_PID" 0 '*' "$port"
        stop_pid "$SERVER_PID"
    else
        log "nginx not installed: no comparison (BENCH_INSTALL=1 installs it)"
    fi

    print_tables
}

main
