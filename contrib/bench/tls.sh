#!/usr/bin/env bash
#
# tls.sh - weftd's TLS against nginx with the same certificate (ECDSA
# P-256, made here), the same workers and OpenSSL's default ciphers, both
# answering GET /hello with the same 13 bytes over https.
#
# usage: contrib/bench/tls.sh [-q] [-d SECONDS] [-r ROUNDS] [BUILD_DIR]
#
#   BUILD_DIR   where weftd was built (default build)
#   -d SECONDS  length of each run (default 10; BENCH_SECONDS)
#   -r ROUNDS   runs of each server per scenario (default 3; BENCH_ROUNDS)
#   -q          quick: 3 s, 1 round
#
# Scenarios, each with the server pinned to CPU 0 and the client to CPU 1
# (1 worker), then with 2 workers and nothing pinned:
#   full     openssl s_time -new, 4 at once: a full handshake and one
#            request per connection
#   resumed  openssl s_time -reuse, 4 at once: every connection resumes
#   https    wrk -c100: keep-alive requests over TLS
# For each: operations per second and the server's CPU time per
# operation (utime + stime of the whole server from /proc), medians of the
# rounds, servers alternated, each run after one uncounted second. Where the clients saturate their CPU first,
# the server's CPU per operation is the figure to compare.
#
# nginx and wrk are installed from Debian when missing. Every server is
# killed by pid on exit, error or Ctrl-C.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE/../.."

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
BODY="Hello, World!"
START_TIMEOUT=10
STIME_PROCS=4   # openssl s_time processes at once
CLK_TCK=$(getconf CLK_TCK)
SCENARIOS=(full resumed https)
SERVERS=(weft nginx)

while getopts "qd:r:" opt; do
    case $opt in
    q) SECS=3; ROUNDS=1 ;;
    d) SECS=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    *) sed -n '7,12p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
BUILD=${1:-build}
WEFTD=$BUILD/weftd
[[ -x $WEFTD ]] || { echo "tls: no $WEFTD (build first)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/weft-tls-bench.XXXXXX")
SERVER_PID=""
declare -A OPS CPU

log() { printf 'tls: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=contrib/bench/proc.sh
. contrib/bench/proc.sh

cleanup() {
    [[ -n $SERVER_PID ]] && stop_pid "$SERVER_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

install_tools() {
    local missing=()
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] ||
        missing+=(nginx)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v openssl >/dev/null || missing+=(openssl)
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]}"
    apt-get install -y -q "${missing[@]}" >&2 || die "cannot install ${missing[*]}"
}

make_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -days 2 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
        -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1" \
        2>/dev/null || die "openssl could not make a certificate"
}

weft_conf() {
    cat <<EOF
workers = $1;
cpu_affinity = false;
shutdown_timeout = 2;
control = { path = "$TMP/weft.sock"; };
listeners = (
  { name = "https"; listen = "127.0.0.1:$2"; protocol = "http";
    backlog = 4096;
    tls = { cert = "$TMP/cert.pem"; key = "$TMP/key.pem"; };
    http = { routes = ( { path = "/hello"; status = 200;
                          body = "$BODY"; type = "text/plain"; } ); }; }
);
EOF
}

nginx_conf() {
    (($(id -u) == 0)) && echo "user root;"
    cat <<EOF
worker_processes $1;
daemon off;
master_process on;
pid $3/nginx.pid;
error_log $3/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    server_tokens off;
    keepalive_requests 1000000000;
    client_body_temp_path $3/tmp/body;
    proxy_temp_path $3/tmp/proxy;
    fastcgi_temp_path $3/tmp/fastcgi;
    uwsgi_temp_path $3/tmp/uwsgi;
    scgi_temp_path $3/tmp/scgi;
    server {
        listen 127.0.0.1:$2 ssl reuseport backlog=4096;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /hello { default_type text/plain; return 200 "$BODY"; }
    }
}
EOF
}

# Wait until port $1 answers https, or process $2 dies.
wait_https() {
    local deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        alive "$2" || return 1
        curl -sk -m 1 "https://127.0.0.1:$1/hello" 2>/dev/null |
            grep -q "$BODY" && return 0
        sleep 0.05
    done
    return 1
}

start_server() {
    local name=$1 workers=$2 port=$3 pin=$4 dir=$TMP/$1 prefix=()
    mkdir -p "$dir/tmp"
    ((pin)) && prefix=(taskset -c 0)
    case $name in
    weft)
        weft_conf "$workers" "$port" >"$dir/weft.conf"
        "${prefix[@]}" "$WEFTD" -c "$dir/weft.conf" 2>"$dir/stderr.log" &
        ;;
    nginx)
        nginx_conf "$workers" "$port" "$dir" >"$dir/nginx.conf"
        "${prefix[@]}" "$(command -v nginx || echo /usr/sbin/nginx)" \
            -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
            2>"$dir/stderr.log" &
        ;;
    esac
    SERVER_PID=$!
    wait_https "$port" "$SERVER_PID" || {
        tail -n 20 "$dir/stderr.log" "$dir/error.log" >&2 2>/dev/null || true
        die "$name did not answer https on port $port"
    }
}

