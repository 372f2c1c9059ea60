#!/usr/bin/env bash
#
# http.sh - weftd's http listener against nginx, both answering GET /hello
# with the same 13-byte text/plain body "Hello, World!", loaded by wrk on
# loopback with the same number of workers.  Around every run it reads the
# server's CPU time (supervisor or master plus its workers), and it prints
# one line per scenario and worker setting: median req/s, p99 latency and
# server CPU per request of each server, and the weft/nginx ratios.
#
# usage: contrib/bench/http.sh [-q] [-a] [-d SECONDS] [-r ROUNDS] [BUILD_DIR]
#
#   BUILD_DIR   where weftd was built (default build, relative to the
#               repository root); BUILD_DIR/weftd is run
#   -d SECONDS  length of each wrk run (default 10; env BENCH_SECONDS)
#   -r ROUNDS   runs of each server per scenario (default 3; BENCH_ROUNDS)
#   -q          quick smoke run: 2 s and 1 round (BENCH_QUICK=1); -d and -r
#               given after -q still apply
#   -a          the 2-worker runs with CPU affinity in both servers: weft
#               cpu_affinity = true, nginx worker_cpu_affinity auto
#               (BENCH_AFFINITY=1); by default neither pins its workers
#
# Worker settings: 1 worker, the server (supervisor and workers, or master
# and worker) on CPU 0 and wrk -t1 on CPU 1; then 2 workers and wrk -t2,
# nothing pinned.  Scenarios: keep-alive with 100 and with 1000
# connections, a new connection per request (Connection: close, 100
# connections), and 16 requests per write (pipeline.lua, 100 connections).
# Within a scenario the servers alternate, weft, nginx, weft, nginx, ...,
# and each run gets a freshly started server on a free port.
#
# wrk and nginx are installed from Debian with apt-get when missing.  Every
# server is killed by pid on exit, error or Ctrl-C.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE/../.."

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
AFFINITY=${BENCH_AFFINITY:-0}
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    SECS=2
    ROUNDS=1
fi

BODY="Hello, World!"
DEPTH=16                # requests per write in the pipelined scenario
BACKLOG=4096            # listen backlog of both servers (somaxconn caps it)
START_TIMEOUT=10        # s for a server to answer its first GET /hello
STOP_TIMEOUT=5          # s after SIGTERM before SIGKILL
SCENARIOS=(keepalive-c100 keepalive-c1000 close-c100 "pipeline$DEPTH-c100")
SERVERS=(weft nginx)
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/weft-http-bench.XXXXXX")
SERVER_PID=""           # the server running now, killed on exit
RUN_NO=0                # runs done, for the progress lines
declare -A RPS P99 CPU ERRS     # "setup scenario server" -> one value a round
ERR_NOTES=()            # runs that had errors, printed under the table

log() { printf 'http: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n 's/^# \{0,1\}//; 10,21p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# shellcheck source=contrib/bench/proc.sh
. contrib/bench/proc.sh

# Stop the server $1 and its children (STOP_TIMEOUT s of grace).
stop_server() {
    stop_pid "$1" "$STOP_TIMEOUT"
    SERVER_PID=""
}

cleanup() {
    trap - EXIT INT TERM
    if [[ -n $SERVER_PID ]]; then
        stop_server "$SERVER_PID"
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

# GET /hello on 127.0.0.1:$1; 0 if a 200 with exactly BODY came back.
probe_hello() {
    local reply=""
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET /hello HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    # HTTP/1.0: the server closes after the answer, read stops at EOF.
    IFS= read -r -d '' -t 1 reply <&3 || true
    exec 3<&- 3>&-
    [[ $reply == "HTTP/1."[01]" 200 "* && $reply == *$'\r\n\r\n'"$BODY" ]]
}

# Poll port $1 until it answers GET /hello, process $2 dies or the
# deadline passes.
wait_ready() {
    local port=$1 pid=$2 deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        alive "$pid" || return 1
        probe_hello "$port" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# The weft configuration for $1 workers on port $2, CPU affinity $3 (0/1).
weft_conf() {
    local aff=false
    ((${3})) && aff=true
    cat <<EOF
workers = $1;
cpu_affinity = $aff;
shutdown_timeout = 2;
control = { path = "$TMP/weft.sock"; };
listeners = (
  { name = "web"; listen = "127.0.0.1:$2"; protocol = "http";
    backlog = $BACKLOG;
    http = { routes = ( { path = "/hello"; status = 200;
                          body = "$BODY"; type = "text/plain"; } ); }; }
);
EOF
}

# The nginx configuration for $1 workers on port $2 with prefix directory
# $3, CPU affinity $4 (0/1).  As root the workers stay root, like weftd's.
nginx_conf() {
    local wc=$((NOFILE - 64 < 8192 ? NOFILE - 64 : 8192))
    if (($(id -u) == 0)); then
        echo "user root;"
    fi
    if (($4)); then
        echo "worker_cpu_affinity auto;"
    fi
    cat <<EOF
worker_processes $1;
worker_rlimit_nofile $NOFILE;
daemon off;
master_process on;
pid $3/nginx.pid;
error_log $3/error.log warn;
events { worker_connections $wc; }
http {
    access_log off;
    server_tokens off;
    keepalive_requests 1000000000;
    keepalive_timeout 65;
    client_body_temp_path $3/tmp/body;
    proxy_temp_path $3/tmp/proxy;
    fastcgi_temp_path $3/tmp/fastcgi;
    uwsgi_temp_path $3/tmp/uwsgi;
    scgi_temp_path $3/tmp/scgi;
    server {
        listen 127.0.0.1:$2 reuseport backlog=$BACKLOG;
        location = /hello {
            default_type text/plain;
            return 200 "$BODY";
        }
    }
}
EOF
}

# Start server $1 (weft or nginx) with $2 workers on port $3, on CPU 0
# when $4 is 1 (taskset on the launch: every worker inherits the mask),
# with CPU affinity $5.  Sets SERVER_PID once it answers GET /hello.
start_server() {
    local name=$1 workers=$2 port=$3 pin=$4 aff=$5 dir=$TMP/$1
    local prefix=() cmd
    mkdir -p "$dir/tmp"
    ((pin)) && prefix=(taskset -c 0)
    case $name in
    weft)
        weft_conf "$workers" "$port" "$aff" >"$dir/weft.conf"
        cmd=("$WEFTD" -c "$dir/weft.conf" -w "$workers")
        ;;
    nginx)
        nginx_conf "$workers" "$port" "$dir" "$aff" >"$dir/nginx.conf"
        cmd=("$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf")
        ;;
    esac
    "${prefix[@]}" "${cmd[@]}" 2>"$dir/stderr.log" &
    SERVER_PID=$!
    if ! wait_ready "$port" "$SERVER_PID"; then
        tail -n 20 "$dir/stderr.log" "$dir/error.log" >&2 2>/dev/null || true
        die "$name did not answer GET /hello on 127.0.0.1:$port"
    fi
}

# wrk's options for scenario $1, into WRK_ARGS (and WRK_TAIL: the script's
# arguments, after the URL).
scenario_args() {
    WRK_TAIL=()
    case $1 in
    keepalive-c100) WRK_ARGS=(-c100) ;;
    keepalive-c1000) WRK_ARGS=(-c1000) ;;
    close-c100) WRK_ARGS=(-c100 -H 'Connection: close') ;;
    pipeline*-c100)
        WRK_ARGS=(-c100 -s "$HERE/pipeline.lua")
        WRK_TAIL=(-- "$DEPTH")
        ;;
    *) die "unknown scenario $1" ;;
    esac
}