# Run scenario $1 against port $2 with $3 client threads, client pinned
# when $4 is 1, for $5 seconds (default SECS); prints the operations done.
run_client() {
    local scen=$1 port=$2 threads=$3 pin=$4 secs=${5:-$SECS} prefix=() out
    ((pin)) && prefix=(taskset -c 1)
    case $scen in
    full | resumed)
        local flag=-new i
        [[ $scen == resumed ]] && flag=-reuse
        # s_time makes one connection at a time: STIME_PROCS of them in
        # parallel load the server. -www: a request per connection, so a
        # TLS 1.3 session ticket is read before the close (s_time cannot
        # resume without it).
        for ((i = 0; i < STIME_PROCS; i++)); do
            "${prefix[@]}" openssl s_time -connect "127.0.0.1:$port" \
                $flag -www /hello -time "$secs" >"$TMP/stime.$i" 2>&1 &
        done
        wait
        # "5502 connections in 4 real seconds, 148 bytes read ..."
        cat "$TMP"/stime.* | awk '/connections in [0-9]+ real seconds/ {
            n += $1 } END { print n + 0 }'
        rm -f "$TMP"/stime.*
        ;;
    https)
        out=$("${prefix[@]}" wrk -t"$threads" -c100 -d"${secs}s" \
            "https://127.0.0.1:$port/hello" 2>&1) || true
        awk '$2 == "requests" && $3 == "in" { print $1; exit }' <<<"$out"
        ;;
    esac
}

run_one() {
    local workers=$1 pin=$2 scen=$3 name=$4 setup=$5 port t0 t1 ops
    port=$(free_port) || die "no free port"
    start_server "$name" "$workers" "$port" "$pin"
    # A second of the same load first (in a subshell: its wait must not
    # wait for the server), not counted: a fresh server's
    # first handshakes fill OpenSSL's caches and the allocator's.
    (run_client "$scen" "$port" "$workers" "$pin" 1 >/dev/null)
    t0=$(server_ticks "$SERVER_PID")
    ops=$(run_client "$scen" "$port" "$workers" "$pin")
    t1=$(server_ticks "$SERVER_PID")
    alive "$SERVER_PID" || die "$name died during $scen"
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    [[ $ops =~ ^[0-9]+$ && $ops -gt 0 ]] ||
        die "no operation completed against $name ($scen)"
    local rate cpu
    rate=$(awk -v n="$ops" -v s="$SECS" 'BEGIN { printf "%.0f", n / s }')
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$ops" \
        'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
    OPS["$setup $scen $name"]+=" $rate"
    CPU["$setup $scen $name"]+=" $cpu"
    log "$(printf '%-9s %-8s %-5s %9s/s  %8s cpu_us/op' "$setup" "$scen" \
        "$name" "$rate" "$cpu")"
}

main() {
    install_tools
    make_cert
    local setup workers pin label scen r name
    for setup in "1 1 1-pinned" "2 0 2"; do
        read -r workers pin label <<<"$setup"
        for scen in "${SCENARIOS[@]}"; do
            for ((r = 0; r < ROUNDS; r++)); do
                for name in "${SERVERS[@]}"; do
                    run_one "$workers" "$pin" "$scen" "$name" "$label"
                done
            done
        done
    done
    echo "== weftd vs nginx over TLS (ECDSA P-256, OpenSSL $(openssl version | awk '{print $2}')); ${SECS} s per run, median of $ROUNDS"
    echo "   ops/s: handshakes (full, resumed) or requests (https); cpu: server CPU us per op; w/n: weft / nginx"
    printf '%-8s %-9s | %9s %9s %5s | %8s %8s %5s\n' scenario workers \
        weft nginx w/n weft nginx w/n
    for setup in 1-pinned 2; do
        for scen in "${SCENARIOS[@]}"; do
            local ow on cw cn
            # shellcheck disable=SC2086
            ow=$(median ${OPS["$setup $scen weft"]})
            # shellcheck disable=SC2086
            on=$(median ${OPS["$setup $scen nginx"]})
            # shellcheck disable=SC2086
            cw=$(median ${CPU["$setup $scen weft"]})
            # shellcheck disable=SC2086
            cn=$(median ${CPU["$setup $scen nginx"]})
            printf '%-8s %-9s | %9s %9s %5s | %8s %8s %5s\n' "$scen" \
                "$setup" "$ow" "$on" "$(ratio "$ow" "$on")" "$cw" "$cn" \
                "$(ratio "$cw" "$cn")"
        done
    done
}

main