# Read wrk's report $1 into W_REQS (responses completed), W_RPS, W_P99
# (microseconds), W_ERRS (socket errors plus non-2xx/3xx answers) and
# W_ERRTXT (their breakdown).  Returns 1 if the report is not there.
parse_wrk() {
    local out=$1 c r w t n
    W_REQS=$(awk '$2 == "requests" && $3 == "in" { print $1; exit }' <<<"$out")
    W_RPS=$(awk '$1 == "Requests/sec:" { printf "%.0f", $2; exit }' <<<"$out")
    # "99%  1.36ms": wrk's units are us, ms, s, m and h.
    W_P99=$(awk '$1 == "99%" {
        v = $2 + 0; u = $2; sub(/^[0-9.]+/, "", u)
        if (u == "ms") v *= 1e3; else if (u == "s") v *= 1e6
        else if (u == "m") v *= 6e7; else if (u == "h") v *= 3.6e9
        printf "%.0f", v; exit }' <<<"$out")
    [[ -n $W_REQS && -n $W_RPS && -n $W_P99 ]] || return 1
    # wrk prints 0 when its correction for coordinated omission has put
    # samples below the lowest one measured: no figure rather than 0.
    [[ $W_P99 != 0 ]] || W_P99=-
    # "Socket errors: connect 0, read 0, write 0, timeout 0" (only if any)
    read -r c r w t < <(awk '$1 == "Socket" && $2 == "errors:" {
        gsub(",", ""); print $4, $6, $8, $10; f = 1; exit }
        END { if (!f) print 0, 0, 0, 0 }' <<<"$out")
    n=$(awk '/^ *Non-2xx or 3xx responses:/ { print $NF; f = 1; exit }
        END { if (!f) print 0 }' <<<"$out")
    W_ERRS=$((c + r + w + t + n))
    W_ERRTXT="connect $c, read $r, write $w, timeout $t, non-2xx/3xx $n"
}

# One run: scenario $3 against server $4 (started here, $1 workers, pinned
# when $2 is 1), round $5; its figures are added under "$6 $3 $4".
run_one() {
    local workers=$1 pin=$2 scen=$3 name=$4 round=$5 setup=$6
    local key="$6 $3 $4" port t0 t1 out rc=0 cpu busy client=()
    port=$(free_port) || die "no free port"
    start_server "$name" "$workers" "$port" "$pin" "$AFFINITY"
    scenario_args "$scen"
    ((pin)) && client=(taskset -c 1)
    t0=$(server_ticks "$SERVER_PID")
    # --foreground: Ctrl-C reaches wrk, which prints its report and exits.
    out=$(timeout --foreground $((SECS + 30)) "${client[@]}" wrk \
        -t"$workers" "${WRK_ARGS[@]}" -d"${SECS}s" --latency \
        "http://127.0.0.1:$port/hello" "${WRK_TAIL[@]}" 2>&1) || rc=$?
    t1=$(server_ticks "$SERVER_PID")
    alive "$SERVER_PID" || die "$name died during $scen"
    stop_server "$SERVER_PID"
    if ((rc != 0)) || ! parse_wrk "$out"; then
        printf '%s\n' "$out" >&2
        die "wrk failed against $name ($scen, status $rc)"
    fi
    ((W_REQS > 0)) || die "wrk completed no request against $name ($scen)"
    # Pipelined, wrk times a whole batch, and corrects for coordinated
    # omission as if each request had been a write: no per-request p99.
    [[ $scen != pipeline* ]] || W_P99=-
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$W_REQS" \
        'BEGIN { printf "%.3f", d / hz * 1e6 / n }')
    busy=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v s="$SECS" \
        'BEGIN { printf "%.0f", d / hz / s * 100 }')
    RPS[$key]+=" $W_RPS"
    P99[$key]+=" $W_P99"
    CPU[$key]+=" $cpu"
    ERRS[$key]=$((${ERRS[$key]:-0} + W_ERRS))
    ((W_ERRS == 0)) ||
        ERR_NOTES+=("$setup $scen $name round $round: $W_ERRTXT")
    RUN_NO=$((RUN_NO + 1))
    log "$(printf '[%2d/%d] %-11s %-16s r%d %-5s %8s req/s  p99 %6s us  %7s cpu_us/req (%s%% of a CPU)  errors %s' \
        "$RUN_NO" "$RUNS" "$setup" "$scen" "$round" "$name" "$W_RPS" \
        "$W_P99" "$cpu" "$busy" "$W_ERRS")"
}

# One line of the table: scenario, workers, req/s weft nginx ratio, p99
# weft nginx, cpu/req weft nginx ratio, errors.
table_row() {
    printf '%-16s %-9s | %8s %8s %5s | %7s %7s | %7s %7s %5s | %s\n' "$@"
}

print_table() {
    local setup scen w n rw rn cw cn
    echo
    echo "== weftd vs nginx: GET /hello, 13-byte text/plain body, wrk on" \
        "127.0.0.1; ${SECS} s per run, median of $ROUNDS round(s)"
    echo "   p99: wrk's 99th percentile latency in us; cpu/req: server" \
        "utime+stime (supervisor or master + workers) per request in us"
    echo "   w/n: weft / nginx (req/s: above 1 favours weft; cpu/req:" \
        "below 1 does); errors: sum over the rounds, weft/nginx"
    printf '%-26s | %-23s | %-15s | %-23s |\n' "" req/s "p99 us" "cpu us/req"
    table_row scenario workers weft nginx w/n weft nginx weft nginx w/n errors
    for setup in "${SETUP_ORDER[@]}"; do
        for scen in "${SCENARIOS[@]}"; do
            w="$setup $scen weft"
            n="$setup $scen nginx"
            [[ -n ${RPS[$w]:-} ]] || continue
            # shellcheck disable=SC2086 # one number a round
            rw=$(median ${RPS[$w]}) rn=$(median ${RPS[$n]})
            # shellcheck disable=SC2086
            cw=$(median ${CPU[$w]}) cn=$(median ${CPU[$n]})
            # shellcheck disable=SC2086
            table_row "$scen" "$setup" \
                "$(fmt_num "$rw" 0)" "$(fmt_num "$rn" 0)" \
                "$(ratio "$rw" "$rn")" \
                "$(fmt_num "$(median ${P99[$w]})" 0)" \
                "$(fmt_num "$(median ${P99[$n]})" 0)" \
                "$(fmt_num "$cw" 2)" "$(fmt_num "$cn" 2)" \
                "$(ratio "$cw" "$cn")" "${ERRS[$w]}/${ERRS[$n]}"
        done
    done
    echo "p99 -: none (pipelined, wrk times a batch of $DEPTH requests," \
        "not a request; see README.md)"
    if ((${#ERR_NOTES[@]} > 0)); then
        echo
        echo "runs with errors (wrk's socket errors and non-2xx/3xx answers):"
        printf '  %s\n' "${ERR_NOTES[@]}"
    fi
}

# wrk and nginx from Debian when they are missing (contrib/lib.sh).
install_tools() {
    local pkgs=()
    NGINX=$(command -v nginx || true)
    [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
    [[ -n $NGINX ]] || pkgs+=(nginx)
    command -v wrk >/dev/null || pkgs+=(wrk)
    command -v taskset >/dev/null || pkgs+=(util-linux)
    ((${#pkgs[@]} == 0)) && return 0
    # shellcheck source=contrib/lib.sh
    . contrib/lib.sh
    ensure_packages "${pkgs[@]}" >&2 || die "cannot install ${pkgs[*]}"
    NGINX=$(command -v nginx || true)
    [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
    [[ -n $NGINX ]] || die "no nginx after installing it"
    command -v wrk >/dev/null || die "no wrk after installing it"
}

main() {
    local opt build_dir setup workers pin label scen round name i
    while getopts 'qad:r:h' opt; do
        case $opt in
        q) SECS=2 ROUNDS=1 ;;
        a) AFFINITY=1 ;;
        d) SECS=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        *) usage ;;
        esac
    done
    shift $((OPTIND - 1))
    (($# <= 1)) || usage
    [[ $SECS =~ ^[1-9][0-9]*$ ]] || die "-d: whole seconds expected, not '$SECS'"
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "-r: a count expected, not '$ROUNDS'"
    [[ $AFFINITY == [01] ]] || die "BENCH_AFFINITY: 0 or 1 expected"
    build_dir=${1:-build}
    WEFTD=$build_dir/weftd
    [[ -x $WEFTD ]] || die "no $WEFTD: build weftd first (make weftd in $build_dir)"
    WEFTD=$(cd "$build_dir" && pwd)/weftd
    install_tools

    # wrk -c1000 and a server with 1000 connections each need the room.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null ||
        ulimit -n "$(cat /proc/sys/fs/nr_open)" 2>/dev/null || true
    NOFILE=$(ulimit -n)
    if ((NOFILE < 1100)); then
        log "warning: open-file limit $NOFILE: no keepalive-c1000 runs"
        for i in "${!SCENARIOS[@]}"; do
            if [[ ${SCENARIOS[i]} == keepalive-c1000 ]]; then
                unset 'SCENARIOS[i]'
            fi
        done
        SCENARIOS=("${SCENARIOS[@]}")
    fi

    # "workers pin label": the server on CPU 0 and wrk on CPU 1 needs two.
    if (($(nproc) >= 2)); then
        SETUPS=("1 1 1-pinned" "2 0 2")
    else
        log "warning: one CPU only: the 1-worker runs are not pinned"
        SETUPS=("1 0 1" "2 0 2")
    fi
    SETUP_ORDER=()
    for i in "${SETUPS[@]}"; do
        SETUP_ORDER+=("${i##* }")
    done
    RUNS=$((${#SETUPS[@]} * ${#SCENARIOS[@]} * ROUNDS * ${#SERVERS[@]}))
    log "weftd: $WEFTD; nginx: $NGINX; wrk: $(command -v wrk)"
    log "$RUNS runs of ${SECS} s, about $((RUNS * (SECS + 1) / 60 + 1)) min;" \
        "open-file limit $NOFILE"

    for setup in "${SETUPS[@]}"; do
        read -r workers pin label <<<"$setup"
        for scen in "${SCENARIOS[@]}"; do
            for ((round = 1; round <= ROUNDS; round++)); do
                for name in "${SERVERS[@]}"; do
                    run_one "$workers" "$pin" "$scen" "$name" "$round" "$label"
                done
            done
        done
    done
    print_table
}

main "$@"
